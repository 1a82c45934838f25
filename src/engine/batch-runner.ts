// Runs a stage's unanswered requests through a BatchProvider (e.g. the Message Batches API): splits
// them into batches within the provider's limits, records in `<run>/<stage>.batches.jsonl` an intent
// (a tag and the items) BEFORE each create, any input staged for it and the batch ID BEFORE polling,
// collects results in any order, validates each answer with the request's parse, and re-queues
// invalid, refused, cut-off, errored and expired items in a following batch until max-attempts. A
// restart reads the same file: it resumes polling the batches still open and adopts a batch a killed
// run created but never recorded (found by its tag), instead of paying for their items again.
// Validation, records, failures and cost are the engine's StageSession, the same path live answers take.
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { UserError } from "../cli/command.js";
import { apiKeyEnv } from "../providers/setup.js";
import { z } from "zod";
import type { BatchLimits, BatchProvider, ProviderCall } from "../providers/types.js";
import { sha256 } from "../util/hash.js";
import { classifyError, fatalMessage } from "./errors.js";
import type { PendingItem } from "./plan.js";
import type { StageSession } from "./session.js";
import type { Budget, Reservation } from "./budget.js";
import { JsonlAppender, readJsonl } from "./store.js";
import { Usage, type FailureReason } from "./types.js";

