/**
 * Several client nodes in one trial (bench --clients K): their figures made
 * into the trial's. Pure.
 *
 * - Throughput is over the common window, the span every client was
 *   measuring in (from the latest start to the earliest end), from each
 *   client's timeline of completions per bucket; a client that started
 *   late or stopped early does not inflate or dilute the others.
 * - Latency percentiles come from the clients' full histograms added up
 *   bucket by bucket (never a median of medians).
 * - On one kernel (netns) the clients share the monotonic clock, so the
 *   window is exact; on separate machines it is found on their wall clocks,
 *   which are only as close as the machines keep them.
 */
import { ParsedClientOutput } from './clientOutput.js';
import { ClientFigures, ClientResult, LatencyUs, TrialRecord } from './types.js';

export interface ClientRun {
  node: string;
  result: ClientResult;
}

export interface MergedClients {
  completed: number;
  requests: number;
  errors: number;
  timeouts: number;
  warmupCompleted: number;
  /** Threads of all clients, and their CPU time and context switches added up. */
  threads: number;
  cpuUs: number;
  ctxSwitches: number;
  /** The common window, seconds. */
  duration_s: number;
  throughput_ops: number;
  latency_us: LatencyUs;
  clock: 'monotonic' | 'wall';
  perClient: ClientFigures[];
  /** The common window over the longest client's window: below 0.8 the clients barely ran together. */
  overlap: number;
}

/** The rank-th value (0-based) of a histogram of [bucket, count] pairs, ascending. */
function valueAt(hist: readonly [number, number][], rank: number): number {
  let seen = 0;
  for (const [v, n] of hist) {
    seen += n;
    if (rank < seen) return v;
  }
  return hist.at(-1)?.[0] ?? 0;
}

/** Histograms added up bucket by bucket. */
export function addHistograms(hists: readonly (readonly [number, number][])[]): [number, number][] {
  const sum = new Map<number, number>();
  for (const h of hists) for (const [v, n] of h) sum.set(v, (sum.get(v) ?? 0) + n);
  return [...sum.entries()].sort((a, b) => a[0] - b[0]);
}

/** Percentiles of a histogram, by the client's own rule: index round(p * (n - 1)). */
export function histogramLatency(hist: readonly [number, number][]): LatencyUs {
  const n = hist.reduce((a, [, c]) => a + c, 0);
  const at = (p: number) => (n ? valueAt(hist, Math.min(n - 1, Math.floor(p * (n - 1) + 0.5))) : 0);
  const mean = n ? hist.reduce((a, [v, c]) => a + v * c, 0) / n : 0;
  return { p50: at(0.5), p90: at(0.9), p95: at(0.95), p99: at(0.99), p999: at(0.999), max: hist.at(-1)?.[0] ?? 0, mean: Math.round(mean * 10) / 10 };
}

/** Completions of one timeline inside [from, to) (seconds on its clock), buckets cut at the edges pro rata. */
function completionsWithin(start: number, end: number, tl: { bucketMs: number; completed: number[] }, from: number, to: number): number {
  const w = tl.bucketMs / 1000;
  let sum = 0;
  tl.completed.forEach((n, i) => {
    const b0 = Math.max(start + i * w, start);
    const b1 = Math.min(start + (i + 1) * w, end);
    if (b1 <= b0) return;
    const lo = Math.max(b0, from);
    const hi = Math.min(b1, to);
    if (hi > lo) sum += (n * (hi - lo)) / (b1 - b0);
  });
  return sum;
}

/** The trial's figures from its clients' (a string says why they cannot be merged). */
export function mergeClients(runs: readonly ClientRun[], sharedClock: boolean): MergedClients | string {
  if (!runs.length) return 'no client result';
  const missing = runs.filter((r) => !r.result.window || !r.result.timeline || !r.result.hist).map((r) => r.node);
  if (missing.length) return `${missing.join(', ')}: the client printed no window, timeline or histogram (rebuild it: make -C native)`;
  const clock = sharedClock ? 'monotonic' : 'wall';
  const spans = runs.map((r) => {
    const w = r.result.window!;
    const start = sharedClock ? w.monoStartS : w.realStartS;
    return { start, end: start + (w.monoEndS - w.monoStartS) };
  });
  const from = Math.max(...spans.map((s) => s.start));
  const to = Math.min(...spans.map((s) => s.end));
  if (!(to > from)) return `the clients' measured windows do not overlap (${spans.map((s, i) => `${runs[i]!.node} ${s.start.toFixed(3)}-${s.end.toFixed(3)} s`).join(', ')} on the ${clock} clock)`;
  const inWindow = runs.map((r, i) => completionsWithin(spans[i]!.start, spans[i]!.end, r.result.timeline!, from, to));
  const first = Math.min(...spans.map((s) => s.start));
  const sum = (f: (r: ClientResult) => number) => runs.reduce((a, r) => a + f(r.result), 0);
  return {
    completed: sum((r) => r.completed),
    requests: sum((r) => r.requests),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    warmupCompleted: sum((r) => r.warmup_completed ?? 0),
    threads: sum((r) => r.threads),
    cpuUs: sum((r) => r.cpu_us ?? 0),
    ctxSwitches: sum((r) => r.ctx_switches ?? 0),
    duration_s: Math.round((to - from) * 1e6) / 1e6,
    throughput_ops: Math.round((inWindow.reduce((a, b) => a + b, 0) / (to - from)) * 10) / 10,
    latency_us: histogramLatency(addHistograms(runs.map((r) => r.result.hist!))),
    clock,
    perClient: runs.map((r, i) => ({
      node: r.node, completed: r.result.completed, errors: r.result.errors, timeouts: r.result.timeouts,
      throughput_ops: r.result.throughput_ops, p50: r.result.latency_us.p50, p99: r.result.latency_us.p99,
      startOffsetMs: Math.round((spans[i]!.start - first) * 1000),
    })),
    overlap: Math.round(((to - from) / Math.max(...spans.map((s) => s.end - s.start))) * 1000) / 1000,
  };
}

/**
 * The trial's figures from its clients' outputs: one client's as it printed
 * them; several merged (src/bench/clients.ts), with each one's figures kept.
 */
export function mergedOutput(parsed: readonly ParsedClientOutput[], nodes: readonly { name: string }[], sharedClock: boolean, rec: Pick<TrialRecord, 'perClient' | 'clientClock'>): ParsedClientOutput {
  if (parsed.length === 1) return parsed[0]!;
  const bad = parsed.findIndex((p) => !p.result || p.source !== 'json');
  if (bad >= 0) return { result: null, source: 'none', problem: `${nodes[bad]!.name}: ${parsed[bad]!.problem ?? 'no JSON line'}` };
  const m = mergeClients(parsed.map((p, i) => ({ node: nodes[i]!.name, result: p.result! })), sharedClock);
  if (typeof m === 'string') return { result: null, source: 'none', problem: m };
  rec.perClient = m.perClient;
  rec.clientClock = m.clock;
  return {
    source: 'json',
    ...(m.overlap < 0.8 ? { problem: `the clients measured together for only ${Math.round(m.overlap * 100)}% of the longest window` } : {}),
    result: {
      requests: m.requests, completed: m.completed, errors: m.errors, timeouts: m.timeouts, threads: m.threads, warmup_s: parsed[0]!.result!.warmup_s,
      duration_s: m.duration_s, throughput_ops: m.throughput_ops, latency_us: m.latency_us, warmup_completed: m.warmupCompleted,
      cpu_us: m.cpuUs, ctx_switches: m.ctxSwitches,
    },
  };
}
