// Prices and per-model facts live in data/pricing.json so a price change is a data edit, not a code change.
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { Usage } from "./types.js";

const ModelInfo = z.object({
  /** USD per million tokens. */
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cacheWrite: z.number().nonnegative(),
  cacheRead: z.number().nonnegative(),
  /** A system block shorter than this is not cached by the API, so marking it would only add noise. */
  minCacheableTokens: z.number().int().positive(),
  /** Whether the model accepts output_config.format (JSON schema structured output). */
  structuredOutputs: z.boolean(),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

const PricingTable = z.object({
  batchDiscount: z.number().min(0).max(1),
  models: z.record(z.string(), ModelInfo),
  aliases: z.record(z.string(), z.string()).default({}),
});
export type PricingTable = z.infer<typeof PricingTable>;

let table: PricingTable | undefined;

export function pricingTable(): PricingTable {
  if (!table) {
    const file = new URL("../../data/pricing.json", import.meta.url);
    const parsed = PricingTable.safeParse(JSON.parse(readFileSync(file, "utf8")));
    if (!parsed.success) throw new Error(`data/pricing.json: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    table = parsed.data;
  }
  return table;
}

/** The table entry for a model ID; dated snapshots (claude-haiku-4-5-20251001) fall back to their alias. */
export function modelInfo(model: string): ModelInfo | undefined {
  const t = pricingTable();
  const candidates = [model, t.aliases[model], model.replace(/-\d{8}$/, ""), model.replace(/-latest$/, "")];
  for (const c of candidates) {
    if (c && t.models[c]) return t.models[c];
    const alias = c ? t.aliases[c] : undefined;
    if (alias && t.models[alias]) return t.models[alias];
  }
  return undefined;
}

/** Dollars for the usage, or undefined when the model has no price in the table. */
export function costUsd(usage: Usage, model: string, mode: "live" | "batch" = "live"): number | undefined {
  return priceUsd(usage, modelInfo(model), mode);
}

/** Dollars for the usage at a model's prices (a provider's price lookup), undefined without one. */
export function priceUsd(usage: Usage, info: ModelInfo | undefined, mode: "live" | "batch" = "live"): number | undefined {
  if (!info) return undefined;
  const dollars =
    (usage.inputTokens * info.input +
      usage.outputTokens * info.output +
      usage.cacheWriteTokens * info.cacheWrite +
      usage.cacheReadTokens * info.cacheRead) /
    1e6;
  return mode === "batch" ? dollars * (1 - pricingTable().batchDiscount) : dollars;
}

export function zeroUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
}

export function addUsage(into: Usage, u: Usage): Usage {
  into.inputTokens += u.inputTokens;
  into.outputTokens += u.outputTokens;
  into.cacheReadTokens += u.cacheReadTokens;
  into.cacheWriteTokens += u.cacheWriteTokens;
  return into;
}
