/** Shared records for the bench unit tests (not a test file itself). */
import { BenchOptions, TrialRecord } from '../../src/bench/types.js';

export function rec(p: Partial<TrialRecord> & Pick<TrialRecord, 'replicas' | 'arm' | 'threads' | 'repeat'>, thr: number | null, p50 = 100, p99 = 300): TrialRecord {
  return {
    seq: 0, status: thr === null ? 'crashed' : 'ok', crashed: thr === null, startedAt: '', wallMs: 1, requests: 100, completed: thr === null ? 0 : 100,
    errors: 0, timeouts: 0, duration_s: 1, throughput_ops: thr, latency_us: thr === null ? null : { p50, p90: p50, p95: p50, p99 },
    clientExitCode: 0, crashes: [], ...p,
  };
}
export const OPTS: BenchOptions = { lab: 't', replicas: [3, 5], arms: ['baseline', 'reply'], threads: [1], repeat: 2, requests: 100, warmup: 0, stopOnCrash: false, keepLab: false, timeoutMs: 1000 };

