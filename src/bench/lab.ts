/**
 * Bringing the lab to the size a bench step needs: reuse the lab that is up
 * when it matches, else down + up under the same name (same subnet, ports,
 * provider). The same steps as `electrode-lab up`, as a library call.
 */
import { DiagnosticsError } from '../core/diagnostics.js';
import { LabPaths } from '../edges/paths.js';
import { clients, planLab } from '../core/plan.js';
import { probeHostFacts } from '../edges/probe.js';
import { Progress, Provider, ProviderContext } from '../providers/provider.js';
import { Runner } from '../edges/runner.js';
import { SpecInput, normalizeSpec } from '../core/spec.js';
import { bringUp } from '../providers/bringup.js';
import { loadPlan, loadState, removeLabState } from '../edges/state.js';
import { OpenLab, openLab } from '../providers/lab.js';

/** A bench reaches its lab only through the handle (src/providers/lab.ts): its nodes, hooks and faults. */
export type BenchLab = OpenLab;

export interface LabControlDeps {
  home: string;
  env: NodeJS.ProcessEnv;
  runner: Runner;
  progress: Progress;
  getProvider(name: string): Provider;
  /** Cancels long steps (the CLI's Ctrl-C). */
  signal?: AbortSignal;
}

export class LabControl {
  /** Was the lab up (any size) before the bench touched it? */
  readonly wasUp: boolean;
  readonly paths: LabPaths;
  constructor(private readonly lab: string, private readonly deps: LabControlDeps, private readonly overrides: SpecInput) {
    this.paths = new LabPaths(deps.home, lab);
    this.wasUp = loadPlan(this.paths) !== undefined;
  }

  current(): BenchLab | undefined {
    const plan = loadPlan(this.paths);
    if (!plan) return undefined;
    return openLab(this.deps.getProvider(plan.provider), plan, this.context());
  }

  /**
   * The lab with n replicas and at least k client nodes, up; reuses the
   * current one when it matches and all its nodes are up.
   */
  async atSize(n: number, k = 1): Promise<BenchLab> {
    const cur = this.current();
    const haveClients = cur ? clients(cur.plan).length : 0;
    if (cur && cur.plan.cluster.n === n && haveClients >= k && loadState(this.paths)?.phase === 'up') {
      const st = await cur.status();
      const down = st.filter((s) => s.state !== 'up');
      if (!down.length) {
        this.deps.progress.info(`using lab '${this.lab}' that is up with ${n} replicas`);
        return cur;
      }
      this.deps.progress.warn(`lab '${this.lab}' has nodes down (${down.map((s) => s.node).join(', ')}); recreating it`);
    }
    const base: SpecInput = cur ? { ...cur.plan.spec } : {};
    if (cur) await this.down(`lab '${this.lab}' to resize it from ${cur.plan.cluster.n} replicas and ${haveClients} client(s) to ${n} and ${Math.max(k, haveClients)}`);
    const { spec, diagnostics } = normalizeSpec(base, this.overrides, { name: this.lab, replicas: n, ...(k > (base.clients ?? 1) ? { clients: k } : {}) });
    if (!spec) throw new DiagnosticsError(diagnostics, 'spec');
    const planned = planLab(spec, probeHostFacts(this.deps.home, this.deps.env));
    if (!planned.plan) throw new DiagnosticsError(planned.diagnostics, 'plan');
    return bringUp(planned.plan, this.deps.getProvider(planned.plan.provider), this.context(), (plan) => `lab '${this.lab}' up with ${n} replicas${plan.spec.clients > 1 ? ` and ${plan.spec.clients} clients` : ''} (${plan.provider})`);
  }

  private context(): ProviderContext {
    return { runner: this.deps.runner, paths: this.paths, progress: this.deps.progress, ...(this.deps.signal ? { signal: this.deps.signal } : {}) };
  }

  async down(why = `lab '${this.lab}'`): Promise<void> {
    const cur = this.current();
    if (!cur) return;
    await this.deps.progress.step(`down ${why}`, () => cur.down());
    removeLabState(this.paths);
  }
}
