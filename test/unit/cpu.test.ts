/** CPU per operation (src/bench/cpu.ts), the floor's ratio and the CPU columns of the table and chart. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { NOISE_RULE, cpuRecord, cpuSampleScript, noiseOf, parseCpuSample } from '../../src/bench/cpu.js';
import { renderChart } from '../../src/bench/chart.js';
import { paperComparison, renderReport, summaryTable } from '../../src/bench/report.js';
import { schedule } from '../../src/bench/schedule.js';
import { summarize } from '../../src/bench/stats.js';
import { ResultsFile, TrialRecord } from '../../src/bench/types.js';
import { OPTS, rec } from '../helpers/bench.fixtures.js';

const sample = (stat: number[], procs: [number, number, number][], ksoft = 0) =>
  ['clk 100', 'cpus 2', `cpu  ${stat.join(' ')} 0 0`, ...procs.map(([pid, ns, csw]) => `pid ${pid} ${ns} 5 7 ${csw} 1`), `ksoftirqd ${ksoft}`, ''].join('\n');

describe('CPU samples', () => {
  it('the sampling script runs here and its output parses: this process is found, /proc/stat read', () => {
    const out = execFileSync('sh', ['-c', cpuSampleScript([process.pid])], { encoding: 'utf8' });
    const s = parseCpuSample(out);
    if (typeof s === 'string') throw new Error(s);
    expect(s.clkTck).toBeGreaterThan(0);
    expect(s.cpus).toBeGreaterThan(0);
    expect(s.stat.length).toBeGreaterThanOrEqual(7);
    expect(s.procs.get(process.pid)!.runNs).toBeGreaterThan(0);
  });
  it('a sample without /proc/stat or CLK_TCK is refused, naming what is missing', () => {
    expect(parseCpuSample('cpus 2\ncpu 1 2 3 4 5 6 7 8')).toMatch(/CLK_TCK/);
    expect(parseCpuSample('clk 100\ncpus 2')).toMatch(/cpu line/);
  });
  it('per op: machine non-idle ticks (steal excluded), each role from task time, other = the rest, context switches', () => {
    // ticks: user nice system idle iowait irq softirq steal
    const a = parseCpuSample(sample([100, 0, 100, 1000, 0, 0, 10, 50], [[1, 0, 10], [2, 0, 10], [3, 0, 10]], 0));
    const b = parseCpuSample(sample([200, 0, 180, 1100, 0, 0, 30, 950], [[1, 400_000_000, 110], [2, 200_000_000, 60], [3, 300_000_000, 30]], 50_000_000));
    if (typeof a === 'string' || typeof b === 'string') throw new Error('parse');
    const r = cpuRecord({ before: [a], after: [b], windowMs: 1000, ops: 1000, leaderPid: 1, followerPids: [2, 3], client: { cpuUs: 150_000, ctxSwitches: 200 } })!;
    // (100 + 80 + 20) ticks = 2 s of CPU over 1000 ops; steal (900 ticks) is not ours
    expect(r.machineUs).toBe(2_000_000);
    expect(r.perOpUs).toBe(2000);
    expect(r.roles).toEqual({ leader: 400, followers: 500, client: 150, ksoftirqd: 50, other: 900 });
    expect(r.perFollower).toEqual([200, 300]);
    expect(r.softirqTicksUs).toBe(200);
    expect(r.ctxSwitchesPerOp).toBe((100 + 50 + 20 + 200) / 1000);
    expect(r.busy).toBe(1);
    expect(r.problem).toBeUndefined();
  });
  it('tick-sampled /proc/stat below the exact task clocks: the machine total is raised to them, other never negative', () => {
    const a = parseCpuSample(sample([0, 0, 0, 0, 0, 0, 0, 0], [[1, 0, 0]]));
    const b = parseCpuSample(sample([1, 0, 0, 0, 0, 0, 0, 0], [[1, 50_000_000, 0]]));
    if (typeof a === 'string' || typeof b === 'string') throw new Error('parse');
    const r = cpuRecord({ before: [a], after: [b], windowMs: 100, ops: 10, leaderPid: 1, followerPids: [], client: {} })!;
    expect(r.roles.other).toBe(0);
    expect(r.machineUs).toBe(50_000);
    expect(r.problem).toMatch(/did not report its CPU/);
    expect(cpuRecord({ before: [a], after: [b], windowMs: 100, ops: 0, leaderPid: 1, followerPids: [] })).toBeUndefined();
  });
  it('one sample per kernel (VM labs): summed over kernels', () => {
    const z = parseCpuSample(sample([0, 0, 0, 0, 0, 0, 0, 0], [[7, 0, 0]]));
    const o = parseCpuSample(sample([10, 0, 0, 0, 0, 0, 0, 0], [[7, 100_000_000, 0]]));
    if (typeof z === 'string' || typeof o === 'string') throw new Error('parse');
    const r = cpuRecord({ before: [z, z], after: [o, o], windowMs: 1000, ops: 100, leaderPid: 7, followerPids: [], client: { cpuUs: 0 } })!;
    expect(r.cpus).toBe(4);
    expect(r.machineUs).toBe(200_000);
  });
});

describe('noise made visible', () => {
  // ticks: user nice system idle iowait irq softirq steal; 2 CPUs, 1 s window = 200 ticks of capacity
  const quietA = parseCpuSample(sample([0, 0, 0, 0, 0, 0, 0, 0], [[1, 0, 0]]));
  const quietB = parseCpuSample(sample([100, 0, 0, 100, 0, 0, 0, 0], [[1, 1_000_000_000, 0]]));
  const stolenB = parseCpuSample(sample([100, 0, 0, 80, 0, 0, 0, 20], [[1, 1_000_000_000, 0]]));
  const busyB = parseCpuSample(sample([150, 0, 0, 50, 0, 0, 0, 0], [[1, 1_000_000_000, 0]]));
  if (typeof quietA === 'string' || typeof quietB === 'string' || typeof stolenB === 'string' || typeof busyB === 'string') throw new Error('parse');
  const cpu = (b: typeof quietB) => cpuRecord({ before: [quietA], after: [b], windowMs: 1000, ops: 100, leaderPid: 1, followerPids: [], client: { cpuUs: 0 } })!;
  it('steal as a share of capacity, other as a share of the busy time; above either threshold the trial is noisy', () => {
    expect(cpu(quietB)).toMatchObject({ stealShare: 0, otherShare: 0 });
    expect(noiseOf(cpu(quietB))).toBeUndefined();
    expect(cpu(stolenB).stealShare).toBe(0.1);
    expect(noiseOf(cpu(stolenB))).toBe('steal 10.0% of capacity');
    // 1.5 s busy, 1 s of it the leader's: a third was none of the lab's processes
    expect(cpu(busyB).otherShare).toBe(0.333);
    expect(noiseOf(cpu(busyB))).toBe('other 33.3% of busy CPU');
    expect(noiseOf(undefined)).toBeUndefined();
  });
  it('the table counts noisy runs in each row and the report lists them with the rule', () => {
    const records = [
      { ...rec({ replicas: 3, arm: 'baseline', threads: 1, repeat: 0 }, 1000), cpu: cpu(busyB) },
      { ...rec({ replicas: 3, arm: 'baseline', threads: 1, repeat: 1 }, 1000), cpu: cpu(quietB) },
      { ...rec({ replicas: 3, arm: 'all', threads: 1, repeat: 0 }, 2000), cpu: cpu(quietB) },
    ];
    const results: ResultsFile = { kind: 'electrode-lab-bench-results', version: 1, id: 'x', lab: 't', createdAt: '', outcome: 'complete', options: { ...OPTS, replicas: [3], arms: ['baseline', 'all'] }, skipped: [], records };
    const rows = summarize(results);
    expect(rows.find((r) => r.arm === 'baseline')!.noisyRuns).toBe(1);
    expect(rows.find((r) => r.arm === 'all')!.noisyRuns).toBe(0);
    const t = summaryTable(rows);
    expect(t.split('\n').find((l) => /^\s*3\s+baseline/.test(l))).toContain('2 (1 noisy ~)');
    expect(t.split('\n').find((l) => /^\s*3\s+all/.test(l))).not.toContain('noisy');
    const report = renderReport(results, '/tmp/run');
    expect(report).toContain('warning: 1 trial(s) ran on a noisy machine');
    expect(report).toContain('3/baseline/1t/repeat 1: other 33.3% of busy CPU');
    expect(report).toContain(NOISE_RULE);
  });
});

const withCpu = (r: TrialRecord, perOp: number, leader: number, follower: number): TrialRecord => ({
  ...r,
  cpu: { ops: 100, windowMs: 1000, cpus: 2, machineUs: perOp * 100, perOpUs: perOp, busy: 0.5, roles: { leader, followers: follower * 2, client: 10, ksoftirqd: 0, other: 0 }, perFollower: [follower, follower / 2], softirqTicksUs: 0, ctxSwitchesPerOp: 3 },
});

describe('floor, CPU change and the paper in the summary', () => {
  const records = [
    rec({ replicas: 7, arm: 'floor', threads: 1, repeat: 0 }, 40000, 25),
    rec({ replicas: 7, arm: 'relay-floor', threads: 1, repeat: 0 }, 20000, 80),
    withCpu(rec({ replicas: 7, arm: 'baseline', threads: 1, repeat: 0 }, 5000, 200), 250, 100, 40),
    withCpu(rec({ replicas: 7, arm: 'all', threads: 1, repeat: 0 }, 11000, 120), 150, 60, 30),
  ];
  const rows = summarize({ records, options: { ...OPTS, arms: ['relay-floor', 'floor', 'baseline', 'all'] } });
  it('p50 over two floor round trips, CPU per op and its change, leader and busiest follower', () => {
    const base = rows.find((r) => r.arm === 'baseline')!;
    const all = rows.find((r) => r.arm === 'all')!;
    expect(base.floorRatio).toBe(4);
    expect(all.floorRatio).toBe(2.4);
    expect(all.cpuChange).toBeCloseTo(-40);
    expect(all.leaderCpuChange).toBeCloseTo(-40);
    expect(all.followerCpuChange).toBeCloseTo(-25);
    expect(rows.find((r) => r.arm === 'floor')!.floorRatio).toBeNaN();
    // over the relay floor's p50 (80): the protocol's cost above its own message path
    expect(base.relayRatio).toBe(2.5);
    expect(all.relayRatio).toBe(1.5);
    expect(rows.find((r) => r.arm === 'relay-floor')!.relayRatio).toBeNaN();
    expect(rows.find((r) => r.arm === 'relay-floor')!.floorRatio).toBeNaN();
  });
  it('the table shows the floor ratio and the CPU columns; the floor row has no speedup or safety', () => {
    const t = summaryTable(rows);
    expect(t).toMatch(/p50\/2 echo/);
    expect(t).toMatch(/p50\/relay/);
    expect(t).toMatch(/CPU us\/op/);
    const allLine = t.split('\n').find((l) => /\ball\b/.test(l))!;
    expect(allLine).toContain('2.40x');
    expect(allLine).toContain('1.50x');
    expect(allLine).toContain('-40.0%');
    expect(allLine).toContain('60.0/30.0');
    expect(t.split('\n').find((l) => /\bfloor\b/.test(l))).not.toMatch(/x \(/);
    expect(t.split('\n').find((l) => /relay-floor/.test(l))).not.toMatch(/x \(|linearizable/);
  });
  it('our figures next to the paper\'s', () => {
    const p = paperComparison(rows).join('\n');
    expect(p).toContain('7 replicas, 1 thread: all/baseline 2.20x (+120.0%) (paper +128.4%)');
    expect(p).toContain('leader CPU/op -40.0% (paper -22.7..-38%)');
  });
  it('the floors run once per cell, never under a nemesis', () => {
    const s = schedule({ replicas: [3], arms: ['relay-floor', 'floor', 'baseline'], threads: [1], repeat: 1, nemesis: ['none', 'kill-leader'] });
    expect(s.map((t) => `${t.arm}/${t.nemesis}`)).toEqual(['relay-floor/none', 'floor/none', 'baseline/none', 'baseline/kill-leader']);
  });
});

describe('chart: CPU row, load curves, the safety verdict', () => {
  const threads = [1, 2, 4, 8];
  const records = threads.flatMap((t) => [
    withCpu(rec({ replicas: 3, arm: 'baseline', threads: t, repeat: 0 }, 1000 * t, 100 + t), 200, 80, 40),
    withCpu(rec({ replicas: 3, arm: 'all', threads: t, repeat: 0, safety: { verdict: 'linearizable', ops: 10, keys: 1, indeterminate: 0, elapsedMs: 1, lostAcked: 0, lostExamples: [], acked: 10, logs: 3 } }, 1500 * t, 80 + t), 120, 50, 30),
  ]);
  it('with three or more thread counts: one polyline per arm through its points; a safe run says so', () => {
    const svg = renderChart(summarize({ records, options: { ...OPTS, arms: ['baseline', 'all'], threads } }), { title: 't' });
    expect(svg).toContain('Load curves');
    expect((svg.match(/<polyline /g) ?? []).length).toBe(2);
    expect(svg).toContain('CPU per operation');
    expect(svg).toMatch(/safety: every checked history linearizable/);
  });
  it('an unsafe cell is marked on its bar and in red above the curves', () => {
    const bad = records.map((r) => (r.arm === 'all' && r.threads === 8 ? { ...r, safety: { ...r.safety!, lostAcked: 2, lostExamples: ['1 2'] } } : r));
    const svg = renderChart(summarize({ records: bad, options: { ...OPTS, arms: ['baseline', 'all'], threads } }), { title: 't' });
    expect(svg).toMatch(/SAFETY VIOLATED: 3\/all\/8t LOST 2/);
    expect(svg).toContain('unsafe: LOST 2');
  });
  it('two thread counts: no load curves', () => {
    const two = records.filter((r) => r.threads <= 2);
    expect(renderChart(summarize({ records: two, options: { ...OPTS, arms: ['baseline', 'all'], threads: [1, 2] } }), { title: 't' })).not.toContain('Load curves');
  });
});
