/**
 * The provider interface (containerlab's runtimes): a provider EXECUTES a
 * plan; it never invents an address, MAC, port or count. Keep it small;
 * optional abilities go into separate interfaces.
 */
import { Diagnostic } from '../diagnostics.js';
import { LabPaths } from '../paths.js';
import { Plan, PlanNode } from '../plan.js';
import { ProviderName } from '../spec.js';
import { RunOptions, RunResult, Runner } from '../runner.js';

/** Progress reporting for long steps (ora in a terminal, plain lines otherwise). */
export interface Progress {
  step<T>(title: string, fn: () => Promise<T>): Promise<T>;
  info(line: string): void;
  warn(line: string): void;
}

export interface ProviderContext {
  runner: Runner;
  paths: LabPaths;
  progress: Progress;
}

/** A process the lab started on a node, as saved in its pid file. */
export interface ProcessRecord {
  node: string;
  name: string;
  pid: number;
  argv: string[];
  logFile: string;
  /** /proc/<pid>/stat field 22, to tell our process from a recycled PID. */
  startTime?: string;
}

export interface NodeStatus {
  node: string;
  role: string;
  ip: string;
  mac: string;
  port: number;
  /** up = the node (namespace / VM) exists and is reachable. */
  state: 'up' | 'down' | 'unknown';
  processes: { name: string; pid: number; alive: boolean }[];
  /** Attached eBPF programs, e.g. `xdp(native) el_xdp_dispatch`, `tc egress el_tc_egress`. */
  bpf: string[];
  /** VM labs: the guest's running kernel (`uname -r`), read when status asks. */
  kernel?: string;
  detail?: string;
}

export interface Provider {
  readonly name: ProviderName;
  /** Preconditions (root, tools with their Debian packages). Returns all problems found. */
  probe(ctx: ProviderContext): Promise<Diagnostic[]>;
  up(plan: Plan, ctx: ProviderContext): Promise<void>;
  /** Idempotent; removes what a crashed run left behind too. */
  down(plan: Plan, ctx: ProviderContext): Promise<void>;
  /** Runs a command inside a node and waits for it. */
  exec(plan: Plan, node: PlanNode, argv: string[], ctx: ProviderContext, opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-running process inside a node, output to the node's log file. */
  spawn(plan: Plan, node: PlanNode, name: string, argv: string[], ctx: ProviderContext): Promise<ProcessRecord>;
  /** True while the process is running on its node and is still the one we started (not a zombie, not a recycled PID). */
  alive(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<boolean>;
  /** True when a UDP socket is bound to `port` on the node (the network namespace or VM the process runs in). */
  udpBound(plan: Plan, node: PlanNode, port: number, rec: ProcessRecord, ctx: ProviderContext): Promise<boolean>;
  /** How long a started replica may take to bind its port (a VM under software emulation needs far longer). */
  readonly startTimeoutMs: number;
  /** Stops a process this lab started (SIGTERM, then SIGKILL after a grace period). */
  stop(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<void>;
  status(plan: Plan, ctx: ProviderContext): Promise<NodeStatus[]>;
  /** Copies a node's logs, dmesg and similar into destDir (crash capture, bench). */
  collect(plan: Plan, node: PlanNode, destDir: string, ctx: ProviderContext): Promise<void>;
}
