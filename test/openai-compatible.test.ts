import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { UsageError, UserError } from "../src/cli/command.js";
import { EngineConfig } from "../src/engine/config.js";
import { ProviderError } from "../src/providers/errors.js";
import { ChatCompletionsProvider, OpenAiApi } from "../src/providers/chat-completions.js";
import { createOpenAiCompatibleProvider } from "../src/providers/openai-compatible.js";
import type { ProviderCall } from "../src/providers/types.js";
import { runEngineWith } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { FailureRecord, StageRecord } from "../src/engine/types.js";
import { runPaths } from "../src/run/folder.js";
import { config, context, tempDir, titleAnswer, titleRequests } from "./engine-helpers.js";
import { startOpenAiFake, type FakeChatRequest, type OpenAiFake, type OpenAiFakeOptions } from "./fakes/openai-api.js";
import { closeServer, listenOnLoopback } from "./helpers/loopback-server.js";

const SCHEMA = { type: "object", properties: { topic: { type: "string" } }, required: ["topic"], additionalProperties: false };
const jsonCall: ProviderCall = {
  system: "You label news.",
  messages: [{ role: "user", content: "Title: Fed raises rates" }],
  jsonSchema: SCHEMA,
  maxTokens: 200,
};

let fake: OpenAiFake | undefined;

async function provider(options: OpenAiFakeOptions = {}, apiKey?: string) {
  fake = await startOpenAiFake({ answer: () => '{"topic":"finance"}', ...options });
  return new ChatCompletionsProvider(new OpenAiApi({ baseUrl: fake.baseUrl, apiKey }), { model: "qwen2.5-7b-instruct", tokenField: "max_tokens" });
}

