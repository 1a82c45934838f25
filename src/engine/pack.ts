// Packing (--pack N): one request carries up to N items of a stage under one copy of its system
// prompt, and the answer holds one part per item, keyed by the item's number. Each part goes through
// that item's own parse and is stored under that item's own key, exactly as if it had been asked
// alone: packing changes nothing downstream, and a run with another pack size (or none) reuses every
// stored item. An item whose part is missing or fails is asked again alone, with the error stated.
// A stage opts in per request (LlmRequest.packable); the format below is the engine's, one for all.
import { z } from "zod";
import { extractJson } from "../util/json.js";
import { sha256 } from "../util/hash.js";
import { expectedOutput } from "./budget.js";
import { zeroUsage } from "./cost.js";
import type { PendingItem } from "./plan.js";
import type { LlmRequest, ParseResult, Usage } from "./types.js";

/**
 * Appended to the stage's system prompt when items are packed. It does not depend on the number of
 * items, so every pack of a stage (the last, smaller one too) shares one system prompt.
 */
export const PACK_INSTRUCTIONS = `Several items may come in one message, each between <item id="N"> and </item>, numbered from 1.
Treat each item on its own, exactly as the instructions above describe for one item; the items are
unrelated and must not influence each other.

This replaces the answer format above: answer with one JSON object and nothing else,
{"answers": [{"item": 1, "answer": ...}, {"item": 2, "answer": ...}]}, with one entry per item, in
order. "answer" is what you would answer for that item alone: a JSON string when that answer is
plain text, the JSON object itself when it is JSON.`;

/** Tokens a pack adds per item to the answer (`{"item": 3, "answer": …},`), for estimates. */
const ANSWER_OVERHEAD_TOKENS = 8;

const PackAnswer = z.object({
  answers: z.array(z.object({ item: z.number().int(), answer: z.unknown() })),
});

/** The parts of a pack answer by item number (1-based), as raw text for each item's own parse. */
export function splitPackAnswer(raw: string): ParseResult<Map<number, string>> {
  const json = extractJson(raw);
  if (!json.ok) return json;
  const shape = PackAnswer.safeParse(json.value);
  if (!shape.success) return { ok: false, error: 'the answer must be one JSON object {"answers": [{"item": 1, "answer": ...}, ...]}' };
  const parts = new Map<number, string>();
  for (const { item, answer } of shape.data.answers) {
    // A repeated number keeps its first answer; a missing answer is no part.
    if (parts.has(item) || answer === undefined || answer === null) continue;
    parts.set(item, typeof answer === "string" ? answer : JSON.stringify(answer));
  }
  return { ok: true, value: parts };
}

function packSchema(member: LlmRequest): Record<string, unknown> {
  return {
    type: "object",
    properties: {
      answers: {
        type: "array",
        items: {
          type: "object",
          properties: { item: { type: "integer" }, answer: member.jsonSchema ?? { type: "string" } },
          required: ["item", "answer"],
          additionalProperties: false,
        },
      },
    },
    required: ["answers"],
    additionalProperties: false,
  };
}

/** The one request that carries the members: never keyed or stored itself (its members are). */
export function packRequest(members: readonly LlmRequest[]): LlmRequest {
  const first = members[0]!;
  return {
    stage: first.stage,
    itemId: `${first.itemId}+${members.length - 1}`,
    system: `${first.system}\n\n${PACK_INSTRUCTIONS}`,
    user: members.map((m, i) => `<item id="${i + 1}">\n${m.user}\n</item>`).join("\n\n"),
    jsonSchema: packSchema(first),
    schemaVersion: first.schemaVersion,
    maxTokens: members.reduce((s, m) => s + m.maxTokens + 2 * ANSWER_OVERHEAD_TOKENS, 0),
    expectedOutputTokens: members.reduce((s, m) => s + expectedOutput(m) + ANSWER_OVERHEAD_TOKENS, 0),
    parse: (raw) => splitPackAnswer(raw),
    offline: () => {
      throw new Error("packed requests have no offline answer: the offline provider answers each item");
    },
  };
}

/**
 * Items that may go in one pack: same stage, system prompt, schema and parse rules, and the same
 * source split (history-rule.ts): a model answering for one user reads every user of its pack, so a
 * profile written from train's history must not be written beside a dev history, which holds the
 * clicks of train's impressions — its record's source could not say so.
 */
function samePack(a: LlmRequest, b: LlmRequest): boolean {
  return (
    a.stage === b.stage &&
    a.source?.split === b.source?.split &&
    a.system === b.system &&
    a.schemaVersion === b.schemaVersion &&
    (a.jsonSchema === b.jsonSchema || JSON.stringify(a.jsonSchema) === JSON.stringify(b.jsonSchema))
  );
}

/** One unit to send: the members' requests as one, its own counters (its members keep theirs). */
export function packUnit(members: PendingItem[]): PendingItem {
  return {
    key: `pack-${sha256(...members.map((m) => m.key))}`,
    req: packRequest(members.map((m) => m.req)),
    sharers: [],
    answers: 0,
    transportRetries: 0,
    usage: zeroUsage(),
    members,
  };
}

/**
 * Groups packable items into units of up to n, one open group per kind of pack (samePack: a run's
 * users of each source split); anything else passes through alone. Holds at most n items per open
 * group; `held` is every item of the open groups, so a caller whose runner stopped pulling knows
 * which items it took from the stream and never handed out.
 */
export async function* packed(items: AsyncIterable<PendingItem>, n: number, held: PendingItem[] = []): AsyncGenerator<PendingItem> {
  if (n <= 1) {
    yield* items;
    return;
  }
  const groups: PendingItem[][] = [];
  const unit = (group: PendingItem[]): PendingItem => {
    for (const m of group) held.splice(held.indexOf(m), 1);
    return group.length === 1 ? group[0]! : packUnit(group);
  };
  for await (const item of items) {
    if (!item.req.packable) {
      yield item;
      continue;
    }
    let group = groups.find((g) => samePack(g[0]!.req, item.req));
    if (!group) groups.push((group = []));
    group.push(item);
    held.push(item);
    if (group.length >= n) {
      groups.splice(groups.indexOf(group), 1);
      yield unit(group);
    }
  }
  for (const group of groups.splice(0)) yield unit(group);
}

/** Usage split as evenly as whole tokens allow, so the members' records add up to what was billed. */
export function shareUsage(total: Usage, n: number): Usage[] {
  const split = (v: number) => Array.from({ length: n }, (_, i) => Math.floor(v / n) + (i < v % n ? 1 : 0));
  const input = split(total.inputTokens);
  const output = split(total.outputTokens);
  const read = split(total.cacheReadTokens);
  const write = split(total.cacheWriteTokens);
  return input.map((_, i) => ({ inputTokens: input[i]!, outputTokens: output[i]!, cacheReadTokens: read[i]!, cacheWriteTokens: write[i]! }));
}

/**
 * The shares of a pack's answer for the members it carries: the usage is split over every item the
 * pack was sent with (packSize), and each member takes the share of its number. A pack collected
 * again with some items stored already thus gives the others what they would have had, and the
 * stored items' shares are not counted a second time.
 */
export function memberShares(pack: PendingItem, total: Usage): Usage[] {
  const members = pack.members ?? [];
  const all = shareUsage(total, pack.packSize ?? members.length);
  return members.map((_, i) => all[(pack.memberNumbers?.[i] ?? i + 1) - 1]!);
}
