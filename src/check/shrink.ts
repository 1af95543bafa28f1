/**
 * Shrinking a key's non-linearizable history to a small one that still shows
 * the problem, and a one-line explanation of it.
 *
 * Every step keeps the history non-linearizable, and each is chosen so it does
 * not invent a problem of its own:
 * 0. around the op the search could not get past: if the history starves it
 *    (a read of a value every writer of which was overwritten before the read
 *    began), that op, those writers and the overwriting write, if they fail on
 *    their own and only because of that op; else a window of the history
 *    around it, from any value (what the ops cut away left) -- both cheap even
 *    where a search of the whole key is not;
 * 1. unless that gave a small witness already, the shortest failing prefix:
 *    cut at the k-th completion, with operations still running then kept as
 *    indeterminate writes (reads dropped) -- a linearizable history has
 *    linearizable prefixes, so this is exact; the smaller result is kept;
 * 2. reads dropped -- a read changes nothing, so dropping one is exact too;
 * 3. everything before a quiet moment (no operation running) replaced by the
 *    one value it can leave there -- exact, and only before the writes whose
 *    values the failing read shows and the last write that completed before
 *    the failing operation, so the witness keeps them;
 * 4. writes dropped greedily (not those whose values the failing read shows),
 *    only when the history still fails without the write and the rest minus
 *    the failing operation is still linearizable -- so the failing operation is
 *    still what cannot be placed, and the write's absence does not make
 *    something else fail first (e.g. a later append's length).
 */
import { endStates, possibleResults } from './explore.js';
import { SearchOp } from './searchOp.js';

/** init null = any value (see searchKey). */
export type CheckFn = (ops: readonly SearchOp[], init: string | null) => 'ok' | 'fail' | 'unknown';
type Fails = (ops: readonly SearchOp[], init: string | null) => boolean;

export interface Witness {
  ops: SearchOp[];
  /** What the key held before `ops`: a value the operations cut away must have left, or null = any value. */
  init: string | null;
  /** Since when (microseconds); absent when init is the initial "". */
  initAt?: number;
  /** The operation whose completion the history cannot linearize. */
  failing: SearchOp;
}

/** What the search said about the whole key: the op it could not get past. */
export interface ShrinkHint {
  op: SearchOp;
  /** The history starves it (see NeedWatch): no write that could satisfy it can come last before it. */
  starved: boolean;
}

/** A witness this small is not shrunk another way. */
const SMALL_WITNESS = 4;
/** A starved op's witness is tried when it has at most this many ops. */
const MAX_STARVED_WITNESS = 8;
/** Windows around the stuck op: ops invoked before it, and completions after it (what it dooms may come later). */
const WINDOWS: readonly [number, number][] = [
  [8, 0],
  [8, 8],
  [32, 32],
  [128, 128],
  [512, 512],
];
/** A forward pass that tracks more possible values than this gives up. */
const MAX_TRACKED_STATES = 8;

/** Shrinks `ops` (known not linearizable from ""). `check` answers 'unknown' once its own budget is spent. */
export function shrinkFailure(ops: readonly SearchOp[], check: CheckFn, cap: number, hint?: ShrinkHint): Witness {
  // 0. a starved op with the writes that could have satisfied it and the one that rules them out
  // (or a short window around the op the search stopped at); and unless that is small already,
  // 1. the shortest failing prefix -- whichever shrinks further
  const local = hint ? localFailure(ops, hint, check) : null;
  const first = local ? shrinkWitness(local, check, cap) : null;
  if (first && first.ops.length <= SMALL_WITNESS) return first;
  const second = shrinkWitness(shortestFailingPrefix(ops, check, hint), check, cap);
  return first && first.ops.length <= second.ops.length ? first : second;
}

/**
 * A small failing history around the op the search could not get past, if
 * there is one: for a starved op, that op with its would-be writers and the
 * write that rules them out; otherwise a window of the history around the op,
 * from any value (cheap even where the whole key is not).
 */
