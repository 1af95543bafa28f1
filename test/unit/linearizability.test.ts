/**
 * The linearizability checker: hand-written histories with a known answer,
 * then seeded histories from a simulated linearizable store, with crafted
 * mutations that must be caught.
 */
import { describe, expect, it } from 'vitest';
import { formatHistoryLine, HistoryOp, parseHistory } from '../../src/check/history.js';
import { checkLinearizability, CheckResult, DEFAULT_BUDGET, Failure, formatVerdict } from '../../src/check/linearizability.js';
import { kvStep } from '../../src/check/kvModel.js';
import { SearchOp, searchKey } from '../../src/check/search.js';
import { bruteForceLinearizable, mulberry32, replay, simulate, SimRecord, toHistory } from '../helpers/kvHistory.js';

const put = (client: number, value: string, invoke: number, complete: number, result: number, key = 'k'): HistoryOp => ({ client, key, op: 'put', value, invoke, complete, status: 'ok', result });
const append = (client: number, value: string, invoke: number, complete: number, result: number, key = 'k'): HistoryOp => ({ client, key, op: 'append', value, invoke, complete, status: 'ok', result });
const get = (client: number, result: string, invoke: number, complete: number, key = 'k'): HistoryOp => ({ client, key, op: 'get', invoke, complete, status: 'ok', result });
const lost = (client: number, op: 'put' | 'append', value: string, invoke: number, key = 'k'): HistoryOp => ({ client, key, op, value, invoke, status: 'timeout' });

const verdict = (h: HistoryOp[]) => checkLinearizability(h).verdict;

/** A failure's witness checked again on its own, from its starting value. */
function witnessFails(f: Failure): boolean {
  const ops = f.ops.map((o, id) => ({ id, op: o.op, value: o.value ?? '', result: o.result, invoke: o.invoke, complete: o.complete ?? Infinity, src: o }));
  const init = !f.start ? '' : (f.start.value ?? null);
  return searchKey(ops, init, DEFAULT_BUDGET, 1024).verdict === 'fail';
}

