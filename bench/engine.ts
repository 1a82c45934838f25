// npm run bench:engine — the engine against the fake Anthropic API (served from a child process so the
// engine's CPU time is its own), 5,000 requests:
//   1. fixed latency and a requests/minute limit: wall time against the ideal the limit allows;
//   2. the same with 10% 429 (retry-after 1 s) and 5% 529: all items done, no stored key answered twice;
//      2b. again with a quarter of the slots: a retry waiting out its retry-after frees its slot, so
//      the limit, not --concurrency, still sets the pace (within 1.2× of run 2);
//   3. a resume of the finished run: nothing sent;
//   4. CPU per request: the engine against the bare SDK (same requests, p-limit only) measured here.
// The limit is 12,000 rpm (200 requests/s, ideal 25 s): the client SDK plus the fake cost about 1 ms of
// CPU per request, so at 200/s the limit, not the CPU of a small shared 2-core machine, sets the pace,
// and the whole bench stays near a minute and a half. Flags: --n, --rpm, --latency, --concurrency.
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
import { readJsonl } from "../src/engine/store.js";
import { StageRecord } from "../src/engine/types.js";
import { runPaths } from "../src/run/folder.js";
import { context, titleAnswer, titleRequests } from "../test/engine-helpers.js";
import { createFakeAnthropic, type Fault } from "../test/fakes/anthropic-api.js";

const here = fileURLToPath(new URL(".", import.meta.url));

interface ServeOptions {
  latencyMs: number;
  rate429: number;
  rate529: number;
}

/** A uniform number in [0, 1) from the item and its attempt: the same faults every run. */
function uniform(key: string, n: number): number {
  return createHash("sha256").update(`${key}:${n}`).digest().readUInt32BE(0) / 2 ** 32;
}

async function serve(o: ServeOptions): Promise<void> {
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
  process.stdout.write(`${fake.url}\n`);
  process.stdin.resume();
  await once(process.stdin, "end");
  await fake.close();
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      n: { type: "string", default: "5000" },
      rpm: { type: "string", default: "12000" },
      latency: { type: "string", default: "50" },
      concurrency: { type: "string", default: "64" },
    },
  });
  if (values.serve) return serve(JSON.parse(values.serve) as ServeOptions);
  const n = Number(values.n);
  const rpm = Number(values.rpm);
  const latencyMs = Number(values.latency);
  const concurrency = Number(values.concurrency);
  const ideal = (n / rpm) * 60;
  const idealBurst = (Math.max(0, n - rpm / 60) / rpm) * 60;
  const requests = titleRequests(n);
  const data = join(here, ".data", `engine-${process.pid}`);
  const cfg = (over: Record<string, unknown>) => EngineConfig.parse({ provider: "anthropic", model: "claude-haiku-4-5", concurrency, ...over });
  console.log(`bench:engine — ${n} requests, fake latency ${latencyMs} ms, concurrency ${concurrency}, limit ${rpm} rpm (ideal ${ideal.toFixed(2)} s)`);

  let fake = await startFake({ latencyMs, rate429: 0, rate529: 0 });
  const env = { ANTHROPIC_API_KEY: "bench-key", ANTHROPIC_BASE_URL: fake.url };
  // Warm-up (not measured): loads and JIT-compiles the SDK and engine paths so neither measurement pays for it.
  await runEngineWith({ stage: "summarize", requests: titleRequests(300, { from: n }), runDir: join(data, "warmup") }, cfg({}), context(env), {});

  // 4. Bare SDK baseline: the same calls through the client with p-limit only (no store, limits, validation).
  const client = new Anthropic({ apiKey: "bench-key", baseURL: fake.url, maxRetries: 0, timeout: 5000 });
  const limit = pLimit(concurrency);
  let cpu = process.cpuUsage();
  let t = performance.now();
  await Promise.all(
    requests.map((r) =>
      limit(() => client.messages.create(messageParams({ system: r.system, messages: [{ role: "user", content: r.user }], jsonSchema: r.jsonSchema, maxTokens: r.maxTokens }, "claude-haiku-4-5"))),
    ),
  );
  const sdkCpu = cpuMs(cpu);
  const sdkWall = (performance.now() - t) / 1000;

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

  // 2. Faults: 10% 429 with retry-after 1 s, 5% 529.
  fake = await startFake({ latencyMs, rate429: 0.1, rate529: 0.05 });
  dir = join(data, "faults");
  t = performance.now();
  const faulty = await runEngineWith(
    { stage: "summarize", requests, runDir: dir },
    cfg({ rpm }),
    context({ ANTHROPIC_API_KEY: "bench-key", ANTHROPIC_BASE_URL: fake.url }),
    {},
  );
  const faultWall = (performance.now() - t) / 1000;
  const fs = await fake.stats();
  const stored = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
  console.log(
    `2. faults    wall ${faultWall.toFixed(2)} s (${(faultWall / ideal).toFixed(2)}× ideal) · done ${faulty.counts.done}/${n} · failed ${faulty.counts.failed}` +
      ` · requests ${fs.messages} (429: ${fs.byStatus["429"] ?? 0}, 529: ${fs.byStatus["529"] ?? 0}) · stored keys ${new Set(stored.map((r) => r.key)).size}` +
      ` · keys answered twice ${fs.keysAnsweredTwice}`,
  );

  // 2b. The same faults with a quarter of the slots: still enough for the limit when a request
  // waiting for its retry-after holds no slot (each slot then turns over every ~60 ms), far too few
  // when it holds one through the wait (~170 ms a request on average).
  const fewSlots = Math.max(1, Math.floor(concurrency / 4));
  await fake.stop();
  fake = await startFake({ latencyMs, rate429: 0.1, rate529: 0.05 });
  t = performance.now();
  const few = await runEngineWith(
    { stage: "summarize", requests, runDir: join(data, "faults-few-slots") },
    cfg({ rpm, concurrency: fewSlots }),
    context({ ANTHROPIC_API_KEY: "bench-key", ANTHROPIC_BASE_URL: fake.url }),
    {},
  );
  const fewWall = (performance.now() - t) / 1000;
  const fewRequests = (await fake.stats()).messages;
  await fake.stop();
  console.log(
    `2b. faults   concurrency ${fewSlots}, the same faults: wall ${fewWall.toFixed(2)} s (${(fewWall / ideal).toFixed(2)}× ideal, ${(fewWall / faultWall).toFixed(2)}× run 2)` +
      ` · done ${few.counts.done}/${n} · requests ${fewRequests}`,
  );
  console.log(
    `4. cpu       engine ${(cleanCpu / n).toFixed(3)} ms/request · bare SDK ${(sdkCpu / n).toFixed(3)} ms/request (wall ${sdkWall.toFixed(2)} s unlimited)` +
      ` · engine overhead ${((cleanCpu - sdkCpu) / n).toFixed(3)} ms/request (ratio ${(cleanCpu / sdkCpu).toFixed(2)})`,
  );
  await rm(data, { recursive: true, force: true });
  const ok =
    ideal / cleanWall >= 0.9 &&
    faulty.counts.done === n &&
    fs.keysAnsweredTwice === 0 &&
    afterResume.messages === cleanStats.messages &&
    few.counts.done === n &&
    fewWall <= faultWall * 1.2;
  console.log(ok ? "ok" : "NOT OK: see the figures above");
  process.exitCode = ok ? 0 : 1;
}

await main();
