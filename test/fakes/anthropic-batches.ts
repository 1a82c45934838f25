// Message Batches for the fake Anthropic API (test/fakes/anthropic-api.ts): create, retrieve and the
// results JSONL at `results_url`, with the real API's limits, processing_status / request_counts,
// results in shuffled order, and injectable per-item outcomes (errored, expired, canceled, invalid,
// refusal, truncated). Answers and usage come from the host fake, so live and batch runs agree.
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fakeMessage, fakeTokens, keyOf, type FakeAnthropic, type FakeMessageRequest } from "./anthropic-api.js";

export type BatchItemFault =
  | { type: "errored"; errorType?: string; message?: string }
  | { type: "expired" }
  | { type: "canceled" }
  | { type: "invalid"; text?: string }
  | { type: "refusal" }
  | { type: "truncated" };

export interface BatchItemInfo {
  customId: string;
  body: FakeMessageRequest;
  /** fakeKey of the item's first user message (stable across attempts). */
  key: string;
  /** 1 the first time this key appears in any batch, 2 the second, ... */
  n: number;
  batchId: string;
}

export interface FakeBatchesOptions {
  itemFault?: (info: BatchItemInfo) => BatchItemFault | undefined;
  /** Retrieves that answer in_progress before a batch ends (default 1). */
  pollsBeforeEnd?: number;
  /** Batches stay in_progress until `release()`: for restart tests. */
  hold?: boolean;
  /** Order of the results file (default shuffled, seeded). */
  order?: "shuffled" | "reversed" | "submitted";
  limits?: { maxRequests?: number; maxBytes?: number };
  /** Per create call (1, 2, …): make the batch but answer this status instead of it (the answer lost on the way). */
  createFault?: (call: number) => 429 | 500 | undefined;
}

interface StoredBatch {
  id: string;
  createdAt: Date;
  endedAt?: Date;
  requests: { custom_id: string; params: FakeMessageRequest }[];
  polls: number;
  held: boolean;
  results?: string[];
  counts: { processing: number; succeeded: number; errored: number; expired: number; canceled: number };
}

export interface FakeBatches extends EventEmitter {
  /** Create requests accepted (HTTP 200). */
  readonly creates: number;
  readonly batches: Map<string, StoredBatch>;
  /** Ends held batches at their next retrieve; without an ID, all of them, and stops holding new ones. */
  release(id?: string): void;
}

