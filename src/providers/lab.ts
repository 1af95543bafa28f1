/**
 * The seam between generic code and the providers: a provider opens a lab
 * (its plan, on this machine's runner) and hands out nodes. A node can run a
 * command, start a process, say whether it is alive and whether a UDP port
 * is bound, stop it, copy a file out, and take a fault (kill, pause, isolate,
 * impair). What differs per provider is an ability (provider.ts: FaultAbility,
 * CoresAbility, AttachHooksAbility...) with a default here, so code above
 * src/providers/ never asks which provider it has nor holds the provider.
 */
import { LabError } from '../core/diagnostics.js';
import { waitForCore } from '../edges/crash.js';
import { Plan, PlanNode, clients, replicas } from '../core/plan.js';
import { RunOptions, RunResult, Runner } from '../edges/runner.js';
import type { ProcessRecord } from '../edges/state.js';
import { FoundCore, KernelDrift, Netem, NodeFaults, NodeStatus, Provider, ProviderContext, has } from './provider.js';

export class LabNode {
  constructor(
    readonly lab: OpenLab,
    readonly spec: PlanNode,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  private get p(): Provider {
    return this.lab.provider;
  }

  exec(argv: string[], opts?: RunOptions): Promise<RunResult> {
    return this.p.exec(this.lab.plan, this.spec, argv, this.lab.ctx, opts);
  }

  spawn(name: string, argv: string[]): Promise<ProcessRecord> {
    return this.p.spawn(this.lab.plan, this.spec, name, argv, this.lab.ctx);
  }

  alive(rec: ProcessRecord): Promise<boolean> {
    return this.p.alive(this.lab.plan, rec, this.lab.ctx);
  }

  udpBound(port: number, rec: ProcessRecord): Promise<boolean> {
    return this.p.udpBound(this.lab.plan, this.spec, port, rec, this.lab.ctx);
  }

  stop(rec: ProcessRecord): Promise<void> {
    return this.p.stop(this.lab.plan, rec, this.lab.ctx);
  }

  copyOut(remote: string, local: string, maxBytes?: number): Promise<boolean> {
    return this.p.copyOut(this.lab.plan, this.spec, remote, local, this.lab.ctx, maxBytes);
  }

  /** Node state for a crash folder or a report (logs, links, TC filters...). */
  collect(destDir: string): Promise<void> {
    return this.p.collect(this.lab.plan, this.spec, destDir, this.lab.ctx);
  }

  /** How el-loader names this node's lab NIC. */
  nicArgs(): string[] {
    const p = this.p;
    return has(p, 'nicNaming') ? p.nicArgs(this.lab.plan, this.spec) : ['--ifname', this.spec.ifname];
  }

  afterAttach(hook: 'xdp' | 'tc'): Promise<void> {
    const p = this.p;
    return has(p, 'attachHooks') ? p.afterAttach(this.lab.plan, this.spec, this.lab.ctx, hook) : Promise.resolve();
  }

  afterDetach(): Promise<void> {
    const p = this.p;
    return has(p, 'attachHooks') ? p.afterDetach(this.lab.plan, this.spec, this.lab.ctx) : Promise.resolve();
  }

  /** The core of a process that died here, copied to this host when the node is elsewhere. */
  findCore(rec: ProcessRecord, binary: string, hostCoresDir: string): Promise<FoundCore> {
    const p = this.p;
    if (has(p, 'cores')) return p.findCore(this.lab.plan, this.spec, rec, binary, this.lab.ctx, hostCoresDir);
    return waitForCore(hostCoresDir, rec.pid, 3000).then((core) => (core ? { core } : {}));
  }

  /** argv that runs `argv` in this node's own mount namespace (NodeMountsAbility; netns only). */
  inOwnMounts(argv: string[], cwd?: string): string[] {
    const p = this.p;
    if (!has(p, 'nodeMounts')) throw new LabError(`the ${p.name} provider gives nodes no mount namespace of their own`, 'LAB_NO_NODE_MOUNTS');
    return p.nodeMounts.inNodeMounts(this.lab.plan, this.spec, argv, cwd);
  }

  /** Whether this node has a mount namespace of its own now. */
  hasOwnMounts(): boolean {
    const p = this.p;
    return has(p, 'nodeMounts') && p.nodeMounts.hasNodeMounts(this.lab.plan, this.spec);
  }

  // --- faults (the bench's nemesis): a provider without them throws LAB_NO_FAULTS

  /** SIGKILL a process this lab started on this node. */
  kill(rec: ProcessRecord): Promise<void> {
    return this.lab.faults().signal(this.lab.plan, rec, 'SIGKILL', this.lab.ctx);
  }

  /** SIGSTOP a process this lab started on this node. */
  pause(rec: ProcessRecord): Promise<void> {
    return this.lab.faults().signal(this.lab.plan, rec, 'SIGSTOP', this.lab.ctx);
  }

  /** SIGCONT what pause stopped. */
  resume(rec: ProcessRecord): Promise<void> {
    return this.lab.faults().signal(this.lab.plan, rec, 'SIGCONT', this.lab.ctx);
  }

  /** Cuts this node off the lab network. */
  isolate(): Promise<void> {
    return this.lab.faults().isolate(this.lab.plan, this.spec, true, this.lab.ctx);
  }

  /** Puts an isolated node back on the lab network. */
  heal(): Promise<void> {
    return this.lab.faults().isolate(this.lab.plan, this.spec, false, this.lab.ctx);
  }

  /** Impairs this node's lab link (undefined removes the impairment). */
  impair(spec: Netem | undefined): Promise<void> {
    return this.lab.faults().netem(this.lab.plan, this.spec, spec, this.lab.ctx);
  }
}

export class OpenLab {
  private readonly byName = new Map<string, LabNode>();
  constructor(
    /** Only src/providers/ reaches through this; everything else asks the lab or its nodes. */
    readonly provider: Provider,
    readonly plan: Plan,
    readonly ctx: ProviderContext,
  ) {
    for (const n of plan.nodes) this.byName.set(n.name, new LabNode(this, n));
  }

