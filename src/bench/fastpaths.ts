/**
 * A bench trial's fast paths: exactly one arm's on every replica, detached
 * afterwards, and the eBPF state for crash folders. Built on src/lab/bpf.ts, the
 * one place that knows el-loader's command lines; here only what a bench
 * needs differently: start every arm clean, and never throw while collecting.
 */
import { existsSync } from 'node:fs';
import { LabError } from '../core/diagnostics.js';
import { HookChoice, attachFastPaths, bpfState, detachFastPaths, loaderPath, unavailableFastPaths } from '../lab/bpf.js';
import { projectRoot } from '../edges/paths.js';
import { PlanNode } from '../core/plan.js';
import { BenchLab } from './lab.js';
import { ArmDef } from './types.js';

export { loaderPath };

/** Why bpf arms cannot run here, or undefined when they can. */
export function fastPathsUnavailable(root = projectRoot()): string | undefined {
  if (!existsSync(loaderPath(root))) return 'needs the eBPF loader bpf/build/el-loader: run `make -C bpf`';
  return undefined;
}

export async function attachArm(lab: BenchLab, arm: ArmDef, hook: HookChoice = 'auto'): Promise<void> {
  // the loader replaces a crashed trial's pins anyway; detaching first makes every arm start from nothing
  await detachFastPaths(lab).catch(() => undefined);
  const results = await attachFastPaths(lab, arm, 'auto', hook);
  const missing = unavailableFastPaths(results, arm);
  if (missing.length) throw new LabError(`arm '${arm.name}' cannot run on this kernel: ${missing.join('; ')}`, 'FAST_PATH_UNAVAILABLE');
}

/** Detaches everywhere; returns the problems instead of throwing (a trial's cleanup goes on). */
export async function detachAll(lab: BenchLab): Promise<string[]> {
  try {
    await detachFastPaths(lab);
    return [];
  } catch (e) {
    return (e as Error).message.split('\n');
  }
}

/** `el-loader show --json` inside the node, or the error as data (a crash folder must still be written). */
export async function bpfStateOf(lab: BenchLab, node: PlanNode): Promise<unknown> {
  try {
    return await bpfState(lab, node);
  } catch (e) {
    return { error: (e as Error).message };
  }
}
