// OpenAI's Batch API on the fake (test/fakes/openai-api.ts): file upload (multipart, purpose batch),
// batch create with metadata, retrieve (validating → in_progress → completed / expired / failed),
// list with pagination (newest first), and the output and error files, with injectable per-request
// outcomes. Answers and usage come from the host fake's completion(), so live and batch runs agree.
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FakeChatRequest, OpenAiFake } from "./openai-api.js";

export type OpenAiBatchItemFault =
  /** An error line: the request failed with this status (500: try again; 400: malformed). */
  | { type: "errored"; status: number; message?: string }
  /** The batch expired before this request ran. */
  | { type: "expired" }
  /** Answered with this text instead of a valid answer. */
  | { type: "invalid"; text: string };

export interface OpenAiBatchItemInfo {
  customId: string;
  body: FakeChatRequest;
  /** The item's first user message: stable across attempts. */
  key: string;
  /** 1 the first time this key appears in any batch, 2 the second, ... */
  n: number;
  batchId: string;
}

export interface OpenAiBatchesOptions {
  itemFault?: (info: OpenAiBatchItemInfo) => OpenAiBatchItemFault | undefined;
  /** Retrieves that answer in_progress before a batch ends (default 1). */
  pollsBeforeEnd?: number;
  /** Batches stay in_progress until `release()`. */
  hold?: boolean;
  /** Validation errors for input lines (1-based): the batch then fails without running any request. */
  invalidLine?: (line: number, request: { custom_id: string; body: FakeChatRequest }) => string | undefined;
  /** Batches answered per list page (default 100, or the request's limit). */
  pageSize?: number;
  /** For the n-th create request (1-based): answer this status, before or after creating the batch. */
  createFault?: (n: number) => { status: number; afterCreate: boolean } | undefined;
}

interface StoredFile {
  id: string;
  purpose: string;
  content: string;
}

export interface StoredOpenAiBatch {
  id: string;
  created_at: number;
  status: string;
  input_file_id: string;
  output_file_id: string | null;
  error_file_id: string | null;
  metadata: Record<string, string> | null;
  errors: { object: "list"; data: { code: string; message: string; line: number | null }[] } | null;
  requests: { custom_id: string; body: FakeChatRequest }[];
  polls: number;
  held: boolean;
}

export interface FakeOpenAiBatches extends EventEmitter {
  readonly creates: number;
  readonly uploads: number;
  readonly batches: Map<string, StoredOpenAiBatch>;
  readonly files: Map<string, StoredFile>;
  /** Answers billed per key (a succeeded request): a key answered twice was paid for twice. */
  readonly answered: Map<string, number>;
  /** Ends held batches at their next retrieve; without an ID, all of them, and stops holding new ones. */
  release(id?: string): void;
  /** The next create is recorded (the batch exists) but its HTTP answer never comes: a client killed mid-create. */
  hangNextCreate(): void;
}

const keyOf = (body: FakeChatRequest) => body.messages.find((m) => m.role === "user")?.content ?? "";

