/**
 * `lab reset`: back to before `lab start`. Takes down every electrode-lab
 * lab the exercise creates (processes, namespaces, pins, state folders, the
 * same path `down` takes, also when a lab has no saved plan), removes the
 * exercise's run folders and its work folder. The student's answers file in
 * labs/<lab>/ is theirs and stays.
 */
import { existsSync, rmSync } from 'node:fs';
import { LabError } from '../diagnostics.js';
import { LabPaths } from '../paths.js';
import { planLab } from '../plan.js';
import { Progress, Provider } from '../providers/provider.js';
import { Runner } from '../runner.js';
import { normalizeSpec } from '../spec.js';
import { loadPlan, removeLabState } from '../state.js';
import { CoursePaths } from './evidence.js';
import { loadRecord, runFoldersOf } from './gather.js';
import { LabDef, labNames } from './registry.js';

export interface ResetDeps {
  home: string;
  runsDir: string;
  runner: Runner;
  progress: Progress;
  getProvider(name: string): Provider;
}

/** Returns one line per thing removed. */
export async function resetLab(def: LabDef, d: ResetDeps): Promise<string[]> {
  const removed: string[] = [];
  const work = CoursePaths.of(d.home, def.slug);
  const record = loadRecord(work);
  for (const name of labNames(def)) {
    const paths = new LabPaths(d.home, name);
    let plan = loadPlan(paths);
    const had = plan !== undefined || existsSync(paths.root);
    if (!plan) {
      const { spec } = normalizeSpec({ name, provider: 'netns' });
      plan = spec ? planLab(spec).plan : undefined;
      if (!plan) throw new LabError(`cannot plan a cleanup for '${name}'`);
    }
    await d.getProvider(plan.provider).down(plan, { runner: d.runner, paths, progress: d.progress });
    if (!d.runner.dryRun) removeLabState(paths);
    if (had) removed.push(`lab '${name}' (processes, namespaces, pins, state folder)`);
  }
  for (const run of runFoldersOf(def, d.runsDir, record)) {
    if (!d.runner.dryRun) rmSync(run.root, { recursive: true, force: true });
    removed.push(`run folder ${run.root}`);
  }
  if (existsSync(work.root)) {
    if (!d.runner.dryRun) rmSync(work.root, { recursive: true, force: true });
    removed.push(`work folder ${work.root} (record, hints shown, evidence)`);
  }
  return removed;
}
