// factors wired in, as two registrations (factors-users, factors-news) that `--stages factors` names
// together: offline and against the fake Anthropic API (validation, repair), merge to
// user_factors.tsv (under the history rule) and news_factors.tsv, and the report.
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Manifest } from "../src/merge/manifest.js";
import { collectReport } from "../src/report/collect.js";
import { writeReport } from "../src/report/report.js";
import { FACTORS } from "../src/stages/factors/factors.js";
import { blockText, createFakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeFixture, lines, read, records } from "./stages.fixture.js";

const NAMES = FACTORS.map((f) => f.name);
const full = (text: (name: string) => string) => Object.fromEntries(NAMES.map((n) => [n, text(n)]));

describe("factors offline", () => {
  it("--stages factors runs factors-users (users with clicks, with their source) and factors-news (every news item)", async () => {
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "factors"], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/^augment: [\w-]+/gm)).toEqual(["augment: factors-users", "augment: factors-news", "augment: merge"]);
    const users = await records(out, "factors-users");
    expect(users.map((x) => [x.itemId, x.source?.split])).toEqual([["U1", "train"], ["U2", "train"], ["U4", "dev"]]);
    expect(Object.keys(users[0]!.output as object)).toEqual(NAMES);
    const news = await records(out, "factors-news");
    expect(news.map((x) => x.itemId)).toEqual(["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"]);
    expect(news[0]!.output).toMatchObject({ topics: "NFL and sports", regions: "Houston and Texas", event_type: "game result" });

    const prompt = await runCliCaptured(["prompt", "factors-news", "N3", "--data", data], { cwd: root });
    expect(prompt.stdout).toContain(`- "regions": the places the story is about`);
    expect(prompt.stdout).toContain("Title: Snowstorm to hit Denver this weekend\nCategory: weather");
    expect(prompt.stdout).not.toContain("Abstract:");
    expect((await runCliCaptured(["prompt", "factors-users", "U3", "--data", data], { cwd: root })).stderr).toMatch(/U3 has an empty history in every split/);
  });
});

describe("factors against the fake Anthropic API", () => {
  it("reads near misses, re-asks a missing factor, a long text or a copy of the instructions, and keeps one line per text", async () => {
    const fake = await createFakeAnthropic({
      answer: (body: FakeMessageRequest, info) => {
        const user = blockText(body.messages[0]!.content);
        if (info.n > 1) return JSON.stringify(full((n) => `${n} of the second answer`));
        if (user.includes("Brexit")) return JSON.stringify({ ...full(() => "x"), format: undefined });
        if (user.includes("Snowstorm")) return JSON.stringify({ ...full(() => "x"), tone: Array.from({ length: 45 }, (_, i) => `w${i}`).join(" ") });
        if (user.includes("Stocks rally")) return JSON.stringify({ ...full(() => "x"), topics: "the subjects and fields the story belongs to" });
        // Labels for keys, a list for a text, N/A for nothing, a line break inside a text.
        return "```json\n" + JSON.stringify({ Topics: ["NFL", "football"], Regions: "N/A", "People and organisations": "Houston\nTexans", "event type": "game result", tone: "neutral", format: "news report" }) + "\n```";
      },
    });
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["factors-news", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url], { cwd: root, env: { ANTHROPIC_API_KEY: "test-key" } });
    expect(r.code, r.stderr).toBe(0);
    const recs = new Map((await records(out, "factors-news")).map((x) => [x.itemId, x]));
    expect(recs.get("N1")!.output).toEqual({ topics: "NFL, football", regions: "none", people_and_organisations: "Houston Texans", event_type: "game result", tone: "neutral", format: "news report" });
    expect(recs.get("N1")!.attempts).toBe(1);
    for (const id of ["N5", "N3", "N2"]) {
      expect(recs.get(id)!.attempts, id).toBe(2);
      expect(recs.get(id)!.output).toEqual(full((n) => `${n} of the second answer`));
    }
    const bodies = fake.log.map((l) => l.body as FakeMessageRequest | undefined).filter((b): b is FakeMessageRequest => b !== undefined);
    const errors = bodies.filter((b) => b.messages.length === 3).map((b) => blockText(b.messages[2]!.content)).join("\n");
    expect(errors).toMatch(/"format" is missing; give every factor, "none" when nothing applies/);
    expect(errors).toMatch(/"tone" is too long \(45 words\); keep it under 40 words/);
    expect(errors).toMatch(/"topics" repeats the instructions/);
    expect(bodies[0]!.output_config?.format?.schema).toMatchObject({ required: NAMES, additionalProperties: false });
  });
});

