/** Facts about local processes read from /proc (netns labs run their processes on this host). */
import { readFileSync } from 'node:fs';

/** The fields after `comm`: comm (field 2) may hold spaces and parentheses, so split after the last ')'. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** /proc/<pid>/stat field 22 (start time in clock ticks), to tell our process from a recycled PID; undefined if gone. */
export function procStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** Alive = exists and is not a zombie (our PID 1 may never reap what it inherits). */
export function processAlive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Polls a condition until it holds or the deadline passes (no sleeps as synchronisation). */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
