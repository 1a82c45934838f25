import { existsSync } from "node:fs";
import { readFile, writeFile, appendFile, rm, symlink } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { UserError } from "../src/cli/command.js";
import { costUsd, modelInfo } from "../src/engine/cost.js";
import { requestKey, runEngine, runEngineWith, type EngineDeps } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { FailureRecord, StageRecord, type LlmRequest } from "../src/engine/types.js";
import { runPaths } from "../src/run/folder.js";
import { createFakeAnthropic, fakeKey, type FakeAnthropic, type FakeAnthropicOptions, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { config, context, tempDir, titleAnswer, titleRequests, userText, type TestContext } from "./engine-helpers.js";

let fake: FakeAnthropic | undefined;

const KEY = "sk-test-do-not-print-0123456789";
const FAST: EngineDeps = { retryBaseMs: 5, maxBackoffMs: 50 };

async function setup(options: FakeAnthropicOptions = {}) {
  fake = await createFakeAnthropic({ answer: titleAnswer, apiKey: KEY, ...options });
  const dir = await tempDir();
  const paths = runPaths(dir);
  const run = async (requests: LlmRequest[], over: Record<string, unknown> = {}, deps: EngineDeps = {}, env: NodeJS.ProcessEnv = {}) => {
    const ctx: TestContext = context({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake!.url, ...env });
    const summary = await runEngineWith({ stage: "summarize", requests, runDir: dir }, config(over), ctx, { ...FAST, ...deps });
    return { summary, ctx };
  };
  const records = async () => (await readJsonl(paths.records("summarize"), StageRecord)).records;
  const failures = async () => (await readJsonl(paths.failures("summarize"), FailureRecord)).records;
  return { fake, dir, paths, run, records, failures };
}

/** How many message requests the fake received for toy item i. */
function sentFor(i: number): number {
  return fake!.sent.get(fakeKey(userText(i))) ?? 0;
}

describe("requestKey", () => {
  const [req] = titleRequests(1);
  const base = config({ model: "claude-haiku-4-5" });
  it("changes with everything that changes the answer", () => {
    const k = requestKey(req!, base);
    expect(requestKey(req!, config({ model: "claude-sonnet-4-6" }))).not.toBe(k);
    expect(requestKey({ ...req!, user: req!.user + "!" }, base)).not.toBe(k);
    expect(requestKey({ ...req!, system: req!.system + "!" }, base)).not.toBe(k);
    expect(requestKey({ ...req!, schemaVersion: "2" }, base)).not.toBe(k);
    expect(requestKey({ ...req!, maxTokens: 201 }, base)).not.toBe(k);
    expect(requestKey({ ...req!, jsonSchema: { type: "object" } }, base)).not.toBe(k);
    expect(requestKey(req!, config({ provider: "openai-compatible", model: "claude-haiku-4-5" }))).not.toBe(k);
    // What an answer stands for (pick: the news behind the numbers), for every provider.
    expect(requestKey({ ...req!, keyInputs: "N1 N2" }, base)).not.toBe(k);
    expect(requestKey({ ...req!, keyInputs: "N1 N2" }, base)).not.toBe(requestKey({ ...req!, keyInputs: "N1 N3" }, base));
    // Unset, it leaves the key as it was before keyInputs existed: stored answers stay found.
    expect(k).toBe("dbb879bd3b2e78288e7686eea867b3ff4fa29a177759af890f3d7f78171d49c9");
  });
  it("ignores what does not: schema key order, offline inputs for LLM providers, live vs batch", () => {
    const k = requestKey(req!, base);
    const reordered = { additionalProperties: false, required: ["title"], properties: { title: { type: "string" } }, type: "object" };
    expect(requestKey({ ...req!, jsonSchema: reordered }, base)).toBe(k);
    expect(requestKey({ ...req!, offlineInputs: "entities" }, base)).toBe(k);
    expect(requestKey(req!, config({ provider: "anthropic-batch", model: "claude-haiku-4-5" }))).toBe(k);
    const off = config({ provider: "offline" });
    expect(requestKey({ ...req!, offlineInputs: "a" }, off)).not.toBe(requestKey({ ...req!, offlineInputs: "b" }, off));
  });
});

describe("store and resume", () => {
  it("sends only keys without a record; a second run sends nothing", async () => {
    const t = await setup();
    const first = await t.run(titleRequests(10));
    expect(first.summary.counts).toMatchObject({ items: 10, done: 10, cached: 0, failed: 0 });
    expect(fake!.messageLog()).toHaveLength(10);
    const recs = await t.records();
    expect(recs.map((r) => r.itemId).sort()).toEqual(titleRequests(10).map((r) => r.itemId).sort());
    expect(recs[0]!.output).toMatchObject({ title: expect.stringMatching(/^Title for N\d+$/) });

    const again = await t.run(titleRequests(15));
    expect(again.summary.counts).toMatchObject({ items: 15, done: 5, cached: 10 });
    expect(fake!.messageLog()).toHaveLength(15);
    for (let i = 0; i < 15; i++) expect(sentFor(i)).toBe(1);
    expect(await t.records()).toHaveLength(15);
  });

  it("asks once for items with an identical prompt and gives each item its own record", async () => {
    const t = await setup();
    // N0 and its twin "D0" render the same prompt (two news rows alike, two users with the same clicks).
    const twin = (req: LlmRequest, id: string): LlmRequest => ({ ...req, itemId: id });
    const [a, b] = titleRequests(2);
    const first = await t.run([a!, twin(a!, "D0"), b!]);
    expect(first.summary.counts).toMatchObject({ items: 3, done: 3, cached: 0 });
    expect(sentFor(0)).toBe(1);
    let recs = await t.records();
    expect(recs.map((r) => r.itemId).sort()).toEqual(["D0", "N0", "N1"]);
    const [n0, d0] = [recs.find((r) => r.itemId === "N0")!, recs.find((r) => r.itemId === "D0")!];
    expect(d0.output).toEqual(n0.output);
    expect(d0.usage.inputTokens).toBe(0);
    expect(n0.usage.inputTokens).toBeGreaterThan(0);

    // A later twin of a stored answer gets its record without a request.
    const again = await t.run([a!, twin(a!, "D0"), twin(a!, "E0"), b!]);
    expect(again.summary.counts).toMatchObject({ items: 4, done: 0, cached: 4 });
    expect(fake!.messageLog()).toHaveLength(2);
    recs = await t.records();
    expect(recs.filter((r) => r.itemId === "E0")).toHaveLength(1);
    expect(recs).toHaveLength(4);
  });

  it("gives each item sharing a prompt its own failure, counted per item", async () => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(0)) ? { type: "refusal" } : undefined) });
    const [a, b] = titleRequests(2);
    const { summary } = await t.run([a!, { ...a!, itemId: "D0" }, b!], { "max-attempts": 2, "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ items: 3, done: 1, failed: 2, retried: 2, failedByReason: { refusal: 2 } });
    expect(sentFor(0)).toBe(2);
    const failures = await t.failures();
    expect(failures.map((f) => [f.itemId, f.reason, f.attempts]).sort()).toEqual([
      ["D0", "refusal", 2],
      ["N0", "refusal", 2],
    ]);
    // The two attempts are billed once, to the item that was asked.
    expect(failures.find((f) => f.itemId === "D0")!.usage.inputTokens).toBe(0);
    expect(failures.find((f) => f.itemId === "N0")!.usage.inputTokens).toBeGreaterThan(0);
  });

  it("needs no key when everything is already stored", async () => {
    const t = await setup();
    await t.run(titleRequests(3));
    const { summary } = await t.run(titleRequests(3), {}, {}, { ANTHROPIC_API_KEY: "" });
    expect(summary.counts).toMatchObject({ cached: 3, done: 0 });
  });

  it("tolerates a torn last line: it is cut off and that item is asked again", async () => {
    const t = await setup();
    await t.run(titleRequests(4));
    const text = await readFile(t.paths.records("summarize"), "utf8");
    const lines = text.trimEnd().split("\n");
    // Simulate a write cut by kill -9: the last record only half on disk.
    await writeFile(t.paths.records("summarize"), lines.slice(0, 3).join("\n") + "\n" + lines[3]!.slice(0, 40));
    expect((await t.records()).length).toBe(3);
    const { summary } = await t.run(titleRequests(4));
    expect(summary.counts).toMatchObject({ cached: 3, done: 1 });
    const after = await readFile(t.paths.records("summarize"), "utf8");
    expect(after.endsWith("\n")).toBe(true);
    expect(after.trimEnd().split("\n").map((l) => JSON.parse(l) as unknown)).toHaveLength(4);
  });

  it("cuts off a torn last line longer than the backward scan's chunk, and nothing before it", async () => {
    const t = await setup();
    await t.run(titleRequests(3));
    const stored = await readFile(t.paths.records("summarize"), "utf8");
    // 200 KB without a newline: several 64 KB chunks must be scanned back to find the line break.
    await writeFile(t.paths.records("summarize"), stored + `{"key":"${"x".repeat(200_000)}`);
    const { summary } = await t.run(titleRequests(4));
    expect(summary.counts).toMatchObject({ cached: 3, done: 1 });
    const after = await readFile(t.paths.records("summarize"), "utf8");
    expect(after.startsWith(stored)).toBe(true);
    expect(after.trimEnd().split("\n").map((l) => JSON.parse(l) as unknown)).toHaveLength(4);
    // A store that is one torn line, longer than a chunk, is cut to empty.
    await writeFile(t.paths.records("summarize"), `{"key":"${"y".repeat(150_000)}`);
    expect((await t.run(titleRequests(2))).summary.counts).toMatchObject({ cached: 0, done: 2 });
    expect((await readFile(t.paths.records("summarize"), "utf8")).trimEnd().split("\n")).toHaveLength(2);
  });

  it("names file and line of a corrupt record in the middle of the store", async () => {
    const t = await setup();
    await t.run(titleRequests(2));
    const text = await readFile(t.paths.records("summarize"), "utf8");
    await writeFile(t.paths.records("summarize"), "{not json\n" + text);
    await expect(t.run(titleRequests(2))).rejects.toThrow(/summarize\.jsonl:1/);
  });
});

