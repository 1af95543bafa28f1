/** The CLI edges of upstream: flag problems before anything is created, the bench's interleaving, rows per implementation. */
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { upstreamFlagProblems } from '../../src/commands/upstream.js';
import { benchOptionsFrom } from '../../src/commands/bench.js';
import { schedule } from '../../src/bench/schedule.js';
import { summarize } from '../../src/bench/stats.js';
import { summaryTable } from '../../src/bench/report.js';
import { TrialRecord } from '../../src/bench/types.js';
import { planFromInputs } from '../../src/core/plan.js';
import { upstreamLoad } from '../../src/upstream/bench.js';
import { thirdPartyDir } from '../helpers/thirdParty.js';

const TREE = thirdPartyDir('electrode-upstream');
const SCEN = thirdPartyDir('multi-paxos-poc');
const plan = (n: number, provider: 'netns' | 'vagrant' = 'netns') => planFromInputs([{ name: 'upst', replicas: n, provider, subnet: '10.79.40.0/24' }]);

describe('upstream flags', () => {
  it('--scenario and --upstream-* need --electrode-tree; a tree that is not Electrode is named', () => {
    expect(upstreamFlagProblems({ scenario: '/x' }, plan(3)).map((d) => d.code)).toEqual(['UPSTREAM_NO_TREE']);
    const bad = upstreamFlagProblems({ electrodeTree: '/nonexistent-tree' }, plan(3, 'vagrant'));
    expect(bad.map((d) => d.code)).toEqual(['UPSTREAM_PROVIDER', 'UPSTREAM_TREE']);
    expect(bad[1]!.message).toContain('/nonexistent-tree does not exist');
    expect(upstreamFlagProblems({}, plan(3))).toEqual([]);
  });

  it.skipIf(!existsSync(TREE) || !existsSync(SCEN))('a scenario must match the lab size (its files are used as they are)', () => {
    expect(upstreamFlagProblems({ electrodeTree: TREE, scenario: join(SCEN, 'scenario7') }, plan(7))).toEqual([]);
    const d = upstreamFlagProblems({ electrodeTree: TREE, scenario: join(SCEN, 'scenario7') }, plan(5));
    expect(d.map((x) => x.code)).toEqual(['SCENARIO_SIZE']);
    expect(upstreamFlagProblems({ electrodeTree: TREE, scenario: TREE }, plan(3)).map((x) => x.code)).toEqual(['SCENARIO_FILES']);
  });
});

