import Anthropic from "@anthropic-ai/sdk";
import { mkdtemp, readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { customIdFor, runBatches, type BatchRunOptions } from "../src/engine/batch-runner.js";
import type { FailureRecord, LlmRequest, StageRecord } from "../src/engine/types.js";
import { AnthropicBatchProvider } from "../src/providers/anthropic-batch.js";
import { createFakeAnthropic, type FakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { installBatches, type FakeBatches, type FakeBatchesOptions } from "./fakes/anthropic-batches.js";

const SCHEMA = { type: "object", properties: { topic: { type: "string" } }, required: ["topic"], additionalProperties: false };

/** The fake answers with the item's own ID, so a result mapped to the wrong item shows. */
function answer(body: FakeMessageRequest): string {
  const first = body.messages[0]!.content;
  const text = typeof first === "string" ? first : first.map((b) => b.text ?? "").join("");
  return JSON.stringify({ topic: `about ${/item (\S+)/.exec(text)?.[1]}` });
}

function request(itemId: string): LlmRequest<{ topic: string }> {
  return {
    stage: "summarize",
    itemId,
    system: "Give the topic of the news item as JSON.",
    user: `Title of item ${itemId}: markets move`,
    jsonSchema: SCHEMA,
    schemaVersion: "1",
    maxTokens: 100,
    parse(raw) {
      try {
        const v = JSON.parse(raw) as { topic?: unknown };
        if (typeof v.topic !== "string") return { ok: false, error: "topic: expected a string" };
        return { ok: true, value: { topic: v.topic } };
      } catch {
        return { ok: false, error: "the answer is not JSON" };
      }
    },
    offline: () => '{"topic":"offline"}',
  };
}

/** Keys as the engine makes them are opaque; these contain characters custom_id forbids. */
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `summarize:N${i}:v1`, request: request(`N${i}`) }));

let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function setup(batchOptions: FakeBatchesOptions = {}) {
  fake = await createFakeAnthropic({ answer });
  const batches = installBatches(fake, batchOptions);
  const client = new Anthropic({ apiKey: "test-key", baseURL: fake.url, maxRetries: 0 });
  const provider = new AnthropicBatchProvider({ client, model: "claude-haiku-4-5" });
  const dir = await mkdtemp(join(tmpdir(), "genre-batch-"));
  const records: StageRecord[] = [];
  const failures: FailureRecord[] = [];
  const run = (extra: Partial<BatchRunOptions> & { items: BatchRunOptions["items"] }) =>
    runBatches({
      stage: "summarize",
      provider,
      batchesFile: join(dir, "summarize.batches.jsonl"),
      maxAttempts: 3,
      pollMs: 1,
      sink: {
        record: async (r) => void records.push(r),
        failure: async (f) => void failures.push(f),
      },
      ...extra,
    });
  return { batches, provider, dir, records, failures, run, batchesFile: join(dir, "summarize.batches.jsonl") };
}

function byItem(records: StageRecord[]) {
  return Object.fromEntries(records.map((r) => [r.itemId, r.output]));
}

function requestsOf(b: FakeBatches, index: number) {
  return [...b.batches.values()][index]!.requests;
}