export function installOpenAiBatches(fake: OpenAiFake, options: OpenAiBatchesOptions = {}): FakeOpenAiBatches {
  const events = new EventEmitter() as FakeOpenAiBatches;
  const batches = new Map<string, StoredOpenAiBatch>();
  const files = new Map<string, StoredFile>();
  const answered = new Map<string, number>();
  const seen = new Map<string, number>();
  let creates = 0;
  let uploads = 0;
  let next = 0;
  let holdNew = options.hold ?? false;
  let hangCreate = false;
  Object.defineProperties(events, {
    creates: { get: () => creates },
    uploads: { get: () => uploads },
    batches: { value: batches },
    files: { value: files },
    answered: { value: answered },
  });
  events.release = (id?: string) => {
    if (id === undefined) holdNew = false;
    for (const b of batches.values()) if (id === undefined || b.id === id) b.held = false;
  };
  events.hangNextCreate = () => {
    hangCreate = true;
  };
  const addFile = (purpose: string, content: string) => {
    const file = { id: `file-fake${String(++next).padStart(4, "0")}`, purpose, content };
    files.set(file.id, file);
    return file;
  };
  const view = (b: StoredOpenAiBatch) => {
    const { requests: _r, polls: _p, held: _h, ...rest } = b;
    return { object: "batch", endpoint: "/v1/chat/completions", completion_window: "24h", ...rest };
  };

  function end(b: StoredOpenAiBatch): void {
    const out: string[] = [];
    const err: string[] = [];
    let expired = false;
    for (const [i, { custom_id, body }] of b.requests.entries()) {
      const key = keyOf(body);
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      const fault = options.itemFault?.({ customId: custom_id, body, key, n, batchId: b.id });
      const id = `batch_req_${b.id}_${i}`;
      if (fault?.type === "expired") {
        expired = true;
        err.push(JSON.stringify({ id, custom_id, response: null, error: { code: "batch_expired", message: "This request could not be executed before the completion window expired." } }));
      } else if (fault?.type === "errored") {
        const type = fault.status >= 500 ? "server_error" : "invalid_request_error";
        err.push(JSON.stringify({ id, custom_id, response: { status_code: fault.status, request_id: id, body: { error: { message: fault.message ?? "failed", type, code: null } } }, error: null }));
      } else {
        answered.set(key, (answered.get(key) ?? 0) + 1);
        const completion = fake.completion(body, fault?.type === "invalid" ? { kind: "content", content: fault.text } : undefined);
        out.push(JSON.stringify({ id, custom_id, response: { status_code: 200, request_id: id, body: completion }, error: null }));
      }
    }
    b.output_file_id = out.length ? addFile("batch_output", out.join("\n") + "\n").id : null;
    b.error_file_id = err.length ? addFile("batch_output", err.join("\n") + "\n").id : null;
    b.status = expired ? "expired" : "completed";
  }

  /** The real API validates the input file once the batch is created; a bad line fails the whole batch. */
  function validate(b: StoredOpenAiBatch): void {
    const errors: { code: string; message: string; line: number | null }[] = [];
    for (const [i, r] of b.requests.entries()) {
      const message = options.invalidLine?.(i + 1, r);
      if (message) errors.push({ code: "invalid_request", message, line: i + 1 });
    }
    if (errors.length) {
      b.status = "failed";
      b.errors = { object: "list", data: errors };
    } else b.status = "in_progress";
  }

  fake.addRoute("POST", /^\/v1\/files$/, async (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const form = await new Response(body, { headers: { "content-type": String(req.headers["content-type"]) } }).formData();
    const purpose = form.get("purpose");
    const file = form.get("file");
    if (purpose !== "batch" || !(file instanceof Blob)) return fake.error(res, 400, "purpose 'batch' and a file are required", "invalid_request_error");
    uploads++;
    const stored = addFile("batch", await file.text());
    fake.json(res, 200, { id: stored.id, object: "file", bytes: file.size, created_at: Math.floor(Date.now() / 1000), filename: "upload.jsonl", purpose: "batch" });
    events.emit("upload", stored);
  });

  fake.addRoute("GET", /^\/v1\/files\/([^/]+)\/content$/, (_req, _body, res, match) => {
    const file = files.get(match[1]!);
    if (!file) return fake.error(res, 404, `No such File object: ${match[1]}`, "invalid_request_error");
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.end(file.content);
  });

  let createRequests = 0;
  fake.addRoute("POST", /^\/v1\/batches$/, (_req, raw, res) => {
    const fault = options.createFault?.(++createRequests);
    if (fault && !fault.afterCreate) return fake.error(res, fault.status, "The server had an error while processing your request.", "server_error");
    const body = JSON.parse(raw.toString("utf8")) as { input_file_id?: string; endpoint?: string; completion_window?: string; metadata?: Record<string, string> };
    const file = body.input_file_id ? files.get(body.input_file_id) : undefined;
    if (!file || file.purpose !== "batch") return fake.error(res, 400, `Invalid input_file_id: ${body.input_file_id}`, "invalid_request_error");
    if (body.endpoint !== "/v1/chat/completions" || body.completion_window !== "24h") return fake.error(res, 400, "endpoint or completion_window not supported", "invalid_request_error");
    const requests = file.content
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { custom_id: string; method: string; url: string; body: FakeChatRequest });
    if (new Set(requests.map((r) => r.custom_id)).size !== requests.length) return fake.error(res, 400, "duplicate custom_id in the input file", "invalid_request_error");
    if (requests.some((r) => r.method !== "POST" || r.url !== "/v1/chat/completions")) return fake.error(res, 400, "every line must POST to /v1/chat/completions", "invalid_request_error");
    creates++;
    const id = `batch_fake${String(++next).padStart(4, "0")}`;
    const b: StoredOpenAiBatch = {
      id,
      created_at: Math.floor(Date.now() / 1000),
      status: "validating",
      input_file_id: file.id,
      output_file_id: null,
      error_file_id: null,
      metadata: body.metadata ?? null,
      errors: null,
      requests,
      polls: 0,
      held: holdNew,
    };
    batches.set(id, b);
    events.emit("create", b);
    if (hangCreate) {
      // The batch exists; the answer that would tell the client its ID never comes.
      hangCreate = false;
      return;
    }
    if (fault) return fake.error(res, fault.status, "The server had an error while processing your request.", "server_error");
    fake.json(res, 200, view(b));
  });

  fake.addRoute("GET", /^\/v1\/batches\/([^/]+)$/, (_req, _body, res, match) => {
    const b = batches.get(match[1]!);
    if (!b) return fake.error(res, 404, `No batch found with id '${match[1]}'`, "invalid_request_error");
    b.polls++;
    if (b.status === "validating") validate(b);
    else if (b.status === "in_progress" && !b.held && b.polls > (options.pollsBeforeEnd ?? 1)) end(b);
    fake.json(res, 200, view(b));
    events.emit("retrieve", b);
  });

  fake.addRoute("GET", /^\/v1\/batches$/, (req, _body, res) => {
    const url = new URL(req.url ?? "", "http://fake");
    const limit = Math.min(Number(url.searchParams.get("limit") ?? 20), options.pageSize ?? 100);
    const after = url.searchParams.get("after");
    const newestFirst = [...batches.values()].reverse();
    const start = after ? newestFirst.findIndex((b) => b.id === after) + 1 : 0;
    const page = newestFirst.slice(start, start + limit);
    fake.json(res, 200, { object: "list", data: page.map(view), first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null, has_more: start + limit < newestFirst.length });
    events.emit("list", page.length);
  });

  return events;
}
