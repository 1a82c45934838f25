// Runs a stage's unanswered requests through a BatchProvider (the Message Batches API): splits them
// into batches within the API's limits, records each batch ID in `<run>/<stage>.batches.jsonl`
// BEFORE polling it, collects results in any order, validates each answer with the request's parse,
// and re-queues invalid, refused, cut-off, errored and expired items in a following batch until
// max-attempts. A restart reads the same file and resumes polling the batches still open instead of
// paying for their items again.
import { open, readFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import type { BatchItemResult, BatchProvider, ProviderCall } from "../providers/types.js";
import { sha256 } from "../util/hash.js";
import type { FailureReason, FailureRecord, LlmRequest, StageName, StageRecord, Usage } from "./types.js";

/** The Message Batches API's limits per batch: requests, and bytes of the create request's body. */
export const BATCH_LIMITS = { maxRequests: 100_000, maxBytes: 256 * 1024 * 1024 };
/** Room left under maxBytes for the JSON envelope and separators. */
const ENVELOPE_BYTES = 1024;
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/** A key already in the API's custom_id alphabet is used as is; any other key is hashed into it. */
export function customIdFor(key: string): string {
  return CUSTOM_ID.test(key) ? key : sha256(key);
}

export interface BatchItem {
  key: string;
  request: LlmRequest;
}

/** Where answers go: the engine's store, so batch records are written exactly like live ones. */
export interface BatchSink {
  record(record: StageRecord): Promise<void>;
  failure(failure: FailureRecord): Promise<void>;
}

export interface Repair {
  answer: string;
  error: string;
}

export interface BatchProgress {
  done: number;
  failed: number;
  /** Items sent in batches still open. */
  inFlight: number;
  usage: Usage;
}

export interface BatchRunOptions {
  stage: StageName;
  /** Requests without a record in the store; several may share a key (asked once, recorded for each). */
  items: BatchItem[];
  provider: BatchProvider & { request?(customId: string, call: ProviderCall): unknown };
  /** `runPaths(dir).batches(stage)`. */
  batchesFile: string;
  maxAttempts: number;
  pollMs: number;
  sink: BatchSink;
  /** Builds the call for an attempt; a repair carries the previous answer and why it was rejected. */
  call?: (request: LlmRequest, repair?: Repair) => ProviderCall;
  limits?: Partial<typeof BATCH_LIMITS>;
  signal?: AbortSignal;
  onProgress?(progress: BatchProgress): void;
  /** One line per batch event (submitted, resumed, ended), for the run log. */
  log?(line: string): void;
}

export interface BatchRunResult {
  done: number;
  failed: number;
  /** Items answered or failed after more than one attempt. */
  retried: number;
  failedByReason: Record<string, number>;
  /** Tokens billed at the full price; the batch discount is applied when pricing. */
  usage: Usage;
  /** Batches created by this run. */
  submitted: number;
  /** Open batches found in the batches file and polled instead of resubmitted. */
  resumed: number;
}

/** One unique request key on its way through attempts. */
interface Pending {
  key: string;
  customId: string;
  requests: LlmRequest[];
  /** Attempts made including the one in flight. */
  attempt: number;
  /** Tokens billed for earlier attempts. */
  usage: Usage;
  repair?: Repair;
}

interface OpenBatch {
  id: string;
  items: Map<string, Pending>;
}

/** A line of the batches file: a batch created (with what it holds), or a batch fully collected. */
type BatchLine =
  | { batch: string; at: string; items: { key: string; attempt: number; usage?: Usage }[] }
  | { collected: string; at: string };

const ZERO: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };

function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  };
}

function isZero(u: Usage): boolean {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens === 0;
}

/** The repair re-ask: the item's prompt, the rejected answer, and what was wrong with it. */
export function defaultBatchCall(request: LlmRequest, repair?: Repair): ProviderCall {
  const messages: ProviderCall["messages"] = [{ role: "user", content: request.user }];
  if (repair) {
    messages.push(
      { role: "assistant", content: repair.answer.trim() || "(empty answer)" },
      { role: "user", content: `That answer could not be used: ${repair.error}\nAnswer again, following the instructions exactly.` },
    );
  }
  return { system: request.system, messages, jsonSchema: request.jsonSchema, maxTokens: request.maxTokens };
}

