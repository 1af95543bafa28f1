/**
 * Several client nodes in one trial (src/bench/clients.ts): throughput over
 * the window they all measured in, latency from their histograms added up,
 * and the client's own JSON fields parsed (and refused when malformed).
 */
import { describe, expect, it } from 'vitest';
import { parseClientOutput } from '../../src/bench/clientOutput.js';
import { addHistograms, histogramLatency, mergeClients, mergedOutput } from '../../src/bench/clients.js';
import { schedule } from '../../src/bench/schedule.js';
import { ClientResult } from '../../src/bench/types.js';

function result(o: { start: number; secs: number; perBucket: number[]; hist: [number, number][]; real?: number }): ClientResult {
  const completed = o.perBucket.reduce((a, b) => a + b, 0);
  const lat = histogramLatency(o.hist);
  return {
    requests: completed, completed, errors: 0, timeouts: 0, threads: 8, warmup_s: 1, duration_s: o.secs, throughput_ops: completed / o.secs,
    latency_us: lat, window: { monoStartS: o.start, monoEndS: o.start + o.secs, realStartS: o.real ?? o.start + 1000 },
    timeline: { bucketMs: 100, completed: o.perBucket }, hist: o.hist,
  };
}

describe('several clients in one trial', () => {
  it('throughput is over the common window only: a late client does not count the others alone', () => {
    // a: 1000 ops per 100 ms for 2 s from t=10; b: the same rate from t=11 for 2 s; common window 11-12
    const a = result({ start: 10, secs: 2, perBucket: Array(20).fill(1000), hist: [[100, 20_000]] });
    const b = result({ start: 11, secs: 2, perBucket: Array(20).fill(1000), hist: [[300, 20_000]] });
    const m = mergeClients([{ node: 'client0', result: a }, { node: 'client1', result: b }], true);
    if (typeof m === 'string') throw new Error(m);
    expect(m.duration_s).toBeCloseTo(1, 6);
    expect(m.throughput_ops).toBeCloseTo(20_000, 0); // 10,000/s each while both ran
    expect(m.completed).toBe(40_000);
    expect(m.overlap).toBeCloseTo(0.5, 3);
    expect(m.perClient.map((c) => c.startOffsetMs)).toEqual([0, 1000]);
    // the sum of the two rates would have said 20,000 too, but over 3 s of wall time only 40,000/3 happened
    expect(m.clock).toBe('monotonic');
  });

  it('latency comes from the added histograms, not the median of medians', () => {
    // 3 clients: two fast (100 us), one slow with most of the ops (1,000 us)
    const fast = (n: number) => result({ start: 0, secs: 1, perBucket: Array(10).fill(n / 10), hist: [[100, n]] });
    const slow = result({ start: 0, secs: 1, perBucket: Array(10).fill(500), hist: [[1000, 5000]] });
    const m = mergeClients([{ node: 'c0', result: fast(1000) }, { node: 'c1', result: fast(1000) }, { node: 'c2', result: slow }], true);
    if (typeof m === 'string') throw new Error(m);
    expect(m.latency_us.p50).toBe(1000); // a median of the three medians would say 100
    expect(m.latency_us.p90).toBe(1000);
    expect(histogramLatency(addHistograms([[[100, 1], [200, 1]], [[200, 1], [300, 1]]])).p50).toBe(200);
  });

  it('separate machines use their wall clocks; windows that do not overlap are refused', () => {
    const a = result({ start: 5, secs: 1, perBucket: Array(10).fill(10), hist: [[50, 100]], real: 100 });
    const b = result({ start: 900, secs: 1, perBucket: Array(10).fill(10), hist: [[50, 100]], real: 100.5 });
    const m = mergeClients([{ node: 'a', result: a }, { node: 'b', result: b }], false);
    if (typeof m === 'string') throw new Error(m);
    expect(m.clock).toBe('wall');
    expect(m.duration_s).toBeCloseTo(0.5, 6);
    // on the monotonic clock of two kernels the same windows are 895 s apart: refused, with both named
    expect(mergeClients([{ node: 'a', result: a }, { node: 'b', result: b }], true)).toMatch(/do not overlap.*a 5\.000-6\.000 s, b 900\.000-901\.000 s/);
    const old = { ...a, hist: undefined };
    expect(mergeClients([{ node: 'a', result: old }, { node: 'b', result: b }], false)).toMatch(/^a: the client printed no window/);
  });

  it('one client is taken as it printed itself; a failed one among several fails the merge', () => {
    const one = parseClientOutput(JSON.stringify({ kind: 'electrode-client-result', requests: 5, completed: 5, errors: 0, timeouts: 0, threads: 1, warmup_s: 0, duration_s: 1, throughput_ops: 5, latency_us: { p50: 7, p90: 8, p95: 9, p99: 10 } }));
    const rec = {};
    expect(mergedOutput([one], [{ name: 'client0' }], true, rec)).toBe(one);
    expect(rec).toEqual({});
    const none = parseClientOutput('');
    expect(mergedOutput([one, none], [{ name: 'client0' }, { name: 'client1' }], true, rec)).toMatchObject({ result: null, problem: expect.stringMatching(/^client1: /) });
  });

  it("the client's window, timeline and histogram are parsed; malformed ones are a problem", () => {
    const base = { kind: 'electrode-client-result', requests: 5, completed: 5, errors: 0, timeouts: 0, threads: 1, warmup_s: 0, duration_s: 1, throughput_ops: 5, latency_us: { p50: 7, p90: 8, p95: 9, p99: 10 } };
    const full = { ...base, window: { mono_start_s: 1.5, mono_end_s: 2.5, real_start_s: 1e9 }, timeline: { bucket_ms: 100, completed: [2, 3] }, hist: [[7, 4], [10, 1]] };
    expect(parseClientOutput(JSON.stringify(full)).result).toMatchObject({ window: { monoStartS: 1.5, monoEndS: 2.5, realStartS: 1e9 }, timeline: { bucketMs: 100, completed: [2, 3] }, hist: [[7, 4], [10, 1]] });
    for (const bad of [{ window: { mono_start_s: 3, mono_end_s: 2, real_start_s: 0 } }, { timeline: { bucket_ms: 0, completed: [] } }, { hist: [[1]] }]) {
      const p = parseClientOutput(JSON.stringify({ ...base, ...bad }));
      expect(p.source, JSON.stringify(bad)).not.toBe('json');
    }
  });

  it('the schedule puts client counts inside replica counts and marks only counts above 1', () => {
    const t = schedule({ replicas: [3, 7], clients: [1, 2], arms: ['baseline', 'all'], threads: [8], repeat: 1 });
    expect(t.map((x) => `${x.replicas}/${x.clients ?? 1}/${x.arm}`)).toEqual(['3/1/baseline', '3/1/all', '3/2/baseline', '3/2/all', '7/1/baseline', '7/1/all', '7/2/baseline', '7/2/all']);
    expect(t[0]).not.toHaveProperty('clients');
  });
});
