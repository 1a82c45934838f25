// Planning: which requests are sent at all. Each request gets a key (a hash of everything that
// changes its answer); a key with a stored answer is not sent again, and requests with the same key
// are asked once. Requests arrive as a stream and are planned one at a time, so a stage can yield
// them lazily; nothing here holds a request once its item is settled, nor an answer once stored.
import { providerSpec } from "../providers/registry.js";
import { resolveModel } from "../providers/setup.js";
import type { ChatMessage, ProviderCall, ProviderSpec } from "../providers/types.js";
import { sha256 } from "../util/hash.js";
import type { EngineConfig } from "./config.js";
import { zeroUsage } from "./cost.js";
import type { z } from "zod";
import { hash64, HashMap64, HashSet64, pairHash } from "./key-index.js";
import { engineJsonlLines, JsonlLineReader } from "./store.js";
import { FailureRecord, IMPORTED, StageRecord, type FailureReason, type LlmRequest, type RecordSource, type Usage } from "./types.js";

/** JSON with sorted object keys, so a schema's key order does not change the request key. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Everything that changes the answer, hashed: provider family, model, parameters (max_tokens is the
 * only one sent: SDK 1.x has no temperature/top_p/top_k for these models), the rendered prompt, the
 * schema and its version; for offline also the inputs outside the prompt, and for any provider the
 * inputs that change what an answer means (LlmRequest.keyInputs). A prompt edit re-asks only the
 * items whose rendered prompt it changes.
 */
export function requestKey(req: LlmRequest, config: EngineConfig, spec: ProviderSpec = providerSpec(config.provider)): string {
  return sha256(
    "genre-mind/request/v1",
    req.stage,
    spec.family,
    resolveModel(spec, config),
    canonicalJson({ maxTokens: req.maxTokens }),
    req.system,
    req.user,
    req.jsonSchema ? canonicalJson(req.jsonSchema) : "",
    req.schemaVersion,
    spec.mode === "offline" ? (req.offlineInputs ?? "") : "",
    // Only when a stage sets it: every other request keeps the key it had.
    ...(req.keyInputs === undefined ? [] : [req.keyInputs]),
  );
}

/** The provider call for a request: its prompt, then any rejected answers and the errors stated back. */
export function callFor(req: LlmRequest, conversation?: ChatMessage[]): ProviderCall {
  return { system: req.system, messages: conversation ?? [{ role: "user", content: req.user }], jsonSchema: req.jsonSchema, maxTokens: req.maxTokens };
}

/** One item on its way through the engine: asked until it is stored or given up on. */
export interface PendingItem {
  key: string;
  req: LlmRequest;
  /**
   * Other items whose rendered prompt is identical (two news rows alike, two users with the same
   * clicks): asked once, and each gets its own record or failure with the same answer.
   */
  sharers: LlmRequest[];
  /** After a repair re-ask: the prompt, the rejected answers and the errors stated back. */
  conversation?: ChatMessage[];
  /** Answers received, repair re-asks included (a transport retry is not an answer). */
  answers: number;
  /** Calls sent again after a transport error (429/529/5xx/timeouts). */
  transportRetries: number;
  usage: Usage;
  /** The last answer received, kept for the failure record. */
  lastAnswer?: string;
  /** A pack (pack.ts): the items this one request carries, in item-number order. */
  members?: PendingItem[];
  /** A pack whose answer numbers its items otherwise than 1, 2, …: each member's number. */
  memberNumbers?: number[];
  /**
   * A pack collected again after some of its items were stored (a kill mid-collection): how many
   * items its answer was billed for, so each item left gets the share it had, not a larger one.
   */
  packSize?: number;
  /** What was wrong with the last answer, while a repair re-ask is due. */
  problem?: { reason: FailureReason; error: string };
}

/** What the planner decided for one request. */
export type Planned =
  | { ask: PendingItem }
  /** Answered already for another item with the same prompt: this item gets a copy of the answer. */
  | { copy: StageRecord; earlierRun: boolean }
  /** Given up on earlier in this run for another item with the same prompt: this item fails alike. */
  | { copyFailure: FailureRecord };

/** Flags kept with a stored key's record offset (offset × 4 + flags). */
const THIS_RUN = 1;
/** A request of this run had this key (for the "same prompt" note). */
const SEEN = 2;

