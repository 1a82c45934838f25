// Run control: --max-cost (live and batch, exact counts; --dry-run's verdict) and a clean stop on
// SIGINT/SIGTERM (the CLI in its own process, with requests in flight). Waits on events, never on time.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { EngineConfig } from "../src/engine/config.js";
import { expectedUsd, MAX_COST_EXIT, storedSpendUsd, worstCaseUsd } from "../src/engine/budget.js";
import { runEngineWith, type EngineDeps } from "../src/engine/engine.js";
import { callFor } from "../src/engine/plan.js";
import { readJsonl } from "../src/engine/store.js";
import { FailureRecord, StageRecord, type LlmRequest } from "../src/engine/types.js";
import { registerProvider } from "../src/providers/registry.js";
import { openAiSpec } from "../src/providers/openai.js";
import type { LiveProviderSpec, ProviderAnswer, ProviderCall } from "../src/providers/types.js";
import { runPaths } from "../src/run/folder.js";
import { context, tempDir, titleAnswer, titleRequests } from "./engine-helpers.js";
import { blockText, createFakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { startOpenAiFake, type OpenAiFake } from "./fakes/openai-api.js";
import { installOpenAiBatches } from "./fakes/openai-batches.js";
import { binArgs, nodeArgs, childEnv } from "./helpers/child.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeFixture, records } from "./stages.fixture.js";

/** An in-memory paid provider with a fixed bill per call: the cap's arithmetic can be checked to the cent. */
const PRICE = { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2, minCacheableTokens: 1024, batchDiscount: 0.5 };
const USAGE = { inputTokens: 100, outputTokens: 10, cacheReadTokens: 0, cacheWriteTokens: 0 };
/** $ per answer: 100 input tokens at $2, 10 output at $10 per million. */
const BILL = (100 * 2 + 10 * 10) / 1e6;
const calls: ProviderCall[] = [];
let invalidFirst = new Set<string>();
const capped: LiveProviderSpec = {
  name: "capped-live",
  family: "capped",
  mode: "live",
  defaultModel: "capped-1",
  capabilities: { structuredOutput: true, promptCaching: false },
  paid: true,
  price: (model) => (model === "capped-1" ? PRICE : undefined),
  create: (setup) => ({
    model: setup.model,
    async call(call: ProviderCall): Promise<ProviderAnswer> {
      calls.push(call);
      // Answers come back on a later turn, so calls are really in flight together.
      await new Promise((resolve) => setImmediate(resolve));
      const id = /news (N\d+)/.exec(call.messages[0]!.content)![1]!;
      const text = invalidFirst.has(id) && call.messages.length === 1 ? "not json" : titleAnswer({ messages: call.messages });
      return { text, stop: "end", usage: USAGE };
    },
  }),
};
registerProvider(capped);

let fake: OpenAiFake | undefined;
afterEach(() => {
  calls.length = 0;
  invalidFirst = new Set();
  // cappedBatchRun starts a fake only for a test that has none, never reuses the last test's closed one.
  fake = undefined;
});

const FAST: EngineDeps = { retryBaseMs: 1, maxBackoffMs: 5, batchPollMs: 1 };

async function cappedRun(dir: string, requests: LlmRequest[], over: Record<string, unknown>) {
  const ctx = context();
  const config = EngineConfig.parse({ provider: "capped-live", concurrency: 1, "max-failure-share": 1, ...over });
  const summary = await runEngineWith({ stage: "summarize", requests, runDir: dir }, config, ctx, FAST);
  return { summary, ctx };
}

describe("--max-cost, live", () => {
  it("sends only what fits beside the stage's spend, stops with what is left, and goes on where it stopped", async () => {
    const dir = await tempDir();
    const requests = titleRequests(10);
    const worst = worstCaseUsd(callFor(requests[0]!), { ...PRICE }, "live");
    // Three answers billed, then room for exactly one more worst case: the fifth call does not fit.
    const cap = 3 * BILL + worst;
    const { summary, ctx } = await cappedRun(dir, requests, { "max-cost": String(cap) });
    expect(calls).toHaveLength(4);
    expect(summary.counts).toMatchObject({ items: 10, done: 4, failed: 0 });
    expect(summary.costUsd).toBeCloseTo(4 * BILL, 12);
    expect(summary.stopped).toMatchObject({ reason: "max-cost", left: 6 });
    expect(summary.stopped!.leftUsd).toBeCloseTo(6 * expectedUsd(requests[9]!, { ...PRICE }, "live"), 12);
    expect(ctx.out.text()).toMatch(/stopped at --max-cost \$0\.\d{4} \(the stage has cost \$0\.0012 in this folder\): 6 item\(s\) left, expected to cost ~\$0\.\d{4}; raise --max-cost/);

    // The same cap again: the stored spend counts, so nothing more fits.
    const again = await cappedRun(dir, requests, { "max-cost": String(cap) });
    expect(calls).toHaveLength(4);
    expect(again.summary.counts).toMatchObject({ cached: 4, done: 0 });
    expect(again.summary.stopped).toMatchObject({ reason: "max-cost", left: 6 });

    // A higher cap: exactly the six left are sent.
    const rest = await cappedRun(dir, requests, { "max-cost": "1" });
    expect(calls).toHaveLength(10);
    expect(rest.summary.counts).toMatchObject({ cached: 4, done: 6 });
    expect(rest.summary.stopped).toBeUndefined();
  });

  it("keeps calls in flight within the cap: their worst case is reserved until they answer", async () => {
    const dir = await tempDir();
    const requests = titleRequests(20);
    const worst = worstCaseUsd(callFor(requests[0]!), { ...PRICE }, "live");
    // Room for two worst cases beside eight answers: eight calls may be in flight only while little is spent.
    const cap = 8 * BILL + 2 * worst;
    const { summary, ctx } = await cappedRun(dir, requests, { "max-cost": String(cap), concurrency: 8 });
    expect(calls.length).toBeGreaterThan(8);
    expect(calls.length).toBeLessThan(20);
    expect(calls.length * BILL).toBeLessThanOrEqual(cap);
    expect(summary.costUsd).toBeCloseTo(calls.length * BILL, 12);
    expect(summary.counts.done).toBe(calls.length);
    expect(summary.stopped).toMatchObject({ reason: "max-cost", left: 20 - calls.length });
    // Items held back by the cap were not sent again: no call counts as re-sent.
    expect(summary.counts.retried).toBe(0);
    expect(ctx.out.text()).not.toMatch(/re-sent/);
  });

  it("records an answer already billed whose repair no longer fits as failed, so its cost stays in the store", async () => {
    const dir = await tempDir();
    invalidFirst = new Set(["N0"]);
    const requests = titleRequests(2);
    // Room for the first call's worst case only: the repair (a longer call, after a bill) does not fit.
    const worst = worstCaseUsd(callFor(requests[0]!), { ...PRICE }, "live");
    const { summary } = await cappedRun(dir, requests, { "max-cost": String(worst) });
    expect(calls).toHaveLength(1);
    expect(summary.counts).toMatchObject({ done: 0, failed: 1, failedByReason: { invalid: 1 } });
    expect(summary.stopped).toMatchObject({ reason: "max-cost", left: 2 });
    const failures = (await readJsonl(runPaths(dir).failures("summarize"), FailureRecord)).records;
    expect(failures[0]).toMatchObject({ itemId: "N0", reason: "invalid", usage: USAGE });
    expect(failures[0]!.message).toMatch(/not asked again: --max-cost reached/);
    // The next run counts that bill: with the same cap, nothing fits.
    const again = await cappedRun(dir, requests, { "max-cost": String(worst) });
    expect(calls).toHaveLength(1);
    expect(again.summary.stopped).toMatchObject({ reason: "max-cost", left: 2 });
  });

  it("counts what the store says earlier runs were billed, each line at its own provider's price; an imported answer costs nothing", async () => {
    const dir = await tempDir();
    const head = { stage: "summarize", output: { title: "t" }, attempts: 1 };
    const lines = [
      { ...head, key: "k1", itemId: "N1", provider: "capped-live", model: "capped-1", usage: USAGE },
      { ...head, key: "k2", itemId: "N2", provider: "imported", model: "genre-log", usage: USAGE },
      { ...head, key: "k3", itemId: "N3", provider: "anthropic-batch", model: "claude-haiku-4-5", usage: { ...USAGE, outputTokens: 0 } },
    ];
    await writeFile(runPaths(dir).records("summarize"), lines.map((l) => JSON.stringify(StageRecord.parse(l))).join("\n") + "\n");
    // capped-1: $0.0003; imported: 0; Claude Haiku 4.5 in a batch: 100 input tokens at $1, halved.
    expect(await storedSpendUsd(runPaths(dir), "summarize")).toBeCloseTo(BILL + (100 * 1) / 1e6 / 2, 12);
  });

  it("needs a price to cap", async () => {
    const err = await cappedRun(await tempDir(), titleRequests(1), { model: "unpriced", "max-cost": "1" }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/--max-cost needs the price of model unpriced/);
    expect(calls).toHaveLength(0);
  });

  it("--dry-run says whether the stage fits the cap", async () => {
    const requests = titleRequests(10);
    const expected = 10 * expectedUsd(requests[0]!, { ...PRICE }, "live");
    const dry = async (cap: number) => (await cappedRun(await tempDir(), requests, { "dry-run": true, "max-cost": String(cap) })).ctx.out.text();
    expect(await dry(1)).toMatch(/--max-cost \$1\.0000: the stage has cost \$0\.0000 in this folder; fits, even with every answer at max_tokens/);
    expect(await dry(expected * 1.05)).toMatch(/fits at the expected answer length; answers running long could stop it at the cap/);
    expect(await dry(expected * 0.5)).toMatch(/does not fit: the run would stop after about 5 of 10 requests/);
    expect(calls).toHaveLength(0);
  });
});

describe("--max-cost, batch", () => {
  /** openai-batch through the fake, capped at `capOf(worst case of a request)`. */
  async function cappedBatchRun(dir: string, capOf: (worst: number) => number) {
    fake ??= await startOpenAiFake({ answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }) });
    const requests = titleRequests(10);
    const worst = worstCaseUsd({ ...callFor(requests[0]!) }, openAiSpec.price!("gpt-6-luna")!, "batch");
    const cap = capOf(worst);
    const ctx = context({ OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl });
    const summary = await runEngineWith(
      { stage: "summarize", requests, runDir: dir },
      EngineConfig.parse({ provider: "openai-batch", "max-cost": String(cap) }),
      ctx,
      { ...FAST, batchLimits: { maxRequests: 4 } },
    );
    return { summary, worst, cap, ctx };
  }

  it("checks the cap per batch before creating it, and again after each collection: the real cost makes room for the rest", async () => {
    fake = await startOpenAiFake({ answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }) });
    const batches = installOpenAiBatches(fake);
    const dir = await tempDir();
    // Six worst cases fit beside nothing: a batch of 4, then one of 2; the other 4 wait for them, whose
    // answers cost far less than their worst case, and go in a third batch.
    const { summary, cap } = await cappedBatchRun(dir, (worst) => 6.5 * worst);
    expect([...batches.batches.values()].map((b) => b.requests.length)).toEqual([4, 2, 4]);
    expect(summary.counts).toMatchObject({ items: 10, done: 10, failed: 0 });
    expect(summary.stopped).toBeUndefined();
    expect(summary.costUsd).toBeLessThanOrEqual(cap);
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(10);
  });

  it("a cap the real cost reaches stops once, where no further worst case fits, and the same command then sends nothing", async () => {
    fake = await startOpenAiFake({ answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }) });
    const batches = installOpenAiBatches(fake);
    const dir = await tempDir();
    // One worst case fits at a time; each answer's real cost leaves room for the next while it lasts.
    const first = await cappedBatchRun(dir, (worst) => 1.5 * worst);
    const { summary, worst, cap } = first;
    const done = summary.counts.done;
    expect(done).toBeGreaterThan(1);
    expect(done).toBeLessThan(10);
    expect(batches.creates).toBe(done);
    expect(summary.stopped).toMatchObject({ reason: "max-cost", left: 10 - done });
    // Stopped only where the next worst case really does not fit beside what was billed.
    expect(summary.stopped!.reason === "max-cost" && summary.stopped!.spentUsd + worst).toBeGreaterThan(cap);
    expect(summary.costUsd).toBeLessThanOrEqual(cap);

    const again = await cappedBatchRun(dir, () => cap);
    expect(batches.creates).toBe(done);
    expect(again.summary.counts).toMatchObject({ done: 0, cached: done });
    expect(again.summary.stopped).toMatchObject({ reason: "max-cost", left: 10 - done });
  });
});

