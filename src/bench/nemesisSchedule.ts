/**
 * A composed nemesis (Jepsen's): a seeded sequence of mixed faults over a
 * whole trial, and the one-action sequence of `kill-restart`. Pure: a seed
 * and the trial's shape in, the exact schedule out; the same seed gives the
 * same schedule (xorshift32, no Math.random). run.ts carries it out.
 *
 * The f-limit: at no moment are more than f replicas faulty, counting a
 * killed replica from its kill until RECOVERY_ALLOWANCE_MS after its restart
 * (a restarted replica is faulty until it recovered; run.ts also waits for
 * its log to say so before it lets another fault in). Loss hits every link,
 * and is never counted against f: every replica still runs.
 */

export const SCHEDULE_KINDS = ['kill', 'kill-restart', 'pause', 'partition', 'loss'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

export interface ScheduledFault {
  /** Position in the schedule (0-based). */
  seq: number;
  kind: ScheduleKind;
  /** A replica index, or a role resolved when the fault is due (kill-restart:leader). Absent for loss. */
  target?: number | 'leader' | 'follower';
  /** ms after the client started: inject. */
  atMs: number;
  /** ms after the client started: heal, resume, reconnect, or (kill, kill-restart) start it again. */
  endMs: number;
  /** loss: percent of packets. */
  percent?: number;
}

/** How long after its restart a replica still counts as faulty in the plan (run.ts waits for its log instead). */
export const RECOVERY_ALLOWANCE_MS = 2000;
/** kill-restart's default delay: a restart supervisor is that quick, well inside the others' 300-500 ms view-change timeout. */
export const DEFAULT_RESTART_DELAY_MS = 100;

export interface RandomScheduleInput {
  seed: number;
  n: number;
  /** ms after the client started when faults may begin (the warm-up's end) and by when every one is healed. */
  fromMs: number;
  untilMs: number;
  restartDelayMs?: number;
  /** Kinds this lab can make (partition needs the provider's isolate; loss its netem). */
  kinds?: readonly ScheduleKind[];
}

/** xorshift32: small, seedable, the same on every machine. */
export function rng(seed: number): () => number {
  let x = (seed >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** The interval a fault keeps its target faulty, for the f-limit. */
export function faultyInterval(a: ScheduledFault): [number, number] | undefined {
  if (a.kind === 'loss') return undefined;
  return [a.atMs, a.kind === 'kill' || a.kind === 'kill-restart' ? a.endMs + RECOVERY_ALLOWANCE_MS : a.endMs];
}

/** The most replicas faulty at once under a schedule (the f-limit's measure; tests hold it to f). */
export function maxFaulty(schedule: readonly ScheduledFault[]): number {
  const edges: [number, number][] = [];
  for (const a of schedule) {
    const iv = faultyInterval(a);
    if (iv) edges.push([iv[0], 1], [iv[1], -1]);
  }
  // an end and a start at the same instant do not overlap
  edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}

/**
 * The seeded random schedule: faults start every 0.3-2 s, last (kill: down
 * 1-4 s; kill-restart: the restart delay; pause, partition: 0.5-3 s; loss:
 * 1-4 s at 2-10 %), target a replica that is not already faulty, and are
 * dropped when they would make more than f faulty; every one ends (and a
 * restarted replica has its recovery allowance) before `untilMs`.
 */
export function randomSchedule(input: RandomScheduleInput): ScheduledFault[] {
  const next = rng(input.seed);
  const between = (lo: number, hi: number) => Math.round(lo + next() * (hi - lo));
  const f = Math.floor((input.n - 1) / 2);
  const kinds = input.kinds?.length ? input.kinds : SCHEDULE_KINDS;
  const restartDelay = input.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS;
  const out: ScheduledFault[] = [];
  let lossUntil = -1;
  for (let t = input.fromMs + between(300, 2000); t < input.untilMs; t += between(300, 2000)) {
    const kind = kinds[Math.floor(next() * kinds.length)]!;
    const length = kind === 'kill' ? between(1000, 4000) : kind === 'kill-restart' ? restartDelay : kind === 'loss' ? between(1000, 4000) : between(500, 3000);
    const candidate: ScheduledFault = { seq: out.length, kind, atMs: t, endMs: t + length };
    const iv = faultyInterval(candidate);
    if ((iv ? iv[1] : candidate.endMs) > input.untilMs) continue;
    if (kind === 'loss') {
      // one loss at a time: two would just be a higher rate
      if (t < lossUntil) continue;
      candidate.percent = between(2, 10);
      lossUntil = candidate.endMs;
      out.push(candidate);
      continue;
    }
    const busy = new Set(out.filter((a) => typeof a.target === 'number' && overlaps(faultyInterval(a)!, iv!)).map((a) => a.target as number));
    const free = [...Array(input.n).keys()].filter((i) => !busy.has(i));
    if (!free.length) continue;
    candidate.target = free[Math.floor(next() * free.length)]!;
    if (maxFaulty([...out, candidate]) > f) continue;
    out.push(candidate);
  }
  return out.map((a, seq) => ({ ...a, seq }));
}

function overlaps(a: [number, number], b: [number, number]): boolean {
  return a[0] < b[1] && b[0] < a[1];
}

/** `kill-restart[:leader|follower]`: one kill at the window's start, the restart `delayMs` later. */
export function killRestartSchedule(target: 'leader' | 'follower', atMs: number, delayMs = DEFAULT_RESTART_DELAY_MS): ScheduledFault[] {
  return [{ seq: 0, kind: 'kill-restart', target, atMs, endMs: atMs + delayMs }];
}

/** One line per fault, for progress lines and the README. */
export function describeScheduled(a: ScheduledFault, name: (i: number) => string = (i) => `replica${i}`): string {
  const who = a.target === undefined ? 'every link' : typeof a.target === 'number' ? name(a.target) : `the ${a.target}`;
  const what = a.kind === 'loss' ? `loss ${a.percent}%` : a.kind;
  return `${(a.atMs / 1000).toFixed(1)}-${(a.endMs / 1000).toFixed(1)} s ${what} ${who}`;
}
