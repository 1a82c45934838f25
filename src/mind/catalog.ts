import { readByteLineChunks } from "./byte-lines.js";
import { behaviorTabs, readNews, readRawBehaviorBatches, type ReadOptions } from "./read.js";
import type { NewsRow } from "./rows.js";
import type { SplitDir } from "./splits.js";
import { earlier, newsIdNumber, replacesSource, timeOrder, type SplitTime } from "./history-rule.js";
import { parseMindTime } from "./time.js";
import { IntColumn, UserIds } from "./user-ids.js";

export interface CatalogNews extends NewsRow {
  /** The first split (in `--data` order) that has this news ID. */
  split: string;
  /** Every split whose news.tsv has this ID, in `--data` order (`split` first). */
  inSplits: string[];
}

/** The history that describes a user: their source, by the rule of history-rule.ts. */
export interface UserHistory {
  userId: string;
  /** Clicked news IDs, oldest first, exactly as in behaviors.tsv; empty when every split's history is empty. */
  history: string[];
  /** The split the history comes from; undefined when it is empty everywhere. */
  split?: string;
}

export interface Catalog {
  splits: SplitDir[];
  /** The splits in time order (history-rule.ts rule 1), with their earliest impression. */
  timeline: SplitTime[];
  news: Map<string, CatalogNews>;
  /** Each user's source history (a compact table: a history is materialized when it is read). */
  users: ReadonlyMap<string, UserHistory>;
}

export interface CatalogOptions extends ReadOptions {
  /** Skip behaviors (summarize needs news only). */
  newsOnly?: boolean;
  /** With newsOnly: read each behaviors.tsv's times only, for the splits' time order (describe). */
  splitTimes?: boolean;
}

/** A split's earliest impression time (history-rule.ts rule 1), its Time column scanned as bytes. */
async function earliestImpression(file: string): Promise<number> {
  let start = Number.NaN;
  for await (const { buf, starts, ends } of readByteLineChunks(file)) {
    for (let i = 0; i < starts.length; i++) {
      const tabs = behaviorTabs(buf, starts[i]!, ends[i]!);
      // A malformed line has no time to give; reading it is validate's and the stages' business.
      if (Array.isArray(tabs)) start = earlier(start, parseMindTime(buf.toString("latin1", tabs[1] + 1, tabs[2])));
    }
  }
  return start;
}

export async function loadCatalog(splits: SplitDir[], opts: CatalogOptions = {}): Promise<Catalog> {
  const news = new Map<string, CatalogNews>();
  const times = new Map<string, SplitTime>();
  const ids = new NewsIndex();
  const text = new NewsText();
  const users = new UserTable(ids, splits.map((s) => s.name));
  for (const [dataIndex, split] of splits.entries()) {
    for await (const row of readNews(split.newsFile, opts)) {
      const known = news.get(row.id);
      if (known) {
        known.inSplits.push(split.name);
        continue;
      }
      news.set(row.id, text.add(row, split.name));
      ids.add(row.id);
    }
    if (opts.newsOnly) {
      if (opts.splitTimes) times.set(split.name, { name: split.name, dataIndex, start: await earliestImpression(split.behaviorsFile) });
      continue;
    }
    // A user's History is the same on every row of a split (validate checks it): the first row's is
    // kept. A user new to the catalog takes it at once; for one met in an earlier split, which of the
    // two is the source is known only when this split's earliest impression is.
    const before = users.size;
    const later = new Map<string, number>();
    let start = Number.NaN;
    for await (const rows of readRawBehaviorBatches(split.behaviorsFile, opts)) {
      for (const row of rows) {
        start = earlier(start, parseMindTime(row.time));
        const u = users.indexOf(row.userId);
        if (u === undefined) users.add(row.userId, users.histories.add(ids, row.historyColumn), dataIndex);
        else if (u < before && !later.has(row.userId)) later.set(row.userId, users.histories.add(ids, row.historyColumn));
      }
    }
    const time: SplitTime = { name: split.name, dataIndex, start };
    times.set(split.name, time);
    for (const [userId, history] of later) {
      const u = users.indexOf(userId)!;
      const was = users.splitAt(u);
      if (users.histories.length(history) > 0 && replacesSource(time, was === NO_SPLIT ? undefined : times.get(splits[was]!.name))) users.replace(u, history, dataIndex);
    }
  }
  return { splits, timeline: timeOrder([...times.values()]), news, users };
}

