// Planning: which requests are sent at all. Each request gets a key (a hash of everything that
// changes its answer); a key with a stored answer is not sent again, and requests with the same key
// are asked once. Requests arrive as a stream and are planned one at a time, so a stage can yield
// them lazily; nothing here holds a request once its item is settled.
import { providerSpec } from "../providers/registry.js";
import { resolveModel } from "../providers/setup.js";
import type { ChatMessage, ProviderCall, ProviderSpec } from "../providers/types.js";
import { sha256 } from "../util/hash.js";
import type { EngineConfig } from "./config.js";
import { zeroUsage } from "./cost.js";
import { engineJsonl } from "./store.js";
import { IMPORTED, StageRecord, type FailureReason, type FailureRecord, type LlmRequest, type RecordSource, type Usage } from "./types.js";

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

interface StoredKey {
  answer: StageRecord;
  /** The items the answer is stored for (one, nearly always). */
  items: string | string[];
  /** Answered in this run (a copy then counts as done, not cached). */
  thisRun: boolean;
  /** A request of this run had this key (for the "same prompt" note). */
  seen: boolean;
}

/**
 * Whether a stored record was written from the provenance a request has now. Compared with the key's
 * last record: when it is another item's (a sharer's) and differs, the item is asked again, which
 * costs a request and never a leak.
 */
function sameSource(a: RecordSource | undefined, b: RecordSource | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.split === b.split && a.clicks.join(" ") === b.clicks.join(" "));
}

function holds(items: string | string[], itemId: string): boolean {
  return typeof items === "string" ? items === itemId : items.includes(itemId);
}

export class Planner {
  /** Requests planned so far. */
  items = 0;
  /** Items whose answer was in the store before this run: not sent. */
  cached = 0;
  /** Items whose prompt an earlier item of this run has too. */
  sharing = 0;
  private readonly stored = new Map<string, StoredKey>();
  private readonly asked = new Map<string, PendingItem | undefined>();
  private readonly failedNow = new Map<string, FailureRecord>();
  /**
   * Imported answers (`import once`) by item: they came from another prompt and model, so no key
   * computed here can equal theirs; each serves its own item whatever the key, on the terms of any
   * stored answer (the same source, and still suiting the item).
   */
  private readonly imported = new Map<string, StageRecord>();

  private constructor(
    private readonly stage: string,
    private readonly keyOf: (req: LlmRequest) => string,
  ) {}

  /** A planner over the stage's store (`<run>/<stage>.jsonl`): the last record of a key is its answer. */
  static async open(stage: string, storeFile: string, keyOf: (req: LlmRequest) => string): Promise<Planner> {
    const planner = new Planner(stage, keyOf);
    for await (const record of engineJsonl(storeFile, StageRecord)) {
      if (record.provider === IMPORTED) planner.imported.set(record.itemId, record);
      planner.remember(record, false);
    }
    return planner;
  }

  private remember(record: StageRecord, thisRun: boolean, items: string | string[] = record.itemId): void {
    const known = this.stored.get(record.key);
    if (!known) {
      this.stored.set(record.key, { answer: record, items, thisRun, seen: thisRun });
      return;
    }
    known.answer = record;
    const more = typeof items === "string" ? [items] : items;
    const all = typeof known.items === "string" ? [known.items] : known.items;
    known.items = [...all, ...more.filter((id) => !all.includes(id))];
  }

  /** Yields what to do with each request, in order; requests sharing an asked key join its item. */
  async *plan(requests: Iterable<LlmRequest> | AsyncIterable<LlmRequest>): AsyncGenerator<Planned> {
    for await (const req of requests) {
      if (req.stage !== this.stage) throw new Error(`request for ${req.itemId} is for stage ${req.stage}, not ${this.stage}`);
      this.items++;
      const imported = this.imported.get(req.itemId);
      if (imported && sameSource(imported.source, req.source) && req.check?.(imported.output) === undefined) {
        this.cached++;
        continue;
      }
      const key = this.keyOf(req);
      const stored = this.stored.get(key);
      const pending = this.asked.get(key);
      const failed = this.failedNow.get(key);
      if ((stored?.seen ?? false) || this.asked.has(key) || failed) this.sharing++;
      // A stored answer serves an item only while it still suits it (LlmRequest.check: new data can
      // show a user new impressions); one that does not is asked again, with the error stated.
      if (stored && req.check?.(stored.answer.output) === undefined) {
        stored.seen = true;
        if (holds(stored.items, req.itemId) && sameSource(stored.answer.source, req.source)) {
          this.cached++;
          continue;
        }
        if (!stored.thisRun) this.cached++;
        yield { copy: { ...stored.answer, itemId: req.itemId, source: req.source, usage: zeroUsage() }, earlierRun: !stored.thisRun };
        continue;
      }
      if (failed) {
        yield { copyFailure: { ...failed, itemId: req.itemId, usage: zeroUsage() } };
        continue;
      }
      if (pending) {
        pending.sharers.push(req);
        continue;
      }
      // Dry run: asked before and counted, nothing stored, so it is neither sent again nor a copy.
      if (this.asked.has(key)) continue;
      const item: PendingItem = { key, req, sharers: [], answers: 0, transportRetries: 0, usage: zeroUsage() };
      this.asked.set(key, item);
      yield { ask: item };
    }
  }

  /**
   * An item's outcome is stored (record or failure) and appended for its sharers: requests with its
   * key that come later get a copy. Without an outcome (dry run) the key is only remembered as asked.
   */
  settled(item: PendingItem, outcome?: StageRecord | FailureRecord): void {
    if (!outcome) {
      this.asked.set(item.key, undefined);
      return;
    }
    this.asked.delete(item.key);
    if ("output" in outcome) this.remember(outcome, true, [item.req.itemId, ...item.sharers.map((s) => s.itemId)]);
    else this.failedNow.set(item.key, outcome);
  }
}
