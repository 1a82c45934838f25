// An in-process fake of the Anthropic HTTP API on 127.0.0.1 for the REAL @anthropic-ai/sdk to talk to
// (baseURL = fake.url). It serves Messages and token counting with realistic bodies, usage numbers
// (cache reads/writes included) and anthropic-ratelimit-* headers, adds latency, injects faults, and
// logs every request so tests assert on what the server received, not on wall time.
// Other fakes (Message Batches) plug in through `addRoute` and share the log and the counters.
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, listenOnLoopback } from "../helpers/loopback-server.js";

/** What the fake was asked: the parsed body of POST /v1/messages (or count_tokens). */
export interface FakeMessageRequest {
  model: string;
  max_tokens?: number;
  system?: string | { type: "text"; text: string; cache_control?: unknown }[];
  messages: { role: "user" | "assistant"; content: string | { type: string; text?: string }[] }[];
  output_config?: { format?: { type: string; schema: Record<string, unknown> } | null };
  [k: string]: unknown;
}

/** An answer the `answer` callback may return instead of plain text. */
export interface FakeAnswer {
  text: string;
  stop_reason?: "end_turn" | "max_tokens" | "refusal";
}

export type Fault =
  | { type: "429"; retryAfterS?: number }
  | { type: "529" }
  | { type: "500" }
  | { type: "400"; message?: string }
  | { type: "401" }
  | { type: "403" }
  /** A 200 whose body is not JSON. */
  | { type: "malformed" }
  /** A 200 whose text fails the stage's schema. */
  | { type: "invalid"; text?: string }
  | { type: "refusal" }
  /** A 200 cut off at max_tokens: half the normal answer. */
  | { type: "truncated" }
  /** Answers after this many ms (use with a short client timeout). */
  | { type: "hang"; ms: number };

export interface FaultInfo {
  /** fakeKey of the request: stable per item (see `fakeKey`). */
  key: string;
  /** 1 for the first time this key reaches the server, 2 for the second, ... */
  n: number;
  /** Index of the request among all message requests, from 0. */
  index: number;
  body: FakeMessageRequest;
}

export interface LoggedRequest {
  method: string;
  path: string;
  /** performance.now() when the request arrived. */
  at: number;
  key?: string;
  status: number;
  body?: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export type RouteHandler = (
  req: IncomingMessage,
  body: unknown,
  res: ServerResponse,
  fake: FakeAnthropic,
) => void | Promise<void>;

export interface FakeAnthropicOptions {
  /** The answer text for a request (default: a JSON echo when a schema is given, else a sentence). */
  answer?: (body: FakeMessageRequest, info: FaultInfo) => string | FakeAnswer;
  /** A fault to serve instead of the answer, decided per request. */
  faults?: (info: FaultInfo) => Fault | undefined;
  /** Added before each messages response (ms), fixed or per request. */
  latencyMs?: number | ((info: FaultInfo) => number);
  /** When set, any other x-api-key gets 401. */
  apiKey?: string;
  /** Server-side limits: exceeding one answers 429 with retry-after, like the real API. */
  limits?: { rpm?: number; itpm?: number; otpm?: number };
  /** What each limit has left at start (default: a full minute's worth), as if other clients had used the key. */
  limitsLeft?: { rpm?: number; itpm?: number; otpm?: number };
  /** Send anthropic-ratelimit-* headers for those limits (default true; false mimics a plain proxy). */
  rateLimitHeaders?: boolean;
  /** Tokens a system block marked cache_control must reach to be cached (default 1024). */
  minCacheableTokens?: number;
  /** Extra routes, e.g. Message Batches; also addable later with addRoute. */
  routes?: { method: string; path: string | RegExp; handler: RouteHandler }[];
  /** Keep request bodies in the log (default true; the bench turns it off to save memory). */
  logBodies?: boolean;
}

/** A Messages API response body as the real API shapes it (also what a batch result's `message` holds). */
export function fakeMessage(
  id: string,
  model: string,
  answer: FakeAnswer,
  usage: { input: number; output: number; cacheRead?: number; cacheWrite?: number },
  serviceTier: "standard" | "batch" = "standard",
) {
  const cacheWrite = usage.cacheWrite ?? 0;
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: answer.text }],
    stop_reason: answer.stop_reason ?? "end_turn",
    stop_sequence: null,
    usage: {
      input_tokens: usage.input,
      output_tokens: usage.output,
      cache_creation_input_tokens: cacheWrite,
      cache_read_input_tokens: usage.cacheRead ?? 0,
      cache_creation: { ephemeral_5m_input_tokens: cacheWrite, ephemeral_1h_input_tokens: 0 },
      service_tier: serviceTier,
    },
  };
}

