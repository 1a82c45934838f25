// Chat completions at a configured base URL: vLLM, Ollama (/v1), llama.cpp server, OpenAI.
// Plain fetch, no SDK: the servers differ in what they accept, and the request is one POST.
// HTTP failures are thrown as the Anthropic SDK's own error classes (status + headers), so the
// engine's one retry policy (429 with retry-after, 5xx, timeouts: retry; 400/401/403: stop) covers
// this provider unchanged.
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import { UsageError, UserError } from "../cli/command.js";
import type { EngineConfig } from "../engine/config.js";
import type { Usage } from "../engine/types.js";
import type { LiveProvider, ProviderAnswer, ProviderCall, StopKind } from "./types.js";

export const OPENAI_DEFAULT_KEY_ENV = "OPENAI_API_KEY";
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
}

interface ChatCompletion {
  choices?: { message?: { content?: string | null; refusal?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null };
}

export class OpenAiCompatibleProvider implements LiveProvider {
  readonly name = "openai-compatible" as const;
  readonly model: string;
  private readonly endpoint: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private schemaMode: SchemaMode = "strict";
  /** OpenAI's newer models reject `max_tokens`; learned from the first 400 that says so. */
  private tokenField: "max_tokens" | "max_completion_tokens" = "max_tokens";

  constructor(options: OpenAiCompatibleOptions) {
    this.model = options.model;
    this.endpoint = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`;
    this.apiKey = options.apiKey || undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
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
        if (!(e instanceof APIError) || (e.status !== 400 && e.status !== 422)) throw e;
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

  private async post(call: ProviderCall, mode: SchemaMode, tokenField: string, signal?: AbortSignal): Promise<ProviderAnswer> {
    const system =
      call.jsonSchema && mode === "prompt"
        ? `${call.system}\n\nAnswer with one JSON object only, no prose and no code fence, matching this JSON Schema:\n${JSON.stringify(call.jsonSchema)}`
        : call.system;
    const body: Record<string, unknown> = {
      model: this.model,
      messages: [{ role: "system", content: system }, ...call.messages],
      [tokenField]: call.maxTokens,
    };
    if (call.jsonSchema && mode !== "prompt") {
      body.response_format = { type: "json_schema", json_schema: { name: "answer", schema: call.jsonSchema, strict: mode === "strict" } };
    }
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
      if (signal?.aborted) throw new APIUserAbortError();
      if (timeout.aborted) throw new APIConnectionTimeoutError({ message: `${this.endpoint}: no answer within ${this.timeoutMs} ms` });
      throw new APIConnectionError({ message: this.scrub(`${this.endpoint}: ${(e as Error).message}`), cause: e as Error });
    }

    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const message = this.scrub(json === undefined ? raw.slice(0, 500) : JSON.stringify(json));
      throw APIError.generate(response.status, json === undefined || json === null ? undefined : (scrubBody(json, this.apiKey) as object), message, response.headers);
    }
    const completion = json as ChatCompletion | undefined;
    const choice = completion?.choices?.[0];
    if (!choice?.message) {
      // A 200 whose body is not a chat completion: a proxy or a server fault, worth another try.
      throw new APIConnectionError({ message: `${this.endpoint}: malformed response body (${raw.slice(0, 120)})` });
    }
    return {
      text: choice.message.refusal ?? choice.message.content ?? "",
      stop: stopKind(choice.finish_reason, choice.message.refusal),
      usage: usageOf(completion),
    };
  }

  /** Servers echo parts of a bad key in their 401 text; the key itself never leaves this object. */
  private scrub(text: string): string {
    return this.apiKey ? text.split(this.apiKey).join("[redacted]") : text;
  }
}

function scrubBody(body: unknown, key: string | undefined): unknown {
  if (!key) return body;
  return JSON.parse(JSON.stringify(body).split(key).join("[redacted]"));
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
export function createOpenAiCompatibleProvider(
  config: EngineConfig,
  env: NodeJS.ProcessEnv,
  hooks: { timeoutMs?: number } = {},
): OpenAiCompatibleProvider {
  const baseUrl = config["base-url"];
  if (!baseUrl) {
    throw new UsageError("--provider openai-compatible needs --base-url, e.g. http://127.0.0.1:8000/v1 (vLLM) or http://127.0.0.1:11434/v1 (Ollama)");
  }
  if (!config.model) {
    throw new UsageError("--provider openai-compatible needs --model: the model name the server serves (e.g. the vLLM --served-model-name)");
  }
  const keyEnv = config["api-key-env"] ?? OPENAI_DEFAULT_KEY_ENV;
  const apiKey = env[keyEnv];
  // A named variable that is unset is a mistake worth stopping for; the default one is optional.
  if (config["api-key-env"] && !apiKey) {
    throw new UserError(`--api-key-env ${keyEnv}: the environment variable ${keyEnv} is not set`, 2);
  }
  return new OpenAiCompatibleProvider({ baseUrl, model: config.model, apiKey, timeoutMs: hooks.timeoutMs });
}