/** Room left under maxBytes for the JSON envelope and separators. */
const ENVELOPE_BYTES = 1024;
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * A key already in a conservative custom_id alphabet (the strictest batch API's) is used as is; any
 * other key is hashed into it.
 */
export function customIdFor(key: string): string {
  return CUSTOM_ID.test(key) ? key : sha256(key);
}

export interface BatchRunOptions {
  /** Builds the client when it is first needed: a run with nothing to send or poll needs no key. */
  provider: () => BatchProvider;
  pollMs: number;
  limits: BatchLimits;
  /** Stops polling (the batches stay recorded, so the next run resumes them). */
  signal?: AbortSignal;
  /** --max-cost: a batch is created only with the requests whose worst case fits; open batches are still collected. */
  budget?: Budget;
  /** Ctrl-C: no batch is created or polled any more (a create under way finishes and is recorded); the next run resumes. */
  interrupt?: AbortSignal;
  /** One line per batch event (submitted, resumed, collected). */
  log?(line: string): void;
}

interface OpenBatch {
  id: string;
  items: Map<string, PendingItem>;
}

/** What a resumed run needs to carry on an item exactly where the interrupted run left it. */
const ItemState = z.object({
  key: z.string(),
  attempts: z.number().int().nonnegative(),
  retries: z.number().int().nonnegative().optional(),
  usage: Usage.optional(),
  /** The conversation when it is more than the prompt (a repair re-ask). */
  messages: z.array(z.object({ role: z.enum(["user", "assistant"]), content: z.string() })).optional(),
});
type ItemState = z.infer<typeof ItemState>;

/**
 * A line of the batches file: an intent to create a batch (its tag and the state of its items), input
 * staged for an intent, a batch created (for an intent, or — in files written before intents — with
 * its items), or a batch fully collected.
 */
const BatchLine = z.union([
  z.object({ batch: z.string(), at: z.string(), intent: z.string() }),
  z.object({ batch: z.string(), at: z.string(), items: z.array(ItemState) }),
  z.object({ collected: z.string(), at: z.string() }),
  z.object({ intent: z.string(), at: z.string(), items: z.array(ItemState) }),
  z.object({ intent: z.string(), at: z.string(), staged: z.string() }),
]);
type BatchLine = z.infer<typeof BatchLine>;

interface Intent {
  tag: string;
  at: string;
  items: ItemState[];
  staged?: string;
}

function stateOf(item: PendingItem): ItemState {
  const s: ItemState = { key: item.key, attempts: item.answers };
  if (item.transportRetries) s.retries = item.transportRetries;
  const u = item.usage;
  if (u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens > 0) s.usage = { ...u };
  if (item.conversation) s.messages = item.conversation;
  return s;
}

export async function runBatches(session: StageSession, items: AsyncIterable<PendingItem>, options: BatchRunOptions): Promise<void> {
  const limits = options.limits;
  let client: BatchProvider | undefined;
  const provider = () => (client ??= options.provider());
  const batchesFile = session.paths.batches(session.stage);
  // Opened at the first batch (cutting a line torn by a kill first); each line is flushed to disk
  // before the run goes on: a batch ID must survive a kill -9 right after creation.
  let batchesLog: Promise<JsonlAppender> | undefined;
  const appendDurable = async (line: BatchLine) => {
    const log = await (batchesLog ??= JsonlAppender.open(batchesFile));
    await log.append(line);
    await log.sync();
  };
  const log = options.log ?? (() => {});
  const openBatches = new Map<string, OpenBatch>();
  const { budget, interrupt } = options;
  /** The worst case of each request in an open batch, until its result comes. */
  const reservations = new Map<PendingItem, Reservation>();
  const settle = (item: PendingItem, billed?: Usage) => {
    const r = reservations.get(item);
    if (!r) return;
    reservations.delete(item);
    budget!.settle(r, billed);
  };
  const why = () => (interrupt?.aborted ? "the run was interrupted" : "--max-cost reached");

  // Resume: a key belongs to the last intent or batch that holds it; a fully collected batch is done with.
  const owner = new Map<string, { batch?: string; intent?: Intent; state: ItemState }>();
  const intents = new Map<string, Intent>();
  const collected = new Set<string>();
  // A torn last line is a write never finished (an intent not yet sent, an ID never recorded whole); any other bad line is an error.
  for (const line of (await readJsonl(batchesFile, BatchLine)).records) {
    if ("collected" in line) collected.add(line.collected);
    else if ("batch" in line) {
      const intent = "intent" in line ? intents.get(line.intent) : undefined;
      for (const state of "items" in line ? line.items : (intent?.items ?? [])) owner.set(state.key, { batch: line.batch, state });
    } else if ("staged" in line) {
      const intent = intents.get(line.intent);
      if (intent) intent.staged = line.staged;
    } else {
      const intent: Intent = { tag: line.intent, at: line.at, items: line.items };
      intents.set(intent.tag, intent);
      for (const state of line.items) owner.set(state.key, { intent, state });
    }
  }
  const resumed = new Set<OpenBatch>();
  /** Items of intents whose batch was never recorded: a run was killed while creating it. */
  const unrecorded = new Map<Intent, PendingItem[]>();
  /** Items not in a batch still open: an item of an open batch (or intent) is taken up where it was left. */
  async function* fresh(): AsyncGenerator<PendingItem> {
    for await (const item of items) {
      const o = owner.get(item.key);
      if (!o || (o.batch && collected.has(o.batch))) {
        yield item;
        continue;
      }
      item.answers = o.state.attempts;
      item.transportRetries = o.state.retries ?? 0;
      if (o.state.usage) item.usage = { ...o.state.usage };
      if (o.state.messages) item.conversation = o.state.messages;
      // Billed in an earlier run, and not in the store yet: part of the stage's spend all the same.
      if (o.state.usage) budget?.addStored(o.state.usage);
      if (o.intent) {
        unrecorded.set(o.intent, [...(unrecorded.get(o.intent) ?? []), item]);
        continue;
      }
      let b = openBatches.get(o.batch!);
      if (!b) openBatches.set(o.batch!, (b = { id: o.batch!, items: new Map() }));
      b.items.set(customIdFor(item.key), item);
      resumed.add(b);
      // Created already: it will be billed whatever the cap says now.
      if (budget) reservations.set(item, budget.commit(session.nextCall(item)));
    }
  }

  /** Records the intent, creates the batch, records its ID: after a kill at any point, the file says what may exist. */
  async function create(all: { item: PendingItem; customId: string; call: ProviderCall }[], resumedIntent?: Intent): Promise<void> {
    // The cap is checked per batch before it is created: the requests whose worst case fits go, the
    // others are left (and none after them: the first that does not fit ends the sending).
    const chunk: typeof all = [];
    for (const c of all) {
      const reservation = interrupt?.aborted ? undefined : budget ? budget.reserve(c.call) : { usd: 0 };
      if (!reservation) {
        await session.leave(c.item, why());
        continue;
      }
      if (budget) reservations.set(c.item, reservation);
      chunk.push(c);
    }
    if (chunk.length === 0) return;
    // An intent is a set of items: a smaller set is a new intent.
    let intent = chunk.length === all.length ? resumedIntent : undefined;
    if (!intent) {
      intent = { tag: randomUUID(), at: new Date().toISOString(), items: chunk.map(({ item }) => stateOf(item)) };
      await appendDurable({ intent: intent.tag, at: intent.at, items: intent.items });
    }
    const tag = intent.tag;
    // Input staged for a different set of items cannot be reused: stage it again.
    const staged = resumedIntent?.staged && resumedIntent.items.length === chunk.length ? resumedIntent.staged : undefined;
    const id = await provider().submit(
      chunk.map(({ customId, call }) => ({ customId, call })),
      { tag, staged, onStaged: (ref) => appendDurable({ intent: tag, at: new Date().toISOString(), staged: ref }) },
    );
    await appendDurable({ batch: id, at: new Date().toISOString(), intent: tag });
    openBatches.set(id, { id, items: new Map(chunk.map(({ item, customId }) => [customId, item])) });
    log(`batch ${id}: submitted ${chunk.length} requests`);
  }

  /**
   * An intent without a recorded batch: the create was sent, or about to be, when the run died. A
   * batch the API lists under its tag is adopted; otherwise it is created now, under the same tag.
   */
  async function resolve(intent: Intent, items: PendingItem[]): Promise<void> {
    const found = await provider().find?.(intent.tag, new Date(intent.at));
    if (found) {
      await appendDurable({ batch: found, at: new Date().toISOString(), intent: intent.tag });
      openBatches.set(found, { id: found, items: new Map(items.map((item) => [customIdFor(item.key), item])) });
      // Created already: it will be billed whatever the cap says now.
      if (budget) for (const item of items) reservations.set(item, budget.commit(session.nextCall(item)));
      log(`batch ${found}: adopted (created by an interrupted run, never recorded; ${items.length} requests)`);
      return;
    }
    await create(
      items.map((item) => ({ item, customId: customIdFor(item.key), call: session.nextCall(item) })),
      intent,
    );
  }

  async function submit(items: Iterable<PendingItem> | AsyncIterable<PendingItem>): Promise<void> {
    let chunk: { item: PendingItem; customId: string; call: ProviderCall }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      await create(chunk);
      chunk = [];
      bytes = 0;
    };
    for await (const item of items) {
      // Stopped: the items are left, and the stream is read on, so items of open batches are still found.
      if (interrupt?.aborted || budget?.reached) {
        await session.leave(item, why());
        continue;
      }
      const customId = customIdFor(item.key);
      const call = session.nextCall(item);
      const size = Buffer.byteLength(JSON.stringify(provider().entry(customId, call))) + 1;
      if (size + ENVELOPE_BYTES > limits.maxBytes) {
        await session.fail(item, "api-error", `the request is ${size} bytes, over the batch limit of ${limits.maxBytes} bytes`);
        continue;
      }
      if (chunk.length >= limits.maxRequests || bytes + size + ENVELOPE_BYTES > limits.maxBytes) await flush();
      chunk.push({ item, customId, call });
      bytes += size;
    }
    await flush();
  }

  async function collect(batch: OpenBatch): Promise<void> {
    const seen = new Set<string>();
    const again: PendingItem[] = [];
    // Errored, expired and canceled requests were never answered: asked again as they were, bounded.
    const unanswered = async (item: PendingItem, reason: FailureReason, message: string, permanent = false) => {
      item.transportRetries++;
      session.transportRetries++;
      if (permanent || item.transportRetries >= session.maxAnswers) await session.fail(item, reason, message);
      else again.push(item);
    };
    for await (const r of provider().results(batch.id)) {
      const item = batch.items.get(r.customId);
      // Not ours (a later batch owns the key) or a duplicate line.
      if (!item || seen.has(r.customId)) continue;
      seen.add(r.customId);
      settle(item, r.type === "succeeded" ? r.answer.usage : undefined);
      if (r.type === "succeeded") {
        if ((await session.accept(item, r.answer)) === "reask") again.push(item);
      } else if (r.type === "expired") {
        await unanswered(item, "expired", "the batch expired before this request was processed");
      } else {
        await unanswered(item, "api-error", r.message, r.type === "errored" && r.permanent);
      }
    }
    for (const [customId, item] of batch.items) {
      if (seen.has(customId)) continue;
      settle(item);
      await unanswered(item, "api-error", "no result for this request in the batch results");
    }
    // Re-asks are created and recorded before this batch is marked collected: a kill in between
    // re-reads this batch's results, and each key then belongs to its newest batch.
    openBatches.delete(batch.id);
    if (again.length > 0) await submit(again);
    await appendDurable({ collected: batch.id, at: new Date().toISOString() });
    log(`batch ${batch.id}: collected ${seen.size} results, ${again.length} asked again`);
  }

  const waits = AbortSignal.any([options.signal, interrupt].filter((s): s is AbortSignal => s !== undefined));
  async function poll(): Promise<void> {
    while (openBatches.size > 0) {
      for (const batch of [...openBatches.values()]) {
        if (interrupt?.aborted) return stopPolling();
        options.signal?.throwIfAborted();
        const status = await provider().status(batch.id);
        if (!status) {
          // A recorded batch the API does not know (deleted, another workspace or key): its requests
          // were never answered for us, so they are sent again rather than polled forever.
          openBatches.delete(batch.id);
          for (const item of batch.items.values()) settle(item);
          log(`batch ${batch.id}: not found by the API; its ${batch.items.size} requests are sent again`);
          await submit([...batch.items.values()]);
          await appendDurable({ collected: batch.id, at: new Date().toISOString() });
          continue;
        }
        if (status.ended) await collect(batch);
      }
      if (openBatches.size === 0) return;
      try {
        await delay(options.pollMs, undefined, { signal: waits });
      } catch (e) {
        if (interrupt?.aborted) return stopPolling();
        throw e;
      }
    }
  }

  function stopPolling(): void {
    for (const b of openBatches.values()) log(`batch ${b.id}: still open (${b.items.size} requests); the next run resumes polling it`);
  }

  try {
    await submit(fresh());
    for (const [intent, pending] of unrecorded) await resolve(intent, pending);
    for (const b of resumed) log(`batch ${b.id}: resumed polling (${b.items.size} requests)`);
    await poll();
  } catch (e) {
    // A rejected key or a refused model is the user's to fix, said once and plainly; batches
    // already created stay recorded and are resumed by the next run.
    const c = classifyError(e);
    if (c.kind === "fatal") throw new UserError(fatalMessage(c.status, apiKeyEnv(session.spec, session.config), c.message));
    throw e;
  } finally {
    if (batchesLog) await (await batchesLog).close();
  }
}