/**
 * A record's offset and its flags in one number, by arithmetic: JS bit operations work on 32-bit
 * integers, and past 512 MB of store (a MIND-large factors-users run reaches 624 MB) offset × 4 no
 * longer fits, so `| SEEN` turned it into another offset and the run stopped on a line read from
 * the middle of another. Exact up to 2^51 bytes.
 */
export const storedAt = {
  pack: (offset: number, flags: number): number => offset * 4 + flags,
  offset: (v: number): number => Math.floor(v / 4),
  has: (v: number, flag: number): boolean => (v % 4 & flag) !== 0,
  with: (v: number, flag: number): number => (storedAt.has(v, flag) ? v : v + flag),
};

/**
 * What makes an item's record its own: the item, and the provenance it was written from (profile,
 * generate). A record written from another history than the request has now is not the item's
 * answer any more: the item is asked again, which costs a request and never a leak.
 */
function ownTag(itemId: string, source: RecordSource | undefined): string {
  return source ? `${itemId}\n${source.split}\n${source.clicks.join(" ")}` : itemId;
}

/**
 * Remembers, per key, only where its answer is (a byte offset in the store) and which items already
 * have their record (a hash of key and item): a run over a million items keeps a few tens of bytes
 * per item, and an answer is read back from the file only to copy it to another item with the same
 * prompt.
 */
export class Planner {
  /** Requests planned so far. */
  items = 0;
  /** Items whose answer was in the store before this run: not sent. */
  cached = 0;
  /** Items whose prompt an earlier item of this run has too. */
  sharing = 0;
  /** Key → offset of its last record in the store × 4 + flags. */
  private readonly stored = new HashMap64();
  /** (key, item) pairs with a record: the item is done. */
  private readonly done = new HashSet64();
  /** Key → offset of its failure line, for keys given up on in this run. */
  private readonly failedNow = new HashMap64();
  /** Items on their way: at most what the runner has in flight. */
  private readonly asked = new Map<string, PendingItem>();
  /** (key, item) pairs given up on in this run: a later planning does not copy the failure to them again. */
  private readonly failedItems = new HashSet64();
  /** Dry run: keys counted already. */
  private readonly counted = new HashSet64();
  /**
   * Imported answers (`import once`), item → offset of the record: they came from another prompt and
   * model, so no key computed here can equal theirs; each serves its own item whatever the key, on
   * the terms of any stored answer (the same source, and still suiting the item).
   */
  private readonly imported = new HashMap64();
  private readonly records: JsonlLineReader;
  private readonly failures: JsonlLineReader;

  private constructor(
    private readonly stage: string,
    files: { records: string; failures: string },
    private readonly keyOf: (req: LlmRequest) => string,
  ) {
    this.records = new JsonlLineReader(files.records);
    this.failures = new JsonlLineReader(files.failures);
  }

  /** A planner over the stage's store (`<run>/<stage>.jsonl`): the last record of a key is its answer. */
  static async open(stage: string, files: { records: string; failures: string }, keyOf: (req: LlmRequest) => string): Promise<Planner> {
    const planner = new Planner(stage, files, keyOf);
    for await (const { value, byteOffset } of engineJsonlLines(files.records, StageRecord)) {
      const h = hash64(value.key);
      // An answer stored for an item by an earlier run is never "this run": only its offset moves.
      planner.stored.set(h, storedAt.pack(byteOffset, 0));
      if (value.provider === IMPORTED) planner.imported.set(hash64(value.itemId), byteOffset);
      planner.done.add(pairHash(h, ownTag(value.itemId, value.source)));
    }
    return planner;
  }

  private async recordAt(offset: number): Promise<StageRecord | undefined> {
    const line = await this.records.lineAt(offset);
    const parsed = line === undefined ? undefined : StageRecord.safeParse(JSON.parse(line));
    return parsed?.success ? parsed.data : undefined;
  }

  /** The line at `offset` of a store file, if it is a line for `key` (a 64-bit hash can collide). */
  private async lineFor<S extends z.ZodType>(reader: JsonlLineReader, offset: number, key: string, schema: S): Promise<z.infer<S> | undefined> {
    const line = await reader.lineAt(offset);
    if (line === undefined) return undefined;
    const parsed = schema.safeParse(JSON.parse(line));
    return parsed.success && (parsed.data as { key: string }).key === key ? parsed.data : undefined;
  }

