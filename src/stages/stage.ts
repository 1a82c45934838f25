// What a stage is. Everything genre-mind knows about one augmentation lives in the stage's own
// folder (src/stages/<name>/) behind this interface; the stage commands, `prompt`, augment, merge,
// the manifest and the report are built from the registry (registry.ts) and ask a stage only
// through it. A stage is pure where it meets the engine: it reads a Catalog and builds requests,
// never the network; runStage (run.ts) drives it.
//
// The registry holds every stage as `Stage` (its type parameters erased to unknown). A stage's
// methods see its own types: the driver only ever hands a stage what that stage made (its options,
// what its prepare step returned, its own records). Members that take those are methods, not
// function-typed properties, so a `Stage<GenerateOptions, …>` is a `Stage`.
import type { z } from "zod";
import type { CommandContext, OptionSpecs } from "../cli/command.js";
import type { LlmRequest } from "../engine/types.js";
import type { StageMerge } from "../merge/stage-merge.js";
import type { StageReport } from "../report/stage-report.js";
import type { Candidates, Catalog } from "../mind/catalog.js";
import type { ItemKind } from "./kinds.js";
import type { StageCommandConfig } from "./options.js";
import type { Template, TemplateSpec } from "./template.js";

export interface StageInput<Opts = unknown> {
  catalog: Catalog;
  options: Opts;
  system: Template;
  user: Template;
  /** Stages with `usesCandidates`: the news IDs of each item's impressions in every split (loadCandidates). */
  candidates?: Candidates;
}

/** Why an ID is not an item of a stage (for the prompt command), or undefined when it is one. */
export type NotAnItem = string | undefined;

/** Where a stage's prepare step runs: the run folder (`--out`), the whole config, the streams. */
export interface PrepareContext {
  out: string;
  config: StageCommandConfig;
  ctx: CommandContext;
}

/** How `augment` runs a stage whose defaults differ there (generate: chained on the profiles). */
export interface AugmentHook {
  /** Flags augment takes for this stage instead of (or beside) the stage command's own. */
  flags: OptionSpecs;
  config: z.ZodObject;
  /** The config the stage runs with inside augment, and what the progress line adds to its name. */
  configure(config: StageCommandConfig, out: string, ctx: CommandContext): { config: StageCommandConfig; note?: string };
}

export interface Stage<Opts = unknown, O = unknown, P = unknown> {
  /** The command (`genre-mind <name>`), the record files (`<out>/<name>.jsonl`), the manifest key. */
  readonly name: string;
  readonly kind: ItemKind;
  /** `genre-mind <name>`: the line in the command list and the help text after the options. */
  readonly command: { summary: string; details: string };
  /** This stage's own flags (beyond those every stage command takes), in --help order. */
  readonly flags: OptionSpecs;
  /** Their schema, keyed by flag name: a stage command's config is StageConfig extended by it. */
  readonly config: z.ZodObject;
  /** The stage's options from a parsed command config (augment's and prompt's hold every stage's flags). */
  options(config: object): Opts;
  /** What `<out>/<name>.meta.json` records of the options (merge reads generate's cold-max back). */
  metaOptions(options: Opts): Record<string, unknown>;
  /** The templates used with these options (e.g. generate --chain has its own user template). */
  templates(options: Opts): { system: TemplateSpec; user: TemplateSpec };
  /** Every item this stage covers, in catalog order (before --shard/--limit). */
  items(catalog: Catalog, options: Opts): string[];
  /** Explains why `id` is not an item. */
  whyNot(catalog: Catalog, options: Opts, id: string): NotAnItem;
  /** --dry-run: what the items are, printed before the estimate (users stages: their sources); read once, in order. */
  describeItems?(catalog: Catalog, options: Opts, items: Iterable<string> & { readonly length: number }): string;
  /** Items are users whose answers must keep clear of their impressions' candidates (history-rule.ts rule 4). */
  readonly usesCandidates?: boolean;
  /**
   * Work the requests need beyond the catalog, done once the items are chosen (generate --chain
   * reads the profiles); it may drop items it cannot serve. It gets the items before --limit, which
   * then takes the first of those it kept. Its result reaches `requests`.
   */
  prepare?(input: StageInput<Opts>, items: string[], at: PrepareContext): Promise<{ items: string[]; prepared: P }>;
  /**
   * The requests of the given items, in order, sharing per-run work (e.g. the TF-IDF index). An
   * iterable, so a stage may yield them one at a time (a generator) instead of building them all.
   */
  requests(input: StageInput<Opts>, itemIds: readonly string[], prepared: P | undefined): Iterable<LlmRequest<O>>;
  /** The normalized output stored in a record: what merge and the report accept from the store. */
  readonly output: z.ZodType<O>;
  /** What merge does with the records (src/merge/stage-merge.ts). */
  readonly merge: StageMerge<O>;
  /** What the report and the demo show of it (src/report/stage-report.ts). */
  readonly report: StageReport;
  /** How `augment` runs this stage, when that differs from the stage command. */
  readonly augment?: AugmentHook;
  /**
   * augment runs it only when `--stages` names it: the stages beyond GENRE's (describe, pick,
   * factors), so a plain augment stays GENRE's run at GENRE's cost.
   */
  readonly optIn?: boolean;
  /** Registrations of one folder over two item kinds share it (factors-users, factors-news): `augment --stages factors` names them all. */
  readonly group?: string;
}
