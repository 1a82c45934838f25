// Claude over the live Messages API, through the official SDK (its request building and timeouts).
// One call in, one raw answer out; retries, limits and validation are the engine's. The SDK's errors
// and rate-limit headers are translated here into the engine's provider-neutral terms.
import Anthropic, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import type { MessageCreateParamsNonStreaming, TextBlockParam } from "@anthropic-ai/sdk/resources/messages/messages";
import { familyPrices } from "../engine/cost.js";
import { estimateTextTokens } from "../engine/tokens.js";
import { connectionMessage, ProviderError, retryAfterMs } from "./errors.js";
import { resolveApiKey, resolveBaseUrl } from "./setup.js";
import type { LiveProvider, LiveProviderSpec, ProviderAnswer, ProviderCall, ProviderSetup, RateLimitReading, StopKind } from "./types.js";

const CAPABILITIES = { structuredOutput: true, promptCaching: true };
const FAMILY = "anthropic";
const prices = familyPrices(FAMILY);

export interface AnthropicOptions {
  apiKey: string;
  model: string;
  /** Default: ANTHROPIC_BASE_URL as the SDK reads it, else the public API. */
  baseURL?: string;
  timeoutMs?: number;
}

/**
 * The Messages parameters for a call, shared with the batch provider so live and batch send the same
 * request. The system block carries cache_control once it reaches the model's minimum cacheable
 * length (shorter blocks are not cached by the API anyway); JSON stages ask for structured output
 * where the model supports it, and the engine validates the answer with zod regardless.
 */
export function messageParams(call: ProviderCall, model: string): MessageCreateParamsNonStreaming {
  const info = prices(model);
  // Unknown (newer) models: assume what the API offers and the largest known cache minimum.
  const minCacheable = info?.minCacheableTokens ?? 4096;
  const structured = info?.structuredOutputs ?? CAPABILITIES.structuredOutput;
  const system: TextBlockParam[] = [{ type: "text", text: call.system }];
  if (estimateTextTokens(call.system) >= minCacheable) system[0]!.cache_control = { type: "ephemeral" };
  const params: MessageCreateParamsNonStreaming = {
    model,
    max_tokens: call.maxTokens,
    system: call.system ? system : undefined,
    messages: call.messages.map((m) => ({ role: m.role, content: m.content })),
  };
  if (call.jsonSchema && structured) params.output_config = { format: { type: "json_schema", schema: call.jsonSchema } };
  return params;
}

/** The SDK's answer as the engine sees it. */
export function toAnswer(message: Anthropic.Message): ProviderAnswer {
  const text = message.content.map((b) => (b.type === "text" ? b.text : "")).join("");
  const stop: StopKind =
    message.stop_reason === "refusal"
      ? "refusal"
      : message.stop_reason === "max_tokens" || message.stop_reason === "model_context_window_exceeded"
        ? "max_tokens"
        : "end";
  const u = message.usage;
  return {
    text,
    stop,
    usage: {
      inputTokens: u.input_tokens,
      outputTokens: u.output_tokens,
      cacheReadTokens: u.cache_read_input_tokens ?? 0,
      cacheWriteTokens: u.cache_creation_input_tokens ?? 0,
    },
  };
}

/** anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}. */
export function anthropicRateLimits(headers: Headers | undefined): RateLimitReading | undefined {
  if (!headers) return undefined;
  let reading: RateLimitReading | undefined;
  for (const [name, slot] of [["requests", "requests"], ["input-tokens", "input"], ["output-tokens", "output"]] as const) {
    const rawLimit = headers.get(`anthropic-ratelimit-${name}-limit`);
    const limit = Number(rawLimit);
    if (rawLimit === null || !Number.isFinite(limit) || limit <= 0) continue;
    const rawRemaining = headers.get(`anthropic-ratelimit-${name}-remaining`);
    const remaining = Number(rawRemaining);
    // The reset header is an RFC 3339 time at which the bucket is full again.
    const reset = Date.parse(headers.get(`anthropic-ratelimit-${name}-reset`) ?? "");
    (reading ??= {})[slot] = {
      limit,
      remaining: rawRemaining !== null && Number.isFinite(remaining) ? remaining : undefined,
      resetInMs: Number.isFinite(reset) ? Math.max(0, reset - Date.now()) : undefined,
    };
  }
  return reading;
}

/** The SDK's error classes as the engine's ProviderError; anything else is passed on as it is. */
export function anthropicError(e: unknown): unknown {
  if (e instanceof APIUserAbortError) return new ProviderError("aborted", e.message, { cause: e });
  if (e instanceof APIConnectionTimeoutError) return new ProviderError("timeout", e.message, { cause: e });
  if (e instanceof APIConnectionError) return new ProviderError("connection", connectionMessage(e), { cause: e });
  if (e instanceof APIError && typeof e.status === "number") {
    const headers = e.headers instanceof Headers ? e.headers : undefined;
    return ProviderError.fromStatus(e.status, e.message, { retryAfterMs: retryAfterMs(headers), limits: anthropicRateLimits(headers), cause: e });
  }
  return e;
}

export class AnthropicProvider implements LiveProvider {
  readonly model: string;
  private readonly client: Anthropic;

  constructor(options: AnthropicOptions) {
    this.model = options.model;
    this.client = new Anthropic({
      apiKey: options.apiKey,
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
      timeout: options.timeoutMs ?? 120_000,
      // The engine retries 429/529/5xx/timeouts itself: the SDK would sleep inside one call where the
      // shared rate gate cannot see it, so one 429's retry-after would not pause the other workers,
      // retries would escape the requests-per-minute budget, and the summary could not count them.
      maxRetries: 0,
    });
  }

  async call(call: ProviderCall, signal?: AbortSignal): Promise<ProviderAnswer> {
    try {
      const { data, response } = await this.client.messages.create(messageParams(call, this.model), { signal }).withResponse();
      return { ...toAnswer(data), limits: anthropicRateLimits(response.headers) };
    } catch (e) {
      throw anthropicError(e);
    }
  }

  async countTokens(call: ProviderCall): Promise<number> {
    const p = messageParams(call, this.model);
    try {
      const r = await this.client.messages.countTokens({
        model: p.model,
        messages: p.messages,
        ...(p.system ? { system: p.system } : {}),
        ...(p.output_config ? { output_config: p.output_config } : {}),
      });
      return r.input_tokens;
    } catch (e) {
      throw anthropicError(e);
    }
  }
}

/** The live client for a run; checks the key before anything is sent. */
export function createAnthropicProvider(setup: ProviderSetup): AnthropicProvider {
  return new AnthropicProvider({
    apiKey: resolveApiKey(anthropicSpec, setup.config, setup.env)!,
    model: setup.model,
    baseURL: resolveBaseUrl(anthropicSpec, setup.config, setup.env),
    timeoutMs: setup.timeoutMs,
  });
}

export const anthropicSpec: LiveProviderSpec = {
  name: "anthropic",
  // Live and batch Claude answers are the same answers: one family, one store.
  family: FAMILY,
  mode: "live",
  key: { env: "ANTHROPIC_API_KEY", required: true },
  defaultModel: "claude-haiku-4-5",
  baseUrl: { env: "ANTHROPIC_BASE_URL" },
  capabilities: CAPABILITIES,
  paid: true,
  price: prices,
  tokenCounter: createAnthropicProvider,
  create: createAnthropicProvider,
};
