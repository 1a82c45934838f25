// npm run bench:engine — the engine against a fake API (served from a child process so the engine's
// CPU time is its own), 5,000 requests, for each provider (Anthropic's Messages API through its SDK,
// OpenAI's chat completions through our client):
//   1. fixed latency and a requests/minute limit: wall time against the ideal the limit allows;
//   2. the same with 10% 429 (retry-after 1 s) and 5% 529 (OpenAI: 503): all items done, no stored key answered twice;
//      2b. again with a quarter of the slots: a retry waiting out its retry-after frees its slot, so
//      the limit, not --concurrency, still sets the pace (within 1.2× of run 2);
//   3. a resume of the finished run: nothing sent;
//   4. CPU per request: the engine against the bare client (same requests, p-limit only) measured here.
// The limit is 12,000 rpm (200 requests/s, ideal 25 s): the client plus the fake cost about 1 ms of
// CPU per request, so at 200/s the limit, not the CPU of a small shared 2-core machine, sets the pace,
// and each provider's part stays near a minute and a half. Flags: --provider anthropic|openai|all,
// --n, --rpm, --latency, --concurrency.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import pLimit from "p-limit";
import { EngineConfig } from "../src/engine/config.js";
import { runEngineWith } from "../src/engine/engine.js";
import { messageParams } from "../src/providers/anthropic.js";
import { chatBody } from "../src/providers/chat-completions.js";
import { openAiBodyOptions } from "../src/providers/openai.js";
import type { ProviderCall } from "../src/providers/types.js";
import { readJsonl } from "../src/engine/store.js";
import { StageRecord, type LlmRequest } from "../src/engine/types.js";
import { runPaths } from "../src/run/folder.js";
import { context, titleAnswer, titleRequests } from "../test/engine-helpers.js";
import { createFakeAnthropic, type Fault } from "../test/fakes/anthropic-api.js";
import { startOpenAiFake, type FakeChatRequest, type OpenAiFault } from "../test/fakes/openai-api.js";

const here = fileURLToPath(new URL(".", import.meta.url));

type ProviderName = "anthropic" | "openai";

interface ServeOptions {
  provider: ProviderName;
  latencyMs: number;
  rate429: number;
  rate529: number;
}

/** A uniform number in [0, 1) from the item and its attempt: the same faults every run. */
function uniform(key: string, n: number): number {
  return createHash("sha256").update(`${key}:${n}`).digest().readUInt32BE(0) / 2 ** 32;
}

async function serve(o: ServeOptions): Promise<void> {
  const fake = o.provider === "openai" ? await serveOpenAi(o) : await serveAnthropic(o);
  process.stdout.write(`${fake.url}\n`);
  process.stdin.resume();
  await once(process.stdin, "end");
  await fake.close();
}

async function serveAnthropic(o: ServeOptions): Promise<{ url: string; close(): Promise<void> }> {
  const fake = await createFakeAnthropic({
    answer: titleAnswer,
    apiKey: "bench-key",
    latencyMs: o.latencyMs,
    logBodies: false,
    faults: (info): Fault | undefined => {
      const u = uniform(info.key, info.n);
      if (u < o.rate429) return { type: "429", retryAfterS: 1 };
      if (u < o.rate429 + o.rate529) return { type: "529" };
      return undefined;
    },
  });
  return fake;
}

/** The fake OpenAI API with the same fault rule and the stats the Anthropic fake keeps (503 stands for 529). */
async function serveOpenAi(o: ServeOptions): Promise<{ url: string; close(): Promise<void> }> {
  const keyOf = (body: FakeChatRequest) => body.messages.find((m) => m.role === "user")?.content ?? "";
  const attempts = new Map<string, number>();
  const fake = await startOpenAiFake({
    answer: (b) => titleAnswer({ messages: b.messages.filter((m) => m.role !== "system") }),
    requireKey: "bench-key",
    latencyMs: o.latencyMs,
    fault: (body): OpenAiFault | undefined => {
      const key = keyOf(body);
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      const u = uniform(key, n);
      if (u < o.rate429) return { kind: "429", retryAfterSeconds: 1 };
      if (u < o.rate429 + o.rate529) return { kind: "503" };
      return undefined;
    },
  });
  fake.addRoute("GET", /^\/_fake\/stats$/, (_req, _body, res) => {
    const byStatus: Record<string, number> = {};
    const answered = new Map<string, number>();
    for (const r of fake.received) {
      const status = r.outcome === "ok" ? "200" : r.outcome;
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (r.outcome === "ok") answered.set(keyOf(r.body), (answered.get(keyOf(r.body)) ?? 0) + 1);
    }
    const stats: Stats = { messages: fake.received.length, byStatus, keysAnswered: answered.size, keysAnsweredTwice: [...answered.values()].filter((n) => n > 1).length };
    fake.json(res, 200, stats);
  });
  return { url: fake.baseUrl.replace(/\/v1$/, ""), close: () => fake.close() };
}

