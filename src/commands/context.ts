/**
 * What every command gets (CliContext), apart from the registry so that
 * command modules import downward: index.ts -> commands -> context.ts.
 */
import { Command } from 'commander';
import { LabError } from '../core/diagnostics.js';
import { LabPaths, labHome } from '../edges/paths.js';
import { Plan } from '../core/plan.js';
import { getProvider, providerNames } from '../providers/index.js';
import { Progress, Provider, ProviderContext } from '../providers/provider.js';
import { DryRunRunner, ExecaRunner, Runner } from '../edges/runner.js';
import { LabState, loadPlan, loadState } from '../edges/state.js';
import { makeProgress } from '../edges/progress.js';
import { writeOut } from '../edges/output.js';
import { Cancellation, cancelOnSignals } from '../edges/cancel.js';

/** Options every command accepts (defined on the program). */
export interface GlobalOptions {
  /** Lab name (--name, default 'lab'). */
  name: string;
  /** --name exactly as given, undefined when absent (a lab file's name applies then). */
  nameFlag: string | undefined;
  /** Print commands instead of running them (--dry-run). */
  dryRun: boolean;
}

export interface LoadedLab {
  plan: Plan;
  paths: LabPaths;
  state?: LabState;
  provider: Provider;
}

export interface CliContext {
  env: NodeJS.ProcessEnv;
  /** The global options as parsed for the running command. */
  globals(): GlobalOptions;
  /** ExecaRunner, or DryRunRunner under --dry-run. */
  runner(): Runner;
  progress(): Progress;
  /** The labs home ($ELECTRODE_LAB_HOME or ~/.local/state/electrode-lab). */
  home(): string;
  labPaths(name?: string): LabPaths;
  /** The saved plan of a lab that is up; throws LabError "lab 'x' is not up; run `electrode-lab up`". */
  loadLab(name?: string): LoadedLab;
  /** A registered provider; unknown names list the registered ones. */
  getProvider(name: string): Provider;
  providerNames(): string[];
  providerContext(paths: LabPaths): ProviderContext;
  /** stdout (results, --json), in order with progress (src/edges/output.ts). Progress and warnings go to stderr via progress(). */
  out(text: string): void;
  /** Sets the process exit code the CLI will use (e.g. exec passes the node command's code through). */
  setExitCode(code: number): void;
  /**
   * The command's one cancellation (SIGINT/SIGTERM): created on first use,
   * handed to every long step through ProviderContext.signal. `onFirst` says
   * what happens next (printed once).
   */
  cancellation(onFirst?: (sig: NodeJS.Signals) => void): Cancellation;
}

export function makeContext(program: Command, env: NodeJS.ProcessEnv = process.env): CliContext & { exitCode: number } {
  let runner: Runner | undefined;
  let progress: Progress | undefined;
  let cancellation: Cancellation | undefined;
  const ctx = {
    env,
    exitCode: 0,
    globals(): GlobalOptions {
      const o = program.opts<{ name?: string; dryRun?: boolean }>();
      return { name: o.name ?? 'lab', nameFlag: o.name, dryRun: Boolean(o.dryRun) };
    },
    runner(): Runner {
      runner ??= ctx.globals().dryRun ? new DryRunRunner((l) => writeOut(`[dry-run] ${l}\n`)) : new ExecaRunner();
      return runner;
    },
    progress(): Progress {
      progress ??= makeProgress(env);
      return progress;
    },
    home(): string {
      return labHome(env);
    },
    labPaths(name?: string): LabPaths {
      return new LabPaths(ctx.home(), name ?? ctx.globals().name);
    },
    loadLab(name?: string): LoadedLab {
      const paths = ctx.labPaths(name);
      const plan = loadPlan(paths);
      if (!plan) throw new LabError(`lab '${paths.lab}' is not up; run \`electrode-lab up${paths.lab === 'lab' ? '' : ` --name ${paths.lab}`}\``, 'LAB_NOT_UP');
      return { plan, paths, state: loadState(paths), provider: getProvider(plan.provider) };
    },
    getProvider,
    providerNames,
    providerContext(paths: LabPaths): ProviderContext {
      return { runner: ctx.runner(), paths, progress: ctx.progress(), ...(cancellation ? { signal: cancellation.signal } : {}) };
    },
    cancellation(onFirst?: (sig: NodeJS.Signals) => void): Cancellation {
      cancellation ??= cancelOnSignals((sig) => (onFirst ? onFirst(sig) : ctx.progress().warn(`${sig}: stopping after the current step (again to stop at once)`)));
      return cancellation;
    },
    out(text: string): void {
      writeOut(text.endsWith('\n') ? text : text + '\n');
    },
    setExitCode(code: number): void {
      ctx.exitCode = code;
    },
  };
  return ctx;
}
