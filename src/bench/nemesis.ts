/**
 * The bench's nemesis (Jepsen's word): one fault per trial, injected on a
 * schedule while the client runs, healed before the trial ends, recorded in
 * commands.log (every action goes through the run's runner) and in
 * results.json with how long the lab took to get a leader back.
 *
 *   none                 no fault
 *   kill-leader          SIGKILL the leader (for the rest of the trial)
 *   kill-follower[:K]    SIGKILL K followers (K <= f; default 1)
 *   kill-restart[:leader|follower]  SIGKILL a replica (default leader), start it
 *                        again 100 ms later (--restart-delay-ms), wait until its
 *                        log says it is normal (it must recover before it counts)
 *   pause[:leader|follower]  SIGSTOP a replica, SIGCONT it later (default leader)
 *   partition[:leader|follower]  cut one replica off the lab network, then heal
 *   split                two groups that only hear themselves (netns labs)
 *   loss:P% dup:P% reorder:P%   tc netem on every node's lab link, for the window
 *   forge[:PPS]          for the window, the client node fires forged replica
 *                        messages at every replica (native/src/forge.c, PPS
 *                        datagrams a second, default 2000); the replicas' exit
 *                        counters must account for them
 *
 * And `--nemesis-schedule random --seed S` (kind `random`): a seeded
 * sequence of mixed faults over the whole trial (nemesisSchedule.ts).
 *
 * Pure parts here (parsing, validation, the schedule, recovery time from the
 * replicas' logs); the edge that acts is in run.ts, through the provider's
 * NodeFaults.
 */
import { Diagnostic } from '../core/diagnostics.js';
import { logLines } from '../core/logline.js';
import type { ScheduledFault } from './nemesisSchedule.js';

export const NEMESIS_KINDS = ['none', 'kill-leader', 'kill-follower', 'kill-restart', 'pause', 'partition', 'split', 'loss', 'dup', 'reorder', 'forge'] as const;
/** `random` comes from --nemesis-schedule, not from --nemesis. */
export type NemesisKind = (typeof NEMESIS_KINDS)[number] | 'random';

export interface NemesisSpec {
  /** As given on the command line, e.g. `kill-follower:2`; the trial's label. */
  name: string;
  kind: NemesisKind;
  /** kill-follower: how many. */
  count?: number;
  /** pause / partition: whom. */
  target?: 'leader' | 'follower';
  /** loss / dup / reorder: percent of packets. */
  percent?: number;
  /** random: the seed of the trial schedules (each trial's is seed + repeat). */
  seed?: number;
  /** forge: datagrams a second. */
  rate?: number;
}

export const DEFAULT_FORGE_RATE = 2000;

/** The spec of `--nemesis-schedule random --seed S`. */
export function randomNemesis(seed: number): NemesisSpec {
  return { name: `random:${seed}`, kind: 'random', seed };
}

export const NO_NEMESIS: NemesisSpec = { name: 'none', kind: 'none' };

/** Parses one entry; returns a diagnostic instead of throwing. */
export function parseNemesisEntry(text: string): NemesisSpec | Diagnostic {
  const t = text.trim();
  const [kindText, arg] = t.split(':', 2) as [string, string | undefined];
  const bad = (message: string, hint: string): Diagnostic => ({ code: 'BENCH_NEMESIS', subject: `--nemesis ${t}`, message, hint });
  if (kindText === 'random') return bad('a random schedule is not a --nemesis entry', 'use --nemesis-schedule random --seed S');
  if (!(NEMESIS_KINDS as readonly string[]).includes(kindText)) return bad('unknown nemesis', `use one of ${NEMESIS_KINDS.join(', ')}, e.g. kill-leader,loss:5%`);
  const kind = kindText as NemesisKind;
  switch (kind) {
    case 'random': // refused above
    case 'none':
    case 'kill-leader':
    case 'split':
      if (arg !== undefined) return bad(`${kind} takes no argument`, `write ${kind}`);
      return { name: t, kind };
    case 'kill-follower': {
      if (arg === undefined) return { name: t, kind, count: 1 };
      if (!/^\d+$/.test(arg) || Number(arg) < 1) return bad('the follower count must be a whole number >= 1', 'e.g. kill-follower:2');
      return { name: t, kind, count: Number(arg) };
    }
    case 'kill-restart':
    case 'pause':
    case 'partition':
      if (arg === undefined) return { name: t, kind, target: 'leader' };
      if (arg !== 'leader' && arg !== 'follower') return bad(`${kind} targets the leader or a follower`, `${kind}:leader or ${kind}:follower`);
      return { name: t, kind, target: arg };
    case 'forge': {
      if (arg === undefined) return { name: t, kind, rate: DEFAULT_FORGE_RATE };
      if (!/^\d+$/.test(arg) || Number(arg) < 1 || Number(arg) > 100_000) return bad('forge takes a rate in datagrams a second, 1 to 100000', 'e.g. forge or forge:5000');
      return { name: t, kind, rate: Number(arg) };
    }
    case 'loss':
    case 'dup':
    case 'reorder': {
      const m = /^(\d+(?:\.\d+)?)%?$/.exec(arg ?? '');
      if (!m || Number(m[1]) <= 0 || Number(m[1]) > 50) return bad(`${kind} needs a rate above 0 and at most 50 percent`, `e.g. ${kind}:5%`);
      return { name: t, kind, percent: Number(m[1]) };
    }
  }
}