export function localFailure(ops: readonly SearchOp[], hint: ShrinkHint, check: CheckFn): Witness | null {
  if (hint.starved) {
    const w = starvedWitness(ops, hint.op, check);
    if (w) return w;
  }
  const f = hint.op;
  if (!Number.isFinite(f.complete)) return null;
  const completed = ops.filter((o) => Number.isFinite(o.complete)).sort(byCompletion);
  const k = completed.indexOf(f) + 1;
  const byInvoke = [...ops].sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  const at = byInvoke.indexOf(f);
  for (const [before, after] of WINDOWS) {
    const t0 = byInvoke[Math.max(0, at - before)]!.invoke;
    const end = Math.min(completed.length, k + after);
    // a window from the first op on is a prefix: it starts from ""
    const whole = at - before <= 0;
    const init = whole ? '' : null;
    if (check(windowOf(ops, completed, end, t0), init) !== 'fail') {
      if (whole && end === completed.length) break;
      continue;
    }
    // the earliest completion it fails at (a window's own prefixes are windows too)
    let lo = 1;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (check(windowOf(ops, completed, mid, t0), init) === 'fail') hi = mid;
      else lo = mid + 1;
    }
    const failing = completed[hi - 1]!;
    const window = windowOf(ops, completed, hi, t0);
    return whole ? { ops: window, init: '', failing } : { ops: window, init: null, initAt: t0, failing };
  }
  return null;
}

/** Steps 2-4 (see the top of the file) on a failing history. */
export function shrinkWitness(start: Witness, check: CheckFn, cap: number): Witness {
  const fails: Fails = (xs, init) => check(xs, init) === 'fail';
  // 2. reads
  let w = dropReads(start, fails);
  // 3. the quiet moments
  w = cutAtQuietMoment(w, fails, cap);
  w = dropReads(w, fails);
  // 4. writes
  w = dropWrites(w, fails);
  w.ops.sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  // a put that precedes everything else makes the starting value irrelevant
  const first = w.ops[0];
  if (w.initAt !== undefined && first && first.op === 'put' && w.ops.every((o) => o === first || o.invoke > first.complete)) {
    w = { ops: w.ops, init: '', failing: w.failing };
  }
  return w;
}

/** Step 1, trying the op the search stopped at first. */
function shortestFailingPrefix(ops: readonly SearchOp[], check: CheckFn, hint?: ShrinkHint): Witness {
  const fails: Fails = (xs, init) => check(xs, init) === 'fail';
  const completed = ops.filter((o) => Number.isFinite(o.complete)).sort(byCompletion);
  let lo = 1;
  let hi = completed.length;
  const k = hint ? completed.indexOf(hint.op) + 1 : 0;
  if (k > 0 && fails(prefix(ops, completed, k), '')) {
    hi = k;
    // a linearizable history costs a full search; if the budget cannot say, k will do
    const before = k > 1 ? check(prefix(ops, completed, k - 1), '') : 'ok';
    if (before === 'fail') hi = k - 1;
    else lo = k;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fails(prefix(ops, completed, mid), '')) hi = mid;
    else lo = mid + 1;
  }
  return { ops: prefix(ops, completed, lo), init: '', failing: completed[lo - 1]! };
}

/**
 * The history up to the k-th completion and from t0: operations that completed
 * before t0 are left out (their effect is in the unknown starting value),
 * those running at t0 are optional (they may have taken effect before), and
 * those running at the cut are indeterminate writes (reads dropped). If this
 * fails from any value, so does the history.
 */
function windowOf(ops: readonly SearchOp[], completed: readonly SearchOp[], k: number, t0: number): SearchOp[] {
  const keep = new Set(completed.slice(0, k));
  const t = completed[k - 1]!.complete;
  const out: SearchOp[] = [];
  for (const o of ops) {
    if (o.invoke > t || o.complete < t0) continue;
    if (keep.has(o)) {
      if (o.invoke >= t0) out.push(o);
      else if (o.op !== 'get') out.push({ ...o, optional: true });
    } else if (o.op !== 'get') out.push(indeterminate(o));
  }
  return out;
}

