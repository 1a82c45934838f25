// --dry-run: render every request that would be sent, count its tokens and price the run for live and
// batch modes, sending nothing (with --count-tokens api, only the free token-counting endpoint).
import { UserError, type CommandContext } from "../cli/command.js";
import { providerSpecs } from "../providers/registry.js";
import { apiKeyEnv } from "../providers/setup.js";
import type { ProviderCall, ProviderSpec, TokenCounter } from "../providers/types.js";
import type { EngineConfig } from "./config.js";
import { capVerdict, expectedOutput, type CapShare } from "./budget.js";
import { priceUsd, pricedModels, zeroUsage } from "./cost.js";
import { forEachConcurrently, Slots } from "./concurrency.js";
import { packed } from "./pack.js";
import { callFor, type PendingItem } from "./plan.js";
import { DEFAULT_RETRY, TransportFailure, withTransportRetries, type RetryPolicy } from "./retry.js";
import { CHARS_PER_TOKEN, estimateCallTokens } from "./tokens.js";
import type { LlmRequest, Usage } from "./types.js";

export interface DryRunReport {
  /** Requests to send (a pack counts once). */
  requests: number;
  /** Items those requests carry. */
  items: number;
  inputTokens: number;
  /** Tokens of the system blocks, the part prompt caching can serve after the first request. */
  systemTokens: number;
  expectedOutputTokens: number;
  maxOutputTokens: number;
  liveCostUsd: number;
  batchCostUsd: number;
  /** Every priced model, live and batch, for the requests as packed (expected output). */
  models: ModelCost[];
  counted: "api" | "estimate";
  /** With --max-cost: what the requests are expected to cost in the provider's mode (live or batch); unset without a price. */
  capExpectedUsd?: number;
}

export interface ModelCost {
  model: string;
  live: number;
  batch: number;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function money(n: number | undefined): string {
  return n === undefined ? "price unknown" : `$${n.toFixed(4)}`;
}

/** The cost table of a dry run (and of augment's total): one line per priced model, live and batch. */
export function modelCostTable(models: readonly ModelCost[], heading: string): string[] {
  if (models.length === 0) return [];
  const width = Math.max(...models.map((m) => m.model.length));
  return [
    `  ${heading} (expected output; live with prompt caching where the system prompt is long enough):`,
    ...models.map((m) => `    ${m.model.padEnd(width)}  live ${money(m.live).padStart(11)}  batch ${money(m.batch).padStart(11)}`),
  ];
}

/** Adds up the cost tables of several dry runs, model by model. */
export function addModelCosts(tables: readonly (readonly ModelCost[])[]): ModelCost[] {
  const sum = new Map<string, ModelCost>();
  for (const t of tables) {
    for (const m of t) {
      const s = sum.get(m.model) ?? { model: m.model, live: 0, batch: 0 };
      sum.set(m.model, { model: m.model, live: s.live + m.live, batch: s.batch + m.batch });
    }
  }
  return [...sum.values()];
}

/** What the requests of a dry run add up to; priced afterwards, for any model. */
class Tally {
  requests = 0;
  input = 0;
  system = 0;
  expected = 0;
  max = 0;
  /** Per distinct system prompt (one or two per stage): its tokens and how many requests carry it. */
  private readonly systems = new Map<string, { tokens: number; requests: number }>();

  add(req: LlmRequest, total: number, system: number): void {
    this.requests++;
    this.input += total;
    this.system += system;
    this.expected += expectedOutput(req);
    this.max += req.maxTokens;
    const s = this.systems.get(req.system);
    if (s) s.requests++;
    else this.systems.set(req.system, { tokens: system, requests: 1 });
  }