describe("anthropic-batch through the batch runner and the fake Message Batches API", () => {
  it("maps custom_ids back to their items, whatever order the results come in", async () => {
    const t = await setup({ order: "shuffled" });
    const result = await t.run({ items: items(12) });
    expect(result).toMatchObject({ done: 12, failed: 0, retried: 0, submitted: 1, resumed: 0 });
    const sent = requestsOf(t.batches, 0).map((r) => r.custom_id);
    expect(sent).toEqual(items(12).map((i) => customIdFor(i.key)));
    for (const id of sent) expect(id).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    const order = [...t.batches.batches.values()][0]!.results!.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(order).not.toEqual(sent);
    expect(byItem(t.records)).toEqual(Object.fromEntries(items(12).map((i) => [i.request.itemId, { topic: `about ${i.request.itemId}:` }])));
    expect(t.records.every((r) => r.provider === "anthropic-batch" && r.model === "claude-haiku-4-5" && r.attempts === 1)).toBe(true);
    expect(result.usage.inputTokens).toBe(t.records.reduce((s, r) => s + r.usage.inputTokens, 0));
    expect(result.usage.outputTokens).toBeGreaterThan(0);
  });

  it("uses a key as its custom_id when the API accepts it, and hashes it otherwise", () => {
    expect(customIdFor("a".repeat(64))).toBe("a".repeat(64));
    expect(customIdFor("summarize:N1")).toMatch(/^[0-9a-f]{64}$/);
    expect(customIdFor("summarize:N1")).not.toBe(customIdFor("summarize:N2"));
  });

  it("splits into batches within the request-count and byte limits", async () => {
    const t = await setup();
    const byCount = await t.run({ items: items(25), limits: { maxRequests: 10 } });
    expect(byCount).toMatchObject({ done: 25, submitted: 3 });
    expect([...t.batches.batches.values()].map((b) => b.requests.length)).toEqual([10, 10, 5]);

    const t2 = await setup({ limits: { maxBytes: 4000 } });
    // One request body is ~600 bytes here: 4,000 bytes hold a handful, never more.
    const bySize = await t2.run({ items: items(20), limits: { maxBytes: 4000 } });
    expect(bySize.done).toBe(20);
    const sizes = [...t2.batches.batches.values()].map((b) => Buffer.byteLength(JSON.stringify({ requests: b.requests })));
    expect(sizes.length).toBeGreaterThan(2);
    for (const s of sizes) expect(s).toBeLessThanOrEqual(4000);
  });

  it("records each batch ID in the batches file before polling it", async () => {
    const t = await setup();
    const persistedAtFirstPoll: boolean[] = [];
    t.batches.on("retrieve", (b: { id: string; polls: number }) => {
      if (b.polls === 1) persistedAtFirstPoll.push(readFileSync(t.batchesFile, "utf8").includes(`"batch":"${b.id}"`));
    });
    await t.run({ items: items(6), limits: { maxRequests: 2 } });
    expect(persistedAtFirstPoll).toEqual([true, true, true]);
    const lines = (await readFile(t.batchesFile, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => "batch" in l)).toHaveLength(3);
    expect(lines.filter((l) => "collected" in l)).toHaveLength(3);
  });

  it("resumes polling persisted batches after a restart instead of resubmitting their items", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run({ items: items(8), signal: stop.signal })).rejects.toThrow();
    expect(t.batches.creates).toBe(1);
    expect(t.records).toHaveLength(0);

    t.batches.release();
    const resumed = await t.run({ items: items(8) });
    expect(resumed).toMatchObject({ done: 8, submitted: 0, resumed: 1 });
    expect(t.batches.creates).toBe(1);
    expect(new Set(t.records.map((r) => r.itemId)).size).toBe(8);

    // A third run with nothing left to ask polls nothing and creates nothing.
    const polls = [...t.batches.batches.values()][0]!.polls;
    const idle = await t.run({ items: [] });
    expect(idle).toMatchObject({ done: 0, submitted: 0, resumed: 0 });
    expect([...t.batches.batches.values()][0]!.polls).toBe(polls);
  });

  it("after a restart, sends only the items no open batch holds", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run({ items: items(4), signal: stop.signal })).rejects.toThrow();
    t.batches.release();
    const result = await t.run({ items: items(6) });
    expect(result).toMatchObject({ done: 6, submitted: 1, resumed: 1 });
    expect(requestsOf(t.batches, 1).map((r) => r.custom_id)).toEqual(items(6).slice(4).map((i) => customIdFor(i.key)));
  });

  it("re-queues errored and expired items, and gives up on permanent errors", async () => {
    const t = await setup({
      itemFault: ({ body, n }) => {
        const user = JSON.stringify(body.messages[0]);
        if (user.includes("item N0:") && n === 1) return { type: "errored", errorType: "overloaded_error", message: "Overloaded" };
        if (user.includes("item N1:") && n === 1) return { type: "expired" };
        if (user.includes("item N2:")) return { type: "errored", errorType: "invalid_request_error", message: "prompt is too long" };
        if (user.includes("item N3:")) return { type: "expired" };
        return undefined;
      },
    });
    const result = await t.run({ items: items(5) });
    expect(result).toMatchObject({ done: 3, failed: 2, retried: 3, submitted: 3, failedByReason: { "api-error": 1, expired: 1 } });
    expect(requestsOf(t.batches, 1).map((r) => r.custom_id).sort()).toEqual([0, 1, 3].map((i) => customIdFor(`summarize:N${i}:v1`)).sort());
    expect(requestsOf(t.batches, 2).map((r) => r.custom_id)).toEqual([customIdFor("summarize:N3:v1")]);
    const failed = Object.fromEntries(t.failures.map((f) => [f.itemId, f]));
    expect(failed.N2).toMatchObject({ reason: "api-error", attempts: 1 });
    expect(failed.N2!.message).toMatch(/prompt is too long/);
    expect(failed.N3).toMatchObject({ reason: "expired", attempts: 3 });
    expect(t.records.find((r) => r.itemId === "N0")!.attempts).toBe(2);
  });

  it("repairs an invalid answer in a following batch, stating the error", async () => {
    const t = await setup({
      itemFault: ({ body, n }) => (JSON.stringify(body.messages[0]).includes("item N1:") && n === 1 ? { type: "invalid", text: '{"subject":"x"}' } : undefined),
    });
    const result = await t.run({ items: items(3) });
    expect(result).toMatchObject({ done: 3, failed: 0, retried: 1, submitted: 2 });
    const repair = requestsOf(t.batches, 1);
    expect(repair).toHaveLength(1);
    const messages = repair[0]!.params.messages;
    expect(messages).toHaveLength(3);
    expect(messages[1]).toEqual({ role: "assistant", content: '{"subject":"x"}' });
    expect(JSON.stringify(messages[2])).toContain("topic: expected a string");
    const n1 = t.records.find((r) => r.itemId === "N1")!;
    expect(n1).toMatchObject({ attempts: 2, output: { topic: "about N1:" } });
    // Both attempts are billed to the item.
    const single = t.records.find((r) => r.itemId === "N0")!;
    expect(n1.usage.inputTokens).toBeGreaterThan(single.usage.inputTokens * 1.5);
  });

  it("re-asks refusals and truncated answers, then writes them to failures with their reason", async () => {
    const t = await setup({
      itemFault: ({ body }) => {
        const user = JSON.stringify(body.messages[0]);
        if (user.includes("item N0:")) return { type: "refusal" };
        if (user.includes("item N1:")) return { type: "truncated" };
        return undefined;
      },
    });
    const result = await t.run({ items: items(3), maxAttempts: 2 });
    expect(result).toMatchObject({ done: 1, failed: 2, failedByReason: { refusal: 1, truncated: 1 } });
    expect(t.failures.map((f) => [f.itemId, f.reason, f.attempts]).sort()).toEqual([
      ["N0", "refusal", 2],
      ["N1", "truncated", 2],
    ]);
    expect(t.failures.every((f) => f.lastAnswer !== undefined && f.usage.outputTokens > 0)).toBe(true);
  });

  it("asks once for items that share a key and records each of them", async () => {
    const t = await setup();
    const shared = [
      { key: "same-key", request: request("A") },
      { key: "same-key", request: { ...request("B"), user: request("A").user } },
    ];
    const result = await t.run({ items: shared });
    expect(result.done).toBe(2);
    expect(requestsOf(t.batches, 0)).toHaveLength(1);
    expect(t.records.map((r) => r.itemId).sort()).toEqual(["A", "B"]);
  });
});
