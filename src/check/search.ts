/**
 * The linearizability search for one key: Wing & Gong's tree search over the
 * history's call/return list, with Lowe's memoisation of (set of linearized
 * operations, model state) so no configuration is explored twice.
 *
 * What keeps linearizable histories with many concurrent clients cheap:
 * - just-in-time order (after Lowe): at each configuration, try first the
 *   operation whose return comes next, then the other pending calls;
 * - a pending get that matches the current state is linearized at once and
 *   not branched on: a read changes nothing, so if the configuration has any
 *   linearization it has one that starts with that read;
 * - a configuration that dooms a read or an append (the state it needs can no
 *   longer arise) is dropped at once, and a value no remaining read can
 *   observe is remembered by its length only (prune.ts).
 *
 * Indeterminate operations have a call and no return: they may be linearized
 * at any point after their invocation, and the search succeeds once every
 * operation that returned is linearized (the rest never took effect).
 * Optional ones (see SearchOp) may be skipped when their return comes.
 */
import { kvStep, kvStepLength } from './kvModel.js';
import { ConfigCache, configHash, States, zobristKeys } from './memo.js';
import { NeedWatch, ReadPrefixes } from './prune.js';
import { SearchOp } from './searchOp.js';

export type { SearchOp } from './searchOp.js';

export interface SearchBudget {
  /** Model steps (an operation tried in a configuration). */
  steps: number;
  /** Wall-clock milliseconds. */
  ms: number;
  /** Size of the memo table. */
  memoryMB: number;
}

export type BudgetReason = 'steps' | 'time' | 'memory';

export interface SearchOutcome {
  verdict: 'ok' | 'fail' | 'unknown';
  steps: number;
  /** Which budget ran out, for "unknown". */
  reason?: BudgetReason;
  /**
   * The op the search could not get past (index into ops): the one whose
   * return no configuration reached (for "fail", or where "unknown" gave up),
   * or a read or append that the history itself starves (`starved`: no write
   * that could leave the state it needs remains after the writes that must
   * precede it).
   */
  stuck?: number;
  starved?: boolean;
}

const NIL = -1;
const TIME_CHECK_EVERY = 1024;

/**
 * Whether `ops` (one key, starting from value `init`) has a linearization.
 * init null = any value (so a failure from there is a failure from every
 * starting value).
 */