/** Appends one line and flushes it to disk: a batch ID must survive a kill -9 right after creation. */
async function appendDurable(path: string, line: BatchLine): Promise<void> {
  const fh = await open(path, "a");
  try {
    await fh.appendFile(`${JSON.stringify(line)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readBatchLines(path: string): Promise<BatchLine[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const lines: BatchLine[] = [];
  for (const raw of text.split("\n")) {
    if (!raw.trim()) continue;
    try {
      lines.push(JSON.parse(raw) as BatchLine);
    } catch {
      // A torn last line from a kill mid-write: that batch's create never got its ID recorded whole.
    }
  }
  return lines;
}

/** Items errored with these types are not worth sending again: the request itself is wrong. */
const PERMANENT_ERRORS = /^(invalid_request_error|authentication_error|permission_error|not_found_error)\b/;

export async function runBatches(options: BatchRunOptions): Promise<BatchRunResult> {
  const { stage, provider, sink, maxAttempts } = options;
  const limits = { ...BATCH_LIMITS, ...options.limits };
  const buildCall = options.call ?? defaultBatchCall;
  const result: BatchRunResult = { done: 0, failed: 0, retried: 0, failedByReason: {}, usage: { ...ZERO }, submitted: 0, resumed: 0 };
  const openBatches = new Map<string, OpenBatch>();
  const log = options.log ?? (() => {});

  const pending = new Map<string, Pending>();
  for (const { key, request } of options.items) {
    const p = pending.get(key);
    if (p) p.requests.push(request);
    else pending.set(key, { key, customId: customIdFor(key), requests: [request], attempt: 0, usage: { ...ZERO } });
  }

  const progress = () => {
    let inFlight = 0;
    for (const b of openBatches.values()) inFlight += b.items.size;
    options.onProgress?.({ done: result.done, failed: result.failed, inFlight, usage: result.usage });
  };

  // Resume: a key belongs to the last batch that was created with it; batches fully collected are done.
  const lines = await readBatchLines(options.batchesFile);
  const owner = new Map<string, { batch: string; attempt: number; usage: Usage }>();
  const collected = new Set<string>();
  for (const line of lines) {
    if ("collected" in line) collected.add(line.collected);
    else for (const it of line.items) owner.set(it.key, { batch: line.batch, attempt: it.attempt, usage: it.usage ?? ZERO });
  }
  for (const [key, o] of owner) {
    const p = pending.get(key);
    if (!p || collected.has(o.batch)) continue;
    p.attempt = o.attempt;
    p.usage = { ...o.usage };
    let b = openBatches.get(o.batch);
    if (!b) openBatches.set(o.batch, (b = { id: o.batch, items: new Map() }));
    b.items.set(p.customId, p);
  }
  result.resumed = openBatches.size;
  for (const b of openBatches.values()) log(`batch ${b.id}: resumed polling (${b.items.size} requests)`);
  const resumedKeys = new Set([...openBatches.values()].flatMap((b) => [...b.items.values()].map((p) => p.key)));

  async function submit(items: Pending[]): Promise<void> {
    let chunk: { p: Pending; call: ProviderCall }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const id = await provider.submit(chunk.map(({ p, call }) => ({ customId: p.customId, call })));
      await appendDurable(options.batchesFile, {
        batch: id,
        at: new Date().toISOString(),
        items: chunk.map(({ p }) => (isZero(p.usage) ? { key: p.key, attempt: p.attempt } : { key: p.key, attempt: p.attempt, usage: p.usage })),
      });
      openBatches.set(id, { id, items: new Map(chunk.map(({ p }) => [p.customId, p])) });
      result.submitted++;
      log(`batch ${id}: submitted ${chunk.length} requests`);
      chunk = [];
      bytes = 0;
    };
    for (const p of items) {
      const call = buildCall(p.requests[0]!, p.repair);
      const body = provider.request ? provider.request(p.customId, call) : { custom_id: p.customId, params: call };
      const size = Buffer.byteLength(JSON.stringify(body)) + 1;
      if (size + ENVELOPE_BYTES > limits.maxBytes) {
        p.attempt++;
        await fail(p, "api-error", `the request is ${size} bytes, over the batch limit of ${limits.maxBytes} bytes`);
        continue;
      }
      if (chunk.length >= limits.maxRequests || bytes + size + ENVELOPE_BYTES > limits.maxBytes) await flush();
      p.attempt++;
      chunk.push({ p, call });
      bytes += size;
    }
    await flush();
    progress();
  }

  async function fail(p: Pending, reason: FailureReason, message: string, lastAnswer?: string): Promise<void> {
    for (const [i, request] of p.requests.entries()) {
      await sink.failure({
        key: p.key,
        stage,
        itemId: request.itemId,
        provider: provider.name,
        model: provider.model,
        reason,
        message,
        ...(lastAnswer === undefined ? {} : { lastAnswer }),
        // Billed once per key: the first item carries the tokens, so sums stay true.
        usage: i === 0 ? p.usage : { ...ZERO },
        attempts: p.attempt,
      });
    }
    result.failed += p.requests.length;
    result.failedByReason[reason] = (result.failedByReason[reason] ?? 0) + p.requests.length;
    if (p.attempt > 1) result.retried += p.requests.length;
  }

  /** Either records the answer or says why it must be asked again. */
  async function accept(p: Pending, item: BatchItemResult): Promise<{ reason: FailureReason; message: string; answer?: string; permanent?: boolean } | undefined> {
    if (item.type !== "succeeded") {
      if (item.type === "expired") return { reason: "expired", message: "the batch expired before this request was processed" };
      return { reason: "api-error", message: item.message, permanent: item.type === "errored" && PERMANENT_ERRORS.test(item.message) };
    }
    const { answer } = item;
    p.usage = addUsage(p.usage, answer.usage);
    result.usage = addUsage(result.usage, answer.usage);
    if (answer.stop === "refusal") return { reason: "refusal", message: "the model refused to answer", answer: answer.text };
    if (answer.stop === "max_tokens") {
      return { reason: "truncated", message: `the answer was cut off at the ${p.requests[0]!.maxTokens}-token limit; answer more briefly`, answer: answer.text };
    }
    const parsed = p.requests.map((r) => r.parse(answer.text));
    const bad = parsed.find((r) => !r.ok);
    if (bad && !bad.ok) return { reason: "invalid", message: bad.error, answer: answer.text };
    for (const [i, request] of p.requests.entries()) {
      const r = parsed[i]!;
      if (!r.ok) continue;
      await sink.record({
        key: p.key,
        stage,
        itemId: request.itemId,
        provider: provider.name,
        model: provider.model,
        output: r.value,
        usage: i === 0 ? p.usage : { ...ZERO },
        attempts: p.attempt,
      });
    }
    result.done += p.requests.length;
    if (p.attempt > 1) result.retried += p.requests.length;
    return undefined;
  }

  async function collect(batch: OpenBatch): Promise<void> {
    const seen = new Set<string>();
    const again: Pending[] = [];
    const settle = async (p: Pending, problem: Awaited<ReturnType<typeof accept>>) => {
      if (!problem) return;
      if (problem.permanent || p.attempt >= maxAttempts) return fail(p, problem.reason, problem.message, problem.answer);
      // Only an answer that was read can be repaired; an errored or expired item is asked afresh.
      if (problem.answer !== undefined) p.repair = { answer: problem.answer, error: problem.message };
      again.push(p);
    };
    for await (const item of provider.results(batch.id)) {
      const p = batch.items.get(item.customId);
      // Not ours (or already settled): a later batch owns the key, or the result is a duplicate line.
      if (!p || seen.has(item.customId)) continue;
      seen.add(item.customId);
      await settle(p, await accept(p, item));
      progress();
    }
    for (const [customId, p] of batch.items) {
      if (!seen.has(customId)) await settle(p, { reason: "api-error", message: "no result for this request in the batch results" });
    }
    // Re-asks are created and recorded before this batch is marked collected: a kill in between
    // re-reads this batch's results, and each key then belongs to its newest batch.
    openBatches.delete(batch.id);
    if (again.length > 0) await submit(again);
    await appendDurable(options.batchesFile, { collected: batch.id, at: new Date().toISOString() });
    log(`batch ${batch.id}: collected ${seen.size} results, ${again.length} asked again`);
  }

  await submit([...pending.values()].filter((p) => !resumedKeys.has(p.key)));
  while (openBatches.size > 0) {
    for (const batch of [...openBatches.values()]) {
      options.signal?.throwIfAborted();
      const status = await provider.status(batch.id);
      if (status.ended) await collect(batch);
    }
    if (openBatches.size > 0) await delay(options.pollMs, undefined, { signal: options.signal });
  }
  return result;
}
