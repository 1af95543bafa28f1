import { describe, expect, it } from 'vitest';
import { cvPercent, median, speedup, spread, stdev, summarize } from '../../src/bench/stats.js';
import { rotate, schedule } from '../../src/bench/schedule.js';
import { OPTS, rec } from '../helpers/bench.fixtures.js';

describe('stats', () => {
  it('median, stdev, cv', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
    expect(stdev([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(2.138, 3);
    expect(cvPercent([10, 10, 10])).toBe(0);
    expect(cvPercent([90, 110])).toBeCloseTo(14.14, 2);
    expect(Number.isNaN(cvPercent([0, 0]))).toBe(true);
    expect(spread([5, 1, 9])).toMatchObject({ n: 3, median: 5, min: 1, max: 9 });
  });

  it('speedup over baseline', () => {
    expect(speedup(150, 100)).toBe(1.5);
    expect(Number.isNaN(speedup(1, 0))).toBe(true);
  });

  it('summarize: medians per cell, speedup vs the same replicas/threads baseline, crashes excluded, CV warning', () => {
    const rows = summarize({
      options: OPTS,
      records: [
        rec({ replicas: 3, arm: 'baseline', threads: 1, repeat: 0 }, 100, 200),
        rec({ replicas: 3, arm: 'baseline', threads: 1, repeat: 1 }, 110, 180),
        rec({ replicas: 3, arm: 'reply', threads: 1, repeat: 0 }, 150, 100),
        rec({ replicas: 3, arm: 'reply', threads: 1, repeat: 1 }, null),
        rec({ replicas: 5, arm: 'baseline', threads: 1, repeat: 0 }, 50),
        rec({ replicas: 5, arm: 'baseline', threads: 1, repeat: 1 }, 100),
      ],
    });
    expect(rows.map((r) => `${r.replicas}/${r.arm}`)).toEqual(['3/baseline', '3/reply', '5/baseline']);
    const [b3, r3, b5] = rows;
    expect(b3!.throughput.median).toBe(105);
    expect(r3!.okRuns).toBe(1);
    expect(r3!.crashedRuns).toBe(1);
    expect(r3!.speedup).toBeCloseTo(150 / 105, 6);
    expect(r3!.p50Change).toBeCloseTo(((100 - 190) / 190) * 100, 6);
    expect(b3!.cvWarning).toBe(false);
    expect(b5!.cvWarning).toBe(true);
  });
});

describe('schedule', () => {
  it('rotate', () => {
    expect(rotate([1, 2, 3], 1)).toEqual([2, 3, 1]);
    expect(rotate([1, 2, 3], 4)).toEqual([2, 3, 1]);
    expect(rotate([], 2)).toEqual([]);
  });

  it('covers every combination once, replica counts outermost, arms rotated per repeat', () => {
    const s = schedule({ replicas: [3, 5], arms: ['baseline', 'broadcast', 'reply'], threads: [1, 8], repeat: 3 });
    expect(s).toHaveLength(2 * 3 * 2 * 3);
    expect(new Set(s.map((t) => `${t.replicas}/${t.arm}/${t.threads}/${t.repeat}`)).size).toBe(s.length);
    expect(s.map((t) => t.seq)).toEqual(s.map((_, i) => i));
    // all 3-replica trials come before any 5-replica trial
    expect(s.findIndex((t) => t.replicas === 5)).toBe(18);
    const firstArm = (rep: number) => s.find((t) => t.replicas === 3 && t.repeat === rep)!.arm;
    expect([firstArm(0), firstArm(1), firstArm(2)]).toEqual(['baseline', 'broadcast', 'reply']);
    // no arm is last in every repeat
    const lastArm = (rep: number) => s.filter((t) => t.replicas === 3 && t.repeat === rep).at(-1)!.arm;
    expect(new Set([lastArm(0), lastArm(1), lastArm(2)]).size).toBe(3);
  });
});
