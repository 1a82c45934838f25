// What every stage provides. A stage is pure: it reads a Catalog (and, for generate --chain, the
// profiles), never the network or files; runStage (run.ts) and the prompt command drive it.
import type { LlmRequest, RecordSource, StageName } from "../engine/types.js";
import type { Catalog } from "../mind/catalog.js";
import type { ProfileOutput } from "./outputs.js";
import type { Template, TemplateSpec } from "./template.js";

/** Stage options that shape requests (flag names as in the CLI). */
export interface StageOptions {
  /** profile: clicks described, most recent first. */
  recent: number;
  /** generate: the largest history of a cold user. */
  coldMax: number;
  /** generate: pseudo-news items per cold user. */
  k: number;
  /** generate: condition on profile topics (UP→CG). */
  chain: boolean;
}

export const DEFAULT_STAGE_OPTIONS: StageOptions = { recent: 30, coldMax: 5, k: 2, chain: false };

export interface StageInput {
  catalog: Catalog;
  options: StageOptions;
  system: Template;
  user: Template;
  /** generate --chain: the last profile record of each user that fits their source history. */
  profiles?: ReadonlyMap<string, ChainProfile>;
  /** Stages with `usesCandidates`: the news IDs of each item's impressions in every split (loadCandidates). */
  candidates?: ReadonlyMap<string, readonly string[]>;
}

export interface ChainProfile {
  output: ProfileOutput;
  source: RecordSource;
}

/** Why an ID is not an item of a stage (for the prompt command), or undefined when it is one. */
export type NotAnItem = string | undefined;

export interface Stage {
  name: StageName;
  /** The templates used with these options (e.g. generate --chain has its own user template). */
  templates(options: StageOptions): { system: TemplateSpec; user: TemplateSpec };
  /** Every item this stage covers, in catalog order (before --shard/--limit). */
  items(catalog: Catalog, options: StageOptions): string[];
  /** Explains why `id` is not an item. */
  whyNot(catalog: Catalog, options: StageOptions, id: string): NotAnItem;
  /** Items are users whose answers must keep clear of their impressions' candidates (history-rule.ts rule 4). */
  usesCandidates?: boolean;
  /** Builds the requests of many items at once, sharing per-run work (e.g. the TF-IDF index). */
  requests(input: StageInput, itemIds: readonly string[]): LlmRequest[];
}
