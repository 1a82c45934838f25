import { readNews, readRawBehaviorBatches, type ReadOptions } from "./read.js";
import type { NewsRow } from "./rows.js";
import type { SplitDir } from "./splits.js";
import { earlier, newsIdNumber, replacesSource, timeOrder, type SplitTime } from "./history-rule.js";
import { parseMindTime } from "./time.js";

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
}

export async function loadCatalog(splits: SplitDir[], opts: CatalogOptions = {}): Promise<Catalog> {
  const news = new Map<string, CatalogNews>();
  const times = new Map<string, SplitTime>();
  const ids = new NewsIndex();
  const users = new UserTable(ids, splits.map((s) => s.name));
  for (const [dataIndex, split] of splits.entries()) {
    for await (const row of readNews(split.newsFile, opts)) {
      const known = news.get(row.id);
      if (known) {
        known.inSplits.push(split.name);
        continue;
      }
      news.set(row.id, {
        id: row.id,
        category: owned(row.category),
        subcategory: owned(row.subcategory),
        title: owned(row.title),
        abstract: owned(row.abstract),
        url: owned(row.url),
        titleEntities: owned(row.titleEntities),
        abstractEntities: owned(row.abstractEntities),
        split: split.name,
        inSplits: [split.name],
      });
      ids.add(row.id);
    }
    if (opts.newsOnly) continue;
    // A user's History is the same on every row of a split (validate checks it): the first row's is
    // kept. A user new to the catalog takes it at once; for one met in an earlier split, which of the
    // two is the source is known only when this split's earliest impression is.
    const known = new Set<string>(users.keys());
    const later = new Map<string, string>();
    let start = Number.NaN;
    for await (const rows of readRawBehaviorBatches(split.behaviorsFile, opts)) {
      for (const row of rows) {
        start = earlier(start, parseMindTime(row.time));
        if (!known.has(row.userId)) {
          if (!users.has(row.userId)) users.set(row.userId, ids.encode(row.historyColumn), dataIndex);
        } else if (!later.has(row.userId)) later.set(row.userId, ids.encode(row.historyColumn));
      }
    }
    const time: SplitTime = { name: split.name, dataIndex, start };
    times.set(split.name, time);
    for (const [userId, history] of later) {
      const was = users.splitOf(userId)!;
      if (history.length > 0 && replacesSource(time, was === NO_SPLIT ? undefined : times.get(splits[was]!.name))) users.set(userId, history, dataIndex);
    }
  }
  return { splits, timeline: timeOrder([...times.values()]), news, users };
}

const LATIN1 = /^[\x00-\xff]*$/;

/**
 * A field as a string of its own. A field read from news.tsv is a slice of a ~1 MB chunk of the
 * file and keeps the whole chunk alive; a chunk with one curly quote is stored two bytes a character.
 * Copied out, a field takes one byte a character unless it needs two.
 */
function owned(text: string): string {
  return LATIN1.test(text) ? Buffer.from(text, "latin1").toString("latin1") : Buffer.from(text, "utf8").toString("utf8");
}

/** The split of a user whose history is empty in every split. */
const NO_SPLIT = -1;

/**
 * Users' histories, compact: MIND-large has ~1M users and ~30M history entries, and a string[] per
 * user costs ~400 bytes of a gigabyte. Each history is one string of two UTF-16 units per click (the
 * news index, NewsIndex), its split kept beside it; `get` materializes the usual UserHistory.
 */
class UserTable implements ReadonlyMap<string, UserHistory> {
  private readonly histories = new Map<string, string>();
  /** Split index per user, for the users whose history is not empty (the others have none). */
  private readonly splits = new Map<string, number>();

  constructor(
    private readonly ids: NewsIndex,
    private readonly splitNames: readonly string[],
  ) {}

  /** The split index of a known user (NO_SPLIT: empty everywhere so far), undefined for an unknown one. */
  splitOf(userId: string): number | undefined {
    if (!this.histories.has(userId)) return undefined;
    return this.splits.get(userId) ?? NO_SPLIT;
  }