describe("openai-compatible provider against the fake server", () => {
  it("asks with a strict json_schema response format and maps the answer and usage", async () => {
    const p = await provider();
    const answer = await p.call(jsonCall);
    expect(answer.text).toBe('{"topic":"finance"}');
    expect(answer.stop).toBe("end");
    expect(answer.usage.inputTokens).toBeGreaterThan(0);
    expect(answer.usage.outputTokens).toBeGreaterThan(0);
    const body = fake!.received[0]!.body;
    expect(body.model).toBe("qwen2.5-7b-instruct");
    expect(body.messages[0]).toEqual({ role: "system", content: "You label news." });
    expect(body.max_tokens).toBe(200);
    expect(body.response_format).toEqual({ type: "json_schema", json_schema: { name: "answer", schema: SCHEMA, strict: true } });
    expect(fake!.received[0]!.authorization).toBeUndefined();
  });

  it("sends the key as a bearer token only when one is given", async () => {
    const p = await provider({ requireKey: "sk-test-123" }, "sk-test-123");
    await p.call(jsonCall);
    expect(fake!.received[0]!.authorization).toBe("Bearer sk-test-123");
  });

  it("never puts the key in an error message, even when the server echoes it", async () => {
    const p = await provider({ requireKey: "the-right-key" }, "sk-secret-999");
    const err = await p.call(jsonCall).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).status).toBe(401);
    expect((err as ProviderError).kind).toBe("fatal");
    expect(fake!.received[0]!.authorization).toBe("Bearer sk-secret-999");
    expect(String((err as Error).message)).toContain("[redacted]");
    expect(JSON.stringify(err)).not.toContain("sk-secret-999");
    expect(String((err as Error).message)).not.toContain("sk-secret-999");
  });

  it("falls back to the schema in the prompt when the server rejects response_format, and remembers it", async () => {
    const p = await provider({ rejectResponseFormat: true });
    expect((await p.call(jsonCall)).text).toBe('{"topic":"finance"}');
    await p.call(jsonCall);
    expect(fake!.received.map((r) => r.outcome)).toEqual(["rejected-response-format", "rejected-response-format", "ok", "ok"]);
    expect(p.structuredOutput).toBe("prompt");
    const last = fake!.received[3]!.body;
    expect(last.response_format).toBeUndefined();
    expect(last.messages[0]!.content).toContain('"required":["topic"]');
  });

  it("drops strict only when the server rejects strict schemas", async () => {
    const p = await provider({ rejectStrict: true });
    await p.call(jsonCall);
    expect(p.structuredOutput).toBe("loose");
    expect(fake!.received[1]!.body.response_format?.json_schema?.strict).toBe(false);
  });

  it("switches to max_completion_tokens when the model rejects max_tokens", async () => {
    const p = await provider({ rejectMaxTokens: true });
    await p.call(jsonCall);
    await p.call(jsonCall);
    expect(fake!.received.map((r) => r.outcome)).toEqual(["rejected-max-tokens", "ok", "ok"]);
    expect(fake!.received[2]!.body).toMatchObject({ max_completion_tokens: 200 });
    expect(fake!.received[2]!.body.max_tokens).toBeUndefined();
    // The schema form is untouched by that step.
    expect(p.structuredOutput).toBe("strict");
  });

  it("does not step down on a 400 once an answer has come back: the request itself is wrong", async () => {
    const p = await provider();
    await p.call(jsonCall);
    fake!.queueFaults({ kind: "400" });
    const err = await p.call(jsonCall).catch((e: unknown) => e);
    expect((err as ProviderError).status).toBe(400);
    expect(p.structuredOutput).toBe("strict");
    expect(fake!.received).toHaveLength(2);
  });

  it("auto: steps down to the prompt on a bare 'Bad Request' before any answer, and says so once", async () => {
    fake = await startOpenAiFake({ answer: () => '{"topic":"finance"}', rejectResponseFormatBare: true });
    const notes: string[] = [];
    const p = new ChatCompletionsProvider(new OpenAiApi({ baseUrl: fake.baseUrl }), { model: "m", tokenField: "max_tokens", note: (m) => notes.push(m) });
    expect((await p.call(jsonCall)).text).toBe('{"topic":"finance"}');
    await p.call(jsonCall);
    expect(fake.received.map((r) => r.outcome)).toEqual(["rejected-response-format", "ok", "ok"]);
    expect(p.structuredOutput).toBe("prompt");
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/refused the strict json_schema response format \(400 Bad Request\); JSON stages now ask with the schema in the system prompt/);
  });

  it("schema: insists on the response format, however the server answers", async () => {
    fake = await startOpenAiFake({ rejectResponseFormatBare: true });
    const p = new ChatCompletionsProvider(new OpenAiApi({ baseUrl: fake.baseUrl }), { model: "m", tokenField: "max_tokens", structuredOutput: "schema" });
    expect(await p.call(jsonCall).catch((e: unknown) => e)).toMatchObject({ status: 400, kind: "rejected" });
    expect(fake.received).toHaveLength(1);
    expect(p.structuredOutput).toBe("strict");
  });

  it("json: JSON mode with the schema stated in the system prompt; prompt: the schema in the prompt only", async () => {
    fake = await startOpenAiFake({ answer: () => '{"topic":"finance"}' });
    const json = new ChatCompletionsProvider(new OpenAiApi({ baseUrl: fake.baseUrl }), { model: "m", tokenField: "max_tokens", structuredOutput: "json" });
    await json.call(jsonCall);
    const prompt = new ChatCompletionsProvider(new OpenAiApi({ baseUrl: fake.baseUrl }), { model: "m", tokenField: "max_tokens", structuredOutput: "prompt" });
    await prompt.call(jsonCall);
    const [asJson, asPrompt] = fake.received.map((r) => r.body);
    expect(asJson!.response_format).toEqual({ type: "json_object" });
    expect(asJson!.messages[0]!.content).toContain('"required":["topic"]');
    expect(asPrompt!.response_format).toBeUndefined();
    expect(asPrompt!.messages[0]!.content).toContain('"required":["topic"]');
    // A call without a schema (a plain-text stage) is sent as it is in every mode.
    await json.call({ ...jsonCall, jsonSchema: undefined });
    expect(fake.received[2]!.body.response_format).toBeUndefined();
    expect(fake.received[2]!.body.messages[0]!.content).toBe("You label news.");
  });

  it("maps finish_reason length to max_tokens and a refusal to refusal", async () => {
    const p = await provider();
    fake!.queueFaults({ kind: "length" }, { kind: "refusal" });
    expect((await p.call(jsonCall)).stop).toBe("max_tokens");
    const refused = await p.call(jsonCall);
    expect(refused.stop).toBe("refusal");
    expect(refused.text).toMatch(/can't help/);
  });

  it("throws provider errors carrying status and retry-after for 429, 500 and malformed bodies", async () => {
    const p = await provider();
    fake!.queueFaults({ kind: "429", retryAfterSeconds: 7 }, { kind: "500" }, { kind: "malformed" });
    const e429 = (await p.call(jsonCall).catch((e: unknown) => e)) as ProviderError;
    expect(e429).toBeInstanceOf(ProviderError);
    expect(e429).toMatchObject({ status: 429, kind: "rate-limit" });
    expect(e429.retryAfterMs).toBe(7000);
    const e500 = (await p.call(jsonCall).catch((e: unknown) => e)) as ProviderError;
    expect(e500).toMatchObject({ status: 500, kind: "server" });
    const bad = await p.call(jsonCall).catch((e: unknown) => e);
    expect(bad).toMatchObject({ kind: "malformed" });
    expect(String((bad as Error).message)).toMatch(/malformed response body/);
  });

  it("reports cached prompt tokens apart from fresh input", async () => {
    const p = await provider();
    const long: ProviderCall = { ...jsonCall, system: "Rules. ".repeat(700) };
    const first = await p.call(long);
    const second = await p.call(long);
    expect(first.usage.cacheReadTokens).toBe(0);
    expect(second.usage.cacheReadTokens).toBeGreaterThan(1000);
    expect(second.usage.inputTokens + second.usage.cacheReadTokens).toBe(first.usage.inputTokens);
  });

  it("surfaces an unreachable server as a connection error", async () => {
    const gone = await startOpenAiFake();
    const url = gone.baseUrl;
    await gone.close();
    const p = new ChatCompletionsProvider(new OpenAiApi({ baseUrl: url }), { model: "m", tokenField: "max_tokens" });
    expect(await p.call(jsonCall).catch((e: unknown) => e)).toMatchObject({ kind: "connection" });
  });
});

