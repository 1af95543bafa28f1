/**
 * The provider interface (containerlab's runtimes): a provider EXECUTES a
 * plan; it never invents an address, MAC, port or count. Provider is what
 * every provider does (15 members); optional abilities are separate small
 * interfaces (FaultAbility, PrepareAbility, AdoptAbility...).
 */
import { Diagnostic } from '../core/diagnostics.js';
import { LabPaths } from '../edges/paths.js';
import { Plan, PlanNode } from '../core/plan.js';
import { ProviderName } from '../core/spec.js';
import { RunOptions, RunResult, Runner } from '../edges/runner.js';
import type { ProcessRecord } from '../edges/state.js';
import type { CoreFile } from '../edges/crash.js';

import type { Progress } from '../edges/progress.js';
export type { Progress } from '../edges/progress.js';

export interface ProviderContext {
  runner: Runner;
  paths: LabPaths;
  progress: Progress;
  /** The CLI's one cancellation signal (Ctrl-C, SIGTERM): long steps stop at the next step boundary. */
  signal?: AbortSignal;
}

export type { ProcessRecord } from '../edges/state.js';

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

/** A link impairment, as tc netem takes it. */
export interface Netem {
  lossPercent?: number;
  duplicatePercent?: number;
  /** Reorder this share of packets (they overtake a 1 ms delay the others get). */
  reorderPercent?: number;
}

/**
 * Faults a bench nemesis injects (an optional ability: FaultAbility).
 * Every action goes through ctx.runner, so it lands in the run's commands.log.
 */