describe('checkLinearizability: hand-written histories', () => {
  it('a sequential history is linearizable', () => {
    const r = checkLinearizability([put(1, 'x', 0, 10, 1), append(1, 'yz', 11, 20, 3), get(1, 'xyz', 21, 30), put(1, 'q', 31, 40, 1), get(1, 'q', 41, 50)]);
    expect(r).toMatchObject({ verdict: 'linearizable', ops: 5, keys: 1, indeterminate: 0, failures: [], unknownKeys: [] });
  });

  it('a get of a key never written returns ""', () => {
    expect(verdict([get(1, '', 0, 5)])).toBe('linearizable');
    expect(verdict([get(1, 'x', 0, 5)])).toBe('not-linearizable');
  });

  it('reads concurrent with a put may see either value, in an order some point in time explains', () => {
    // c2 sees the old value, c3 the new one: the put falls between them
    expect(verdict([put(1, 'x', 0, 100, 1), get(2, '', 10, 20), get(3, 'x', 30, 40), get(2, 'x', 50, 60)])).toBe('linearizable');
    // reads that overlap each other may see new then old as long as the put overlaps both
    expect(verdict([put(1, 'x', 0, 100, 1), get(2, 'x', 10, 50), get(3, '', 20, 60)])).toBe('linearizable');
    // touching intervals (complete = invoke) count as concurrent
    expect(verdict([get(2, 'x', 10, 20), put(1, 'x', 20, 30, 1)])).toBe('linearizable');
  });

  it('new-then-old across two reads that do not overlap is not linearizable', () => {
    expect(verdict([put(1, 'x', 0, 100, 1), get(2, 'x', 10, 20), get(3, '', 30, 40)])).toBe('not-linearizable');
  });

  it('a stale read (after the put completed) is not linearizable, and says why', () => {
    const r = checkLinearizability([put(1, 'x', 0, 10, 1), get(2, '', 20, 30)]);
    expect(r.verdict).toBe('not-linearizable');
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]!.ops).toHaveLength(2);
    expect(r.failures[0]!.explanation).toBe('get by client 2 at t=20..30 returned "", but with the 1 other op shown it could only return "x"');
  });

  it('a lost acknowledged put (a later read shows the older value) is not linearizable', () => {
    const h = [put(1, 'a', 0, 10, 1), put(2, 'b', 20, 30, 1), get(3, 'a', 40, 50)];
    const r = checkLinearizability(h);
    expect(r.verdict).toBe('not-linearizable');
    expect(r.failures[0]!.ops).toEqual(h);
    expect(r.failures[0]!.explanation).toMatch(/get by client 3 at t=40\.\.50 returned "a", but .* could only return "b"$/);
  });

  it('a duplicated append is not linearizable, whether the read or the length shows it', () => {
    expect(verdict([append(1, 'x', 0, 10, 1), get(2, 'xx', 20, 30)])).toBe('not-linearizable');
    expect(verdict([append(1, 'x', 0, 10, 2)])).toBe('not-linearizable');
    expect(verdict([append(1, 'x', 0, 10, 1), append(1, 'y', 20, 30, 3)])).toBe('not-linearizable');
    // the same append twice concurrent with a read is fine when done once
    expect(verdict([append(1, 'x', 0, 10, 1), get(2, 'x', 5, 30)])).toBe('linearizable');
  });

  it('an indeterminate write may take effect late, even after its client moved on', () => {
    const h = [put(1, 'a', 0, 10, 1), lost(2, 'put', 'b', 5), get(2, 'a', 500, 510), get(1, 'a', 520, 530), get(1, 'b', 900, 910)];
    const r = checkLinearizability(h);
    expect(r).toMatchObject({ verdict: 'linearizable', indeterminate: 1 });
    // an indeterminate append counts in a later append's length only if it was read
    expect(verdict([lost(1, 'append', 'x', 0), append(2, 'y', 100, 110, 2), get(2, 'xy', 120, 130)])).toBe('linearizable');
  });

  it('an indeterminate write may never take effect', () => {
    expect(verdict([put(1, 'a', 0, 10, 1), lost(2, 'put', 'b', 5), get(1, 'a', 20, 30), get(2, 'a', 900, 910)])).toBe('linearizable');
    expect(verdict([lost(1, 'append', 'x', 0), append(2, 'y', 100, 110, 1), get(2, 'y', 120, 130)])).toBe('linearizable');
  });

  it('an indeterminate write cannot take effect before it was invoked, nor twice', () => {
    expect(verdict([get(1, 'b', 0, 10), lost(2, 'put', 'b', 20)])).toBe('not-linearizable');
    expect(verdict([lost(1, 'append', 'x', 0), get(2, 'xx', 100, 110)])).toBe('not-linearizable');
  });

  it('a timed-out get is dropped', () => {
    const r = checkLinearizability([put(1, 'a', 0, 10, 1), { client: 2, key: 'k', op: 'get', invoke: 20, status: 'timeout' }]);
    expect(r).toMatchObject({ verdict: 'linearizable', ops: 2, indeterminate: 1 });
  });

  it('appends saturate at 1024 bytes: the length stops there and the tail is dropped', () => {
    const big = 'a'.repeat(1000);
    const tail = 'b'.repeat(50);
    const full = big + 'b'.repeat(24);
    expect(verdict([put(1, big, 0, 10, 1000), append(1, tail, 20, 30, 1024), get(1, full, 40, 50), append(1, 'z', 60, 70, 1024), get(1, full, 80, 90)])).toBe('linearizable');
    // the length a store that forgot the cap would return
    expect(verdict([put(1, big, 0, 10, 1000), append(1, tail, 20, 30, 1050)])).toBe('not-linearizable');
    // one byte past the cap after saturation
    expect(verdict([put(1, big, 0, 10, 1000), append(1, tail, 20, 30, 1024), append(1, 'z', 40, 50, 1025)])).toBe('not-linearizable');
    // the cap holds for the value read back, too
    expect(verdict([put(1, big, 0, 10, 1000), append(1, tail, 20, 30, 1024), get(1, big + tail, 40, 50)])).toBe('not-linearizable');
    // and for a put longer than the cap
    expect(verdict([put(1, 'c'.repeat(2000), 0, 10, 1024), get(1, 'c'.repeat(1024), 20, 30)])).toBe('linearizable');
  });

  it('the cap is an option', () => {
    expect(checkLinearizability([put(1, 'abcdef', 0, 10, 4), get(1, 'abcd', 20, 30)], { valueCap: 4 }).verdict).toBe('linearizable');
  });

  it('keys are checked independently: a failure names only its key', () => {
    // each history is fine per key, and would not be if the keys were one register
    const h = [put(1, 'x', 0, 10, 1, 'a'), get(2, '', 20, 30, 'b'), put(2, 'y', 40, 50, 1, 'b'), get(1, 'x', 60, 70, 'a'), get(3, 'y', 80, 90, 'b')];
    expect(checkLinearizability(h)).toMatchObject({ verdict: 'linearizable', keys: 2 });
    const bad = [...h, get(3, '', 100, 110, 'b')];
    const r = checkLinearizability(bad, { perKey: true });
    expect(r.verdict).toBe('not-linearizable');
    expect(r.failures.map((f) => f.key)).toEqual(['b']);
    expect(r.perKey!.map((k) => [k.key, k.verdict, k.ops])).toEqual([
      ['a', 'linearizable', 2],
      ['b', 'not-linearizable', 4],
    ]);
  });

  it('reads a parsed file end to end', () => {
    const text = [
      '{"client":17,"key":"k5","op":"put","value":"11.3;","invoke":1234,"complete":1300,"status":"ok","result":5}',
      '{"client":17,"key":"k5","op":"append","value":"11.4;","invoke":1301,"complete":1390,"status":"ok","result":10}',
      '{"client":17,"key":"k5","op":"get","invoke":1391,"complete":1450,"status":"ok","result":"11.3;"}',
      '{"client":18,"key":"k9","op":"put","value":"12.7;","invoke":2000,"status":"timeout"}',
    ].join('\n');
    const r = checkLinearizability(parseHistory(text, 'h.jsonl'));
    expect(r).toMatchObject({ verdict: 'not-linearizable', ops: 4, keys: 2, indeterminate: 1 });
    expect(r.failures[0]!.explanation).toBe('get by client 17 at t=1391..1450 (line 3) returned "11.3;", but with the 2 other ops shown it could only return "11.3;11.4;"');
    const text2 = formatVerdict(r);
    expect(text2.split('\n')[0]).toMatch(/^NOT linearizable: 1 of 2 keys fail \("k5"\); 4 ops on 2 keys, 1 indeterminate, \d+ ms$/);
    expect(text2).toContain('c17 get -> "11.3;"  [1391..1450]  line 3');
  });
});