describe("createOpenAiCompatibleProvider", () => {
  const config = (o: Record<string, unknown>) => EngineConfig.parse({ provider: "openai-compatible", ...o });
  it("needs a base URL and a model", () => {
    expect(() => createOpenAiCompatibleProvider({ config: config({ model: "m" }), env: {} })).toThrow(UsageError);
    expect(() => createOpenAiCompatibleProvider({ config: config({ "base-url": "http://127.0.0.1:1/v1" }), env: {} })).toThrow(/--model/);
  });
  it("reads the key from OPENAI_API_KEY when present, and insists on a named variable", async () => {
    fake = await startOpenAiFake({ answer: () => '{"topic":"finance"}' });
    const at = (o: Record<string, unknown> = {}) => config({ "base-url": fake!.baseUrl, model: "m", ...o });
    await createOpenAiCompatibleProvider({ config: at(), env: { OPENAI_API_KEY: "sk-from-env" } }).call(jsonCall);
    expect(fake.received.at(-1)!.authorization).toBe("Bearer sk-from-env");
    await createOpenAiCompatibleProvider({ config: at({ "api-key-env": "VLLM_KEY" }), env: { VLLM_KEY: "vllm-key", OPENAI_API_KEY: "not-this" } }).call(jsonCall);
    expect(fake.received.at(-1)!.authorization).toBe("Bearer vllm-key");
    // The default variable is optional (local servers often need no key); a named one is not.
    await createOpenAiCompatibleProvider({ config: at(), env: {} }).call(jsonCall);
    expect(fake.received.at(-1)!.authorization).toBeUndefined();
    expect(() => createOpenAiCompatibleProvider({ config: at({ "api-key-env": "VLLM_KEY" }), env: {} })).toThrow(/--api-key-env VLLM_KEY: the environment variable VLLM_KEY is not set/);
  });
});

