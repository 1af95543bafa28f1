/**
 * Linearizability of a key-value history (see history.ts for the file and
 * kvModel.ts for the store's semantics). Operations touch one key each, so
 * each key is checked on its own (P-compositionality, as porcupine
 * partitions by key) with the search in search.ts; a key that needs more than
 * its budget is "unknown", never "linearizable" -- unless a window of it
 * around where the search gave up fails on its own. A failing key is shrunk
 * to a small history that still fails (shrink.ts).
 *
 * Jepsen's rules for timeouts: a timed-out write may take effect at any time
 * after its invocation, or never; a timed-out read says nothing and is dropped.
 *
 * Pure apart from reading the clock (elapsedMs and the optional ms budget).
 */
import { HistoryOp } from './history.js';
import { VALUE_CAP } from './kvModel.js';
import { BudgetReason, SearchBudget, SearchOp, searchKey } from './search.js';
import { CheckFn, explainFailure, localFailure, ShrinkHint, shrinkFailure, shrinkWitness, Witness } from './shrink.js';

export type Verdict = 'linearizable' | 'not-linearizable' | 'unknown';

export interface CheckOptions {
  /** Per key. Steps are deterministic; ms is wall-clock. */
  budget?: Partial<SearchBudget>;
  /** The store's value cap in bytes (default 1024). */
  valueCap?: number;
  /** Effort for shrinking each failing key: searches run and their total steps. checks 0 = report the whole key. */
  shrink?: { checks?: number; steps?: number };
  /** Include a verdict per key in the result. */
  perKey?: boolean;
}

export const DEFAULT_BUDGET: SearchBudget = { steps: 10_000_000, ms: Infinity, memoryMB: 512 };
export const DEFAULT_SHRINK = { checks: 300, steps: 2_000_000 };

export interface KeyVerdict {
  key: string;
  verdict: Verdict;
  ops: number;
  indeterminate: number;
  steps: number;
  /** The budget that ran out, for "unknown". */
  reason?: BudgetReason;
}

export interface Failure {
  key: string;
  /** A small part of the key's history that is not linearizable on its own, in invocation order. */
  ops: HistoryOp[];
  /**
   * What the key held before `ops`, when the operations cut away matter: the
   * value they must have left, or (no value) any value -- the ops fail whatever
   * it was. Absent: the key starts empty, as in the full history.
   */
  start?: { at: number; value?: string };
  /** How many operations the key had in the full history. */
  keyOps: number;
  explanation: string;
}

export interface CheckResult {
  verdict: Verdict;
  ops: number;
  keys: number;
  /** Timed-out operations (writes kept as indeterminate, reads dropped). */
  indeterminate: number;
  /** Search steps over all keys (shrinking excluded): a deterministic measure of effort. */
  steps: number;
  perKey?: KeyVerdict[];
  failures: Failure[];
  unknownKeys: string[];
  elapsedMs: number;
}

export function checkLinearizability(history: readonly HistoryOp[], opts: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const budget: SearchBudget = { ...DEFAULT_BUDGET, ...opts.budget };
  const cap = opts.valueCap ?? VALUE_CAP;
  const shrinkEffort = { ...DEFAULT_SHRINK, ...opts.shrink };

  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  const keys = [...byKey.keys()].sort();
  const perKey: KeyVerdict[] = [];
  const failures: Failure[] = [];
  let steps = 0;
  let indeterminate = 0;
  for (const key of keys) {
    const keyOps = byKey.get(key)!;
    const timedOut = keyOps.filter((o) => o.status === 'timeout').length;
    indeterminate += timedOut;
    const ops = toSearchOps(keyOps);
    const out = searchKey(ops, '', budget, cap);
    steps += out.steps;
    const hint: ShrinkHint | undefined = out.stuck !== undefined ? { op: ops[out.stuck]!, starved: out.starved === true } : undefined;
    let failure: Failure | null = null;
    if (out.verdict === 'fail') {
      failure = toFailure(key, keyOps, shrinkFailure(ops, boundedCheck(budget, shrinkEffort, cap), cap, hint), cap);
    } else if (out.verdict === 'unknown' && hint) {
      // too costly as a whole, but a window around where the search gave up may fail on its own
      const check = boundedCheck(budget, shrinkEffort, cap);
      const local = localFailure(ops, hint, check);
      if (local) failure = toFailure(key, keyOps, shrinkWitness(local, check, cap), cap);
    }
    if (failure) failures.push(failure);
    const verdict: Verdict = failure ? 'not-linearizable' : out.verdict === 'ok' ? 'linearizable' : 'unknown';
    const reason = verdict === 'unknown' && out.reason ? { reason: out.reason } : {};
    perKey.push({ key, verdict, ops: keyOps.length, indeterminate: timedOut, steps: out.steps, ...reason });
  }
  const unknownKeys = perKey.filter((k) => k.verdict === 'unknown').map((k) => k.key);
  const verdict: Verdict = failures.length ? 'not-linearizable' : unknownKeys.length ? 'unknown' : 'linearizable';
  return {
    verdict,
    ops: history.length,
    keys: keys.length,
    indeterminate,
    steps,
    ...(opts.perKey ? { perKey } : {}),
    failures,
    unknownKeys,
    elapsedMs: performance.now() - started,
  };
}

