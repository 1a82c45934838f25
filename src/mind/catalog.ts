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
  users: Map<string, UserHistory>;
}

export interface CatalogOptions extends ReadOptions {
  /** Skip behaviors (summarize needs news only). */
  newsOnly?: boolean;
}

export async function loadCatalog(splits: SplitDir[], opts: CatalogOptions = {}): Promise<Catalog> {
  const news = new Map<string, CatalogNews>();
  const users = new Map<string, UserHistory>();
  const times = new Map<string, SplitTime>();
  for (const [dataIndex, split] of splits.entries()) {
    for await (const row of readNews(split.newsFile, opts)) {
      const known = news.get(row.id);
      if (known) {
        known.inSplits.push(split.name);
        continue;
      }
      const { lineNo: _lineNo, ...fields } = row;
      news.set(row.id, { ...fields, split: split.name, inSplits: [split.name] });
    }
    if (opts.newsOnly) continue;
    const ids = new IdInterner(news);
    // A user's History is the same on every row of a split (validate checks it): the first row's is kept.
    const inSplit = new Map<string, string[]>();
    let start = Number.NaN;
    for await (const rows of readRawBehaviorBatches(split.behaviorsFile, opts)) {
      for (const row of rows) {
        start = earlier(start, parseMindTime(row.time));
        if (!inSplit.has(row.userId)) inSplit.set(row.userId, ids.split(row.historyColumn));
      }
    }
    const time: SplitTime = { name: split.name, dataIndex, start };
    times.set(split.name, time);
    for (const [userId, history] of inSplit) {
      const known = users.get(userId);
      if (!known) users.set(userId, { userId, history, split: history.length > 0 ? split.name : undefined });
      else if (history.length > 0 && replacesSource(time, known.split === undefined ? undefined : times.get(known.split))) {
        known.history = history;
        known.split = split.name;
      }
    }
  }
  return { splits, timeline: timeOrder([...times.values()]), news, users };
}

/**
 * The news IDs of the impressions of the given users in every split (a second pass over the
 * behaviors files), deduplicated, as the catalog's own ID strings: what their pseudo-news must not
 * copy (history-rule.ts rule 4). Only cold users need them, so only they are held.
 */
export async function loadCandidates(catalog: Catalog, userIds: ReadonlySet<string>, opts: ReadOptions = {}): Promise<Map<string, string[]>> {
  const sets = new Map<string, Set<string>>();
  if (userIds.size === 0) return new Map();
  const ids = new IdInterner(catalog.news);
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
 * Splits History columns into the catalog's own ID strings: MIND-large holds ~22M history entries
 * over ~100k distinct news, and a string per entry would cost most of a gigabyte. `N<digits>` IDs
 * are found by their number in an array, without making a string or hashing one.
 */
class IdInterner {
  private readonly byNumber: (string | undefined)[];
  private readonly byId = new Map<string, string>();

  constructor(news: Map<string, CatalogNews>) {
    let max = -1;
    for (const id of news.keys()) max = Math.max(max, newsIdNumber(id, 0, id.length));
    this.byNumber = new Array<string | undefined>(Math.min(max, MAX_DENSE) + 1);
    for (const { id } of news.values()) {
      const n = newsIdNumber(id, 0, id.length);
      if (n >= 0 && n <= MAX_DENSE) this.byNumber[n] = id;
      else this.byId.set(id, id);
    }
  }

  split(column: string): string[] {
    const out: string[] = [];
    let s = 0;
    while (s < column.length) {
      let e = column.indexOf(" ", s);
      if (e === -1) e = column.length;
      if (e > s) {
        const n = newsIdNumber(column, s, e);
        const known = n >= 0 && n <= MAX_DENSE ? this.byNumber[n] : undefined;
        if (known !== undefined) out.push(known);
        else {
          const id = column.slice(s, e);
          out.push(this.byId.get(id) ?? id);
        }
      }
      s = e + 1;
    }
    return out;
  }
}
const MAX_DENSE = 1 << 22;

/** The most recent `n` clicks, most recent first: the part of a history a prompt describes. */
export function recentClicks(history: readonly string[], n: number): string[] {
  return history.slice(Math.max(0, history.length - n)).reverse();
}
