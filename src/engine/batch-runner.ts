// Runs a stage's unanswered requests through a BatchProvider (e.g. the Message Batches API): splits
// them into batches within the provider's limits, records in `<run>/<stage>.batches.jsonl` an intent
// (a tag and the items) BEFORE each create, any input staged for it and the batch ID BEFORE polling,
// collects results in any order, validates each answer with the request's parse, and re-queues
// invalid, refused, cut-off, errored and expired items in a following batch until max-attempts. A
// restart reads the same file: it resumes polling the batches still open and adopts a batch a killed
// run created but never recorded (found by its tag), instead of paying for their items again.
// Validation, records, failures and cost are the engine's StageSession, the same path live answers take.
//
// Memory does not grow with the items in open batches: once a batch is created its items are let go,
// and the runner keeps a hash of each key (which batch holds it) and where the batch's item states are
// in the batches file. When batches end, the stage's requests are planned again and the items of
// those batches picked out, their states read back: a collection is a resume of what it collects.
// A pack (--pack) is a unit of the batch; its state lists its items, which a collection gathers again
// before it splits the answer.
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { UserError } from "../cli/command.js";
import { apiKeyEnv } from "../providers/setup.js";
import { z } from "zod";
import type { BatchItemResult, BatchLimits, BatchProvider, ProviderCall } from "../providers/types.js";
import { sha256 } from "../util/hash.js";
import { classifyError, fatalMessage } from "./errors.js";
import { hash64, HashMap64, HashSet64 } from "./key-index.js";
import { memberShares, packed, packUnit } from "./pack.js";
import { addUsage, billed, zeroUsage } from "./cost.js";
import type { PendingItem } from "./plan.js";
import type { StageSession } from "./session.js";
import type { Budget, Reservation } from "./budget.js";
import { engineJsonlLines, JsonlAppender, JsonlLineReader } from "./store.js";
import { FailureReason, Usage } from "./types.js";

/** Room left under maxBytes for the JSON envelope and separators. */
const ENVELOPE_BYTES = 1024;
/**
 * A batch is created from requests held in memory and sent as one body: whatever the API allows, it
 * is kept to this many bytes so a MIND-large stage stays well under a gigabyte.
 */
export const MEMORY_BATCH_BYTES = 48_000_000;
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
  /**
   * The stage's unanswered items planned again (nothing counted twice): a collection picks out the
   * items of the batches that ended.
   */
  again: () => AsyncIterable<PendingItem>;
  /** Items per request (--pack), for the items a first batch sends. */
  pack: number;
  /** Stops polling (the batches stay recorded, so the next run resumes them). */
  signal?: AbortSignal;
  /**
   * --max-cost: a batch is created only with the requests whose worst case fits; the others are held
   * back and offered again after each collection; open batches are still collected.
   */
  budget?: Budget;
  /** Ctrl-C: no batch is created or polled any more (a create under way finishes and is recorded); the next run resumes. */
  interrupt?: AbortSignal;
  /** One line per batch event (submitted, resumed, collected). */
  log?(line: string): void;
  /**
   * The key of every request this run plans, stored or not. With batches open, a run that does not
   * plan some of their items (another --limit, --shard or --model) refuses before sending anything:
   * a collection stores only the items it plans, so their results would be paid for and dropped.
   */
  plannedKeys?: () => AsyncIterable<string>;
  /** The options that chose the run's requests ("--model m --limit 5"), recorded with each batch to say them back. */
  madeWith?: string;
}

