/**
 * A replica's protocol status, read from its own log (native/src/vr.c's
 * lines, parsed through src/core/logline.ts): the last of `view V normal` (normal
 * in V), `view change: view A -> B` (view change to B) and `recovering...`
 * (recovering, VR Revisited 4.3) since the last start or restart line
 * electrode-lab wrote. Whether the process still runs is the caller's fact
 * (its process record), not the log's. Pure: text in, a status out.
 */
import { LOG_TIME_SOURCE, logTimePrefix, parseLogLine } from './logline.js';

export type ReplicaProtocolStatus =
  | { state: 'normal'; view: number; leader: number; atMs: number }
  | { state: 'view-change'; view: number; atMs: number }
  | { state: 'recovering'; atMs: number; reason?: string }
  /** Started, but no protocol line yet. */
  | { state: 'starting' }
  /** The log says it exited (its `stats:` exit line). */
  | { state: 'exited'; atMs: number };

/** What a restart appends to a replica's log before the new process starts, so the old life's lines stop counting. */
export function restartLine(at: Date, node: string, incarnation: number): string {
  return `${logTimePrefix(at)} electrode-lab restart: ${node} (incarnation ${incarnation})`;
}

/** A start's run line (labs/logs.ts) or a restart's line: a new life begins. Older logs lack the UTC field. */
const BOUNDARY = new RegExp(`^${LOG_TIME_SOURCE} electrode-lab (?:start|restart):`);

/**
 * The lab build's --lab-no-recovery (bench --unsafe-no-recovery) starts
 * normal in view 0 with no `view V normal` line: this warning is its only
 * word for it (native/src/replica.c).
 */
const NO_RECOVERY = /^--lab-no-recovery: UNSAFE/;

/** Each protocol transition of the last life in `text`, oldest first. */
function lastLife(text: string): (ReplicaProtocolStatus & { atMs: number })[] {
  let out: (ReplicaProtocolStatus & { atMs: number })[] = [];
  let cur: ReplicaProtocolStatus = { state: 'starting' };
  for (const line of text.split('\n')) {
    if (BOUNDARY.test(line)) {
      out = [];
      cur = { state: 'starting' };
      continue;
    }
    const l = parseLogLine(line);
    if (!l || !l.tag.startsWith('replica')) continue;
    const atMs = Math.round(l.t * 1e6) / 1000;
    const msg = l.text;
    let x: RegExpExecArray | null;
    let next: (ReplicaProtocolStatus & { atMs: number }) | undefined;
    if ((x = /^view (\d+) normal \(.*?\), leader (\d+)/.exec(msg))) next = { state: 'normal', view: Number(x[1]), leader: Number(x[2]), atMs };
    else if (NO_RECOVERY.test(msg)) next = { state: 'normal', view: 0, leader: 0, atMs };
    else if ((x = /^view change: view \d+ -> (\d+)/.exec(msg))) next = { state: 'view-change', view: Number(x[1]), atMs };
    else if (msg.startsWith('recovering')) {
      // the error line every 5 s says why it is stuck; the info line only that it began
      const reason: string | undefined = l.level === 'error' ? msg : cur.state === 'recovering' ? cur.reason : undefined;
      next = { state: 'recovering', atMs: cur.state === 'recovering' ? cur.atMs : atMs, ...(reason ? { reason } : {}) };
    } else if (msg.startsWith('stats: rx ')) next = { state: 'exited', atMs };
    if (next) {
      out.push(next);
      cur = next;
    }
  }
  return out;
}

export function replicaStatusFromLog(text: string): ReplicaProtocolStatus {
  const life = lastLife(text);
  return life[life.length - 1] ?? { state: 'starting' };
}

/** `status`'s words for a replica: its log's status, or dead when its process is gone. */
export function describeReplicaStatus(s: ReplicaProtocolStatus, alive: boolean | undefined): string {
  if (alive === undefined) return 'not started';
  if (!alive) return s.state === 'exited' ? 'stopped' : 'dead';
  switch (s.state) {
    case 'normal':
      return `normal in view ${s.view} (leader ${s.leader})`;
    case 'view-change':
      return `view change to view ${s.view}`;
    case 'recovering':
      return `recovering${s.reason ? `: ${s.reason}` : ''}`;
    case 'starting':
      return 'starting';
    case 'exited':
      return 'exiting';
  }
}

/**
 * The first time at or after `sinceMs` the last life in `text` turned normal
 * (a restart's time to recovered), or undefined. Only lines written after
 * the restart began count: a log read before the new process wrote anything
 * still ends in the old life, whose normal lines are older than `sinceMs`.
 */
export function normalAfter(text: string, sinceMs: number): number | undefined {
  return lastLife(text).find((s) => s.state === 'normal' && s.atMs >= sinceMs)?.atMs;
}
