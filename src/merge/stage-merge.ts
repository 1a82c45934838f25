// What a stage tells merge (Stage.merge): how its records become MIND files. Merge (merge.ts) knows
// the effects below and runs them for every registered stage, in registry order; a stage declares
// the ones it has and fills them from its own records:
// - `news`: it edits news rows (summarize: the title column per --title; describe: the title or
//   abstract per --describe) and may write a file with one line per news row beside news.tsv
//   (news_titles.tsv);
// - `users`: a users stage's record applies in a split where the history rule allows
//   (history-rule.ts rule 3); `users` writes a line per such user into a file of that split
//   (user_profiles.tsv), audited by the rule;
// - `addsNews`: it adds news rows for a user (pseudo-news), which merge numbers, appends to the
//   user's history where the record applies, and audits (rules 3 and 4);
// - `appendsNews`: it appends news IDs of the input to a user's history where the record applies
//   and the split's news.tsv holds them (pick), audited by the same rules;
// - `beside`: it writes one file beside the split folders, for all of them (describe:
//   category_descriptions.tsv).
// A stage's state (`S`, made by `open`) holds its records and options for one merge.
import type { z } from "zod";
import type { OptionSpecs } from "../cli/command.js";
import type { ParseResult } from "../engine/types.js";
import type { UserSources } from "../mind/history-rule.js";
import type { NewsRow } from "../mind/rows.js";
import type { StageRecords } from "./records.js";

/** What merge has read of the input when it asks a stage about items. */
export interface MergeInput {
  /** Every news ID of the splits → its original title (the first row of an ID). */
  news: ReadonlyMap<string, string>;
  /** The users of the splits and their source histories (known once behaviors.tsv was read). */
  users: UserSources;
  /** The categories items of the news rows (kinds.ts: `category:<name>`, `subcategory:<name>`), in order of first use. */
  categories: ReadonlySet<string>;
}

/** A number merge writes into manifest.json and prints: its key there and how one and many read. */
export interface Count {
  key: string;
  one: string;
  many: string;
}

/** A file written into every merged split folder beside news.tsv and behaviors.tsv (or, for `beside`, once beside the split folders). */
export interface SideFile {
  name: string;
  columns: readonly string[];
  /** The manifest's `files` entry listing the columns. */
  columnsKey: string;
  /** What a line holds, for the closing summary of `npm run demo`. */
  about: string;
}

export interface NewsEdit<S> {
  /**
   * Rows this stage had a record for, per split (manifest `splits[].output`): of the pseudo-news
   * rows, those written with this edit's change (merge.ts PseudoRow.counted).
   */
  count: Count;
  /** A file with a line per news row of the input split that `edit` gives one (summarize: every row; factors-news: those with a record). */
  file?: SideFile;
  /**
   * The row as this stage leaves it (`row`: as the stages before it left it; `original`: the input
   * row), whether it had a record for the row, and the row's line in `file`. Merge writes edits of
   * the title and the abstract (mind/write.ts newsLineWith) and stops on an edit of another field.
   * Also asked for every pseudo-news row, with the ID of the news it was retrieved from (it gets the
   * title that row gets) or an empty ID (text the LLM wrote: no record of a news item is its).
   */
  edit(state: S, row: NewsRow, original: NewsRow): { row: NewsRow; counted: boolean; line?: string };
}

export interface UserFile<S> {
  file: SideFile;
  /** Lines per split (manifest `splits[].output`). */
  count: Count;
  /** Lines the audit checked (manifest `audit`); `noun` names one in a violation ("a profile row …"). */
  audit: Count & { noun: string };
  /** The line of a user whose record applies in the split (the user ID first). */
  line(state: S, userId: string): string;
}

/** A pseudo-news row a stage adds for a user; merge gives it its ID. */
export interface AddedNews {
  row: Omit<NewsRow, "id">;
  /** The catalog news it was taken from (offline generate): it may not be a candidate of the user's. */
  retrievedFrom?: string;
}

/** Real news a users stage appends to a user's history (pick): no new rows. */
export interface AppendedNews<S> {
  /** The news IDs of the user's record, in the order appended. */
  ids(state: S, userId: string): readonly string[];
  /** IDs appended per split, counted once per user (manifest `splits[].output`). */
  count: Count;
  /** IDs the audit checked (manifest `audit`); `noun` names one in a violation ("pick"). */
  audit: Count & { noun: string };
}

/** A file beside the split folders, written from the whole input (describe: category_descriptions.tsv). */
export interface BesideFile<S> {
  file: SideFile;
  /** Its lines, in the order written. */
  lines(state: S, input: MergeInput): Iterable<string>;
}

export interface StageMerge<O = unknown, V = unknown, S = unknown> {
  /** A record's output (valid by the stage's schema) as merge keeps it: cleaned again for TSV, compact. */
  value(output: O, intern: (text: string) => string): ParseResult<V>;
  /** How merge's log counts the valid records: "330 titles". */
  readonly noun: string;
  /** Merge flags of this stage (summarize: --title), also taken by augment and demo. */
  readonly flags?: OptionSpecs;
  readonly config?: z.ZodObject;
  /** This merge's state: the records and the merge options (a MergeRequest: flags by name). */
  open(records: StageRecords<V>, options: Readonly<Record<string, unknown>>): S;
  /** False when the merge options leave this stage's records out (generate under --cold pick): merged as if it had none. */
  active?(state: S): boolean;
  /** What manifest.json's `options` records of this stage's merge flags. */
  manifestOptions?(state: S): Record<string, unknown>;
  /** Is `id` an item of this stage in the input (manifest counts.items)? */
  covers(state: S, id: string, input: MergeInput): boolean;
  /** Users stages: how far merge must count a history's clicks to answer `covers` (generate: cold-max + 1). */
  historyCap?(state: S): number;
  /** manifest.json `users` entries, from the users this stage's records apply to in some split. */
  userCounts?(state: S, input: MergeInput, applied: ReadonlySet<string>): Record<string, number>;
  readonly news?: NewsEdit<S>;
  readonly users?: UserFile<S>;
  readonly addsNews?: { rows(state: S, userId: string): AddedNews[] };
  readonly appendsNews?: AppendedNews<S>;
  readonly beside?: BesideFile<S>;
}