describe('checkLinearizability: budget', () => {
  const hard = toHistory(simulate({ seed: 3, clients: 16, keys: 1, opsPerClient: 40, timeoutRate: 0.05 }));

  it('a key that needs more than its budget is unknown, never linearizable', () => {
    expect(checkLinearizability(hard).verdict).toBe('linearizable');
    const r = checkLinearizability(hard, { budget: { steps: 50 }, perKey: true });
    expect(r).toMatchObject({ verdict: 'unknown', unknownKeys: ['k0'], failures: [] });
    expect(r.perKey![0]).toMatchObject({ verdict: 'unknown', reason: 'steps' });
    expect(formatVerdict(r)).toMatch(/^unknown: no key fails, but 1 of 1 ran out of search budget/);
  });

  it('a time budget works the same way', () => {
    const r = checkLinearizability(hard, { budget: { ms: 0 }, perKey: true });
    expect(r.verdict).toBe('unknown');
    expect(r.perKey![0]!.reason).toBe('time');
  });

  it('a failing key still fails when another key is unknown', () => {
    const other = hard.map((o) => ({ ...o, key: 'z' }));
    const r = checkLinearizability([put(1, 'x', 0, 10, 1, 'a'), get(2, '', 20, 30, 'a'), ...other], { budget: { steps: 50 } });
    expect(r).toMatchObject({ verdict: 'not-linearizable', unknownKeys: ['z'] });
    expect(formatVerdict(r)).toContain('undecided (search budget ran out): "z"');
  });
});