/** A few human lines: the verdict, then each failure with its smallest history, then the undecided keys. */
export function formatVerdict(r: CheckResult): string {
  const facts = `${r.ops} ops on ${r.keys} key${r.keys === 1 ? '' : 's'}, ${r.indeterminate} indeterminate, ${Math.round(r.elapsedMs)} ms`;
  const lines: string[] = [];
  if (r.verdict === 'linearizable') lines.push(`linearizable: ${facts}`);
  else if (r.verdict === 'not-linearizable') {
    const keys = r.failures.map((f) => f.key);
    lines.push(`NOT linearizable: ${keys.length} of ${r.keys} keys fail (${listed(keys)}); ${facts}`);
  } else lines.push(`unknown: no key fails, but ${r.unknownKeys.length} of ${r.keys} ran out of search budget; ${facts}`);
  for (const f of r.failures.slice(0, 3)) {
    lines.push(`  key ${JSON.stringify(f.key)}: ${f.explanation}`);
    let from = '';
    if (f.start?.value !== undefined) from = `, starting from ${JSON.stringify(f.start.value)} (held at t=${f.start.at})`;
    else if (f.start) from = `, starting from any value at t=${f.start.at}`;
    lines.push(`    smallest failing history found: ${f.ops.length} of the key's ${f.keyOps} ops${from}:`);
    for (const op of f.ops.slice(0, 12)) lines.push(`      ${describeOp(op)}`);
    if (f.ops.length > 12) lines.push(`      ... ${f.ops.length - 12} more`);
  }
  if (r.failures.length > 3) lines.push(`  ... and ${r.failures.length - 3} more failing keys`);
  if (r.unknownKeys.length) {
    lines.push(`  undecided (search budget ran out): ${listed(r.unknownKeys)}; raise the per-key budget to decide them`);
  }
  return lines.join('\n');
}

/** `c17 append "11.4;" -> 10  [1301..1390]  line 2` */
export function describeOp(op: HistoryOp): string {
  const arg = op.value !== undefined ? ` ${JSON.stringify(op.value)}` : '';
  const res = op.status === 'ok' ? ` -> ${JSON.stringify(op.result)}` : ' (timed out)';
  const span = op.complete !== undefined ? `[${op.invoke}..${op.complete}]` : `[${op.invoke}..]`;
  return `c${op.client} ${op.op}${arg}${res}  ${span}${op.line ? `  line ${op.line}` : ''}`;
}

/** A key's operations as the search sees them: timed-out writes indeterminate, timed-out reads dropped. */
function toSearchOps(keyOps: readonly HistoryOp[]): SearchOp[] {
  const out: SearchOp[] = [];
  keyOps.forEach((o, id) => {
    const timedOut = o.status === 'timeout';
    if (timedOut && o.op === 'get') return;
    out.push({
      id,
      op: o.op,
      value: o.value ?? '',
      result: timedOut ? undefined : o.result,
      invoke: o.invoke,
      complete: timedOut || o.complete === undefined ? Infinity : o.complete,
      src: o,
    });
  });
  return out;
}

/** A search for shrinking: each gets the key's budget, all together the shrinking effort. */
function boundedCheck(budget: SearchBudget, effort: { checks: number; steps: number }, cap: number): CheckFn {
  let checks = 0;
  let stepsLeft = effort.steps;
  return (xs, init) => {
    if (checks >= effort.checks || stepsLeft <= 0) return 'unknown';
    checks++;
    const out = searchKey(xs, init, { ...budget, steps: Math.min(budget.steps, stepsLeft) }, cap);
    stepsLeft -= out.steps;
    return out.verdict;
  };
}

function toFailure(key: string, keyOps: readonly HistoryOp[], w: Witness, cap: number): Failure {
  return {
    key,
    ops: w.ops.map((o) => o.src),
    ...(w.initAt !== undefined ? { start: { at: w.initAt, ...(w.init !== null ? { value: w.init } : {}) } } : {}),
    keyOps: keyOps.length,
    explanation: explainFailure(w, cap),
  };
}

function listed(keys: readonly string[]): string {
  const shown = keys.slice(0, 5).map((k) => JSON.stringify(k));
  return shown.join(', ') + (keys.length > 5 ? `, ... ${keys.length - 5} more` : '');
}