  get paths() {
    return this.ctx.paths;
  }

  get runner(): Runner {
    return this.ctx.runner;
  }

  get progress() {
    return this.ctx.progress;
  }

  /** The provider's name, for messages. */
  get providerName(): string {
    return this.provider.name;
  }

  /** How long a started replica may take to bind its port. */
  get startTimeoutMs(): number {
    return this.provider.startTimeoutMs;
  }

  /** True when every node runs on this host's kernel (one /proc/stat, one perf). */
  get sharedKernel(): boolean {
    return this.provider.sharedKernel;
  }

  /** Where `attach` puts the ingress fast paths by default. */
  get ingressHook(): 'xdp' | 'tc' {
    return this.provider.ingressHook ?? 'xdp';
  }

  node(which: string | PlanNode): LabNode {
    const name = typeof which === 'string' ? which : which.name;
    const n = this.byName.get(name);
    if (!n) throw new Error(`lab '${this.plan.lab}' has no node ${name}`);
    return n;
  }

  nodes(): LabNode[] {
    return this.plan.nodes.map((n) => this.node(n));
  }

  replicas(): LabNode[] {
    return replicas(this.plan).map((n) => this.node(n));
  }

  clients(): LabNode[] {
    return clients(this.plan).map((n) => this.node(n));
  }

  /** The node a recorded process runs on. */
  nodeOf(rec: ProcessRecord): LabNode {
    return this.node(rec.node);
  }

  status(): Promise<NodeStatus[]> {
    return this.provider.status(this.plan, this.ctx);
  }

  /** Removes the lab's nodes and network (idempotent). */
  down(): Promise<void> {
    return this.provider.down(this.plan, this.ctx);
  }

  prepareCores(): Promise<void> {
    const p = this.provider;
    return has(p, 'cores') ? p.prepareCores(this.plan, this.ctx) : Promise.resolve();
  }

