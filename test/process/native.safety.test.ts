/**
 * The safety checkers of the replica core, run by `npm test`:
 *  - the C unit tests (native/tests/test_main.c, test_vr.c) under ASan+UBSan:
 *    view change, state transfer, the fast-path hand-offs, one test per
 *    failure the safety review found;
 *  - the seeded simulation (native/tests/sim.c): N cores, lossy/duplicating/
 *    reordering network, partitions, crashes of up to f replicas, restarts
 *    without state (recovery, snapshots), the eBPF fast paths modelled from
 *    the kernel's own rules; every schedule checked for agreement,
 *    acknowledged ops, rising commits, real-time order, snapshot contents;
 *    and its negative control: restarts without recovery must be caught;
 *  - the libFuzzer target over the whole message handler (time-bounded).
 *
 * Longer runs (done before releasing a fast-path change):
 *   ELECTRODE_LAB_LONG_SAFETY=1   100,000 schedules, 10 minutes of fuzzing
 */
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/edges/paths.js';

const NATIVE = join(projectRoot(), 'native');
const LONG = process.env.ELECTRODE_LAB_LONG_SAFETY === '1';
const SEEDS = LONG ? 100_000 : 10_000;
const ASAN_SEEDS = LONG ? 10_000 : 1_000;
const FUZZ_SECONDS = Number(process.env.ELECTRODE_LAB_FUZZ_SECONDS ?? (LONG ? 600 : 30));

interface SimSummary {
  schedules: number;
  failed: number;
  with_fast_paths: number;
  acknowledged_ops: number;
  view_changes: number;
  kernel_acks: number;
  kernel_acks_for_crashed: number;
  quorum_marks: number;
  records_drained_by_gate: number;
  with_restarts: number;
  restarts: number;
  recoveries: number;
  snapshots_installed: number;
  catch_up_snapshots: number;
  bootstraps: number;
}

function fuzzerRuntime(): boolean {
  for (const d of ['/usr/lib/llvm-14/lib/clang']) {
    if (!existsSync(d)) continue;
    for (const v of readdirSync(d)) if (existsSync(join(d, v, 'lib', 'linux', 'libclang_rt.fuzzer-x86_64.a'))) return true;
  }
  return false;
}

describe('replica core safety checkers', () => {
  it('C unit tests pass under ASan+UBSan', async () => {
    const r = await execa('make', ['-s', '-C', NATIVE, 'test'], { reject: false });
    const last = r.stdout.trim().split('\n').at(-1) ?? '';
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr.slice(-3000)).toBe(0);
    expect(last).toMatch(/^(\d+) passed, 0 failed$/);
    expect(Number(/^(\d+)/.exec(last)![1])).toBeGreaterThanOrEqual(18);
  }, 300_000);

  for (const [what, target, seeds] of [
    ['without sanitizers', 'sim-fast', SEEDS],
    ['under ASan+UBSan', 'sim', ASAN_SEEDS],
  ] as const) {
    it(`the simulation: ${seeds} seeded schedules ${what}, no violation, and the hard cases happened`, async () => {
      const r = await execa('make', ['-s', '-C', NATIVE, target, `SEEDS=${seeds}`], { reject: false });
      const sum = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as SimSummary;
      expect(r.exitCode, r.stdout.split('\n').filter((l) => /VIOLATION|seed/.test(l)).slice(0, 20).join('\n') + r.stderr.slice(-2000)).toBe(0);
      expect(sum.schedules).toBe(seeds);
      expect(sum.failed).toBe(0);
      // a checker that never met the cases it guards would prove nothing
      expect(sum.acknowledged_ops).toBeGreaterThan(seeds * 50);
      expect(sum.view_changes).toBeGreaterThan(seeds / 4);
      expect(sum.kernel_acks).toBeGreaterThan(0);
      expect(sum.kernel_acks_for_crashed).toBeGreaterThan(0);
      expect(sum.quorum_marks).toBeGreaterThan(0);
      expect(sum.records_drained_by_gate).toBeGreaterThan(0);
      // restarts that recovered, some through snapshots of truncated logs
      expect(sum.with_restarts).toBeGreaterThan(seeds / 4);
      expect(sum.recoveries).toBeGreaterThan(seeds / 4);
      expect(sum.snapshots_installed).toBeGreaterThanOrEqual(sum.recoveries);
      expect(sum.catch_up_snapshots).toBeGreaterThan(0);
      expect(sum.bootstraps).toBeGreaterThan(seeds / 10);
      console.log(`[sim] ${target}: ${JSON.stringify(sum)}`);
    }, 1_800_000);
  }

  it('negative control: the same simulation with restarts that skip recovery reports lost or diverging ops', async () => {
    const seeds = 1000;
    const r = await execa('make', ['-s', '-C', NATIVE, 'sim-fast', `SEEDS=${seeds}`, 'SIMFLAGS=--no-recovery'], { reject: false });
    const sum = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as SimSummary & { no_recovery: boolean };
    expect(sum.no_recovery).toBe(true);
    // sim exits 1 on a violation; make reports a failed recipe as 2
    expect(r.exitCode).toBe(2);
    expect(sum.failed).toBeGreaterThan(0);
    // not only liveness: a restarted replica that forgot what it acknowledged
    // breaks agreement or loses acknowledged ops
    const safety = r.stdout.split('\n').filter((l) => /VIOLATION/.test(l) && !/liveness/.test(l));
    expect(safety.length, r.stdout.slice(-3000)).toBeGreaterThan(0);
    console.log(`[sim --no-recovery] ${sum.failed} of ${seeds} schedules failed, ${safety.length} on safety, e.g. ${safety[0]}`);
  }, 600_000);

  it.skipIf(!fuzzerRuntime())(`libFuzzer: ${FUZZ_SECONDS} s on the whole message handler without a crash`, async () => {
    const r = await execa('make', ['-s', '-C', NATIVE, 'fuzz', `FUZZ_SECONDS=${FUZZ_SECONDS}`], { reject: false, all: true });
    const out = r.all ?? '';
    expect(r.exitCode, out.slice(-4000)).toBe(0);
    const runs = Number(/stat::number_of_executed_units:\s+(\d+)/.exec(out)?.[1] ?? 0);
    expect(runs).toBeGreaterThan(FUZZ_SECONDS * 100);
    expect(out).not.toMatch(/ERROR: (AddressSanitizer|libFuzzer)|runtime error:/);
    console.log(`[fuzz] ${runs} inputs in ${FUZZ_SECONDS} s`);
  }, (FUZZ_SECONDS + 300) * 1000);
});

if (!fuzzerRuntime()) console.log('[fuzz] skipped: libFuzzer runtime missing (apt-get install libclang-rt-14-dev; .ci/setup installs it)');
