/**
 * The shapes a bench run stores (results.json) and the summaries computed
 * from them. Plain data: everything here is JSON round-trippable.
 */
import type { CrashInfo } from '../edges/crash.js';
import { fastPathFlags } from '../core/argv.js';
import type { NemesisRecord, NemesisSpec } from './nemesis.js';
import type { SafetyRecord } from './safety.js';
import type { CpuRecord } from './cpu.js';
import type { ProfileRecord } from './profiling.js';
import type { RssRecord } from './rss.js';

export const ARM_NAMES = ['baseline', 'broadcast', 'quorum', 'reply', 'all', 'floor', 'relay-floor'] as const;
export type ArmName = (typeof ARM_NAMES)[number];

/** What one arm switches on: loader flags and the matching replica flags. */
export interface ArmDef {
  name: ArmName;
  broadcast: boolean;
  quorum: boolean;
  reply: boolean;
  /** A floor: no protocol and `client --echo` (no history, no nemesis). */
  floor?: boolean;
  /**
   * The relay floor: every replica runs `replica --relay-floor`; replica 0 sends
   * each request to the others and answers the client once f sent it back, with
   * the replica's own I/O loop (VR's critical path and quorum wait, no protocol).
   * Without it a floor is the echo: one round trip to `echo` on replica 0's address.
   */
  relay?: boolean;
}

export const ARMS: Record<ArmName, ArmDef> = {
  floor: { name: 'floor', broadcast: false, quorum: false, reply: false, floor: true },
  'relay-floor': { name: 'relay-floor', broadcast: false, quorum: false, reply: false, floor: true, relay: true },
  baseline: { name: 'baseline', broadcast: false, quorum: false, reply: false },
  broadcast: { name: 'broadcast', broadcast: true, quorum: false, reply: false },
  quorum: { name: 'quorum', broadcast: false, quorum: true, reply: false },
  reply: { name: 'reply', broadcast: false, quorum: false, reply: true },
  all: { name: 'all', broadcast: true, quorum: true, reply: true },
};

/** The arms that measure the network, not the protocol (no history, no nemesis, no speedup). */
export function isFloorArm(name: string): boolean {
  return name === 'floor' || name === 'relay-floor';
}

export function armUsesBpf(arm: ArmDef): boolean {
  return arm.broadcast || arm.quorum || arm.reply;
}

/** The replica flags of an arm (the contract in native/'s CLI). */
export function armReplicaFlags(arm: Pick<ArmDef, 'broadcast' | 'quorum' | 'reply'>): string[] {
  return fastPathFlags(arm);
}

export interface LatencyUs {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999?: number;
  max?: number;
  mean?: number;
}

/** The client's machine line (last line of its stdout), or what we could salvage. */
export interface ClientResult {
  requests: number;
  completed: number;
  errors: number;
  timeouts: number;
  threads: number;
  warmup_s: number;
  duration_s: number;
  throughput_ops: number;
  latency_us: LatencyUs;
  /** Requests completed during the warm-up (clients since the -n fix). */
  warmup_completed?: number;
  /** The client process's CPU time (user + system, all threads) and context switches over its whole run. */
  cpu_us?: number;
  ctx_switches?: number;
  /** Where the measured window lies: on the monotonic clock (one per kernel) and on the wall clock, seconds. */
  window?: { monoStartS: number; monoEndS: number; realStartS: number };
  /** Measured completions per bucket since the warm-up ended. */
  timeline?: { bucketMs: number; completed: number[] };
  /** Measured latencies as [bucket us, count], ascending (native/src/client.c hist_bucket). */
  hist?: [number, number][];
}

/** One client node's own figures in a trial that several drove (results.json). */
export interface ClientFigures {
  node: string;
  completed: number;
  errors: number;
  timeouts: number;
  throughput_ops: number;
  p50: number;
  p99: number;
  /** When its measured window began, after the first client's (ms). */
  startOffsetMs?: number;
}

/** One lab size as environment.json keys it and the report names it: `7`, or `7+2c` with several client nodes. */
export function labSize(replicas: number, clients = 1): string {
  return clients > 1 ? `${replicas}+${clients}c` : String(replicas);
}

/** One cell of the schedule: replica count x arm x threads x repeat. */
export interface Trial {
  /** Position in the run order (0-based). */
  seq: number;
  replicas: number;
  arm: ArmName;
  threads: number;
  repeat: number;
  /** The nemesis of this trial, by name (`none` when there is none). */
  nemesis: string;
  /** bench --impl: which implementation this trial runs (absent = ours). */
  impl?: Impl;
  /** bench --clients: how many client nodes drive load (absent = 1). */
  clients?: number;
}

export type { CrashInfo } from '../edges/crash.js';

export type TrialStatus = 'ok' | 'crashed' | 'failed';

