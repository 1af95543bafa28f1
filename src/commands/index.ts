/**
 * The command registry and what every command gets (CliContext). A command
 * module exports `register(program, ctx)`; add it to `commands` below.
 */
import { Command } from 'commander';
import { LabError } from '../diagnostics.js';
import { LabPaths, labHome } from '../paths.js';
import { Plan } from '../plan.js';
import { getProvider, providerNames } from '../providers/index.js';
import { Progress, Provider, ProviderContext } from '../providers/provider.js';
import { DryRunRunner, ExecaRunner, Runner } from '../runner.js';
import { LabState, loadPlan, loadState } from '../state.js';
import { makeProgress } from '../progress.js';
import { registerUp } from './up.js';
import { registerDown } from './down.js';
import { registerStatus } from './status.js';
import { registerExec } from './exec.js';
import { registerRender } from './render.js';
import { registerBpf } from './bpf.js';
import { registerBox, registerSsh } from './box.js';
import { registerBench } from './bench.js';
import { registerCluster } from './cluster.js';
import { registerCheck } from './check.js';
import { registerLab } from './lab.js';
import { registerUpstream } from './upstream.js';

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
  /** stdout (results, --json). Progress and warnings go to stderr via progress(). */
  out(text: string): void;
  /** Sets the process exit code the CLI will use (e.g. exec passes the node command's code through). */
  setExitCode(code: number): void;
}

export type RegisterCommand = (program: Command, ctx: CliContext) => void;

/** Every command of the CLI, in help order. Other modules add theirs here. */
export const commands: RegisterCommand[] = [registerUp, registerDown, registerStatus, registerExec, registerRender, registerBpf, registerCluster, registerBench, registerCheck, registerBox, registerSsh, registerLab, registerUpstream];

export function makeContext(program: Command, env: NodeJS.ProcessEnv = process.env): CliContext & { exitCode: number } {
  let runner: Runner | undefined;
  let progress: Progress | undefined;
  const ctx = {
    env,
    exitCode: 0,
    globals(): GlobalOptions {
      const o = program.opts<{ name?: string; dryRun?: boolean }>();
      return { name: o.name ?? 'lab', nameFlag: o.name, dryRun: Boolean(o.dryRun) };
    },
    runner(): Runner {
      runner ??= ctx.globals().dryRun ? new DryRunRunner((l) => process.stdout.write(`[dry-run] ${l}\n`)) : new ExecaRunner();
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
      return { runner: ctx.runner(), paths, progress: ctx.progress() };
    },
    out(text: string): void {
      process.stdout.write(text.endsWith('\n') ? text : text + '\n');
    },
    setExitCode(code: number): void {
      ctx.exitCode = code;
    },
  };
  return ctx;
}
