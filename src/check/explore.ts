/**
 * Bounded exploration of a small set of operations, for the shrinker and the
 * explanation of a failure: every order the real-time constraints allow,
 * with the values it can leave (endStates) and what one operation could have
 * returned in its interval (possibleResults). Gives up (null) past its budget.
 */
import { kvResultIn, kvStep } from './kvModel.js';
import { SearchOp } from './searchOp.js';

/** Segments and explanations explore at most this much. */
const EXPLORE_STEPS = 20_000;
const EXPLORE_OPS = 64;

/**
 * Visits every reachable configuration of `ops` from `init` (an operation may
 * go next once everything that completed before its invocation went), with
 * the set of operations done and the state. False if it ran out of budget.
 */
function explore(ops: readonly SearchOp[], init: string, cap: number, visit: (done: Uint8Array, state: string) => void): boolean {
  const n = ops.length;
  if (n > EXPLORE_OPS) return false;
  const preds = ops.map((o) => ops.flatMap((p, j) => (p.complete < o.invoke ? [j] : [])));
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  let steps = 0;
  const go = (state: string): boolean => {
    const key = `${done.join('')}|${state}`;
    if (seen.has(key)) return true;
    seen.add(key);
    visit(done, state);
    for (let i = 0; i < n; i++) {
      if (done[i] || !preds[i]!.every((j) => done[j])) continue;
      if (++steps > EXPLORE_STEPS) return false;
      const next = kvStep(state, ops[i]!, cap);
      if (next === null) continue;
      done[i] = 1;
      const ok = go(next);
      done[i] = 0;
      if (!ok) return false;
    }
    return true;
  };
  return go(init);
}

/** The values all of `ops` (no indeterminate ones) can leave, from `init`; null if too costly to say. */
export function endStates(ops: readonly SearchOp[], init: string, cap: number): Set<string> | null {
  const out = new Set<string>();
  const ok = explore(ops, init, cap, (done, state) => {
    if (done.every((d) => d === 1)) out.add(state);
  });
  return ok ? out : null;
}

/** What `f` could have returned at some moment of its interval, given `others`; null if too costly to say. */
export function possibleResults(others: readonly SearchOp[], init: string, f: SearchOp, cap: number): Set<string | number> | null {
  const out = new Set<string | number>();
  const ok = explore(others, init, cap, (done, state) => {
    for (let i = 0; i < others.length; i++) {
      const o = others[i]!;
      // everything that completed before f started is done, nothing that started after f ended is
      if (!done[i] && o.complete < f.invoke) return;
      if (done[i] && o.invoke > f.complete) return;
    }
    out.add(kvResultIn(state, f, cap));
  });
  return ok ? out : null;
}