/** `--nemesis a,b,c` -> specs, or every problem at once. */
export function parseNemesisList(text: string): { specs: NemesisSpec[]; diagnostics: Diagnostic[] } {
  const specs: NemesisSpec[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const r = parseNemesisEntry(part);
    if ('code' in r) diagnostics.push(r);
    else if (!specs.some((s) => s.name === r.name)) specs.push(r);
  }
  if (!specs.length && !diagnostics.length) diagnostics.push({ code: 'BENCH_NEMESIS', subject: '--nemesis', message: 'empty list', hint: 'e.g. --nemesis none,kill-leader,loss:5%' });
  return { specs, diagnostics };
}

/** Checks a nemesis against a lab size and provider abilities. */
export function nemesisProblems(spec: NemesisSpec, replicas: number, canSplit: boolean): string[] {
  const f = (replicas - 1) / 2;
  const out: string[] = [];
  if (spec.kind === 'kill-follower' && (spec.count ?? 1) > f) out.push(`${spec.name}: ${replicas} replicas tolerate at most f=${f} failures; killing ${spec.count} followers leaves no quorum`);
  if (spec.kind === 'split' && !canSplit) out.push(`${spec.name}: splitting the lab network needs the netns provider (its switch is ours to rewire)`);
  return out;
}

/** When the fault starts and ends, in ms after the client started. */
export interface NemesisWindow {
  startMs: number;
  endMs: number;
}

/**
 * The fault hits a third into the measured part and is healed at two thirds
 * (a kill is never undone), so every trial has load before, during and after.
 * With a request count instead of a duration, the measured part is taken as
 * `assumeS` seconds.
 */
export function nemesisWindow(warmupS: number, durationS: number | undefined, assumeS = 3): NemesisWindow {
  const d = durationS ?? assumeS;
  return { startMs: Math.round((warmupS + d / 3) * 1000), endMs: Math.round((warmupS + (2 * d) / 3) * 1000) };
}

/** `<unix s.us> <UTC> replicaN info: view V normal (...)` lines of replica logs (src/core/logline.ts). */
export function normalViews(logText: string): { atMs: number; view: number }[] {
  const out: { atMs: number; view: number }[] = [];
  for (const l of logLines(logText)) {
    const m = l.level === 'info' ? /^view (\d+) normal/.exec(l.text) : null;
    // the epoch has microseconds: milliseconds with three decimals, as before
    if (m) out.push({ atMs: Math.round(l.t * 1e6) / 1000, view: Number(m[1]) });
  }
  return out;
}

/**
 * How long the lab was without a normal leader after the fault: the first
 * replica to reach a normal view higher than any before the fault, measured
 * from the fault. Undefined when no view change followed.
 */
export function recoveryMs(logs: string[], faultAtMs: number): number | undefined {
  const all = logs.flatMap(normalViews);
  const before = Math.max(0, ...all.filter((v) => v.atMs <= faultAtMs).map((v) => v.view));
  const after = all.filter((v) => v.atMs > faultAtMs && v.view > before).map((v) => v.atMs);
  return after.length ? Math.round(Math.min(...after) - faultAtMs) : undefined;
}