describe("--max-cost under augment: one cap for the whole run", () => {
  /** summarize's and describe's answers, the same at every run: each stage's bill is too. */
  function answer(body: FakeMessageRequest): string {
    const user = blockText(body.messages[0]!.content);
    const title = /^Title: (.*)$/m.exec(user);
    if (title) return `${title[1]}, explained`;
    const name = /^Name: (.*)$/m.exec(user)![1]!;
    return `News about ${name} covers the subjects, people and events of its field: results, trades, injuries, previews, analysis and the decisions that shape each season for teams, fans and the wider public.`;
  }
  const spend = async (out: string, stage: string) => storedSpendUsd(runPaths(out), stage);

  it("gives describe what summarize left of the cap, stops before merge (exit 3), and a re-run counts the spend stored by the first", async () => {
    const anthropic = await createFakeAnthropic({ answer });
    const { root, data, out } = await makeFixture();
    const env = { ANTHROPIC_API_KEY: "test-key" };
    const augment = (dir: string, ...extra: string[]) =>
      runCliCaptured(["augment", "--data", data, "--out", dir, "--provider", "anthropic", "--base-url", anthropic.url, "--concurrency", "1", "--stages", "summarize,describe", ...extra], { cwd: root, env });

    // What each stage costs in full, uncapped.
    const whole = `${root}/whole`;
    expect((await augment(whole)).code).toBe(0);
    const [summarizeUsd, describeUsd] = [await spend(whole, "summarize"), await spend(whole, "describe")];
    const sent = anthropic.messageLog().length;

    // Either stage fits under this cap alone (its last call's worst case included); both do not.
    const cap = summarizeUsd + describeUsd;
    const r = await augment(out, "--max-cost", String(cap));
    expect(r.code, r.stderr).toBe(MAX_COST_EXIT);
    expect(await records(out, "summarize")).toHaveLength(9);
    const described = (await records(out, "describe")).length;
    expect(described).toBeGreaterThan(0);
    expect(described).toBeLessThan(14);
    expect((await spend(out, "summarize")) + (await spend(out, "describe"))).toBeLessThanOrEqual(cap);
    expect(r.stdout).toMatch(/stopped at --max-cost \$0\.\d{4} \(augment's stages have cost \$0\.\d{4} in this folder: summarize \$0\.\d{4}, describe \$0\.\d{4}\): \d+ item\(s\) left/);
    expect(r.stderr).toMatch(/augment: describe stopped at --max-cost, which covers every stage of this augment; stopping before merge\. Raise --max-cost/);
    expect(r.stderr).not.toMatch(/augment: merge/);
    expect(existsSync(runPaths(out).manifest)).toBe(false);
    expect(existsSync(`${out}/train`)).toBe(false);

    // The same command again: summarize's stored spend still counts, so nothing is sent.
    const atCap = anthropic.messageLog().length;
    expect(atCap).toBe(sent + 9 + described);
    const again = await augment(out, "--max-cost", String(cap));
    expect(again.code).toBe(MAX_COST_EXIT);
    expect(anthropic.messageLog().length).toBe(atCap);

    // A raised cap asks only the descriptions left, then merges.
    const raised = await augment(out, "--max-cost", String(2 * cap));
    expect(raised.code, raised.stderr).toBe(0);
    expect(anthropic.messageLog().length).toBe(atCap + 14 - described);
    expect(existsSync(runPaths(out).manifest)).toBe(true);
  });

  it("needs the model's price before the first stage runs", async () => {
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["augment", "--data", data, "--out", out, "--provider", "anthropic", "--model", "claude-unpriced", "--stages", "summarize,describe", "--max-cost", "1"], {
      cwd: root,
      env: { ANTHROPIC_API_KEY: "test-key" },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--max-cost needs the price of model claude-unpriced/);
    expect(r.stderr).not.toMatch(/augment: summarize/);
    expect(existsSync(runPaths(out).records("summarize"))).toBe(false);
  });

  it("--dry-run counts the stages before a stage against the cap", async () => {
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["augment", "--data", data, "--out", out, "--provider", "anthropic", "--stages", "summarize,describe", "--max-cost", "1", "--dry-run"], { cwd: root, env: {} });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^  --max-cost \$1\.0000: the stage has cost \$0\.0000 in this folder; fits/m);
    const before = /^  --max-cost \$1\.0000 \(the whole augment\): the stage has cost \$0\.0000 in this folder, the stages before it \$(0\.\d{4}) with what they are expected to cost \(summarize \$(0\.\d{4})\); fits/m.exec(r.stdout);
    expect(before?.[1]).toBe(before?.[2]);
    expect(Number(before?.[1])).toBeGreaterThan(0);
  });
});