/** What a resumed run needs to carry on an item exactly where the interrupted run left it. */
const MemberState = z.object({
  key: z.string(),
  attempts: z.number().int().nonnegative(),
  retries: z.number().int().nonnegative().optional(),
  usage: Usage.optional(),
  /**
   * What was wrong with its last billed answer, while a repair is due: an item restored from this
   * state and then left (Ctrl-C, the cap) writes it in its failure line, with the usage so far.
   */
  problem: z.object({ reason: FailureReason, error: z.string() }).optional(),
});
const ItemState = MemberState.extend({
  /** The conversation when it is more than the prompt (a repair re-ask). */
  messages: z.array(z.object({ role: z.enum(["user", "assistant"]), content: z.string() })).optional(),
  /** A pack: its items, in item-number order (the key is the pack's own). */
  members: z.array(MemberState).optional(),
});
type ItemState = z.infer<typeof ItemState>;
type MemberState = z.infer<typeof MemberState>;

/**
 * A line of the batches file: an intent to create a batch (its tag and the state of its items), input
 * staged for an intent, a batch created (for an intent, or — in files written before intents — with
 * its items), or a batch fully collected.
 */
const BatchLine = z.union([
  z.object({ batch: z.string(), at: z.string(), intent: z.string() }),
  z.object({ batch: z.string(), at: z.string(), items: z.array(ItemState) }),
  z.object({ collected: z.string(), at: z.string() }),
  z.object({ intent: z.string(), at: z.string(), items: z.array(ItemState), run: z.string().optional() }),
  z.object({ intent: z.string(), at: z.string(), staged: z.string() }),
]);
type BatchLine = z.infer<typeof BatchLine>;

/** A batch (or an intent whose batch was never recorded), as much of it as an open one needs in memory. */
interface Slot {
  /** The batch ID; undefined while only its intent is recorded. */
  id?: string;
  /** The intent's tag; undefined for a batch recorded with its items (files before intents). */
  tag?: string;
  at: string;
  staged?: string;
  /** Byte offset of the line holding its items' states in the batches file. */
  statesAt: number;
  size: number;
  collected: boolean;
  /** The options its run was made with (intents written before they were recorded have none). */
  run?: string;
}

function memberStateOf(item: PendingItem): MemberState {
  const s: MemberState = { key: item.key, attempts: item.answers };
  if (item.transportRetries) s.retries = item.transportRetries;
  if (billed(item.usage)) s.usage = { ...item.usage };
  if (item.problem) s.problem = { ...item.problem };
  return s;
}

function stateOf(item: PendingItem): ItemState {
  const s: ItemState = memberStateOf(item);
  if (item.conversation) s.messages = item.conversation;
  if (item.members) s.members = item.members.map(memberStateOf);
  return s;
}

/** Puts an item back where a state left it. */
function restore(item: PendingItem, s: MemberState & { messages?: ItemState["messages"] }): void {
  item.answers = s.attempts;
  item.transportRetries = s.retries ?? 0;
  if (s.usage) item.usage = { ...s.usage };
  if (s.messages) item.conversation = s.messages;
  if (s.problem) item.problem = { ...s.problem };
}

/** The keys an item holds in a batch: its own, or its members'. */
function keysOf(state: ItemState): string[] {
  return state.members ? state.members.map((m) => m.key) : [state.key];
}

/** What a batches file holds still open: batches (and intents a killed run may have created) not collected, and the items they hold. */
export interface OpenBatches {
  batches: number;
  items: number;
}

/**
 * The open batches of a batches file, read the way a resuming batch run reads them: a key belongs to
 * the last intent or batch that holds it, and counts while that one is not collected. A run that does
 * not resume them (a live one) would pay for those items twice, so it checks this first.
 */
export async function openBatches(file: string): Promise<OpenBatches> {
  const collected = new Set<string>();
  const intentBatch = new Map<string, string>();
  const owner = new HashMap64();
  /** Per items line, in file order: the intent's tag or the batch ID. */
  const names: { tag?: string; id?: string }[] = [];
  for await (const { value: line } of engineJsonlLines(file, BatchLine)) {
    if ("collected" in line) collected.add(line.collected);
    else if ("items" in line) {
      const i = names.push("batch" in line ? { id: line.batch } : { tag: line.intent }) - 1;
      for (const st of line.items) for (const key of keysOf(st)) owner.set(hash64(key), i);
    } else if (!("staged" in line)) intentBatch.set(line.intent, line.batch);
  }
  const open = names.map((n) => {
    const id = n.id ?? intentBatch.get(n.tag!);
    return id === undefined || !collected.has(id);
  });
  // Each key counted once, at its owner (the map holds a key once).
  const owners = new Set<number>();
  let items = 0;
  for (const i of owner.values()) {
    if (!open[i]) continue;
    owners.add(i);
    items++;
  }
  return { batches: owners.size, items };
}