export function searchKey(ops: readonly SearchOp[], init: string | null, budget: SearchBudget, cap: number): SearchOutcome {
  const n = ops.length;
  const list = new EventList(ops);
  const bits = new Uint32Array((n + 31) >>> 5);
  const zobrist = zobristKeys(n);
  const states = new States();
  // a get's expected value as a state id, so a read is checked by comparing ids
  const getSid = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (o.op === 'get' && typeof o.result === 'string') getSid[i] = states.id(o.result);
  }
  const needs = new NeedWatch(ops, getSid, states, bits, cap);
  const prefixes = new ReadPrefixes(ops);
  /** A value's id, or the opaque state of its length when no remaining read can observe it. */
  const settle = (value: string) => (prefixes.observable(value) ? states.id(value) : states.opaque(value.length));
  const cache = new ConfigCache(bits.length);
  const memoryBytes = budget.memoryMB * 1024 * 1024;
  const started = performance.now();

  let sid = init === null ? states.unknown() : settle(init);
  let hash = 0;
  let pendingReturns = list.returns;
  let steps = 0;
  if (needs.dead(sid)) return { verdict: 'fail', steps, stuck: needs.starvingOp(sid), starved: true };
  cache.addIfAbsent(configHash(hash, sid), sid, bits);

  // the DFS path: the call event lifted, and the state before it
  const fEv: number[] = [];
  const fSid: number[] = [];

  let nextCheck = 0;
  const over = (): BudgetReason | null => {
    if (steps > budget.steps) return 'steps';
    if (steps >= nextCheck) {
      nextCheck = steps + TIME_CHECK_EVERY;
      if (performance.now() - started >= budget.ms) return 'time';
      if (cache.bytes() + states.bytes() > memoryBytes) return 'memory';
    }
    return null;
  };

  /**
   * Tries to linearize the op of call event `ev` next (or, for ~ev, to skip an
   * optional op); true if it did (a new configuration).
   */
  const tryLift = (candidate: number): boolean => {
    steps++;
    const skip = candidate < 0;
    const ev = skip ? ~candidate : candidate;
    const i = list.op[ev]!;
    const o = ops[i]!;
    // the next state: a value (settled once the watchers moved on: a read just linearized may
    // have been the last to observe it), or a state id
    let value: string | null = null;
    let nextSid = -1;
    if (skip) {
      nextSid = sid;
    } else if (o.op === 'get') {
      const r = o.result;
      if (typeof r !== 'string') nextSid = sid;
      else if (getSid[i] === sid) value = r;
      // reading an unknown or vague state learns its value
      else if (states.isUnknown(sid) || (states.isVague(sid) && states.length(sid) === r.length)) value = r;
      else return false;
    } else if (o.op === 'put' || states.isValue(sid)) {
      value = kvStep(states.value(sid), o, cap);
      if (value === null) return false;
    } else if (states.isUnknown(sid)) {
      // an append's result is the new length, whatever came before (at least its own, up to the cap)
      if (typeof o.result !== 'number') nextSid = sid;
      else if (o.result < Math.min(o.value.length, cap) || o.result > cap) return false;
      else nextSid = states.vague(o.result);
    } else {
      const len = kvStepLength(states.length(sid), o, cap);
      if (len === null) return false;
      nextSid = states.isOpaque(sid) ? states.opaque(len) : states.vague(len);
    }
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    bits[w]! |= bit;
    needs.lift(i);
    prefixes.lift(i);
    const next = value !== null ? settle(value) : nextSid;
    const h = hash ^ zobrist[i]!;
    if (needs.dead(next) || !cache.addIfAbsent(configHash(h, next), next, bits)) {
      prefixes.unlift(i);
      needs.unlift(i);
      bits[w]! &= ~bit;
      return false;
    }
    fEv.push(ev);
    fSid.push(sid);
    hash = h;
    sid = next;
    list.lift(ev);
    if (list.match[ev]! !== NIL) pendingReturns--;
    return true;
  };

  /** Undoes the last lift. */
  const pop = (): void => {
    const ev = fEv.pop()!;
    sid = fSid.pop()!;
    const i = list.op[ev]!;
    bits[i >>> 5]! &= ~(1 << (i & 31));
    needs.unlift(i);
    prefixes.unlift(i);
    hash ^= zobrist[i]!;
    list.unlift(ev);
    if (list.match[ev]! !== NIL) pendingReturns++;
  };

  // Per configuration on the path: its candidates in the order they are tried, and how far
  // it got. A configuration starts with one candidate (a matching read, or the op whose return
  // comes next -- and skipping it, if optional) and is widened to all pending calls only if
  // that fails.
  const cands: number[][] = [];
  const tried: number[] = [];
  const widened: boolean[] = [];

  /** The pending calls (those before the first pending return) and that return's call. */
  const pending = (): [number[], number] => {
    const calls: number[] = [];
    let ev = list.next[list.head]!;
    for (; ev !== NIL && list.isCall[ev]; ev = list.next[ev]!) calls.push(ev);
    return [calls, ev === NIL ? NIL : list.callOf[list.op[ev]!]!];
  };

  // the latest return event any configuration had as its next one
  let furthest = NIL;
  const enter = () => {
    const [calls, firstCall] = pending();
    if (firstCall !== NIL) furthest = Math.max(furthest, list.match[firstCall]!);
    // a pending read that fits the state is taken without branching
    const forced = calls.find((ev) => {
      const i = list.op[ev]!;
      return ops[i]!.op === 'get' && ops[i]!.result !== undefined && getSid[i] === sid;
    });
    const first = firstCall === NIL ? [] : ops[list.op[firstCall]!]!.optional ? [firstCall, ~firstCall] : [firstCall];
    cands.push(forced !== undefined ? [forced] : first);
    tried.push(0);
    // never widened after a forced read: if linearizing it fails, so does every other order
    widened.push(forced !== undefined);
  };

  /** All pending calls after the first candidate: first those after which it fits, then the rest. */
  const widen = (d: number) => {
    widened[d] = true;
    const [calls, firstCall] = pending();
    const first = ops[list.op[firstCall]!]!;
    const helps: number[] = [];
    const rest: number[] = [];
    for (const ev of calls) {
      if (ev === firstCall) continue;
      (enables(ops[list.op[ev]!]!, first) ? helps : rest).push(ev);
    }
    cands[d]!.push(...helps, ...rest);
  };

  /** Whether `first` fits right after `o` (a one-step look-ahead; it only orders candidates). */
  const enables = (o: SearchOp, first: SearchOp): boolean => {
    if (o.op === 'get' || (o.op === 'append' && !states.isValue(sid) && !states.isOpaque(sid))) return false;
    const opaque = o.op !== 'put' && states.isOpaque(sid);
    if (opaque) {
      const len = kvStepLength(states.length(sid), o, cap);
      return len !== null && first.op !== 'get' && kvStepLength(len, first, cap) !== null;
    }
    const v = kvStep(states.value(sid), o, cap);
    return v !== null && kvStep(v, first, cap) !== null;
  };

  enter();
  for (;;) {
    if (pendingReturns === 0) return { verdict: 'ok', steps };
    const reason = over();
    if (reason) return { verdict: 'unknown', steps, reason, ...(furthest !== NIL ? { stuck: list.op[furthest]! } : {}) };
    const d = cands.length - 1;
    const mine = cands[d]!;
    if (tried[d]! < mine.length) {
      const ev = mine[tried[d]!++]!;
      if (tryLift(ev)) enter();
      continue;
    }
    if (!widened[d]) {
      widen(d);
      continue;
    }
    // every candidate failed: so did this configuration
    cands.pop();
    tried.pop();
    widened.pop();
    if (fEv.length === 0) return { verdict: 'fail', steps, ...(furthest !== NIL ? { stuck: list.op[furthest]! } : {}) };
    pop();
  }
}