describe("retries", () => {
  it.each([
    ["429 with retry-after", { type: "429", retryAfterS: 0 }],
    ["529 overloaded", { type: "529" }],
    ["500", { type: "500" }],
    ["a malformed body", { type: "malformed" }],
    ["a timeout", { type: "hang", ms: 1500 }],
  ] as const)("retries %s and stores the answer once", async (_name, fault) => {
    const t = await setup({ faults: (i) => (i.n === 1 && i.key === fakeKey(userText(2)) ? fault : undefined) });
    const { summary, ctx } = await t.run(titleRequests(4), {}, { timeoutMs: 400 });
    expect(summary.counts).toMatchObject({ done: 4, failed: 0, retried: 1 });
    expect(sentFor(2)).toBe(2);
    expect(sentFor(1)).toBe(1);
    expect(ctx.out.text()).toMatch(/1 calls re-sent/);
  });

  it("does not retry a 400: the item fails as api-error, the others finish", async () => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(1)) ? { type: "400", message: "messages: bad" } : undefined) });
    const { summary } = await t.run(titleRequests(3));
    expect(sentFor(1)).toBe(1);
    expect(summary.counts).toMatchObject({ done: 2, failed: 1, failedByReason: { "api-error": 1 } });
    const [f] = await t.failures();
    expect(f).toMatchObject({ itemId: "N1", reason: "api-error", attempts: 0 });
    expect(f!.message).toMatch(/400/);
  });

  it("stops when every request is refused as malformed and none is answered (unknown model, unsupported parameter)", async () => {
    const t = await setup({ faults: () => ({ type: "400", message: "model: claude-nope not found" }) });
    const err = await t.run(titleRequests(50), { concurrency: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/rejected the first 5 requests.*claude-nope/);
    expect(fake!.messageLog().length).toBeLessThanOrEqual(5 + 4);
  });

  it("frees the slot of a request waiting out its retry-after: the others go on meanwhile", async () => {
    const t = await setup({ faults: (i) => (i.n === 1 && i.key === fakeKey(userText(0)) ? { type: "429", retryAfterS: 0.5 } : undefined) });
    const { summary } = await t.run(titleRequests(4), { concurrency: 1 });
    expect(summary.counts).toMatchObject({ done: 4, failed: 0, retried: 1 });
    const order = fake!.messageLog().map((r) => r.key);
    const [first, again] = [order.indexOf(fakeKey(userText(0))), order.lastIndexOf(fakeKey(userText(0)))];
    // With one slot held through the wait, nothing could be sent between N0's 429 and its retry.
    expect(again - first).toBeGreaterThan(1);
  });

  it("gives up after the retry budget and records api-error", async () => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(0)) ? { type: "529" } : undefined) });
    const { summary } = await t.run(titleRequests(2), {}, { maxRetries: 3 });
    expect(sentFor(0)).toBe(4);
    expect(summary.counts).toMatchObject({ done: 1, failed: 1 });
  });
});

