// Flags every stage command takes and the config they parse to; a stage's own flags live in its
// folder (Stage.flags) and extend this config.
import { z } from "zod";
import { UsageError, zBool, zInt, zStringList, type CommandContext, type OptionSpec, type OptionSpecs } from "../cli/command.js";
import { EngineConfig } from "../engine/config.js";
import { DEFAULT_COLD_MAX } from "../mind/history-rule.js";
import { OFFLINE_PROVIDER } from "../providers/offline.js";
import { sha256 } from "../util/hash.js";

export const DEFAULT_DATA = "mind-data/sample";
export const DEFAULT_OUT = "output/run";

export const commonStageOptions: OptionSpecs = {
  data: {
    type: "string",
    multiple: true,
    arg: "<dir>",
    description: `a split folder or a folder of splits (required but with --provider ${OFFLINE_PROVIDER}, which falls back to the bundled sample ${DEFAULT_DATA} and says so)`,
  },
  out: { type: "string", arg: "<dir>", description: `run folder: records, failures and meta are written here (default ${DEFAULT_OUT})` },
  limit: { type: "string", arg: "<n>", description: "only the first n items (after --shard): a cheap trial" },
  shard: { type: "string", arg: "<k/n>", description: "only shard k of n (1 ≤ k ≤ n), a fixed partition by a hash of the item ID" },
  prompts: { type: "string", arg: "<dir>", description: "folder of prompt templates (default: the bundled prompts/)" },
  lenient: { type: "boolean", description: "skip malformed input lines instead of stopping at the first" },
};

/** --cold-max of the stages over cold users: one spec, so augment and prompt take it once. */
export const COLD_MAX_FLAG: OptionSpec = {
  type: "string",
  arg: "<n>",
  description: `a cold user has 1..n clicks in their earliest non-empty history (default ${DEFAULT_COLD_MAX})`,
};
export const zColdMax = zInt(1, 1000).default(DEFAULT_COLD_MAX);

/** --k of the stages that add news to cold users (generate, pick): one spec, so augment and prompt take it once. */
export const K_FLAG: OptionSpec = {
  type: "string",
  arg: "<n>",
  description: "news added per cold user, asked for in one request: generate's pseudo-news, pick's picks (default 2)",
};
export const zK = zInt(1, 20).default(2);

/** Merge's --cold: what a cold user's history gets (generate's pseudo-news, pick's picked news, or both); generate and pick share it. */
export const COLD_MODES = ["pseudo", "pick", "both"] as const;
export type ColdMode = (typeof COLD_MODES)[number];
export const COLD_FLAG: OptionSpec = {
  type: "string",
  arg: "<mode>",
  description: "what cold users' histories get: pseudo (generate's pseudo-news; the default, except in augment --stages with pick: pick, or both with generate) | pick (pick's picked news) | both",
};
// No default here: augment chooses one from the stages it runs (augmentColdMode); merge falls back to pseudo.
export const ColdConfig = z.object({ cold: z.enum(COLD_MODES).optional() });
/** The --cold a merge applies: the one given, else GENRE's pseudo-news. */
export const coldMode = (options: unknown): ColdMode => ColdConfig.parse(options).cold ?? "pseudo";
/**
 * augment without --cold appends what the stages it ran produced: a run that asks pick for picks
 * and then leaves them out of every history would pay for nothing.
 */
export function augmentColdMode(given: ColdMode | undefined, ran: readonly string[]): ColdMode | undefined {
  if (given !== undefined || !ran.includes("pick")) return given;
  return ran.includes("generate") ? "both" : "pick";
}

export interface Shard {
  k: number;
  n: number;
}

const zShard = z
  .string()
  .regex(/^\d+\/\d+$/, { error: "expected k/n, e.g. 1/4" })
  .transform((s) => {
    const [k, n] = s.split("/").map(Number) as [number, number];
    return { k, n };
  })
  .refine((s) => s.n >= 1 && s.k >= 1 && s.k <= s.n, { error: "expected k/n with 1 ≤ k ≤ n" });

/** The config a stage runs with (and `augment`, which runs them in turn); each stage extends it with its own flags. */
export const StageConfig = EngineConfig.extend({
  data: zStringList,
  out: z.string().min(1).default(DEFAULT_OUT),
  limit: zInt(1).optional(),
  shard: zShard.optional(),
  prompts: z.string().min(1).optional(),
  lenient: zBool.default(false),
});
export type StageConfig = z.infer<typeof StageConfig>;

/** What a stage command (and augment, prompt) parses: --data may be left out, see withData. */
export const StageFlags = StageConfig.extend({ data: zStringList.optional() });

/**
 * --data as given, else the bundled sample: for the offline provider only, and said on stderr. A
 * forgotten --data with a paid or served model would pay for the sample's requests (328 for
 * summarize) and put sample records into what is meant to be a real run folder.
 */
export function withData<C extends { data?: string[] | undefined; provider: string }>(config: C, ctx: CommandContext): C & { data: string[] } {
  if (config.data !== undefined) return { ...config, data: config.data };
  if (config.provider !== OFFLINE_PROVIDER) {
    throw new UsageError(
      `--data is required with --provider ${config.provider}: name the input splits (e.g. --data mind-data/MINDsmall_train --data mind-data/MINDsmall_dev); ` +
        `only --provider ${OFFLINE_PROVIDER} falls back to the bundled sample ${DEFAULT_DATA}`,
    );
  }
  ctx.stderr.write(`note: no --data given: reading the bundled sample ${DEFAULT_DATA} (only --provider ${OFFLINE_PROVIDER} falls back to it)\n`);
  return { ...config, data: [DEFAULT_DATA] };
}

/** What a stage runs with: StageConfig and the stage's own flags (in augment and prompt, every stage's). */
export type StageCommandConfig = StageConfig & Record<string, unknown>;

/** Shard of an item: the first 32 bits of sha256(ID) mod n, so it never depends on order or on the other items. */
export function shardOf(itemId: string, n: number): number {
  return Number.parseInt(sha256(itemId).slice(0, 8), 16) % n;
}

/** --shard then --limit: each machine of a sharded run can still make a cheap trial. */
export function selectItems(ids: readonly string[], shard: Shard | undefined, limit: number | undefined): string[] {
  const mine = shard ? ids.filter((id) => shardOf(id, shard.n) === shard.k - 1) : [...ids];
  return limit === undefined ? mine : mine.slice(0, limit);
}
