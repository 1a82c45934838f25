// The chat-completions API in one place: how a call is spelled as a request body, how an answer (a
// live response, or a line of a batch output file) is read back, OpenAI's rate-limit headers, and
// the HTTP transport (key, timeout, failures as ProviderError, the key scrubbed from every message).
// Plain fetch, no SDK: the servers behind --provider openai-compatible differ in what they accept,
// and the same few requests serve OpenAI's live and Batch APIs. The openai, openai-batch and
// openai-compatible specs are thin files over this one.
import type { Usage } from "../engine/types.js";
import { connectionMessage, ProviderError, retryAfterMs } from "./errors.js";
import type { BudgetReading, LiveProvider, ProviderAnswer, ProviderCall, RateLimitReading, StopKind } from "./types.js";

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * How a JSON stage's schema travels: `strict` json_schema response format (OpenAI, vLLM, llama.cpp,
 * Ollama ≥ 0.5), non-strict (OpenAI rejects strict for schemas outside its subset), JSON mode
 * (`json_object`) with the schema stated in the system prompt, or the prompt alone. The stage
 * validates the answer in every form.
 */
export type SchemaForm = "strict" | "loose" | "json" | "prompt";

/** --structured-output: a form to insist on, or `auto` (strict, stepping down while the server refuses it). */
export const STRUCTURED_OUTPUT_MODES = ["auto", "schema", "json", "prompt"] as const;
export type StructuredOutputMode = (typeof STRUCTURED_OUTPUT_MODES)[number];

/** The form a mode asks with first. */
export function firstForm(mode: StructuredOutputMode): SchemaForm {
  return mode === "auto" || mode === "schema" ? "strict" : mode;
}

/** The name of the output limit: OpenAI's own API wants max_completion_tokens; many servers know only max_tokens. */
export type TokenField = "max_tokens" | "max_completion_tokens";

export interface ChatBodyOptions {
  model: string;
  form: SchemaForm;
  tokenField: TokenField;
  /** Fields every request carries (OpenAI: reasoning_effort). */
  extra?: Record<string, unknown>;
}

/** The request body for a call: system message first, then the conversation. */
export function chatBody(call: ProviderCall, o: ChatBodyOptions): Record<string, unknown> {
  const system =
    call.jsonSchema && (o.form === "prompt" || o.form === "json")
      ? `${call.system}\n\nAnswer with one JSON object only, no prose and no code fence, matching this JSON Schema:\n${JSON.stringify(call.jsonSchema)}`
      : call.system;
  const body: Record<string, unknown> = {
    model: o.model,
    messages: [{ role: "system", content: system }, ...call.messages],
    [o.tokenField]: call.maxTokens,
    ...o.extra,
  };
  if (call.jsonSchema && (o.form === "strict" || o.form === "loose")) {
    body.response_format = { type: "json_schema", json_schema: { name: "answer", schema: call.jsonSchema, strict: o.form === "strict" } };
  } else if (call.jsonSchema && o.form === "json") body.response_format = { type: "json_object" };
  return body;
}

interface ChatCompletion {
  choices?: { message?: { content?: string | null; refusal?: string | null }; finish_reason?: string | null }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null;
  };
}

/** A chat completion as the engine sees it; undefined when the body is not one. */
export function readCompletion(body: unknown): Omit<ProviderAnswer, "limits"> | undefined {
  const completion = body as ChatCompletion | undefined;
  const choice = completion?.choices?.[0];
  if (!choice?.message) return undefined;
  return {
    text: choice.message.refusal ?? choice.message.content ?? "",
    stop: stopKind(choice.finish_reason, choice.message.refusal),
    usage: usageOf(completion),
  };
}

function stopKind(finish: string | null | undefined, refusal: string | null | undefined): StopKind {
  if (refusal) return "refusal";
  if (finish === "length") return "max_tokens";
  if (finish === "content_filter") return "refusal";
  return "end";
}

function usageOf(completion: ChatCompletion | undefined): Usage {
  const u = completion?.usage;
  const prompt = u?.prompt_tokens ?? 0;
  // prompt_tokens includes the cached tokens (and, where the API reports them, the tokens written to
  // the cache); Usage keeps each kind apart, as the Anthropic API does, so each is priced at its rate.
  const cached = Math.min(prompt, u?.prompt_tokens_details?.cached_tokens ?? 0);
  const written = Math.min(prompt - cached, u?.prompt_tokens_details?.cache_write_tokens ?? 0);
  return { inputTokens: prompt - cached - written, outputTokens: u?.completion_tokens ?? 0, cacheReadTokens: cached, cacheWriteTokens: written };
}

/** "6m0s", "1.5s", "20ms", "1h2m3s" → milliseconds. */
export function durationMs(text: string | null): number | undefined {
  if (!text) return undefined;
  let ms = 0;
  let matched = "";
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
    matched += m[0];
  }
  return matched === text.trim() && matched ? ms : undefined;
}

/** x-ratelimit-{limit,remaining,reset}-{requests,tokens}; OpenAI's one token budget counts input and output together. */
export function openAiRateLimits(headers: Headers | undefined): RateLimitReading | undefined {
  if (!headers) return undefined;
  let reading: RateLimitReading | undefined;
  for (const [name, slot] of [["requests", "requests"], ["tokens", "tokens"]] as const) {
    const rawLimit = headers.get(`x-ratelimit-limit-${name}`);
    const limit = Number(rawLimit);
    if (rawLimit === null || !Number.isFinite(limit) || limit <= 0) continue;
    const rawRemaining = headers.get(`x-ratelimit-remaining-${name}`);
    const remaining = Number(rawRemaining);
    const budget: BudgetReading = {
      limit,
      remaining: rawRemaining !== null && Number.isFinite(remaining) ? remaining : undefined,
      // The reset header says how long until the budget is full again.
      resetInMs: durationMs(headers.get(`x-ratelimit-reset-${name}`)),
    };
    (reading ??= {})[slot] = budget;
  }
  return reading;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, undefined when it is not JSON. */
  json: unknown;
}

