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

/** Of these PIDs, the ones that have ended but are not reaped yet (zombies: `ps` lists them as <defunct>). */
export function unreaped(pids: number[]): number[] {
  return pids.filter((p) => statFields(p)?.[0] === 'Z');
}

/** The command name of PID 1 (who reaps what a process that exited left running, e.g. `process_api`, `tini`, `systemd`). */
export function initName(): string {
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim();
  } catch {
    return '?';
  }
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
