/**
 * The run store: runs/<timestamp>-<lab>/ (RunPaths) with results.json,
 * results.csv, environment.json, commands.log, chart.svg, crashes/ and
 * per-node logs. Saved after every trial so a killed bench leaves figures.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CorePatternGuard, CorePatternOptions } from '../edges/crash.js';
import { LabError } from '../core/diagnostics.js';
import { RunPaths, runsHome } from '../edges/paths.js';
import { CommandError, RunOptions, RunResult, Runner, SpawnOptions, shellQuote } from '../edges/runner.js';
import { renderChart } from './chart.js';
import { toCsv } from './csv.js';
import { summarize } from './stats.js';
import { ResultsFile } from './types.js';
import { writeAtomic } from '../edges/files.js';

/** 20261122T031500Z-<lab>: sorts by time, names the lab. */
export function runId(lab: string, now: Date = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${lab}`;
}

export function newRunPaths(lab: string, env: NodeJS.ProcessEnv = process.env): RunPaths {
  const dir = runsHome(env);
  let id = runId(lab);
  // two runs started within the same second get distinct folders
  for (let i = 2; existsSync(join(dir, id)); i++) id = `${runId(lab)}.${i}`;
  const run = new RunPaths(dir, id);
  run.ensureDirs();
  return run;
}

/**
 * Points the kernel's core_pattern at the run's cores/ folder for the run's
 * duration. Refused (another bench owns it, the pattern is too long) before
 * anything ran: the run folder newRunPaths made goes again, so no empty run is
 * left behind.
 */
export async function guardRunCores(run: RunPaths, options: CorePatternOptions = {}): Promise<CorePatternGuard> {
  try {
    return await CorePatternGuard.install(run.coresDir, options);
  } catch (e) {
    rmSync(run.root, { recursive: true, force: true });
    throw e;
  }
}

/** results.json, results.csv and chart.svg, all from the same records. */
export function saveResults(run: RunPaths, results: ResultsFile): void {
  writeAtomic(run.resultsJson, JSON.stringify(results, null, 2) + '\n');
  writeAtomic(run.resultsCsv, toCsv(results.records));
  writeAtomic(run.chartSvg, chartOf(results));
}

export function chartOf(results: ResultsFile): string {
  const o = results.options;
  const load = o.duration !== undefined ? `${o.duration}s per trial` : `${o.requests} requests per trial`;
  return renderChart(summarize(results), {
    title: `electrode-lab bench: lab '${results.lab}'${o.unsafeNoRecovery ? ' · UNSAFE: --unsafe-no-recovery (negative control)' : ''}`,
    subtitle: `${results.id} · ${load}, warmup ${o.warmup}s, ${o.repeat} repeat(s), arms interleaved · ${results.outcome}`,
  });
}

/** A run folder's results.json; undefined when it is missing, being written, or not ours. The one reader of these files. */
export function readResults(file: string): ResultsFile | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as ResultsFile;
    return r.kind === 'electrode-lab-bench-results' ? r : undefined;
  } catch {
    return undefined;
  }
}

export function loadResults(run: RunPaths): ResultsFile {
  if (!existsSync(run.resultsJson)) throw new LabError(`${run.root} has no results.json; is it a bench run folder? list runs with \`ls ${run.runsDir}\``, 'RUN_NOT_FOUND');
  const r = readResults(run.resultsJson);
  if (!r) throw new LabError(`${run.resultsJson} is not an electrode-lab results file (or is half written)`, 'RUN_NOT_FOUND');
  return r;
}

/** Bench run folders under runsDir, oldest first. */
export function listRuns(runsDir: string): string[] {
  if (!existsSync(runsDir)) return [];
  return readdirSync(runsDir)
    .filter((d) => existsSync(join(runsDir, d, 'results.json')))
    .sort((a, b) => statSync(join(runsDir, a)).mtimeMs - statSync(join(runsDir, b)).mtimeMs || a.localeCompare(b));
}

/**
 * A run by id, folder path, or the newest run when omitted. Accepts a path
 * to a folder anywhere (e.g. a copied run).
 */
export function resolveRun(ref: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): RunPaths {
  const dir = runsHome(env, cwd);
  if (!ref) {
    const runs = listRuns(dir);
    const newest = runs.at(-1);
    if (!newest) throw new LabError(`no bench runs under ${dir}; run \`electrode-lab bench\` first (or set ELECTRODE_LAB_RUNS)`, 'RUN_NOT_FOUND');
    return new RunPaths(dir, newest);
  }
  const asPath = join(cwd, ref);
  if (ref.includes('/') && existsSync(ref)) {
    const abs = ref.startsWith('/') ? ref : asPath;
    return new RunPaths(join(abs, '..'), abs.replace(/\/+$/, '').split('/').at(-1)!);
  }
  if (existsSync(join(dir, ref))) return new RunPaths(dir, ref);
  const matches = listRuns(dir).filter((r) => r.includes(ref));
  if (matches.length === 1) return new RunPaths(dir, matches[0]!);
  if (matches.length > 1) throw new LabError(`run '${ref}' is ambiguous: ${matches.join(', ')}`, 'RUN_AMBIGUOUS');
  throw new LabError(`no run '${ref}' under ${dir}; runs: ${listRuns(dir).slice(-5).join(', ') || '(none)'}`, 'RUN_NOT_FOUND');
}

/**
 * Wraps the runner so that every command (and every detached start) lands
 * in the run's commands.log with its exit status and duration.
 */
export class LoggingRunner implements Runner {
  constructor(private readonly inner: Runner, private readonly logFile: string) {
    mkdirSync(join(logFile, '..'), { recursive: true });
  }
  get dryRun(): boolean {
    return this.inner.dryRun;
  }
  note(line: string): void {
    appendFileSync(this.logFile, `${new Date().toISOString()} # ${line}\n`);
  }
  private log(r: RunResult): void {
    const how = r.signal ? `signal ${r.signal}` : `exit ${r.exitCode}`;
    appendFileSync(this.logFile, `${new Date().toISOString()} ${how} ${r.durationMs}ms: ${shellQuote(r.argv)}\n`);
  }
  async run(argv: string[], opts?: RunOptions): Promise<RunResult> {
    try {
      const r = await this.inner.run(argv, { ...opts, check: false });
      this.log(r);
      if (opts?.check !== false && (r.exitCode !== 0 || r.signal)) throw new CommandError(r);
      return r;
    } catch (e) {
      if ((e as Error).name !== 'CommandError') appendFileSync(this.logFile, `${new Date().toISOString()} failed to run: ${shellQuote(argv)}: ${(e as Error).message}\n`);
      throw e;
    }
  }
  async spawnDetached(argv: string[], opts: SpawnOptions): Promise<number> {
    const pid = await this.inner.spawnDetached(argv, opts);
    appendFileSync(this.logFile, `${new Date().toISOString()} spawned pid ${pid} >>${opts.logFile}: ${shellQuote(argv)}\n`);
    return pid;
  }
}