/** Records of a put/get history with a put, a later put, and a get after both: the second put was acknowledged and lost if the get shows the first. */
function staleReadCandidates(records: readonly SimRecord[]): { first: SimRecord; read: SimRecord }[] {
  const ok = records.filter((r) => r.op.status === 'ok');
  const out: { first: SimRecord; read: SimRecord }[] = [];
  for (const read of ok) {
    if (read.op.op !== 'get') continue;
    const before = ok.filter((w) => w.op.key === read.op.key && w.op.op === 'put' && w.op.complete! < read.op.invoke);
    // a put p1, then a put p2 invoked after p1 completed and completed before the read
    for (const p2 of before) {
      const p1 = before.find((p) => p.op.complete! < p2.op.invoke);
      if (p1 && read.op.result !== p1.op.value) {
        out.push({ first: p1, read });
        break;
      }
    }
  }
  return out;
}

describe('checkLinearizability: seeded histories from a linearizable store', () => {
  it('every simulated history is linearizable (concurrent clients, timeouts, all three ops)', () => {
    const steps: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const h = toHistory(simulate({ seed, clients: 8, keys: 3, opsPerClient: 40, timeoutRate: 0.05 }));
      // through the file format, as the CLI will read it
      const parsed = parseHistory(h.map(formatHistoryLine).join('\n'), `seed-${seed}`);
      const r = checkLinearizability(parsed);
      expect(r.verdict, `seed ${seed}`).toBe('linearizable');
      expect(r.indeterminate, `seed ${seed}`).toBeGreaterThan(0);
      steps.push(r.steps / r.ops);
    }
    // the search goes nearly straight on these: a few steps per op
    expect(Math.max(...steps)).toBeLessThan(20);
  });

  it('a read mutated to a value already overwritten is caught, in every seed that has one', () => {
    let caught = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const records = simulate({ seed, clients: 6, keys: 2, opsPerClient: 30, mix: [1, 0, 1], timeoutRate: 0.05 });
      expect(checkLinearizability(toHistory(records)).verdict).toBe('linearizable');
      for (const { first, read } of staleReadCandidates(records).slice(0, 3)) {
        const mutated = records.map((r) => (r === read ? { ...r, op: { ...r.op, result: first.op.value } } : r));
        const r = checkLinearizability(toHistory(mutated));
        expect(r.verdict, `seed ${seed}`).toBe('not-linearizable');
        expect(r.failures.map((f) => f.key)).toEqual([read.op.key]);
        expect(r.failures[0]!.ops.some((o) => o.op === 'get' && o.client === read.op.client && o.invoke === read.op.invoke)).toBe(true);
        caught++;
      }
    }
    expect(caught).toBeGreaterThanOrEqual(30);
  });

  it("an acknowledged append whose effect the store dropped is caught", () => {
    let caught = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const records = simulate({ seed, clients: 5, keys: 2, opsPerClient: 30, mix: [1, 3, 2] });
      const ok = records.filter((r) => r.op.status === 'ok');
      // an append a after a put p that completed before a started, and a read r after a, with
      // no put taking effect between a and r: r must show a's value, whatever the order
      const target = ok.find((a) => {
        if (a.op.op !== 'append') return false;
        const same = ok.filter((o) => o.op.key === a.op.key);
        const lastPut = same.filter((p) => p.op.op === 'put' && p.point! < a.point!).pop();
        if (!lastPut || !(lastPut.op.complete! < a.op.invoke)) return false;
        const read = same.find((r) => r.op.op === 'get' && r.op.invoke > a.op.complete! && (r.op.result as string).includes(a.op.value!));
        return read !== undefined && !same.some((p) => p.op.op === 'put' && p.point! > a.point! && p.point! < read.point!);
      });
      if (!target) continue;
      const intact = toHistory(records);
      expect(checkLinearizability(intact).verdict, `seed ${seed}`).toBe('linearizable');
      const r = checkLinearizability(toHistory(replay(records, target)));
      expect(r.verdict, `seed ${seed}`).toBe('not-linearizable');
      expect(r.failures.map((f) => f.key)).toEqual([target.op.key]);
      caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(15);
  });

  it('the smallest failing history of a stale read buried in 200 ops has at most 4 ops, and fails on its own', () => {
    const records = simulate({ seed: 11, clients: 4, keys: 1, opsPerClient: 50, mix: [1, 0, 1] });
    const candidates = staleReadCandidates(records);
    // one well inside the history
    const { first, read } = candidates[Math.floor(candidates.length * 0.7)]!;
    const mutated = toHistory(records.map((r) => (r === read ? { ...r, op: { ...r.op, result: first.op.value } } : r)));
    expect(mutated).toHaveLength(200);
    const r = checkLinearizability(mutated);
    expect(r.verdict).toBe('not-linearizable');
    const f = r.failures[0]!;
    expect(f.keyOps).toBe(200);
    expect(f.ops.length).toBeLessThanOrEqual(4);
    // it keeps the read, and the put whose value it shows
    expect(f.ops).toContainEqual(expect.objectContaining({ op: 'get', client: read.op.client, invoke: read.op.invoke }));
    expect(f.ops).toContainEqual(expect.objectContaining({ op: 'put', value: first.op.value }));
    expect(witnessFails(f)).toBe(true);
  });

  it('a dropped append in a long append history shrinks to a few ops', () => {
    const records = simulate({ seed: 5, clients: 4, keys: 1, opsPerClient: 60, mix: [1, 6, 3], maxGap: 30 });
    const appends = records.filter((r) => r.op.status === 'ok' && r.op.op === 'append');
    const r = checkLinearizability(toHistory(replay(records, appends[Math.floor(appends.length * 0.6)])));
    expect(r.verdict).toBe('not-linearizable');
    expect(r.failures[0]!.ops.length).toBeLessThanOrEqual(4);
    expect(witnessFails(r.failures[0]!)).toBe(true);
  });

  it('a stale read on a key 32 clients hammer is found and shrunk to the read, its writer and the write that overwrote it', () => {
    const records = simulate({ seed: 11, clients: 32, keys: 1, opsPerClient: 100, timeoutRate: 0.01 });
    const ok = records.filter((r) => r.op.status === 'ok');
    const reads = ok.filter((r) => r.op.op === 'get');
    const read = reads[Math.floor(reads.length * 0.7)]!;
    const old = ok.filter((w) => w.op.op === 'put' && w.op.complete! < read.op.invoke - 200).pop()!;
    const r = checkLinearizability(toHistory(records.map((x) => (x === read ? { ...x, op: { ...x.op, result: old.op.value } } : x))));
    expect(r.verdict).toBe('not-linearizable');
    const f = r.failures[0]!;
    expect(f.keyOps).toBe(3200);
    expect(f.ops).toHaveLength(3);
    expect(f.ops).toContainEqual(expect.objectContaining({ op: 'get', client: read.op.client, invoke: read.op.invoke }));
    expect(f.ops).toContainEqual(expect.objectContaining({ op: 'put', value: old.op.value }));
    expect(witnessFails(f)).toBe(true);
  });
});

