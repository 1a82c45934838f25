// Prices and per-model facts live in data/pricing.json, one table per provider family (the family a
// ProviderSpec declares), so a price change is a data edit, not a code change.
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { Usage } from "./types.js";

const ModelEntry = z.object({
  /** USD per million tokens. */
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cacheWrite: z.number().nonnegative(),
  cacheRead: z.number().nonnegative(),
  /** A system block shorter than this is not cached by the API, so marking it would only add noise. */
  minCacheableTokens: z.number().int().positive(),
  /** Anthropic: whether the model accepts output_config.format (JSON schema structured output). */
  structuredOutputs: z.boolean().optional(),
  /** OpenAI: the reasoning_effort every request carries; absent, the API's default applies. */
  reasoningEffort: z.string().min(1).optional(),
});

/** A model's prices and facts, with the batch discount of its family. */
export type ModelInfo = z.infer<typeof ModelEntry> & {
  /** Share taken off every price in batch mode. */
  batchDiscount: number;
};

const Family = z.object({
  source: z.string(),
  batchDiscount: z.number().min(0).max(1),
  models: z.record(z.string(), ModelEntry),
  aliases: z.record(z.string(), z.string()).default({}),
});

const PricingTable = z.object({ families: z.record(z.string(), Family) });
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

/**
 * A family's entry for a model ID; dated snapshots (claude-haiku-4-5-20251001, gpt-5-nano-2025-08-07)
 * fall back to their alias. Undefined for a model (or family) the table does not know.
 */
export function modelInfo(family: string, model: string): ModelInfo | undefined {
  const f = pricingTable().families[family];
  if (!f) return undefined;
  const candidates = [model, f.aliases[model], model.replace(/-\d{8}$/, ""), model.replace(/-\d{4}-\d{2}-\d{2}$/, ""), model.replace(/-latest$/, "")];
  for (const c of candidates) {
    const entry = c ? (f.models[c] ?? (f.aliases[c] ? f.models[f.aliases[c]] : undefined)) : undefined;
    if (entry) return { ...entry, batchDiscount: f.batchDiscount };
  }
  return undefined;
}

/** Every model the table prices, by family in the table's order (aliases left out). */
export function pricedModels(): { family: string; model: string; info: ModelInfo }[] {
  return Object.entries(pricingTable().families).flatMap(([family, f]) =>
    Object.entries(f.models).map(([model, entry]) => ({ family, model, info: { ...entry, batchDiscount: f.batchDiscount } })),
  );
}

/** The price lookup a ProviderSpec declares: its family's table. */
export function familyPrices(family: string): (model: string) => ModelInfo | undefined {
  return (model) => modelInfo(family, model);
}

/** Dollars for the usage, or undefined when the model has no price in its family's table. */
export function costUsd(usage: Usage, family: string, model: string, mode: "live" | "batch" = "live"): number | undefined {
  return priceUsd(usage, modelInfo(family, model), mode);
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
  return mode === "batch" ? dollars * (1 - info.batchDiscount) : dollars;
}

export function zeroUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
}

/** Whether any token of this usage was billed. */
export function billed(u: Usage): boolean {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens > 0;
}

export function addUsage(into: Usage, u: Usage): Usage {
  into.inputTokens += u.inputTokens;
  into.outputTokens += u.outputTokens;
  into.cacheReadTokens += u.cacheReadTokens;
  into.cacheWriteTokens += u.cacheWriteTokens;
  return into;
}
