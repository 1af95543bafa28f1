/**
 * A replica's protocol status, read from its own log (native/src/vr.c's
 * lines): the last of `view V normal` (normal in V), `view change: view A ->
 * B` (view change to B) and `recovering...` (recovering, VR Revisited 4.3)
 * since the last start or restart line electrode-lab wrote. Whether the
 * process still runs is the caller's fact (its process record), not the log's.
 * Pure: text in, a status out.
 */

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
  return `${(at.getTime() / 1000).toFixed(6)} electrode-lab restart: ${node} (incarnation ${incarnation})`;
}

const BOUNDARY = /^\d+(?:\.\d+)? electrode-lab (?:start|restart):/;
const LINE = /^(\d+)(?:\.(\d{1,6}))? replica\d+ (debug|info|warn|error): (.*)$/;

export function replicaStatusFromLog(text: string): ReplicaProtocolStatus {
  let status: ReplicaProtocolStatus = { state: 'starting' };
  for (const line of text.split('\n')) {
    if (BOUNDARY.test(line)) {
      status = { state: 'starting' };
      continue;
    }
    const m = LINE.exec(line);
    if (!m) continue;
    const atMs = Number(m[1]) * 1000 + Number((m[2] ?? '0').padEnd(6, '0')) / 1000;
    const msg = m[4]!;
    let x: RegExpExecArray | null;
    if ((x = /^view (\d+) normal \(.*?\), leader (\d+)/.exec(msg))) status = { state: 'normal', view: Number(x[1]), leader: Number(x[2]), atMs };
    else if ((x = /^view change: view \d+ -> (\d+)/.exec(msg))) status = { state: 'view-change', view: Number(x[1]), atMs };
    else if (msg.startsWith('recovering')) {
      // the error line every 5 s says why it is stuck; the info line only that it began
      const reason: string | undefined = m[3] === 'error' ? msg : status.state === 'recovering' ? status.reason : undefined;
      status = { state: 'recovering', atMs: status.state === 'recovering' ? status.atMs : atMs, ...(reason ? { reason } : {}) };
    } else if (msg.startsWith('stats: rx ')) status = { state: 'exited', atMs };
  }
  return status;
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

/** The first time after `sinceMs` the log says the replica is normal (a restart's time to recovered), or undefined. */
export function normalAfter(text: string, sinceMs: number): number | undefined {
  for (const m of text.matchAll(/^(\d+)\.(\d{6}) replica\d+ info: view \d+ normal/gm)) {
    const at = Number(m[1]) * 1000 + Number(m[2]) / 1000;
    if (at >= sinceMs) return at;
  }
  return undefined;
}