/** A tiny one-key history from the simulated store, often with one result changed to a plausible wrong one. */
function tinyHistory(seed: number): { h: HistoryOp[]; cap: number } {
  const rnd = mulberry32(seed * 7919);
  const cap = rnd() < 0.3 ? 6 : 1024;
  // short durations and gaps make many equal timestamps
  const tight = rnd() < 0.5;
  const records = simulate({
    seed,
    clients: 2 + Math.floor(rnd() * 3),
    keys: 1,
    opsPerClient: 1 + Math.floor(rnd() * 3),
    timeoutRate: 0.2,
    mix: [1, 2, 2],
    maxDuration: tight ? 4 : 40,
    maxGap: tight ? 3 : 30,
    valueCap: cap,
  });
  const h = toHistory(records);
  const ok = h.filter((o) => o.status === 'ok');
  if (ok.length && rnd() < 0.6) {
    const o = ok[Math.floor(rnd() * ok.length)]!;
    const values = ['', ...h.flatMap((x) => (x.value ? [x.value] : []))];
    const pick = () => values[Math.floor(rnd() * values.length)]!;
    o.result = o.op === 'get' ? (rnd() < 0.5 ? pick() : pick() + pick()).slice(0, cap) : (o.result as number) + (rnd() < 0.5 ? -1 : 1) * (1 + Math.floor(rnd() * 4));
    if (typeof o.result === 'number' && o.result < 0) o.result = 0;
  }
  return { h, cap };
}