/** The text fields of a news row, in the order NewsText stores them. */
const TEXT_FIELDS = ["title", "abstract", "url", "titleEntities", "abstractEntities"] as const;
type TextField = (typeof TEXT_FIELDS)[number];
const STORE_BLOCK = 1 << 22;

/**
 * The text of every news row in UTF-8 blocks off the JS heap (at MIND-large ~160k rows, ~70 MB);
 * a catalog news item decodes a field each time it is read. A field read from news.tsv is a slice of
 * a 1 MB chunk of the file: held as such, it would keep the whole chunk alive, two bytes a character
 * as soon as the chunk holds one curly quote, in the heap the garbage collector sizes itself by.
 */
class NewsText {
  private readonly blocks: Buffer[] = [];
  private used = STORE_BLOCK;
  /** Per row and field: the block, the start and the length of the bytes. */
  private readonly where = new IntColumn();
  private rows = 0;
  /** Categories and subcategories repeat: one string each. */
  private readonly names = new Map<string, string>();

  add(row: NewsRow, split: string): CatalogNews {
    const r = this.rows++;
    TEXT_FIELDS.forEach((field, f) => {
      const value = row[field];
      const bytes = Buffer.byteLength(value);
      if (this.used + bytes > STORE_BLOCK) {
        this.blocks.push(Buffer.allocUnsafeSlow(Math.max(STORE_BLOCK, bytes)));
        this.used = 0;
      }
      const block = this.blocks.length - 1;
      this.blocks[block]!.write(value, this.used);
      const at = (r * TEXT_FIELDS.length + f) * 3;
      this.where.set(at, block);
      this.where.set(at + 1, this.used);
      this.where.set(at + 2, bytes);
      this.used += bytes;
    });
    const name = (v: string) => this.names.get(v) ?? (this.names.set(v, v), v);
    return new StoredNews(this, r, row.id, name(row.category), name(row.subcategory), split);
  }

  read(r: number, field: TextField): string {
    const at = (r * TEXT_FIELDS.length + TEXT_FIELDS.indexOf(field)) * 3;
    const start = this.where.get(at + 1);
    return this.blocks[this.where.get(at)]!.toString("utf8", start, start + this.where.get(at + 2));
  }
}

/** A news row of the catalog: its text decoded from NewsText when read. */
class StoredNews implements CatalogNews {
  constructor(
    private readonly text: NewsText,
    private readonly row: number,
    readonly id: string,
    readonly category: string,
    readonly subcategory: string,
    readonly split: string,
  ) {
    this.inSplits = [split];
  }
  readonly inSplits: string[];
  get title(): string {
    return this.text.read(this.row, "title");
  }
  get abstract(): string {
    return this.text.read(this.row, "abstract");
  }
  get url(): string {
    return this.text.read(this.row, "url");
  }
  get titleEntities(): string {
    return this.text.read(this.row, "titleEntities");
  }
  get abstractEntities(): string {
    return this.text.read(this.row, "abstractEntities");
  }
}

/** The split of a user whose history is empty in every split. */
const NO_SPLIT = -1;

/** Blocks of a pool hold 2^20 entries (4 MB): a pool grows without copying what it holds. */
const BLOCK_BITS = 20;
const BLOCK = 1 << BLOCK_BITS;

/**
 * Histories as news indexes (NewsIndex) in one pool of Int32 blocks off the JS heap, each named by
 * a number: the large, long-lived part of a catalog stays out of what the garbage collector walks and
 * sizes the heap by (at MIND-large ~30M entries, 120 MB).
 */
class HistoryPool {
  private blocks: Int32Array[] = [];
  private end = 0;
  private readonly starts = new IntColumn();
  private readonly lengths = new IntColumn();
  private count = 0;

  /** Stores a space-separated ID column; returns its number. */
  add(ids: NewsIndex, column: string): number {
    const start = this.end;
    ids.forEachIndex(column, (i) => {
      const b = this.end >>> BLOCK_BITS;
      if (b === this.blocks.length) this.blocks.push(new Int32Array(BLOCK));
      this.blocks[b]![this.end & (BLOCK - 1)] = i;
      this.end++;
    });
    const h = this.count++;
    this.starts.set(h, start);
    this.lengths.set(h, this.end - start);
    return h;
  }

  length(h: number): number {
    return this.lengths.get(h);
  }

