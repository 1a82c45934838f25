// A stage's cost over several runs into one folder: the meta file holds only the last run's spend,
// so merge and report price every billed record and failure line themselves (src/engine/spend.ts).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { modelInfo, priceUsd } from "../src/engine/cost.js";
import { Spend } from "../src/engine/spend.js";
import { StageRecord } from "../src/engine/types.js";
import { Manifest } from "../src/merge/manifest.js";
import { merge } from "../src/merge/merge.js";
import { collectReport } from "../src/report/collect.js";
import { writeReport } from "../src/report/report.js";
import { runPaths, StageMeta } from "../src/run/folder.js";
import { blockText, createFakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeFixture, NEWS } from "./stages.fixture.js";

const long = (name: string) =>
  `News about ${name} covers the subjects, people and events of its field: results, trades, injuries, previews, analysis and the decisions that shape each season for teams, fans and the wider public.`;

describe("a stage's cost over runs", () => {
  it("is what every run was billed, answers and failed attempts, not the last run's", async () => {
    // First run: every answer too short, so its items fail after three billed attempts.
    let failing = true;
    const fake = await createFakeAnthropic({
      answer: (body: FakeMessageRequest) => (failing ? "Sports." : long(/^Name: (.*)$/m.exec(blockText(body.messages[0]!.content))![1]!)),
    });
    const { root, data, out } = await makeFixture();
    const describeRun = async (...extra: string[]) => {
      const r = await runCliCaptured(["describe", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url, ...extra], {
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

  it("prices each answerer's summed tokens once: the per-line sum's dollars, over many lines and models", () => {
    // [provider, model, family of its prices (none: not billed here), batch]
    const answerers = [
      ["anthropic", "claude-haiku-4-5", "anthropic", false],
      ["anthropic-batch", "claude-opus-4-6", "anthropic", true],
      ["openai", "gpt-5.4-mini", "openai", false],
      ["openai-batch", "gpt-5-nano", "openai", true],
      ["imported", "gpt-4", undefined, false],
      ["offline", "offline-baseline", undefined, false],
    ] as const;
    const unpriced = ["openai-compatible", "qwen2.5:7b"] as const;
    let seed = 7;
    const next = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const lines = Array.from({ length: 30_000 }, () => ({
      a: answerers[next(answerers.length)]!,
      usage: { inputTokens: 200 + next(3000), outputTokens: next(400), cacheReadTokens: next(3) === 0 ? next(5000) : 0, cacheWriteTokens: next(7) === 0 ? next(5000) : 0 },
    }));

    const spend = new Spend();
    let perLine = 0;
    // The exact dollars: prices have at most three decimals, so in 1e-12 dollars they are integers.
    let exact = 0n;
    for (const { a, usage } of lines) {
      const [provider, model, family, batch] = a;
      spend.add(provider, model, usage);
      if (!family) continue;
      const info = modelInfo(family, model)!;
      perLine += priceUsd(usage, info, batch ? "batch" : "live")!;
      const milli = (usd: number) => BigInt(Math.round(usd * 1000));
      const tokens =
        BigInt(usage.inputTokens) * milli(info.input) +
        BigInt(usage.outputTokens) * milli(info.output) +
        BigInt(usage.cacheReadTokens) * milli(info.cacheRead) +
        BigInt(usage.cacheWriteTokens) * milli(info.cacheWrite);
      exact += tokens * (batch ? 1000n - milli(info.batchDiscount) : 1000n);
    }
    expect(Number.isSafeInteger(Number(exact))).toBe(true);
    const exactUsd = Number(exact) / 1e12;
    const total = spend.total()!;
    expect(total).toBeGreaterThan(50);
    // The same figure as pricing line by line, but for that sum's rounding error, piled up over
    // 30,000 additions: pricing the sums leaves only the few roundings of one price per answerer.
    expect(Math.abs(total - perLine) / perLine).toBeLessThan(1e-12);
    expect(Math.abs(total - exactUsd) / exactUsd).toBeLessThan(4 * Number.EPSILON);
    expect(Math.abs(total - exactUsd)).toBeLessThanOrEqual(Math.abs(perLine - exactUsd));

    // One billed line of a model with no price, among all of them: the cost is unknown, not 0 and
    // not the priced part alone; the priced part is still counted (budget.ts reads it).
    spend.add(...unpriced, { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
    expect(spend.total()).toBe(total);
    spend.add(...unpriced, { inputTokens: 1, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });
    expect(spend.total()).toBeNull();
    expect([...spend.unpriced]).toEqual(["openai-compatible / qwen2.5:7b"]);
    expect(spend.usd).toBe(total);
  });
});
