// --provider openai: OpenAI's chat completions through the shared client, against the fake API on
// 127.0.0.1 (OPENAI_BASE_URL / --base-url), never the network.
import { describe, expect, it } from "vitest";
import { UserError } from "../src/cli/command.js";
import { costUsd } from "../src/engine/cost.js";
import { runEngineWith } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { StageRecord } from "../src/engine/types.js";
import { durationMs, openAiRateLimits } from "../src/providers/chat-completions.js";
import { createOpenAiProvider, openAiSpec } from "../src/providers/openai.js";
import { resolveBaseUrl } from "../src/providers/setup.js";
import { runPaths } from "../src/run/folder.js";
import { config, context, tempDir, titleAnswer, titleRequests } from "./engine-helpers.js";
import { startOpenAiFake, type OpenAiFake, type OpenAiFakeOptions } from "./fakes/openai-api.js";

const KEY = "sk-test-openai-0123";

let fake: OpenAiFake | undefined;

async function setup(options: OpenAiFakeOptions = {}) {
  fake = await startOpenAiFake({ answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }), requireKey: KEY, ...options });
  const dir = await tempDir();
  const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: fake.baseUrl };
  const run = (n: number, over: Record<string, unknown> = {}, system?: string) => {
    const ctx = context(env);
    return runEngineWith({ stage: "summarize", requests: titleRequests(n, { system }), runDir: dir }, config({ provider: "openai", ...over }), ctx, {
      retryBaseMs: 1,
      maxBackoffMs: 5,
    }).then((summary) => ({ summary, ctx }));
  };
  const records = async () => (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
  return { run, records, env };
}

describe("--provider openai", () => {
  it("declares OpenAI's base URL, key variable and a current cheap default model", () => {
    expect(openAiSpec.defaultModel).toBe("gpt-6-luna");
    expect(openAiSpec.key).toEqual({ env: "OPENAI_API_KEY", required: true });
    expect(resolveBaseUrl(openAiSpec, config({ provider: "openai" }), {})).toBe("https://api.openai.com/v1");
    expect(resolveBaseUrl(openAiSpec, config({ provider: "openai" }), { OPENAI_BASE_URL: "http://127.0.0.1:9/v1" })).toBe("http://127.0.0.1:9/v1");
    expect(openAiSpec.price!("gpt-6-luna")).toMatchObject({ input: 0.1, cacheRead: 0.01, output: 0.5, batchDiscount: 0.5 });
    // A dated snapshot is priced as its model.
    expect(openAiSpec.price!("gpt-5-nano-2025-08-07")).toMatchObject({ input: 0.05 });
  });

  it("stops before sending when OPENAI_API_KEY is missing", async () => {
    const t = await setup();
    const err = await runEngineWith({ stage: "summarize", requests: titleRequests(2), runDir: await tempDir() }, config({ provider: "openai" }), context({ OPENAI_BASE_URL: fake!.baseUrl }), {}).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/OPENAI_API_KEY.*--provider openai/);
    expect(fake!.received).toHaveLength(0);
    expect(t.env.OPENAI_API_KEY).toBe(KEY);
  });

  it("asks with the stage's schema as strict structured output, max_completion_tokens and the model's reasoning effort", async () => {
    const t = await setup();
    const { summary } = await t.run(3);
    expect(summary.counts).toMatchObject({ items: 3, done: 3, failed: 0 });
    const body = fake!.received[0]!.body;
    expect(fake!.received[0]!.authorization).toBe(`Bearer ${KEY}`);
    expect(body.model).toBe("gpt-6-luna");
    expect(body.response_format).toMatchObject({ type: "json_schema", json_schema: { name: "answer", strict: true } });
    expect(body.max_completion_tokens).toBe(200);
    expect(body.max_tokens).toBeUndefined();
    expect(body.reasoning_effort).toBe("none");
    const records = await t.records();
    expect(records.every((r) => r.provider === "openai" && r.model === "gpt-6-luna")).toBe(true);
  });

  it("leaves reasoning_effort to the API for a model the table gives none, and says once that an unpriced model's cost is not counted", async () => {
    const t = await setup();
    const { summary, ctx } = await t.run(4, { model: "gpt-7-preview" });
    expect(summary.counts.done).toBe(4);
    expect(fake!.received.every((r) => r.body.reasoning_effort === undefined)).toBe(true);
    expect(summary.costUsd).toBe(0);
    expect(ctx.err.text().match(/no price/g)).toHaveLength(1);
    expect(ctx.err.text()).toMatch(/model gpt-7-preview has no price in data\/pricing\.json; its cost is not counted/);
  });

  it("reads cached and cache-write tokens apart from fresh input and prices each at its rate", async () => {
    const t = await setup({ reportCacheWrites: true });
    const system = "You rewrite news titles. " + "Keep the facts; drop the clickbait. ".repeat(150);
    const { summary, ctx } = await t.run(3, { concurrency: 1 }, system);
    const u = summary.usage;
    expect(u.cacheWriteTokens).toBeGreaterThan(1024);
    expect(u.cacheReadTokens).toBe(u.cacheWriteTokens * 2);
    // gpt-6-luna: $0.10 input, $0.125 cache write, $0.01 cached input, $0.50 output per million.
    expect(summary.costUsd).toBeCloseTo((u.inputTokens * 0.1 + u.cacheWriteTokens * 0.125 + u.cacheReadTokens * 0.01 + u.outputTokens * 0.5) / 1e6, 12);
    expect(summary.costUsd).toBeCloseTo(costUsd(u, "openai", "gpt-6-luna")!, 12);
    expect(ctx.err.text()).not.toMatch(/no price/);
  });

  it("reads OpenAI's x-ratelimit-* headers into the engine's rate-limit reading", async () => {
    await setup({ rateLimits: { requests: 500, tokens: 200_000 } });
    const p = createOpenAiProvider({ config: config({ provider: "openai" }), env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: fake!.baseUrl }, model: "gpt-6-luna" });
    const answer = await p.call({ system: "s", messages: [{ role: "user", content: "news N1" }], maxTokens: 50 });
    expect(answer.limits).toEqual({
      requests: { limit: 500, remaining: 499, resetInMs: 1000 },
      // The fake counts this answer's own tokens before it answers, as OpenAI does.
      tokens: { limit: 200_000, remaining: 200_000 - answer.usage.inputTokens - answer.usage.outputTokens, resetInMs: 360_000 },
    });
    expect(openAiRateLimits(new Headers({ "x-ratelimit-limit-requests": "0" }))).toBeUndefined();
  });

  it("reads OpenAI's reset durations", () => {
    expect(durationMs("6m0s")).toBe(360_000);
    expect(durationMs("1.5s")).toBe(1500);
    expect(durationMs("20ms")).toBe(20);
    expect(durationMs("1h2m3s")).toBe(3_723_000);
    expect(durationMs("soon")).toBeUndefined();
    expect(durationMs(null)).toBeUndefined();
  });
});
