/**
 * Statistics over repeats: median with min-max, coefficient of variation,
 * speedup over baseline. Pure functions.
 */
import { noiseOf } from './cpu.js';
import { safetyCell } from './safety.js';
import { ArmName, Impl, ResultsFile, TrialRecord, isFloorArm } from './types.js';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n - 1); 0 for a single value. */
export function stdev(xs: readonly number[]): number {
  if (xs.length < 2) return xs.length === 1 ? 0 : NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Coefficient of variation in percent (stdev / mean * 100); NaN when undefined. */
export function cvPercent(xs: readonly number[]): number {
  const m = mean(xs);
  if (!Number.isFinite(m) || m === 0) return NaN;
  return (stdev(xs) / m) * 100;
}

export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  cv: number;
}

export function spread(xs: readonly number[]): Spread {
  return {
    n: xs.length,
    median: median(xs),
    min: xs.length ? Math.min(...xs) : NaN,
    max: xs.length ? Math.max(...xs) : NaN,
    // one value says nothing about spread
    cv: xs.length >= 2 ? cvPercent(xs) : NaN,
  };
}

/** Throughput speedup: arm / baseline (1.25 = +25 %). */
export function speedup(value: number, baseline: number): number {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return NaN;
  return value / baseline;
}

export const CV_WARN_PERCENT = 10;

/** One row of the final table: a replica count x arm x threads over its repeats. */
export interface SummaryRow {
  replicas: number;
  /** Client nodes that drove load (bench --clients); 1 for most runs. */
  clients: number;
  arm: ArmName;
  /** ours (native/) or upstream (the user's Electrode tree); rows of one impl compare with that impl's baseline. */
  impl: Impl;
  /** upstream rows: median throughput over ours' (same replicas, arm, threads); NaN otherwise. */
  vsOurs: number;
  threads: number;
  /** The nemesis of these trials (`none` without one). */
  nemesis: string;
  /** ok, LOST n, NOT LIN, DIVERGED, ? (undecided) or - (not checked). */
  safety: string;
  /** Median time to a new leader after the fault, ms (leader faults). */
  recoveryMs: number;
  /** Repeats that produced figures (status ok). */
  okRuns: number;
  crashedRuns: number;
  failedRuns: number;
  /** Of the ok runs, how many ran on a noisy machine (cpu.ts noiseOf). */
  noisyRuns: number;
  throughput: Spread;
  p50: Spread;
  p99: Spread;
  errors: number;
  /** Median throughput over the baseline arm's median (same replicas and threads). */
  speedup: number;
  /** Median p50 latency change over baseline, in percent (-20 = 20 % lower). */
  p50Change: number;
  cvWarning: boolean;
  /** CPU us per committed op, whole lab (median over repeats; NaN when not measured). */
  cpuPerOp: number;
  /** Leader task time per op, and the busiest follower's, us. */
  leaderCpu: number;
  followerCpu: number;
  ctxPerOp: number;
  /** Changes over baseline in percent (-30 = 30 % less CPU per op). */
  cpuChange: number;
  leaderCpuChange: number;
  followerCpuChange: number;
  /** p50 over two round trips of the echo floor (same replicas and threads); NaN without a floor. */
  floorRatio: number;
  /** p50 over the relay floor's p50 (same replicas and threads): what the protocol costs above its message pattern (the baseline measured 0.95-1.27x; the fast paths, which skip the followers' user space, below 1); NaN without one. */
  relayRatio: number;
}

