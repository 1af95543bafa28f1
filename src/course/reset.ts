/**
 * `lab reset`: back to before `lab start`. Takes down every electrode-lab
 * lab the exercise creates (processes, namespaces, pins, state folders, the
 * same path `down` takes, also when a lab has no saved plan), removes the
 * exercise's run folders, the files its commands wrote in the project folder
 * (LabDef.projectFiles) and its work folder. The student's answers file in
 * labs/<lab>/ is theirs and stays.
 */
import { existsSync, rmSync } from 'node:fs';
import { LabPaths } from '../edges/paths.js';
import { Progress, Provider } from '../providers/provider.js';
import { cleanupPlanOf, takeDown } from '../providers/teardown.js';
import { Runner } from '../edges/runner.js';
import { loadProcessRecords } from '../edges/state.js';
import { unreaped, until } from '../edges/proc.js';
import { CoursePaths } from './evidence.js';
import { loadRecord, projectFilesOf, runFoldersOf } from './gather.js';
import { LabDef, labNames } from './registry.js';

export interface ResetDeps {
  home: string;
  runsDir: string;
  runner: Runner;
  progress: Progress;
  getProvider(name: string): Provider;
  /** How long to wait for PID 1 to reap the processes `down` ended (default REAP_WAIT_MS). */
  reapWaitMs?: number;
  /** The project folder, where the exercise's commands wrote its files (default: the working directory). */
  cwd?: string;
}

/**
 * What `down` ends is reparented to PID 1 (the CLI that started it has
 * exited), and `ps` lists it as <defunct> until PID 1 collects its exit
 * status: at once under systemd or tini, a second or two (or never) under
 * some container supervisors. Reset waits this long for that, then says
 * which are left and why.
 */
export const REAP_WAIT_MS = 3000;

/** The line `lab reset` prints for processes that have ended but are not reaped yet (pure). */
export function unreapedNote(pids: number[], init: string): string {
  return `${pids.length} process(es) of the lab have ended but \`ps\` still lists them as <defunct> (pid ${pids.join(', ')}) until PID 1 (${init}) collects their exit status; they hold no memory, sockets, ports or eBPF programs, and nothing is left to do`;
}

/** One line per thing removed, and the PIDs of the lab's processes that ended but are not reaped yet. */
export async function resetLab(def: LabDef, d: ResetDeps): Promise<{ removed: string[]; unreaped: number[] }> {
  const removed: string[] = [];
  const work = CoursePaths.of(d.home, def.slug);
  const record = loadRecord(work);
  const pids: number[] = [];
  for (const name of labNames(def)) {
    const paths = new LabPaths(d.home, name);
    pids.push(...loadProcessRecords(paths).map((r) => r.pid));
    const cleanup = cleanupPlanOf(name, paths);
    const had = await takeDown(cleanup, d.getProvider(cleanup.plan.provider), { runner: d.runner, paths, progress: d.progress });
    if (had) removed.push(`lab '${name}' (processes, namespaces, pins, state folder)`);
  }
  for (const run of runFoldersOf(def, d.runsDir, record)) {
    if (!d.runner.dryRun) rmSync(run.root, { recursive: true, force: true });
    removed.push(`run folder ${run.root}`);
  }
  for (const f of projectFilesOf(def, d.cwd ?? process.cwd())) {
    if (!d.runner.dryRun) rmSync(f, { force: true });
    removed.push(`file ${f} (written by the exercise's commands)`);
  }
  if (existsSync(work.root)) {
    if (!d.runner.dryRun) rmSync(work.root, { recursive: true, force: true });
    removed.push(`work folder ${work.root} (record, hints shown, evidence)`);
  }
  if (d.runner.dryRun) return { removed, unreaped: [] };
  await until(() => unreaped(pids).length === 0, d.reapWaitMs ?? REAP_WAIT_MS);
  return { removed, unreaped: unreaped(pids) };
}
