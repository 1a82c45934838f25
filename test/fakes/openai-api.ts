// An in-process OpenAI-compatible chat-completions server on 127.0.0.1 for tests: realistic bodies and
// usage, optional latency, injectable faults, and a mode that rejects `response_format` the way
// servers without structured output do. It records every request it receives so tests can count them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { EventEmitter } from "node:events";
import { closeServer, listenOnLoopback } from "../helpers/loopback-server.js";

export interface FakeChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  max_tokens?: number;
  max_completion_tokens?: number;
  response_format?: { type: string; json_schema?: { name: string; schema: unknown; strict?: boolean } };
  [k: string]: unknown;
}

export type OpenAiFault =
  | { kind: "429"; retryAfterSeconds?: number }
  | { kind: "500" }
  | { kind: "503" }
  | { kind: "400" }
  | { kind: "401" }
  /** 200 with a body that is not JSON. */
  | { kind: "malformed" }
  /** The answer cut off at max_tokens: finish_reason "length". */
  | { kind: "length" }
  | { kind: "refusal" }
  /** 200 with this content instead of the normal answer (e.g. schema-invalid JSON). */
  | { kind: "content"; content: string };

export interface OpenAiFakeOptions {
  /** The assistant content for a request (default: a JSON echo of the last user message). */
  answer?: (req: FakeChatRequest) => string;
  latencyMs?: number;
  /** Answer 400 to any request carrying `response_format` (a server without structured output). */
  rejectResponseFormat?: boolean;
  /** The same, with a bare "Bad Request" text body that names nothing (as some servers answer). */
  rejectResponseFormatBare?: boolean;
  /** Answer 400 to `response_format.json_schema.strict: true` only (OpenAI with a schema outside its subset). */
  rejectStrict?: boolean;
  /** Answer 400 to `max_tokens`, as OpenAI's reasoning models do (they take `max_completion_tokens`). */
  rejectMaxTokens?: boolean;
  /** When set, requests without `Authorization: Bearer <key>` get 401. */
  requireKey?: string;
  /** Decides a fault for the n-th request (0-based); queued faults are used first. */
  fault?: (req: FakeChatRequest, n: number) => OpenAiFault | undefined;
  /** Per-minute budgets advertised in OpenAI's x-ratelimit-* headers on every answer. */
  rateLimits?: { requests: number; tokens: number };
  /** Report the first write of a cacheable prefix as prompt_tokens_details.cache_write_tokens (newer OpenAI models bill it). */
  reportCacheWrites?: boolean;
  /** Chat requests from this one on (0-based) wait, unanswered, until releaseAnswers(): requests in flight on demand. */
  holdFrom?: number;
}

export interface ReceivedChat {
  body: FakeChatRequest;
  authorization: string | undefined;
  /** What the fake did: "ok" or the fault kind. */
  outcome: string;
}

/** A route added to the fake (the Batch API's files and batches); `body` is the raw request body. */
export type FakeRoute = (req: IncomingMessage, body: Buffer, res: ServerResponse, match: RegExpExecArray) => void | Promise<void>;

export interface OpenAiFake {
  /** Base URL including /v1, as users pass it to --base-url. */
  baseUrl: string;
  received: ReceivedChat[];
  /** Emits "request" (ReceivedChat) after each answer is sent. */
  events: EventEmitter;
  queueFaults(...faults: OpenAiFault[]): void;
  /** Answers the held requests and stops holding. */
  releaseAnswers(): void;
  /** Chat requests received and not answered yet (held). */
  readonly waiting: number;
  /** The chat completion the fake answers to a body (no HTTP, no fault but the one given): batches use it. */
  completion(body: FakeChatRequest, fault?: OpenAiFault): Record<string, unknown>;
  /** Sends a JSON answer with the fake's headers. */
  json(res: ServerResponse, status: number, body: unknown): void;
  /** An OpenAI-style error answer. */
  error(res: ServerResponse, status: number, message: string, type: string): void;
  addRoute(method: string, path: RegExp, route: FakeRoute): void;
  /** Before the end of the test, which closes it anyway. */
  close(): Promise<void>;
}

const estimateTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

