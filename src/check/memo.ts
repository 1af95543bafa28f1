/**
 * The search's memo (Lowe's): model states as small integers, and a set of
 * configurations (set of linearized operations, state) in typed arrays.
 */

/**
 * Model states as small integers (V8 caches a string's hash, so lookups are
 * cheap). Besides values, a state can be "opaque": a value of known length
 * whose content no remaining read can observe, so configurations that differ
 * only in such content are one configuration; "unknown": any value at all
 * (a history window that starts mid-way); or "vague": any value of a known
 * length (unknown, after an append). A read of an unknown or vague state
 * learns the value, a put sets it.
 */
export class States {
  private readonly ids = new Map<string, number>();
  private readonly values: string[] = [];
  private readonly lengths: number[] = [];
  private readonly opaqueFlags: boolean[] = [];
  private readonly opaqueIds = new Map<number, number>();
  private readonly vagueIds = new Map<number, number>();
  private readonly vagueFlags: boolean[] = [];
  private stored = 0;
  private unknownId = -1;

  /** The id of a value. */
  id(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.values.length;
      this.ids.set(s, id);
      this.values.push(s);
      this.lengths.push(s.length);
      this.opaqueFlags.push(false);
      this.vagueFlags.push(false);
      this.stored += 2 * s.length + 64;
    }
    return id;
  }

  /** The id of the opaque state of this length. */
  opaque(length: number): number {
    // nothing to hide in ""
    if (length === 0) return this.id('');
    let id = this.opaqueIds.get(length);
    if (id === undefined) {
      id = this.values.length;
      this.opaqueIds.set(length, id);
      this.values.push('');
      this.lengths.push(length);
      this.opaqueFlags.push(true);
      this.vagueFlags.push(false);
    }
    return id;
  }

  /** The id of the unknown state. */
  unknown(): number {
    if (this.unknownId < 0) {
      this.unknownId = this.values.length;
      this.values.push('');
      this.lengths.push(-1);
      this.opaqueFlags.push(false);
      this.vagueFlags.push(false);
    }
    return this.unknownId;
  }

  /** The id of the vague state of this length. */
  vague(length: number): number {
    if (length === 0) return this.id('');
    let id = this.vagueIds.get(length);
    if (id === undefined) {
      id = this.values.length;
      this.vagueIds.set(length, id);
      this.values.push('');
      this.lengths.push(length);
      this.opaqueFlags.push(false);
      this.vagueFlags.push(true);
    }
    return id;
  }

  isVague(id: number): boolean {
    return this.vagueFlags[id]!;
  }

  /** Whether the id stands for one value. */
  isValue(id: number): boolean {
    return !this.opaqueFlags[id] && !this.vagueFlags[id] && id !== this.unknownId;
  }

  isUnknown(id: number): boolean {
    return id === this.unknownId;
  }

  isOpaque(id: number): boolean {
    return this.opaqueFlags[id]!;
  }

  /** The value (meaningless unless isValue). */
  value(id: number): string {
    return this.values[id]!;
  }

  /** The length (-1 for the unknown state). */
  length(id: number): number {
    return this.lengths[id]!;
  }

  size(): number {
    return this.values.length;
  }

  /** Roughly what the values take in memory. */
  bytes(): number {
    return this.stored;
  }
}

/** Deterministic 32-bit keys per operation, so the set's hash is updated in O(1) (Zobrist hashing). */
export function zobristKeys(n: number): Int32Array {
  const keys = new Int32Array(n);
  let s = 0x2545f491;
  for (let i = 0; i < n; i++) {
    // mulberry32
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    keys[i] = t ^ (t >>> 14);
  }
  return keys;
}

export function configHash(setHash: number, sid: number): number {
  return (setHash ^ Math.imul(sid + 1, 0x9e3779b1)) | 0;
}

/**
 * The memo: a set of (linearized set, state id) in typed arrays. A set is stored
 * trimmed: the leading all-ones words and trailing zero words are implied (what
 * is linearized is mostly "everything before the current window").
 */
export class ConfigCache {
  private slots = new Int32Array(1 << 10);
  private count = 0;
  private eHash = new Int32Array(1 << 9);
  private eSid = new Int32Array(1 << 9);
  private eLo = new Int32Array(1 << 9);
  private eLen = new Int32Array(1 << 9);
  private eOff = new Int32Array(1 << 9);
  private pool = new Uint32Array(1 << 12);
  private used = 0;

  constructor(private readonly words: number) {}

  bytes(): number {
    return this.slots.byteLength + 5 * this.eHash.byteLength + this.pool.byteLength;
  }

  /** Adds the configuration; false if it was already there. */
  addIfAbsent(hash: number, sid: number, bits: Uint32Array): boolean {
    let lo = 0;
    while (lo < this.words && bits[lo] === 0xffffffff) lo++;
    let hi = this.words;
    while (hi > lo && bits[hi - 1] === 0) hi--;
    const len = hi - lo;
    const mask = this.slots.length - 1;
    let s = mix(hash) & mask;
    for (let e = this.slots[s]!; e !== 0; s = (s + 1) & mask, e = this.slots[s]!) {
      const k = e - 1;
      if (this.eHash[k] !== hash || this.eSid[k] !== sid || this.eLo[k] !== lo || this.eLen[k] !== len) continue;
      const off = this.eOff[k]!;
      let same = true;
      for (let w = 0; w < len; w++) {
        if (this.pool[off + w] !== bits[lo + w]) {
          same = false;
          break;
        }
      }
      if (same) return false;
    }
    const k = this.count++;
    if (k === this.eHash.length) this.growEntries();
    if (this.used + len > this.pool.length) this.pool = grow(this.pool, this.used + len);
    this.pool.set(bits.subarray(lo, hi), this.used);
    this.eHash[k] = hash;
    this.eSid[k] = sid;
    this.eLo[k] = lo;
    this.eLen[k] = len;
    this.eOff[k] = this.used;
    this.used += len;
    this.slots[s] = k + 1;
    if (this.count * 2 > this.slots.length) this.rehash();
    return true;
  }

  private growEntries(): void {
    this.eHash = grow(this.eHash, this.eHash.length + 1);
    this.eSid = grow(this.eSid, this.eSid.length + 1);
    this.eLo = grow(this.eLo, this.eLo.length + 1);
    this.eLen = grow(this.eLen, this.eLen.length + 1);
    this.eOff = grow(this.eOff, this.eOff.length + 1);
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let k = 0; k < this.count; k++) {
      let s = mix(this.eHash[k]!) & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = k + 1;
    }
    this.slots = slots;
  }
}

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function grow<T extends Int32Array | Uint32Array>(a: T, atLeast: number): T {
  let size = a.length * 2;
  while (size < atLeast) size *= 2;
  const b = new (a.constructor as new (n: number) => T)(size);
  b.set(a);
  return b;
}