describe("openai-compatible through runEngine", () => {
  const userOf = (body: FakeChatRequest) => body.messages.find((m) => m.role === "user")?.content ?? "";
  const itemOf = (body: FakeChatRequest) => /news (N\d+)/.exec(userOf(body))?.[1];

  async function setup(options: OpenAiFakeOptions = {}) {
    fake = await startOpenAiFake({ answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }), ...options });
    const dir = await tempDir();
    const paths = runPaths(dir);
    const run = (n: number, over: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) => {
      const ctx = context(env);
      return runEngineWith(
        { stage: "summarize", requests: titleRequests(n), runDir: dir },
        config({ provider: "openai-compatible", "base-url": fake!.baseUrl, model: "qwen2.5-7b-instruct", ...over }),
        ctx,
        { retryBaseMs: 1, maxBackoffMs: 5 },
      ).then((summary) => ({ summary, ctx }));
    };
    const records = async () => (await readJsonl(paths.records("summarize"), StageRecord)).records;
    const failures = async () => (await readJsonl(paths.failures("summarize"), FailureRecord)).records;
    return { run, records, failures };
  }

  it("answers every item with validated records and the json_schema response format", async () => {
    const t = await setup();
    const { summary } = await t.run(6);
    expect(summary.counts).toMatchObject({ items: 6, done: 6, failed: 0 });
    expect(summary.provider).toBe("openai-compatible");
    expect(summary.usage.inputTokens).toBeGreaterThan(0);
    const records = await t.records();
    expect(records.map((r) => [r.itemId, r.output]).sort()).toEqual(Array.from({ length: 6 }, (_, i) => [`N${i}`, { title: `Title for N${i}` }]).sort());
    expect(records.every((r) => r.model === "qwen2.5-7b-instruct")).toBe(true);
    expect(fake!.received.every((r) => r.body.response_format?.type === "json_schema")).toBe(true);
    // A re-run sends nothing.
    const again = await t.run(6);
    expect(again.summary.counts).toMatchObject({ cached: 6, done: 0 });
    expect(fake!.received).toHaveLength(6);
  });

  it("retries 429 (retry-after), 500 and malformed bodies; no item is answered twice", async () => {
    const t = await setup({
      fault: (body) => {
        const seen = fake!.received.filter((r) => itemOf(r.body) === itemOf(body)).length;
        if (seen > 1) return undefined;
        return itemOf(body) === "N1" ? { kind: "429", retryAfterSeconds: 0 } : itemOf(body) === "N2" ? { kind: "500" } : itemOf(body) === "N3" ? { kind: "malformed" } : undefined;
      },
    });
    const { summary } = await t.run(5);
    expect(summary.counts).toMatchObject({ done: 5, failed: 0, retried: 3 });
    const okPerItem = new Map<string, number>();
    for (const r of fake!.received) if (r.outcome === "ok") okPerItem.set(itemOf(r.body)!, (okPerItem.get(itemOf(r.body)!) ?? 0) + 1);
    expect([...okPerItem.values()]).toEqual([1, 1, 1, 1, 1]);
    expect(fake!.received.map((r) => r.outcome).sort()).toEqual(["429", "500", "malformed", "ok", "ok", "ok", "ok", "ok"]);
  });

  it("does not retry a 400 once answers come back: the item fails as api-error after one request", async () => {
    // N0 goes first and alone, so N2's 400 arrives after an answer (before one, auto would take it as the schema's fault).
    const t = await setup({ fault: (body) => (itemOf(body) === "N2" ? { kind: "400" } : undefined) });
    const { summary } = await t.run(3, { "max-failure-share": 1, concurrency: 1 });
    expect(summary.counts).toMatchObject({ done: 2, failed: 1, failedByReason: { "api-error": 1 } });
    expect(fake!.received.filter((r) => itemOf(r.body) === "N2")).toHaveLength(1);
    expect((await t.failures())[0]!.message).toMatch(/maximum context length/);
  });

  it("stops the whole run on a rejected key, without printing the key", async () => {
    const t = await setup({ requireKey: "right" });
    const err = await t.run(8, {}, { OPENAI_API_KEY: "sk-wrong-key-123" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(String((err as Error).message)).toMatch(/OPENAI_API_KEY/);
    expect(String((err as Error).message)).not.toContain("sk-wrong-key-123");
    expect(fake!.received).toHaveLength(1);
  });

  it("repairs invalid, truncated and refused answers, stating the problem", async () => {
    const t = await setup({
      fault: (body) => {
        if (body.messages.length > 2) return undefined;
        return itemOf(body) === "N0" ? { kind: "content", content: '{"headline":"x"}' } : itemOf(body) === "N1" ? { kind: "length" } : itemOf(body) === "N2" ? { kind: "refusal" } : undefined;
      },
    });
    const { summary } = await t.run(4);
    expect(summary.counts).toMatchObject({ done: 4, failed: 0, retried: 3 });
    const repairs = fake!.received.filter((r) => r.body.messages.length > 2);
    expect(repairs.map((r) => itemOf(r.body)).sort()).toEqual(["N0", "N1", "N2"]);
    const n0 = repairs.find((r) => itemOf(r.body) === "N0")!.body.messages;
    expect(n0[2]).toEqual({ role: "assistant", content: '{"headline":"x"}' });
    expect(n0[3]!.content).toMatch(/title/);
    expect((await t.records()).filter((r) => r.attempts === 2).map((r) => r.itemId).sort()).toEqual(["N0", "N1", "N2"]);
  });

  it("gives a refusal that persists to failures with reason refusal", async () => {
    const t = await setup({ fault: (body) => (itemOf(body) === "N0" ? { kind: "refusal" } : undefined) });
    const { summary } = await t.run(2, { "max-attempts": 2, "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ done: 1, failed: 1, failedByReason: { refusal: 1 } });
    expect((await t.failures())[0]).toMatchObject({ itemId: "N0", reason: "refusal", attempts: 2 });
  });

  it("finishes against a server that answers a bare 'Bad Request' to response_format (auto), and stops on it with --structured-output schema", async () => {
    const t = await setup({ rejectResponseFormatBare: true });
    const { summary, ctx } = await t.run(4);
    expect(summary.counts).toMatchObject({ done: 4, failed: 0 });
    expect(fake!.received.filter((r) => r.outcome === "rejected-response-format")).toHaveLength(1);
    expect(ctx.err.text().match(/refused the strict json_schema/g)).toHaveLength(1);

    const t2 = await setup({ rejectResponseFormatBare: true });
    const err = await t2.run(8, { "structured-output": "schema" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/rejected the first 5 requests and answered none \(400\): 400 Bad Request/);
  });

  it("stops when no call reaches the server (a wrong --base-url, a server not started), naming the cause", async () => {
    // A port nobody listens on: a server opened and closed.
    const closed = createServer();
    const port = await listenOnLoopback(closed);
    await closeServer(closed);
    const dir = await tempDir();
    const ctx = context();
    const err = await runEngineWith(
      { stage: "summarize", requests: titleRequests(200), runDir: dir },
      config({ provider: "openai-compatible", "base-url": `http://127.0.0.1:${port}/v1`, model: "m", concurrency: 4 }),
      ctx,
      { retryBaseMs: 1, maxBackoffMs: 2 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message, (err as Error).message).toMatch(/could not reach the API in 30 calls and got no answer \(.*ECONNREFUSED.*\); check --base-url/);
    // Stopped after about 30 calls: a few items gave up their retries, not all 200.
    expect((await readJsonl(runPaths(dir).failures("summarize"), FailureRecord)).records.length).toBeLessThan(20);
  });

  it("works against a server without structured output by stating the schema in the prompt", async () => {
    const t = await setup({ rejectResponseFormat: true });
    const { summary } = await t.run(4, { concurrency: 1 });
    expect(summary.counts).toMatchObject({ done: 4, failed: 0 });
    // One rejected request per form tried (strict, then loose), then plain prompting for every item.
    expect(fake!.received.map((r) => r.outcome)).toEqual(["rejected-response-format", "rejected-response-format", "ok", "ok", "ok", "ok"]);
    expect(fake!.received.at(-1)!.body.messages[0]!.content).toContain("JSON Schema");
  });
});
