/**
 * The seam between generic code and the providers: a provider opens a lab
 * (its plan, on this machine's runner) and hands out nodes. A node can run a
 * command, start a process, say whether it is alive and whether a UDP port
 * is bound, stop it, and copy a file out. What differs per provider is a
 * hook (ProviderHooks) with a default here, so code above this file never
 * asks which provider it has.
 */
import { waitForCore } from '../crash.js';
import { Plan, PlanNode, clients, replicas } from '../plan.js';
import { RunOptions, RunResult } from '../runner.js';
import type { ProcessRecord } from '../state.js';
import { FoundCore, KernelDrift, Provider, ProviderContext } from './provider.js';

export class LabNode {
  constructor(
    readonly lab: OpenLab,
    readonly spec: PlanNode,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  exec(argv: string[], opts?: RunOptions): Promise<RunResult> {
    return this.lab.provider.exec(this.lab.plan, this.spec, argv, this.lab.ctx, opts);
  }

  spawn(name: string, argv: string[]): Promise<ProcessRecord> {
    return this.lab.provider.spawn(this.lab.plan, this.spec, name, argv, this.lab.ctx);
  }

  alive(rec: ProcessRecord): Promise<boolean> {
    return this.lab.provider.alive(this.lab.plan, rec, this.lab.ctx);
  }

  udpBound(port: number, rec: ProcessRecord): Promise<boolean> {
    return this.lab.provider.udpBound(this.lab.plan, this.spec, port, rec, this.lab.ctx);
  }

  stop(rec: ProcessRecord): Promise<void> {
    return this.lab.provider.stop(this.lab.plan, rec, this.lab.ctx);
  }

  copyOut(remote: string, local: string, maxBytes?: number): Promise<boolean> {
    return this.lab.provider.copyOut(this.lab.plan, this.spec, remote, local, this.lab.ctx, maxBytes);
  }

  /** Node state for a crash folder or a report (logs, links, TC filters...). */
  collect(destDir: string): Promise<void> {
    return this.lab.provider.collect(this.lab.plan, this.spec, destDir, this.lab.ctx);
  }

  /** How el-loader names this node's lab NIC. */
  nicArgs(): string[] {
    return this.lab.provider.nicArgs?.(this.lab.plan, this.spec) ?? ['--ifname', this.spec.ifname];
  }

  afterAttach(hook: 'xdp' | 'tc'): Promise<void> {
    return this.lab.provider.afterAttach?.(this.lab.plan, this.spec, this.lab.ctx, hook) ?? Promise.resolve();
  }

  afterDetach(): Promise<void> {
    return this.lab.provider.afterDetach?.(this.lab.plan, this.spec, this.lab.ctx) ?? Promise.resolve();
  }

  /** The core of a process that died here, copied to this host when the node is elsewhere. */
  findCore(rec: ProcessRecord, binary: string, hostCoresDir: string): Promise<FoundCore> {
    if (this.lab.provider.findCore) return this.lab.provider.findCore(this.lab.plan, this.spec, rec, binary, this.lab.ctx, hostCoresDir);
    return waitForCore(hostCoresDir, rec.pid, 3000).then((core) => (core ? { core } : {}));
  }
}

export class OpenLab {
  private readonly byName = new Map<string, LabNode>();
  constructor(
    readonly provider: Provider,
    readonly plan: Plan,
    readonly ctx: ProviderContext,
  ) {
    for (const n of plan.nodes) this.byName.set(n.name, new LabNode(this, n));
  }

  get paths() {
    return this.ctx.paths;
  }

  node(which: string | PlanNode): LabNode {
    const name = typeof which === 'string' ? which : which.name;
    const n = this.byName.get(name);
    if (!n) throw new Error(`lab '${this.plan.lab}' has no node ${name}`);
    return n;
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

  prepareCores(): Promise<void> {
    return this.provider.prepareCores?.(this.plan, this.ctx) ?? Promise.resolve();
  }

  kernelDrift(): Promise<KernelDrift[]> {
    return this.provider.kernelDrift?.(this.plan, this.ctx) ?? Promise.resolve([]);
  }
}

export function openLab(provider: Provider, plan: Plan, ctx: ProviderContext): OpenLab {
  return new OpenLab(provider, plan, ctx);
}