describe("keys", () => {
  it("stops before anything is sent when the key variable is missing, naming the variable", async () => {
    const t = await setup();
    const err = await t.run(titleRequests(3), { "api-key-env": "MY_CLAUDE_KEY" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/MY_CLAUDE_KEY/);
    expect(fake!.log).toHaveLength(0);
  });

  it.each([
    ["401", { ANTHROPIC_API_KEY: "sk-wrong-key-abcdef" }, undefined],
    ["403", {}, { type: "403" } as const],
  ])("a %s stops the whole run after the first request, without printing the key", async (_s, env, fault) => {
    const t = await setup({ faults: () => fault });
    const err = await t.run(titleRequests(20), { concurrency: 8 }, {}, env).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/ANTHROPIC_API_KEY/);
    expect((err as Error).message).not.toMatch(/sk-/);
    expect(fake!.messageLog()).toHaveLength(1);
    expect(await t.records()).toHaveLength(0);
    expect(await t.failures()).toHaveLength(0);
  });

  it("a key revoked mid-run stops the queued work at once", async () => {
    let revoked = false;
    const t = await setup({ latencyMs: 5, faults: (i) => (i.index >= 6 || revoked ? ((revoked = true), { type: "401" }) : undefined) });
    const err = await t.run(titleRequests(100), { concurrency: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    // In flight when the 401 came back: at most `concurrency` more.
    expect(fake!.messageLog().length).toBeLessThanOrEqual(6 + 4);
    expect((await t.records()).length).toBe(6);
  });
});

describe("validated answers", () => {
  it("re-asks an invalid answer with the answer and the error, summing usage of all attempts", async () => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(1)) && i.n === 1 ? { type: "invalid", text: "Sure! Here is the title." } : undefined) });
    await t.run(titleRequests(2));
    const second = fake!.messageLog().filter((r) => r.key === fakeKey(userText(1)))[1]!.body as FakeMessageRequest;
    expect(second.messages).toHaveLength(3);
    expect(second.messages[1]).toMatchObject({ role: "assistant", content: "Sure! Here is the title." });
    expect(second.messages[2]!.content).toMatch(/not JSON/);
    const rec = (await t.records()).find((r) => r.itemId === "N1")!;
    expect(rec.attempts).toBe(2);
    const single = (await t.records()).find((r) => r.itemId === "N0")!;
    expect(rec.usage.inputTokens).toBeGreaterThan(single.usage.inputTokens * 2);
    expect(rec.usage.outputTokens).toBeGreaterThan(single.usage.outputTokens);
  });

  it.each([
    ["refusal", { type: "refusal" }],
    ["truncated", { type: "truncated" }],
    ["invalid", { type: "invalid" }],
  ] as const)("after max-attempts a %s answer goes to the failures file with its reason", async (reason, fault) => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(0)) ? fault : undefined) });
    const { summary } = await t.run(titleRequests(3), { "max-attempts": 3 });
    expect(sentFor(0)).toBe(3);
    expect(summary.counts).toMatchObject({ done: 2, failed: 1, failedByReason: { [reason]: 1 } });
    const [f] = await t.failures();
    expect(f).toMatchObject({ itemId: "N0", reason, attempts: 3 });
    expect(f!.usage.outputTokens).toBeGreaterThan(0);
    expect(await t.records()).toHaveLength(2);
  });

  it("a truncated answer is re-asked with the cut-off stated, then stored", async () => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(0)) && i.n === 1 ? { type: "truncated" } : undefined) });
    await t.run(titleRequests(1));
    const second = fake!.messageLog()[1]!.body as FakeMessageRequest;
    expect(second.messages.at(-1)!.content).toMatch(/cut off at the 200-token limit/);
    expect((await t.records())[0]!.attempts).toBe(2);
  });

  it("a failed item is asked again on the next run", async () => {
    let broken = true;
    const t = await setup({ faults: (i) => (broken && i.key === fakeKey(userText(0)) ? { type: "invalid" } : undefined) });
    await t.run(titleRequests(2), { "max-attempts": 1 });
    expect(await t.failures()).toHaveLength(1);
    broken = false;
    const { summary } = await t.run(titleRequests(2));
    expect(summary.counts).toMatchObject({ cached: 1, done: 1, failed: 0 });
    expect(sentFor(0)).toBe(2);
  });

  it("flags a failure share above --max-failure-share", async () => {
    const bad = new Set([0, 1, 2].map((i) => fakeKey(userText(i))));
    const t = await setup({ faults: (i) => (bad.has(i.key) ? { type: "invalid" } : undefined) });
    const { summary, ctx } = await t.run(titleRequests(10), { "max-attempts": 1, "max-failure-share": 0.2 });
    expect(summary.counts.failed).toBe(3);
    expect(summary.failedShareExceeded).toBe(true);
    expect(ctx.err.text()).toMatch(/3 of 10 items failed/);
    const ok = await t.run(titleRequests(10), { "max-attempts": 1, "max-failure-share": 0.5 });
    expect(ok.summary.failedShareExceeded).toBe(false);
  });
});

