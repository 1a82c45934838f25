// --dry-run: render every request that would be sent, count its tokens and price the run for live and
// batch modes, sending nothing (with --count-tokens api, only the free token-counting endpoint).
import pLimit from "p-limit";
import { UserError, type CommandContext } from "../cli/command.js";
import { apiKeyEnv, createLiveProvider } from "../providers/index.js";
import type { LiveProvider, ProviderCall } from "../providers/types.js";
import type { EngineConfig } from "./config.js";
import { costUsd, modelInfo, zeroUsage } from "./cost.js";
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
  model: string;
  pending: LlmRequest[];
  cached: number;
  deps: { provider?: LiveProvider };
}): Promise<DryRunReport> {
  const { config, ctx, model, pending } = args;
  const llm = config.provider !== "offline";
  let counter: LiveProvider | undefined;
  if (llm && config["count-tokens"] === "api" && pending.length > 0) {
    if (config.provider !== "anthropic" && config.provider !== "anthropic-batch") {
      throw new UserError("--count-tokens api needs --provider anthropic or anthropic-batch");
    }
    counter = args.deps.provider ?? createLiveProvider(config, ctx);
    if (!counter.countTokens) throw new UserError(`the ${config.provider} provider cannot count tokens`);
  }
  const calls: ProviderCall[] = pending.map((r) => ({ system: r.system, messages: [{ role: "user", content: r.user }], jsonSchema: r.jsonSchema, maxTokens: r.maxTokens }));
  const inputs: number[] = calls.map((c) => estimateCallTokens(c).total);
  if (counter?.countTokens) {
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
              if (c.kind === "fatal") throw new UserError(`token counting refused (${c.status}): check the key in ${apiKeyEnv(config)}`);
              if (!c.retryable || retry >= 5) throw new UserError(`token counting failed: ${c.message}`);
              await sleep(Math.max(c.retryAfterMs ?? 0, 500 * 2 ** retry));
            }
          }
        }),
      ),
    );
  }

  const info = llm ? modelInfo(model) : undefined;
  const minCacheable = info?.minCacheableTokens ?? 4096;
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
    if (sys >= minCacheable) {
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
  const liveCost = llm ? costUsd(live, model, "live") : 0;
  const batchCost = llm ? costUsd(batchUsage, model, "batch") : 0;
  const liveMax = llm ? costUsd({ ...live, outputTokens: max }, model, "live") : 0;
  const batchMax = llm ? costUsd({ ...batchUsage, outputTokens: max }, model, "batch") : 0;
  const counted = counter ? "api" : "estimate";

  const lines = [
    `dry run: ${args.stage} · provider ${config.provider} · model ${model} · nothing was sent`,
    `  requests       ${fmt(pending.length)} to send (${fmt(args.cached)} already in the store)`,
    `  input tokens   ${fmt(input)} (${counted === "api" ? "counted by the API" : `estimated at ${CHARS_PER_TOKEN} characters per token`})`,
    `  system prompt  ${fmt(system)} of those; ${system > 0 && pending.length > 0 && system / pending.length >= minCacheable ? "cached after the first request (live)" : `below the ${fmt(minCacheable)}-token cache minimum: not cached`}`,
    `  output tokens  ~${fmt(expected)} expected, at most ${fmt(max)} (max_tokens)`,
    `  cost ${model.padEnd(20)} live ${money(liveCost)} (max ${money(liveMax)}) · batch ${money(batchCost)} (max ${money(batchMax)})`,
  ];
  if (llm && !info) lines.push(`  note: ${model} has no price in data/pricing.json`);
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
