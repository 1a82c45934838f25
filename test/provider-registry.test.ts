// A provider is one file: this test file declares two (a live and a batch one, in memory), registers
// them, and runs them through the engine, the dry-run and the error paths with no other change.
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../src/cli/command.js";
import { EngineConfig } from "../src/engine/config.js";
import { runEngineWith, type EngineDeps } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { FailureRecord, StageRecord } from "../src/engine/types.js";
import { ProviderError } from "../src/providers/errors.js";
import { registerProvider } from "../src/providers/registry.js";
import { resolveApiKey } from "../src/providers/setup.js";
import type {
  BatchItemResult,
  BatchProvider,
  BatchProviderSpec,
  LiveProvider,
  LiveProviderSpec,
  ProviderAnswer,
  ProviderCall,
  ProviderSetup,
} from "../src/providers/types.js";
import { runPaths } from "../src/run/folder.js";
import { context, tempDir, titleAnswer, titleRequests } from "./engine-helpers.js";

const GOOD_KEY = "fake-key-0123456789";
const PRICE = { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2, minCacheableTokens: 1024, batchDiscount: 0.5 };

/** What the fake API does with a call: answer it, or fail it the way an SDK would report. */
type Behaviour = (call: ProviderCall) => ProviderError | Error | undefined;

const state = { calls: [] as ProviderCall[], behaviour: (() => undefined) as Behaviour };
afterEach(() => {
  state.calls = [];
  state.behaviour = () => undefined;
});

function answer(call: ProviderCall): ProviderAnswer {
  return { text: titleAnswer({ messages: call.messages }), stop: "end", usage: { inputTokens: 100, outputTokens: 10, cacheReadTokens: 0, cacheWriteTokens: 0 } };
}

class FakeLive implements LiveProvider {
  constructor(
    readonly model: string,
    private readonly key: string | undefined,
  ) {}

  async call(call: ProviderCall): Promise<ProviderAnswer> {
    state.calls.push(call);
    if (this.key !== GOOD_KEY) throw ProviderError.fromStatus(401, "invalid x-fake-key");
    const fault = state.behaviour(call);
    if (fault) throw fault;
    return { ...answer(call), limits: { requests: { limit: 60_000, remaining: 59_000 } } };
  }
}

const fakeLive: LiveProviderSpec = {
  name: "fake-live",
  family: "fake",
  mode: "live",
  key: { env: "FAKE_API_KEY", required: true },
  defaultModel: "fake-1",
  capabilities: { structuredOutput: true, promptCaching: false },
  paid: true,
  price: (model) => (model === "fake-1" ? PRICE : undefined),
  create: (setup: ProviderSetup) => new FakeLive(setup.model, resolveApiKey(fakeLive, setup.config, setup.env)),
};

/** Batches end as soon as they are submitted; results come back in reverse order. */
class FakeBatch implements BatchProvider {
  private readonly batches = new Map<string, { customId: string; call: ProviderCall }[]>();
  constructor(readonly model: string) {}
  entry(customId: string, call: ProviderCall) {
    return { customId, call };
  }
  async submit(items: { customId: string; call: ProviderCall }[]): Promise<string> {
    const id = `fb_${this.batches.size}`;
    this.batches.set(id, items);
    return id;
  }
  async status(batchId: string) {
    return this.batches.has(batchId) ? { ended: true } : undefined;
  }
  async *results(batchId: string): AsyncIterable<BatchItemResult> {
    for (const { customId, call } of [...this.batches.get(batchId)!].reverse()) {
      state.calls.push(call);
      const fault = state.behaviour(call);
      if (fault) yield { customId, type: "errored", message: fault.message, permanent: false };
      else yield { customId, type: "succeeded", answer: answer(call) };
    }
  }
}

const fakeBatch: BatchProviderSpec = {
  ...fakeLive,
  name: "fake-batch",
  mode: "batch",
  batchLimits: { maxRequests: 4, maxBytes: 1_000_000 },
  create: (setup: ProviderSetup) => {
    resolveApiKey(fakeBatch, setup.config, setup.env);
    return new FakeBatch(setup.model);
  },
};

registerProvider(fakeLive);
registerProvider(fakeBatch);

const FAST: EngineDeps = { retryBaseMs: 1, maxBackoffMs: 5, batchPollMs: 1 };

