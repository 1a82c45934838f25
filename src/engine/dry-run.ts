// --dry-run: render every request that would be sent, count its tokens and price the run for live and
// batch modes, sending nothing (with --count-tokens api, only the free token-counting endpoint).
import { UserError, type CommandContext } from "../cli/command.js";
import { providerSpecs } from "../providers/registry.js";
import { apiKeyEnv } from "../providers/setup.js";
import type { ProviderCall, ProviderSpec, TokenCounter } from "../providers/types.js";
import type { EngineConfig } from "./config.js";
import { capVerdict } from "./budget.js";
import { priceUsd, zeroUsage } from "./cost.js";
import { forEachConcurrently, Slots } from "./concurrency.js";
import { callFor, type PendingItem } from "./plan.js";
import { DEFAULT_RETRY, TransportFailure, withTransportRetries, type RetryPolicy } from "./retry.js";
import { CHARS_PER_TOKEN, estimateCallTokens } from "./tokens.js";
import type { Usage } from "./types.js";

export interface DryRunReport {
  requests: number;
  inputTokens: number;
  /** Tokens of the system blocks, the part prompt caching can serve after the first request. */
  systemTokens: number;
  expectedOutputTokens: number;
  maxOutputTokens: number;
  liveCostUsd: number;
  batchCostUsd: number;
  counted: "api" | "estimate";
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function money(n: number | undefined): string {
  return n === undefined ? "price unknown" : `$${n.toFixed(4)}`;
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
}): Promise<DryRunReport> {
  const { config, ctx, spec, model } = args;
  let counter: TokenCounter | undefined;
  const countingCounter = (): TokenCounter | undefined => {
    if (counter || spec.mode === "offline" || config["count-tokens"] !== "api") return counter;
    if (!spec.tokenCounter) {
      const counting = providerSpecs().filter((s) => s.tokenCounter).map((s) => s.name);
      throw new UserError(`--count-tokens api needs --provider ${counting.join(" or ")}`);
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
  let requests = 0;
  let input = 0;
  let system = 0;
  let expected = 0;
  let max = 0;
  // Live: the first request with a cacheable system block writes the cache, later ones read it.
  const live = zeroUsage();
  const seenSystems = new Set<string>();
  const tally = async (item: PendingItem) => {
    const r = item.req;
    const call = callFor(r);
    const c = countingCounter();
    const total = c ? await countTokens(c, call) : estimateCallTokens(call).total;
    const sys = Math.min(total, estimateCallTokens({ ...call, messages: [] }).system);
    requests++;
    input += total;
    system += sys;
    const out = Math.min(r.maxTokens, r.expectedOutputTokens ?? Math.ceil(r.maxTokens / 2));
    expected += out;
    max += r.maxTokens;
    live.outputTokens += out;
    if (caches && sys >= minCacheable) {
      live.inputTokens += total - sys;
      if (seenSystems.has(r.system)) live.cacheReadTokens += sys;
      else {
        seenSystems.add(r.system);
        live.cacheWriteTokens += sys;
      }
    } else live.inputTokens += total;
  };
  const slots = new Slots(config["count-tokens"] === "api" ? Math.min(config.concurrency, COUNTING_CONCURRENCY) : 1);
  await forEachConcurrently(args.asks, slots, tally);

  // Batch: cache hits are best-effort there, so the estimate assumes none.
  const batchUsage: Usage = { inputTokens: input, outputTokens: expected, cacheReadTokens: 0, cacheWriteTokens: 0 };
  // A provider without prices is free (offline); one without this model's price says so.
  const cost = (u: Usage, mode: "live" | "batch") => (spec.price ? priceUsd(u, info, mode) : 0);
  const liveCost = cost(live, "live");
  const batchCost = cost(batchUsage, "batch");
  const liveMax = cost({ ...live, outputTokens: max }, "live");
  const batchMax = cost({ ...batchUsage, outputTokens: max }, "batch");
  const counted = counter ? "api" : "estimate";
  const cached = args.cached();

  const lines = [
    `dry run: ${args.stage} · provider ${config.provider} · model ${model} · nothing was sent`,
    `  requests       ${fmt(requests)} to send (${fmt(cached)} already in the store)`,
    `  input tokens   ${fmt(input)} (${counted === "api" ? "counted by the API" : `estimated at ${CHARS_PER_TOKEN} characters per token`})`,
    `  system prompt  ${fmt(system)} of those; ${caches && system > 0 && requests > 0 && system / requests >= minCacheable ? "cached after the first request (live)" : `below the ${fmt(minCacheable)}-token cache minimum: not cached`}`,
    `  output tokens  ~${fmt(expected)} expected, at most ${fmt(max)} (max_tokens)`,
    `  cost ${model.padEnd(20)} live ${money(liveCost)} (max ${money(liveMax)}) · batch ${money(batchCost)} (max ${money(batchMax)})`,
  ];
  if (spec.price && !info) lines.push(`  note: ${model} has no price in data/pricing.json`);
  const cap = config["max-cost"];
  if (cap !== undefined && spec.mode !== "offline") {
    const [expectedUsd, maxUsd] = spec.mode === "batch" ? [batchCost, batchMax] : [liveCost, liveMax];
    lines.push(
      `  ${expectedUsd === undefined || maxUsd === undefined ? `--max-cost cannot be checked: ${model} has no price` : capVerdict(cap, args.storedUsd ?? 0, expectedUsd, maxUsd, requests)}`,
    );
  }
  ctx.stdout.write(lines.join("\n") + "\n");
  return {
    requests,
    inputTokens: input,
    systemTokens: system,
    expectedOutputTokens: expected,
    maxOutputTokens: max,
    liveCostUsd: liveCost ?? 0,
    batchCostUsd: batchCost ?? 0,
    counted,
  };
}