interface Stats {
  messages: number;
  byStatus: Record<string, number>;
  keysAnswered: number;
  keysAnsweredTwice: number;
}

async function startFake(o: ServeOptions) {
  const tsx = createRequire(import.meta.url).resolve("tsx");
  const proc = spawn(process.execPath, ["--import", tsx, join(here, "engine.ts"), "--serve", JSON.stringify(o)], { stdio: ["pipe", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    proc.on("error", reject);
    let buf = "";
    proc.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
    });
    proc.on("exit", () => reject(new Error("fake server exited")));
  });
  return {
    url,
    stats: async (): Promise<Stats> => (await (await fetch(`${url}/_fake/stats`)).json()) as Stats,
    stop: async () => {
      proc.stdin.end();
      await once(proc, "exit");
    },
  };
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

interface Bench {
  name: ProviderName;
  model: string;
  env(url: string): NodeJS.ProcessEnv;
  /** One bare client call, no engine: the CPU baseline. */
  bare(url: string): (call: ProviderCall) => Promise<unknown>;
}

const BENCHES: Record<ProviderName, Bench> = {
  anthropic: {
    name: "anthropic",
    model: "claude-haiku-4-5",
    env: (url) => ({ ANTHROPIC_API_KEY: "bench-key", ANTHROPIC_BASE_URL: url }),
    bare: (url) => {
      const client = new Anthropic({ apiKey: "bench-key", baseURL: url, maxRetries: 0, timeout: 5000 });
      return (call) => client.messages.create(messageParams(call, "claude-haiku-4-5"));
    },
  },
  openai: {
    name: "openai",
    model: "gpt-6-luna",
    env: (url) => ({ OPENAI_API_KEY: "bench-key", OPENAI_BASE_URL: `${url}/v1` }),
    bare: (url) => (call) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer bench-key" },
        body: JSON.stringify(chatBody(call, { ...openAiBodyOptions("gpt-6-luna"), form: "strict" })),
      }).then((r) => r.json()),
  },
};

const callOf = (r: LlmRequest): ProviderCall => ({ system: r.system, messages: [{ role: "user", content: r.user }], jsonSchema: r.jsonSchema, maxTokens: r.maxTokens });

