// manifest.json: what a merged folder was made from, so a result can be traced and reproduced.
// It holds no timestamps or absolute paths: the same inputs, records and options give the same bytes.
// Stages add their own entries (StageMerge: options, counts, side files), so the parts they fill are
// open (`catchall`); merge writes them in a fixed order (merge.ts) and this schema checks them.
import { z } from "zod";
import type { Spend } from "../engine/spend.js";
import { Usage } from "../engine/types.js";
import { stages } from "../stages/registry.js";

export const MergeOptions = z
  .object({
    allowUnknown: z.boolean(),
    /** Merge even when no stage has a valid record (the output is then a copy of the input). */
    allowEmpty: z.boolean(),
  })
  // Before these, each stage's merge options (StageMerge.manifestOptions; summarize: title).
  .catchall(z.unknown());
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
    /** Items whose record was merged (profile, generate: into at least one split). */
    merged: z.number().int(),
    /**
     * profile, generate: records of known users that apply to no split, because no history of the
     * user holds their source clicks (the data changed since the stage ran): not merged.
     */
    inapplicable: z.number().int(),
    /** Items of the input with no valid record: they keep their original data. */
    missing: z.number().int(),
    /** Of the missing, those the engine gave up on (a failure record). */
    failed: z.number().int(),
    /** Record lines skipped because they failed validation. */
    invalidRecords: z.number().int(),
    /** Records whose item is not in the input (kept out with --allow-unknown). */
    unknownRecords: z.number().int(),
  }),
  /**
   * Tokens of every valid record and every failure line read, over all runs: superseded answers and
   * the attempts of items given up on were billed too.
   */
  usage: Usage,
  /**
   * What those lines were billed in USD, priced per answerer (provider + model, the batch discount
   * for a batch provider, 0 for imported and offline answers); null when a model has no price in
   * data/pricing.json (listed in `unpriced`).
   */
  costUsd: z.number().nullable(),
  /** `provider / model` of billed lines with no price; absent when every line is priced. */
  unpriced: z.array(z.string()).optional(),
});
export type ManifestStage = z.infer<typeof ManifestStage>;

export const ManifestSplit = z.object({
  name: z.string(),
  /** Input folder, relative to the merged folder. */
  input: z.string(),
  newsBytes: z.number().int(),
  behaviorsBytes: z.number().int(),
  /**
   * In this order: news rows (pseudo-news among them), the rows each news-editing stage had a record
   * for, pseudo-news rows written with its edit among them (summarize: titlesEnhanced; describe:
   * newsDescribed), impressions, histories extended, the news IDs each appending stage with records
   * appended (pick: picks), the lines of each users stage's file (profile: profiles, users whose
   * profile was written from clicks this split's history holds), carried files.
   */
  output: z
    .object({
      news: z.number().int(),
      pseudoNews: z.number().int(),
      impressions: z.number().int(),
      /** Behaviors rows whose history got pseudo-news appended. */
      historiesExtended: z.number().int(),
      /** Other files of the input split folder (e.g. entity_embedding.vec), hard-linked or copied unchanged. */
      carried: z.array(z.string()),
    })
    .catchall(z.number().int()),
});
export type ManifestSplit = z.infer<typeof ManifestSplit>;

/** What merge checked before putting the output in place (history-rule.ts rules 3 and 4); a violation stops it. */
export const ManifestAudit = z
  .object({
    /** Appended pseudo-news IDs checked, once per split they appear in (appended news IDs are counted after it). */
    pseudoNews: z.number().int(),
    /** Always 0 in a written manifest: merge stops at the first audit that finds any. */
    violations: z.literal(0),
  })
  // Between these, the news IDs each appending stage with records appended (pick: picks), then the
  // lines of each users stage's file, checked over all splits (profile: profiles).
  .catchall(z.number().int());
export type ManifestAudit = z.infer<typeof ManifestAudit>;

export const Manifest = z.object({
  tool: z.literal("genre-mind merge"),
  /** 2: profiles per split, source clicks audited. */
  formatVersion: z.literal(2),
  options: MergeOptions,
  splits: z.array(ManifestSplit),
  /** Run folders the records came from, relative to the merged folder, in the order given. */
  records: z.array(z.string()),
  /** Every registered stage, in registry order. */
  stages: z.record(z.string(), ManifestStage),
  /** After total, each stage's StageMerge.userCounts (profile: profiled, users with a profile row in at least one split; generate: cold, users whose source history has 1..cold-max clicks). */
  users: z.object({ total: z.number().int() }).catchall(z.number().int()),
  /** Pseudo-news ID → the user it was generated for; IDs in ascending order. */
  pseudoNews: z.record(z.string(), z.string()),
  audit: ManifestAudit,
  /** perSplit, then the columns of each side file (users stages' files first, then news files: SideFile.columnsKey), then listSeparator. */
  files: z
    .object({
      perSplit: z.array(z.string()),
      listSeparator: z.string(),
    })
    .catchall(z.array(z.string())),
});
export type Manifest = z.infer<typeof Manifest>;

/** Did the merge have anything of this stage (records, failures, a meta file)? Summaries leave out the others. */
export function tookPart(stage: ManifestStage | undefined): boolean {
  if (!stage) return false;
  const k = stage.counts;
  return stage.metaFiles > 0 || k.merged + k.inapplicable + k.failed + k.invalidRecords + k.unknownRecords > 0;
}

/** The audit line of merge's terminal summary and of the report: what was checked of the stages that took part. */
export function describeAudit(manifest: Manifest): string {
  const { violations, ...checked } = manifest.audit;
  const labels = new Map<string, string>([["pseudoNews", "appended pseudo-news IDs"]]);
  for (const s of stages()) {
    if (!tookPart(manifest.stages[s.name])) continue;
    if (s.merge.users) labels.set(s.merge.users.audit.key, s.merge.users.audit.many);
    if (s.merge.appendsNews) labels.set(s.merge.appendsNews.audit.key, s.merge.appendsNews.audit.many);
  }
  const total = Object.values(checked).reduce((sum, n) => sum + n, 0);
  const parts = Object.entries(checked).flatMap(([key, n]) => (labels.has(key) ? [`${n} ${labels.get(key)}`] : []));
  return `audit: ${total} checked (${parts.join(", ")}), ${violations} violations`;
}

/** A stage's cost as the manifest states it (rounded to a millionth of a dollar, so the file stays stable). */
export function stageCost(r: { spend: Spend }): Pick<ManifestStage, "costUsd" | "unpriced"> {
  const usd = r.spend.total();
  if (usd === null) return { costUsd: null, unpriced: [...r.spend.unpriced].sort() };
  return { costUsd: Math.round(usd * 1e6) / 1e6 };
}
