/**
 * Pruning for the search: facts about the remaining operations that let it
 * drop or merge configurations early. Both are exact (they never drop a
 * configuration that has a linearization).
 */
import { States } from './memo.js';
import type { SearchOp } from './searchOp.js';

/**
 * Operations that can no longer be satisfied, so a configuration is dropped as
 * soon as it dooms one (not when that operation's return is reached, which may
 * be many choices later). Two kinds of operation need a particular state:
 * a read of v needs the value v, and an append that returned length L (below
 * the cap) needs length L - |arg| before it. What leaves that state is the last
 * write before the operation, and only a write that may precede it (invoked
 * before it completed) and that no other write must come between (none
 * completed after it and before the needy op started) can be that last write.
 * Once all such writes are linearized, only the current state can still fit:
 * a needy operation with none left is "starving", and if the state does not
 * fit what a starving operation needs, the configuration is dead.
 */
export class NeedWatch {
  /** per op: 0 not watched, 1 needs a value, 2 needs a length */
  private readonly kind: Uint8Array;
  /** the state id (kind 1) or the length (kind 2) it needs */
  private readonly need: Int32Array;
  /** per needy op: producers not yet linearized */
  private readonly remaining: Int32Array;
  /** CSR: the needy ops each write may produce the state for */
  private readonly start: Int32Array;
  private readonly needy: Int32Array;
  private starvingValue = 0;
  private starvingLength = 0;
  private readonly starvingForValue: Int32Array;
  private readonly starvingForLength: Int32Array;

