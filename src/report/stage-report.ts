// What a stage tells the report (Stage.report) and the demo's closing summary: its overview cards,
// its chart data and charts, the fields it adds to an example of its item kind, and what changed.
// The report (collect.ts, html.ts) asks every registered stage in registry order.
//
// Chart data and example fields are typed per stage by declaration merging: a stage's report file
// adds its own members to Distributions, NewsExample, UserExample or CategoryExample, e.g.
//   declare module "../../report/stage-report.js" { interface Distributions { titleTokens?: … } }
import type { Manifest, ManifestStage } from "../merge/manifest.js";
import type { StageRecords } from "../merge/records.js";
import type { Catalog } from "../mind/catalog.js";
import type { SplitDir } from "../mind/splits.js";
import type { Figure } from "./figures.js";

/** Chart data, one member per stage that draws (filled by StageReport.chartData). */
export interface Distributions {}

/** A news item in the example browser: the row, and what stages over news add. */
export interface NewsExample {
  id: string;
  category?: string;
  subcategory?: string;
  original?: string;
  abstract?: string;
}

/** A user in the example browser: the recent history, and what stages over users add. */
export interface UserExample {
  id: string;
  historyLength?: number;
  recent: { id: string; category?: string; title?: string }[];
}

/** A category or subcategory in the example browser, and what stages over them add. */
export interface CategoryExample {
  id: string;
  kind?: string;
  name?: string;
}

/** What a stage adds to an example of its kind. */
export type ExampleFields = Partial<Omit<NewsExample, "id"> & Omit<UserExample, "id" | "recent"> & Omit<CategoryExample, "id" | "kind" | "name">>;

export interface ReportContext<V> {
  /** This stage's records (merge's reader: last valid record per item). */
  records: StageRecords<V>;
  /** The input splits, when known (the "before" side of a chart). */
  catalog?: Catalog;
  manifest?: Manifest;
  /** The pseudo-news IDs merge assigned to a user, in item order (none before a merge). */
  pseudoIds(userId: string): readonly string[];
  /** How many of a user's `generated` pseudo-news items merge wrote: all of them before a merge. */
  pseudoCount(userId: string, generated: number): number;
}

/** What the demo's "What changed" section has to go on. */
export interface DemoContext {
  manifest: Manifest;
  /** This stage's entry in the manifest. */
  stage: ManifestStage;
  /** The merged run folder. */
  out: string;
  /** The first merged split, and its input folder when found. */
  split: string;
  input?: SplitDir;
}

export interface StageReport<V = unknown> {
  /** Overview cards (label, count): what `answered` records of this stage are, and what merge made of them. */
  cards(answered: number, manifest: Manifest | undefined, dist: Distributions): [string, number][];
  /** manifest.json options of this stage (StageMerge.manifestOptions) shown in the overview, by key → label. */
  readonly options?: Readonly<Record<string, string>>;
  /** Fills this stage's members of `dist` (nothing when it has no records). */
  chartData?(ctx: ReportContext<V>, dist: Distributions): void;
  /** Its charts, from its members of `dist`. */
  figures?(dist: Distributions): Figure[];
  /**
   * Its part of an example of its item kind. `lead`: half of the kind's examples are its items, so
   * its output is always on show (generate's pseudo-news among the users).
   */
  readonly examples?: { lead?: boolean; fields(ctx: ReportContext<V>, id: string, value: V): ExampleFields };
  /** `npm run demo`: the lines of "What changed" about this stage, e.g. a title before and after. */
  demo?(at: DemoContext): Promise<string[]>;
}
