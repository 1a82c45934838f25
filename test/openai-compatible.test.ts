import { APIConnectionError, APIError } from "@anthropic-ai/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../src/cli/command.js";
import { EngineConfig } from "../src/engine/config.js";
import { createOpenAiCompatibleProvider, OpenAiCompatibleProvider } from "../src/providers/openai-compatible.js";
import type { ProviderCall } from "../src/providers/types.js";
import { startOpenAiFake, type OpenAiFake, type OpenAiFakeOptions } from "./fakes/openai-api.js";

const SCHEMA = { type: "object", properties: { topic: { type: "string" } }, required: ["topic"], additionalProperties: false };
const jsonCall: ProviderCall = {
  system: "You label news.",
  messages: [{ role: "user", content: "Title: Fed raises rates" }],
  jsonSchema: SCHEMA,
  maxTokens: 200,
};

let fake: OpenAiFake | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function provider(options: OpenAiFakeOptions = {}, apiKey?: string) {
  fake = await startOpenAiFake({ answer: () => '{"topic":"finance"}', ...options });
  return new OpenAiCompatibleProvider({ baseUrl: fake.baseUrl, model: "qwen2.5-7b-instruct", apiKey });
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
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(401);
    expect(fake!.received[0]!.authorization).toBe("Bearer sk-secret-999");
    expect(String((err as Error).message)).toContain("[redacted]");
    expect(JSON.stringify((err as APIError).error)).not.toContain("sk-secret-999");
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

  it("does not step down on a 400 that is not about the response format", async () => {
    const p = await provider();
    fake!.queueFaults({ kind: "400" });
    const err = await p.call(jsonCall).catch((e: unknown) => e);
    expect((err as APIError).status).toBe(400);
    expect(p.structuredOutput).toBe("strict");
    expect(fake!.received).toHaveLength(1);
  });

  it("maps finish_reason length to max_tokens and a refusal to refusal", async () => {
    const p = await provider();
    fake!.queueFaults({ kind: "length" }, { kind: "refusal" });
    expect((await p.call(jsonCall)).stop).toBe("max_tokens");
    const refused = await p.call(jsonCall);
    expect(refused.stop).toBe("refusal");
    expect(refused.text).toMatch(/can't help/);
  });

  it("throws SDK errors carrying status and retry-after for 429, 500 and malformed bodies", async () => {
    const p = await provider();
    fake!.queueFaults({ kind: "429", retryAfterSeconds: 7 }, { kind: "500" }, { kind: "malformed" });
    const e429 = (await p.call(jsonCall).catch((e: unknown) => e)) as APIError;
    expect(e429).toBeInstanceOf(APIError);
    expect(e429.status).toBe(429);
    expect(e429.headers?.get("retry-after")).toBe("7");
    const e500 = (await p.call(jsonCall).catch((e: unknown) => e)) as APIError;
    expect(e500.status).toBe(500);
    const bad = await p.call(jsonCall).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(APIConnectionError);
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
    fake = await startOpenAiFake();
    const url = fake.baseUrl;
    await fake.close();
    fake = undefined;
    const p = new OpenAiCompatibleProvider({ baseUrl: url, model: "m" });
    expect(await p.call(jsonCall).catch((e: unknown) => e)).toBeInstanceOf(APIConnectionError);
  });
});

describe("createOpenAiCompatibleProvider", () => {
  const config = (o: Record<string, unknown>) => EngineConfig.parse({ provider: "openai-compatible", ...o });
  it("needs a base URL and a model", () => {
    expect(() => createOpenAiCompatibleProvider(config({ model: "m" }), {})).toThrow(UserError);
    expect(() => createOpenAiCompatibleProvider(config({ "base-url": "http://127.0.0.1:1/v1" }), {})).toThrow(/--model/);
  });
  it("reads the key from OPENAI_API_KEY when present, and insists on a named variable", () => {
    const ok = createOpenAiCompatibleProvider(config({ "base-url": "http://127.0.0.1:1/v1", model: "m" }), {});
    expect(ok.model).toBe("m");
    expect(() =>
      createOpenAiCompatibleProvider(config({ "base-url": "http://127.0.0.1:1/v1", model: "m", "api-key-env": "VLLM_KEY" }), {}),
    ).toThrow(/VLLM_KEY/);
  });
});