  constructor(
    private readonly ops: readonly SearchOp[],
    getSid: Int32Array,
    private readonly states: States,
    private readonly bits: Uint32Array,
    cap: number,
  ) {
    const n = ops.length;
    this.kind = new Uint8Array(n);
    this.need = new Int32Array(n);
    this.remaining = new Int32Array(n);
    this.starvingForValue = new Int32Array(states.size());
    this.starvingForLength = new Int32Array(cap + 1);

    // writes indexed by the state they may leave, each list in invocation order
    const byInvoke = ops.map((_, i) => i).sort((a, b) => ops[a]!.invoke - ops[b]!.invoke || a - b);
    // completed writes and lost (indeterminate) ones apart: a lost write may come any time after its invocation
    const putsOfValue = [new Map<string, number[]>(), new Map<string, number[]>()] as const;
    const appendsOfArg = [new Map<string, number[]>(), new Map<string, number[]>()] as const;
    const leavingLength = [new Map<number, number[]>(), new Map<number, number[]>()] as const;
    const lostAppends: number[] = [];
    const push = <K>(m: Map<K, number[]>, k: K, i: number) => {
      const l = m.get(k);
      if (l) l.push(i);
      else m.set(k, [i]);
    };
    let maxDuration = 0;
    for (const i of byInvoke) {
      const o = ops[i]!;
      if (o.op === 'get') continue;
      const lost = Number.isFinite(o.complete) ? 0 : 1;
      if (!lost) maxDuration = Math.max(maxDuration, o.complete - o.invoke);
      if (o.op === 'put') {
        push(putsOfValue[lost], o.value, i);
        push(leavingLength[lost], Math.min(o.value.length, cap), i);
      } else {
        push(appendsOfArg[lost], o.value, i);
        if (typeof o.result === 'number') push(leavingLength[lost], o.result, i);
        else lostAppends.push(i);
      }
    }
    const argLengths = [...new Set([...appendsOfArg[0].keys(), ...appendsOfArg[1].keys()].map((v) => v.length))];

    // M(t): the latest invocation among writes that completed before t
    const finished = ops.map((_, i) => i).filter((i) => ops[i]!.op !== 'get' && Number.isFinite(ops[i]!.complete));
    finished.sort((a, b) => ops[a]!.complete - ops[b]!.complete);
    const doneAt = finished.map((i) => ops[i]!.complete);
    const latestInvoke: number[] = [];
    finished.forEach((i, k) => latestInvoke.push(Math.max(k ? latestInvoke[k - 1]! : -Infinity, ops[i]!.invoke)));
    const mustFollow = (t: number) => {
      const k = lowerBound(doneAt, t);
      return k === 0 ? -Infinity : latestInvoke[k - 1]!;
    };

    const lists: number[][] = ops.map(() => []);
    for (let g = 0; g < n; g++) {
      const o = ops[g]!;
      let kind = 0;
      let need = 0;
      // an optional op may be skipped, so it needs nothing
      if (o.optional) continue;
      if (o.op === 'get' && typeof o.result === 'string' && o.result.length < cap) {
        kind = 1;
        need = getSid[g]!;
      } else if (o.op === 'append' && typeof o.result === 'number' && o.result < cap && o.result >= o.value.length) {
        kind = 2;
        need = o.result - o.value.length;
      }
      if (kind === 0) continue;
      const m = mustFollow(o.invoke);
      const found: number[] = [];
      let scanned = 0;
      // completed producers were invoked before g completed and completed after M (so invoked after
      // M - maxDuration); lost ones may have been invoked any time before g completed
      const window = (sources: readonly (readonly number[] | undefined)[], fits: (x: SearchOp) => boolean) => {
        sources.forEach((list, lost) => {
          if (!list) return;
          for (let k = lost ? 0 : firstInvokedFrom(list, ops, m - maxDuration); k < list.length; k++) {
            const x = list[k]!;
            const xo = ops[x]!;
            if (xo.invoke > o.complete || ++scanned > SCAN_LIMIT) break;
            if (x !== g && xo.complete >= m && fits(xo)) found.push(x);
          }
        });
      };
      if (kind === 1) {
        const v = o.result as string;
        window([putsOfValue[0].get(v), putsOfValue[1].get(v)], () => true);
        for (const len of argLengths) {
          if (len > v.length) continue;
          const arg = v.slice(v.length - len);
          window([appendsOfArg[0].get(arg), appendsOfArg[1].get(arg)], (x) => x.result === undefined || x.result === v.length);
        }
      } else {
        window([leavingLength[0].get(need), leavingLength[1].get(need)], () => true);
        // a lost append may leave any length at least its own
        window([undefined, lostAppends], (x) => x.value.length <= need);
      }
      if (scanned > SCAN_LIMIT || found.length > MAX_PRODUCERS) continue;
      this.kind[g] = kind;
      this.need[g] = need;
      for (const x of found) lists[x]!.push(g);
      this.remaining[g] = found.length;
    }
    this.start = new Int32Array(n + 1);
    for (let x = 0; x < n; x++) this.start[x + 1] = this.start[x]! + lists[x]!.length;
    this.needy = new Int32Array(this.start[n]!);
    for (let x = 0; x < n; x++) this.needy.set(lists[x]!, this.start[x]!);
    for (let g = 0; g < n; g++) if (this.kind[g] && this.remaining[g] === 0) this.starve(g, 1);
  }

  /** Whether an unlinearized operation can no longer get the state it needs, the state being `sid`. */
  dead(sid: number): boolean {
    // the unknown state may be whatever is needed; a vague one has only its length known
    if (this.states.isUnknown(sid)) return false;
    if (!this.states.isVague(sid) && this.starvingValue > (sid < this.starvingForValue.length ? this.starvingForValue[sid]! : 0)) return true;
    if (this.starvingLength === 0) return false;
    const len = this.states.length(sid);
    return this.starvingLength > (len < this.starvingForLength.length ? this.starvingForLength[len]! : 0);
  }

  /** An unlinearized op that cannot get what it needs in state `sid` (-1 if none). */
  starvingOp(sid: number): number {
    for (let g = 0; g < this.ops.length; g++) {
      if (!this.kind[g] || this.remaining[g] !== 0 || this.linearized(g)) continue;
      const fits = this.kind[g] === 1 ? this.need[g] === sid : this.need[g] === this.states.length(sid);
      if (!fits) return g;
    }
    return -1;
  }

