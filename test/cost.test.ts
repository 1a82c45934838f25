// A stage's cost over several runs into one folder: the meta file holds only the last run's spend,
// so merge and report price every billed record and failure line themselves (src/engine/spend.ts).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Spend } from "../src/engine/spend.js";
import { StageRecord } from "../src/engine/types.js";
import { Manifest } from "../src/merge/manifest.js";
import { merge } from "../src/merge/merge.js";
import { collectReport } from "../src/report/collect.js";
import { writeReport } from "../src/report/report.js";
import { runPaths, StageMeta } from "../src/run/folder.js";
import { blockText, createFakeAnthropic, type FakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeFixture, NEWS } from "./stages.fixture.js";

const long = (name: string) =>
  `News about ${name} covers the subjects, people and events of its field: results, trades, injuries, previews, analysis and the decisions that shape each season for teams, fans and the wider public.`;

describe("a stage's cost over runs", () => {
  let fake: FakeAnthropic | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it("is what every run was billed, answers and failed attempts, not the last run's", async () => {
    // First run: every answer too short, so its items fail after three billed attempts.
    let failing = true;
    fake = await createFakeAnthropic({
      answer: (body: FakeMessageRequest) => (failing ? "Sports." : long(/^Name: (.*)$/m.exec(blockText(body.messages[0]!.content))![1]!)),
    });
    const { root, data, out } = await makeFixture();
    const describeRun = async (...extra: string[]) => {
      const r = await runCliCaptured(["describe", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake!.url, ...extra], {
        cwd: root,
        env: { ANTHROPIC_API_KEY: "test-key" },
      });
      expect(r.code === 0 || r.code === 1, r.stderr).toBe(true);
      return StageMeta.parse(JSON.parse(await readFile(join(out, "describe.meta.json"), "utf8")));
    };
    const runs = [await describeRun("--limit", "3")];
    expect(runs[0]!.counts.failed).toBe(3);
    failing = false;
    runs.push(await describeRun());
    runs.push(await describeRun());
    // The last run found everything stored: it cost nothing, which is all its meta file says.
    expect(runs[2]!.counts.cached).toBe(14);
    expect(runs[2]!.runCostUsd).toBe(0);
    const billed = runs.reduce((s, m) => s + m.runCostUsd, 0);
    expect(runs[0]!.runCostUsd).toBeGreaterThan(0);
    expect(runs[1]!.runCostUsd).toBeGreaterThan(0);

    const merged = await runCliCaptured(["merge", "--data", join(data, "train"), "--data", join(data, "dev"), "--out", out], { cwd: root });
    expect(merged.code, merged.stderr).toBe(0);
    const stage = Manifest.parse(JSON.parse(await readFile(join(out, "manifest.json"), "utf8"))).stages.describe!;
    expect(stage.costUsd).toBeCloseTo(billed, 6);
    expect(stage.unpriced).toBeUndefined();
    // The tokens beside it are every run's too, the failed attempts included.
    expect(stage.usage.inputTokens).toBe(runs.reduce((s, m) => s + m.usage.inputTokens, 0));

    const glance = (await collectReport(out)).glance.find((g) => g.stage === "describe")!;
    expect(glance.costUsd).toBe(stage.costUsd);
    expect(glance.usage.outputTokens).toBe(runs.reduce((s, m) => s + m.usage.outputTokens, 0));
    const html = await readFile((await writeReport(out)).path, "utf8");
    expect(html).toContain(`<td class="num">$${billed.toFixed(4)}</td>`);
  });
});

describe("the report's cost of a stage", () => {
  it("is the manifest's figure, rounded alike, where the unrounded sum would read differently", async () => {
    const { data, out } = await makeFixture();
    await mkdir(out, { recursive: true });
    // 499 cache-read tokens at claude-haiku-4-5's $0.10 per million: $0.0000499, which the
    // manifest rounds to $0.000050 and the page shows as $0.0001 (unrounded it would read $0.0000).
    const usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    const line = (id: string, cacheReadTokens: number) =>
      JSON.stringify(
        StageRecord.parse({ key: `summarize:${id}`, stage: "summarize", itemId: id, provider: "anthropic", model: "claude-haiku-4-5", output: { title: `Title of ${id}, made clearer` }, usage: { ...usage, cacheReadTokens }, attempts: 1 }),
      ) + "\n";
    await writeFile(runPaths(out).records("summarize"), line(NEWS[0]![0], 400) + line(NEWS[1]![0], 99));
    await merge({ data: [data], out, records: [out], force: false, title: "replace", allowUnknown: false, allowEmpty: false });
    const manifest = Manifest.parse(JSON.parse(await readFile(join(out, "manifest.json"), "utf8")));
    expect(manifest.stages.summarize!.costUsd).toBe(0.00005);

    const glance = (await collectReport(out)).glance.find((g) => g.stage === "summarize")!;
    expect(glance.costUsd).toBe(manifest.stages.summarize!.costUsd);
    const html = await readFile((await writeReport(out)).path, "utf8");
    expect(html).toMatch(/<th scope="row">summarize<\/th>[\s\S]*?<td class="num">\$0\.0001<\/td><td class="nowrap">/);
    expect(html).toContain(`<div class="v">$0.0001</div><div class="k">cost</div>`);
  });
});

describe("Spend", () => {
  const usage = { inputTokens: 1e6, outputTokens: 1e6, cacheReadTokens: 0, cacheWriteTokens: 0 };

  it("prices each line at its answerer's prices, in its mode", () => {
    const spend = new Spend();
    spend.add("anthropic", "claude-haiku-4-5", usage);
    expect(spend.total()).toBeCloseTo(1 + 5, 9);
    // The batch provider of the same family: its discount applies.
    spend.add("anthropic-batch", "claude-haiku-4-5", usage);
    expect(spend.total()).toBeCloseTo(6 + 3, 9);
    // Imported and offline answers were not billed here.
    spend.add("imported", "gpt-4", usage);
    spend.add("offline", "offline-baseline", usage);
    expect(spend.total()).toBeCloseTo(9, 9);
  });

  it("says a model has no price rather than count it 0", () => {
    const spend = new Spend();
    spend.add("anthropic", "claude-haiku-4-5", usage);
    spend.add("openai-compatible", "qwen2.5:7b", usage);
    expect(spend.total()).toBeNull();
    expect([...spend.unpriced]).toEqual(["openai-compatible / qwen2.5:7b"]);
    // No tokens billed: nothing is unknown.
    const idle = new Spend();
    idle.add("openai-compatible", "qwen2.5:7b", { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
    expect(idle.total()).toBe(0);
  });
});
