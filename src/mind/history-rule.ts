// Which history describes a user, and where a result written from it may be used. This is the one
// place of the rule; the catalog and the stages, merge and its audit, `prompt`, `--dry-run` and the
// report all ask it (docs/history-rule.md).
//
// MIND freezes a user's history per split, and a later split's history holds the clicks of an
// earlier split's impressions, which are that split's labels. Hence:
// 1. Time order: splits are ordered by their earliest impression; ties, and splits without a
//    readable time (placed last), keep their --data order.
// 2. Source: a user is described by their earliest non-empty history in that order. Each stage asks
//    once per user, from it, and the record keeps its provenance (RecordSource: the split and the
//    clicked news IDs the prompt showed). A cold user is one whose source has 1..cold-max clicks.
// 3. Where it applies: a result is used in split s only when the user's history in s holds every
//    one of its source clicks. A past history may serve a later split, never the reverse; a user
//    with an empty history in s gets nothing there.
// 4. Candidates are off limits: a pseudo-news item may not be retrieved from, or be a near copy of,
//    a news item of the user's impressions in any split; nor may a picked news item be one. What
//    is retrieved or picked is news of the source split (its news.tsv): a later split's story in an
//    earlier split's history would bring that split's time, and its candidates, into it.
import type { RecordSource } from "../engine/types.js";
import { NEAR_COPY_JACCARD, titleTokens } from "../stages/normalize.js";
import { UserIds } from "./user-ids.js";

export interface SplitTime {
  name: string;
  /** Position in --data. */
  dataIndex: number;
  /** The split's earliest impression (ms, see parseMindTime); NaN when no time is readable. */
  start: number;
}

/** Negative when split `a` comes before `b` in time order (rule 1). */
export function compareSplitTimes(a: SplitTime, b: SplitTime): number {
  const ta = Number.isNaN(a.start) ? Infinity : a.start;
  const tb = Number.isNaN(b.start) ? Infinity : b.start;
  return ta !== tb ? (ta < tb ? -1 : 1) : a.dataIndex - b.dataIndex;
}

export function timeOrder<T extends SplitTime>(splits: readonly T[]): T[] {
  return [...splits].sort(compareSplitTimes);
}

/**
 * Rule 2, one split at a time: does a non-empty history in `split` replace the source found so far
 * (`current`, undefined when the user has none yet)? Folding every split of a user through this, in
 * any order, leaves their earliest non-empty history.
 */
export function replacesSource(split: SplitTime, current: SplitTime | undefined): boolean {
  return current === undefined || compareSplitTimes(split, current) < 0;
}

/** The rule in the words of the stage commands' --help. */
export const HISTORY_RULE_HELP = `Which history describes a user: MIND freezes a user's history per split, and a later split's
history holds the clicks of an earlier split's impressions (its labels). Splits are ordered by their
first impression; each user is asked once, from their earliest non-empty history, and the record keeps
the split and clicks it was written from. merge uses an answer in a split only where that split's
history holds all of those clicks (a past history may serve a later split, never the reverse).`;

/** The largest history of a cold user unless told otherwise (GENRE: 1 to 5 clicks). */
export const DEFAULT_COLD_MAX = 5;

/** GENRE's user groups by history length: no clicks, 1..coldMax clicks, more. */
export type HistoryClass = "empty" | "cold" | "warm";

/** The one test of an empty and a cold history: stages, merge, validate, score and --dry-run ask it. */
export function historyClass(clicks: number, coldMax: number): HistoryClass {
  return clicks === 0 ? "empty" : clicks <= coldMax ? "cold" : "warm";
}

/** Rule 2: cold users (generate's items) have 1..coldMax clicks in their source history. */
export function isCold(sourceClicks: number, coldMax: number): boolean {
  return historyClass(sourceClicks, coldMax) === "cold";
}

/** Rule 3 on strings: does a history hold every source click? */
export function holdsAll(history: ReadonlySet<string>, clicks: readonly string[]): boolean {
  return clicks.length > 0 && clicks.every((c) => history.has(c));
}

/** The earliest impression time of a split so far, fed one parsed time at a time (NaN is skipped). */
export function earlier(start: number, time: number): number {
  return Number.isNaN(time) ? start : Number.isNaN(start) || time < start ? time : start;
}