describe('checkLinearizability agrees with brute force', () => {
  it('on 3000 tiny histories (up to 12 ops, timeouts, ties, a small cap, wrong results), and every failing one shrinks to a history that fails on its own', () => {
    const seen = { linearizable: 0, 'not-linearizable': 0 };
    for (let seed = 1; seed <= 3000; seed++) {
      const { h, cap } = tinyHistory(seed);
      const expected = bruteForceLinearizable(h, '', cap) ? 'linearizable' : 'not-linearizable';
      const r = checkLinearizability(h, { valueCap: cap });
      expect(r.verdict, `seed ${seed}: ${JSON.stringify(h)}`).toBe(expected);
      seen[expected]++;
      if (expected === 'not-linearizable') {
        const f = r.failures[0]!;
        expect(f.ops.length).toBeLessThanOrEqual(h.length);
        // (a witness from any value fails from "" too)
        expect(bruteForceLinearizable(f.ops, f.start?.value ?? '', cap), `seed ${seed} witness: ${JSON.stringify(f)}`).toBe(false);
      }
    }
    expect(seen.linearizable).toBeGreaterThan(800);
    expect(seen['not-linearizable']).toBeGreaterThan(800);
  });
});

describe('checkLinearizability: hot keys', () => {
  it('a wrong append length on a key 32 clients hammer is shown by a few ops around it, from any value', () => {
    const records = simulate({ seed: 3, clients: 32, keys: 1, opsPerClient: 100, timeoutRate: 0.01 });
    const appends = records.filter((r) => r.op.status === 'ok' && r.op.op === 'append' && (r.op.result as number) < 1000);
    const victim = appends[Math.floor(appends.length / 2)]!;
    const r = checkLinearizability(toHistory(records.map((x) => (x === victim ? { ...x, op: { ...x.op, result: (x.op.result as number) + 1 } } : x))));
    expect(r.verdict).toBe('not-linearizable');
    const f = r.failures[0]!;
    expect(f.ops.length).toBeLessThanOrEqual(4);
    expect(f.ops).toContainEqual(expect.objectContaining({ op: 'append', client: victim.op.client, invoke: victim.op.invoke }));
    // the ops before the window are summed up as "any value", and it fails whatever that was
    expect(f.start).toEqual({ at: expect.any(Number) });
    expect(witnessFails(f)).toBe(true);
    expect(f.explanation).toMatch(/\(from whatever the key held at t=\d+\) gives every operation its result$/);
  });
});

/** Brute force over the search's own ops: optional ones may be skipped, indeterminate ones (complete Infinity) left out. */
function bruteForceSearchOps(ops: readonly SearchOp[], init: string, cap: number): boolean {
  const used = ops.map(() => false);
  const failed = new Set<string>();
  const go = (state: string): boolean => {
    if (ops.every((o, i) => used[i] || !Number.isFinite(o.complete))) return true;
    const key = `${used.map(Number).join('')}|${state}`;
    if (failed.has(key)) return false;
    for (let i = 0; i < ops.length; i++) {
      if (used[i]) continue;
      const o = ops[i]!;
      if (ops.some((p, j) => !used[j] && p.complete < o.invoke)) continue;
      const nexts = [kvStep(state, o, cap), ...(o.optional ? [state] : [])];
      for (const next of nexts) {
        if (next === null) continue;
        used[i] = true;
        const ok = go(next);
        used[i] = false;
        if (ok) return true;
      }
    }
    failed.add(key);
    return false;
  };
  return go(init);
}

