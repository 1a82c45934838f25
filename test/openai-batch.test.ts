// openai-batch end to end: runEngine → batch runner → OpenAiBatchProvider → the fake OpenAI Batch API
// (files, batches, output and error files, expiry, metadata, listing). Waits on the fake's events
// and the runner's completion, never on time; the CLI is killed with SIGKILL mid-poll and mid-create.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { EngineConfig } from "../src/engine/config.js";
import { customIdFor } from "../src/engine/batch-runner.js";
import { costUsd } from "../src/engine/cost.js";
import { requestKey, runEngineWith, type EngineDeps } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { FailureRecord, StageRecord, type LlmRequest } from "../src/engine/types.js";
import { OpenAiApi } from "../src/providers/chat-completions.js";
import { OpenAiBatchProvider, TAG_KEY } from "../src/providers/openai-batch.js";
import { runPaths } from "../src/run/folder.js";
import { config, context, tempDir, titleAnswer, titleRequests } from "./engine-helpers.js";
import { startOpenAiFake, type FakeChatRequest, type OpenAiFake } from "./fakes/openai-api.js";
import { installOpenAiBatches, type FakeOpenAiBatches, type OpenAiBatchesOptions } from "./fakes/openai-batches.js";
import { nodeArgs, childEnv } from "./helpers/child.js";
import { runCliCaptured } from "./helpers/cli.js";

const KEY = "sk-batch-test-key";

let fake: OpenAiFake | undefined;

const userOf = (body: FakeChatRequest) => body.messages.find((m) => m.role === "user")?.content ?? "";
const itemOf = (body: FakeChatRequest) => /news (N\d+)/.exec(userOf(body))?.[1];

