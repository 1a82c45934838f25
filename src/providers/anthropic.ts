// Claude over the live Messages API, through the official SDK (its request building, timeouts and
// error classes). One call in, one raw answer out; retries, limits and validation are the engine's.
import Anthropic from "@anthropic-ai/sdk";
import type { MessageCreateParamsNonStreaming, TextBlockParam } from "@anthropic-ai/sdk/resources/messages/messages";
import { modelInfo } from "../engine/cost.js";
import { estimateTextTokens } from "../engine/tokens.js";
import type { LiveProvider, ProviderAnswer, ProviderCall, StopKind } from "./types.js";

export interface AnthropicOptions {
  apiKey: string;
  model: string;
  /** Default: ANTHROPIC_BASE_URL as the SDK reads it, else the public API. */
  baseURL?: string;
  timeoutMs?: number;
  /** Sees the headers of every successful answer (anthropic-ratelimit-*), for the engine's rate gate. */
  onHeaders?: (headers: Headers) => void;
}

/**
 * The Messages parameters for a call, shared with the batch provider so live and batch send the same
 * request. The system block carries cache_control once it reaches the model's minimum cacheable
 * length (shorter blocks are not cached by the API anyway); JSON stages ask for structured output
 * where the model supports it, and the engine validates the answer with zod regardless.
 */
export function messageParams(call: ProviderCall, model: string): MessageCreateParamsNonStreaming {
  const info = modelInfo(model);
  // Unknown (newer) models: assume structured outputs and the largest known cache minimum.
  const minCacheable = info?.minCacheableTokens ?? 4096;
  const structured = info?.structuredOutputs ?? true;
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

export class AnthropicProvider implements LiveProvider {
  readonly name = "anthropic" as const;
  readonly model: string;
  private readonly client: Anthropic;

  constructor(private readonly options: AnthropicOptions) {
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
    const { data, response } = await this.client.messages.create(messageParams(call, this.model), { signal }).withResponse();
    this.options.onHeaders?.(response.headers);
    return toAnswer(data);
  }

  async countTokens(call: ProviderCall): Promise<number> {
    const p = messageParams(call, this.model);
    const r = await this.client.messages.countTokens({
      model: p.model,
      messages: p.messages,
      ...(p.system ? { system: p.system } : {}),
      ...(p.output_config ? { output_config: p.output_config } : {}),
    });
    return r.input_tokens;
  }
}