  /** The news indexes of history `h`, oldest first. */
  read(h: number, into: (i: number) => void): void {
    const start = this.starts.get(h);
    for (let p = start, end = start + this.lengths.get(h); p < end; p++) into(this.blocks[p >>> BLOCK_BITS]![p & (BLOCK - 1)]!);
  }
}

/**
 * Users' histories, compact: MIND-large has ~1M users and ~30M history entries, and a string[] per
 * user costs ~400 bytes of a gigabyte. A user is a number (their index), their history a range of a
 * HistoryPool and their split a number beside it; `get` materializes the usual UserHistory.
 */
class UserTable implements ReadonlyMap<string, UserHistory> {
  readonly histories = new HistoryPool();
  private readonly index = new UserIds();
  private readonly history = new IntColumn();
  /** The split index of a user's history; NO_SPLIT while it is empty everywhere. */
  private readonly split = new IntColumn();

  constructor(
    private readonly ids: NewsIndex,
    private readonly splitNames: readonly string[],
  ) {}

  indexOf(userId: string): number | undefined {
    return this.index.get(userId);
  }

  splitAt(u: number): number {
    return this.split.get(u);
  }

  add(userId: string, history: number, split: number): void {
    this.replace(this.index.add(userId), history, split);
  }

  replace(u: number, history: number, split: number): void {
    this.history.set(u, history);
    this.split.set(u, this.histories.length(history) > 0 ? split : NO_SPLIT);
  }

  get size(): number {
    return this.index.size;
  }

  has(userId: string): boolean {
    return this.index.get(userId) !== undefined;
  }

  get(userId: string): UserHistory | undefined {
    const u = this.index.get(userId);
    if (u === undefined) return undefined;
    const history: string[] = [];
    this.histories.read(this.history.get(u), (i) => history.push(this.ids.idAt(i)));
    const split = this.split.get(u);
    return { userId, history, split: split === NO_SPLIT ? undefined : this.splitNames[split] };
  }

  *keys(): MapIterator<string> {
    for (let u = 0; u < this.index.size; u++) yield this.index.idAt(u);
  }

  *values(): MapIterator<UserHistory> {
    for (const id of this.keys()) yield this.get(id)!;
  }

  *entries(): MapIterator<[string, UserHistory]> {
    for (const id of this.keys()) yield [id, this.get(id)!];
  }

  [Symbol.iterator](): MapIterator<[string, UserHistory]> {
    return this.entries();
  }

  forEach(fn: (value: UserHistory, key: string, map: ReadonlyMap<string, UserHistory>) => void): void {
    for (const [id, u] of this.entries()) fn(u, id, this);
  }
}

/** The news IDs of each user's impressions (loadCandidates); a plain Map serves as one too. */
export interface Candidates {
  get(userId: string): readonly string[] | undefined;
}

/**
 * Each user's candidates as a range of news indexes in one Int32 pool, off the JS heap: at
 * MIND-large ~200k cold users hold ~4.5M candidate entries, which as arrays of strings (and Sets while
 * reading) made up a quarter of generate's live heap, and V8 sizes the heap by what is live.
 */
class CandidateTable implements Candidates {
  constructor(
    private readonly ids: NewsIndex,
    private readonly users: ReadonlyMap<string, number>,
    private readonly starts: Int32Array,
    private readonly pool: Int32Array,
  ) {}

  /** First seen first; a fresh array each time (the caller's to keep or drop). */
  get(userId: string): string[] | undefined {
    const u = this.users.get(userId);
    if (u === undefined) return undefined;
    const out: string[] = [];
    for (let p = this.starts[u]!, end = this.starts[u + 1]!; p < end; p++) out.push(this.ids.idAt(this.pool[p]!));
    return out;
  }
}

/**
 * The news IDs of the impressions of the given users in every split (a second pass over the
 * behaviors files), deduplicated in the order first met, as the catalog's own ID strings: what their
 * pseudo-news must not copy (history-rule.ts rule 4). Only cold users need them, so only they are held.
 */
