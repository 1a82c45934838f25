// Chat completions at a configured base URL: vLLM, Ollama (/v1), llama.cpp server, OpenAI.
// Plain fetch, no SDK: the servers differ in what they accept, and the request is one POST.
// HTTP failures are thrown as ProviderError (status, retry-after), so the engine's one retry policy
// (429 with retry-after, 5xx, timeouts: retry; 400/401/403: stop) covers this provider unchanged.
import { UsageError } from "../cli/command.js";
import { modelInfo } from "../engine/cost.js";
import type { EngineConfig } from "../engine/config.js";
import type { Usage } from "../engine/types.js";
import { ProviderError, retryAfterMs } from "./errors.js";
import { resolveApiKey, resolveBaseUrl } from "./setup.js";
import type { LiveProvider, LiveProviderSpec, ProviderAnswer, ProviderCall, RateLimitReading, StopKind } from "./types.js";
const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * How structured output is asked for. A server that rejects one form is asked with the next, and the
 * provider remembers the form that worked: `strict` json_schema (OpenAI, vLLM, llama.cpp, Ollama ≥ 0.5),
 * then non-strict (OpenAI rejects strict for schemas outside its subset), then the schema stated in
 * the system prompt. The answer is validated by the stage either way.
 */
export type SchemaMode = "strict" | "loose" | "prompt";
const NEXT_MODE: Record<SchemaMode, SchemaMode | undefined> = { strict: "loose", loose: "prompt", prompt: undefined };

export interface OpenAiCompatibleOptions {
  baseUrl: string;
  model: string;
  /** Optional: local servers usually need none. */
  apiKey?: string;
  timeoutMs?: number;
  /** Reads the server's rate-limit headers, where it sends any (OpenAI's x-ratelimit-*). */
  rateLimits?(headers: Headers): RateLimitReading | undefined;
}

/** A chat completion as far as an answer needs it (also each line of a batch's output file). */
export interface ChatCompletion {
  choices?: { message?: { content?: string | null; refusal?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null };
}

/** The /chat/completions request body for a call, with structured output asked for in `mode`. */
export function chatCompletionBody(
  call: ProviderCall,
  model: string,
  mode: SchemaMode = "strict",
  tokenField: "max_tokens" | "max_completion_tokens" = "max_tokens",
): Record<string, unknown> {
  const system =
    call.jsonSchema && mode === "prompt"
      ? `${call.system}\n\nAnswer with one JSON object only, no prose and no code fence, matching this JSON Schema:\n${JSON.stringify(call.jsonSchema)}`
      : call.system;
  const body: Record<string, unknown> = {
    model,
    messages: [{ role: "system", content: system }, ...call.messages],
    [tokenField]: call.maxTokens,
  };
  if (call.jsonSchema && mode !== "prompt") {
    body.response_format = { type: "json_schema", json_schema: { name: "answer", schema: call.jsonSchema, strict: mode === "strict" } };
  }
  return body;
}

/** A chat completion as the engine's answer; undefined when the body is not one. */
export function chatAnswer(completion: ChatCompletion | undefined): ProviderAnswer | undefined {
  const choice = completion?.choices?.[0];
  if (!choice?.message) return undefined;
  return {
    text: choice.message.refusal ?? choice.message.content ?? "",
    stop: stopKind(choice.finish_reason, choice.message.refusal),
    usage: usageOf(completion),
  };
}

export class OpenAiCompatibleProvider implements LiveProvider {
  readonly model: string;
  private readonly endpoint: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly rateLimits: (headers: Headers) => RateLimitReading | undefined;
  private schemaMode: SchemaMode = "strict";
  /** OpenAI's newer models reject `max_tokens`; learned from the first 400 that says so. */
  private tokenField: "max_tokens" | "max_completion_tokens" = "max_tokens";