/**
 * For an op the history starves: the writes that could have left what it
 * needs, the write that completed after all of them and before the op began,
 * and the op -- if that fails on its own and only because of the op.
 */
function starvedWitness(ops: readonly SearchOp[], f: SearchOp, check: CheckFn): Witness | null {
  const fits = (x: SearchOp): boolean => {
    if (x.op === 'get') return false;
    if (f.op === 'get') {
      const v = f.result as string;
      return x.op === 'put' ? x.value === v : v.endsWith(x.value) && (x.result === undefined || x.result === v.length);
    }
    const need = (f.result as number) - f.value.length;
    return x.op === 'put' ? x.value.length === need : x.result === undefined ? x.value.length <= need : x.result === need;
  };
  const producers = ops.filter((x) => x !== f && x.invoke <= f.complete && fits(x));
  // the write that completed before f began and was invoked last
  let ruler: SearchOp | undefined;
  for (const x of ops) {
    if (x.op !== 'get' && x.complete < f.invoke && (!ruler || x.invoke > ruler.invoke)) ruler = x;
  }
  const picked = new Set([...producers, ...(ruler ? [ruler] : []), f]);
  if (picked.size > MAX_STARVED_WITNESS) return null;
  const witness = ops.filter((o) => picked.has(o));
  const withoutF = witness.flatMap((o) => (o !== f ? [o] : f.op === 'get' ? [] : [indeterminate(f)]));
  if (check(witness, '') !== 'fail' || check(withoutF, '') !== 'ok') return null;
  return { ops: witness, init: '', failing: f };
}

/** One line: which operation cannot be placed, what it returned, what it could have returned. */
export function explainFailure(w: Witness, cap: number): string {
  const f = w.failing;
  const others = w.ops.filter((o) => o !== f);
  let start = '';
  if (w.initAt !== undefined) start = w.init === null ? ` (from whatever the key held at t=${w.initAt})` : ` (after the key held ${quote(w.init)} at t=${w.initAt})`;
  const what = `${f.op} by client ${f.src.client} at t=${f.invoke}..${f.complete}${f.src.line ? ` (line ${f.src.line})` : ''} returned ${show(f.result)}`;
  const n = others.length;
  const rest = n === 0 ? '' : ` the ${n} other op${n === 1 ? '' : 's'} shown`;
  const possible = w.init === null ? null : possibleResults(others, w.init, f, cap);
  if (possible && !possible.has(f.result as string | number)) {
    const list = [...possible].slice(0, 4).map(show);
    const more = possible.size > 4 ? ` (or ${possible.size - 4} more)` : '';
    return `${what}, but ${n ? `with${rest}` : 'alone'}${start} it could only return ${list.join(' or ') || 'nothing'}${more}`;
  }
  return `${what}, and no order of it${n ? ` and${rest}` : ''}${start} gives every operation its result`;
}

function byCompletion(a: SearchOp, b: SearchOp): number {
  return a.complete - b.complete || a.invoke - b.invoke || a.id - b.id;
}

/** The history up to the k-th completion: later ones dropped, those running then left indeterminate (writes) or dropped (reads). */
function prefix(ops: readonly SearchOp[], completed: readonly SearchOp[], k: number): SearchOp[] {
  const keep = new Set(completed.slice(0, k));
  const t = completed[k - 1]!.complete;
  const out: SearchOp[] = [];
  for (const o of ops) {
    if (keep.has(o)) out.push(o);
    else if (o.invoke <= t && o.op !== 'get') out.push(indeterminate(o));
  }
  return out;
}

function indeterminate(o: SearchOp): SearchOp {
  return { ...o, result: undefined, complete: Infinity };
}