/** One provider's four measurements; true when they meet the targets. */
async function benchProvider(b: Bench, o: { n: number; rpm: number; latencyMs: number; concurrency: number; data: string }): Promise<boolean> {
  const { n, rpm, latencyMs, concurrency } = o;
  const ideal = (n / rpm) * 60;
  const idealBurst = (Math.max(0, n - rpm / 60) / rpm) * 60;
  const requests = titleRequests(n);
  const data = join(o.data, b.name);
  const cfg = (over: Record<string, unknown>) => EngineConfig.parse({ provider: b.name, model: b.model, concurrency, ...over });
  console.log(`bench:engine ${b.name} (${b.model}) — ${n} requests, fake latency ${latencyMs} ms, concurrency ${concurrency}, limit ${rpm} rpm (ideal ${ideal.toFixed(2)} s)`);

  let fake = await startFake({ provider: b.name, latencyMs, rate429: 0, rate529: 0 });
  const env = b.env(fake.url);
  // Warm-up (not measured): loads and JIT-compiles the client and engine paths so neither measurement pays for it.
  await runEngineWith({ stage: "summarize", requests: titleRequests(300, { from: n }), runDir: join(data, "warmup") }, cfg({}), context(env), {});

  // 4. Bare client baseline: the same calls with p-limit only (no store, limits, validation).
  const bare = b.bare(fake.url);
  const limit = pLimit(concurrency);
  let cpu = process.cpuUsage();
  let t = performance.now();
  await Promise.all(requests.map((r) => limit(() => bare(callOf(r)))));
  const bareCpu = cpuMs(cpu);
  const bareWall = (performance.now() - t) / 1000;

  // 1. Clean run under the limit.
  let dir = join(data, "clean");
  const beforeClean = (await fake.stats()).messages;
  t = performance.now();
  cpu = process.cpuUsage();
  const clean = await runEngineWith({ stage: "summarize", requests, runDir: dir }, cfg({ rpm }), context(env), {});
  const cleanWall = (performance.now() - t) / 1000;
  const cleanCpu = cpuMs(cpu);
  const cleanStats = await fake.stats();
  console.log(
    `1. clean     wall ${cleanWall.toFixed(2)} s · ideal ${ideal.toFixed(2)} s · efficiency ${(ideal / cleanWall).toFixed(3)} (target ≥ 0.9;` +
      ` ${(idealBurst / cleanWall).toFixed(3)} against ${idealBurst.toFixed(2)} s, the ideal when the first second's budget goes out at once)` +
      ` · done ${clean.counts.done} · requests ${cleanStats.messages - beforeClean}`,
  );

  // 3. Resume of the finished run: every key is stored, nothing may be sent.
  const resumed = await runEngineWith({ stage: "summarize", requests, runDir: dir }, cfg({ rpm }), context(env), {});
  const afterResume = await fake.stats();
  await fake.stop();
  console.log(`3. resume    cached ${resumed.counts.cached} · requests sent ${afterResume.messages - cleanStats.messages}`);

  // 2. Faults: 10% 429 with retry-after 1 s, 5% 529 (503).
  fake = await startFake({ provider: b.name, latencyMs, rate429: 0.1, rate529: 0.05 });
  dir = join(data, "faults");
  t = performance.now();
  const faulty = await runEngineWith({ stage: "summarize", requests, runDir: dir }, cfg({ rpm }), context(b.env(fake.url)), {});
  const faultWall = (performance.now() - t) / 1000;
  const fs = await fake.stats();
  const stored = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
  const overloaded = b.name === "openai" ? "503" : "529";
  console.log(
    `2. faults    wall ${faultWall.toFixed(2)} s (${(faultWall / ideal).toFixed(2)}× ideal) · done ${faulty.counts.done}/${n} · failed ${faulty.counts.failed}` +
      ` · requests ${fs.messages} (429: ${fs.byStatus["429"] ?? 0}, ${overloaded}: ${fs.byStatus[overloaded] ?? 0}) · stored keys ${new Set(stored.map((r) => r.key)).size}` +
      ` · keys answered twice ${fs.keysAnsweredTwice}`,
  );

  // 2b. The same faults with a quarter of the slots: still enough for the limit when a request
  // waiting for its retry-after holds no slot (each slot then turns over every ~60 ms), far too few
  // when it holds one through the wait (~170 ms a request on average).
  const fewSlots = Math.max(1, Math.floor(concurrency / 4));
  await fake.stop();
  fake = await startFake({ provider: b.name, latencyMs, rate429: 0.1, rate529: 0.05 });
  t = performance.now();
  const few = await runEngineWith({ stage: "summarize", requests, runDir: join(data, "faults-few-slots") }, cfg({ rpm, concurrency: fewSlots }), context(b.env(fake.url)), {});
  const fewWall = (performance.now() - t) / 1000;
  const fewRequests = (await fake.stats()).messages;
  await fake.stop();
  console.log(
    `2b. faults   concurrency ${fewSlots}, the same faults: wall ${fewWall.toFixed(2)} s (${(fewWall / ideal).toFixed(2)}× ideal, ${(fewWall / faultWall).toFixed(2)}× run 2)` +
      ` · done ${few.counts.done}/${n} · requests ${fewRequests}`,
  );
  console.log(
    `4. cpu       engine ${(cleanCpu / n).toFixed(3)} ms/request · bare client ${(bareCpu / n).toFixed(3)} ms/request (wall ${bareWall.toFixed(2)} s unlimited)` +
      ` · engine overhead ${((cleanCpu - bareCpu) / n).toFixed(3)} ms/request (ratio ${(cleanCpu / bareCpu).toFixed(2)})`,
  );
  return (
    ideal / cleanWall >= 0.9 &&
    faulty.counts.done === n &&
    fs.keysAnsweredTwice === 0 &&
    afterResume.messages === cleanStats.messages &&
    few.counts.done === n &&
    fewWall <= faultWall * 1.2
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      provider: { type: "string", default: "all" },
      n: { type: "string", default: "5000" },
      rpm: { type: "string", default: "12000" },
      latency: { type: "string", default: "50" },
      concurrency: { type: "string", default: "64" },
    },
  });
  if (values.serve) return serve(JSON.parse(values.serve) as ServeOptions);
  const names = values.provider === "all" ? (Object.keys(BENCHES) as ProviderName[]) : [values.provider as ProviderName];
  const unknown = names.filter((p) => !BENCHES[p]);
  if (unknown.length) throw new Error(`--provider: expected anthropic, openai or all, not ${unknown.join(", ")}`);
  const data = join(here, ".data", `engine-${process.pid}`);
  const o = { n: Number(values.n), rpm: Number(values.rpm), latencyMs: Number(values.latency), concurrency: Number(values.concurrency), data };
  let ok = true;
  try {
    for (const name of names) ok = (await benchProvider(BENCHES[name], o)) && ok;
  } finally {
    await rm(data, { recursive: true, force: true });
  }
  console.log(ok ? "ok" : "NOT OK: see the figures above");
  process.exitCode = ok ? 0 : 1;
}

await main();