export interface ApiOptions {
  baseUrl: string;
  /** Optional: local servers usually need none. */
  apiKey?: string;
  timeoutMs?: number;
}

/** An error body's text: its `message` where the server puts one at the top (vLLM), else the whole body (OpenAI). */
function errorText(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  const message = (body as { message?: unknown }).message;
  if (message) return typeof message === "string" ? message : JSON.stringify(message);
  return JSON.stringify(body);
}

/** Requests to an OpenAI-style API: bearer key, a timeout per request, every failure a ProviderError. */
export class OpenAiApi {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  readonly timeoutMs: number;

  constructor(options: ApiOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey || undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** A JSON body is sent as JSON, a FormData as multipart; a non-2xx answer throws with its status. */
  async request(method: "GET" | "POST", path: string, body?: unknown, signal?: AbortSignal): Promise<ApiResponse> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let payload: string | FormData | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { method, headers, body: payload, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      text = await response.text();
    } catch (e) {
      if (signal?.aborted) throw new ProviderError("aborted", "request aborted", { cause: e });
      if (timeout.aborted) throw new ProviderError("timeout", `${url}: no answer within ${this.timeoutMs} ms`, { cause: e });
      throw new ProviderError("connection", this.scrub(`${url}: ${connectionMessage(e)}`), { cause: e });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const message = this.scrub(errorText(json) ?? text.slice(0, 500));
      throw ProviderError.fromStatus(response.status, `${response.status} ${message}`, {
        retryAfterMs: retryAfterMs(response.headers),
        limits: openAiRateLimits(response.headers),
      });
    }
    return { status: response.status, headers: response.headers, text, json };
  }

  /** Servers echo parts of a bad key in their 401 text; the key itself never leaves this object. */
  scrub(text: string): string {
    return this.apiKey ? text.split(this.apiKey).join("[redacted]") : text;
  }
}

/** auto: where a refused form steps down to. A refusal that names the schema tries non-strict before the prompt. */
function nextForm(form: SchemaForm, message: string): SchemaForm | undefined {
  if (form === "strict" && /response_format|json_schema|json schema|strict|schema/i.test(message)) return "loose";
  return form === "prompt" ? undefined : "prompt";
}

export interface ChatProviderOptions {
  model: string;
  /** The output limit's name asked with first (a 400 naming max_completion_tokens switches to it). */
  tokenField: TokenField;
  extra?: Record<string, unknown>;
  structuredOutput?: StructuredOutputMode;
  /** Says once what the client changed on its own (a structured-output form the server refused). */
  note?(message: string): void;
}

/**
 * A live chat-completions client. One that is told max_tokens is refused switches to
 * max_completion_tokens. In `auto` mode a 400 or 422 before any answer came back — even a bare
 * "Bad Request", which is all some servers say — steps the schema form down (strict, non-strict,
 * the prompt), with a note; once an answer has come back, a 400 is the request's own fault.
 */
export class ChatCompletionsProvider implements LiveProvider {
  readonly model: string;
  private form: SchemaForm;
  private tokenField: TokenField;
  private answered = false;
  private readonly extra: Record<string, unknown> | undefined;
  private readonly mode: StructuredOutputMode;
  private readonly note: (message: string) => void;

  constructor(
    private readonly api: OpenAiApi,
    options: ChatProviderOptions,
  ) {
    this.model = options.model;
    this.tokenField = options.tokenField;
    this.extra = options.extra;
    this.mode = options.structuredOutput ?? "auto";
    this.form = firstForm(this.mode);
    this.note = options.note ?? (() => {});
  }

  /** The structured-output form currently used (for tests and the run summary). */
  get structuredOutput(): SchemaForm {
    return this.form;
  }

  async call(call: ProviderCall, signal?: AbortSignal): Promise<ProviderAnswer> {
    for (;;) {
      const form = this.form;
      const tokenField = this.tokenField;
      try {
        const response = await this.api.request("POST", "/chat/completions", chatBody(call, { model: this.model, form, tokenField, extra: this.extra }), signal);
        const answer = readCompletion(response.json);
        if (!answer) {
          // A 200 whose body is not a chat completion: a proxy or a server fault, worth another try.
          throw new ProviderError("malformed", this.api.scrub(`${this.api.baseUrl}/chat/completions: malformed response body (${response.text.slice(0, 120)})`));
        }
        this.answered = true;
        return { ...answer, limits: openAiRateLimits(response.headers) };
      } catch (e) {
        if (!(e instanceof ProviderError) || (e.status !== 400 && e.status !== 422)) throw e;
        if (tokenField === "max_tokens" && /max_completion_tokens/.test(e.message)) {
          this.tokenField = "max_completion_tokens";
          continue;
        }
        const next = call.jsonSchema && this.mode === "auto" && !this.answered ? nextForm(form, e.message) : undefined;
        if (!next) throw e;
        // Another call may have stepped down already; never step back up.
        if (this.form === form) {
          this.form = next;
          this.note(
            `note: ${this.api.baseUrl} refused the ${FORM_NAMES[form]} (${e.message.slice(0, 120)}); JSON stages now ask with ${FORM_NAMES[next]}` +
              ` (--structured-output prompt skips the attempt, --structured-output schema insists on the schema)`,
          );
        }
      }
    }
  }
}

const FORM_NAMES: Record<SchemaForm, string> = {
  strict: "strict json_schema response format",
  loose: "non-strict json_schema response format",
  json: "JSON mode",
  prompt: "the schema in the system prompt",
};
