import { describe, expect, it } from 'vitest';
import { parseClientOutput } from '../../src/bench/clientOutput.js';

const SUMMARY = `Completed 2000 requests in 1.25 seconds
Median latency is 410 us
90th percentile latency is 620 us
95th percentile latency is 700 us
99th percentile latency is 1100 us
`;
const JSON_LINE =
  '{"kind":"electrode-client-result","version":1,"requests":2000,"completed":2000,"errors":0,"timeouts":1,"threads":8,"warmup_s":1,"duration_s":1.25,"throughput_ops":1600,"latency_us":{"p50":410,"p90":620,"p95":700,"p99":1100,"p999":2000,"max":3000,"mean":450.5}}';

describe('client output parsing', () => {
  it('reads the JSON line of a complete output', () => {
    const p = parseClientOutput(SUMMARY + JSON_LINE + '\n');
    expect(p.source).toBe('json');
    expect(p.problem).toBeUndefined();
    expect(p.result).toMatchObject({ completed: 2000, timeouts: 1, threads: 8, throughput_ops: 1600 });
    expect(p.result?.latency_us).toEqual({ p50: 410, p90: 620, p95: 700, p99: 1100, p999: 2000, max: 3000, mean: 450.5 });
  });

  it('falls back to the human summary when a killed client truncated the JSON line', () => {
    const p = parseClientOutput(SUMMARY + JSON_LINE.slice(0, 80));
    expect(p.source).toBe('summary');
    expect(p.problem).toMatch(/truncated/);
    expect(p.result).toMatchObject({ completed: 2000, duration_s: 1.25, throughput_ops: 1600 });
    expect(p.result?.latency_us.p99).toBe(1100);
  });

  it('salvages a summary cut in the middle (missing percentiles become NaN)', () => {
    const cut = SUMMARY.split('\n').slice(0, 2).join('\n') + '\n90th perc';
    const p = parseClientOutput(cut);
    expect(p.source).toBe('summary');
    expect(p.result?.latency_us.p50).toBe(410);
    expect(Number.isNaN(p.result?.latency_us.p90)).toBe(true);
  });

  it('reports nothing usable for output cut before the summary', () => {
    expect(parseClientOutput('')).toMatchObject({ result: null, source: 'none', problem: 'no output' });
    const p = parseClientOutput('warming up\nCompleted 12');
    expect(p.result).toBeNull();
    expect(p.problem).toMatch(/no JSON result line/);
  });

  it('rejects a JSON line of another kind or with missing fields', () => {
    const bad = JSON_LINE.replace('"completed":2000,', '');
    const p = parseClientOutput(SUMMARY + bad);
    expect(p.source).toBe('summary');
    expect(p.problem).toMatch(/completed missing/);
    expect(parseClientOutput('{"kind":"other"}').result).toBeNull();
  });

  it('finds the JSON line even when a stray line follows it', () => {
    const p = parseClientOutput(SUMMARY + JSON_LINE + '\nSUMMARY: AddressSanitizer: nothing\n');
    expect(p.source).toBe('json');
    expect(p.problem).toMatch(/1 line\(s\) after/);
  });
});