export async function loadCandidates(catalog: Catalog, userIds: ReadonlySet<string>, opts: ReadOptions = {}): Promise<Candidates> {
  const users = new Map<string, number>();
  if (userIds.size === 0) return new Map();
  const ids = new NewsIndex();
  for (const id of catalog.news.keys()) ids.add(id);
  // Every (user, news) pair met, in file order; grouped by user and deduplicated below.
  const userOf = new IntColumn();
  const newsOf = new IntColumn();
  let pairs = 0;
  for (const split of catalog.splits) {
    for await (const rows of readRawBehaviorBatches(split.behaviorsFile, opts)) {
      for (const row of rows) {
        if (!userIds.has(row.userId)) continue;
        let u = users.get(row.userId);
        if (u === undefined) users.set(row.userId, (u = users.size));
        // `N123-1` → `N123`: the label is cut at the last dash (news IDs have none, validate checks it).
        const column = row.impressions.replace(/-[^ ]*/g, "");
        ids.forEachIndex(column, (i) => {
          userOf.set(pairs, u);
          newsOf.set(pairs++, i);
        });
      }
    }
  }
  // A counting sort by user keeps each user's pairs in file order, so the first of duplicates stays.
  const n = users.size;
  const starts = new Int32Array(n + 1);
  for (let p = 0; p < pairs; p++) starts[userOf.get(p) + 1]!++;
  for (let u = 0; u < n; u++) starts[u + 1]! += starts[u]!;
  const fill = starts.slice(0, n);
  const pool = new Int32Array(pairs);
  for (let p = 0; p < pairs; p++) pool[fill[userOf.get(p)]!++] = newsOf.get(p);
  const seen = new Uint8Array(ids.size);
  let kept = 0;
  for (let u = 0; u < n; u++) {
    const from = starts[u]!;
    const to = starts[u + 1]!;
    starts[u] = kept;
    for (let p = from; p < to; p++) {
      const i = pool[p]!;
      if (!seen[i]) {
        seen[i] = 1;
        pool[kept++] = i;
      }
    }
    for (let p = starts[u]!; p < kept; p++) seen[pool[p]!] = 0;
  }
  starts[n] = kept;
  return new CandidateTable(ids, users, starts, pool.slice(0, kept));
}

/**
 * A number for each news ID, in the order met, and the ID strings themselves once: MIND-large holds
 * ~30M history entries over ~160k distinct news. `N<digits>` IDs are found by their number in an
 * array, without making a string or hashing one; an ID no news.tsv has (a damaged file read with
 * --lenient) gets a number too; a history is a range of these numbers in a HistoryPool.
 */
class NewsIndex {
  private readonly ids: string[] = [];
  /** Index + 1 by the number of an `N<digits>` ID (0: none). */
  private byNumber = new Int32Array(1024);
  private readonly byId = new Map<string, number>();

  /** The index of an ID, given one on first sight. */
  add(id: string): number {
    const n = newsIdNumber(id, 0, id.length);
    if (n >= 0 && n <= MAX_DENSE) {
      if (n >= this.byNumber.length) {
        let size = this.byNumber.length;
        while (size <= n) size *= 2;
        const grown = new Int32Array(Math.min(size, MAX_DENSE + 1));
        grown.set(this.byNumber);
        this.byNumber = grown;
      }
      const known = this.byNumber[n]!;
      if (known > 0) return known - 1;
      this.byNumber[n] = this.ids.length + 1;
    } else {
      const known = this.byId.get(id);
      if (known !== undefined) return known;
      this.byId.set(id, this.ids.length);
    }
    this.ids.push(id);
    return this.ids.length - 1;
  }

  /** The index of the ID `column[s, e)`. */
  private at(column: string, s: number, e: number): number {
    const n = newsIdNumber(column, s, e);
    const known = n >= 0 && n < this.byNumber.length ? this.byNumber[n]! : 0;
    return known > 0 ? known - 1 : this.add(column.slice(s, e));
  }

  /** Calls `f` with the index of each ID of a space-separated column (a History). */
  forEachIndex(column: string, f: (i: number) => void): void {
    let s = 0;
    while (s < column.length) {
      let e = column.indexOf(" ", s);
      if (e === -1) e = column.length;
      if (e > s) f(this.at(column, s, e));
      s = e + 1;
    }
  }

  idAt(i: number): string {
    return this.ids[i]!;
  }

  get size(): number {
    return this.ids.length;
  }
}
const MAX_DENSE = 1 << 22;

/** The most recent `n` clicks, most recent first: the part of a history a prompt describes. */
export function recentClicks(history: readonly string[], n: number): string[] {
  return history.slice(Math.max(0, history.length - n)).reverse();
}