  /**
   * Live: with prompt caching, the first request of a system prompt at or above the model's cache
   * minimum writes the cache and the others read it. Batch: cache hits are best-effort there, so the
   * estimate assumes none.
   */
  usage(mode: "live" | "batch", caching: { minTokens: number } | undefined, output = this.expected): Usage {
    const u: Usage = { ...zeroUsage(), inputTokens: this.input, outputTokens: output };
    if (mode === "batch" || !caching) return u;
    for (const s of this.systems.values()) {
      if (s.tokens < caching.minTokens) continue;
      u.inputTokens -= s.tokens * s.requests;
      u.cacheWriteTokens += s.tokens;
      u.cacheReadTokens += s.tokens * (s.requests - 1);
    }
    return u;
  }

  cachedShare(minTokens: number): boolean {
    return [...this.systems.values()].some((s) => s.tokens >= minTokens);
  }
}

/** Token counts go out a few at a time: the counting endpoint has its own rate limit. */
const COUNTING_CONCURRENCY = 8;
const COUNTING_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxRetries: 5 };

export async function dryRun(args: {
  stage: string;
  config: EngineConfig;
  ctx: CommandContext;
  spec: ProviderSpec;
  model: string;
  /** The items that would be sent (store hits and prompts shared with another item are not). */
  asks: AsyncIterable<PendingItem>;
  /** Store hits: read once `asks` is consumed. */
  cached: () => number;
  /** With --max-cost: what the stage's records and failures were billed already. */
  storedUsd?: number;
  /** augment: the stages before this one under the same --max-cost. */
  capShare?: CapShare;
}): Promise<DryRunReport> {
  const { config, ctx, spec, model } = args;
  let counter: TokenCounter | undefined;
  const countingCounter = (): TokenCounter | undefined => {
    if (counter || spec.mode === "offline" || config["count-tokens"] !== "api") return counter;
    if (!spec.tokenCounter) {
      const counting = providerSpecs().filter((s) => s.tokenCounter).map((s) => s.name);
      throw new UserError(`--count-tokens api needs --provider ${counting.join(" or ")}`, 2);
    }
    return (counter = spec.tokenCounter({ config, env: ctx.env, model }));
  };
  const countTokens = async (c: TokenCounter, call: ProviderCall): Promise<number> => {
    try {
      return await withTransportRetries(() => c.countTokens(call), COUNTING_RETRY, {
        onError: (e) => {
          if (e.kind === "fatal") throw new UserError(`token counting refused (${e.status}): check the key in ${apiKeyEnv(spec, config)}`);
        },
      });
    } catch (e) {
      if (e instanceof TransportFailure) throw new UserError(`token counting failed: ${e.error.message}`);
      throw e;
    }
  };

  const info = spec.price?.(model);
  const minCacheable = info?.minCacheableTokens ?? 4096;
  const caches = spec.capabilities.promptCaching;
  const pack = spec.mode === "offline" ? 1 : config.pack;
  // With --pack, the requests as packed, and each item alone for the saving.
  const packedTally = new Tally();
  const alone = pack > 1 ? new Tally() : packedTally;
  let items = 0;
  /** Items whose stage does not pack them (generate). */
  let unpackable = 0;
  const count = async (tally: Tally, req: LlmRequest) => {
    const call = callFor(req);
    const c = countingCounter();
    const total = c ? await countTokens(c, call) : estimateCallTokens(call).total;
    tally.add(req, total, Math.min(total, estimateCallTokens({ ...call, messages: [] }).system));
  };
  const tally = async (unit: PendingItem) => {
    const members = unit.members ?? [unit];
    items += members.length;
    if (!unit.members && !unit.req.packable) unpackable++;
    await count(packedTally, unit.req);
    if (alone !== packedTally) for (const m of members) await count(alone, m.req);
  };
  const slots = new Slots(config["count-tokens"] === "api" ? Math.min(config.concurrency, COUNTING_CONCURRENCY) : 1);
  await forEachConcurrently(packed(args.asks, pack), slots, tally);

  // A provider without prices is free (offline); one without this model's price says so.
  const caching = caches ? { minTokens: minCacheable } : undefined;
  const cost = (t: Tally, mode: "live" | "batch", output?: number) => (spec.price ? priceUsd(t.usage(mode, caching, output), info, mode) : 0);
  const t = packedTally;
  const liveCost = cost(t, "live");
  const batchCost = cost(t, "batch");
  const counted = counter ? "api" : "estimate";
  const cached = args.cached();
  const models: ModelCost[] = pricedModels().map(({ model, info }) => ({
    model,
    live: priceUsd(t.usage("live", { minTokens: info.minCacheableTokens }), info, "live")!,
    batch: priceUsd(t.usage("batch", undefined), info, "batch")!,
  }));

  const packing = pack > 1 && unpackable < items;
  const lines = [
    `dry run: ${args.stage} · provider ${config.provider} · model ${model} · nothing was sent`,
    `  requests       ${fmt(t.requests)} to send${packing ? ` carrying ${fmt(items)} items (--pack ${pack})` : ""} (${fmt(cached)} already in the store)`,
    `  input tokens   ${fmt(t.input)} (${counted === "api" ? "counted by the API" : `estimated at ${CHARS_PER_TOKEN} characters per token`})`,
    `  system prompt  ${fmt(t.system)} of those; ${caches && t.cachedShare(minCacheable) ? "cached after the first request (live)" : `below the ${fmt(minCacheable)}-token cache minimum: not cached`}`,
    `  output tokens  ~${fmt(t.expected)} expected, at most ${fmt(t.max)} (max_tokens)`,
    `  cost ${model.padEnd(20)} live ${money(liveCost)} (max ${money(cost(t, "live", t.max))}) · batch ${money(batchCost)} (max ${money(cost(t, "batch", t.max))})`,
  ];
  if (pack > 1 && !packing && items > 0) lines.push(`  note: ${args.stage} does not pack its requests: --pack ${pack} changes nothing here`);
  if (packing && alone.input > 0) {
    const saved = (a: number, b: number) => `${fmt(a - b)} (${(((a - b) / a) * 100).toFixed(1)}%)`;
    const dollars = (mode: "live" | "batch") => {
      const a = cost(alone, mode);
      const b = cost(t, mode);
      return a === undefined || b === undefined ? "price unknown" : `$${(a - b).toFixed(4)}`;
    };
    lines.push(
      `  --pack ${pack} saves ${fmt(alone.requests - t.requests)} requests, ${saved(alone.input, t.input)} input tokens ` +
        `(each alone: ${fmt(alone.input)}), ${dollars("live")} live, ${dollars("batch")} batch; output ~${fmt(t.expected - alone.expected)} more tokens for the item numbers`,
    );
  }
  if (spec.price && !info) lines.push(`  note: ${model} has no price in data/pricing.json`);
  const cap = config["max-cost"];
  let capExpectedUsd: number | undefined;
  if (cap !== undefined && spec.mode !== "offline") {
    const mode = spec.mode === "batch" ? "batch" : "live";
    const [expectedUsd, maxUsd] = [cost(t, mode), cost(t, mode, t.max)];
    capExpectedUsd = expectedUsd;
    lines.push(
      `  ${expectedUsd === undefined || maxUsd === undefined ? `--max-cost cannot be checked: ${model} has no price` : capVerdict(cap, args.storedUsd ?? 0, expectedUsd, maxUsd, t.requests, args.capShare)}`,
    );
  }
  lines.push(...modelCostTable(models, `every priced model${packing ? `, --pack ${pack}` : ""}`));
  ctx.stdout.write(lines.join("\n") + "\n");
  return {
    requests: t.requests,
    items,
    inputTokens: t.input,
    systemTokens: t.system,
    expectedOutputTokens: t.expected,
    maxOutputTokens: t.max,
    liveCostUsd: liveCost ?? 0,
    batchCostUsd: batchCost ?? 0,
    models,
    counted,
    capExpectedUsd,
  };
}
