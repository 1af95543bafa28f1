/**
 * The `forge` nemesis's pure half (src/bench/nemesis.ts): parsing, the
 * sender's JSON line, the drops summed from the replicas' exit counters,
 * the report line, and the sender's command line (src/core/argv.ts).
 */
import { describe, expect, it } from 'vitest';
import { forgeArgv } from '../../src/core/argv.js';
import { FORGE_DROP_COUNTERS, FORGE_LIES, forgeDrops, highestView, parseForgeOutput, parseNemesisEntry } from '../../src/bench/nemesis.js';
import { renderReport } from '../../src/bench/report.js';
import type { ResultsFile } from '../../src/bench/types.js';
import { OPTS, rec } from '../helpers/bench.fixtures.js';

describe('forge nemesis', () => {
  it('parses forge and forge:PPS; refuses a rate out of range, naming the form', () => {
    expect(parseNemesisEntry('forge')).toEqual({ name: 'forge', kind: 'forge', rate: 2000 });
    expect(parseNemesisEntry('forge:5000')).toEqual({ name: 'forge:5000', kind: 'forge', rate: 5000 });
    for (const bad of ['forge:0', 'forge:fast', 'forge:100001', 'forge:5%']) expect(parseNemesisEntry(bad), bad).toMatchObject({ code: 'BENCH_NEMESIS', hint: expect.stringContaining('forge:5000') });
  });

  it('reads the sender JSON line, by lie; undefined without one or with a broken one', () => {
    const out = 'forge: sent 9 datagrams (...)\n{"forge":{"sent":9,"ack-beyond":1,"spoofed":3,"other-index":1,"view-jump":2,"bad-entries":1,"not-leader":1,"errors":0,"view":4,"leader":1}}\n';
    expect(parseForgeOutput(out)).toEqual({ view: 4, leader: 1, sent: 9, sendErrors: 0, sentByLie: { 'ack-beyond': 1, spoofed: 3, 'other-index': 1, 'view-jump': 2, 'bad-entries': 1, 'not-leader': 1 } });
    expect(Object.keys(parseForgeOutput(out)!.sentByLie)).toEqual([...FORGE_LIES]);
    expect(parseForgeOutput('forge: cannot open a raw IP socket\n')).toBeUndefined();
    expect(parseForgeOutput('{"forge":{"sent":')).toBeUndefined();
  });

  it('sums only the drop counters of the replicas that left an exit line, and names the others', () => {
    const st = (n: number) => Object.fromEntries([...FORGE_DROP_COUNTERS.map((k) => [k, n]), ['rx', 1000], ['quorum marks', 50]]);
    const d = forgeDrops({ replica0: st(2), replica1: st(1), replica2: undefined });
    expect(d.dropped).toBe(3 * FORGE_DROP_COUNTERS.length);
    expect(d.droppedBy!.spoofed).toBe(3);
    expect(d.droppedBy!.rx).toBeUndefined();
    expect(d.uncounted).toEqual(['replica2']);
    expect(forgeDrops({ replica0: st(0) }).uncounted).toBeUndefined();
  });

  it('the highest normal view the logs name, 0 before any', () => {
    const l = (v: number) => `1796644297.484086 2026-12-07T11:51:37.484086Z replica1 info: view ${v} normal (x)`;
    expect(highestView([`${l(1)}\n${l(3)}`, l(2)])).toBe(3);
    expect(highestView(['', 'nothing'])).toBe(0);
  });

  it('the report says sent / dropped per trial', () => {
    const forge = { view: 0, leader: 0, sent: 1200, sentByLie: { 'ack-beyond': 200, spoofed: 600 }, sendErrors: 0, dropped: 1190, droppedBy: { spoofed: 600, 'acks beyond the log': 190, malformed: 0 } };
    const r = { ...rec({ replicas: 3, arm: 'baseline', threads: 8, repeat: 0 }, 5000), nemesis: 'forge', fault: { name: 'forge', kind: 'forge' as const, targets: ['replica0'], forge } };
    const results: ResultsFile = { kind: 'electrode-lab-bench-results', version: 1, id: 'x', lab: 't', createdAt: '', outcome: 'complete', options: { ...OPTS, nemesis: [{ name: 'forge', kind: 'forge', rate: 2000 }] }, skipped: [], records: [r] };
    const text = renderReport(results, '/runs/x');
    expect(text).toMatch(/forged: sent 1,200 \/ dropped 1,190 by the replicas' counters, in 1 trial\(s\)/);
    expect(text).toMatch(/sent 1200 \(ack-beyond 200, spoofed 600\), dropped 1190 \(spoofed 600, acks beyond the log 190\)/);
  });

  it('the sender command line', () => {
    expect(forgeArgv('/b/forge', { config: '/l/replica.config', view: 3, seconds: 1.5, rate: 2000, seed: 7 })).toEqual(['/b/forge', '-c', '/l/replica.config', '--view', '3', '--seconds', '1.500', '--rate', '2000', '--seed', '7']);
  });
});
