import type { SkipLog } from "./errors.js";
import { readBehaviors, readNews } from "./read.js";
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

export interface CatalogOptions {
  lenient?: boolean;
  skipped?: SkipLog;
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
    const inSplit = new Map<string, UserHistory>();
    for await (const row of readBehaviors(split.behaviorsFile, opts)) {
      const time = parseMindTime(row.time);
      const t = Number.isNaN(time) ? -Infinity : time;
      const known = inSplit.get(row.userId);
      if (!known) inSplit.set(row.userId, { userId: row.userId, history: row.history, split: split.name, time: t });
      else if (t > known.time) known.time = t;
    }
    for (const [userId, candidate] of inSplit) {
      const known = users.get(userId);
      if (!known || candidate.time >= known.time) users.set(userId, candidate);
    }
  }
  return { splits, news, users };
}

/** The most recent `n` clicks, most recent first: the part of a history a prompt describes. */
export function recentClicks(history: readonly string[], n: number): string[] {
  return history.slice(Math.max(0, history.length - n)).reverse();
}