/** Tokens as the fake bills them: words and punctuation marks, deliberately not the engine's chars/3.5 estimate. */
export function fakeTokens(text: string): number {
  const m = text.match(/[A-Za-z]+|\d+|[^\sA-Za-z\d]/g);
  return Math.ceil((m?.length ?? 0) * 1.15);
}

/** The text of a message's content, a string or text blocks. */
export function blockText(c: string | { type: string; text?: string }[]): string {
  return typeof c === "string" ? c : c.map((b) => b.text ?? "").join("");
}

/** The fake's per-item key: sha256 of the first user message. Tests compute it from the rendered user prompt. */
export function fakeKey(firstUserText: string): string {
  return createHash("sha256").update(firstUserText).digest("hex").slice(0, 16);
}

/** The SDK sends the key as `Authorization: Bearer` (1.x) or `x-api-key` (older clients). */
function presentedKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && auth.startsWith("Bearer ")) return auth.slice(7);
  const x = req.headers["x-api-key"];
  return typeof x === "string" ? x : undefined;
}

/** fakeKey of a request's first user message: the same for every attempt at an item. */
export function keyOf(body: FakeMessageRequest): string {
  const first = body.messages?.[0];
  return fakeKey(first ? blockText(first.content) : "");
}

/** A token bucket refilled continuously at limit/minute, holding one minute's worth (the API's documented model). */
class Bucket {
  private level: number;
  private last = performance.now();
  constructor(
    private readonly perMinute: number,
    left = perMinute,
  ) {
    this.level = left;
  }
  private refill(): void {
    const now = performance.now();
    this.level = Math.min(this.perMinute, this.level + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
  }
  take(n: number): { ok: boolean; remaining: number; retryAfterS: number } {
    this.refill();
    if (this.level >= n) {
      this.level -= n;
      return { ok: true, remaining: Math.floor(this.level), retryAfterS: 0 };
    }
    const waitMs = ((n - this.level) * 60_000) / this.perMinute;
    return { ok: false, remaining: Math.floor(this.level), retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
  adjust(n: number): void {
    this.refill();
    this.level -= n;
  }
  get limit(): number {
    return this.perMinute;
  }
  get remaining(): number {
    this.refill();
    return Math.max(0, Math.floor(this.level));
  }
}

function defaultAnswer(body: FakeMessageRequest): string {
  const user = body.messages?.[0] ? blockText(body.messages[0].content) : "";
  if (body.output_config?.format) return JSON.stringify({ echo: user.slice(0, 60) });
  return `A concise answer to: ${user.slice(0, 60)}`;
}

export class FakeAnthropic extends EventEmitter {
  readonly log: LoggedRequest[] = [];
  /** Message requests received per fakeKey (every attempt). */
  readonly sent = new Map<string, number>();
  /** 200 answers served per fakeKey: more than one for a stored key means a duplicate paid request. */
  readonly answered = new Map<string, number>();
  url = "";
  private server: Server | undefined;
  private routes: { method: string; path: string | RegExp; handler: RouteHandler }[] = [];
  private messageIndex = 0;
  private readonly cached = new Set<string>();
  private readonly buckets: { rpm?: Bucket; itpm?: Bucket; otpm?: Bucket };

  constructor(readonly options: FakeAnthropicOptions = {}) {
    super();
    const l = options.limits ?? {};
    const left = options.limitsLeft ?? {};
    this.buckets = {
      rpm: l.rpm ? new Bucket(l.rpm, left.rpm) : undefined,
      itpm: l.itpm ? new Bucket(l.itpm, left.itpm) : undefined,
      otpm: l.otpm ? new Bucket(l.otpm, left.otpm) : undefined,
    };
    this.addRoute("POST", "/v1/messages", (req, body, res) => this.messages(req, body as FakeMessageRequest, res));
    this.addRoute("POST", "/v1/messages/count_tokens", (_req, body, res) => {
      this.json(res, 200, { input_tokens: this.inputTokens(body as FakeMessageRequest).total });
    });
    this.addRoute("GET", "/_fake/stats", (_req, _body, res) => this.json(res, 200, this.stats()));
    for (const r of options.routes ?? []) this.addRoute(r.method, r.path, r.handler);
  }

  /** Later routes with the same method and path win, so a test can override a default. */
  addRoute(method: string, path: string | RegExp, handler: RouteHandler): void {
    this.routes.unshift({ method, path, handler });
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    const port = await listenOnLoopback(this.server);
    this.url = `http://127.0.0.1:${port}`;
    return this.url;
  }

  async close(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }

  /** Message requests only (the paid endpoint). */
  messageLog(): LoggedRequest[] {
    return this.log.filter((r) => r.method === "POST" && r.path === "/v1/messages");
  }

  stats() {
    const dup = [...this.answered.values()].filter((n) => n > 1).length;
    const byStatus: Record<string, number> = {};
    for (const r of this.messageLog()) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    return { messages: this.messageIndex, byStatus, keysAnswered: this.answered.size, keysAnsweredTwice: dup };
  }

  /** Resolves once `predicate` holds, re-checked after every message response. */
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (predicate()) {
          this.off("response", check);
          resolve();
        }
      };
      this.on("response", check);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const path = (req.url ?? "/").split("?")[0]!;
    const method = req.method ?? "GET";
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      this.json(res, 400, { type: "error", error: { type: "invalid_request_error", message: "body is not JSON" } });
      return;
    }
    const route = this.routes.find(
      (r) => r.method === method && (typeof r.path === "string" ? r.path === path : r.path.test(path)),
    );
    if (!route) {
      this.json(res, 404, { type: "error", error: { type: "not_found_error", message: `no route ${method} ${path}` } });
      return;
    }
    if (this.options.apiKey !== undefined && !path.startsWith("/_fake/") && presentedKey(req) !== this.options.apiKey) {
      this.record(method, path, 401, undefined, body, req);
      this.json(res, 401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
      return;
    }
    try {
      await route.handler(req, body, res, this);
    } catch (e) {
      if (!res.headersSent) this.json(res, 500, { type: "error", error: { type: "api_error", message: String(e) } });
    }
    if (path !== "/v1/messages") this.record(method, path, res.statusCode, undefined, body, req);
  }

  private record(method: string, path: string, status: number, key: string | undefined, body: unknown, req: IncomingMessage, at = performance.now()): void {
    this.log.push({
      method,
      path,
      at,
      key,
      status,
      body: this.options.logBodies === false ? undefined : body,
      headers: { "x-api-key": presentedKey(req) ? "<set>" : undefined, "anthropic-version": req.headers["anthropic-version"] },
    });
  }

  json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "request-id": `req_fake_${this.log.length}`, ...headers });
    res.end(data);
  }

  /** Input tokens as billed: system, messages, and the schema when structured output is asked for. */
  inputTokens(body: FakeMessageRequest): { total: number; system: number; cacheable: boolean; systemText: string } {
    const sys = body.system;
    const systemText = sys === undefined ? "" : typeof sys === "string" ? sys : sys.map((b) => b.text).join("");
    const marked = Array.isArray(sys) && sys.some((b) => b.cache_control);
    const system = fakeTokens(systemText);
    let total = system + 3;
    for (const m of body.messages ?? []) total += fakeTokens(blockText(m.content)) + 4;
    const schema = body.output_config?.format?.schema;
    // Structured output adds the schema and a fixed instruction to the prompt.
    if (schema) total += fakeTokens(JSON.stringify(schema)) + 50;
    return { total, system, cacheable: marked && system >= (this.options.minCacheableTokens ?? 1024), systemText };
  }

  private rateHeaders(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.options.rateLimitHeaders === false) return h;
    const reset = new Date(Date.now() + 1000).toISOString();
    for (const [name, b] of [["requests", this.buckets.rpm], ["input-tokens", this.buckets.itpm], ["output-tokens", this.buckets.otpm]] as const) {
      if (!b) continue;
      h[`anthropic-ratelimit-${name}-limit`] = String(b.limit);
      h[`anthropic-ratelimit-${name}-remaining`] = String(b.remaining);
      h[`anthropic-ratelimit-${name}-reset`] = reset;
    }
    return h;
  }

  private async messages(req: IncomingMessage, body: FakeMessageRequest, res: ServerResponse): Promise<void> {
    const at = performance.now();
    const key = keyOf(body);
    const n = (this.sent.get(key) ?? 0) + 1;
    this.sent.set(key, n);
    const info: FaultInfo = { key, n, index: this.messageIndex++, body };
    const latency = typeof this.options.latencyMs === "function" ? this.options.latencyMs(info) : (this.options.latencyMs ?? 0);
    const fault = this.options.faults?.(info);
    const done = (status: number) => {
      this.record("POST", "/v1/messages", status, key, body, req, at);
      if (status === 200) this.answered.set(key, (this.answered.get(key) ?? 0) + 1);
      this.emit("response", status, key);
    };
    const wait = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

    const tokens = this.inputTokens(body);
    const limited = this.checkLimits(tokens.total, body.max_tokens ?? 0);
    if (limited) {
      await wait(latency / 4);
      this.json(res, 429, { type: "error", error: { type: "rate_limit_error", message: `rate limit exceeded: ${limited.what}` } }, {
        "retry-after": String(limited.retryAfterS),
        ...this.rateHeaders(),
      });
      return done(429);
    }
    if (fault?.type === "hang") await wait(fault.ms);
    await wait(latency);
    if (res.destroyed) return done(499);

    const errorBody = (status: number, type: string, message: string, headers: Record<string, string> = {}) => {
      this.json(res, status, { type: "error", error: { type, message } }, { ...this.rateHeaders(), ...headers });
      done(status);
    };
    switch (fault?.type) {
      case "429":
        return errorBody(429, "rate_limit_error", "rate limited (injected)", { "retry-after": String(fault.retryAfterS ?? 1) });
      case "529":
        return errorBody(529, "overloaded_error", "Overloaded (injected)");
      case "500":
        return errorBody(500, "api_error", "Internal server error (injected)");
      case "400":
        return errorBody(400, "invalid_request_error", fault.message ?? "bad request (injected)");
      case "401":
        return errorBody(401, "authentication_error", "invalid x-api-key (injected)");
      case "403":
        return errorBody(403, "permission_error", "permission denied (injected)");
      case "malformed":
        res.writeHead(200, { "content-type": "application/json", ...this.rateHeaders() });
        res.end('{"id":"msg_broken","type":"message","content":[{"type":"te');
        return done(200);
    }

    const answer = this.answerFor(body, info, fault);

    let cacheRead = 0;
    let cacheWrite = 0;
    let input = tokens.total;
    if (tokens.cacheable) {
      const ck = `${body.model}\u0000${tokens.systemText}`;
      if (this.cached.has(ck)) cacheRead = tokens.system;
      else {
        cacheWrite = tokens.system;
        this.cached.add(ck);
      }
      input -= tokens.system;
    }
    const output = Math.min(fakeTokens(answer.text) + 1, body.max_tokens ?? Infinity);
    this.buckets.otpm?.adjust(output);
    this.json(res, 200, fakeMessage(`msg_fake_${info.index}`, body.model, answer, { input, output, cacheRead, cacheWrite }), this.rateHeaders());
    done(200);
  }

  /** The answer to a request, as an invalid/refusal/truncated fault shapes it; batch results use it too. */
  answerFor(body: FakeMessageRequest, info: FaultInfo, fault: { type: string; text?: string } | undefined): FakeAnswer {
    if (fault?.type === "invalid") return { text: fault.text ?? '{"unexpected": true}' };
    if (fault?.type === "refusal") return { text: "I can't help with that.", stop_reason: "refusal" };
    const a = (this.options.answer ?? defaultAnswer)(body, info);
    const answer = typeof a === "string" ? { text: a } : a;
    if (fault?.type === "truncated") return { text: answer.text.slice(0, Math.max(1, Math.floor(answer.text.length / 2))), stop_reason: "max_tokens" };
    return answer;
  }

  private checkLimits(input: number, maxTokens: number): { what: string; retryAfterS: number } | undefined {
    const { rpm, itpm, otpm } = this.buckets;
    if (rpm) {
      const r = rpm.take(1);
      if (!r.ok) return { what: "requests per minute", retryAfterS: r.retryAfterS };
    }
    if (itpm) {
      const r = itpm.take(input);
      if (!r.ok) return { what: "input tokens per minute", retryAfterS: r.retryAfterS };
    }
    // Output tokens are checked against max_tokens up front and corrected when the answer is known.
    if (otpm && otpm.remaining < Math.min(maxTokens, otpm.limit)) {
      return { what: "output tokens per minute", retryAfterS: 1 };
    }
    return undefined;
  }
}

/** Starts a fake on 127.0.0.1:0, closed after the test that starts it; `close()` closes it sooner. */
export async function createFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const fake = new FakeAnthropic(options);
  await fake.start();
  return fake;
}