export interface TrialRecord extends Trial {
  status: TrialStatus;
  crashed: boolean;
  startedAt: string;
  wallMs: number;
  requests: number;
  completed: number;
  errors: number;
  timeouts: number;
  duration_s: number;
  throughput_ops: number | null;
  latency_us: LatencyUs | null;
  /** True when the client's JSON line was missing and figures came from the human summary. */
  partial?: boolean;
  clientExitCode: number | null;
  /**
   * Several client nodes (--clients K > 1): each one's figures; the trial's
   * throughput is then over the window all of them measured in, its latency
   * from their histograms added up (src/bench/clients.ts).
   */
  perClient?: ClientFigures[];
  /** How the common window was found: 'monotonic' (one kernel, exact) or 'wall' (separate machines' clocks). */
  clientClock?: 'monotonic' | 'wall';
  crashes: CrashInfo[];
  error?: string;
  /** Requests that completed during the warm-up (not measured). */
  warmupCompleted?: number;
  /** What the nemesis did (absent for `none`). */
  fault?: NemesisRecord;
  /** Linearizability of the history and durability of acknowledged requests. */
  safety?: SafetyRecord;
  /** CPU time per committed op, whole lab and per role (src/bench/cpu.ts). */
  cpu?: CpuRecord;
  /** bench --profile: the arm's flame graph and folded stacks (files relative to the run root). */
  profile?: ProfileRecord;
  /** bench --soak / --rss-sample-ms: every replica's VmRSS over the trial and the growth verdict. */
  rss?: RssRecord;
  /** bench --unsafe-no-recovery: the lab build with recovery switched off (a negative control, never a result). */
  unsafeNoRecovery?: boolean;
  /** Which implementation ran: ours (native/, the default when absent) or the user's upstream Electrode tree. */
  impl?: Impl;
  /** impl upstream: which tree, commit and patch this row is. */
  upstream?: UpstreamRowInfo;
}

export const IMPLS = ['ours', 'upstream'] as const;
export type Impl = (typeof IMPLS)[number];

export interface UpstreamRowInfo {
  tree: string;
  /** git commit of the user's tree, when it is a git work tree. */
  commit?: string;
  dirty?: boolean;
  /** sha256 of the copied tree (names it when there is no commit). */
  digest: string;
  /** The variant folder: `<arm>` (generated values) or `scenario-<arm>` (the scenario's files as they are). */
  variant: string;
  /** The patch applied to the copy, against the user's tree (also in the run folder). */
  patch: string;
  /** The UDP ports the replicas bound, by index. */
  ports?: number[];
  note?: string;
}

export interface BenchOptions {
  lab: string;
  replicas: number[];
  /** Client node counts (`--clients`), each a lab size like the replica counts; absent = [1]. */
  clients?: number[];
  arms: ArmName[];
  threads: number[];
  repeat: number;
  requests?: number;
  duration?: number;
  warmup: number;
  stopOnCrash: boolean;
  keepLab: boolean;
  /** Replica flags added to every replica (e.g. --crash-after for tests). */
  replicaArgs?: string[];
  /** Extra replica flags for one replica index only: "<index>:<flags>". */
  replicaArgsFor?: Record<string, string[]>;
  timeoutMs: number;
  /** One trial per nemesis for every other combination (default: none). */
  nemesis?: NemesisSpec[];
  /** Record histories and committed logs and check them (default on). */
  check?: boolean;
  /** Record a whole-system profile (perf) for one trial per replica count x arm. */
  profile?: boolean;
  /** Where the ingress fast paths run (default auto: the provider's choice). */
  hook?: 'auto' | 'xdp' | 'tc';
  /** Implementations to compare (default ours only); upstream needs electrodeTree or a lab up with one. */
  impls?: Impl[];
  /** The user's upstream Electrode tree (bench --electrode-tree). */
  electrodeTree?: string;
  /** kill-restart and random schedules: ms from a kill to the restart (default 100). */
  restartDelayMs?: number;
  /** Sample every replica's VmRSS this often and fail a trial whose replicas grew (bench --soak, --rss-sample-ms). */
  rssSampleMs?: number;
  /** UNSAFE, lab only: run native/build/lab/replica with --lab-no-recovery (the negative control of the recovery checks). */
  unsafeNoRecovery?: boolean;
}

export interface SkippedArm {
  arm: ArmName;
  reason: string;
}

export interface ResultsFile {
  kind: 'electrode-lab-bench-results';
  version: 1;
  id: string;
  lab: string;
  createdAt: string;
  finishedAt?: string;
  /** complete, interrupted (SIGINT/SIGTERM), stopped (--stop-on-crash) or failed. */
  outcome: 'running' | 'complete' | 'interrupted' | 'stopped' | 'failed';
  error?: string;
  options: BenchOptions;
  skipped: SkippedArm[];
  records: TrialRecord[];
  /** Trials whose history was not linearizable, lost acknowledged requests, or diverged. */
  unsafe?: number;
}
