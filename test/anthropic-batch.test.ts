// anthropic-batch end to end: runEngine → batch runner → AnthropicBatchProvider → real SDK → the fake
// Message Batches API. Waits on the fake's events and the runner's own completion, never on time.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import Anthropic, { APIError } from "@anthropic-ai/sdk";
import { describe, expect, it, vi } from "vitest";
import { UserError } from "../src/cli/command.js";
import { customIdFor } from "../src/engine/batch-runner.js";
import { costUsd } from "../src/engine/cost.js";
import { requestKey, runEngineWith, type EngineDeps } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { FailureRecord, StageRecord, type LlmRequest } from "../src/engine/types.js";
import { AnthropicBatchProvider } from "../src/providers/anthropic-batch.js";
import { runPaths } from "../src/run/folder.js";
import { createFakeAnthropic, type FakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { installBatches, type FakeBatches, type FakeBatchesOptions } from "./fakes/anthropic-batches.js";
import { config, context, tempDir, titleAnswer, titleRequests } from "./engine-helpers.js";
import { childEnv, nodeArgs } from "./helpers/child.js";
import { runCliCaptured } from "./helpers/cli.js";

let fake: FakeAnthropic | undefined;

const userOf = (body: FakeMessageRequest) => JSON.stringify(body.messages[0]);
/** The item a batch request is for, from its prompt ("news N3"). */
const itemOf = (body: FakeMessageRequest) => /news (N\d+)/.exec(userOf(body))?.[1];

async function setup(batchOptions: FakeBatchesOptions = {}) {
  fake = await createFakeAnthropic({ answer: titleAnswer });
  const batches = installBatches(fake, batchOptions);
  const dir = await tempDir();
  const paths = runPaths(dir);
  const run = (requests: LlmRequest[], over: Record<string, unknown> = {}, deps: EngineDeps = {}) => {
    const ctx = context({ ANTHROPIC_API_KEY: "test-key" });
    return runEngineWith(
      { stage: "summarize", requests, runDir: dir },
      config({ provider: "anthropic-batch", "base-url": fake!.url, ...over }),
      ctx,
      { batchPollMs: 1, ...deps },
    ).then((summary) => ({ summary, ctx }));
  };
  const records = async () => (await readJsonl(paths.records("summarize"), StageRecord)).records;
  const failures = async () => (await readJsonl(paths.failures("summarize"), FailureRecord)).records;
  return { batches, dir, paths, run, records, failures, batchesFile: paths.batches("summarize") };
}

function sent(b: FakeBatches, index: number) {
  return [...b.batches.values()][index]!.requests;
}

describe("anthropic-batch through runEngine and the fake Message Batches API", () => {
  it("maps custom_ids back to their items whatever order the results come in, at half price", async () => {
    const t = await setup({ order: "shuffled" });
    const { summary } = await t.run(titleRequests(12));
    expect(summary.counts).toMatchObject({ items: 12, done: 12, failed: 0, retried: 0 });
    const requests = sent(t.batches, 0);
    const resultOrder = [...t.batches.batches.values()][0]!.results!.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(resultOrder).not.toEqual(requests.map((r) => r.custom_id));
    for (const r of requests) expect(r.custom_id).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);

    const records = await t.records();
    expect(records.map((r) => [r.itemId, r.output]).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => [`N${i}`, { title: `Title for N${i}` }]).sort(),
    );
    // Each record's key is the custom_id its request was sent under.
    const byCustomId = new Map(requests.map((r) => [r.custom_id, itemOf(r.params)]));
    for (const r of records) expect(byCustomId.get(customIdFor(r.key))).toBe(r.itemId);
    expect(records.every((r) => r.provider === "anthropic-batch" && r.attempts === 1)).toBe(true);

    expect(summary.usage.inputTokens).toBeGreaterThan(0);
    const live = costUsd(summary.usage, "anthropic", "claude-haiku-4-5", "live")!;
    // Haiku 4.5: $1 / $5 per million input / output tokens, halved for batches.
    expect(live).toBeCloseTo((summary.usage.inputTokens * 1 + summary.usage.outputTokens * 5) / 1e6, 10);
    expect(summary.costUsd).toBeCloseTo(live / 2, 10);
  });

  it("asks once for items with an identical prompt, in a batch and in a resumed one, and gives each its record", async () => {
    // D0 and D1 render the same prompts as N0 and N1 (two news rows alike).
    const twins = (n: number) => titleRequests(n).flatMap((r) => (r.itemId === "N0" || r.itemId === "N1" ? [r, { ...r, itemId: `D${r.itemId.slice(1)}` }] : [r]));
    const t = await setup({ hold: true, itemFault: ({ body, n }) => (itemOf(body) === "N1" && n === 1 ? { type: "invalid", text: "not json" } : undefined) });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run(twins(3), {}, { batchSignal: stop.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(sent(t.batches, 0).map((r) => itemOf(r.params)).sort()).toEqual(["N0", "N1", "N2"]);

    t.batches.release();
    const { summary, ctx } = await t.run(twins(3));
    expect(summary.counts).toMatchObject({ items: 5, done: 5, failed: 0, retried: 2 });
    expect(ctx.err.text()).toMatch(/resumed polling \(3 requests\)/);
    // The repair of N1's invalid answer is sent once, for N1 and D1 together.
    expect(t.batches.creates).toBe(2);
    expect(sent(t.batches, 1).map((r) => itemOf(r.params))).toEqual(["N1"]);
    const records = await t.records();
    expect(records.map((r) => r.itemId).sort()).toEqual(["D0", "D1", "N0", "N1", "N2"]);
    const byId = Object.fromEntries(records.map((r) => [r.itemId, r]));
    expect(byId.D0!.output).toEqual(byId.N0!.output);
    expect(byId.D1).toMatchObject({ output: { title: "Title for N1" }, attempts: 2, usage: { inputTokens: 0 } });
    expect(byId.N1!.usage.inputTokens).toBeGreaterThan(0);
  });

  it("a one-shot stream of requests is kept for the collection, which plans them again", async () => {
    const t = await setup();
    const requests = titleRequests(5);
    async function* stream() {
      yield* requests;
    }
    const ctx = context({ ANTHROPIC_API_KEY: "test-key" });
    const summary = await runEngineWith({ stage: "summarize", requests: stream(), runDir: t.dir }, config({ provider: "anthropic-batch", "base-url": fake!.url }), ctx, { batchPollMs: 1 });
    expect(summary.counts).toMatchObject({ items: 5, done: 5, cached: 0, failed: 0 });
    expect((await t.records()).map((r) => r.itemId).sort()).toEqual(["N0", "N1", "N2", "N3", "N4"]);
  });

  it("uses a key as its custom_id when the API accepts it, and hashes it otherwise", () => {
    expect(customIdFor("a".repeat(64))).toBe("a".repeat(64));
    expect(customIdFor("summarize:N1")).toMatch(/^[0-9a-f]{64}$/);
    expect(customIdFor("summarize:N1")).not.toBe(customIdFor("summarize:N2"));
  });

  it("splits into batches within the request-count and byte limits", async () => {
    const t = await setup();
    const byCount = await t.run(titleRequests(25), {}, { batchLimits: { maxRequests: 10 } });
    expect(byCount.summary.counts.done).toBe(25);
    expect([...t.batches.batches.values()].map((b) => b.requests.length)).toEqual([10, 10, 5]);

    const t2 = await setup({ limits: { maxBytes: 4000 } });
    // One request here is ~500 bytes of JSON: a 4,000-byte batch holds a handful, never more.
    const bySize = await t2.run(titleRequests(20), {}, { batchLimits: { maxBytes: 4000 } });
    expect(bySize.summary.counts.done).toBe(20);
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
    await t.run(titleRequests(6), {}, { batchLimits: { maxRequests: 2 } });
    expect(persistedAtFirstPoll).toEqual([true, true, true]);
    const lines = (await readFile(t.batchesFile, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => "batch" in l)).toHaveLength(3);
    expect(lines.filter((l) => "collected" in l)).toHaveLength(3);
  });

  it("resumes polling persisted batches after a restart instead of resubmitting their items", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run(titleRequests(8), {}, { batchSignal: stop.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(t.batches.creates).toBe(1);
    expect(await t.records()).toHaveLength(0);

    t.batches.release();
    const { summary, ctx } = await t.run(titleRequests(8));
    expect(summary.counts).toMatchObject({ done: 8, cached: 0, failed: 0 });
    expect(t.batches.creates).toBe(1);
    expect(ctx.err.text()).toMatch(/resumed polling \(8 requests\)/);
    expect(new Set((await t.records()).map((r) => r.itemId)).size).toBe(8);

    // Everything is stored now: a third run sends, creates and polls nothing.
    const polls = [...t.batches.batches.values()][0]!.polls;
    const again = await t.run(titleRequests(8));
    expect(again.summary.counts).toMatchObject({ cached: 8, done: 0 });
    expect(t.batches.creates).toBe(1);
    expect([...t.batches.batches.values()][0]!.polls).toBe(polls);
  });

  it("a live run (or its --dry-run) refuses to start while the stage has open batches: their items are paid for already", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run(titleRequests(6), {}, { batchSignal: stop.signal })).rejects.toMatchObject({ name: "AbortError" });
    const before = fake!.log.length;
    for (const over of [{ provider: "anthropic" }, { provider: "anthropic", "dry-run": true }, { provider: "offline" }]) {
      const refused = t.run(titleRequests(8), over);
      await expect(refused).rejects.toBeInstanceOf(UserError);
      await expect(refused).rejects.toMatchObject({ exitCode: 2 });
      await expect(refused).rejects.toThrow(/1 batch\(es\) holding 6 item\(s\) are still open in .*summarize\.batches\.jsonl.*--provider anthropic-batch.*delete .*summarize\.batches\.jsonl/);
    }
    expect(fake!.log.length).toBe(before);
    expect(await t.records()).toHaveLength(0);

    // The batch provider collects them, once; then nothing is open and a live run may go on.
    t.batches.release();
    const { summary } = await t.run(titleRequests(6));
    expect(summary.counts).toMatchObject({ done: 6, failed: 0 });
    expect(t.batches.creates).toBe(1);
    const live = await t.run(titleRequests(8), { provider: "anthropic" });
    expect(live.summary.counts).toMatchObject({ done: 2, cached: 6 });
  });

  it("resuming open batches with fewer items or another model refuses before sending: their results would be paid for and dropped", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run(titleRequests(6), {}, { batchSignal: stop.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(JSON.parse(readFileSync(t.batchesFile, "utf8").split("\n")[0]!)).toMatchObject({ run: "--model claude-haiku-4-5" });
    t.batches.release();
    // A smaller --limit (or another --shard) plans 2 of the batch's 6 items out; another --model all of them.
    for (const [requests, over, missing] of [
      [titleRequests(4), {}, 2],
      [titleRequests(6), { model: "another-model" }, 6],
    ] as const) {
      const refused = t.run(requests, over);
      await expect(refused).rejects.toBeInstanceOf(UserError);
      await expect(refused).rejects.toMatchObject({ exitCode: 2 });
      await expect(refused).rejects.toThrow(
        new RegExp(`1 open batch\\(es\\) in .*summarize\\.batches\\.jsonl hold ${missing} item\\(s\\) this run does not plan \\(they were made with: --model claude-haiku-4-5;.*delete `),
      );
    }
    expect(t.batches.creates).toBe(1);
    expect(await t.records()).toHaveLength(0);

    // With the options they were made with, every paid result is stored; then a smaller run is all cached.
    const { summary, ctx } = await t.run(titleRequests(6));
    expect(summary.counts).toMatchObject({ done: 6, failed: 0 });
    expect(ctx.err.text()).toMatch(/collected 6 results, 0 asked again/);
    expect(t.batches.creates).toBe(1);
    expect((await t.run(titleRequests(4))).summary.counts).toMatchObject({ cached: 4, done: 0 });
  });

  it("after a restart, sends only the items no open batch holds", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run(titleRequests(4), {}, { batchSignal: stop.signal })).rejects.toMatchObject({ name: "AbortError" });
    t.batches.release();
    const { summary } = await t.run(titleRequests(6));
    expect(summary.counts.done).toBe(6);
    expect(t.batches.creates).toBe(2);
    expect(sent(t.batches, 1).map((r) => itemOf(r.params))).toEqual(["N4", "N5"]);
  });

  it("sends again the requests of a recorded batch the API no longer knows", async () => {
    const t = await setup();
    const requests = titleRequests(3);
    const cfg = config({ provider: "anthropic-batch", "base-url": fake!.url });
    const gone = { batch: "msgbatch_deleted", at: new Date().toISOString(), items: requests.map((r) => ({ key: requestKey(r, cfg), attempts: 0 })) };
    await writeFile(t.batchesFile, JSON.stringify(gone) + "\n");
    const { summary, ctx } = await t.run(requests);
    expect(summary.counts.done).toBe(3);
    expect(t.batches.creates).toBe(1);
    expect(ctx.err.text()).toMatch(/msgbatch_deleted: not found by the API; its 3 requests are sent again/);
  });

  it("an intent recorded without its batch (killed mid-create) is created again under its tag: this API lists no metadata", async () => {
    const t = await setup();
    const requests = titleRequests(3);
    const cfg = config({ provider: "anthropic-batch", "base-url": fake!.url });
    const intent = { intent: "tag-1", at: new Date().toISOString(), items: requests.map((r) => ({ key: requestKey(r, cfg), attempts: 0 })) };
    await writeFile(t.batchesFile, JSON.stringify(intent) + "\n");
    const { summary } = await t.run(requests);
    expect(summary.counts.done).toBe(3);
    expect(t.batches.creates).toBe(1);
    const lines = (await readFile(t.batchesFile, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => "batch" in l)).toEqual([expect.objectContaining({ intent: "tag-1" })]);
  });

  it("creates a batch once when its create's answer is lost, and says what may exist; a refused create is sent again", async () => {
    // The API makes the batch and answers 500: sent again, it would make a second, unrecorded batch.
    const t = await setup({ createFault: (n) => (n === 1 ? 500 : undefined) });
    const err = await t.run(titleRequests(4)).catch((e: unknown) => e);
    expect(String(err)).toMatch(/creating a batch of 4 requests failed after it was sent .*the API may have made it all the same.*cancel in the Anthropic console a batch of 4 requests created at about /);
    expect(t.batches.creates).toBe(1);

    // 429: refused, nothing made; sent again after the backoff (retry-after 0) and made once.
    const u = await setup({ createFault: (n) => (n <= 2 ? 429 : undefined) });
    const { summary } = await u.run(titleRequests(4), {}, { retryBaseMs: 1 });
    expect(summary.counts.done).toBe(4);
    expect(u.batches.creates).toBe(1);
  });

  it("re-queues errored and expired items, and gives up on permanent errors", async () => {
    const t = await setup({
      itemFault: ({ body, n }) => {
        const item = itemOf(body);
        if (item === "N0" && n === 1) return { type: "errored", errorType: "overloaded_error", message: "Overloaded" };
        if (item === "N1" && n === 1) return { type: "expired" };
        if (item === "N2") return { type: "errored", errorType: "invalid_request_error", message: "prompt is too long" };
        if (item === "N3") return { type: "expired" };
        return undefined;
      },
    });
    const { summary } = await t.run(titleRequests(5), { "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ done: 3, failed: 2, failedByReason: { "api-error": 1, expired: 1 } });
    expect(t.batches.creates).toBe(3);
    expect(sent(t.batches, 1).map((r) => itemOf(r.params)).sort()).toEqual(["N0", "N1", "N3"]);
    expect(sent(t.batches, 2).map((r) => itemOf(r.params))).toEqual(["N3"]);
    const failed = Object.fromEntries((await t.failures()).map((f) => [f.itemId, f]));
    expect(failed.N2).toMatchObject({ reason: "api-error" });
    expect(failed.N2!.message).toMatch(/prompt is too long/);
    expect(failed.N3).toMatchObject({ reason: "expired" });
    // Re-sent items were not answered twice: the answer is paid for once.
    expect((await t.records()).find((r) => r.itemId === "N0")!.attempts).toBe(1);
  });

  it("repairs an invalid answer in a following batch, stating the error", async () => {
    const t = await setup({
      itemFault: ({ body, n }) => (itemOf(body) === "N1" && n === 1 ? { type: "invalid", text: '{"headline":"x"}' } : undefined),
    });
    const { summary } = await t.run(titleRequests(3));
    expect(summary.counts).toMatchObject({ done: 3, failed: 0, retried: 1 });
    const repair = sent(t.batches, 1);
    expect(repair.map((r) => itemOf(r.params))).toEqual(["N1"]);
    const messages = repair[0]!.params.messages;
    expect(messages).toHaveLength(3);
    expect(messages[1]).toEqual({ role: "assistant", content: '{"headline":"x"}' });
    expect(JSON.stringify(messages[2])).toMatch(/expected \{\\"title\\": string\}/);
    const records = await t.records();
    const n1 = records.find((r) => r.itemId === "N1")!;
    expect(n1).toMatchObject({ attempts: 2, output: { title: "Title for N1" } });
    // Both attempts are billed to the item.
    expect(n1.usage.inputTokens).toBeGreaterThan(records.find((r) => r.itemId === "N0")!.usage.inputTokens * 1.5);
  });

  it("a restart while a repair batch is open resumes it, even if its parent was never marked collected", async () => {
    // N1's first answer is invalid; its repair batch is held, and the run is stopped while polling it.
    const t = await setup({
      itemFault: ({ body, n }) => (itemOf(body) === "N1" && n === 1 ? { type: "invalid", text: "not json" } : undefined),
    });
    const stop = new AbortController();
    t.batches.on("create", (b: { held: boolean }) => {
      if (t.batches.creates === 2) b.held = true;
    });
    t.batches.on("retrieve", (b: { held: boolean }) => {
      if (b.held) stop.abort();
    });
    await expect(t.run(titleRequests(3), {}, { batchSignal: stop.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect((await t.records()).map((r) => r.itemId).sort()).toEqual(["N0", "N2"]);
    // As if killed between creating the repair batch and marking its parent collected.
    const lines = (await readFile(t.batchesFile, "utf8")).split("\n").filter((l) => l && !l.includes('"collected"'));
    expect(lines.filter((l) => l.includes('"batch"'))).toHaveLength(2);
    await writeFile(t.batchesFile, lines.join("\n") + "\n");

    t.batches.release();
    const { summary } = await t.run(titleRequests(3));
    expect(summary.counts).toMatchObject({ cached: 2, done: 1 });
    expect(t.batches.creates).toBe(2);
    const n1 = (await t.records()).find((r) => r.itemId === "N1")!;
    expect(n1).toMatchObject({ attempts: 2, output: { title: "Title for N1" } });
    // The usage of the first, invalid answer came through the restart with the item.
    expect(n1.usage.inputTokens).toBeGreaterThan((await t.records()).find((r) => r.itemId === "N0")!.usage.inputTokens * 1.5);
  });

  it("an item left with billed attempts (Ctrl-C before its repair is answered) writes its usage once, even restored from a batch's state", async () => {
    // N1's first answer is invalid (billed); its repair errors, and Ctrl-C lands as that batch is
    // collected: the re-ask is never sent. N1 was restored from the repair batch's saved state.
    const t = await setup({
      itemFault: ({ body, n }) => (itemOf(body) === "N1" && n <= 2 ? (n === 1 ? { type: "invalid", text: "not json" } : { type: "errored" }) : undefined),
    });
    const stop = new AbortController();
    t.batches.on("results", () => {
      if (t.batches.creates === 2) stop.abort();
    });
    const ctx = context({ ANTHROPIC_API_KEY: "test-key" });
    const first = await runEngineWith({ stage: "summarize", requests: titleRequests(3), runDir: t.dir, interrupt: stop.signal }, config({ provider: "anthropic-batch", "base-url": fake!.url }), ctx, { batchPollMs: 1 });
    expect(first.stopped).toMatchObject({ reason: "interrupted" });
    const [left] = await t.failures();
    expect(left).toMatchObject({ itemId: "N1", reason: "invalid", attempts: 1, usage: { outputTokens: 4 } });
    expect(left!.message).toMatch(/not JSON.*not asked again: the run was interrupted/);

    await t.run(titleRequests(3));
    expect((await t.records()).map((r) => r.itemId).sort()).toEqual(["N0", "N1", "N2"]);
    // Every answer the API billed is in the folder once: records and failure lines together.
    const billed = { input: 0, output: 0 };
    for (const b of t.batches.batches.values()) {
      for (const l of b.results ?? []) {
        const r = (JSON.parse(l) as { result: { type: string; message?: { usage: { input_tokens: number; output_tokens: number } } } }).result;
        if (r.type !== "succeeded") continue;
        billed.input += r.message!.usage.input_tokens;
        billed.output += r.message!.usage.output_tokens;
      }
    }
    const lines = [...(await t.records()), ...(await t.failures())];
    expect({ input: lines.reduce((s, l) => s + l.usage!.inputTokens, 0), output: lines.reduce((s, l) => s + l.usage!.outputTokens, 0) }).toEqual(billed);
  });

  it("re-asks refusals and truncated answers, then writes them to failures with their reason", async () => {
    const t = await setup({
      itemFault: ({ body }) => (itemOf(body) === "N0" ? { type: "refusal" } : itemOf(body) === "N1" ? { type: "truncated" } : undefined),
    });
    const { summary } = await t.run(titleRequests(3), { "max-attempts": 2, "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ done: 1, failed: 2, failedByReason: { refusal: 1, truncated: 1 } });
    expect((await t.failures()).map((f) => [f.itemId, f.reason, f.attempts]).sort()).toEqual([
      ["N0", "refusal", 2],
      ["N1", "truncated", 2],
    ]);
  });

  it("polls at --poll-interval", async () => {
    const t = await setup({ pollsBeforeEnd: 3 });
    const ctx = context({ ANTHROPIC_API_KEY: "test-key" });
    // No batchPollMs: at the default 30 s this run would outlast the test timeout.
    const summary = await runEngineWith(
      { stage: "summarize", requests: titleRequests(2), runDir: t.dir },
      config({ provider: "anthropic-batch", "base-url": fake!.url, "poll-interval": "0.005" }),
      ctx,
      {},
    );
    expect(summary.counts.done).toBe(2);
    // Four status polls (the batch ends at the fourth), then the SDK's results() retrieves once more for results_url.
    expect([...t.batches.batches.values()][0]!.polls).toBe(5);
  });

  it("survives a kill -9 of the CLI while polling: the rerun resumes the batch and pays for nothing twice", async () => {
    const t = await setup({ hold: true });
    const out = t.dir;
    const argv = ["summarize", "--data", "mind-data/sample", "--limit", "6", "--out", out, "--provider", "anthropic-batch"];
    const env = { ANTHROPIC_API_KEY: "test-key", ANTHROPIC_BASE_URL: fake!.url, GENRE_MIND_POLL_INTERVAL: "0.01" };
    const child = spawn(process.execPath, nodeArgs("src/cli/main.ts", ...argv), {
      cwd: process.cwd(),
      env: childEnv(env),
      stdio: "ignore",
    });
    const exited = once(child, "exit");
    // A retrieve means the batch ID is on disk (it is written before polling starts): kill now.
    await once(t.batches, "retrieve");
    child.kill("SIGKILL");
    const [, signal] = await exited;
    expect(signal).toBe("SIGKILL");
    expect(t.batches.creates).toBe(1);

    t.batches.release();
    const rerun = await runCliCaptured(argv, { cwd: process.cwd(), env });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/resumed polling \(6 requests\)/);
    expect(t.batches.creates).toBe(1);
    expect(fake!.stats().keysAnsweredTwice).toBe(0);
    expect(new Set((await t.records()).map((r) => r.itemId)).size).toBe(6);
  });

  it("stops with a plain message when the API rejects the key, creating no batch", async () => {
    fake = await createFakeAnthropic({ answer: titleAnswer, apiKey: "the-right-key" });
    const batches = installBatches(fake);
    const err = await runEngineWith(
      { stage: "summarize", requests: titleRequests(2), runDir: await tempDir() },
      config({ provider: "anthropic-batch", "base-url": fake.url }),
      context({ ANTHROPIC_API_KEY: "sk-ant-wrong-key" }),
      { batchPollMs: 1 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(String(err)).toMatch(/rejected the key in ANTHROPIC_API_KEY/);
    expect(String(err)).not.toContain("sk-ant-wrong-key");
    expect(batches.creates).toBe(0);
  });

  it("stops before queueing anything when the key is missing", async () => {
    const t = await setup();
    const err = await runEngineWith(
      { stage: "summarize", requests: titleRequests(2), runDir: t.dir },
      config({ provider: "anthropic-batch", "base-url": fake!.url }),
      context({}),
      { batchPollMs: 1 },
    ).catch((e: unknown) => e);
    expect(String(err)).toMatch(/ANTHROPIC_API_KEY/);
    expect(t.batches.creates).toBe(0);
  });
});

describe("a batch create refused with 429", () => {
  it("is sent again after the backoff the run's retry base sets (retryBaseMs), not after the live default's", async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      const refusal = () => APIError.generate(429, { type: "error", error: { type: "rate_limit_error", message: "limited" } }, "limited", new Headers({ "retry-after": "0" }));
      const create = async () => {
        if (++calls <= 2) throw refusal();
        return { id: "msgbatch_1" };
      };
      const client = { messages: { batches: { create } } } as unknown as Anthropic;
      const provider = new AnthropicBatchProvider(client, "claude-haiku-4-5", { retryBaseMs: 1 });
      let id: string | undefined;
      void provider.submit([{ customId: "c1", call: { system: "s", messages: [{ role: "user", content: "news N1" }], maxTokens: 10 } }]).then((v) => (id = v));
      // Two waits of at most 1 and 2 ms; the default base (500 ms) would wait at least 250 + 500.
      await vi.advanceTimersByTimeAsync(10);
      expect([calls, id]).toEqual([3, "msgbatch_1"]);
    } finally {
      vi.useRealTimers();
    }
  });
});