/** Starts a fake on 127.0.0.1:0, closed after the test that starts it. */
export async function startOpenAiFake(options: OpenAiFakeOptions = {}): Promise<OpenAiFake> {
  const received: ReceivedChat[] = [];
  const queued: OpenAiFault[] = [];
  const events = new EventEmitter();
  const seenPrefixes = new Set<string>();
  let n = 0;
  let completions = 0;
  let holding = options.holdFrom !== undefined;
  let waiting = 0;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));

  const answer =
    options.answer ??
    ((req: FakeChatRequest) => JSON.stringify({ echo: [...req.messages].reverse().find((m) => m.role === "user")?.content ?? "" }));

  let tokensUsed = 0;
  /** OpenAI's spelling: a budget per minute, what is left of it, and how long until it is full again. */
  const limitHeaders = (): Record<string, string> => {
    const l = options.rateLimits;
    if (!l) return {};
    return {
      "x-ratelimit-limit-requests": String(l.requests),
      "x-ratelimit-remaining-requests": String(Math.max(0, l.requests - n)),
      "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-limit-tokens": String(l.tokens),
      "x-ratelimit-remaining-tokens": String(Math.max(0, l.tokens - tokensUsed)),
      "x-ratelimit-reset-tokens": "6m0s",
    };
  };
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", "x-request-id": `req_${n}`, ...limitHeaders(), ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, message: string, type: string, param: string | null = null, headers: Record<string, string> = {}) =>
    send(res, status, { error: { message, type, param, code: null } }, headers);

  const routes: { method: string; path: RegExp; route: FakeRoute }[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = (req.url ?? "").split("?")[0]!;
    for (const r of routes) {
      const match = r.method === req.method ? r.path.exec(path) : null;
      if (!match) continue;
      // The API's own routes want the key; the fake's own (/_fake/...) do not.
      if (options.requireKey && path.startsWith("/v1/") && req.headers.authorization !== `Bearer ${options.requireKey}`) {
        return error(res, 401, "Incorrect API key provided", "invalid_request_error");
      }
      return r.route(req, Buffer.concat(chunks), res, match);
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      return error(res, 404, `no route ${req.method} ${req.url}`, "not_found_error");
    }
    let body: FakeChatRequest;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as FakeChatRequest;
    } catch {
      return error(res, 400, "request body is not JSON", "invalid_request_error");
    }
    const index = n++;
    const record: ReceivedChat = { body, authorization: req.headers.authorization, outcome: "ok" };
    received.push(record);
    const done = () => events.emit("request", record);
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
    if (holding && index >= (options.holdFrom ?? 0)) {
      waiting++;
      events.emit("held", waiting);
      await released;
      waiting--;
    }

    if (options.requireKey && req.headers.authorization !== `Bearer ${options.requireKey}`) {
      record.outcome = "401";
      // Some proxies echo the bad token back; the client must not pass it on.
      error(res, 401, `Incorrect API key provided: ${req.headers.authorization?.replace(/^Bearer /, "") ?? "(none)"}`, "invalid_request_error");
      return done();
    }
    if (body.max_tokens !== undefined && options.rejectMaxTokens) {
      record.outcome = "rejected-max-tokens";
      error(res, 400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "invalid_request_error", "max_tokens");
      return done();
    }
    if (body.response_format && options.rejectResponseFormat) {
      record.outcome = "rejected-response-format";
      error(res, 400, "response_format is not supported by this server", "invalid_request_error", "response_format");
      return done();
    }
    if (body.response_format && options.rejectResponseFormatBare) {
      record.outcome = "rejected-response-format";
      res.writeHead(400, { "content-type": "text/plain" });
      res.end("Bad Request");
      return done();
    }
    if (body.response_format?.json_schema?.strict && options.rejectStrict) {
      record.outcome = "rejected-strict";
      error(res, 400, "Invalid schema for response_format 'answer': In context=(), 'additionalProperties' is required to be supplied and to be false.", "invalid_request_error", "response_format");
      return done();
    }

    const fault = queued.shift() ?? options.fault?.(body, index);
    record.outcome = fault?.kind ?? "ok";
    switch (fault?.kind) {
      case "429":
        error(res, 429, "Rate limit reached for requests", "requests", null, { "retry-after": String(fault.retryAfterSeconds ?? 1) });
        return done();
      case "500":
        error(res, 500, "The server had an error while processing your request.", "server_error");
        return done();
      case "503":
        error(res, 503, "The engine is currently overloaded, please try again later", "server_error");
        return done();
      case "400":
        error(res, 400, "This model's maximum context length is 8192 tokens.", "invalid_request_error", "messages");
        return done();
      case "401":
        error(res, 401, "Incorrect API key provided", "invalid_request_error");
        return done();
      case "malformed":
        send(res, 200, '{"id":"chatcmpl-broken","choices":[{"message":');
        return done();
    }

    const answered = completion(body, fault);
    // The budget counts this answer's own tokens before the headers go out, as OpenAI's does.
    tokensUsed += (answered.usage as { total_tokens: number }).total_tokens;
    send(res, 200, answered);
    done();
  }

  function completion(body: FakeChatRequest, fault?: OpenAiFault): Record<string, unknown> {
    const index = completions++;
    const prompt = body.messages.map((m) => m.content).join("\n");
    const promptTokens = estimateTokens(prompt) + 3 * body.messages.length;
    // OpenAI-style automatic prefix caching: a repeated system prompt of ≥ 1024 tokens is read from cache.
    const system = body.messages.find((m) => m.role === "system")?.content ?? "";
    const systemTokens = estimateTokens(system);
    const cacheable = systemTokens >= 1024 ? Math.floor(systemTokens / 128) * 128 : 0;
    const cached = seenPrefixes.has(system) ? cacheable : 0;
    const written = options.reportCacheWrites && !seenPrefixes.has(system) ? cacheable : 0;
    seenPrefixes.add(system);

    let content: string | null = fault?.kind === "content" ? fault.content : answer(body);
    let refusal: string | null = null;
    let finish = "stop";
    if (fault?.kind === "refusal") {
      refusal = "I'm sorry, I can't help with that request.";
      content = null;
    }
    const limit = body.max_completion_tokens ?? body.max_tokens ?? 4096;
    if (fault?.kind === "length" || (content && estimateTokens(content) > limit)) {
      content = (content ?? "").slice(0, Math.max(1, Math.floor(Math.min(limit * 4, (content ?? "").length / 2))));
      finish = "length";
    }
    const completionTokens = estimateTokens(refusal ?? content ?? "");
    return {
      id: `chatcmpl-${index}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      system_fingerprint: "fp_fake",
      choices: [{ index: 0, message: { role: "assistant", content, refusal }, logprobs: null, finish_reason: finish }],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0, ...(options.reportCacheWrites ? { cache_write_tokens: written } : {}) },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
    };
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) error(res, 500, String(e), "server_error");
    });
  });
  const port = await listenOnLoopback(server);
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    received,
    events,
    queueFaults: (...faults) => queued.push(...faults),
    releaseAnswers: () => {
      holding = false;
      release();
    },
    get waiting() {
      return waiting;
    },
    completion,
    json: (res, status, body) => send(res, status, body),
    error: (res, status, message, type) => error(res, status, message, type),
    addRoute: (method, path, route) => routes.push({ method, path, route }),
    close: () => closeServer(server),
  };
}