describe('bench --impl', () => {
  it('ours and upstream run one after the other in every cell, the order rotating per repeat; no floor or nemesis for upstream', () => {
    const s = schedule({ replicas: [3], arms: ['floor', 'baseline', 'all'], threads: [1], repeat: 2, nemesis: ['none', 'kill-leader'], impls: ['ours', 'upstream'] });
    const cells = s.map((t) => `${t.repeat}:${t.arm}:${t.nemesis}:${t.impl}`);
    expect(cells.slice(0, 6)).toEqual(['0:floor:none:ours', '0:baseline:none:ours', '0:baseline:none:upstream', '0:baseline:kill-leader:ours', '0:all:none:ours', '0:all:none:upstream']);
    expect(cells.filter((c) => c.startsWith('1:baseline'))).toEqual(['1:baseline:none:upstream', '1:baseline:none:ours', '1:baseline:kill-leader:ours']);
    expect(s.some((t) => t.impl === 'upstream' && (t.arm === 'floor' || t.nemesis !== 'none'))).toBe(false);
    // without --impl the schedule is what it was
    expect(schedule({ replicas: [3], arms: ['baseline'], threads: [1], repeat: 1 })[0]).toEqual({ seq: 0, replicas: 3, arm: 'baseline', threads: 1, repeat: 0, nemesis: 'none' });
  });

  it('--electrode-tree without --impl upstream is refused; --impl ours alone is the old bench', () => {
    const base = { replicas: [3], arms: ['baseline' as const], threads: [1], repeat: 1, warmup: 1 };
    expect(() => benchOptionsFrom({ ...base, electrodeTree: '/t' }, 'lab')).toThrow(/only run with --impl upstream/);
    expect(benchOptionsFrom({ ...base, impl: ['ours'] }, 'lab').impls).toBeUndefined();
    expect(benchOptionsFrom({ ...base, impl: ['ours', 'upstream'], electrodeTree: '/t' }, 'lab')).toMatchObject({ impls: ['ours', 'upstream'], electrodeTree: '/t' });
  });

  it("upstream's client counts requests: a duration becomes 1,000 per second per logical client; --requests is split over them", () => {
    expect(upstreamLoad({ duration: 3, warmup: 0.5, timeoutMs: 9 }, 8)).toEqual({ requests: 3000, threads: 8, warmupSec: 1, timeoutMs: 9 });
    expect(upstreamLoad({ requests: 10_000, warmup: 0, timeoutMs: 9 }, 8).requests).toBe(1250);
  });

  it('rows per implementation: each against its own baseline, upstream also against ours', () => {
    const r = (arm: 'baseline' | 'all', impl: 'ours' | 'upstream' | undefined, ops: number): TrialRecord => ({
      seq: 0, replicas: 3, arm, threads: 1, repeat: 0, nemesis: 'none', status: 'ok', crashed: false, startedAt: '', wallMs: 0, requests: 1, completed: 1, errors: 0, timeouts: 0,
      duration_s: 1, throughput_ops: ops, latency_us: { p50: 100, p90: 1, p95: 1, p99: 200 }, clientExitCode: 0, crashes: [], ...(impl ? { impl } : {}),
    });
    const rows = summarize({ records: [r('baseline', undefined, 1000), r('all', 'ours', 1500), r('baseline', 'upstream', 800), r('all', 'upstream', 1200)], options: { lab: 'x', replicas: [3], arms: ['baseline', 'all'], threads: [1], repeat: 1, warmup: 0, stopOnCrash: false, keepLab: false, timeoutMs: 1 } });
    expect(rows.map((x) => [x.impl, x.arm, x.speedup, Number.isNaN(x.vsOurs) ? null : x.vsOurs])).toEqual([
      ['ours', 'baseline', 1, null],
      ['upstream', 'baseline', 1, 0.8],
      ['ours', 'all', 1.5, null],
      ['upstream', 'all', 1.5, 0.8],
    ]);
    const t = summaryTable(rows);
    expect(t.split('\n')[0]).toMatch(/replicas\s+impl\s+arm/);
    expect(t).toMatch(/upstream\s+all .* 1\.50x \(\+50\.0%\)\s+0\.80x \(-20\.0%\)/);
  });
});

describe('the built CLI refuses bad upstream input before anything exists (exit 2)', () => {
  const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');
  const home = mkdtempSync(join(tmpdir(), 'el-upcli-'));
  const env = { ELECTRODE_LAB_HOME: join(home, 'home'), ELECTRODE_LAB_RUNS: join(home, 'runs'), CI: 'true' };
  const cli = (...a: string[]) => execa('node', [CLI, ...a], { reject: false, env });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it.skipIf(!existsSync(CLI))('bench --impl upstream with a tree that is not Electrode; up --scenario without a tree', async () => {
    const b = await cli('bench', '--name', 'upstc', '--replicas', '3', '--impl', 'ours,upstream', '--electrode-tree', '/nonexistent-tree');
    expect(b.exitCode).toBe(2);
    expect(b.stderr).toMatch(/UPSTREAM_TREE --electrode-tree \/nonexistent-tree: \/nonexistent-tree does not exist/);
    const b2 = await cli('bench', '--name', 'upstc', '--replicas', '3', '--impl', 'ours,upstream');
    expect(b2.exitCode).toBe(2);
    expect(b2.stderr).toMatch(/BENCH_IMPL --impl upstream: lab 'upstc' was not brought up with an upstream tree/);
    const u = await cli('up', '3', '--provider', 'netns', '--name', 'upstc', '--scenario', '/x');
    expect(u.exitCode).toBe(2);
    expect(u.stderr).toMatch(/UPSTREAM_NO_TREE/);
    expect(existsSync(join(home, 'runs')) ? readdirSync(join(home, 'runs')) : []).toEqual([]);
    expect(existsSync(join(home, 'home', 'labs')) ? readdirSync(join(home, 'home', 'labs')) : []).toEqual([]);
  });
});
