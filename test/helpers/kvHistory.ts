/**
 * Histories from a simulated linearizable store, for the checker's tests:
 * closed-loop clients issue operations with random durations; each operation
 * takes effect at a random point inside its interval (a timed-out write at a
 * random later point, or never), and the results are what a single store
 * applying them in that order returns. Seeded, so every run is the same.
 */
import { HistoryOp, OpKind } from '../../src/check/history.js';
import { kvApply, kvStep, VALUE_CAP } from '../../src/check/kvModel.js';

export interface SimOptions {
  seed: number;
  clients: number;
  keys: number;
  opsPerClient: number;
  /** Fraction of operations that time out. */
  timeoutRate?: number;
  /** Relative weights of put, append, get. */
  mix?: [number, number, number];
  /** Longest operation, microseconds. */
  maxDuration?: number;
  /** Longest pause between a client's operations, microseconds. */
  maxGap?: number;
  /** The store's value cap (default 1024). */
  valueCap?: number;
}

/** One generated operation and when it took effect (null = never). */
export interface SimRecord {
  op: HistoryOp;
  point: number | null;
}

export function mulberry32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The operations, their effect points, and the results of applying them in point order. */
export function simulate(o: SimOptions): SimRecord[] {
  const rnd = mulberry32(o.seed);
  const [wp, wa, wg] = o.mix ?? [1, 1, 2];
  const maxDur = o.maxDuration ?? 40;
  const maxGap = o.maxGap ?? 10;
  const records: SimRecord[] = [];
  for (let c = 0; c < o.clients; c++) {
    let t = Math.floor(rnd() * maxDur);
    for (let j = 0; j < o.opsPerClient; j++) {
      const invoke = t + Math.floor(rnd() * maxGap);
      const key = `k${Math.floor(rnd() * o.keys)}`;
      const x = rnd() * (wp + wa + wg);
      const kind: OpKind = x < wp ? 'put' : x < wp + wa ? 'append' : 'get';
      const op: HistoryOp = { client: c, key, op: kind, invoke, status: 'ok' };
      if (kind !== 'get') op.value = `${c}.${j};`;
      if (rnd() < (o.timeoutRate ?? 0)) {
        op.status = 'timeout';
        // it may take effect long after the client gave up (and moved on), or never
        const point = rnd() < 0.5 ? invoke + rnd() * maxDur * 10 : null;
        records.push({ op, point });
        t = invoke + maxDur * 3;
      } else {
        const dur = 1 + Math.floor(rnd() * maxDur);
        op.complete = invoke + dur;
        records.push({ op, point: invoke + rnd() * dur });
        t = op.complete;
      }
    }
  }
  return replay(records, undefined, o.valueCap);
}

/**
 * Applies the records in point order and sets every ok operation's result.
 * `skip` takes no effect, but still reports the result it would have had
 * (a store that acknowledged a write and then lost it).
 */
export function replay(records: readonly SimRecord[], skip?: SimRecord, cap = VALUE_CAP): SimRecord[] {
  const out = records.map((r) => ({ op: { ...r.op }, point: r.point }));
  const store = new Map<string, string>();
  const order = out
    .map((r, i) => ({ r, i }))
    .filter((x) => x.r.point !== null)
    .sort((a, b) => a.r.point! - b.r.point! || a.i - b.i);
  for (const { r, i } of order) {
    const state = store.get(r.op.key) ?? '';
    const call = { op: r.op.op, value: r.op.value ?? '', result: undefined };
    const next = kvApply(state, call, cap);
    if (r.op.status === 'ok') r.op.result = r.op.op === 'get' ? state : next.length;
    if (records[i] !== skip) store.set(r.op.key, next);
  }
  return out;
}

/** The history as the C client writes it: one line per operation when it ends, line numbers set. */
export function toHistory(records: readonly SimRecord[]): HistoryOp[] {
  const end = (op: HistoryOp) => op.complete ?? op.invoke;
  return records
    .map((r) => r.op)
    .sort((a, b) => end(a) - end(b) || a.client - b.client)
    .map((op, i) => ({ ...op, line: i + 1 }));
}

/**
 * Linearizability by brute force, for tiny single-key histories: every order
 * that respects real time, each timed-out write placed anywhere after its
 * invocation or left out. Slow and obviously right, to check the checker.
 */
export function bruteForceLinearizable(history: readonly HistoryOp[], init = '', cap = VALUE_CAP): boolean {
  const ops = history.filter((o) => !(o.status === 'timeout' && o.op === 'get'));
  const used = ops.map(() => false);
  const failed = new Set<string>();
  const go = (state: string): boolean => {
    if (ops.every((o, i) => used[i] || o.status === 'timeout')) return true;
    const key = `${used.map(Number).join('')}|${state}`;
    if (failed.has(key)) return false;
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      if (used[i]) continue;
      // whatever completed before o was invoked goes first
      if (ops.some((p, j) => !used[j] && p.status === 'ok' && p.complete! < o.invoke)) continue;
      const next = kvStep(state, { op: o.op, value: o.value ?? '', result: o.status === 'ok' ? o.result : undefined }, cap);
      if (next === null) continue;
      used[i] = true;
      const ok = go(next);
      used[i] = false;
      if (ok) return true;
    }
    failed.add(key);
    return false;
  };
  return go(init);
}