describe("cost and prompt caching", () => {
  it("prices the billed usage from the table", async () => {
    const t = await setup();
    const { summary, ctx } = await t.run(titleRequests(5), { model: "claude-sonnet-4-6" });
    const billed = fake!.messageLog().map((r) => r.body as FakeMessageRequest);
    expect(billed).toHaveLength(5);
    const u = summary.usage;
    expect(u.inputTokens).toBeGreaterThan(0);
    // Sonnet 4.6: $3 in, $15 out per MTok.
    expect(summary.costUsd).toBeCloseTo((u.inputTokens * 3 + u.outputTokens * 15) / 1e6, 10);
    expect(ctx.out.text()).toContain(`$${summary.costUsd.toFixed(4)}`);
    expect(costUsd({ inputTokens: 1e6, outputTokens: 1e6, cacheReadTokens: 1e6, cacheWriteTokens: 1e6 }, "anthropic", "claude-haiku-4-5-20251001", "batch")).toBeCloseTo(
      (1 + 5 + 0.1 + 1.25) / 2,
      10,
    );
  });

  it("marks a long system prompt for caching: one cache write, then cache reads", async () => {
    const t = await setup({ minCacheableTokens: 1024 });
    const system = "You rewrite news titles. " + "Keep the facts; drop the clickbait. ".repeat(500);
    const { summary } = await t.run(titleRequests(6, { system }), { model: "claude-sonnet-4-6" });
    const bodies = fake!.messageLog().map((r) => r.body as FakeMessageRequest);
    expect(Array.isArray(bodies[0]!.system) && bodies[0]!.system[0]!.cache_control).toEqual({ type: "ephemeral" });
    expect(summary.usage.cacheWriteTokens).toBeGreaterThan(1024);
    expect(summary.usage.cacheReadTokens).toBe(summary.usage.cacheWriteTokens * 5);
    const info = modelInfo("anthropic", "claude-sonnet-4-6")!;
    const u = summary.usage;
    expect(summary.costUsd).toBeCloseTo((u.inputTokens * info.input + u.outputTokens * info.output + u.cacheWriteTokens * info.cacheWrite + u.cacheReadTokens * info.cacheRead) / 1e6, 10);
  });

  it("does not mark a system prompt below the model's cache minimum", async () => {
    const t = await setup();
    await t.run(titleRequests(2));
    const body = fake!.messageLog()[0]!.body as FakeMessageRequest;
    expect(JSON.stringify(body.system)).not.toContain("cache_control");
    expect(body.output_config?.format?.type).toBe("json_schema");
  });
});