  constructor(options: OpenAiCompatibleOptions) {
    this.model = options.model;
    this.endpoint = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`;
    this.apiKey = options.apiKey || undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.rateLimits = options.rateLimits ?? (() => undefined);
  }

  /** The structured-output form currently used (for tests and the run summary). */
  get structuredOutput(): SchemaMode {
    return this.schemaMode;
  }

  async call(call: ProviderCall, signal?: AbortSignal): Promise<ProviderAnswer> {
    for (;;) {
      const mode = this.schemaMode;
      const tokenField = this.tokenField;
      try {
        return await this.post(call, mode, tokenField, signal);
      } catch (e) {
        if (!(e instanceof ProviderError) || (e.status !== 400 && e.status !== 422)) throw e;
        const text = `${e.message}`;
        if (call.jsonSchema && rejectsResponseFormat(text) && NEXT_MODE[mode]) {
          // Another call may have stepped down already; never step back up.
          if (this.schemaMode === mode) this.schemaMode = NEXT_MODE[mode]!;
          continue;
        }
        if (tokenField === "max_tokens" && /max_completion_tokens/.test(text)) {
          this.tokenField = "max_completion_tokens";
          continue;
        }
        throw e;
      }
    }
  }

  private async post(call: ProviderCall, mode: SchemaMode, tokenField: "max_tokens" | "max_completion_tokens", signal?: AbortSignal): Promise<ProviderAnswer> {
    const body = chatCompletionBody(call, this.model, mode, tokenField);
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;

    const timeout = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    let raw: string;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      raw = await response.text();
    } catch (e) {
      if (signal?.aborted) throw new ProviderError("aborted", "request aborted", { cause: e });
      if (timeout.aborted) throw new ProviderError("timeout", `${this.endpoint}: no answer within ${this.timeoutMs} ms`, { cause: e });
      throw new ProviderError("connection", this.scrub(`${this.endpoint}: ${(e as Error).message}`), { cause: e });
    }

    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const message = this.scrub(errorText(json) ?? raw.slice(0, 500));
      const limits = this.rateLimits(response.headers);
      throw ProviderError.fromStatus(response.status, `${response.status} ${message}`, { retryAfterMs: retryAfterMs(response.headers), limits });
    }
    const answer = chatAnswer(json as ChatCompletion | undefined);
    // A 200 whose body is not a chat completion: a proxy or a server fault, worth another try.
    if (!answer) throw new ProviderError("malformed", this.scrub(`${this.endpoint}: malformed response body (${raw.slice(0, 120)})`));
    return { ...answer, limits: this.rateLimits(response.headers) };
  }

  /** Servers echo parts of a bad key in their 401 text; the key itself never leaves this object. */
  private scrub(text: string): string {
    return this.apiKey ? text.split(this.apiKey).join("[redacted]") : text;
  }
}

/** An error body's text: its `message` where the server puts one at the top (vLLM), else the whole body (OpenAI). */
function errorText(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  const message = (body as { message?: unknown }).message;
  if (message) return typeof message === "string" ? message : JSON.stringify(message);
  return JSON.stringify(body);
}

function rejectsResponseFormat(text: string): boolean {
  return /response_format|json_schema|json schema|strict|schema/i.test(text);
}

function stopKind(finish: string | null | undefined, refusal: string | null | undefined): StopKind {
  if (refusal) return "refusal";
  if (finish === "length") return "max_tokens";
  if (finish === "content_filter") return "refusal";
  return "end";
}

function usageOf(completion: ChatCompletion | undefined): Usage {
  const prompt = completion?.usage?.prompt_tokens ?? 0;
  const cached = Math.min(prompt, completion?.usage?.prompt_tokens_details?.cached_tokens ?? 0);
  // OpenAI counts cached tokens inside prompt_tokens; Usage keeps them apart as the Anthropic API does.
  return { inputTokens: prompt - cached, outputTokens: completion?.usage?.completion_tokens ?? 0, cacheReadTokens: cached, cacheWriteTokens: 0 };
}

/** Builds the provider from the engine config; the key is read from the environment only. */
export function createOpenAiCompatibleProvider(config: EngineConfig, env: NodeJS.ProcessEnv, hooks: { timeoutMs?: number } = {}): OpenAiCompatibleProvider {
  const baseUrl = resolveBaseUrl(openAiCompatibleSpec, config, env)!;
  if (!config.model) {
    throw new UsageError("--provider openai-compatible needs --model: the model name the server serves (e.g. the vLLM --served-model-name)");
  }
  const apiKey = resolveApiKey(openAiCompatibleSpec, config, env);
  return new OpenAiCompatibleProvider({ baseUrl, model: config.model, apiKey, timeoutMs: hooks.timeoutMs });
}

export const openAiCompatibleSpec: LiveProviderSpec = {
  name: "openai-compatible",
  family: "openai-compatible",
  mode: "live",
  // Local servers usually need none; OpenAI's own API reads this variable.
  key: { env: "OPENAI_API_KEY", required: false },
  baseUrl: { required: { example: "e.g. http://127.0.0.1:8000/v1 (vLLM) or http://127.0.0.1:11434/v1 (Ollama)" } },
  capabilities: { structuredOutput: true, promptCaching: true },
  // Mostly local servers: a model without a price is expected, not worth a note.
  paid: false,
  price: modelInfo,
  create: (setup) => createOpenAiCompatibleProvider(setup.config, setup.env, { timeoutMs: setup.timeoutMs }),
};
