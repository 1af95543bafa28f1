/**
 * Creating a lab from a plan: the one sequence `up` and `bench` share. Saves
 * the plan and its files, runs the provider, and when that fails tears down
 * what was created so no half lab is left behind.
 */
import { DiagnosticsError, LabError } from '../core/diagnostics.js';
import { Plan } from '../core/plan.js';
import { Provider, ProviderContext, has } from './provider.js';
import { loadState, newState, removeLabState, saveLabFiles, saveState } from '../edges/state.js';
import { OpenLab, openLab } from './lab.js';

export interface CreateLabOptions {
  /** The context provider.up runs with (e.g. one whose steps refuse to start after Ctrl-C). */
  upCtx?: ProviderContext;
  /** Called after provider.up returns; throw to tear the lab down anyway (e.g. interrupted). */
  afterUp?: () => void;
}

/**
 * What every lab creation runs after the probe: the provider brings what its
 * nodes need (PrepareAbility), then adopts machines that exist (AdoptAbility);
 * without them the plan is kept as it is.
 */
export async function prepareLab(plan: Plan, provider: Provider, ctx: ProviderContext): Promise<Plan> {
  const prepared = has(provider, 'prepare') ? await provider.prepare(plan, ctx) : plan;
  return has(provider, 'adopt') ? ctx.progress.step('reading the machines (ssh)', () => provider.adoptPlan(prepared, ctx)) : prepared;
}

export async function createLab(plan: Plan, provider: Provider, ctx: ProviderContext, opts: CreateLabOptions = {}): Promise<void> {
  const { paths, progress } = ctx;
  saveLabFiles(paths, plan);
  const state = newState(plan);
  saveState(paths, state);
  try {
    await provider.up(plan, opts.upCtx ?? ctx);
    opts.afterUp?.();
  } catch (e) {
    const cause = (e as Error).message;
    progress.warn(`up failed: ${cause.split('\n')[0]!.replace(/:$/, '')}`);
    progress.warn('tearing down what was created');
    try {
      await provider.down(plan, ctx);
      removeLabState(paths);
    } catch (e2) {
      // what the provider recorded while it worked (resources) stays for `down`
      saveState(paths, { ...(loadState(paths) ?? state), phase: 'failed' });
      throw new LabError(`up failed and so did the teardown (${(e2 as Error).message.split('\n')[0]}); run \`electrode-lab down --name ${plan.lab}\`\ncause: ${cause}`, 'UP_FAILED');
    }
    throw new LabError(`up failed; everything it created was removed\ncause: ${cause}`, 'UP_FAILED');
  }
  saveState(paths, { ...(loadState(paths) ?? state), phase: 'up' });
}

/**
 * A planned lab brought up as one step and handed back opened: the
 * provider's preconditions (all problems at once, nothing created), prepare
 * and adopt, then createLab under `title`. What the bench's resize runs.
 */
export async function bringUp(planned: Plan, provider: Provider, ctx: ProviderContext, title: (plan: Plan) => string): Promise<OpenLab> {
  const problems = await provider.probe(ctx);
  if (problems.length) throw new DiagnosticsError(problems, 'preconditions');
  const plan = await prepareLab(planned, provider, ctx);
  await ctx.progress.step(title(plan), () => createLab(plan, provider, ctx));
  return openLab(provider, plan, ctx);
}