/** The leader from the replicas' logs: the highest normal view any replica reached. */
export function leaderFromLogs(logs: string[], n: number): number {
  return highestView(logs) % n;
}

/** What the trial records about its nemesis. */
export interface NemesisRecord {
  name: string;
  kind: NemesisKind;
  /** Nodes the fault hit. */
  targets: string[];
  /** Unix ms when it was injected / healed (healed: undefined for a kill). */
  injectedAt?: number;
  healedAt?: number;
  /** First normal view after the fault, ms after it (leader faults). */
  recoveryMs?: number;
  /** How the fault was made when not as described (e.g. reordering in the replicas). */
  note?: string;
  problem?: string;
  /** random: the seed of this trial's schedule. */
  seed?: number;
  /** kill-restart and random: the schedule as planned (replays exactly from the seed). */
  schedule?: ScheduledFault[];
  /** kill-restart and random: what each planned fault did. */
  actions?: ActionRecord[];
  /** forge: what was sent and what the replicas counted as dropped. */
  forge?: ForgeRecord;
}

/** The forge sender's lies (native/src/forge.c), by kind, as its JSON line names them. */
export const FORGE_LIES = ['ack-beyond', 'spoofed', 'other-index', 'view-jump', 'bad-entries', 'not-leader'] as const;

/** The replicas' exit counters (src/core/logline.ts exitStats) that count a forged datagram as dropped. */
export const FORGE_DROP_COUNTERS = ['malformed', 'spoofed', 'acks beyond the log', 'view claims refused', 'view changes not joined (leader alive)', 'leader-only messages from another replica'] as const;

export interface ForgeRecord {
  /** The view and leader the lies were made for. */
  view: number;
  leader: number;
  sent: number;
  sentByLie: Record<string, number>;
  sendErrors: number;
  /** Summed over the replicas' exit lines; undefined until they exited. */
  dropped?: number;
  droppedBy?: Record<string, number>;
  /** Replicas without an exit line (killed, crashed): their drops are not in `dropped`. */
  uncounted?: string[];
}

/** The forge sender's JSON line (`{"forge":{"sent":N,...}}`) -> the sent half of a ForgeRecord; undefined if absent. */
export function parseForgeOutput(stdout: string): Omit<ForgeRecord, 'dropped' | 'droppedBy' | 'uncounted'> | undefined {
  for (const line of stdout.split('\n').reverse()) {
    if (!line.startsWith('{"forge":')) continue;
    try {
      const o = (JSON.parse(line) as { forge: Record<string, number> }).forge;
      const sentByLie: Record<string, number> = {};
      for (const k of FORGE_LIES) sentByLie[k] = o[k] ?? 0;
      return { view: o.view ?? 0, leader: o.leader ?? 0, sent: o.sent ?? 0, sentByLie, sendErrors: o.errors ?? 0 };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Sums the drop counters of every replica's exit line (`stats` by node name; undefined: no exit line). */
export function forgeDrops(stats: Record<string, Record<string, number> | undefined>): Pick<ForgeRecord, 'dropped' | 'droppedBy' | 'uncounted'> {
  const droppedBy: Record<string, number> = {};
  const uncounted: string[] = [];
  for (const [node, st] of Object.entries(stats)) {
    if (!st) {
      uncounted.push(node);
      continue;
    }
    for (const k of FORGE_DROP_COUNTERS) droppedBy[k] = (droppedBy[k] ?? 0) + (st[k] ?? 0);
  }
  const dropped = Object.values(droppedBy).reduce((a, b) => a + b, 0);
  return { dropped, droppedBy, ...(uncounted.length ? { uncounted } : {}) };
}

/** The highest normal view in the replicas' logs (0 before any). */
export function highestView(logs: string[]): number {
  return Math.max(0, ...logs.flatMap(normalViews).map((v) => v.view));
}

/** One scheduled fault as it happened. */
export interface ActionRecord {
  seq: number;
  kind: string;
  node?: string;
  /** Unix ms. */
  injectedAt?: number;
  /** Healed, resumed, reconnected; or (kill, kill-restart) started again. */
  endedAt?: number;
  /** kill, kill-restart: when the restarted replica's log first said `view V normal`, and how long after its restart. */
  recoveredAt?: number;
  recoveryMs?: number;
  /** Not carried out (the f-limit, or the client finished first), and why. */
  skipped?: string;
  problem?: string;
}