export interface NodeFaults {
  /** Sends a signal to a process the lab started (SIGKILL, SIGSTOP, SIGCONT). */
  signal(plan: Plan, rec: ProcessRecord, sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT', ctx: ProviderContext): Promise<void>;
  /** Cuts a node off the lab network (on = true) or puts it back. */
  isolate(plan: Plan, node: PlanNode, on: boolean, ctx: ProviderContext): Promise<void>;
  /** Impairs a node's lab link (undefined removes it). */
  netem(plan: Plan, node: PlanNode, spec: Netem | undefined, ctx: ProviderContext): Promise<void>;
  /** Whether netem() can reorder here (it needs the kernel's sch_netem); else the replicas reorder what they receive. */
  canReorder(plan: Plan, ctx: ProviderContext): Promise<boolean>;
  /** Splits the lab network into groups that hear only themselves (undefined heals); absent = not possible here. */
  split?(plan: Plan, groups: PlanNode[][] | undefined, ctx: ProviderContext): Promise<void>;
}

/** `tc qdisc ... netem` arguments for an impairment. */
export function netemArgs(spec: Netem): string[] {
  const a: string[] = [];
  if (spec.reorderPercent) a.push('delay', '1ms', 'reorder', `${100 - spec.reorderPercent}%`);
  if (spec.lossPercent) a.push('loss', `${spec.lossPercent}%`);
  if (spec.duplicatePercent) a.push('duplicate', `${spec.duplicatePercent}%`);
  return a;
}

/** A core a crashed process left, and what gdb said where the binary lives (inside a VM). */
export interface FoundCore {
  core?: CoreFile;
  backtraceText?: string;
  coreNote?: string;
}

/** A node whose running kernel is not the one the lab pins. */
export interface KernelDrift {
  node: string;
  expected: string;
  actual: string;
}

/**
 * Optional abilities, each a small interface of its own: a provider class
 * implements the ones it has (`implements Provider, FaultAbility, ...`).
 * Only src/providers/lab.ts asks for them (`has`), and gives the default
 * (what a node on this host's kernel does) where a provider has none, so
 * code above src/providers/ never asks which provider it has.
 */

/** Fault injection for the bench's nemesis. Default: none (a nemesis is refused up front). */
export interface FaultAbility {
  readonly faults: NodeFaults;
}

/**
 * After probe, before the plan is saved: brings what the nodes need on this
 * host (VMs: the base box, the libvirt daemons) and says what it chose and
 * why. Returns the plan, changed when another base box had to stand in.
 * Throws before creating anything when it cannot. Default: the plan as it is.
 */
export interface PrepareAbility {
  prepare(plan: Plan, ctx: ProviderContext): Promise<Plan>;
}

/**
 * Before the plan is saved: a provider whose nodes exist already replaces
 * what plan.ts invented (addresses, MACs, NICs) by what the machines are.
 * Throws DiagnosticsError listing every problem. Default: the plan as it is.
 */
export interface AdoptAbility {
  adoptPlan(plan: Plan, ctx: ProviderContext): Promise<Plan>;
}

/** How el-loader names the node's lab NIC. Default: by name (`--ifname <node.ifname>`). */
export interface NicNamingAbility {
  nicArgs(plan: Plan, node: PlanNode): string[];
}

/** What a replica's NIC needs around el-loader (netns: the switch-side XDP pass XDP_TX needs). Default: nothing. */
export interface AttachHooksAbility {
  afterAttach(plan: Plan, node: PlanNode, ctx: ProviderContext, hook: 'xdp' | 'tc'): Promise<void>;
  afterDetach(plan: Plan, node: PlanNode, ctx: ProviderContext): Promise<void>;
}

/**
 * Cores on nodes with kernels of their own. Default: this host's core_pattern
 * (set by the bench), the core in this host's cores folder `hostCoresDir`.
 */
export interface CoresAbility {
  /** Before a bench starts processes: where the nodes' kernels write cores (VMs: their own core_pattern). */
  prepareCores(plan: Plan, ctx: ProviderContext): Promise<void>;
  /** After the bench: what prepareCores changed on machines that are not the lab's own (hosts: their core_pattern back). */
  restoreCores(plan: Plan, ctx: ProviderContext): Promise<void>;
  /** A process that died on `node`: its core (copied to this host) and, when gdb must run on the node, its output. */
  findCore(plan: Plan, node: PlanNode, rec: ProcessRecord, binary: string, ctx: ProviderContext, hostCoresDir: string): Promise<FoundCore>;
}

/** Nodes whose kernel drifted from the lab's pin (a bench refuses to measure them). Default: none. */
export interface KernelPinAbility {
  kernelDrift(plan: Plan, ctx: ProviderContext): Promise<KernelDrift[]>;
}

/** An interactive login shell on the node (the terminal is handed over); returns its exit status. Default: none (`exec <node> -- bash`). */
export interface ShellAbility {
  shell(plan: Plan, node: PlanNode, ctx: ProviderContext, env: NodeJS.ProcessEnv): number;
}

/**
 * A node's own mount namespace beside its network one (netns: what the
 * user's upstream tree needs, a bpffs per node). The provider removes them
 * in `down`. Default: none (upstream trees run on netns labs only).
 */
export interface NodeMountsAbility {
  readonly nodeMounts: NodeMounts;
}

/** What NodeMountsAbility does. */
export interface NodeMounts {
  /** (Re)creates the nodes' mount namespaces, running `script` in each; `dirs` are host folders it binds, created first. */
  createNodeMounts(plan: Plan, nodes: PlanNode[], script: string, dirs: string[], ctx: ProviderContext): Promise<void>;
  /** Removes every node mount namespace of the lab (idempotent). */
  destroyNodeMounts(plan: Plan, ctx: ProviderContext): Promise<void>;
  /** argv that runs `argv` inside the node's mount namespace (for exec/spawn on that node, or this host's runner). */
  inNodeMounts(plan: Plan, node: PlanNode, argv: string[], cwd?: string): string[];
  hasNodeMounts(plan: Plan, node: PlanNode): boolean;
}

/** Every ability by the name `has` asks with, and the member that tells it is there. */
export interface Abilities {
  faults: FaultAbility;
  prepare: PrepareAbility;
  adopt: AdoptAbility;
  nicNaming: NicNamingAbility;
  attachHooks: AttachHooksAbility;
  cores: CoresAbility;
  kernelPin: KernelPinAbility;
  shell: ShellAbility;
  nodeMounts: NodeMountsAbility;
}

const ABILITY_MEMBER: { [K in keyof Abilities]: keyof Abilities[K] } = {
  faults: 'faults',
  prepare: 'prepare',
  adopt: 'adoptPlan',
  nicNaming: 'nicArgs',
  attachHooks: 'afterAttach',
  cores: 'prepareCores',
  kernelPin: 'kernelDrift',
  shell: 'shell',
  nodeMounts: 'nodeMounts',
};

/** Whether the provider has an ability (for src/providers/ only: lab.ts gives the defaults). */
export function has<K extends keyof Abilities>(provider: Provider, ability: K): provider is Provider & Abilities[K] {
  return (provider as unknown as Record<string, unknown>)[ABILITY_MEMBER[ability] as string] !== undefined;
}

/** What every provider does. */
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
  /**
   * True when every node runs on THIS host's kernel (one /proc/stat, one
   * perf for the whole lab); false when each node has its own (VMs, hosts).
   */
  readonly sharedKernel: boolean;
  /**
   * Where `attach` puts the ingress fast paths by default: 'xdp' on real and
   * virtio NICs (native XDP sees the driver's buffers), 'tc' on veth.
   */
  readonly ingressHook: 'xdp' | 'tc';
  /** Stops a process this lab started (SIGTERM, then SIGKILL after a grace period). */
  stop(plan: Plan, rec: ProcessRecord, ctx: ProviderContext): Promise<void>;
  status(plan: Plan, ctx: ProviderContext): Promise<NodeStatus[]>;
  /** The node's state into destDir (a crash folder's node/): links, addresses, TC filters and, for a node with its own kernel, its kernel log. Process logs travel with copyOut. */
  collect(plan: Plan, node: PlanNode, destDir: string, ctx: ProviderContext): Promise<void>;
  /**
   * Copies a file from the node to this host (at most `maxBytes`, its tail).
   * False when the node has no such file. On a netns node the file is this
   * host's already: it is copied when the paths differ.
   */
  copyOut(plan: Plan, node: PlanNode, remote: string, local: string, ctx: ProviderContext, maxBytes?: number): Promise<boolean>;
}
