/**
 * What a bench run is given (BenchDeps) and the one interface every
 * implementation a trial can run sits behind (TrialImpl).
 */
import { RunPaths } from '../edges/paths.js';
import { Progress, Provider } from '../providers/provider.js';
import { Runner } from '../edges/runner.js';
import { SpecInput } from '../core/spec.js';
import { BenchLab } from './lab.js';
import { BenchOptions, Impl, Trial, TrialRecord } from './types.js';

export interface BenchDeps {
  env: NodeJS.ProcessEnv;
  /** Labs home. */
  home: string;
  runner: Runner;
  progress: Progress;
  getProvider(name: string): Provider;
  /** Spec fields for a lab the bench creates (provider, subnet, base port...). */
  labSpec?: SpecInput;
  /** Wait for another bench's core capture to finish instead of refusing (tests). */
  coreLockWaitMs?: number;
  /** The CLI's cancellation (first Ctrl-C: finish the current trial, restore the core pattern, stop). */
  signal?: AbortSignal;
  /**
   * The implementations other than ours a run may interleave (`--impl`), made
   * by the command: the bench knows them only through TrialImpl, so it imports
   * nothing of src/upstream/.
   */
  otherImpls?: Partial<Record<Exclude<Impl, 'ours'>, (opts: BenchOptions, progress: Progress) => TrialImpl>>;
}

/** One implementation a trial can run: ours (Bench below) or the user's upstream tree (src/upstream/bench.ts). */
export interface TrialImpl {
  /** Once per lab size, after the bench brought the lab up. */
  forLab(lab: BenchLab): Promise<void>;
  trial(t: Trial, lab: BenchLab, run: RunPaths, opts: BenchOptions): Promise<TrialRecord>;
}