describe('searchKey on history windows agrees with brute force', () => {
  it('from any value, an append still fixes the length that later ops see', () => {
    const op = (id: number, o: Partial<SearchOp>): SearchOp => ({ id, op: 'get', value: '', result: undefined, invoke: id * 10, complete: id * 10 + 5, src: {} as HistoryOp, ...o });
    const any = (ops: SearchOp[]) => searchKey(ops, null, DEFAULT_BUDGET, 1024).verdict;
    expect(any([op(0, { op: 'append', value: 'c', result: 3 }), op(1, { result: 'abc' })])).toBe('ok');
    expect(any([op(0, { op: 'append', value: 'c', result: 3 }), op(1, { result: 'ab' })])).toBe('fail');
    expect(any([op(0, { op: 'append', value: 'c', result: 3 }), op(1, { op: 'append', value: 'd', result: 5 })])).toBe('fail');
    expect(any([op(0, { op: 'append', value: 'c', result: 3 }), op(1, { op: 'append', value: 'd', result: 4 }), op(2, { result: 'ab' })])).toBe('fail');
    expect(any([op(0, { result: 'ab' }), op(1, { op: 'append', value: 'c', result: 4 })])).toBe('fail');
    // an optional append may have happened before the window
    expect(any([op(0, { op: 'append', value: 'c', result: 3, optional: true }), op(1, { op: 'put', value: 'p', result: 1 }), op(2, { result: 'p' })])).toBe('ok');
  });

  it('optional ops exactly, and "from any value" only ever fails when every starting value fails', () => {
    let anyFails = 0;
    for (let seed = 1; seed <= 1500; seed++) {
      const { h, cap } = tinyHistory(seed);
      const rnd = mulberry32(seed);
      const ops: SearchOp[] = h
        .filter((o) => !(o.status === 'timeout' && o.op === 'get'))
        .map((o, id) => ({ id, op: o.op, value: o.value ?? '', result: o.result, invoke: o.invoke, complete: o.complete ?? Infinity, src: o }))
        .map((o) => (o.op !== 'get' && Number.isFinite(o.complete) && rnd() < 0.3 ? { ...o, optional: true } : o));
      // (a store never holds more than the cap)
      const values = ['', 'x', ...ops.flatMap((o) => (o.op === 'get' ? [o.result as string] : [o.value, o.value + o.value]))].filter((v) => v.length <= cap);
      const init = values[Math.floor(rnd() * values.length)]!;
      const exact = searchKey(ops, init, DEFAULT_BUDGET, cap).verdict;
      expect(exact, `seed ${seed} from ${JSON.stringify(init)}`).toBe(bruteForceSearchOps(ops, init, cap) ? 'ok' : 'fail');
      if (searchKey(ops, null, DEFAULT_BUDGET, cap).verdict === 'fail') {
        anyFails++;
        for (const v of values) expect(bruteForceSearchOps(ops, v, cap), `seed ${seed} from ${JSON.stringify(v)} cap ${cap} ops ${JSON.stringify(ops.map(({ src, ...o }) => o))}`).toBe(false);
      }
    }
    expect(anyFails).toBeGreaterThan(200);
  });
});

describe('checkLinearizability: size', () => {
  it('8 clients on 1000 keys, 30k ops: linearizable, a few steps per op', () => {
    const h = toHistory(simulate({ seed: 42, clients: 8, keys: 1000, opsPerClient: 3750, timeoutRate: 0.01 }));
    const r: CheckResult = checkLinearizability(h);
    expect(r).toMatchObject({ verdict: 'linearizable', ops: 30_000, keys: 1000 });
    expect(r.steps / r.ops).toBeLessThan(5);
  });

  it('32 clients on 8 keys, 8000 ops: linearizable, a few steps per op', () => {
    const h = toHistory(simulate({ seed: 3, clients: 32, keys: 8, opsPerClient: 250, timeoutRate: 0.01 }));
    const r = checkLinearizability(h);
    expect(r).toMatchObject({ verdict: 'linearizable', ops: 8000, keys: 8 });
    expect(r.steps / r.ops).toBeLessThan(5);
  });

  it('32 clients on one key (22 operations in flight on average), 3200 ops: linearizable within the default budget', () => {
    const h = toHistory(simulate({ seed: 13, clients: 32, keys: 1, opsPerClient: 100, timeoutRate: 0.01 }));
    const r = checkLinearizability(h);
    expect(r.verdict).toBe('linearizable');
    expect(r.steps).toBeLessThan(DEFAULT_BUDGET.steps);
  });
});