/**
 * The call/return events of a key in time order (calls before returns at the
 * same instant, so touching operations count as concurrent), as a doubly
 * linked list that lifting and unlifting edit in place.
 */
class EventList {
  readonly head: number;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** event -> operation index */
  readonly op: Int32Array;
  readonly isCall: Uint8Array;
  /** call event -> its return event, or NIL for an indeterminate operation */
  readonly match: Int32Array;
  /** operation index -> its call event */
  readonly callOf: Int32Array;
  readonly returns: number;

  constructor(ops: readonly SearchOp[]) {
    const evs: { time: number; call: boolean; op: number }[] = [];
    ops.forEach((o, i) => {
      evs.push({ time: o.invoke, call: true, op: i });
      if (Number.isFinite(o.complete)) evs.push({ time: o.complete, call: false, op: i });
    });
    evs.sort((a, b) => a.time - b.time || Number(b.call) - Number(a.call) || a.op - b.op);
    const m = evs.length;
    this.head = m;
    this.next = new Int32Array(m + 1);
    this.prev = new Int32Array(m + 1);
    this.op = new Int32Array(m);
    this.isCall = new Uint8Array(m);
    this.match = new Int32Array(m).fill(NIL);
    this.callOf = new Int32Array(ops.length);
    let returns = 0;
    evs.forEach((e, k) => {
      this.op[k] = e.op;
      this.isCall[k] = e.call ? 1 : 0;
      if (e.call) this.callOf[e.op] = k;
      else {
        this.match[this.callOf[e.op]!] = k;
        returns++;
      }
    });
    this.returns = returns;
    // head <-> 0 <-> 1 ... <-> m-1 -> NIL
    this.next[m] = m > 0 ? 0 : NIL;
    this.prev[m] = NIL;
    for (let k = 0; k < m; k++) {
      this.prev[k] = k === 0 ? m : k - 1;
      this.next[k] = k + 1 < m ? k + 1 : NIL;
    }
  }

  lift(call: number): void {
    this.remove(call);
    const ret = this.match[call]!;
    if (ret !== NIL) this.remove(ret);
  }

  /** Reverse of lift; only valid for the most recent lift still in place. */
  unlift(call: number): void {
    const ret = this.match[call]!;
    if (ret !== NIL) this.reinsert(ret);
    this.reinsert(call);
  }

  private remove(x: number): void {
    const p = this.prev[x]!;
    const nx = this.next[x]!;
    this.next[p] = nx;
    if (nx !== NIL) this.prev[nx] = p;
  }

  private reinsert(x: number): void {
    const p = this.prev[x]!;
    const nx = this.next[x]!;
    this.next[p] = x;
    if (nx !== NIL) this.prev[nx] = x;
  }
}