  restoreCores(): Promise<void> {
    const p = this.provider;
    return has(p, 'cores') ? p.restoreCores(this.plan, this.ctx) : Promise.resolve();
  }

  kernelDrift(): Promise<KernelDrift[]> {
    const p = this.provider;
    return has(p, 'kernelPin') ? p.kernelDrift(this.plan, this.ctx) : Promise.resolve([]);
  }

  /** Whether nodes have an interactive login shell (VMs); elsewhere `exec <node> -- bash`. */
  get canShell(): boolean {
    return has(this.provider, 'shell');
  }

  /** An interactive login shell on the node (the terminal is handed over); its exit status. */
  shell(node: LabNode, env: NodeJS.ProcessEnv): number {
    const p = this.provider;
    if (!has(p, 'shell')) throw new LabError(`the ${p.name} provider has no login shell; use \`electrode-lab exec ${node.name} -- bash\``, 'NOT_A_VM_LAB');
    return p.shell(this.plan, node.spec, this.ctx, env);
  }

  /** (Re)creates the nodes' own mount namespaces, running `script` in each (NodeMountsAbility; netns only). */
  createNodeMounts(nodes: LabNode[], script: string, dirs: string[] = []): Promise<void> {
    const p = this.provider;
    if (!has(p, 'nodeMounts')) throw new LabError(`the ${p.name} provider gives nodes no mount namespace of their own`, 'LAB_NO_NODE_MOUNTS');
    return p.nodeMounts.createNodeMounts(this.plan, nodes.map((n) => n.spec), script, dirs, this.ctx);
  }

  /** Removes the nodes' own mount namespaces (nothing where the provider has none). */
  destroyNodeMounts(): Promise<void> {
    const p = this.provider;
    return has(p, 'nodeMounts') ? p.nodeMounts.destroyNodeMounts(this.plan, this.ctx) : Promise.resolve();
  }

  // --- faults

  /** Whether this lab's nodes take faults (LabNode.kill, pause, isolate, impair). */
  get canFault(): boolean {
    return abilitiesOf(this.provider).canFault;
  }

  /** Whether split() can regroup the lab network. */
  get canSplit(): boolean {
    return abilitiesOf(this.provider).canSplit;
  }

  /** Whether impair() can reorder here (sch_netem); false where faults are not possible or the question fails. */
  async canReorder(): Promise<boolean> {
    const p = this.provider;
    if (!has(p, 'faults')) return false;
    return p.faults.canReorder(this.plan, this.ctx).catch(() => false);
  }

  /** Splits the lab network into groups that hear only themselves; undefined heals. */
  split(groups: LabNode[][] | undefined): Promise<void> {
    const f = this.faults();
    if (!f.split) throw new LabError(`the ${this.provider.name} provider cannot split the lab network`, 'LAB_NO_SPLIT');
    return f.split(this.plan, groups?.map((g) => g.map((n) => n.spec)), this.ctx);
  }

  /** The provider's fault ability, or a clear error where it has none. */
  faults(): NodeFaults {
    const p = this.provider;
    if (!has(p, 'faults')) throw new LabError(`the ${p.name} provider cannot inject faults`, 'LAB_NO_FAULTS');
    return p.faults;
  }
}

/** What a provider's labs can do, asked before any lab is open (a bench refuses a nemesis up front). */
export interface LabAbilities {
  providerName: string;
  /** Nodes take faults: kill, pause/resume, isolate/heal, impair. */
  canFault: boolean;
  /** The lab network can be split into groups. */
  canSplit: boolean;
  /** Every node runs on this host's kernel. */
  sharedKernel: boolean;
}

export function abilitiesOf(provider: Provider): LabAbilities {
  const canFault = has(provider, 'faults');
  return { providerName: provider.name, canFault, canSplit: canFault && provider.faults.split !== undefined, sharedKernel: provider.sharedKernel };
}

export function openLab(provider: Provider, plan: Plan, ctx: ProviderContext): OpenLab {
  return new OpenLab(provider, plan, ctx);
}