/** Upper bound of a token bucket: at most capacity + rate·t requests by time t after the first. */
function assertPaced(times: number[], perMinute: number): void {
  const rate = perMinute / 60_000;
  const capacity = Math.max(1, perMinute / 60);
  const t0 = times[0]!;
  times.forEach((t, i) => {
    expect(i + 1).toBeLessThanOrEqual(Math.floor(capacity + rate * (t - t0)) + 2);
  });
  // And not slower than the limit allows by much: the last arrival is near (n - capacity) / rate.
  const ideal = (times.length - capacity) / rate;
  expect(times.at(-1)! - t0).toBeGreaterThanOrEqual(ideal * 0.9);
}

describe("limits", () => {
  it("honours a requests-per-minute budget (timestamps as the server saw them)", async () => {
    const t = await setup();
    await t.run(titleRequests(50), { rpm: 1200, concurrency: 16 });
    const times = fake!.messageLog().map((r) => r.at);
    expect(times).toHaveLength(50);
    assertPaced(times, 1200);
  });

  it("honours an input-tokens-per-minute budget", async () => {
    const t = await setup();
    const reqs = titleRequests(30);
    // Each toy request is ~130 estimated input tokens: 60,000 itpm ≈ 8 requests/s.
    await t.run(reqs, { itpm: 60_000, concurrency: 16 });
    const log = fake!.messageLog();
    const first = log[0]!.at;
    const last = log.at(-1)!.at;
    const tokens = log.reduce((s, r) => s + fake!.inputTokens(r.body as FakeMessageRequest).total, 0);
    // tokens over the span never exceed the budget rate plus one second's burst.
    expect(tokens).toBeLessThanOrEqual(60_000 / 60 + ((last - first) * 60_000) / 60_000 + 200);
    expect(last - first).toBeGreaterThan(1500);
  });

  it("adopts the limit the server advertises in its headers: few or no 429s, and finishes", async () => {
    const t = await setup({ limits: { rpm: 600 }, latencyMs: 2 });
    const { summary } = await t.run(titleRequests(40), { concurrency: 16 });
    expect(summary.counts).toMatchObject({ done: 40, failed: 0 });
    const log = fake!.messageLog();
    const limited = log.filter((r) => r.status === 429).length;
    // The advertised 600/min is adopted from the first answer's headers: few or no 429s, not one per request.
    expect(limited).toBeLessThanOrEqual(3);
    assertPaced(log.filter((r) => r.status === 200).map((r) => r.at), 600);
  });

  it("pauses until the bucket refills when an answer says remaining 0, instead of sending into the limit", async () => {
    // Other clients used the key: 2 requests left of 600/min (10/s, so one is back every 100 ms).
    const t = await setup({ limits: { rpm: 600 }, limitsLeft: { rpm: 2 } });
    const { summary } = await t.run(titleRequests(4), { concurrency: 1 });
    expect(summary.counts).toMatchObject({ done: 4, failed: 0 });
    const log = fake!.messageLog();
    // The second answer said remaining 0: the next request waited (the engine pauses at least a
    // second for it) rather than meeting a 429.
    expect(log.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(log[2]!.at - log[1]!.at).toBeGreaterThanOrEqual(900);
  });

  it("without rate-limit headers, waits out each 429's retry-after and finishes with nothing failed", async () => {
    // A proxy that strips the anthropic-ratelimit-* headers: the engine learns only from 429s.
    const t = await setup({ limits: { rpm: 600 }, limitsLeft: { rpm: 3 }, rateLimitHeaders: false });
    const { summary } = await t.run(titleRequests(12), { concurrency: 4 });
    expect(summary.counts).toMatchObject({ done: 12, failed: 0 });
    const log = fake!.messageLog();
    const limited = log.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    // Each item that met a 429 came back no sooner than the retry-after it was given (1 s).
    for (const r of limited) {
      const next = log.find((o) => o.key === r.key && o.at > r.at);
      expect(next, r.key).toBeDefined();
      expect(next!.at - r.at).toBeGreaterThanOrEqual(950);
    }
  });
});

describe("dry run", () => {
  it("prints requests, tokens and dollars for live and batch, and sends nothing", async () => {
    const t = await setup();
    const { summary, ctx } = await t.run(titleRequests(12), { "dry-run": true, model: "claude-haiku-4-5" });
    expect(fake!.log).toHaveLength(0);
    expect(summary.dryRun).toBe(true);
    expect(summary.counts).toMatchObject({ items: 12, done: 0 });
    const out = ctx.out.text();
    expect(out).toMatch(/requests\s+12 to send/);
    expect(out).toMatch(/live \$\d+\.\d{4}.*batch \$\d+\.\d{4}/);
    expect(await t.records()).toHaveLength(0);
  });

  it("estimates input tokens close to what the fake then bills", async () => {
    const t = await setup();
    const reqs = titleRequests(20);
    const dry = await t.run(reqs, { "dry-run": true });
    const estimate = Number(/input tokens\s+([\d,]+)/.exec(dry.ctx.out.text())![1]!.replace(/,/g, ""));
    const real = await t.run(reqs);
    const billed = real.summary.usage.inputTokens + real.summary.usage.cacheReadTokens + real.summary.usage.cacheWriteTokens;
    expect(estimate / billed).toBeGreaterThan(0.7);
    expect(estimate / billed).toBeLessThan(1.4);
  });

  it("counts with the API's token counter when asked, still sending no message", async () => {
    const t = await setup();
    const { ctx } = await t.run(titleRequests(5), { "dry-run": true, "count-tokens": "api" });
    expect(fake!.messageLog()).toHaveLength(0);
    expect(fake!.log.filter((r) => r.path === "/v1/messages/count_tokens")).toHaveLength(5);
    const counted = Number(/input tokens\s+([\d,]+)/.exec(ctx.out.text())![1]!.replace(/,/g, ""));
    const expected = fake!.log.reduce((s, r) => s + fake!.inputTokens(r.body as FakeMessageRequest).total, 0);
    expect(counted).toBe(expected);
    expect(ctx.out.text()).toMatch(/counted by the API/);
  });

  it("works offline at zero cost", async () => {
    const dir = await tempDir();
    const ctx = context();
    const s = await runEngine({ stage: "summarize", requests: titleRequests(3), runDir: dir }, config({ provider: "offline", "dry-run": true }), ctx);
    expect(s.costUsd).toBe(0);
    expect(ctx.out.text()).toMatch(/requests\s+3 to send/);
  });
});

describe("offline provider", () => {
  it("stores validated offline answers with zero usage, and resumes", async () => {
    const dir = await tempDir();
    const ctx = context();
    const s = await runEngine({ stage: "summarize", requests: titleRequests(5000), runDir: dir }, config({ provider: "offline" }), ctx);
    expect(s).toMatchObject({ provider: "offline", model: "offline", costUsd: 0, counts: { done: 5000, failed: 0 } });
    const recs = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
    expect(recs).toHaveLength(5000);
    expect(recs[7]).toMatchObject({ itemId: "N7", output: { title: "Offline title 7" }, attempts: 1 });
    const again = await runEngine({ stage: "summarize", requests: titleRequests(5000), runDir: dir }, config({ provider: "offline" }), context());
    expect(again.counts).toMatchObject({ cached: 5000, done: 0 });
  });

  it("stops at the next item when interrupted, stores what was answered, counts the rest as left, and resumes", async () => {
    const dir = await tempDir();
    const ctx = context();
    const interrupt = new AbortController();
    // Ctrl-C arrives while item 100's answer is being made.
    const reqs = titleRequests(5000).map((r, i) => ({ ...r, offline: i === 100 ? () => (interrupt.abort("SIGINT"), r.offline()) : r.offline }));
    const s = await runEngine({ stage: "summarize", requests: reqs, runDir: dir, interrupt: interrupt.signal }, config({ provider: "offline" }), ctx);
    expect(s.counts.done).toBe(101);
    expect(s.stopped).toMatchObject({ reason: "interrupted", left: 4899 });
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(101);
    const again = await runEngine({ stage: "summarize", requests: titleRequests(5000), runDir: dir }, config({ provider: "offline" }), context());
    expect(again.counts).toMatchObject({ cached: 101, done: 4899 });
  });

  it("copies a stored answer to a later item with the same prompt, read back from the store by offset, whatever its characters", async () => {
    const dir = await tempDir();
    try {
      // Multi-byte answers before the copied one: the copy is found by byte offset, not by line or character.
      const reqs = titleRequests(300).map((r, i) => ({ ...r, offline: () => JSON.stringify({ title: `“Café” ’${i}’ 北京 ${"é".repeat(i % 7)}` }) }));
      const twin = (i: number, id: string): LlmRequest => ({ ...reqs[i]!, itemId: id });
      const first = await runEngine({ stage: "summarize", requests: [...reqs, twin(250, "D250")], runDir: dir }, config({ provider: "offline" }), context());
      expect(first.counts).toMatchObject({ items: 301, done: 301 });
      const again = await runEngine({ stage: "summarize", requests: [twin(299, "E299"), ...reqs, twin(17, "E17")], runDir: dir }, config({ provider: "offline" }), context());
      expect(again.counts).toMatchObject({ items: 302, done: 0, cached: 302 });
      const recs = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
      const title = (id: string) => recs.find((r) => r.itemId === id)?.output;
      expect(title("D250")).toEqual({ title: "“Café” ’250’ 北京 ééééé" });
      expect(title("E299")).toEqual(title("N299"));
      expect(title("E17")).toEqual({ title: "“Café” ’17’ 北京 ééé" });
      expect(recs).toHaveLength(303);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an offline answer that fails validation is a failure, not a record", async () => {
    const dir = await tempDir();
    const reqs = titleRequests(2);
    reqs[1] = { ...reqs[1]!, offline: () => "not json" };
    const s = await runEngine({ stage: "summarize", requests: reqs, runDir: dir }, config({ provider: "offline" }), context());
    expect(s.counts).toMatchObject({ done: 1, failed: 1, failedByReason: { invalid: 1 } });
  });

  it.skipIf(!existsSync("/dev/full"))("a failed write stops the run with its error, never as an unhandled rejection", async () => {
    const dir = await tempDir();
    // A full disk for the failures file only: the invalid answer's failure cannot be written.
    await symlink("/dev/full", runPaths(dir).failures("summarize"));
    const reqs = titleRequests(3);
    reqs[0] = { ...reqs[0]!, offline: () => "not json" };
    await expect(runEngine({ stage: "summarize", requests: reqs, runDir: dir }, config({ provider: "offline" }), context())).rejects.toThrow(/ENOSPC/);
  });
});

describe("progress", () => {
  it("prints a plain periodic line on a non-TTY and a redrawn line on a TTY", async () => {
    const t = await setup({ latencyMs: 30 });
    const plain = await t.run(titleRequests(8), { concurrency: 1 }, { progress: { plainIntervalMs: 50 } });
    expect(plain.ctx.err.text()).toMatch(/^summarize \d+\/8 · [\d.]+\/s · ETA \S+ · failed 0 · \$\d+\.\d{4}$/m);
    expect(plain.ctx.err.text()).not.toContain("\r");

    const ctx = context({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake!.url });
    ctx.err.isTTY = true;
    await runEngineWith({ stage: "summarize", requests: titleRequests(8, { from: 100 }), runDir: t.dir }, config({ concurrency: 1 }), ctx, {
      progress: { ttyIntervalMs: 20 },
    });
    expect(ctx.err.text()).toMatch(/\r\x1b\[2Ksummarize \d+\/8/);
  });

  it("counts items sharing a prompt in the total, as it counts them done", async () => {
    const t = await setup({ latencyMs: 30 });
    const requests = titleRequests(4).flatMap((r) => [r, { ...r, itemId: `D${r.itemId}` }]);
    const { ctx } = await t.run(requests, { concurrency: 1 }, { progress: { plainIntervalMs: 20 } });
    const lines = ctx.err.text().match(/^summarize \d+\/\d+/gm) ?? [];
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/\/8$/);
  });

  it("on a resume, says how many items it has found stored while it is still checking the rest", async () => {
    const t = await setup({ latencyMs: 200 });
    const [r0, r1, r2, r3] = titleRequests(4);
    await t.run([r0!, r2!, r3!]);
    // One slot: while r1 is asked, r2 and r3 are not checked yet, so the total (4 - 1 stored) is an upper bound.
    const { ctx, summary } = await t.run([r0!, r1!, r2!, r3!], { concurrency: 1 }, { progress: { plainIntervalMs: 10 } });
    expect(ctx.err.text()).toMatch(/^summarize 0\/3 · .* · 1 already stored \(still checking\)$/m);
    expect(summary.counts).toMatchObject({ done: 1, cached: 3 });
  });

  it("ends with a summary line: done, cached, retried, failed by reason, tokens, dollars", async () => {
    const t = await setup({ faults: (i) => (i.key === fakeKey(userText(0)) ? { type: "refusal" } : undefined) });
    await t.run(titleRequests(2));
    const { ctx } = await t.run(titleRequests(3), { "max-attempts": 1 });
    expect(ctx.out.text()).toMatch(/3 items, 1 done, 1 cached, 0 retried, 1 failed \(refusal 1\)/);
    expect(ctx.out.text()).toMatch(/tokens: input [\d,]+, cache write 0, cache read 0, output [\d,]+ · cost \$\d+\.\d{4}/);
  });
});

describe("append-only store", () => {
  it("keeps lines whole when many records arrive at once", async () => {
    const t = await setup();
    await t.run(titleRequests(60), { concurrency: 32 });
    const text = await readFile(t.paths.records("summarize"), "utf8");
    const lines = text.trimEnd().split("\n");
    expect(lines).toHaveLength(60);
    for (const l of lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
    await appendFile(t.paths.records("summarize"), "");
  });
});

describe("rate gate pressure", () => {
  it("slows down when 429s are a large share (once per burst), pauses for retry-after, and speeds back up when calm", async () => {
    const { RateGate } = await import("../src/engine/limits.js");
    let now = 0;
    const gate = new RateGate({ rpm: 6000 }, () => now);
    const ticket = await gate.acquire({ input: 0, output: 0 });
    now = 100;
    // Scattered 429s (1 in 10) only make their own request wait.
    for (let i = 0; i < 18; i++) gate.speedUp();
    gate.limited("rate-limit", ticket, 2000);
    gate.limited("rate-limit", ticket, 2000);
    expect(gate.pressureFactor).toBe(1);
    expect(gate.throttled).toBe(false);
    // A third of recent calls limited: the run is over a limit.
    for (let i = 0; i < 8; i++) gate.limited("rate-limit", ticket, 2000);
    expect(gate.slowdowns).toBe(1);
    expect(gate.pressureFactor).toBe(0.5);
    expect(gate.throttled).toBe(true);
    // 429s answering requests sent before the slow-down do not extend the pause or slow down again.
    now = 1500;
    for (let i = 0; i < 20; i++) gate.limited("rate-limit", ticket, 5000);
    expect(gate.pressureFactor).toBe(0.5);
    expect(gate.slowdowns).toBe(1);
    gate.speedUp();
    expect(gate.pressureFactor).toBe(0.5);
    now = 4000;
    for (let i = 0; i < 300; i++) gate.speedUp();
    expect(gate.pressureFactor).toBe(1);
    expect(gate.throttled).toBe(false);
    // Low remaining in the headers is pressure on its own; an advertised limit below ours is adopted.
    now = 10_000;
    const { anthropicRateLimits } = await import("../src/providers/anthropic.js");
    gate.observe(anthropicRateLimits(new Headers({ "anthropic-ratelimit-requests-limit": "100", "anthropic-ratelimit-requests-remaining": "5" })));
    expect(gate.pressureFactor).toBeCloseTo(0.9);
  });
});

describe("a budget of input and output together", () => {
  it("paces both against it (OpenAI's one token budget), and only when one is advertised", async () => {
    const { RateGate } = await import("../src/engine/limits.js");
    const now = 0;
    const gate = new RateGate({}, () => now);
    // 6,000 tokens a minute: the bucket holds one second's worth, 100.
    gate.observe({ tokens: { limit: 6000 } });
    await gate.acquire({ input: 60, output: 40 });
    const stop = new AbortController();
    let passed = false;
    const next = gate.acquire({ input: 1, output: 1 }, stop.signal).then(
      () => (passed = true),
      () => undefined,
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(passed).toBe(false);
    stop.abort();
    await next;
    // The same calls without that budget pass at once.
    const free = new RateGate({}, () => now);
    await free.acquire({ input: 60, output: 40 });
    await free.acquire({ input: 1, output: 1 });
  });
});

describe("requests as a stream", () => {
  /** Yields the requests one by one, as a lazy stage would, noting how far it ran ahead of the answers. */
  function lazily(requests: LlmRequest[], parsed: { n: number }) {
    const seen = { yielded: 0, maxAhead: 0, closed: false };
    async function* stream() {
      try {
        for (const req of requests) {
          seen.yielded++;
          seen.maxAhead = Math.max(seen.maxAhead, seen.yielded - parsed.n);
          yield {
            ...req,
            parse: (raw: string) => {
              parsed.n++;
              return req.parse(raw);
            },
          };
        }
      } finally {
        seen.closed = true;
      }
    }
    return { stream: stream(), seen };
  }

  it("pulls requests only as slots free up, so at most the ones in flight are held", async () => {
    const t = await setup({ latencyMs: 2 });
    const parsed = { n: 0 };
    const { stream, seen } = lazily(titleRequests(60), parsed);
    const ctx = context({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake!.url });
    const summary = await runEngineWith({ stage: "summarize", requests: stream, items: 60, runDir: t.dir }, config({ concurrency: 4 }), ctx, FAST);
    expect(summary.counts).toMatchObject({ items: 60, done: 60, failed: 0 });
    expect(seen).toMatchObject({ yielded: 60, closed: true });
    // Four in flight and one waiting for a slot; an engine that read the whole stream first would be 60 ahead.
    expect(seen.maxAhead).toBeLessThanOrEqual(4 + 1);
    expect(await t.records()).toHaveLength(60);
  });

  it("gives a later item with an already answered prompt a copy, counted done, without asking again", async () => {
    const t = await setup();
    const [a, ...rest] = titleRequests(6);
    const requests = [a!, ...rest, { ...a!, itemId: "D0" }];
    const parsed = { n: 0 };
    const { stream } = lazily(requests, parsed);
    const ctx = context({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake!.url });
    const summary = await runEngineWith({ stage: "summarize", requests: stream, runDir: t.dir }, config({ concurrency: 1 }), ctx, FAST);
    expect(summary.counts).toMatchObject({ items: 7, done: 7, cached: 0 });
    expect(sentFor(0)).toBe(1);
    const d0 = (await t.records()).find((r) => r.itemId === "D0")!;
    expect(d0).toMatchObject({ output: { title: "Title for N0" }, usage: { inputTokens: 0 } });
    expect(ctx.err.text()).toMatch(/1 item\(s\) have the same prompt/);
  });

  it("shows progress against the item count given up front", async () => {
    const t = await setup({ latencyMs: 30 });
    const { stream } = lazily(titleRequests(6), { n: 0 });
    const ctx = context({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake!.url });
    await runEngineWith({ stage: "summarize", requests: stream, items: 6, runDir: t.dir }, config({ concurrency: 1 }), ctx, { ...FAST, progress: { plainIntervalMs: 20 } });
    const lines = ctx.err.text().match(/^summarize \d+\/\d+/gm) ?? [];
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/\/6$/);
  });
});