  /** Operation i was just linearized (its bit is set). */
  lift(i: number): void {
    if (this.kind[i] && this.remaining[i] === 0) this.starve(i, -1);
    for (let k = this.start[i]!; k < this.start[i + 1]!; k++) {
      const g = this.needy[k]!;
      if (--this.remaining[g]! === 0 && !this.linearized(g)) this.starve(g, 1);
    }
  }

  /** Reverse of lift (its bit is cleared). */
  unlift(i: number): void {
    for (let k = this.start[i]!; k < this.start[i + 1]!; k++) {
      const g = this.needy[k]!;
      if (this.remaining[g]!++ === 0 && !this.linearized(g)) this.starve(g, -1);
    }
    if (this.kind[i] && this.remaining[i] === 0) this.starve(i, 1);
  }

  private starve(g: number, d: 1 | -1): void {
    if (this.kind[g] === 1) {
      this.starvingValue += d;
      this.starvingForValue[this.need[g]!]! += d;
    } else {
      this.starvingLength += d;
      this.starvingForLength[this.need[g]!]! += d;
    }
  }

  private linearized(g: number): boolean {
    return (this.bits[g >>> 5]! & (1 << (g & 31))) !== 0;
  }
}

/** Producers beyond this many (or candidates scanned beyond SCAN_LIMIT): the op is not watched. */
const MAX_PRODUCERS = 64;
const SCAN_LIMIT = 512;

/** First index of `list` (op indices in invocation order) invoked at or after t. */
function firstInvokedFrom(list: readonly number[], ops: readonly SearchOp[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ops[list[mid]!]!.invoke < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index of a sorted array whose value is >= t. */
function lowerBound(xs: readonly number[], t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Which values a remaining read could still observe. A read sees what the
 * last put wrote plus the appends after it (the cap only cuts the end), so a
 * state s can be observed only by a read that returned a value starting with
 * s; when no unlinearized read did, only s's length still matters.
 */
export class ReadPrefixes {
  /** the distinct values reads returned, sorted */
  private readonly sorted: string[];
  /** per op: its value's index in `sorted`, or -1 */
  private readonly pos: Int32Array;
  /** Fenwick tree: unlinearized reads per value */
  private readonly tree: Int32Array;

  constructor(ops: readonly SearchOp[]) {
    const values = new Set<string>();
    for (const o of ops) if (o.op === 'get' && typeof o.result === 'string') values.add(o.result);
    this.sorted = [...values].sort();
    const index = new Map(this.sorted.map((v, k) => [v, k]));
    this.pos = new Int32Array(ops.length).fill(-1);
    this.tree = new Int32Array(this.sorted.length + 1);
    ops.forEach((o, i) => {
      if (o.op === 'get' && typeof o.result === 'string') {
        this.pos[i] = index.get(o.result)!;
        this.add(this.pos[i]!, 1);
      }
    });
  }

  /** Operation i was linearized. */
  lift(i: number): void {
    if (this.pos[i]! >= 0) this.add(this.pos[i]!, -1);
  }

  unlift(i: number): void {
    if (this.pos[i]! >= 0) this.add(this.pos[i]!, 1);
  }

  /** Whether an unlinearized read returned a value that starts with s. */
  observable(s: string): boolean {
    const xs = this.sorted;
    // values starting with s are contiguous in sorted order, from the first one >= s
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (xs[mid]! < s) lo = mid + 1;
      else hi = mid;
    }
    const from = lo;
    hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (xs[mid]!.startsWith(s)) lo = mid + 1;
      else hi = mid;
    }
    return lo > from && this.prefixSum(lo) - this.prefixSum(from) > 0;
  }

  private add(k: number, d: number): void {
    for (let x = k + 1; x < this.tree.length; x += x & -x) this.tree[x]! += d;
  }

  /** Unlinearized reads of the first k values. */
  private prefixSum(k: number): number {
    let sum = 0;
    for (let x = k; x > 0; x -= x & -x) sum += this.tree[x]!;
    return sum;
  }
}