  /**
   * Yields what to do with each request, in order; requests sharing an asked key join its item. A
   * later planning of the same requests (`again`: a batch collection) counts nothing a second time.
   */
  async *plan(requests: Iterable<LlmRequest> | AsyncIterable<LlmRequest>, again = false): AsyncGenerator<Planned> {
    const first = !again;
    for await (const req of requests) {
      if (req.stage !== this.stage) throw new Error(`request for ${req.itemId} is for stage ${req.stage}, not ${this.stage}`);
      if (first) this.items++;
      const importedAt = this.imported.get(hash64(req.itemId));
      if (importedAt !== undefined) {
        const imported = await this.recordAt(importedAt);
        if (imported?.itemId === req.itemId && ownTag(imported.itemId, imported.source) === ownTag(req.itemId, req.source) && req.check?.(imported.output) === undefined) {
          if (first) this.cached++;
          continue;
        }
      }
      const key = this.keyOf(req);
      const h = hash64(key);
      const stored = this.stored.get(h);
      const pending = this.asked.get(key);
      const failedAt = this.failedNow.get(h);
      if (first && ((stored !== undefined && storedAt.has(stored, SEEN)) || pending || this.counted.has(h) || failedAt !== undefined)) this.sharing++;
      if (stored !== undefined) {
        // A stored answer serves an item only while it still suits it (LlmRequest.check: new data
        // can show a user new impressions); one that does not is asked again, with the error stated.
        let answer = req.check ? await this.lineFor(this.records, storedAt.offset(stored), key, StageRecord) : undefined;
        const suits = !req.check || (answer !== undefined && req.check(answer.output) === undefined);
        if (suits) {
          this.stored.set(h, storedAt.with(stored, SEEN));
          const pair = pairHash(h, ownTag(req.itemId, req.source));
          if (this.done.has(pair)) {
            if (first) this.cached++;
            continue;
          }
          answer ??= await this.lineFor(this.records, storedAt.offset(stored), key, StageRecord);
          if (answer) {
            const earlierRun = !storedAt.has(stored, THIS_RUN);
            if (earlierRun) this.cached++;
            this.done.add(pair);
            yield { copy: { ...answer, itemId: req.itemId, source: req.source, usage: zeroUsage() }, earlierRun };
            continue;
          }
        }
      }
      if (failedAt !== undefined) {
        const pair = pairHash(h, ownTag(req.itemId, req.source));
        if (this.failedItems.has(pair)) continue;
        this.failedItems.add(pair);
        const failure = await this.lineFor(this.failures, failedAt, key, FailureRecord);
        if (failure) {
          yield { copyFailure: { ...failure, itemId: req.itemId, usage: zeroUsage() } };
          continue;
        }
      }
      if (pending) {
        pending.sharers.push(req);
        continue;
      }
      // Dry run: asked before and counted, nothing stored, so it is neither sent again nor a copy.
      if (this.counted.has(h)) continue;
      const item: PendingItem = { key, req, sharers: [], answers: 0, transportRetries: 0, usage: zeroUsage() };
      this.asked.set(key, item);
      yield { ask: item };
    }
  }

  /**
   * An item's outcome is stored (a record or a failure, at this byte offset of its file) for the
   * requests in `stored` (the item and the sharers it suits): requests with its key that come later
   * get a copy. Without an outcome (dry run) the key is only remembered as counted.
   */
  settled(item: PendingItem, outcome?: { line: StageRecord | FailureRecord; at: number; stored: readonly LlmRequest[] }): void {
    this.asked.delete(item.key);
    const h = hash64(item.key);
    if (!outcome) {
      this.counted.add(h);
      return;
    }
    if ("output" in outcome.line) {
      this.stored.set(h, storedAt.pack(outcome.at, THIS_RUN + SEEN));
      for (const r of outcome.stored) this.done.add(pairHash(h, ownTag(r.itemId, r.source)));
    } else {
      this.failedNow.set(h, outcome.at);
      for (const r of outcome.stored) this.failedItems.add(pairHash(h, ownTag(r.itemId, r.source)));
    }
  }

  /**
   * Forgets an item still unanswered (batch mode: its batch holds it): a later planning hands it out
   * again, and a request sharing its key meanwhile is an item of its own.
   */
  release(item: PendingItem): void {
    if (this.asked.get(item.key) === item) this.asked.delete(item.key);
  }

  async close(): Promise<void> {
    await Promise.all([this.records.close(), this.failures.close()]);
  }
}
