/**
 * Replica logs as facts: the run boundary `start` writes, and the protocol
 * events the labs ask about (a leader's silence noticed, view changes, views
 * entered, refusals, clean exits). Pure functions over log text; the line
 * formats are native/src/vr.c's and native/src/replica.c's.
 */

import { LOG_TIME_SOURCE, logTimePrefix, parseLogLine } from '../core/logline.js';

/** `<unix time> <UTC time> electrode-lab start: run <ISO time> (<how>)`: the first line of every `start` in each replica's log (the UTC field is absent in older logs). */
const BOUNDARY = new RegExp(`^${LOG_TIME_SOURCE} electrode-lab start: run (\\S+) \\((.*)\\)$`);

/** How a run was started, as the boundary line says it. */
export interface StartHow {
  /** `broadcast,quorum,reply`, `none`, ... (fastPathNames) */
  fastPaths: string;
  xdp: string;
  log: string;
  /** `--replica-args` as given, e.g. `0:--fast-broadcast`. */
  replicaArgs?: string;
  /** `start --unsafe-no-recovery`: the lab build, no recovery on any start or restart. */
  noRecovery?: boolean;
}

export function startHow(h: StartHow): string {
  return `fast paths ${h.fastPaths}; xdp ${h.xdp}; log ${h.log}${h.replicaArgs ? `; replica args ${h.replicaArgs}` : ''}${h.noRecovery ? '; UNSAFE no recovery' : ''}`;
}

export function parseHow(how: string): Partial<StartHow> {
  const out: Partial<StartHow> = {};
  for (const part of how.split('; ')) {
    if (part === 'UNSAFE no recovery') {
      out.noRecovery = true;
      continue;
    }
    const m = /^(fast paths|xdp|log|replica args) (.*)$/.exec(part);
    if (!m) continue;
    const k = ({ 'fast paths': 'fastPaths', xdp: 'xdp', log: 'log', 'replica args': 'replicaArgs' } as const)[m[1] as 'fast paths' | 'xdp' | 'log' | 'replica args'];
    out[k] = m[2]!;
  }
  return out;
}

/** The line `start` (and the crash-hunt incident) appends to a replica's log before starting it, so runs never run together. */
export function boundaryLine(at: Date, how: string): string {
  return `${logTimePrefix(at)} electrode-lab start: run ${at.toISOString()} (${how})`;
}

export type LogEvent =
  | { t: number; kind: 'ready'; replica: number }
  | { t: number; kind: 'no-word'; leader: number; ms: number }
  | { t: number; kind: 'view-change'; from: number; to: number; leader: number; lastOp: number; commit: number }
  | { t: number; kind: 'normal'; view: number; how: string; leader: number; me: boolean; lastOp: number; commit: number; recoveredFrom?: number }
  | { t: number; kind: 'recovering'; why: string }
  | { t: number; kind: 'recovery-fetch'; from: number; view: number; lastOp: number }
  | { t: number; kind: 'snapshot-installed'; op: number; bytes: number; keys: number; clients: number; logTo: number; from: number }
  | { t: number; kind: 'snapshot-served'; op: number; to: number }
  | { t: number; kind: 'recovery-stuck'; seconds: number; text: string }
  | { t: number; kind: 'refused'; option: string; text: string }
  | { t: number; kind: 'crash-on-purpose'; ops: number }
  | { t: number; kind: 'stopping'; signal: number }
  | { t: number; kind: 'exit'; text: string };

export interface RunSegment {
  /** The boundary line that opened the run (absent for a log written before boundaries existed). */
  start?: { t: number; iso: string; how: string };
  events: LogEvent[];
  /** Every line of the run, boundary excluded. */
  lines: string[];
}

