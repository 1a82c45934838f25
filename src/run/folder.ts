// The files of a run folder (`--out`), named in one place. Everything a stage paid for lives here.
import { join } from "node:path";
import { z } from "zod";
import { Answerer, Usage } from "../engine/types.js";

export function runPaths(dir: string) {
  return {
    dir,
    /** Validated answers, append-only JSONL (StageRecord). */
    records: (stage: string) => join(dir, `${stage}.jsonl`),
    /** Items given up on, append-only JSONL (FailureRecord). */
    failures: (stage: string) => join(dir, `${stage}.failures.jsonl`),
    /** Message Batches submitted and not yet collected, written before polling starts. */
    batches: (stage: string) => join(dir, `${stage}.batches.jsonl`),
    /** The process writing a stage now (run/lock.ts). */
    lock: (stage: string) => join(dir, `${stage}.lock`),
    /** What the last run of a stage was: StageMeta. */
    stageMeta: (stage: string) => join(dir, `${stage}.meta.json`),
    /** Merged MIND splits go to `<dir>/<split name>/`. */
    split: (name: string) => join(dir, name),
    /** Where merge wrote one user_profiles.tsv for all splits before profiles became per split; removed on --force. */
    legacyUserProfiles: join(dir, "user_profiles.tsv"),
    manifest: join(dir, "manifest.json"),
    report: join(dir, "report.html"),
    /** Input splits that passed the check before a stage ran (a cache: deleting it costs one more check). */
    inputCheck: join(dir, "inputs-checked.json"),
  };
}
export type RunPaths = ReturnType<typeof runPaths>;

export const StageCounts = z.object({
  /** Items the stage covers after --limit/--shard. */
  items: z.number().int().nonnegative(),
  /** Answered in this run. */
  done: z.number().int().nonnegative(),
  /** Already in the store: not sent again. */
  cached: z.number().int().nonnegative(),
  /** Items that needed more than one attempt. */
  retried: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  failedByReason: z.record(z.string(), z.number().int().nonnegative()),
});
export type StageCounts = z.infer<typeof StageCounts>;

/**
 * Written at the end of each stage run, replacing the last run's; merge and report read it for the
 * manifest (prompt hashes, splits, options). What a stage cost over all its runs is not here: merge
 * and report price the records and failures themselves (src/engine/spend.ts).
 */
export const StageMeta = z.preprocess(
  // Meta files written before the rename call this run's spend `costUsd`; they are still read.
  (v) => (v && typeof v === "object" && !("runCostUsd" in v) && "costUsd" in v ? { ...(v as { costUsd: unknown }), runCostUsd: (v as { costUsd: unknown }).costUsd } : v),
  z.object({
    /** The stage's name (src/stages/registry.ts). */
    stage: z.string().min(1),
    provider: Answerer,
    model: z.string(),
    /** sha256 of each prompt template file used, by file name. */
    promptHashes: z.record(z.string(), z.string()),
    /** Stage options that shape requests (e.g. recent clicks kept, k, chain). */
    options: z.record(z.string(), z.unknown()),
    splits: z.array(z.object({ name: z.string(), newsBytes: z.number(), behaviorsBytes: z.number() })),
    counts: StageCounts,
    /** Tokens billed in this run (cached items cost nothing). */
    usage: Usage,
    /**
     * What this run was billed (the run summary's cost; 0 for a model with no price, which the run
     * says at its start). Named so because the file is replaced each run: a stage's cost is not this.
     */
    runCostUsd: z.number().nonnegative(),
    finishedAt: z.string(),
  }),
);
export type StageMeta = z.infer<typeof StageMeta>;