describe("a clean stop on SIGINT / SIGTERM (the CLI in its own process)", () => {
  const argv = (out: string, provider: string, limit: number) => ["summarize", "--data", "mind-data/sample", "--limit", String(limit), "--out", out, "--provider", provider, "--concurrency", "4"];

  // A test that fails half-way leaves no CLI behind to go on sending to the next test's fake.
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  function start(args: string[], env: Record<string, string>, node = nodeArgs("src/cli/main.ts", ...args)) {
    const child = spawn(process.execPath, node, { cwd: process.cwd(), env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    started.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, "exit").then(([code]) => ({ code: code as number | null, stdout, stderr }));
    return { child, exited, stderr: () => stderr };
  }

  /** Resolves once the text the process wrote to stderr contains `what`. */
  function said(run: ReturnType<typeof start>, what: string): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (run.stderr().includes(what)) {
          run.child.stderr!.off("data", check);
          resolve();
        }
      };
      run.child.stderr!.on("data", check);
      check();
    });
  }

  /** Resolves once `n` requests are held by the fake, unanswered. */
  const inFlight = (f: OpenAiFake, n: number) =>
    new Promise<void>((resolve) => {
      const check = () => f.waiting >= n && resolve();
      f.events.on("held", check);
      check();
    });

  it("SIGINT with requests in flight: sends nothing more, stores what is in flight, exits 130; the rerun pays for nothing twice", async () => {
    // The first call goes alone and is answered; the four that follow are held in flight.
    fake = await startOpenAiFake({ holdFrom: 1, answer: () => "A plain headline for the news" });
    const dir = await tempDir();
    const env = { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl };
    const run = start(argv(dir, "openai", 12), env);
    await inFlight(fake, 4);
    run.child.kill("SIGINT");
    await said(run, "SIGINT: sending nothing more; waiting up to 120 s for the answers in flight");
    fake.releaseAnswers();
    const { code, stdout } = await run.exited;
    expect(code).toBe(130);
    expect(fake.received).toHaveLength(5);
    expect(stdout).toMatch(/12 items, 5 done/);
    expect(stdout).toMatch(/interrupted: 7 item\(s\) left, expected to cost ~\$0\.\d{4}; run the same command again to resume/);
    // Nothing answered was lost.
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(5);

    const rerun = await runCliCaptured(argv(dir, "openai", 12), { cwd: process.cwd(), env });
    expect(rerun.code).toBe(0);
    expect(fake.received).toHaveLength(12);
    const users = fake.received.map((r) => r.body.messages.find((m) => m.role === "user")!.content);
    expect(new Set(users).size).toBe(12);
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(12);
  });

  it("a second SIGINT exits at once; the store stays as after kill -9 and the next run asks the rest", async () => {
    fake = await startOpenAiFake({ holdFrom: 1, answer: () => "A plain headline for the news" });
    const dir = await tempDir();
    const env = { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl };
    const run = start(argv(dir, "openai", 8), env);
    await inFlight(fake, 4);
    run.child.kill("SIGINT");
    await said(run, "SIGINT: sending nothing more");
    run.child.kill("SIGINT");
    const { code, stderr } = await run.exited;
    expect(code).toBe(130);
    expect(stderr).toMatch(/SIGINT again: exiting now/);
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(1);
    fake.releaseAnswers();
    const rerun = await runCliCaptured(argv(dir, "openai", 8), { cwd: process.cwd(), env });
    expect(rerun.code).toBe(0);
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(8);
  });

  it("SIGTERM while batches are polled: exits 143 leaving them recorded; the next run resumes them", async () => {
    fake = await startOpenAiFake({ answer: () => "A plain headline for the news" });
    const batches = installOpenAiBatches(fake, { hold: true });
    const dir = await tempDir();
    const env = { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl, GENRE_MIND_POLL_INTERVAL: "0.01" };
    const run = start(argv(dir, "openai-batch", 5), env);
    await once(batches, "retrieve");
    run.child.kill("SIGTERM");
    const { code, stdout, stderr } = await run.exited;
    expect(code).toBe(143);
    expect(stderr).toMatch(/still open \(5 requests\); the next run resumes polling it/);
    expect(stdout).toMatch(/interrupted: 5 item\(s\) left/);
    batches.release();
    const rerun = await runCliCaptured(argv(dir, "openai-batch", 5), { cwd: process.cwd(), env });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/resumed polling \(5 requests\)/);
    expect(batches.creates).toBe(1);
  });

  it("the installed genre-mind (bin/genre-mind.js) is the run itself: SIGTERM to its PID stores what is in flight and leaves no process behind", async () => {
    fake = await startOpenAiFake({ holdFrom: 1, answer: () => "A plain headline for the news" });
    const dir = await tempDir();
    const env = { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl };
    const run = start([], env, binArgs(...argv(dir, "openai", 12)));
    await inFlight(fake, 4);
    // The lock names the process that writes the store: a wrapper would have started another one.
    const lock = runPaths(dir).lock("summarize");
    expect(JSON.parse(await readFile(lock, "utf8")).pid).toBe(run.child.pid);
    run.child.kill("SIGTERM");
    await said(run, "SIGTERM: sending nothing more");
    fake.releaseAnswers();
    const { code, stdout } = await run.exited;
    expect(code).toBe(143);
    expect(stdout).toMatch(/12 items, 5 done/);
    expect((await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records).toHaveLength(5);
    expect(existsSync(lock)).toBe(false);
    // Nothing else goes on sending: the rerun takes the lock and asks exactly the 7 left.
    const rerun = await runCliCaptured(argv(dir, "openai", 12), { cwd: process.cwd(), env });
    expect(rerun.code).toBe(0);
    expect(fake.received).toHaveLength(12);
  });

  it("the installed genre-mind exits and writes as the CLI does: a usage error goes to stderr with exit 2", async () => {
    const run = start([], {}, binArgs("summarize", "--limt", "3"));
    const { code, stdout, stderr } = await run.exited;
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("genre-mind summarize: unknown option '--limt' (did you mean --limit?)\nRun 'genre-mind summarize --help' for usage.\n");
  });

  it("--max-cost through the CLI exits 3", async () => {
    fake = await startOpenAiFake({});
    const dir = await tempDir();
    const env = { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl };
    const r = await runCliCaptured([...argv(dir, "openai", 6), "--max-cost", "0.000001"], { cwd: process.cwd(), env });
    expect(r.code).toBe(MAX_COST_EXIT);
    expect(r.stdout).toMatch(/stopped at --max-cost \$0\.0000/);
    expect(fake.received).toHaveLength(0);
  });
});
