// manifest.json: what a merged folder was made from, so a result can be traced and reproduced.
// It holds no timestamps or absolute paths: the same inputs, records and options give the same bytes.
import { z } from "zod";
import { Usage } from "../engine/types.js";

export const TITLE_MODES = ["replace", "append", "keep"] as const;
export const TitleMode = z.enum(TITLE_MODES);
export type TitleMode = z.infer<typeof TitleMode>;

/** Subcategory of every pseudo-news row, so a trainer or analysis can tell them from real news. */
export const PSEUDO_SUBCATEGORY = "generated";

export const MergeOptions = z.object({
  title: TitleMode,
  allowUnknown: z.boolean(),
});
export type MergeOptions = z.infer<typeof MergeOptions>;

export const ManifestStage = z.object({
  /** Who answered the merged records: provider and model with the number of records each. */
  answeredBy: z.array(z.object({ provider: z.string(), model: z.string(), records: z.number().int() })),
  /** From `<records dir>/<stage>.meta.json`; a prompt file hashed differently by two shards lists both. */
  promptHashes: z.record(z.string(), z.array(z.string())),
  metaFiles: z.number().int(),
  counts: z.object({
    /** Items of the input this stage covers (summarize: news; profile: users with a history; generate: cold users). */
    items: z.number().int(),
    /** Items whose record was merged. */
    merged: z.number().int(),
    /** Items of the input with no valid record: they keep their original data. */
    missing: z.number().int(),
    /** Of the missing, those the engine gave up on (a failure record). */
    failed: z.number().int(),
    /** Record lines skipped because they failed validation. */
    invalidRecords: z.number().int(),
    /** Records whose item is not in the input (kept out with --allow-unknown). */
    unknownRecords: z.number().int(),
  }),
  /** Tokens of every valid record read, over all attempts: superseded answers were billed too. */
  usage: Usage,
  /** Sum of the stage runs' reported cost (StageMeta); null when no meta file was found. */
  costUsd: z.number().nullable(),
});
export type ManifestStage = z.infer<typeof ManifestStage>;

export const ManifestSplit = z.object({
  name: z.string(),
  /** Input folder, relative to the merged folder. */
  input: z.string(),
  newsBytes: z.number().int(),
  behaviorsBytes: z.number().int(),
  output: z.object({
    news: z.number().int(),
    pseudoNews: z.number().int(),
    titlesEnhanced: z.number().int(),
    impressions: z.number().int(),
    /** Behaviors rows whose history got pseudo-news appended. */
    historiesExtended: z.number().int(),
  }),
});
export type ManifestSplit = z.infer<typeof ManifestSplit>;

export const Manifest = z.object({
  tool: z.literal("genre-mind merge"),
  formatVersion: z.literal(1),
  options: MergeOptions,
  splits: z.array(ManifestSplit),
  /** Run folders the records came from, relative to the merged folder, in the order given. */
  records: z.array(z.string()),
  stages: z.object({ summarize: ManifestStage, profile: ManifestStage, generate: ManifestStage }),
  users: z.object({ total: z.number().int(), profiled: z.number().int(), cold: z.number().int() }),
  /** Pseudo-news ID → the user it was generated for; IDs in ascending order. */
  pseudoNews: z.record(z.string(), z.string()),
  files: z.object({
    perSplit: z.array(z.string()),
    userProfiles: z.string(),
    userProfilesColumns: z.array(z.string()),
    newsTitlesColumns: z.array(z.string()),
    listSeparator: z.string(),
  }),
});
export type Manifest = z.infer<typeof Manifest>;