function dropReads(w: Witness, fails: Fails): Witness {
  const isRead = (o: SearchOp) => o.op === 'get' && o !== w.failing;
  if (!w.ops.some(isRead)) return w;
  const noReads = w.ops.filter((o) => !isRead(o));
  if (fails(noReads, w.init)) return { ...w, ops: noReads };
  let ops = w.ops;
  for (const r of w.ops.filter(isRead)) {
    const without = ops.filter((o) => o !== r);
    if (fails(without, w.init)) ops = without;
  }
  return { ...w, ops };
}

/** Step 4 (see the top of the file). */
function dropWrites(w: Witness, fails: Fails): Witness {
  const f = w.failing;
  const seen = f.op === 'get' && typeof f.result === 'string' ? f.result : '';
  // writes whose values the failing read shows stay: they are what it read
  const candidates = w.ops.filter((o) => o !== f && o.op !== 'get' && !(o.value !== '' && seen.includes(o.value)));
  // latest first: a write's length depends on the ones before it, so later ones free earlier ones;
  // and again while that frees more
  candidates.sort((a, b) => b.invoke - a.invoke || b.id - a.id);
  let ops = w.ops;
  for (let changed = true; changed; ) {
    changed = false;
    for (const c of candidates) {
      if (!ops.includes(c)) continue;
      const without = ops.filter((o) => o !== c);
      if (!fails(without, w.init)) continue;
      const beforeFailing = without.flatMap((o) => (o !== f ? [o] : f.op === 'get' ? [] : [indeterminate(f)]));
      if (fails(beforeFailing, w.init)) continue;
      ops = without;
      changed = true;
    }
  }
  return { ...w, ops };
}

/** Step 3 (see the top of the file). */
function cutAtQuietMoment(w: Witness, fails: Fails, cap: number): Witness {
  // from any value there is no one value to carry forward
  if (w.init === null) return w;
  const init = w.init;
  const f = w.failing;
  const ops = [...w.ops].sort((a, b) => a.invoke - b.invoke || a.id - b.id);
  const seen = f.op === 'get' && typeof f.result === 'string' ? f.result : '';
  // keep the writes whose values the failing read shows, and the last write that completed before it
  let limit = f.invoke;
  let last: SearchOp | undefined;
  for (const o of ops) {
    if (o.op === 'get' || o === f) continue;
    if (o.value !== '' && seen.includes(o.value)) limit = Math.min(limit, o.invoke);
    if (o.complete < f.invoke && (!last || o.complete > last.complete)) last = o;
  }
  if (last) limit = Math.min(limit, last.invoke);
  // cuts[j]: ops[0..end) are before it, all done by `at`, and leave exactly `value`
  const cuts: { end: number; at: number; value: string }[] = [];
  let states = new Set([init]);
  let segStart = 0;
  let maxComplete = -Infinity;
  forward: for (let i = 0; i + 1 < ops.length; i++) {
    const o = ops[i]!;
    if (!Number.isFinite(o.complete)) break;
    maxComplete = Math.max(maxComplete, o.complete);
    const nextOp = ops[i + 1]!;
    if (nextOp.invoke > limit) break;
    if (!(maxComplete < nextOp.invoke)) continue;
    const next = new Set<string>();
    for (const s of states) {
      const ends = endStates(ops.slice(segStart, i + 1), s, cap);
      if (!ends) break forward;
      for (const e of ends) next.add(e);
    }
    if (next.size === 0 || next.size > MAX_TRACKED_STATES) break;
    states = next;
    segStart = i + 1;
    if (states.size === 1) cuts.push({ end: i + 1, at: maxComplete, value: [...states][0]! });
  }
  // failing after a cut implies failing after every earlier cut: find the last one
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const c = cuts[mid - 1]!;
    if (fails(ops.slice(c.end), c.value)) lo = mid;
    else hi = mid - 1;
  }
  if (lo === 0) return w;
  const c = cuts[lo - 1]!;
  return { ops: ops.slice(c.end), init: c.value, initAt: c.at, failing: f };
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 18)}…${s.slice(-18)}` : s);
}

function show(r: string | number | undefined): string {
  return typeof r === 'string' ? quote(r) : String(r);
}
