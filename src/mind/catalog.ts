import { readNews, readRawBehaviorBatches, type ReadOptions } from "./read.js";
import type { NewsRow } from "./rows.js";
import type { SplitDir } from "./splits.js";
import { parseMindTime } from "./time.js";

export interface CatalogNews extends NewsRow {
  /** The first split (in `--data` order) that has this news ID. */
  split: string;
}

/**
 * The history that describes a user. MIND freezes a user's history per split, and it can differ
 * between splits; we take it from the split whose impressions are the most recent (ties go to the
 * split given later), because that snapshot holds the user's latest clicks.
 */
export interface UserHistory {
  userId: string;
  /** Clicked news IDs, oldest first, exactly as in behaviors.tsv. */
  history: string[];
  split: string;
  /** Latest impression time seen for the user in that split (ms, see parseMindTime). */
  time: number;
}

export interface Catalog {
  splits: SplitDir[];
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
  for (const split of splits) {
    for await (const row of readNews(split.newsFile, opts)) {
      if (news.has(row.id)) continue;
      const { lineNo: _lineNo, ...fields } = row;
      news.set(row.id, { ...fields, split: split.name });
    }
    if (opts.newsOnly) continue;
    const ids = new IdInterner(news);
    const inSplit = new Map<string, UserHistory>();
    for await (const rows of readRawBehaviorBatches(split.behaviorsFile, opts)) {
      for (const row of rows) {
        const time = parseMindTime(row.time);
        const t = Number.isNaN(time) ? -Infinity : time;
        const known = inSplit.get(row.userId);
        if (!known) inSplit.set(row.userId, { userId: row.userId, history: ids.split(row.historyColumn), split: split.name, time: t });
        else if (t > known.time) known.time = t;
      }
    }
    for (const [userId, candidate] of inSplit) {
      const known = users.get(userId);
      if (!known || candidate.time >= known.time) users.set(userId, candidate);
    }
  }
  return { splits, news, users };
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
    for (const id of news.keys()) max = Math.max(max, idNumber(id, 0, id.length));
    this.byNumber = new Array<string | undefined>(Math.min(max, MAX_DENSE) + 1);
    for (const { id } of news.values()) {
      const n = idNumber(id, 0, id.length);
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
        const n = idNumber(column, s, e);
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

/** The number of `N<digits>` written without leading zeros (so it names one ID), else -1. */
function idNumber(text: string, start: number, end: number): number {
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

/** The most recent `n` clicks, most recent first: the part of a history a prompt describes. */
export function recentClicks(history: readonly string[], n: number): string[] {
  return history.slice(Math.max(0, history.length - n)).reverse();
}