export async function runBatches(session: StageSession, items: AsyncIterable<PendingItem>, options: BatchRunOptions): Promise<void> {
  const limits = { maxRequests: options.limits.maxRequests, maxBytes: Math.min(options.limits.maxBytes, MEMORY_BATCH_BYTES) };
  let client: BatchProvider | undefined;
  const provider = () => (client ??= options.provider());
  const batchesFile = session.paths.batches(session.stage);
  // Opened at the first batch (cutting a line torn by a kill first); each line is flushed to disk
  // before the run goes on: a batch ID must survive a kill -9 right after creation.
  let batchesLog: Promise<JsonlAppender> | undefined;
  const appendDurable = async (line: BatchLine): Promise<number> => {
    const log = await (batchesLog ??= JsonlAppender.open(batchesFile));
    const at = await log.append(line);
    await log.sync();
    return at;
  };
  const reader = new JsonlLineReader(batchesFile);
  const log = options.log ?? (() => {});
  const { budget, interrupt } = options;
  const why = () => (interrupt?.aborted ? "the run was interrupted" : "--max-cost reached");

  const slots: Slot[] = [];
  const byName = new Map<string, number>();
  /** Key → the slot of the last intent or batch that holds it. */
  const owner = new HashMap64();
  /** Key → the worst case reserved for it under --max-cost, until its result comes. */
  const reserved = new HashMap64();
  const isOpen = (s: number | undefined): s is number => s !== undefined && !slots[s]!.collected;

  const addSlot = (slot: Slot, keys: Iterable<string>): number => {
    const i = slots.push(slot) - 1;
    if (slot.tag) byName.set(`intent ${slot.tag}`, i);
    if (slot.id) byName.set(`batch ${slot.id}`, i);
    for (const key of keys) owner.set(hash64(key), i);
    return i;
  };

  // Resume: a key belongs to the last intent or batch that holds it; a fully collected batch is done with.
  // A torn last line is a write never finished (an intent not yet sent, an ID never recorded whole); any other bad line is an error.
  const stored: { slot: number; usage: Usage }[] = [];
  for await (const { value: line, byteOffset } of engineJsonlLines(batchesFile, BatchLine)) {
    if ("collected" in line) {
      const s = byName.get(`batch ${line.collected}`);
      if (s !== undefined) slots[s]!.collected = true;
    } else if ("items" in line) {
      const slot: Slot = { at: line.at, statesAt: byteOffset, size: line.items.length, collected: false };
      if ("batch" in line) slot.id = line.batch;
      else {
        slot.tag = line.intent;
        slot.run = line.run;
      }
      const s = addSlot(slot, line.items.flatMap(keysOf));
      // Billed in an earlier run, and not in the store yet: part of the stage's spend all the same.
      if (budget) for (const st of line.items) for (const m of st.members ?? [st]) if (m.usage) stored.push({ slot: s, usage: m.usage });
    } else if ("staged" in line) {
      const s = byName.get(`intent ${line.intent}`);
      if (s !== undefined) slots[s]!.staged = line.staged;
    } else {
      const s = byName.get(`intent ${line.intent}`);
      if (s !== undefined) {
        slots[s]!.id = line.batch;
        byName.set(`batch ${line.batch}`, s);
      }
    }
  }
  for (const { slot, usage } of stored) if (isOpen(slot)) budget!.addStored(usage);
  const resumed = slots.flatMap((slot, i) => (slot.id && !slot.collected ? [i] : []));
  /** Items of intents whose batch was never recorded: a run was killed while creating it. */
  const unrecorded = new Map<number, PendingItem[]>();

  /** The states of a slot's items, read back from the batches file, by custom_id. */
  const statesOf = async (s: number): Promise<Map<string, ItemState>> => {
    const text = await reader.lineAt(slots[s]!.statesAt);
    const line = BatchLine.parse(JSON.parse(text ?? "null"));
    if (!("items" in line)) throw new Error(`${batchesFile}: no item states at the line of batch ${slots[s]!.id ?? slots[s]!.tag}`);
    return new Map(line.items.map((st) => [customIdFor(st.key), st]));
  };

  /** Takes an item out of the run's memory: its batch holds it, and a collection plans it again. */
  const letGo = (item: PendingItem) => {
    for (const m of item.members ?? [item]) session.release(m);
  };

  /** The reservation of a key, taken (a settled key keeps -1: the map has no delete). */
  const reservationOf = (key: string): Reservation | undefined => {
    const h = hash64(key);
    const usd = reserved.get(h);
    if (usd === undefined || usd < 0) return undefined;
    reserved.set(h, -1);
    return { usd };
  };
  const hasReservation = (key: string) => (reserved.get(hash64(key)) ?? -1) >= 0;
  /** Its result came (or never will): what it was billed is spent, its reservation (its items', for a pack resumed item by item) goes. */
  const settle = (unit: PendingItem, billed?: Usage) => {
    if (!budget) return;
    let first = true;
    for (const key of [unit.key, ...(unit.members ?? []).map((m) => m.key)]) {
      const r = reservationOf(key);
      if (!r) continue;
      budget.settle(r, first ? billed : undefined);
      first = false;
    }
    if (first && billed) budget.addStored(billed);
  };

  /** Records the intent, creates the batch, records its ID: after a kill at any point, the file says what may exist. */
  async function create(all: { item: PendingItem; customId: string; call: ProviderCall }[], resumedIntent?: number): Promise<void> {
    // The cap is checked per batch before it is created: the requests whose worst case fits go, the
    // others are left (and none after them: the first that does not fit ends the sending).
    const chunk: typeof all = [];
    const reservations: (Reservation | undefined)[] = [];
    for (const c of all) {
      const reservation = interrupt?.aborted ? undefined : budget ? budget.reserve(c.call) : { usd: 0 };
      if (!reservation) {
        await hold(c.item);
        continue;
      }
      reservations.push(budget ? reservation : undefined);
      chunk.push(c);
    }
    if (chunk.length === 0) return;
    // An intent is a set of items: a smaller set is a new intent.
    const old = resumedIntent !== undefined && chunk.length === all.length ? slots[resumedIntent] : undefined;
    let s = resumedIntent;
    if (!old) {
      const at = new Date().toISOString();
      const tag = randomUUID();
      const states = chunk.map(({ item }) => stateOf(item));
      const statesAt = await appendDurable({ intent: tag, at, items: states, ...(options.madeWith ? { run: options.madeWith } : {}) });
      s = addSlot({ tag, at, statesAt, size: chunk.length, collected: false, run: options.madeWith }, states.flatMap(keysOf));
    }
    const slot = slots[s!]!;
    const tag = slot.tag!;
    // Input staged for a different set of items cannot be reused: stage it again.
    const staged = old?.staged;
    const id = await provider().submit(
      chunk.map(({ customId, call }) => ({ customId, call })),
      { tag, staged, onStaged: async (ref) => void (await appendDurable({ intent: tag, at: new Date().toISOString(), staged: ref })) },
    );
    await appendDurable({ batch: id, at: new Date().toISOString(), intent: tag });
    slot.id = id;
    byName.set(`batch ${id}`, s!);
    chunk.forEach(({ item }, i) => {
      if (reservations[i]) reserved.set(hash64(item.key), reservations[i]!.usd);
      letGo(item);
    });
    log(`batch ${id}: submitted ${chunk.length} requests`);
  }

  /** An item the run will not send (--max-cost, Ctrl-C): a pack, each of its items. */
  async function leave(item: PendingItem): Promise<void> {
    await session.leave(item, why());
    for (const m of item.members ?? [item]) givenUp.add(hash64(m.key));
    letGo(item);
  }

  /** Keys left for good in this run (their state is gone): a later offer does not send them. */
  const givenUp = new HashSet64();
  /** Items held back by --max-cost since the last collection: offered again when one brings the real cost. */
  let waiting = false;

  /**
   * An item whose worst case does not fit beside the open batches' now. Their real cost is often far
   * below their worst case, so a fresh item is only let go and offered again after each collection;
   * one that carries what earlier attempts were billed (or its retries) is left, as before, so that
   * state is written (or counted) and never lost.
   */
  async function hold(item: PendingItem): Promise<void> {
    if (interrupt?.aborted || !budget) return leave(item);
    const carries = (m: PendingItem) => m.answers > 0 || m.transportRetries > 0 || m.problem !== undefined || billed(m.usage);
    if (carries(item) || (item.members ?? []).some(carries)) return leave(item);
    waiting = true;
    letGo(item);
  }

  /** The items no open batch holds and not left for good: planned again, packed, and offered. */
  async function* unsent(): AsyncGenerator<PendingItem> {
    for await (const item of options.again()) {
      const h = hash64(item.key);
      if (isOpen(owner.get(h)) || givenUp.has(h)) letGo(item);
      else yield item;
    }
  }

  /**
   * After a collection settled what its batches were billed, the cap is looked at again: the items
   * held back are offered, and those whose worst case fits now go in new batches.
   */
  async function offerHeld(): Promise<void> {
    if (!waiting || !budget || interrupt?.aborted) return;
    waiting = false;
    budget.recheck();
    const submitter = new Submitter();
    for await (const unit of packed(unsent(), options.pack)) await submitter.add(unit);
    await submitter.flush();
  }

  /** The run ends with items still held back (the cap, or Ctrl-C while polling): each is left, and counted. */
  async function leaveHeld(): Promise<void> {
    if (!waiting) return;
    waiting = false;
    for await (const item of unsent()) await leave(item);
  }

  /** Gathers items into batches within the limits; a batch is created as soon as it is full. */
  class Submitter {
    private chunk: { item: PendingItem; customId: string; call: ProviderCall }[] = [];
    private bytes = 0;

    async add(item: PendingItem): Promise<void> {
      // Stopped: the items are left (or held back until a collection), and the stream is read on, so
      // items of open batches are still found.
      if (interrupt?.aborted) return leave(item);
      if (budget?.reached) return hold(item);
      const customId = customIdFor(item.key);
      const call = session.nextCall(item);
      const size = Buffer.byteLength(JSON.stringify(provider().entry(customId, call))) + 1;
      if (size + ENVELOPE_BYTES > options.limits.maxBytes) {
        await session.fail(item, "api-error", `the request is ${size} bytes, over the batch limit of ${options.limits.maxBytes} bytes`);
        return;
      }
      if (this.chunk.length > 0 && (this.chunk.length >= limits.maxRequests || this.bytes + size + ENVELOPE_BYTES > limits.maxBytes)) await this.flush();
      this.chunk.push({ item, customId, call });
      this.bytes += size;
    }

    async flush(): Promise<void> {
      const chunk = this.chunk;
      this.chunk = [];
      this.bytes = 0;
      if (chunk.length > 0) await create(chunk);
    }
  }

  /** The first planning: items no open batch holds are sent (packed), the others let go until their batch ends. */
  async function* fresh(): AsyncGenerator<PendingItem> {
    for await (const item of items) {
      const s = owner.get(hash64(item.key));
      if (!isOpen(s)) {
        yield item;
        continue;
      }
      const slot = slots[s]!;
      if (!slot.id) {
        // Its intent was recorded, its batch never: created again (or adopted) below, under the same tag.
        unrecorded.set(s, [...(unrecorded.get(s) ?? []), item]);
        continue;
      }
      // Created already: it will be billed whatever the cap says now.
      if (budget && !hasReservation(item.key)) reserved.set(hash64(item.key), budget.commit(session.nextCall(item)).usd);
      letGo(item);
    }
  }

  /**
   * An intent without a recorded batch: the create was sent, or about to be, when the run died. A
   * batch the API lists under its tag is adopted; otherwise it is created now, under the same tag.
   */
  async function resolve(s: number, members: PendingItem[]): Promise<void> {
    const slot = slots[s]!;
    const states = await statesOf(s);
    const byKey = new Map(members.map((m) => [m.key, m]));
    // The intent's units as they were: an item alone, or a pack of its members in their numbers.
    const units: PendingItem[] = [];
    for (const st of states.values()) {
      if (st.members) {
        const ms = st.members.flatMap((m) => {
          const item = byKey.get(m.key);
          if (item) restore(item, m);
          return item ? [item] : [];
        });
        if (ms.length === st.members.length) units.push(packUnit(ms));
        else units.push(...ms);
      } else {
        const item = byKey.get(st.key);
        if (!item) continue;
        restore(item, st);
        units.push(item);
      }
    }
    const found = await provider().find?.(slot.tag!, new Date(slot.at));
    if (found) {
      await appendDurable({ batch: found, at: new Date().toISOString(), intent: slot.tag! });
      slot.id = found;
      byName.set(`batch ${found}`, s);
      for (const unit of units) {
        // Created already: it will be billed whatever the cap says now.
        if (budget) reserved.set(hash64(unit.key), budget.commit(session.nextCall(unit)).usd);
        letGo(unit);
      }
      log(`batch ${found}: adopted (created by an interrupted run, never recorded; ${units.length} requests)`);
      return;
    }
    // The same items are created under the same tag; fewer make a new intent, and this one is done with.
    const same = units.length === states.size;
    if (!same) slot.collected = true;
    await create(
      units.map((item) => ({ item, customId: customIdFor(item.key), call: session.nextCall(item) })),
      same ? s : undefined,
    );
  }

  /**
   * Collects batches that ended (or that the API no longer knows: `lost`): their results and their
   * items' states are read, the stage's items planned again and theirs picked out, gathered into
   * their packs, and each answer given to the session; what must be asked again goes into new
   * batches, which are created before these are marked collected (a kill in between collects them
   * again, and each key then belongs to its newest batch).
   */
  async function collect(ended: number[], lost: ReadonlySet<number>): Promise<void> {
    const collecting = new Set(ended);
    // Per batch: a key re-asked in a later batch is in both, and only its owner's result counts.
    const results = new Map<number, Map<string, BatchItemResult>>();
    const states = new Map<number, Map<string, ItemState>>();
    /** Per batch: member key → its pack's custom_id. */
    const packOf = new Map<number, Map<string, string>>();
    for (const s of ended) {
      const mine = await statesOf(s);
      states.set(s, mine);
      const packs = new Map<string, string>();
      for (const [customId, st] of mine) for (const m of st.members ?? []) packs.set(m.key, customId);
      packOf.set(s, packs);
      const got = new Map<string, BatchItemResult>();
      results.set(s, got);
      if (lost.has(s)) continue;
      for await (const r of provider().results(slots[s]!.id!)) {
        // Not ours or a duplicate line.
        if (mine.has(r.customId) && !got.has(r.customId)) got.set(r.customId, r);
      }
    }
    const submitter = new Submitter();
    const counts = new Map(ended.map((s) => [s, { answered: 0, again: 0 }]));
    // Errored, expired and canceled requests were never answered: asked again as they were, bounded.
    const take = async (unit: PendingItem, customId: string, s: number) => {
      const count = counts.get(s)!;
      // Errored, expired and canceled requests were never answered: asked again as they were, bounded.
      const unanswered = async (reason: FailureReason, message: string, permanent = false) => {
        unit.transportRetries++;
        session.transportRetries++;
        if (permanent || unit.transportRetries >= session.maxAnswers) await session.fail(unit, reason, message);
        else {
          count.again++;
          await submitter.add(unit);
        }
      };
      const r = results.get(s)!.get(customId);
      // A pack collected again with items stored already: their shares were counted from the store.
      const billed = r?.type !== "succeeded" ? undefined : unit.packSize ? memberShares(unit, r.answer.usage).reduce((a, u) => addUsage(a, u), zeroUsage()) : r.answer.usage;
      settle(unit, billed);
      if (lost.has(s)) {
        // Never answered for us: sent again as it was, at no attempt's cost.
        count.again++;
        return submitter.add(unit);
      }
      if (!r) return unanswered("api-error", "no result for this request in the batch results");
      count.answered++;
      if (r.type === "succeeded") {
        const reasks = await session.accept(unit, r.answer);
        count.again += reasks.length;
        for (const item of reasks) await submitter.add(item);
      } else if (r.type === "expired") await unanswered("expired", "the batch expired before this request was processed");
      else await unanswered("api-error", r.message, r.type === "errored" && r.permanent);
    };
    /** Packs whose items are being gathered: custom_id → members by item number, and the batch. */
    const gathering = new Map<string, { s: number; members: (PendingItem | undefined)[]; got: number }>();
    for await (const item of options.again()) {
      const s = owner.get(hash64(item.key));
      if (s === undefined || !collecting.has(s)) {
        // In a batch still open, left, or of a batch collected already: not this collection's.
        letGo(item);
        continue;
      }
      const packId = packOf.get(s)!.get(item.key);
      if (packId === undefined) {
        const customId = customIdFor(item.key);
        const st = states.get(s)!.get(customId);
        if (!st) {
          letGo(item);
          continue;
        }
        restore(item, st);
        await take(item, customId, s);
        continue;
      }
      const st = states.get(s)!.get(packId)!;
      const n = st.members!.findIndex((m) => m.key === item.key);
      restore(item, st.members![n]!);
      let g = gathering.get(packId);
      if (!g) gathering.set(packId, (g = { s, members: st.members!.map(() => undefined), got: 0 }));
      if (g.members[n] === undefined) g.got++;
      g.members[n] = item;
      if (g.got === g.members.length) {
        gathering.delete(packId);
        const unit = packUnit(g.members as PendingItem[]);
        unit.transportRetries = st.retries ?? 0;
        await take(unit, packId, s);
      }
    }
    // A pack some of whose items the planning no longer gives (stored since, or gone from the data):
    // its answer is split for the items that are still asked, by their numbers.
    for (const [packId, { s, members }] of gathering) {
      const st = states.get(s)!.get(packId)!;
      const present = members.flatMap((m, i) => (m ? [{ m, n: i + 1 }] : []));
      const unit = packUnit(present.map((p) => p.m));
      unit.memberNumbers = present.map((p) => p.n);
      unit.packSize = members.length;
      unit.transportRetries = st.retries ?? 0;
      await take(unit, packId, s);
    }
    await submitter.flush();
    for (const s of ended) {
      slots[s]!.collected = true;
      await appendDurable({ collected: slots[s]!.id!, at: new Date().toISOString() });
      const { answered, again } = counts.get(s)!;
      log(lost.has(s) ? `batch ${slots[s]!.id}: not found by the API; its ${slots[s]!.size} requests are sent again` : `batch ${slots[s]!.id}: collected ${answered} results, ${again} asked again`);
    }
  }

  const waits = AbortSignal.any([options.signal, interrupt].filter((s): s is AbortSignal => s !== undefined));
  const openIds = () => slots.flatMap((slot, i) => (slot.id && !slot.collected ? [i] : []));
  async function poll(): Promise<void> {
    while (openIds().length > 0) {
      const ended: number[] = [];
      const lost = new Set<number>();
      for (const s of openIds()) {
        if (interrupt?.aborted) return stopPolling();
        options.signal?.throwIfAborted();
        const status = await provider().status(slots[s]!.id!);
        // A recorded batch the API does not know (deleted, another workspace or key): its requests
        // were never answered for us, so they are sent again rather than polled forever.
        if (!status) lost.add(s);
        if (!status || status.ended) ended.push(s);
      }
      // Batches that ended together are collected together, one planning for as many items as a batch holds.
      for (let i = 0; i < ended.length; ) {
        const group = [ended[i++]!];
        let size = slots[group[0]!]!.size;
        while (i < ended.length && size + slots[ended[i]!]!.size <= limits.maxRequests) {
          size += slots[ended[i]!]!.size;
          group.push(ended[i++]!);
        }
        await collect(group, lost);
      }
      if (ended.length > 0) await offerHeld();
      if (openIds().length === 0) return;
      try {
        await delay(options.pollMs, undefined, { signal: waits });
      } catch (e) {
        if (interrupt?.aborted) return stopPolling();
        throw e;
      }
    }
  }

  function stopPolling(): void {
    for (const s of openIds()) log(`batch ${slots[s]!.id}: still open (${slots[s]!.size} requests); the next run resumes polling it`);
  }

  /**
   * Open batches holding items this run does not plan: their collection would drop those results
   * (paid for, not stored, asked again later). Said before anything is sent, with the options the
   * batches were made with.
   */
  async function refuseUnplanned(): Promise<void> {
    const open = slots.flatMap((slot, i) => (slot.collected ? [] : [i]));
    if (open.length === 0 || !options.plannedKeys) return;
    const planned = new HashSet64();
    for await (const key of options.plannedKeys()) planned.add(hash64(key));
    let missing = 0;
    const batches = new Set<number>();
    for (const s of open) {
      for (const st of (await statesOf(s)).values()) {
        for (const key of keysOf(st)) {
          const h = hash64(key);
          if (owner.get(h) !== s || planned.has(h)) continue;
          missing++;
          batches.add(s);
        }
      }
    }
    if (missing === 0) return;
    const made = [...new Set([...batches].map((s) => slots[s]!.run ?? "options not recorded (an older run)"))].join("; ");
    throw new UserError(
      `${session.stage}: ${batches.size} open batch(es) in ${batchesFile} hold ${missing.toLocaleString("en-US")} item(s) this run does not plan ` +
        `(they were made with: ${made}; this run: ${options.madeWith ?? "?"}); collecting them now would pay for those results and store none of them. ` +
        `Run the command with the options the batches were made with to collect them first, then change the options; ` +
        `or, to abandon them and pay for their items again, delete ${batchesFile}.`,
      2,
    );
  }

  try {
    await refuseUnplanned();
    const submitter = new Submitter();
    for await (const unit of packed(fresh(), options.pack)) await submitter.add(unit);
    await submitter.flush();
    for (const [s, members] of unrecorded) await resolve(s, members);
    for (const s of resumed) if (!slots[s]!.collected) log(`batch ${slots[s]!.id}: resumed polling (${slots[s]!.size} requests)`);
    await poll();
    // Nothing open any more (or Ctrl-C): no collection will make room, so what is held back is left.
    await leaveHeld();
  } catch (e) {
    // A rejected key or a refused model is the user's to fix, said once and plainly; batches
    // already created stay recorded and are resumed by the next run.
    const c = classifyError(e);
    if (c.kind === "fatal") throw new UserError(fatalMessage(c.status, apiKeyEnv(session.spec, session.config), c.message));
    throw e;
  } finally {
    await reader.close();
    if (batchesLog) await (await batchesLog).close();
  }
}
