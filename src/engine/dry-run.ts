// --dry-run: render every request that would be sent, count its tokens and price the run for live and
// batch modes, sending nothing (with --count-tokens api, only the free token-counting endpoint).
import pLimit from "p-limit";
import { UserError, type CommandContext } from "../cli/command.js";
import { providerSpecs } from "../providers/registry.js";
import { apiKeyEnv } from "../providers/setup.js";
import type { ProviderCall, ProviderSpec, TokenCounter } from "../providers/types.js";
import type { EngineConfig } from "./config.js";
import { priceUsd, zeroUsage } from "./cost.js";
import { classifyError } from "./errors.js";
import { sleep } from "./limits.js";
import { CHARS_PER_TOKEN, estimateCallTokens } from "./tokens.js";
import type { LlmRequest, StageName, Usage } from "./types.js";

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

export async function dryRun(args: {
  stage: StageName;
  config: EngineConfig;
  ctx: CommandContext;
  spec: ProviderSpec;
  model: string;
  pending: LlmRequest[];
  cached: number;
}): Promise<DryRunReport> {
  const { config, ctx, spec, model, pending } = args;
  const llm = spec.mode !== "offline";
  let counter: TokenCounter | undefined;
  if (llm && config["count-tokens"] === "api" && pending.length > 0) {
    if (!spec.tokenCounter) {
      const counting = providerSpecs().filter((s) => s.tokenCounter).map((s) => s.name);
      throw new UserError(`--count-tokens api needs --provider ${counting.join(" or ")}`);
    }
    counter = spec.tokenCounter({ config, env: ctx.env, model });
  }
  const calls: ProviderCall[] = pending.map((r) => ({ system: r.system, messages: [{ role: "user", content: r.user }], jsonSchema: r.jsonSchema, maxTokens: r.maxTokens }));
  const inputs: number[] = calls.map((c) => estimateCallTokens(c).total);
  if (counter) {
    const count = counter.countTokens.bind(counter);
    const limit = pLimit(Math.min(config.concurrency, 8));
    await Promise.all(
      calls.map((call, i) =>
        limit(async () => {
          for (let retry = 0; ; retry++) {
            try {
              inputs[i] = await count(call);
              return;
            } catch (e) {
              const c = classifyError(e);
              if (c.kind === "fatal") throw new UserError(`token counting refused (${c.status}): check the key in ${apiKeyEnv(spec, config)}`);
              if (!c.retryable || retry >= 5) throw new UserError(`token counting failed: ${c.message}`);
              await sleep(Math.max(c.retryAfterMs ?? 0, 500 * 2 ** retry));
            }
          }
        }),
      ),
    );
  }

  const info = spec.price?.(model);
  const minCacheable = info?.minCacheableTokens ?? 4096;
  const caches = spec.capabilities.promptCaching;
  let input = 0;
  let system = 0;
  let expected = 0;
  let max = 0;
  // Live: the first request with a cacheable system block writes the cache, later ones read it.
  const live = zeroUsage();
  const seenSystems = new Set<string>();
  pending.forEach((r, i) => {
    const total = inputs[i]!;
    const sys = Math.min(total, estimateCallTokens({ ...calls[i]!, messages: [] }).system);
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
  });
  // Batch: cache hits are best-effort there, so the estimate assumes none.
  const batchUsage: Usage = { inputTokens: input, outputTokens: expected, cacheReadTokens: 0, cacheWriteTokens: 0 };
  // A provider without prices is free (offline); one without this model's price says so.
  const cost = (u: Usage, mode: "live" | "batch") => (spec.price ? priceUsd(u, info, mode) : 0);
  const liveCost = cost(live, "live");
  const batchCost = cost(batchUsage, "batch");
  const liveMax = cost({ ...live, outputTokens: max }, "live");
  const batchMax = cost({ ...batchUsage, outputTokens: max }, "batch");
  const counted = counter ? "api" : "estimate";

  const lines = [
    `dry run: ${args.stage} · provider ${config.provider} · model ${model} · nothing was sent`,
    `  requests       ${fmt(pending.length)} to send (${fmt(args.cached)} already in the store)`,
    `  input tokens   ${fmt(input)} (${counted === "api" ? "counted by the API" : `estimated at ${CHARS_PER_TOKEN} characters per token`})`,
    `  system prompt  ${fmt(system)} of those; ${caches && system > 0 && pending.length > 0 && system / pending.length >= minCacheable ? "cached after the first request (live)" : `below the ${fmt(minCacheable)}-token cache minimum: not cached`}`,
    `  output tokens  ~${fmt(expected)} expected, at most ${fmt(max)} (max_tokens)`,
    `  cost ${model.padEnd(20)} live ${money(liveCost)} (max ${money(liveMax)}) · batch ${money(batchCost)} (max ${money(batchMax)})`,
  ];
  if (spec.price && !info) lines.push(`  note: ${model} has no price in data/pricing.json`);
  ctx.stdout.write(lines.join("\n") + "\n");
  return {
    requests: pending.length,
    inputTokens: input,
    systemTokens: system,
    expectedOutputTokens: expected,
    maxOutputTokens: max,
    liveCostUsd: liveCost ?? 0,
    batchCostUsd: batchCost ?? 0,
    counted,
  };
}