const BATCH_ROUTE = /^\/v1\/messages\/batches\/([^/]+)$/;
const RESULTS_ROUTE = /^\/v1\/messages\/batches\/([^/]+)\/results$/;
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/** A small seeded shuffle so "out of order" is reproducible. */
function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  let s = seed || 1;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Adds the Message Batches routes to a started or unstarted FakeAnthropic. */
export function installBatches(fake: FakeAnthropic, options: FakeBatchesOptions = {}): FakeBatches {
  const events = new EventEmitter() as FakeBatches;
  const batches = new Map<string, StoredBatch>();
  const seen = new Map<string, number>();
  let creates = 0;
  let createCalls = 0;
  let next = 0;
  Object.defineProperties(events, {
    creates: { get: () => creates },
    batches: { value: batches },
  });
  let holdNew = options.hold ?? false;
  events.release = (id?: string) => {
    if (id === undefined) holdNew = false;
    for (const b of batches.values()) if (id === undefined || b.id === id) b.held = false;
  };
  const maxRequests = options.limits?.maxRequests ?? 100_000;
  const maxBytes = options.limits?.maxBytes ?? 256 * 1024 * 1024;
  const error = (res: ServerResponse, status: number, type: string, message: string) =>
    fake.json(res, status, { type: "error", error: { type, message } });

  const view = (b: StoredBatch) => ({
    id: b.id,
    type: "message_batch",
    processing_status: b.endedAt ? "ended" : "in_progress",
    request_counts: b.counts,
    ended_at: b.endedAt?.toISOString() ?? null,
    created_at: b.createdAt.toISOString(),
    expires_at: new Date(b.createdAt.getTime() + 24 * 3600_000).toISOString(),
    archived_at: null,
    cancel_initiated_at: null,
    results_url: b.endedAt ? `${fake.url}/v1/messages/batches/${b.id}/results` : null,
  });

  function end(b: StoredBatch): void {
    const lines: string[] = [];
    for (const [i, { custom_id, params }] of b.requests.entries()) {
      const key = keyOf(params);
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      fake.sent.set(key, (fake.sent.get(key) ?? 0) + 1);
      const info: BatchItemInfo = { customId: custom_id, body: params, key, n, batchId: b.id };
      const fault = options.itemFault?.(info);
      let result: unknown;
      if (fault?.type === "errored") {
        b.counts.errored++;
        result = {
          type: "errored",
          error: { type: "error", error: { type: fault.errorType ?? "api_error", message: fault.message ?? "Internal server error" }, request_id: `req_batch_${i}` },
        };
      } else if (fault?.type === "expired" || fault?.type === "canceled") {
        b.counts[fault.type]++;
        result = { type: fault.type };
      } else {
        b.counts.succeeded++;
        fake.answered.set(key, (fake.answered.get(key) ?? 0) + 1);
        const answer = fake.answerFor(params, { key, n, index: 0, body: params }, fault);
        const input = fake.inputTokens(params).total;
        const output = Math.min(fakeTokens(answer.text) + 1, params.max_tokens ?? Infinity);
        result = { type: "succeeded", message: fakeMessage(`msg_batch_${b.id}_${i}`, params.model, answer, { input, output }, "batch") };
      }
      lines.push(JSON.stringify({ custom_id, result }));
    }
    b.counts.processing = 0;
    const order = options.order ?? "shuffled";
    b.results = order === "submitted" ? lines : order === "reversed" ? [...lines].reverse() : shuffle(lines, next * 7919 + lines.length);
    b.endedAt = new Date();
  }

  fake.addRoute("POST", "/v1/messages/batches", (req: IncomingMessage, body: unknown, res: ServerResponse) => {
    const requests = (body as { requests?: unknown })?.requests;
    const size = Number(req.headers["content-length"] ?? 0);
    if (size > maxBytes) return error(res, 413, "request_too_large", `request body of ${size} bytes exceeds ${maxBytes}`);
    if (!Array.isArray(requests) || requests.length === 0) return error(res, 400, "invalid_request_error", "requests: expected a non-empty list");
    if (requests.length > maxRequests) return error(res, 400, "invalid_request_error", `requests: at most ${maxRequests} requests per batch`);
    const ids = new Set<string>();
    for (const [i, r] of (requests as { custom_id?: unknown; params?: unknown }[]).entries()) {
      if (typeof r.custom_id !== "string" || !CUSTOM_ID.test(r.custom_id)) {
        return error(res, 400, "invalid_request_error", `requests.${i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
      }
      if (ids.has(r.custom_id)) return error(res, 400, "invalid_request_error", `requests.${i}.custom_id: duplicate custom_id ${r.custom_id}`);
      ids.add(r.custom_id);
      const p = r.params as FakeMessageRequest | undefined;
      if (!p || typeof p.model !== "string" || !Array.isArray(p.messages) || typeof p.max_tokens !== "number") {
        return error(res, 400, "invalid_request_error", `requests.${i}.params: model, messages and max_tokens are required`);
      }
    }
    createCalls++;
    const fault = options.createFault?.(createCalls);
    // A 429 is a refusal: nothing is made. A 500 here is an answer lost after the batch was made.
    if (fault === 429) {
      res.setHeader("retry-after", "0");
      return error(res, 429, "rate_limit_error", "Number of batch creations exceeds the rate limit");
    }
    creates++;
    const id = `msgbatch_fake_${String(++next).padStart(4, "0")}`;
    const b: StoredBatch = {
      id,
      createdAt: new Date(),
      requests: requests as StoredBatch["requests"],
      polls: 0,
      held: holdNew,
      counts: { processing: requests.length, succeeded: 0, errored: 0, expired: 0, canceled: 0 },
    };
    batches.set(id, b);
    if (fault === 500) error(res, 500, "api_error", "Internal server error");
    else fake.json(res, 200, view(b));
    events.emit("create", b);
  });

  fake.addRoute("GET", BATCH_ROUTE, (req: IncomingMessage, _body: unknown, res: ServerResponse) => {
    const id = BATCH_ROUTE.exec((req.url ?? "").split("?")[0]!)![1]!;
    const b = batches.get(id);
    if (!b) return error(res, 404, "not_found_error", `no message batch ${id}`);
    b.polls++;
    if (!b.endedAt && !b.held && b.polls > (options.pollsBeforeEnd ?? 1)) end(b);
    fake.json(res, 200, view(b));
    events.emit("retrieve", b);
  });

  fake.addRoute("GET", RESULTS_ROUTE, (req: IncomingMessage, _body: unknown, res: ServerResponse) => {
    const id = RESULTS_ROUTE.exec((req.url ?? "").split("?")[0]!)![1]!;
    const b = batches.get(id);
    if (!b) return error(res, 404, "not_found_error", `no message batch ${id}`);
    if (!b.results) return error(res, 400, "invalid_request_error", `message batch ${id} is still in_progress`);
    res.writeHead(200, { "content-type": "application/binary", "request-id": `req_results_${id}` });
    res.end(b.results.join("\n") + "\n");
    events.emit("results", b);
  });

  return events;
}
