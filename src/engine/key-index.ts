// Compact sets and maps of 64-bit hashes, for what the engine must remember per item across a run of
// a million items (which keys are stored and where, which item already has its record) without a
// JS string and object per item: open addressing over typed arrays (at most 3/4 full), 12-23 bytes an entry.
//
// A 64-bit hash of distinct strings collides with probability ~n²/2^65 (3·10^-8 for a million keys);
// where a wrong answer would matter the caller checks what it finds (the planner re-reads a copied
// record and compares its full key).

/** Two 32-bit halves of a 64-bit hash. */
export interface Hash64 {
  hi: number;
  lo: number;
}

/**
 * A request key is a sha256 in hex: its first 16 hex digits already are a uniform 64-bit hash.
 * Any other string is hashed with two FNV-1a variants over its UTF-16 code units.
 */
export function hash64(s: string): Hash64 {
  if (s.length >= 16 && /^[0-9a-f]{16}/.test(s)) return { hi: Number.parseInt(s.slice(0, 8), 16) | 0, lo: Number.parseInt(s.slice(8, 16), 16) | 0 };
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return { hi: h1 | 0, lo: fmix(h2 ^ s.length) };
}

/** The hash of a pair (key, item): which item a stored answer is for. */
export function pairHash(key: Hash64, item: string): Hash64 {
  const h = hash64(item);
  return { hi: fmix(key.hi ^ Math.imul(h.hi, 0x85ebca6b)), lo: fmix(key.lo ^ Math.imul(h.lo, 0xc2b2ae35) ^ 0x27d4eb2f) };
}

/** murmur3's finalizer: spreads every input bit over the word. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const FULL = 1;

/** Open addressing over 64-bit hashes, at most 3/4 full; a subclass keeps its columns beside the keys. */
class HashTable64 {
  protected his: Int32Array;
  protected los: Int32Array;
  protected used: Uint8Array;
  private count = 0;

  constructor(capacity: number) {
    let n = 16;
    while (n * 3 < capacity * 4) n *= 2;
    this.his = new Int32Array(n);
    this.los = new Int32Array(n);
    this.used = new Uint8Array(n);
  }

  get size(): number {
    return this.count;
  }

  protected slot(h: Hash64): number {
    const mask = this.used.length - 1;
    let i = (h.lo ^ Math.imul(h.hi, 0x9e3779b1)) & mask;
    while (this.used[i] === FULL && (this.his[i] !== h.hi || this.los[i] !== h.lo)) i = (i + 1) & mask;
    return i;
  }

  has(h: Hash64): boolean {
    return this.used[this.slot(h)] === FULL;
  }

  /** The slot of `h`, taken (the table grown first when it must) if `h` was not there. */
  protected claim(h: Hash64): number {
    let i = this.slot(h);
    if (this.used[i] === FULL) return i;
    if ((this.count + 1) * 4 > this.used.length * 3) {
      this.grow();
      i = this.slot(h);
    }
    this.used[i] = FULL;
    this.his[i] = h.hi;
    this.los[i] = h.lo;
    this.count++;
    return i;
  }

  /** Twice the slots; `move` carries a subclass's column from an old slot to the new one. */
  protected grow(move?: (from: number, to: number) => void): void {
    const { his, los, used } = this;
    const n = used.length * 2;
    this.his = new Int32Array(n);
    this.los = new Int32Array(n);
    this.used = new Uint8Array(n);
    for (let j = 0; j < used.length; j++) {
      if (used[j] !== FULL) continue;
      const i = this.slot({ hi: his[j]!, lo: los[j]! });
      this.used[i] = FULL;
      this.his[i] = his[j]!;
      this.los[i] = los[j]!;
      move?.(j, i);
    }
  }
}

/** A map from 64-bit hashes to non-negative integers below 2^53 (file offsets with a few flag bits). */
export class HashMap64 extends HashTable64 {
  private vals: Float64Array;

  constructor(capacity = 1024) {
    super(capacity);
    this.vals = new Float64Array(this.used.length);
  }

  get(h: Hash64): number | undefined {
    const i = this.slot(h);
    return this.used[i] === FULL ? this.vals[i] : undefined;
  }

  set(h: Hash64, value: number): void {
    // Claimed first: claiming may grow the table, and with it replace `vals`.
    const i = this.claim(h);
    this.vals[i] = value;
  }

  /** The value of every key, once each, in no particular order. */
  *values(): IterableIterator<number> {
    for (let i = 0; i < this.used.length; i++) if (this.used[i] === FULL) yield this.vals[i]!;
  }

  protected override grow(): void {
    const vals = this.vals;
    this.vals = new Float64Array(this.used.length * 2);
    super.grow((from, to) => (this.vals[to] = vals[from]!));
  }
}

/** A set of 64-bit hashes: the table without values. */
export class HashSet64 extends HashTable64 {
  constructor(capacity = 32) {
    super(capacity);
  }

  add(h: Hash64): void {
    this.claim(h);
  }
}
