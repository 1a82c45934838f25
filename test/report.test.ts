import { existsSync } from "node:fs";
import { appendFile, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../src/cli/command.js";
import { merge } from "../src/merge/merge.js";
import { collectReport, type StageGlance } from "../src/report/collect.js";
import { changedBy, scriptJson } from "../src/report/html.js";
import { writeReport } from "../src/report/report.js";
import { columnChart, esc, niceTicks } from "../src/report/svg.js";
import { titleTokens } from "../src/stages/summarize/report.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeReportFixture, NEWS_COUNT, USER_COUNT, type ReportFixture } from "./report.fixture.js";

const fixtures: ReportFixture[] = [];
async function fixture(opts: { hostile?: boolean } = {}): Promise<ReportFixture> {
  const f = await makeReportFixture(opts);
  fixtures.push(f);
  return f;
}
afterEach(async () => {
  for (const f of fixtures.splice(0)) await rm(f.root, { recursive: true, force: true });
});

describe("report contents", () => {
  it("summarizes the stages, counts open failures by reason, and draws every chart", async () => {
    const f = await fixture();
    const model = await collectReport(f.runDir, { data: [f.data] });
    const summarize = model.glance.find((g) => g.stage === "summarize")!;
    expect(summarize.answered).toBe(NEWS_COUNT - 2);
    // N9 failed once and was answered later: not open.
    expect(summarize.failuresByReason).toEqual({ invalid: 1, refusal: 1 });
    expect(summarize.openFailures).toBe(2);
    expect(summarize.answeredBy).toEqual([{ provider: "anthropic", model: "claude-test", records: NEWS_COUNT - 2 }]);
    // claude-test has no price: the cost is unknown, not the meta's last-run figure nor 0.
    expect(summarize.costUsd).toBeNull();
    expect(summarize.unpriced).toEqual(["anthropic / claude-test"]);
    // every billed line counts: 79 record lines (N9 twice) + 3 failure lines, 120 input tokens each
    expect(summarize.usage.inputTokens).toBe((NEWS_COUNT - 2 + 1 + 3) * 120);
    expect(model.glance.find((g) => g.stage === "profile")!.answered).toBe(USER_COUNT);
    expect(model.glance.find((g) => g.stage === "generate")!.invalidLines).toBe(1);
    expect(model.warnings.join("\n")).toMatch(/generate: 1 record lines skipped/);

    expect(model.dist.titleTokens?.original).toHaveLength(NEWS_COUNT - 2);
    expect(model.dist.coldHistory?.before.every((n) => n >= 1 && n <= 5)).toBe(true);
    expect(model.dist.coldHistory?.after).toEqual(model.dist.coldHistory?.before.map((n) => n + 2));
    expect(model.dist.categories?.clicks?.size).toBeGreaterThan(0);

    const { path } = await writeReport(f.runDir, { data: [f.data] });
    const html = await readFile(path, "utf8");
    for (const id of ["title-length", "topics", "regions", "categories", "cold-history"]) expect(html).toContain(`data-chart="${id}"`);
    // The chart counts pseudo-news only, and says so: picks appended beside them are pick's to show.
    expect(html).toMatch(/once their pseudo-news is appended \(picked news, which merge --cold pick or both appends as well, is not counted here\)/);
    expect(html).toContain("<h2>What the LLM changed</h2>");
    expect(html).toContain(`<span title="no price in data/pricing.json: anthropic / claude-test">unpriced</span>`);
    expect(html).toMatch(/<div class="v">unpriced<\/div><div class="k">cost<\/div>/);
    expect(html).not.toMatch(/<(link|img|iframe)\b|src="http|href="http/);
  });

  it("samples examples deterministically and stays within the sample size", async () => {
    const f = await fixture();
    const a = await collectReport(f.runDir, { data: [f.data], sample: 12 });
    const b = await collectReport(f.runDir, { data: [f.data], sample: 12 });
    expect(a.news.map((n) => n.id)).toEqual(b.news.map((n) => n.id));
    expect(a.news).toHaveLength(12);
    expect(a.users).toHaveLength(12);
    expect(a.newsTotal).toBe(NEWS_COUNT - 2);
    // half of the users shown are cold users with their pseudo-news, interleaved with warm ones
    expect(a.users.filter((u) => u.pseudo?.length === 2)).toHaveLength(6);
    expect(a.users[0]!.pseudo).toHaveLength(2);
    const user = a.users[0]!;
    expect(user.recent.length).toBe(Math.min(10, user.historyLength!));
    expect(user.recent[0]!.title).toMatch(/^Story \d+/);
    const news = a.news.find((n) => n.original)!;
    expect(news.enhanced).toMatch(/enhanced title|answered on retry/);
  });

  it("escapes LLM text: nothing of it becomes markup in the file", async () => {
    const f = await fixture({ hostile: true });
    const { path } = await writeReport(f.runDir, { data: [f.data], sample: 1000 });
    const html = await readFile(path, "utf8");
    expect(html).not.toContain("<img");
    expect(html).not.toContain("</script><script>document");
    // the embedded sample still holds the text, as data
    const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(JSON.parse(json).news.some((n: { enhanced: string }) => n.enhanced.includes("<img src=x"))).toBe(true);
    expect(scriptJson({ t: "</script>\u2028" })).toBe('{"t":"\\u003c/script>\\u2028"}');
    expect(esc(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });

  it("reads the merge manifest: input splits, pseudo-news IDs and kept-original counts", async () => {
    const f = await fixture();
    await merge({ data: [f.data], out: f.runDir, records: [f.runDir], force: false, title: "replace", allowUnknown: false, allowEmpty: false });
    // no --data: the inputs come from manifest.json
    const model = await collectReport(f.runDir);
    expect(model.manifest).toBeDefined();
    expect(model.splits.map((s) => s.name)).toEqual(["MINDtest_train", "MINDtest_dev"]);
    const cold = model.users.find((u) => u.pseudo?.length)!;
    expect(cold.pseudo!.every((p) => /^N\d+$/.test(p.id ?? ""))).toBe(true);
    expect(model.glance.find((g) => g.stage === "summarize")!.missing).toBe(2);
    const { path } = await writeReport(f.runDir);
    const html = await readFile(path, "utf8");
    expect(html).toMatch(/Merged <b>MINDtest_train<\/b>/);
    expect(html).toMatch(/audit: \d+ checked \(\d+ appended pseudo-news IDs, \d+ profile rows\), 0 violations/);
  });

  it("reports the stages alone when there is no manifest and no input data", async () => {
    const f = await fixture();
    const model = await collectReport(f.runDir);
    expect(model.splits).toEqual([]);
    expect(model.news[0]!.original).toBeUndefined();
    expect(model.dist.titleTokens?.original).toBeUndefined();
    expect(model.dist.coldHistory).toBeUndefined();
    const html = await readFile((await writeReport(f.runDir)).path, "utf8");
    expect(html).toContain("No manifest.json");
    expect(html).toContain(`data-chart="title-length"`);
  });

  it("refuses a folder with nothing to report, naming it", async () => {
    const f = await fixture();
    await expect(writeReport(f.data)).rejects.toThrow(UserError);
    await expect(writeReport(join(f.root, "nope"))).rejects.toThrow(/no such run folder/);
  });

  it("runs as a command and prints the report's path", async () => {
    const f = await fixture();
    const r = await runCliCaptured(["report", "run", "--data", "data", "--sample", "50"], { cwd: f.root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^report: run\/report\.html \([\d.]+ KB\)/);
    expect(r.stderr).toMatch(/warning: generate: 1 record lines skipped/);
    expect(existsSync(join(f.runDir, "report.html"))).toBe(true);
    const empty = await runCliCaptured(["report", "data"], { cwd: f.root });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^genre-mind report: \S*data: no stage records/);
  });
});

describe("report wording", () => {
  it("counts as enhanced only the titles that differ from the original", async () => {
    const f = await fixture();
    // N10's latest answer is its original title (re-spaced): answered, but nothing enhanced.
    const original = (await readFile(join(f.data, "MINDtest_train", "news.tsv"), "utf8")).split("\n")[9]!.split("\t")[3]!;
    const rec = { key: "summarize:N10b", stage: "summarize", itemId: "N10", provider: "anthropic", model: "claude-test", output: { title: original }, usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 }, attempts: 1 };
    await appendFile(join(f.runDir, "summarize.jsonl"), JSON.stringify(rec) + "\n");
    const model = await collectReport(f.runDir, { data: [f.data] });
    expect(model.dist.titlesChanged).toEqual({ changed: NEWS_COUNT - 3, compared: NEWS_COUNT - 2 });
    const html = await readFile((await writeReport(f.runDir, { data: [f.data] })).path, "utf8");
    expect(html).toContain(`<div class="v">${NEWS_COUNT - 3}</div><div class="k">enhanced titles</div>`);
    expect(html).toContain(`<div class="v">1</div><div class="k">titles unchanged</div>`);
    // Without the inputs nothing can be compared, and the card says what it counts.
    const bare = await readFile((await writeReport(f.runDir)).path, "utf8");
    expect(bare).toContain(`<div class="v">${NEWS_COUNT - 2}</div><div class="k">titles answered (originals not read)</div>`);
  });

  it("names what changed the data: the LLM, the offline baseline, or both", () => {
    const glance = (...providers: string[]) =>
      [{ answeredBy: providers.map((provider) => ({ provider, model: "m", records: 3 })) }, { answeredBy: [{ provider: "anthropic", model: "m", records: 0 }] }] as unknown as StageGlance[];
    expect(changedBy(glance("anthropic"))).toBe("What the LLM changed");
    expect(changedBy(glance("offline"))).toBe("What the offline baseline changed");
    expect(changedBy(glance("offline", "openai-compatible"))).toBe("What the stages changed (LLM and offline baseline)");
    expect(changedBy(glance())).toBe("What the stages changed");
  });

  it("says 1 cold user, not 1 cold users", async () => {
    const f = await fixture();
    const generate = (await readFile(join(f.runDir, "generate.jsonl"), "utf8")).split("\n");
    await writeFile(join(f.runDir, "generate.jsonl"), generate[0] + "\n");
    const html = await readFile((await writeReport(f.runDir, { data: [f.data] })).path, "utf8");
    expect(html).toMatch(/1 cold user; mean history/);
  });
});

describe("report helpers", () => {
  it("counts title tokens as NRMS's reader does", () => {
    expect(titleTokens("Bills' QB, 25, out: what's next?")).toBe(10);
    expect(titleTokens("Björk & Mötley Crüe")).toBe(3);
  });

  it("picks round axis ticks and draws one bar per value", () => {
    expect(niceTicks(87)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0)).toEqual([0, 1]);
    const svg = columnChart({ id: "t", labels: ["a", "b", "c"], series: [{ name: "s", color: "#000", values: [1, 2, 3] }, { name: "u", color: "#111", values: [3, 2, 1] }] });
    expect(svg.match(/class="bar"/g)).toHaveLength(6);
  });
});