// ---- Rule 3 at MIND-large scale (merge): news IDs as numbers, histories probed without strings.

/** `N<digits>` without leading zeros as its number (at most 9 digits), else -1: one number names one ID. */
export function newsIdNumber(text: string, start = 0, end = text.length): number {
  const digits = end - start - 1;
  if (digits < 1 || digits > 9 || text.charCodeAt(start) !== 78) return -1;
  if (digits > 1 && text.charCodeAt(start + 1) === 48) return -1;
  let n = 0;
  for (let i = start + 1; i < end; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** newsIdNumber over bytes (a behaviors.tsv line), without decoding them. */
function newsIdNumberAt(buf: Uint8Array, start: number, end: number): number {
  const digits = end - start - 1;
  if (digits < 1 || digits > 9 || buf[start] !== 78) return -1;
  if (digits > 1 && buf[start + 1] === 48) return -1;
  let n = 0;
  for (let i = start + 1; i < end; i++) {
    const c = buf[i]! - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/**
 * News IDs as integers: `N<digits>` is its number, any other ID a negative code given on first use.
 * Source clicks are held as these codes (a MIND-large run holds ~700k profiles of ~20 clicks each).
 */
export class NewsCodes {
  private readonly others = new Map<string, number>();
  private readonly otherIds: string[] = [];

  code(id: string): number {
    const n = newsIdNumber(id);
    if (n >= 0) return n;
    let c = this.others.get(id);
    if (c === undefined) {
      this.otherIds.push(id);
      this.others.set(id, (c = -this.otherIds.length));
    }
    return c;
  }

  /** The code of the ID in `buf[start, end)`, given one if it has none yet. */
  codeOf(buf: Buffer, start: number, end: number): number {
    const n = newsIdNumberAt(buf, start, end);
    return n >= 0 ? n : this.code(buf.toString("utf8", start, end));
  }

  id(code: number): string {
    return code >= 0 ? `N${code}` : this.otherIds[-code - 1]!;
  }
}

/** A RecordSource whose clicks were read straight into NewsCodes (merge's record reader). */
export interface CodedSource {
  split: string;
  codes: readonly number[];
}

/** The provenance of many records, packed: split names interned, clicks as NewsCodes in one pool. */
export class SourceTable {
  private readonly splitNames: string[] = [];
  private splitOf = new Int32Array(1024);
  private offsets = new Int32Array(1025);
  private pool = new Int32Array(16_384);
  private count = 0;

  constructor(readonly codes: NewsCodes) {}

  /** Stores a source, its clicks as IDs or already as this table's NewsCodes; returns its index. */
  add(source: RecordSource | CodedSource): number {
    const i = this.count++;
    if (i + 1 >= this.offsets.length) {
      this.offsets = grown(this.offsets, this.offsets.length * 2);
      this.splitOf = grown(this.splitOf, this.offsets.length);
    }
    let s = this.splitNames.indexOf(source.split);
    if (s < 0) s = this.splitNames.push(source.split) - 1;
    this.splitOf[i] = s;
    const start = this.offsets[i]!;
    const length = "codes" in source ? source.codes.length : source.clicks.length;
    if (start + length > this.pool.length) this.pool = grown(this.pool, Math.max(this.pool.length * 2, start + length));
    if ("codes" in source) this.pool.set(source.codes, start);
    else source.clicks.forEach((id, k) => (this.pool[start + k] = this.codes.code(id)));
    this.offsets[i + 1] = start + length;
    return i;
  }

  split(i: number): string {
    return this.splitNames[this.splitOf[i]!]!;
  }

  /** Rule 3: does the history loaded in `probe` hold every click of source `i`? */
  heldBy(i: number, probe: HistoryProbe): boolean {
    const start = this.offsets[i]!;
    const end = this.offsets[i + 1]!;
    if (end === start) return false;
    for (let k = start; k < end; k++) if (!probe.has(this.pool[k]!)) return false;
    return true;
  }

  source(i: number): RecordSource {
    return { split: this.split(i), clicks: [...this.pool.subarray(this.offsets[i]!, this.offsets[i + 1]!)].map((c) => this.codes.id(c)) };
  }
}

function grown<T extends Int32Array>(a: T, length: number): T {
  const b = new Int32Array(length) as T;
  b.set(a);
  return b;
}

/**
 * Calls `f` with the NewsCodes of the space-separated IDs in `buf[start, end)`; `labeled` cuts each at
 * its last dash (an Impressions column: `N123-1` → N123's code). A byte loop: a History or
 * Impressions column holds dozens of short IDs, and a native call per ID would cost more than the ID.
 */
export function forEachCode(codes: NewsCodes, buf: Buffer, start: number, end: number, f: (code: number) => void, labeled = false): void {
  let i = start;
  while (i < end) {
    while (i < end && buf[i] === 32) i++;
    if (i >= end) return;
    const s = i;
    let dash = -1;
    while (i < end && buf[i] !== 32) {
      if (buf[i] === 45) dash = i;
      i++;
    }
    f(codes.codeOf(buf, s, labeled && dash > s ? dash : i));
  }
}

/** News numbers up to this are marked in an array (MIND's reach ~130k); larger ones, rare, go to a set. */
const MAX_MARKED = 1 << 22;

/**
 * One history at a time, for rule 3 over bytes: load a behaviors.tsv History column, then ask
 * whether it holds a source's clicks. A mark per news number (stamped, so a new history costs no
 * clearing); the rare non-numeric IDs go to a set.
 */
export class HistoryProbe {
  private marks = new Int32Array(1 << 16);
  private stamp = 0;
  private readonly others = new Set<number>();

  private skip: ((code: number) => boolean) | undefined;
  // One callback for every history (a closure made per history costs more than the history).
  private readonly visit = (code: number): void => {
    if (!this.skip?.(code)) this.mark(code);
  };

  constructor(readonly codes: NewsCodes) {}

  /** Loads the space-separated IDs of `buf[start, end)`; `skip` leaves some out (the audit: appended pseudo-news). */
  load(buf: Buffer, start: number, end: number, skip?: (code: number) => boolean): void {
    this.stamp++;
    if (this.others.size > 0) this.others.clear();
    this.skip = skip;
    forEachCode(this.codes, buf, start, end, this.visit);
  }

  private mark(code: number): void {
    if (code < 0 || code > MAX_MARKED) {
      this.others.add(code);
      return;
    }
    if (code >= this.marks.length) this.marks = grown(this.marks, Math.max(code + 1, this.marks.length * 2));
    this.marks[code] = this.stamp;
  }

  has(code: number): boolean {
    return code < 0 || code > MAX_MARKED ? this.others.has(code) : code < this.marks.length && this.marks[code] === this.stamp;
  }
}

/**
 * Rules 1 and 2 at MIND-large scale (merge): each user's history length per split (capped: merge
 * needs 0, 1..cold-max or more) and each split's earliest impression, fed row by row; then every
 * user's source. Columns in typed arrays, not an object per user: MIND-large has ~1M users.
 */
export class UserSources {
  private readonly users = new UserIds();
  /** users × splits, -1 where the user has no row. */
  private lengths = new Int32Array(1 << 16);
  private readonly starts: number[];
  /** After finish(): each user's source split (its --data index), -1 for none. */
  private source = new Int32Array(0);
  timeline: SplitTime[] = [];
  /** Whether the last row given to see() was the user's first in its split. */
  firstInSplit = false;

  constructor(private readonly splits: readonly string[]) {
    this.starts = splits.map(() => Number.NaN);
    this.lengths.fill(-1);
  }

  get size(): number {
    return this.users.size;
  }

  has(userId: string): boolean {
    return this.users.get(userId) !== undefined;
  }

  /** A user's index (0..size-1, in the order met); undefined for a user without a row. */
  indexOf(userId: string): number | undefined {
    return this.users.get(userId);
  }

  /** indexOf() of the user ID in the bytes `buf[start, end)`. */
  indexAt(buf: Buffer, start: number, end: number): number | undefined {
    return this.users.getAt(buf, start, end);
  }

  idAt(u: number): string {
    return this.users.idAt(u);
  }

  /** The number of user `u`'s `U<digits>` ID; -1 for an ID of another form. */
  numberAt(u: number): number {
    return this.users.numberAt(u);
  }

  /** Every user ID, in the order met. */
  ids(): IterableIterator<string> {
    return this.users.ids();
  }

  /**
   * A behaviors row, its UserID the bytes `buf[idStart, idEnd)`. Returns the user's index; on the
   * user's first row in the split (firstInSplit), give their history's length to setLength().
   */
  see(buf: Buffer, idStart: number, idEnd: number, split: number, time: number): number {
    this.starts[split] = earlier(this.starts[split]!, time);
    let i = this.users.getAt(buf, idStart, idEnd);
    if (i === undefined) {
      i = this.users.addAt(buf, idStart, idEnd);
      if ((i + 1) * this.splits.length > this.lengths.length) {
        const more = new Int32Array(this.lengths.length * 2).fill(-1);
        more.set(this.lengths);
        this.lengths = more;
      }
    }
    this.firstInSplit = this.lengths[i * this.splits.length + split] === -1;
    return i;
  }

  /** The length of user `u`'s history in `split` (capped as the caller needs: merge needs 0, 1..cold-max or more). */
  setLength(u: number, split: number, length: number): void {
    this.lengths[u * this.splits.length + split] = length;
  }

  /** Call once after the last split. */
  finish(): void {
    const n = this.splits.length;
    const times = this.splits.map((name, dataIndex): SplitTime => ({ name, dataIndex, start: this.starts[dataIndex]! }));
    this.timeline = timeOrder(times);
    this.source = new Int32Array(this.users.size).fill(-1);
    for (let i = 0; i < this.users.size; i++) {
      let best: SplitTime | undefined;
      for (let s = 0; s < n; s++) if (this.lengths[i * n + s]! > 0 && replacesSource(times[s]!, best)) best = times[s];
      if (best) this.source[i] = best.dataIndex;
    }
  }

  /** The length of the user's source history (capped as given to see()); 0 when it is empty everywhere. */
  sourceLength(userId: string): number {
    const i = this.users.get(userId);
    if (i === undefined) return 0;
    const s = this.source[i]!;
    return s < 0 ? 0 : this.lengths[i * this.splits.length + s]!;
  }
}

// ---- Rule 4.

/** How a pseudo-news item breaks rule 4. */
export type CandidateConflict = "retrieved" | "near copy";

/** A pseudo-news item ready to be checked against many candidates: its title packed in the guard. */
export interface GuardedItem<K> {
  /** The title's entry in the guard. */
  entry: number;
  retrievedFrom?: K;
}

export interface GuardedGroup<K, T extends GuardedItem<K>> {
  items: readonly T[];
  /** The news the items were retrieved from: one array of keys, whatever the items' shapes. */
  retrieved: readonly K[];
  /** The items' signatures joined, the fewest words and the most collided words (CandidateGuard.collided) of any of them. */
  signature: number;
  minLength: number;
  collided: number;
}

/** Jaccard ≥ t needs shared words ≥ t/(1+t)·(|a|+|b|). */
const NEEDED_SHARE = NEAR_COPY_JACCARD / (1 + NEAR_COPY_JACCARD);

/**
 * At most how many words two titles share, from the bits both signatures set: each shared word
 * sets one of those bits, and a bit holds more than one word of a title only as often as that
 * title's words collide (its word count − its bits set), so shared ≤ common bits + the fewer collisions.
 */
function sharedBound(commonBits: number, collidedA: number, collidedB: number): number {
  return popcount(commonBits) + Math.min(collidedA, collidedB);
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * Rule 4: is an item retrieved from, or a near copy (NEAR_COPY_JACCARD on title words, as
 * stages/normalize.ts counts them) of, a candidate? News are keyed by ID (the stages) or by
 * NewsCodes (merge, which reads them from bytes); `titleOf` gives a candidate's title (its row in
 * the input news.tsv). Merge asks this for every candidate of every row of a cold user, tens of
 * millions of pairs on MIND-large, so every title (candidate or item) is packed once as an entry:
 * sorted word IDs in one pool, a count, and a 32-bit signature (bit `word ID mod 32` per word)
 * that settles most pairs alone. The signature bounds the shared words from above only with the
 * words that share a bit counted (sharedBound): two shared words on one bit light it once.
 */
export class CandidateGuard<K extends string | number = string> {
  private readonly wordIds = new Map<string, number>();
  private entries = 0;
  private signatures = new Int32Array(1024);
  /** Word count per entry; -1 for a candidate without a title here. */
  private lengths = new Int32Array(1024);
  /** Per entry: its words beyond the first on each signature bit (word count − bits set). */
  private collided = new Int32Array(1024);
  private offsets = new Int32Array(1025);
  private pool = new Int32Array(8192);
  /** Candidates with numeric keys (NewsCodes): 1 + their entry, 0 when not seen yet. */
  private slots = new Int32Array(1024);
  private readonly byKey = new Map<K, number>();

  constructor(private readonly titleOf: (news: K) => string | undefined) {}

  /** Packs a title (or its absence) as a new entry. */
  private pack(title: string | undefined): number {
    const e = this.entries++;
    if (e === this.lengths.length) {
      this.signatures = grown(this.signatures, e * 2);
      this.lengths = grown(this.lengths, e * 2);
      this.collided = grown(this.collided, e * 2);
      this.offsets = grown(this.offsets, e * 2 + 1);
    }
    const start = this.offsets[e]!;
    if (title === undefined) {
      this.lengths[e] = -1;
      this.offsets[e + 1] = start;
      return e;
    }
    const ids: number[] = [];
    let signature = 0;
    for (const w of titleTokens(title)) {
      let id = this.wordIds.get(w);
      if (id === undefined) this.wordIds.set(w, (id = this.wordIds.size));
      ids.push(id);
      signature |= 1 << (id & 31);
    }
    ids.sort((x, y) => x - y);
    if (start + ids.length > this.pool.length) this.pool = grown(this.pool, Math.max(this.pool.length * 2, start + ids.length));
    this.pool.set(ids, start);
    this.signatures[e] = signature;
    this.lengths[e] = ids.length;
    this.collided[e] = ids.length - popcount(signature);
    this.offsets[e + 1] = start + ids.length;
    return e;
  }

  item(title: string, retrievedFrom?: K): GuardedItem<K> {
    return { entry: this.pack(title), retrievedFrom };
  }

  /** A news item of the catalog as an item (pick's real news): its title packed once, however often it is asked about. */
  news(id: K): GuardedItem<K> {
    return { entry: this.entryOf(id), retrievedFrom: id };
  }

  /** A candidate's entry, packed on first sight. */
  private entryOf(news: K): number {
    const dense = typeof news === "number" && news >= 0 && news <= MAX_MARKED;
    const slot = dense ? (news < this.slots.length ? this.slots[news]! : 0) : (this.byKey.get(news) ?? 0);
    if (slot > 0) return slot - 1;
    const e = this.pack(this.titleOf(news));
    if (!dense) this.byKey.set(news, e + 1);
    else {
      if (news >= this.slots.length) this.slots = grown(this.slots, Math.max(news + 1, this.slots.length * 2));
      this.slots[news] = e + 1;
    }
    return e;
  }

  conflict(item: GuardedItem<K>, candidate: K): CandidateConflict | undefined {
    if (candidate === item.retrievedFrom) return "retrieved";
    const a = item.entry;
    const b = this.entryOf(candidate);
    const aLength = this.lengths[a]!;
    const bLength = this.lengths[b]!;
    if (bLength < 0) return undefined;
    if (sharedBound(this.signatures[a]! & this.signatures[b]!, this.collided[a]!, this.collided[b]!) < NEEDED_SHARE * (aLength + bLength)) return undefined;
    const pool = this.pool;
    const aEnd = this.offsets[a]! + aLength;
    const bEnd = this.offsets[b]! + bLength;
    let shared = 0;
    for (let i = this.offsets[a]!, j = this.offsets[b]!; i < aEnd && j < bEnd; ) {
      if (pool[i]! === pool[j]!) {
        shared++;
        i++;
        j++;
      } else if (pool[i]! < pool[j]!) i++;
      else j++;
    }
    const union = aLength + bLength - shared;
    // Two empty word sets are alike (jaccard's convention).
    return (union === 0 ? 1 : shared / union) >= NEAR_COPY_JACCARD ? "near copy" : undefined;
  }

  /** A user's items, checked together: most candidates are cleared for all of them by one signature test. */
  group<T extends GuardedItem<K>>(items: readonly T[]): GuardedGroup<K, T> {
    let signature = 0;
    let minLength = Infinity;
    let collided = 0;
    const retrieved: K[] = [];
    for (const item of items) {
      signature |= this.signatures[item.entry]!;
      minLength = Math.min(minLength, this.lengths[item.entry]!);
      collided = Math.max(collided, this.collided[item.entry]!);
      if (item.retrievedFrom !== undefined) retrieved.push(item.retrievedFrom);
    }
    return { items, retrieved, signature, minLength, collided };
  }

  /** The items of a group that conflict with a candidate, or undefined (the usual answer, found without looking at each). */
  conflicts<T extends GuardedItem<K>>(group: GuardedGroup<K, T>, candidate: K): { item: T; reason: CandidateConflict }[] | undefined {
    if (!group.retrieved.includes(candidate)) {
      const b = this.entryOf(candidate);
      const bLength = this.lengths[b]!;
      if (bLength < 0) return undefined;
      // conflict()'s bound for an item with every item's signature bits, most collided words and fewest words at once.
      if (sharedBound(group.signature & this.signatures[b]!, group.collided, this.collided[b]!) < NEEDED_SHARE * (group.minLength + bLength)) return undefined;
    }
    const found: { item: T; reason: CandidateConflict }[] = [];
    for (const item of group.items) {
      const reason = this.conflict(item, candidate);
      if (reason) found.push({ item, reason });
    }
    return found.length > 0 ? found : undefined;
  }

  firstConflict(item: GuardedItem<K>, candidates: Iterable<K>): { candidate: K; reason: CandidateConflict } | undefined {
    for (const candidate of candidates) {
      const reason = this.conflict(item, candidate);
      if (reason) return { candidate, reason };
    }
    return undefined;
  }

  /**
   * firstConflict of a title checked once and not kept (a stage's answer): its entry is given back
   * unless a candidate was packed after it, so a run that checks an answer per cold user (200k at
   * MIND-large) holds the candidates' entries only, not one more per check.
   */
  conflictOnce(title: string, retrievedFrom: K | undefined, candidates: Iterable<K>): { candidate: K; reason: CandidateConflict } | undefined {
    const item = this.item(title, retrievedFrom);
    try {
      return this.firstConflict(item, candidates);
    } finally {
      if (item.entry === this.entries - 1) this.entries--;
    }
  }
}

// ---- What the rule makes of a run's users, for --dry-run.

/** A date as MIND writes it (`11/9/2019`), for the time order line. */
function day(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()}`;
}

/**
 * The request counts of a user stage under the rule: its items by source split, and the users it
 * skips (empty in every split; for generate also the warm ones). `items` are the users to be asked.
 */
export function describeSources(
  stage: string,
  users: ReadonlyMap<string, { history: readonly string[]; split?: string }>,
  timeline: readonly SplitTime[],
  items: Iterable<string> & { readonly length: number },
  coldMax?: number,
): string {
  const fmt = (n: number) => n.toLocaleString("en-US");
  const order = timeline.map((s) => `${s.name}${Number.isNaN(s.start) ? "" : ` (from ${day(s.start)})`}`).join(" → ");
  const bySplit = new Map(timeline.map((s) => [s.name, 0]));
  for (const id of items) {
    const split = users.get(id)?.split;
    if (split !== undefined) bySplit.set(split, (bySplit.get(split) ?? 0) + 1);
  }
  let empty = 0;
  let warm = 0;
  for (const u of users.values()) {
    const kind = historyClass(u.history.length, coldMax ?? Infinity);
    if (kind === "empty") empty++;
    else if (kind === "warm") warm++;
  }
  const what = coldMax === undefined ? "users" : `cold users (1-${coldMax} clicks)`;
  const from = [...bySplit].map(([name, n]) => `${fmt(n)} from ${name}`).join(", ");
  const skipped = [`${fmt(empty)} with an empty history in every split`, ...(coldMax === undefined ? [] : [`${fmt(warm)} warm`])].join(", ");
  return (
    `${stage}: one request per user, from their earliest non-empty history; splits in time order: ${order}\n` +
    `  ${fmt(items.length)} ${what}: ${from}; skipped: ${skipped}\n`
  );
}