async function setup(batchOptions: OpenAiBatchesOptions = {}) {
  fake = await startOpenAiFake({ answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }), requireKey: KEY });
  const batches = installOpenAiBatches(fake, batchOptions);
  const dir = await tempDir();
  const paths = runPaths(dir);
  const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: fake.baseUrl };
  const cfg = (over: Record<string, unknown> = {}) => config({ provider: "openai-batch", ...over });
  const run = (requests: LlmRequest[], over: Record<string, unknown> = {}, deps: EngineDeps = {}) => {
    const ctx = context(env);
    return runEngineWith({ stage: "summarize", requests, runDir: dir }, cfg(over), ctx, { batchPollMs: 1, retryBaseMs: 1, ...deps }).then((summary) => ({ summary, ctx }));
  };
  const records = async () => (await readJsonl(paths.records("summarize"), StageRecord)).records;
  const failures = async () => (await readJsonl(paths.failures("summarize"), FailureRecord)).records;
  const batchesFile = paths.batches("summarize");
  const fileLines = async () => (await readFile(batchesFile, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  return { batches, dir, env, cfg, run, records, failures, batchesFile, fileLines };
}

/** The items of the i-th batch created, in the order of its input file. */
function sent(b: FakeOpenAiBatches, index: number): string[] {
  return [...b.batches.values()][index]!.requests.map((r) => itemOf(r.body)!);
}

describe("openai-batch through runEngine and the fake Batch API", () => {
  it("uploads a JSONL file, creates a 24 h batch for chat completions with its tag, and stores every answer at half price", async () => {
    const t = await setup();
    const { summary } = await t.run(titleRequests(12));
    expect(summary.counts).toMatchObject({ items: 12, done: 12, failed: 0, retried: 0 });
    expect(t.batches.uploads).toBe(1);
    expect(t.batches.creates).toBe(1);
    const batch = [...t.batches.batches.values()][0]!;
    expect(t.batches.files.get(batch.input_file_id)!.purpose).toBe("batch");
    for (const r of batch.requests) {
      expect(r.custom_id).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      // The live provider's request: strict schema, max_completion_tokens, the model's reasoning effort.
      expect(r.body).toMatchObject({ model: "gpt-6-luna", max_completion_tokens: 200, reasoning_effort: "none", response_format: { type: "json_schema" } });
    }

    const records = await t.records();
    expect(records.map((r) => [r.itemId, r.output]).sort()).toEqual(Array.from({ length: 12 }, (_, i) => [`N${i}`, { title: `Title for N${i}` }]).sort());
    const byCustomId = new Map(batch.requests.map((r) => [r.custom_id, itemOf(r.body)]));
    for (const r of records) expect(byCustomId.get(customIdFor(r.key))).toBe(r.itemId);
    expect(records.every((r) => r.provider === "openai-batch" && r.model === "gpt-6-luna")).toBe(true);

    // gpt-6-luna: $0.10 / $0.50 per million input / output tokens, halved for batches.
    const u = summary.usage;
    expect(u.inputTokens).toBeGreaterThan(0);
    expect(costUsd(u, "openai", "gpt-6-luna", "live")).toBeCloseTo((u.inputTokens * 0.1 + u.outputTokens * 0.5) / 1e6, 12);
    expect(summary.costUsd).toBeCloseTo(costUsd(u, "openai", "gpt-6-luna", "live")! / 2, 12);

    // The batches file: the intent (with the tag sent as metadata), the uploaded file, the batch, its collection.
    const lines = await t.fileLines();
    expect(lines.map((l) => Object.keys(l).sort().join(","))).toEqual(["at,intent,items,run", "at,intent,staged", "at,batch,intent", "at,collected"]);
    expect(batch.metadata).toEqual({ [TAG_KEY]: lines[0]!.intent });
    expect(lines[1]!.staged).toBe(batch.input_file_id);
    expect(lines[2]!.batch).toBe(batch.id);
  });

  it("records the batch ID before its first poll", async () => {
    const t = await setup();
    const recordedAtFirstPoll: boolean[] = [];
    t.batches.on("retrieve", (b: { id: string; polls: number }) => {
      if (b.polls === 1) recordedAtFirstPoll.push(readFileSync(t.batchesFile, "utf8").includes(`"batch":"${b.id}"`));
    });
    await t.run(titleRequests(6), {}, { batchLimits: { maxRequests: 2 } });
    expect(recordedAtFirstPoll).toEqual([true, true, true]);
    expect([...t.batches.batches.values()].map((b) => b.requests.length)).toEqual([2, 2, 2]);
  });

  it("re-asks errored and expired requests and invalid answers in follow-up batches; a malformed request fails once", async () => {
    const t = await setup({
      itemFault: ({ body, n }) => {
        const item = itemOf(body);
        if (item === "N0" && n === 1) return { type: "errored", status: 500, message: "The server had an error" };
        if (item === "N1" && n === 1) return { type: "expired" };
        if (item === "N2") return { type: "errored", status: 400, message: "This model's maximum context length is 8192 tokens." };
        if (item === "N3" && n === 1) return { type: "invalid", text: '{"headline":"x"}' };
        if (item === "N4") return { type: "expired" };
        return undefined;
      },
    });
    const { summary } = await t.run(titleRequests(6), { "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ done: 4, failed: 2, failedByReason: { "api-error": 1, expired: 1 } });
    // The first batch expired (N1, N4); the follow-ups carry what is worth asking again.
    expect([...t.batches.batches.values()][0]!.status).toBe("expired");
    expect(sent(t.batches, 1).sort()).toEqual(["N0", "N1", "N3", "N4"]);
    expect(sent(t.batches, 2)).toEqual(["N4"]);
    expect(t.batches.creates).toBe(3);
    const repair = [...t.batches.batches.values()][1]!.requests.find((r) => itemOf(r.body) === "N3")!.body.messages;
    expect(repair.at(-2)).toEqual({ role: "assistant", content: '{"headline":"x"}' });
    const failed = Object.fromEntries((await t.failures()).map((f) => [f.itemId, f]));
    expect(failed.N2).toMatchObject({ reason: "api-error", attempts: 0 });
    expect(failed.N2!.message).toMatch(/400: This model's maximum context length/);
    expect(failed.N4).toMatchObject({ reason: "expired" });
    // Answers billed: one per answered item, two for N3 (its invalid answer and the repair), none for the others.
    const billed = Object.fromEntries([...t.batches.answered].map(([key, n]) => [/news (N\d+)/.exec(key)![1], n]));
    expect(billed).toEqual({ N0: 1, N1: 1, N3: 2, N5: 1 });
    expect((await t.records()).find((r) => r.itemId === "N3")).toMatchObject({ attempts: 2, output: { title: "Title for N3" } });
  });

  it("a batch that fails validation: the request it names fails, the others go in a new batch", async () => {
    const t = await setup({ invalidLine: (_line, r) => (itemOf(r.body) === "N1" ? "Invalid value for 'model'" : undefined) });
    const { summary } = await t.run(titleRequests(3), { "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ done: 2, failed: 1, failedByReason: { "api-error": 1 } });
    expect([...t.batches.batches.values()][0]!.status).toBe("failed");
    expect(sent(t.batches, 1).sort()).toEqual(["N0", "N2"]);
    expect((await t.failures())[0]).toMatchObject({ itemId: "N1" });
    expect((await t.failures())[0]!.message).toMatch(/failed: invalid_request: Invalid value for 'model'/);
  });

  it("resumes polling a recorded batch after a stop instead of creating it again", async () => {
    const t = await setup({ hold: true });
    const stop = new AbortController();
    t.batches.once("retrieve", () => stop.abort());
    await expect(t.run(titleRequests(5), {}, { batchSignal: stop.signal })).rejects.toThrow();
    expect(t.batches.creates).toBe(1);
    t.batches.release();
    const { summary, ctx } = await t.run(titleRequests(5));
    expect(summary.counts).toMatchObject({ done: 5, failed: 0 });
    expect(ctx.err.text()).toMatch(/resumed polling \(5 requests\)/);
    expect(t.batches.creates).toBe(1);
    expect(t.batches.uploads).toBe(1);
  });

  it("an intent whose batch was never created is created under its tag from the file it already uploaded", async () => {
    const t = await setup();
    const requests = titleRequests(3);
    const cfg = t.cfg();
    // As if killed after the upload was recorded, before the create reached the API.
    const provider = new OpenAiBatchProvider(new OpenAiApi({ baseUrl: fake!.baseUrl, apiKey: KEY }), "gpt-6-luna");
    const items = requests.map((r) => ({ customId: customIdFor(requestKey(r, cfg)), call: { system: r.system, messages: [{ role: "user" as const, content: r.user }], jsonSchema: r.jsonSchema, maxTokens: r.maxTokens } }));
    let staged = "";
    const at = new Date().toISOString();
    await provider.submit(items, { tag: "t-1", onStaged: async (ref) => void (staged = ref) });
    // That create went through; forget it, and keep only the upload.
    t.batches.batches.clear();
    const intent = { intent: "t-2", at, items: requests.map((r) => ({ key: requestKey(r, cfg), attempts: 0 })) };
    await writeFile(t.batchesFile, `${JSON.stringify(intent)}\n${JSON.stringify({ intent: "t-2", at, staged })}\n`);

    const { summary } = await t.run(requests);
    expect(summary.counts.done).toBe(3);
    expect(t.batches.uploads).toBe(1);
    const batch = [...t.batches.batches.values()][0]!;
    expect(batch.input_file_id).toBe(staged);
    expect(batch.metadata).toEqual({ [TAG_KEY]: "t-2" });
  });

  it("a create that fails after the batch was made is not sent again: the batch is found by its tag", async () => {
    const t = await setup({ createFault: (n) => (n === 1 ? { status: 500, afterCreate: true } : undefined) });
    const { summary } = await t.run(titleRequests(4));
    expect(summary.counts.done).toBe(4);
    expect(t.batches.creates).toBe(1);
    expect([...t.batches.answered.values()].every((n) => n === 1)).toBe(true);
  });

  it("a create refused in transit (no batch made) is sent again", async () => {
    const t = await setup({ createFault: (n) => (n === 1 ? { status: 503, afterCreate: false } : undefined) });
    const { summary } = await t.run(titleRequests(2));
    expect(summary.counts.done).toBe(2);
    expect(t.batches.creates).toBe(1);
  });

  it("finds a tagged batch through several pages of the batch list, newest first", async () => {
    const t = await setup({ pageSize: 2 });
    const provider = new OpenAiBatchProvider(new OpenAiApi({ baseUrl: fake!.baseUrl, apiKey: KEY }), "gpt-6-luna");
    const call = { system: "s", messages: [{ role: "user" as const, content: "news N1" }], maxTokens: 10 };
    const since = new Date();
    const first = await provider.submit([{ customId: "a", call }], { tag: "wanted" });
    for (let i = 0; i < 5; i++) await provider.submit([{ customId: "a", call }], { tag: `other-${i}` });
    let pages = 0;
    t.batches.on("list", () => pages++);
    expect(await provider.find("wanted", since)).toBe(first);
    expect(pages).toBe(3);
    expect(await provider.find("never-created", since)).toBeUndefined();
  });
});

describe("openai-batch under kill -9 (the CLI in its own process)", () => {
  const argv = (out: string) => ["summarize", "--data", "mind-data/sample", "--limit", "6", "--out", out, "--provider", "openai-batch"];

  async function killWhen(t: Awaited<ReturnType<typeof setup>>, event: "retrieve" | "create") {
    const child = spawn(process.execPath, nodeArgs("src/cli/main.ts", ...argv(t.dir)), {
      cwd: process.cwd(),
      env: childEnv({ ...t.env, GENRE_MIND_POLL_INTERVAL: "0.01" }),
      stdio: "ignore",
    });
    const exited = once(child, "exit");
    await once(t.batches, event);
    child.kill("SIGKILL");
    const [, signal] = await exited;
    expect(signal).toBe("SIGKILL");
  }

  it("killed while polling: the rerun resumes the recorded batch and pays for nothing twice", async () => {
    const t = await setup({ hold: true });
    await killWhen(t, "retrieve");
    expect(t.batches.creates).toBe(1);
    t.batches.release();
    const rerun = await runCliCaptured(argv(t.dir), { cwd: process.cwd(), env: { ...t.env, GENRE_MIND_POLL_INTERVAL: "0.01" } });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/resumed polling \(6 requests\)/);
    expect(t.batches.creates).toBe(1);
    expect(t.batches.uploads).toBe(1);
    expect([...t.batches.answered.values()].every((n) => n === 1)).toBe(true);
    expect(new Set((await t.records()).map((r) => r.itemId)).size).toBe(6);
  });

  it("killed while the create was in flight: the rerun adopts the batch the API made instead of paying twice", async () => {
    const t = await setup();
    t.batches.hangNextCreate();
    await killWhen(t, "create");
    expect(t.batches.creates).toBe(1);
    // The ID never reached the file: only the intent and the upload did.
    expect((await t.fileLines()).some((l) => "batch" in l)).toBe(false);
    const rerun = await runCliCaptured(argv(t.dir), { cwd: process.cwd(), env: { ...t.env, GENRE_MIND_POLL_INTERVAL: "0.01" } });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/adopted \(created by an interrupted run, never recorded; 6 requests\)/);
    expect(t.batches.creates).toBe(1);
    expect(t.batches.uploads).toBe(1);
    expect([...t.batches.answered.values()].every((n) => n === 1)).toBe(true);
    expect(new Set((await t.records()).map((r) => r.itemId)).size).toBe(6);
  });
});

describe("EngineConfig", () => {
  it("knows openai-batch", () => {
    expect(EngineConfig.parse({ provider: "openai-batch" }).provider).toBe("openai-batch");
  });
});
