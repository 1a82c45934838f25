import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runEngineWith } from "../src/engine/engine.js";
import { readJsonl } from "../src/engine/store.js";
import { StageRecord } from "../src/engine/types.js";
import { runPaths } from "../src/run/folder.js";
import { createFakeAnthropic, fakeKey } from "./fakes/anthropic-api.js";
import { config, context, tempDir, titleAnswer, titleRequests, userText } from "./engine-helpers.js";
import { childEnv, nodeArgs } from "./helpers/child.js";

const child = fileURLToPath(new URL("./fixtures/engine-child.ts", import.meta.url));

describe("kill -9 and resume", () => {
  it("loses at most the requests in flight and re-sends no stored key", async () => {
    const N = 60;
    const fake = await createFakeAnthropic({ answer: titleAnswer, apiKey: "k", latencyMs: 15 });
    const dir = await tempDir();
    const paths = runPaths(dir);
    const proc = spawn(process.execPath, nodeArgs(child, dir, String(N)), {
      env: childEnv({ ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: fake.url }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exit = once(proc, "exit");
    // Kill once a third of the items have been answered: the child is then mid-run with requests in flight.
    const early = exit.then(() => new Error(`the child exited before the kill: ${stderr}`));
    const reached = fake.waitFor(() => fake.answered.size >= N / 3).then(() => undefined);
    const problem = await Promise.race([reached, early]);
    if (problem) throw problem;
    proc.kill("SIGKILL");
    await exit;
    expect(proc.signalCode).toBe("SIGKILL");

    const before = (await readJsonl(paths.records("summarize"), StageRecord)).records;
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(N);
    // Answered by the server but not stored: only what was in flight (concurrency 4).
    expect(fake.answered.size - before.length).toBeLessThanOrEqual(4);
    const sentBefore = new Map(fake.sent);

    const ctx = context({ ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: fake.url });
    const { counts } = await runEngineWith({ stage: "summarize", requests: titleRequests(N), runDir: dir }, config({ concurrency: 4 }), ctx, {});
    expect(counts).toMatchObject({ items: N, cached: before.length, done: N - before.length, failed: 0 });

    // Zero re-sends of a stored key; every other item sent exactly once more.
    for (const r of before) {
      const k = fakeKey(userText(Number(r.itemId.slice(1))));
      expect(fake.sent.get(k)).toBe(sentBefore.get(k));
    }
    const after = (await readJsonl(paths.records("summarize"), StageRecord)).records;
    expect(after).toHaveLength(N);
    // Exactly the records an uninterrupted run has: one per item, same outputs.
    expect(new Set(after.map((r) => r.key)).size).toBe(N);
    for (const r of after) expect(r.output).toEqual({ title: `Title for ${r.itemId}` });
    const text = await readFile(paths.records("summarize"), "utf8");
    expect(text.endsWith("\n")).toBe(true);
  });
});
