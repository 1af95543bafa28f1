/**
 * Parsing the client's stdout: the specpaxos-style human summary followed by
 * exactly one JSON line. A killed client may leave a truncated tail (half a
 * JSON line, or no summary at all); we salvage what is there and say so.
 */
import { ClientResult, LatencyUs } from './types.js';

export const CLIENT_RESULT_KIND = 'electrode-client-result';

export interface ParsedClientOutput {
  /** Figures, when the JSON line or at least the human summary was found. */
  result: ClientResult | null;
  /** 'json' = the machine line; 'summary' = the human lines only; 'none' = nothing usable. */
  source: 'json' | 'summary' | 'none';
  /** Why the output was not complete, for the record. */
  problem?: string;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function fromJson(o: Record<string, unknown>): ClientResult | string {
  if (o.kind !== CLIENT_RESULT_KIND) return `kind is ${JSON.stringify(o.kind)}, not ${CLIENT_RESULT_KIND}`;
  const lat = o.latency_us;
  if (typeof lat !== 'object' || lat === null) return 'latency_us missing';
  const l = lat as Record<string, unknown>;
  const fields = ['requests', 'completed', 'errors', 'timeouts', 'threads', 'warmup_s', 'duration_s', 'throughput_ops'] as const;
  const out: Record<string, number> = {};
  for (const f of fields) {
    const v = num(o[f]);
    if (v === null) return `field ${f} missing or not a number`;
    out[f] = v;
  }
  const latency: LatencyUs = { p50: 0, p90: 0, p95: 0, p99: 0 };
  for (const p of ['p50', 'p90', 'p95', 'p99'] as const) {
    const v = num(l[p]);
    if (v === null) return `latency_us.${p} missing`;
    latency[p] = v;
  }
  for (const p of ['p999', 'max', 'mean'] as const) {
    const v = num(l[p]);
    if (v !== null) latency[p] = v;
  }
  const extras = measuredShape(o);
  if (typeof extras === 'string') return extras;
  return {
    ...extras,
    requests: out.requests!,
    completed: out.completed!,
    errors: out.errors!,
    timeouts: out.timeouts!,
    threads: out.threads!,
    warmup_s: out.warmup_s!,
    ...(num(o.warmup_completed) !== null ? { warmup_completed: num(o.warmup_completed)! } : {}),
    ...(num(o.cpu_us) !== null ? { cpu_us: num(o.cpu_us)! } : {}),
    ...(num(o.ctx_switches) !== null ? { ctx_switches: num(o.ctx_switches)! } : {}),
    duration_s: out.duration_s!,
    throughput_ops: out.throughput_ops!,
    latency_us: latency,
  };
}

/** The optional window, timeline and histogram (clients since the multi-client bench); a malformed one is a problem, an absent one is not. */
function measuredShape(o: Record<string, unknown>): Pick<ClientResult, 'window' | 'timeline' | 'hist'> | string {
  const out: Pick<ClientResult, 'window' | 'timeline' | 'hist'> = {};
  if (o.window !== undefined) {
    const w = (o.window ?? {}) as Record<string, unknown>;
    const [a, b, c] = [num(w.mono_start_s), num(w.mono_end_s), num(w.real_start_s)];
    if (a === null || b === null || c === null || b < a) return 'window malformed';
    out.window = { monoStartS: a, monoEndS: b, realStartS: c };
  }
  if (o.timeline !== undefined) {
    const t = (o.timeline ?? {}) as Record<string, unknown>;
    const bucket = num(t.bucket_ms);
    const counts = Array.isArray(t.completed) ? t.completed.map(num) : null;
    if (bucket === null || bucket <= 0 || !counts || counts.some((x) => x === null || x < 0)) return 'timeline malformed';
    out.timeline = { bucketMs: bucket, completed: counts as number[] };
  }
  if (o.hist !== undefined) {
    const h = o.hist;
    if (!Array.isArray(h) || h.some((p) => !Array.isArray(p) || p.length !== 2 || num(p[0]) === null || num(p[1]) === null)) return 'hist malformed';
    out.hist = (h as [number, number][]).map(([v, n]) => [v, n]);
  }
  return out;
}

const SUMMARY = {
  completed: /^Completed (\d+) requests in ([\d.]+) seconds/m,
  p50: /^Median latency is ([\d.]+) us/m,
  p90: /^90th percentile latency is ([\d.]+) us/m,
  p95: /^95th percentile latency is ([\d.]+) us/m,
  p99: /^99th percentile latency is ([\d.]+) us/m,
};

/** The human summary alone; needs at least the "Completed" line and the median. */
function fromSummary(text: string): ClientResult | null {
  const c = SUMMARY.completed.exec(text);
  const p50 = SUMMARY.p50.exec(text);
  if (!c || !p50) return null;
  const completed = Number(c[1]);
  const secs = Number(c[2]);
  const pick = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    requests: completed,
    completed,
    errors: 0,
    timeouts: 0,
    threads: 0,
    warmup_s: 0,
    duration_s: secs,
    throughput_ops: secs > 0 ? completed / secs : 0,
    latency_us: { p50: Number(p50[1]), p90: pick(SUMMARY.p90), p95: pick(SUMMARY.p95), p99: pick(SUMMARY.p99) },
  };
}

export function parseClientOutput(stdout: string): ParsedClientOutput {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  let jsonProblem: string | undefined;
  // the contract says the JSON line is the last line; search backwards anyway so
  // a stray trailing line (e.g. a sanitizer report) does not lose the figures
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('{') || !line.includes(CLIENT_RESULT_KIND)) continue;
    try {
      const parsed = fromJson(JSON.parse(line) as Record<string, unknown>);
      if (typeof parsed !== 'string') {
        const problem = i === lines.length - 1 ? undefined : `${lines.length - 1 - i} line(s) after the JSON line`;
        return problem ? { result: parsed, source: 'json', problem } : { result: parsed, source: 'json' };
      }
      jsonProblem = `JSON line rejected: ${parsed}`;
    } catch {
      jsonProblem = 'JSON line truncated or malformed';
    }
    break;
  }
  const summary = fromSummary(stdout);
  const problem = jsonProblem ?? 'no JSON result line';
  if (summary) return { result: summary, source: 'summary', problem };
  if (lines.length === 0) return { result: null, source: 'none', problem: 'no output' };
  return { result: null, source: 'none', problem: `${problem} and no "Completed ... requests" summary` };
}