function eventOf(t: number, msg: string): LogEvent | undefined {
  let m: RegExpExecArray | null;
  if ((m = /^replica (\d+) ready on /.exec(msg))) return { t, kind: 'ready', replica: Number(m[1]) };
  if ((m = /^no word from leader (\d+) for (\d+) ms/.exec(msg))) return { t, kind: 'no-word', leader: Number(m[1]), ms: Number(m[2]) };
  if ((m = /^view change: view (\d+) -> (\d+) \(new leader (\d+)\), last op (\d+), commit (\d+)/.exec(msg))) {
    return { t, kind: 'view-change', from: Number(m[1]), to: Number(m[2]), leader: Number(m[3]), lastOp: Number(m[4]), commit: Number(m[5]) };
  }
  if ((m = /^view (\d+) normal \(([^)]*)\), leader (\d+)( \(me\))?, last op (\d+), commit (\d+)/.exec(msg))) {
    const from = /^recovered from replica (\d+)$/.exec(m[2]!);
    return { t, kind: 'normal', view: Number(m[1]), how: m[2]!, leader: Number(m[3]), me: Boolean(m[4]), lastOp: Number(m[5]), commit: Number(m[6]), ...(from ? { recoveredFrom: Number(from[1]) } : {}) };
  }
  // recovery (native/src/vr.c): every replica starts without state and says so before `ready on`
  if ((m = /^recovering: (.*); asking the other \d+ replicas/.exec(msg))) return { t, kind: 'recovering', why: m[1]! };
  if ((m = /^recovering: \d+ replicas are normal; replica (\d+) leads view (\d+) \(last op (\d+)\): fetching its state/.exec(msg))) {
    return { t, kind: 'recovery-fetch', from: Number(m[1]), view: Number(m[2]), lastOp: Number(m[3]) };
  }
  if ((m = /^recovering for (\d+) s/.exec(msg))) return { t, kind: 'recovery-stuck', seconds: Number(m[1]), text: msg };
  if ((m = /^snapshot: installed op (\d+) \((\d+) bytes, (\d+) keys, (\d+) clients, log to op (\d+)\) from replica (\d+)/.exec(msg))) {
    return { t, kind: 'snapshot-installed', op: Number(m[1]), bytes: Number(m[2]), keys: Number(m[3]), clients: Number(m[4]), logTo: Number(m[5]), from: Number(m[6]) };
  }
  if ((m = /^snapshot: serving op (\d+) \(.*\) to replica (\d+)/.exec(msg))) return { t, kind: 'snapshot-served', op: Number(m[1]), to: Number(m[2]) };
  if ((m = /^(--fast-[a-z]+) given but /.exec(msg))) return { t, kind: 'refused', option: m[1]!, text: msg };
  if ((m = /^--crash-after reached after (\d+) ops/.exec(msg))) return { t, kind: 'crash-on-purpose', ops: Number(m[1]) };
  if ((m = /^signal (\d+): stopping/.exec(msg))) return { t, kind: 'stopping', signal: Number(m[1]) };
  if (msg.startsWith('stats: rx ')) return { t, kind: 'exit', text: msg };
  return undefined;
}

/** A replica log split into runs at the boundary lines; lines before the first boundary form a run of their own. */
export function runSegments(text: string): RunSegment[] {
  const out: RunSegment[] = [];
  let cur: RunSegment = { events: [], lines: [] };
  for (const line of text.split('\n')) {
    if (!line) continue;
    const b = BOUNDARY.exec(line);
    if (b) {
      if (cur.start || cur.lines.length) out.push(cur);
      cur = { start: { t: Number(b[1]), iso: b[3]!, how: b[4]! }, events: [], lines: [] };
      continue;
    }
    cur.lines.push(line);
    const m = parseLogLine(line);
    if (!m || !/^replica\d+$/.test(m.tag)) continue;
    const ev = eventOf(m.t, m.text);
    if (ev) cur.events.push(ev);
  }
  if (cur.start || cur.lines.length) out.push(cur);
  return out;
}

/** The run that the last `start` began (the whole log when it has no boundary). */
export function lastRun(text: string): RunSegment | undefined {
  return runSegments(text).at(-1);
}

/** Runs of one replica whose start matched `how` (e.g. every `--broadcast` start). */
export function runsStartedWith(text: string, test: (how: string) => boolean): RunSegment[] {
  return runSegments(text).filter((s) => s.start && test(s.start.how));
}

export function eventsOf<K extends LogEvent['kind']>(seg: RunSegment | undefined, kind: K): Extract<LogEvent, { kind: K }>[] {
  return (seg?.events ?? []).filter((e): e is Extract<LogEvent, { kind: K }> => e.kind === kind);
}

/** The last view a replica logged entering normally, in this run (0 when none: every replica starts in view 0). */
export function lastNormalView(seg: RunSegment | undefined): number {
  return eventsOf(seg, 'normal').at(-1)?.view ?? 0;
}

/** Did the run end with the replica's exit line (a clean stop), or did it stop logging (killed, or still running)? */
export function exitedCleanly(seg: RunSegment | undefined): boolean {
  return eventsOf(seg, 'exit').length > 0;
}
