/**
 * Parsing upstream's bench/client output (pure). Every logical client (-t)
 * prints its own block through specpaxos' Notice() (bench/benchmark.cc):
 *
 *   ... Completed warmup period of 1 seconds with 812 requests
 *   ... Median latency is 92345 ns (92 us)
 *   ... 90th percentile latency is ... ns ...   (95th, 99th likewise)
 *   ... Completed 2000 requests in 0.178123 seconds
 *
 * A row of ours has one latency distribution; upstream prints one per
 * logical client, so the row takes the median of their medians and the
 * largest of their tails (said so in `note`).
 */
import { ClientResult } from '../bench/types.js';

export interface UpstreamClientBlock {
  completed: number;
  seconds: number;
  warmupRequests?: number;
  /** Nanoseconds. */
  p50?: number;
  p90?: number;
  p95?: number;
  p99?: number;
}

export interface ParsedUpstreamClient {
  blocks: UpstreamClientBlock[];
  result: ClientResult | null;
  problem?: string;
  note?: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const max = (xs: number[]) => Math.max(...xs);

export function parseUpstreamClient(text: string, threads: number, warmupSec: number): ParsedUpstreamClient {
  // per logical client: warm-up line, Completed line, then (after its cooldown) the percentiles;
  // the clients share one event loop, so their lines interleave: figures go to the latest block
  const blocks: UpstreamClientBlock[] = [];
  const warm: number[] = [];
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    const last = blocks.at(-1);
    if ((m = /Completed warmup period of \d+ seconds with (\d+) requests/.exec(line))) warm.push(Number(m[1]));
    else if ((m = /Completed (\d+) requests in ([\d.]+) seconds/.exec(line))) blocks.push({ completed: Number(m[1]), seconds: Number(m[2]) });
    else if ((m = /Median latency is (\d+) ns/.exec(line)) && last) last.p50 = Number(m[1]);
    else if ((m = /(90|95|99)th percentile latency is (\d+) ns/.exec(line)) && last) last[`p${m[1]}` as 'p90'] = Number(m[2]);
  }
  blocks.forEach((b, i) => {
    if (warm[i] !== undefined) b.warmupRequests = warm[i];
  });
  if (!blocks.length) return { blocks, result: null, problem: 'no "Completed N requests in T seconds" line: the client did not finish a single logical client' };
  const completed = blocks.reduce((a, b) => a + b.completed, 0);
  const seconds = Math.max(...blocks.map((b) => b.seconds));
  const us = (k: 'p50' | 'p90' | 'p95' | 'p99', pick: (xs: number[]) => number) => {
    const xs = blocks.map((b) => b[k]).filter((x): x is number => x !== undefined);
    return xs.length ? Math.round(pick(xs) / 100) / 10 : NaN;
  };

  const result: ClientResult = {
    requests: completed,
    completed,
    errors: 0,
    timeouts: 0,
    threads,
    warmup_s: warmupSec,
    duration_s: seconds,
    throughput_ops: seconds > 0 ? completed / seconds : 0,
    latency_us: { p50: us('p50', median), p90: us('p90', max), p95: us('p95', max), p99: us('p99', max) },
    ...(warm.length ? { warmup_completed: warm.reduce((a, b) => a + b, 0) } : {}),
  };
  const problem = blocks.length < threads ? `${threads - blocks.length} of ${threads} logical clients never finished` : undefined;
  return {
    blocks,
    result,
    ...(problem ? { problem } : {}),
    ...(blocks.length > 1 ? { note: `upstream's client prints one latency distribution per logical client: p50 is the median of ${blocks.length} medians, p90/p95/p99 the largest` } : {}),
  };
}