export function summarize(results: Pick<ResultsFile, 'records' | 'options'>): SummaryRow[] {
  const groups = new Map<string, TrialRecord[]>();
  const key = (r: { replicas: number; arm: string; threads: number; nemesis?: string; impl?: Impl; clients?: number }) => `${r.replicas}|${r.arm}|${r.threads}|${r.nemesis ?? 'none'}|${r.impl ?? 'ours'}|${r.clients ?? 1}`;
  for (const r of results.records) {
    const k = key(r);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const rows: SummaryRow[] = [];
  const armOrder = (a: string) => {
    const i = results.options.arms.indexOf(a as ArmName);
    return i < 0 ? 99 : i;
  };
  const keys = [...groups.keys()];
  const nemOrder = (n: string) => {
    const i = (results.options.nemesis ?? []).findIndex((x) => x.name === n);
    return i < 0 ? 0 : i;
  };
  const parsed = keys.map((k) => {
    const [r, a, t, nm, im, c] = k.split('|');
    return { replicas: Number(r), arm: a as ArmName, threads: Number(t), nemesis: nm!, impl: im as Impl, clients: Number(c), k };
  });
  parsed.sort((x, y) => x.replicas - y.replicas || x.clients - y.clients || x.threads - y.threads || nemOrder(x.nemesis) - nemOrder(y.nemesis) || armOrder(x.arm) - armOrder(y.arm) || (x.impl === y.impl ? 0 : x.impl === 'ours' ? -1 : 1));
  for (const p of parsed) {
    const recs = groups.get(p.k)!;
    const ok = recs.filter((r) => r.status === 'ok' && r.throughput_ops !== null && r.latency_us !== null);
    const rec = recs.map((r) => r.fault?.recoveryMs).filter((x): x is number => x !== undefined);
    rows.push({
      replicas: p.replicas,
      clients: p.clients,
      arm: p.arm,
      impl: p.impl,
      vsOurs: NaN,
      threads: p.threads,
      nemesis: p.nemesis,
      safety: safetyCell(recs.map((r) => r.safety)),
      recoveryMs: median(rec),
      okRuns: ok.length,
      crashedRuns: recs.filter((r) => r.crashed).length,
      failedRuns: recs.filter((r) => r.status === 'failed').length,
      noisyRuns: ok.filter((r) => noiseOf(r.cpu) !== undefined).length,
      throughput: spread(ok.map((r) => r.throughput_ops!)),
      p50: spread(ok.map((r) => r.latency_us!.p50)),
      p99: spread(ok.map((r) => r.latency_us!.p99)),
      errors: recs.reduce((a, r) => a + r.errors + r.timeouts, 0),
      speedup: NaN,
      p50Change: NaN,
      cvWarning: false,
      cpuPerOp: median(ok.flatMap((r) => (r.cpu ? [r.cpu.perOpUs] : []))),
      leaderCpu: median(ok.flatMap((r) => (r.cpu ? [r.cpu.roles.leader] : []))),
      followerCpu: median(ok.flatMap((r) => (r.cpu?.perFollower.length ? [Math.max(...r.cpu.perFollower)] : []))),
      ctxPerOp: median(ok.flatMap((r) => (r.cpu ? [r.cpu.ctxSwitchesPerOp] : []))),
      cpuChange: NaN,
      leaderCpuChange: NaN,
      followerCpuChange: NaN,
      floorRatio: NaN,
      relayRatio: NaN,
    });
  }
  const change = (x: number, base: number) => (Number.isFinite(x) && Number.isFinite(base) && base > 0 ? ((x - base) / base) * 100 : NaN);
  for (const row of rows) {
    const same = (b: SummaryRow) => b.replicas === row.replicas && b.clients === row.clients && b.threads === row.threads;
    const base = rows.find((b) => b.arm === 'baseline' && b.impl === row.impl && same(b) && b.nemesis === row.nemesis);
    const ours = row.impl === 'upstream' ? rows.find((b) => b.impl === 'ours' && b.arm === row.arm && same(b) && b.nemesis === row.nemesis) : undefined;
    if (ours) row.vsOurs = speedup(row.throughput.median, ours.throughput.median);
    if (base) {
      row.speedup = speedup(row.throughput.median, base.throughput.median);
      row.p50Change = base.p50.median > 0 ? ((row.p50.median - base.p50.median) / base.p50.median) * 100 : NaN;
      row.cpuChange = change(row.cpuPerOp, base.cpuPerOp);
      row.leaderCpuChange = change(row.leaderCpu, base.leaderCpu);
      row.followerCpuChange = change(row.followerCpu, base.followerCpu);
    }
    const floorOf = (arm: string) => rows.find((b) => b.arm === arm && same(b));
    const echo = floorOf('floor'), relay = floorOf('relay-floor');
    if (echo && !isFloorArm(row.arm) && echo.p50.median > 0) row.floorRatio = row.p50.median / (2 * echo.p50.median);
    if (relay && !isFloorArm(row.arm) && relay.p50.median > 0) row.relayRatio = row.p50.median / relay.p50.median;
    row.cvWarning = row.throughput.cv > CV_WARN_PERCENT;
  }
  return rows;
}
