/**
 * Taking a lab down: the one cleanup `down` and `lab reset` share. The plan
 * is the lab's saved one, or, when there is none (never up, already down, a
 * partial state folder after a crash), a default plan under the lab's name,
 * which still names the namespaces and pins a crashed run may have left
 * (the netns provider also sweeps namespaces named el-<lab>-*).
 */
import { existsSync } from 'node:fs';
import { LabError } from '../core/diagnostics.js';
import { LabPaths } from '../edges/paths.js';
import { Plan, planLab } from '../core/plan.js';
import { normalizeSpec } from '../core/spec.js';
import { loadPlan, removeLabState } from '../edges/state.js';
import { Provider, ProviderContext } from './provider.js';

export interface CleanupPlan {
  plan: Plan;
  /** False: no saved plan, a default one names what to sweep. */
  saved: boolean;
}

export function cleanupPlanOf(name: string, paths: LabPaths): CleanupPlan {
  const saved = loadPlan(paths);
  if (saved) return { plan: saved, saved: true };
  const { spec, diagnostics } = normalizeSpec({ name, provider: 'netns' });
  if (!spec) throw new LabError(diagnostics.map((d) => `${d.subject}: ${d.message}`).join('; '), 'BAD_NAME');
  const plan = planLab(spec).plan;
  if (!plan) throw new LabError(`cannot plan a cleanup for '${name}'`);
  return { plan, saved: false };
}

/**
 * The provider's down, then the lab's state folder (not on a dry run).
 * Returns whether the lab had left anything: a saved plan or a state folder.
 */
export async function takeDown(c: CleanupPlan, provider: Provider, ctx: ProviderContext): Promise<boolean> {
  await provider.down(c.plan, ctx);
  const had = c.saved || existsSync(ctx.paths.root);
  if (!ctx.runner.dryRun) removeLabState(ctx.paths);
  return had;
}