  set(userId: string, encoded: string, split: number): void {
    this.histories.set(userId, encoded);
    if (encoded.length > 0) this.splits.set(userId, split);
  }

  get size(): number {
    return this.histories.size;
  }

  has(userId: string): boolean {
    return this.histories.has(userId);
  }

  get(userId: string): UserHistory | undefined {
    const encoded = this.histories.get(userId);
    if (encoded === undefined) return undefined;
    const split = this.splits.get(userId);
    return { userId, history: this.ids.decode(encoded), split: split === undefined ? undefined : this.splitNames[split] };
  }

  keys(): MapIterator<string> {
    return this.histories.keys();
  }

  *values(): MapIterator<UserHistory> {
    for (const id of this.histories.keys()) yield this.get(id)!;
  }

  *entries(): MapIterator<[string, UserHistory]> {
    for (const id of this.histories.keys()) yield [id, this.get(id)!];
  }

  [Symbol.iterator](): MapIterator<[string, UserHistory]> {
    return this.entries();
  }

  forEach(fn: (value: UserHistory, key: string, map: ReadonlyMap<string, UserHistory>) => void): void {
    for (const [id, u] of this.entries()) fn(u, id, this);
  }
}

/**
 * The news IDs of the impressions of the given users in every split (a second pass over the
 * behaviors files), deduplicated, as the catalog's own ID strings: what their pseudo-news must not
 * copy (history-rule.ts rule 4). Only cold users need them, so only they are held.
 */
export async function loadCandidates(catalog: Catalog, userIds: ReadonlySet<string>, opts: ReadOptions = {}): Promise<Map<string, string[]>> {
  const sets = new Map<string, Set<string>>();
  if (userIds.size === 0) return new Map();
  const ids = new NewsIndex();
  for (const id of catalog.news.keys()) ids.add(id);
  for (const split of catalog.splits) {
    for await (const rows of readRawBehaviorBatches(split.behaviorsFile, opts)) {
      for (const row of rows) {
        if (!userIds.has(row.userId)) continue;
        let set = sets.get(row.userId);
        if (!set) sets.set(row.userId, (set = new Set()));
        // `N123-1` → `N123`: the label is cut at the last dash (news IDs have none, validate checks it).
        const column = row.impressions.replace(/-[^ ]*/g, "");
        for (const id of ids.split(column)) set.add(id);
      }
    }
  }
  return new Map([...sets].map(([u, s]) => [u, [...s]]));
}

/**
 * A number for each news ID, in the order met, and the ID strings themselves once: MIND-large holds
 * ~30M history entries over ~160k distinct news. `N<digits>` IDs are found by their number in an
 * array, without making a string or hashing one; an ID no news.tsv has (a damaged file read with
 * --lenient) gets a number too. A history is encoded as two UTF-16 units per entry.
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

  /** A space-separated ID column (a History) as its encoded string. */
  encode(column: string): string {
    const units: number[] = [];
    let s = 0;
    while (s < column.length) {
      let e = column.indexOf(" ", s);
      if (e === -1) e = column.length;
      if (e > s) {
        const i = this.at(column, s, e);
        units.push(i >>> 16, i & 0xffff);
      }
      s = e + 1;
    }
    let out = "";
    for (let i = 0; i < units.length; i += 8192) out += String.fromCharCode(...units.slice(i, i + 8192));
    return out;
  }

  decode(encoded: string): string[] {
    const out = new Array<string>(encoded.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = this.ids[(encoded.charCodeAt(2 * i) << 16) | encoded.charCodeAt(2 * i + 1)]!;
    return out;
  }

  /** An ID column as the catalog's own ID strings. */
  split(column: string): string[] {
    return this.decode(this.encode(column));
  }
}
const MAX_DENSE = 1 << 22;

/** The most recent `n` clicks, most recent first: the part of a history a prompt describes. */
export function recentClicks(history: readonly string[], n: number): string[] {
  return history.slice(Math.max(0, history.length - n)).reverse();
}