async function run(n: number, over: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = { FAKE_API_KEY: GOOD_KEY }) {
  const dir = await tempDir();
  const ctx = context(env);
  const config = EngineConfig.parse({ provider: "fake-live", concurrency: 2, ...over });
  const summary = await runEngineWith({ stage: "summarize", requests: titleRequests(n), runDir: dir }, config, ctx, FAST);
  const records = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
  const failures = (await readJsonl(runPaths(dir).failures("summarize"), FailureRecord)).records;
  return { summary, ctx, records, failures };
}

describe("a provider registered from one file", () => {
  it("is a --provider value, listed where an unknown one is refused", () => {
    expect(EngineConfig.parse({ provider: "fake-live" }).provider).toBe("fake-live");
    const bad = EngineConfig.safeParse({ provider: "nope" });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.message).toMatch(/expected one of .*"anthropic".*"fake-live"/);
  });

  it("answers live: validated records under its name, priced by its own price lookup", async () => {
    const { summary, records, ctx } = await run(5);
    expect(summary.counts).toMatchObject({ items: 5, done: 5, failed: 0 });
    expect(records.every((r) => r.provider === "fake-live" && r.model === "fake-1")).toBe(true);
    expect(records.map((r) => r.output).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
      [0, 1, 2, 3, 4].map((i) => ({ title: `Title for N${i}` })),
    );
    expect(summary.costUsd).toBeCloseTo((5 * 100 * PRICE.input + 5 * 10 * PRICE.output) / 1e6, 10);
    expect(ctx.out.text()).toMatch(/summarize \(fake-live, fake-1\): 5 items, 5 done/);
  });

  it("prices a dry run and sends nothing", async () => {
    const { summary, ctx } = await run(4, { "dry-run": true });
    expect(state.calls).toHaveLength(0);
    expect(summary.dryRun).toBe(true);
    expect(ctx.out.text()).toMatch(/requests\s+4 to send/);
    expect(ctx.out.text()).toMatch(/cost fake-1\s+live \$\d+\.\d{4} .*batch \$\d+\.\d{4}/);
  });

  it("stops before sending when its key variable is missing, naming it", async () => {
    const err = await run(3, {}, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/FAKE_API_KEY.*--provider fake-live/);
    expect(state.calls).toHaveLength(0);
  });

  it("stops the whole run at a 401 after one call, naming the key's variable", async () => {
    const err = await run(10, { concurrency: 4 }, { FAKE_API_KEY: "wrong" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/rejected the key in FAKE_API_KEY \(401/);
    expect(state.calls).toHaveLength(1);
  });

  it("retries a 429 after its retry-after, and an unknown error as a transient fault", async () => {
    const firstCallOf = (call: ProviderCall, id: string) => call.messages[0]!.content.includes(id) && state.calls.filter((c) => c.messages[0]!.content.includes(id)).length === 1;
    state.behaviour = (call) => {
      if (firstCallOf(call, "N1")) return ProviderError.fromStatus(429, "slow down", { retryAfterMs: 1 });
      if (firstCallOf(call, "N2")) return new TypeError("cannot read the body");
      return undefined;
    };
    const { summary, ctx } = await run(3, { concurrency: 1 });
    expect(summary.counts).toMatchObject({ done: 3, failed: 0, retried: 2 });
    expect(ctx.out.text()).toMatch(/2 calls re-sent/);
  });

  it("fails an item as api-error on a rejected request, and the others finish", async () => {
    state.behaviour = (call) => (call.messages[0]!.content.includes("N0") ? ProviderError.fromStatus(400, "bad request") : undefined);
    const { summary, failures } = await run(3, { "max-failure-share": 1 });
    expect(summary.counts).toMatchObject({ done: 2, failed: 1, failedByReason: { "api-error": 1 } });
    expect(failures[0]).toMatchObject({ itemId: "N0", provider: "fake-live", reason: "api-error" });
  });

  it("runs as a batch provider through the same batch runner, within its own limits and at the batch price", async () => {
    const isN3 = (c: ProviderCall) => c.messages[0]!.content.includes("N3");
    state.behaviour = (call) => (isN3(call) && state.calls.filter(isN3).length === 1 ? new Error("server_error: try again") : undefined);
    const { summary, records } = await run(10, { provider: "fake-batch" });
    expect(summary.counts).toMatchObject({ items: 10, done: 10, failed: 0 });
    expect(records.every((r) => r.provider === "fake-batch")).toBe(true);
    // 10 requests at 4 per batch: 3 batches, then N3's errored request again in a fourth.
    expect(state.calls).toHaveLength(11);
    // An errored request bills nothing; the ten answers at half price.
    expect(summary.costUsd).toBeCloseTo(((10 * 100 * PRICE.input + 10 * 10 * PRICE.output) / 1e6) * 0.5, 10);
  });
});
