/**
 * Creating a lab from a plan: the one sequence `up` and `bench` share. Saves
 * the plan and its files, runs the provider, and when that fails tears down
 * what was created so no half lab is left behind.
 */
import { LabError } from './diagnostics.js';
import { Plan } from './plan.js';
import { Provider, ProviderContext } from './providers/provider.js';
import { loadState, newState, removeLabState, saveLabFiles, saveState } from './state.js';

export interface CreateLabOptions {
  /** The context provider.up runs with (e.g. one whose steps refuse to start after Ctrl-C). */
  upCtx?: ProviderContext;
  /** Called after provider.up returns; throw to tear the lab down anyway (e.g. interrupted). */
  afterUp?: () => void;
}

/**
 * What every lab creation runs after the probe: the provider brings what its
 * nodes need (prepare), then adopts machines that exist (adoptPlan).
 */
export async function prepareLab(plan: Plan, provider: Provider, ctx: ProviderContext): Promise<Plan> {
  const prepared = provider.prepare ? await provider.prepare(plan, ctx) : plan;
  return provider.adoptPlan ? ctx.progress.step('reading the machines (ssh)', () => provider.adoptPlan!(prepared, ctx)) : prepared;
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