describe("factors through merge", () => {
  it("writes user_factors.tsv per split under the history rule and news_factors.tsv for the news with a record", async () => {
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["factors-users", "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    expect((await runCliCaptured(["factors-news", "--data", data, "--out", out, "--limit", "3"], { cwd: root })).code).toBe(0);
    const r = await runCliCaptured(["merge", "--data", data, "--out", out], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/train\/: 9 news \(0 pseudo-news\), 3 news factors rows, 3 impressions, 0 histories extended, 2 user factors rows/);
    // U1 and U2 were asked from train; dev's history of U1 (N1 N2 N6) holds train's clicks, U4's source is dev.
    const users = async (split: string) => lines(await read(out, split, "user_factors.tsv"));
    expect((await users("train")).map((f) => f[0])).toEqual(["U1", "U2"]);
    expect((await users("dev")).map((f) => f[0])).toEqual(["U1", "U4"]);
    expect((await users("train")).every((f) => f.length === 1 + NAMES.length)).toBe(true);
    const news = lines(await read(out, "dev", "news_factors.tsv"));
    expect(news.map((f) => f[0])).toEqual(["N1", "N2", "N3"]);
    expect(news[0]).toEqual(["N1", "NFL and sports", "Houston and Texas", "Houston Texans", "game result", "neutral", "news report"]);
    // Side files only: news.tsv and behaviors.tsv as they were.
    for (const split of ["train", "dev"]) {
      for (const file of ["news.tsv", "behaviors.tsv"]) expect(await read(out, split, file)).toBe(await read(data, split, file));
    }
    const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
    expect(manifest.files.perSplit).toEqual(expect.arrayContaining(["user_factors.tsv", "news_factors.tsv"]));
    expect(manifest.files.userFactorsColumns).toEqual(["User ID", ...NAMES]);
    expect(manifest.files.newsFactorsColumns).toEqual(["News ID", ...NAMES]);
    expect(manifest.audit).toMatchObject({ userFactors: 4 });
    expect(manifest.stages["factors-news"]!.counts).toMatchObject({ items: 9, merged: 3, missing: 6 });

    // A record written before a factor was added to data/vocab/factors.json lacks it: skipped and counted.
    const { format: _f, ...old } = (await records(out, "factors-news"))[0]!.output as Record<string, string>;
    await appendFile(join(out, "factors-news.jsonl"), JSON.stringify({ key: "k", stage: "factors-news", itemId: "N9", provider: "offline", model: "offline", output: old, usage: { inputTokens: 0, outputTokens: 0 }, attempts: 1 }) + "\n");
    const again = await runCliCaptured(["merge", "--data", data, "--out", out, "--force"], { cwd: root });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/1 invalid factors-news record line\(s\) skipped, e\.g\. .*output rejected: no text for the factor 'format'/);
  });
});

describe("factors in the report", () => {
  it("draws the factor coverage of users and news, and shows each example's texts", async () => {
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "factors"], { cwd: root })).code).toBe(0);
    const model = await collectReport(out);
    expect(model.dist.factorCoverage?.users?.items).toBe(3);
    expect(model.dist.factorCoverage?.news?.items).toBe(9);
    // Every news item of the fixture has a subcategory: its topics always say something.
    expect(model.dist.factorCoverage?.news?.stated[0]).toBe(9);
    expect(model.news.find((n) => n.id === "N1")?.factors).toMatchObject({ topics: "NFL and sports" });
    expect(model.users.find((u) => u.id === "U4")?.factors?.topics).toBeTruthy();
    const html = await readFile((await writeReport(out)).path, "utf8");
    expect(html).toContain(`data-chart="factor-coverage"`);
    // A factor stated for every item but with one text for most (an offline default) is named as such.
    const news = model.dist.factorCoverage!.news!;
    const same = news.top.map((t, i) => ({ i, share: t.count / news.items, text: t.text })).filter((t) => t.share > 0.5);
    expect(same.length).toBeGreaterThan(0);
    for (const t of same) expect(html).toContain(`is &quot;${t.text}&quot; for ${Math.round(t.share * 100)}%`);
    // The glance counts per split what the stages of this merge wrote, not the others' zeros.
    expect(html).toMatch(/<b>train<\/b> \([^)]*user factors rows\)/);
    expect(html).not.toMatch(/picks appended|\d profiles/);
    expect(html).toContain(`<div class="k">users with factors</div>`);
    expect(html).not.toMatch(/<div class="k">(profiled users|cold users with picks|category descriptions)<\/div>/);
  });
});
