// User IDs as numbers: MIND-large has ~1M users, met on every one of millions of behaviors rows.
// The catalog (stages) and merge find a user this way instead of by a string key.

/** Int32 columns that grow by doubling: one number per user, off the JS heap. */
export class IntColumn {
  private data = new Int32Array(1024);
  /** 0 past what was set. */
  get(i: number): number {
    return i < this.data.length ? this.data[i]! : 0;
  }
  set(i: number, v: number): void {
    if (i >= this.data.length) {
      const grown = new Int32Array(Math.max(i + 1, this.data.length * 2));
      grown.set(this.data);
      this.data = grown;
    }
    this.data[i] = v;
  }
}

/**
 * Values by a dense number (a user's index or number), for lookups on every row: a slot column and a
 * list, without hashing and without a sparse JS array (which V8 keeps as a dictionary).
 */
export class IndexedValues<T> {
  /** 1 + the value's place in `values`; 0 for none. */
  private readonly slots = new IntColumn();
  private readonly values: T[] = [];

  get(i: number): T | undefined {
    const slot = this.slots.get(i);
    return slot > 0 ? this.values[slot - 1] : undefined;
  }

  set(i: number, value: T): void {
    const slot = this.slots.get(i);
    if (slot > 0) this.values[slot - 1] = value;
    else this.slots.set(i, this.values.push(value));
  }
}

/** User numbers up to this are found in an array; larger ones, and other forms, by their string. */
const MAX_USER_NUMBER = 1 << 22;

/** The number of a `U<digits>` user ID written without leading zeros (so it names one ID), else -1. */
export function userIdNumber(id: string): number {
  if (id.length < 2 || id.length > 10 || id.charCodeAt(0) !== 85 || (id.length > 2 && id.charCodeAt(1) === 48)) return -1;
  let n = 0;
  for (let i = 1; i < id.length; i++) {
    const c = id.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n <= MAX_USER_NUMBER ? n : -1;
}

/** userIdNumber of the bytes `buf[start, end)` (a behaviors.tsv UserID column), without decoding them. */
export function userIdNumberAt(buf: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length < 2 || length > 10 || buf[start] !== 85 || (length > 2 && buf[start + 1] === 48)) return -1;
  let n = 0;
  for (let i = start + 1; i < end; i++) {
    const c = buf[i]! - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n <= MAX_USER_NUMBER ? n : -1;
}

/**
 * User IDs as indexes in the order met. A `U<digits>` ID (every MIND user) is found by its number in
 * an array and rebuilt from it, so a million users cost two numbers each instead of a string and a
 * map entry on the JS heap.
 */
export class UserIds {
  /** Index + 1 by user number. */
  private readonly byNumber = new IntColumn();
  /** User number by index; -1 for an ID of another form. */
  private readonly numbers = new IntColumn();
  private readonly others = new Map<string, number>();
  private readonly otherIds = new Map<number, string>();
  size = 0;

  get(id: string): number | undefined {
    const n = userIdNumber(id);
    if (n < 0) return this.others.get(id);
    const u = this.byNumber.get(n);
    return u > 0 ? u - 1 : undefined;
  }

  /** get() of the ID in the bytes `buf[start, end)`: decoded only when it is not of the `U<digits>` form. */
  getAt(buf: Buffer, start: number, end: number): number | undefined {
    const n = userIdNumberAt(buf, start, end);
    if (n < 0) return this.others.get(buf.toString("utf8", start, end));
    const u = this.byNumber.get(n);
    return u > 0 ? u - 1 : undefined;
  }

  add(id: string): number {
    return this.added(id, userIdNumber(id));
  }

  /** add() of the ID in the bytes `buf[start, end)`: decoded only when it is not of the `U<digits>` form. */
  addAt(buf: Buffer, start: number, end: number): number {
    const n = userIdNumberAt(buf, start, end);
    return this.added(n >= 0 ? undefined : buf.toString("utf8", start, end), n);
  }

  private added(id: string | undefined, n: number): number {
    const u = this.size++;
    this.numbers.set(u, n);
    if (n >= 0) this.byNumber.set(n, u + 1);
    else {
      this.others.set(id!, u);
      this.otherIds.set(u, id!);
    }
    return u;
  }

  /** The number of user `u`'s `U<digits>` ID; -1 for an ID of another form. */
  numberAt(u: number): number {
    return this.numbers.get(u);
  }

  idAt(u: number): string {
    const n = this.numbers.get(u);
    return n >= 0 ? `U${n}` : this.otherIds.get(u)!;
  }

  /** Every ID, in the order met. */
  *ids(): IterableIterator<string> {
    for (let u = 0; u < this.size; u++) yield this.idAt(u);
  }
}
