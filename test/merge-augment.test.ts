// augment and demo end to end on the bundled sample with the offline provider (no network); a paid
// run folder for demo to refuse is made through the fake Anthropic API.
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { createFakeAnthropic } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { Manifest } from "../src/merge/manifest.js";
import { resolveSplits } from "../src/mind/splits.js";
import { validateSplit } from "../src/mind/validate.js";
import { tempDir } from "./helpers/temp.js";
import { makeFixture } from "./stages.fixture.js";

const SAMPLE = resolve(import.meta.dirname, "..", "mind-data", "sample");

async function cli(cwd: string, args: string[]) {
  const r = await runCliCaptured(args, { cwd });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

describe("augment", () => {
  it("runs the three stages and merge into one folder, and resumes from the stored answers", async () => {
    const root = await tempDir("gm-augment-");
    const out = join(root, "run");
    let r = await cli(root, ["augment", "--data", SAMPLE, "--out", out, "--provider", "offline"]);
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/augment: generate \(chained on the profiles\)/);
    const meta = JSON.parse(await readFile(join(out, "generate.meta.json"), "utf8")) as { options: { chain: boolean } };
    expect(meta.options.chain).toBe(true);
    const manifest = Manifest.parse(JSON.parse(await readFile(join(out, "manifest.json"), "utf8")));
    expect(manifest.stages.summarize!.counts.missing).toBe(0);
    expect(manifest.stages.generate!.counts.merged).toBeGreaterThan(0);
    expect(Object.keys(manifest.pseudoNews).length).toBeGreaterThan(0);
    // The run ends with its report, which shows the merged run (pseudo-news IDs come from the manifest).
    const html = await readFile(join(out, "report.html"), "utf8");
    expect(r.err).toMatch(/report: .*report\.html/);
    expect(html).toContain(Object.keys(manifest.pseudoNews)[0]!);
    for (const split of await resolveSplits([out])) {
      const report = await validateSplit(split, { coldMax: 5, lenient: false });
      expect(report.problems.filter((p) => p.severity === "error"), split.name).toEqual([]);
    }

    // A second run asks nothing again (no record appended); the earlier merged output is kept unless --force.
    const stored = async () => Promise.all(["summarize", "profile", "generate"].map(async (s) => (await readFile(join(out, `${s}.jsonl`), "utf8")).length));
    const first = await stored();
    const split = join(out, manifest.splits[0]!.name);
    const merged = async () => Promise.all(["news.tsv", "behaviors.tsv", "../manifest.json"].map((f) => readFile(join(split, f))));
    const before = await merged();
    // A trainer's cache beside the merged files: kept with them, and replaced with them by --force.
    await writeFile(join(split, "parsed_news.tsv"), "stale cache\n");
    r = await cli(root, ["augment", "--data", SAMPLE, "--out", out, "--provider", "offline"]);
    expect(await stored()).toEqual(first);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already holds merged output .*--force/);
    expect(await merged()).toEqual(before);
    expect(existsSync(join(split, "parsed_news.tsv"))).toBe(true);
    r = await cli(root, ["augment", "--data", SAMPLE, "--out", out, "--provider", "offline", "--force", "--no-chain"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/augment: generate\n/);
    // Without the chain the generate prompts differ, so generate was asked again; the others were not.
    const third = await stored();
    expect(third.slice(0, 2)).toEqual(first.slice(0, 2));
    expect(third[2]).toBeGreaterThan(first[2]!);
    expect(JSON.parse(await readFile(join(out, "generate.meta.json"), "utf8")).options.chain).toBe(false);
    expect(existsSync(join(split, "parsed_news.tsv"))).toBe(false);
    expect((await readFile(join(split, "behaviors.tsv"))).length).toBeGreaterThan(0);
  });

  it("estimates with --dry-run and merges nothing", async () => {
    const root = await tempDir("gm-augment-");
    const out = join(root, "run");
    const r = await cli(root, ["augment", "--data", SAMPLE, "--out", out, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/generate is estimated without --chain/);
    expect(r.err).toMatch(/nothing sent, nothing merged/);
    expect(existsSync(join(out, "manifest.json"))).toBe(false);
    // Each stage's table, then the whole run's: the sum of the three, model by model.
    const rows = [...r.out.matchAll(/^\s+claude-3-haiku\s+live\s+\$([\d.]+)\s+batch\s+\$([\d.]+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(rows).toHaveLength(4);
    expect(r.out).toMatch(/the whole run \(summarize, profile, generate\), every priced model/);
    for (const col of [0, 1]) expect(rows[3]![col]).toBeCloseTo(rows.slice(0, 3).reduce((s, x) => s + x[col]!, 0), 3);
  });

  it("refuses an --out inside an input split before its first stage: no stage file is written", async () => {
    const { root, data } = await makeFixture();
    const split = join(data, "train");
    const r = await cli(root, ["augment", "--data", data, "--out", split, "--provider", "offline"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/the merged split \S+ would overwrite the input split \S+train; choose another --out/);
    expect(r.err).not.toMatch(/augment: summarize/);
    expect((await readdir(split)).sort()).toEqual(["behaviors.tsv", "news.tsv"]);
  });

  it("refuses to run again over its merged output without --force before its first stage: no stage file is written", async () => {
    const { root, data, out } = await makeFixture();
    const argv = ["augment", "--data", data, "--out", out, "--provider", "offline", "--stages", "summarize"];
    expect((await cli(root, argv)).code).toBe(0);
    // A stage that runs rewrites its meta (its counts and finishedAt), even with every answer stored.
    const meta = await readFile(join(out, "summarize.meta.json"), "utf8");
    for (const stages of ["summarize", "summarize,describe"]) {
      const r = await cli(root, [...argv.slice(0, -1), stages]);
      expect(r.code, stages).toBe(2);
      expect(r.err).toMatch(/already holds merged output \(train, dev, .*manifest\.json\); pass --force/);
      expect(r.err).not.toMatch(/augment: summarize/);
      expect(await readFile(join(out, "summarize.meta.json"), "utf8")).toBe(meta);
      expect((await readdir(out)).filter((f) => f.startsWith("describe."))).toEqual([]);
    }
    // A dry run sends nothing either way: it says what the run would do, and goes on.
    const dry = await cli(root, [...argv, "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.err).toMatch(/augment: note: without --dry-run this would stop before the first stage: --out \S+ already holds merged output/);
  });

  it("rejects --chain values other than true/false", async () => {
    const r = await cli(process.cwd(), ["augment", "--data", SAMPLE, "--out", "x", "--chain", "maybe"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--chain/);
  });
});

describe("demo", () => {
  it("refuses (exit 2) an --out holding paid records or a merge of them, and writes nothing there", async () => {
    const fake = await createFakeAnthropic({ answer: () => "A plain headline for the news" });
    const root = await tempDir("gm-demo-");
    const paid = join(root, "paid");
    const env = { ANTHROPIC_API_KEY: "test-key" };
    const live = ["--data", SAMPLE, "--out", paid, "--provider", "anthropic", "--base-url", fake.url];
    expect((await runCliCaptured(["summarize", ...live, "--limit", "2"], { cwd: root, env })).code).toBe(0);
    const files = async () => (await readdir(paid)).sort();
    const records = await readFile(join(paid, "summarize.jsonl"), "utf8");
    const before = await files();

    let r = await cli(root, ["demo", "--data", SAMPLE, "--out", paid]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--out \S*paid holds output demo did not make: summarize\.jsonl:1 \(provider anthropic\)\. .*choose another --out/);
    expect(await files()).toEqual(before);
    expect(await readFile(join(paid, "summarize.jsonl"), "utf8")).toBe(records);

    // Its merge alone is refused too: the records may have been moved elsewhere.
    expect((await runCliCaptured(["merge", "--data", SAMPLE, "--out", paid], { cwd: root })).code).toBe(0);
    await rm(join(paid, "summarize.jsonl"));
    const merged = await files();
    r = await cli(root, ["demo", "--data", SAMPLE, "--out", paid]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/holds output demo did not make: manifest\.json \(a merge with summarize answers of provider anthropic\)/);
    expect(await files()).toEqual(merged);
  });

  it("augments the sample offline, summarizes what changed, and can be run again", async () => {
    const root = await tempDir("gm-demo-");
    const out = join(root, "demo");
    let text = "";
    for (let i = 0; i < 2; i++) {
      const r = await cli(root, ["demo", "--data", SAMPLE, "--out", out]);
      text = r.out;
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/What changed/);
      expect(r.out).toMatch(/titles enhanced: +\d+ of \d+ news/);
      expect(r.out).toMatch(/cold user U\d+ in \S+: history of (\d+) → (\d+)/);
      expect(r.out).toMatch(/demo\/<split>\/user_profiles\.tsv/);
      expect(r.out).toMatch(/audit: \d+ checked .*, 0 violations/);
    }
    const names = await readdir(out);
    expect(names).toEqual(expect.arrayContaining(["manifest.json", "summarize.jsonl"]));
    expect(names).not.toContain("user_profiles.tsv");
    // Titles that came back unchanged are not counted as enhanced, in the summary or in the report.
    const changed = new Set<string>();
    const all = new Set<string>();
    for (const split of ["MINDsample_train", "MINDsample_dev"]) {
      for (const line of (await readFile(join(out, split, "news_titles.tsv"), "utf8")).split("\n").filter(Boolean)) {
        const [id, original, enhanced] = line.split("\t");
        all.add(id!);
        if (enhanced !== original) changed.add(id!);
      }
    }
    expect(changed.size).toBeLessThan(all.size);
    expect(text).toContain(`titles enhanced:   ${changed.size} of ${all.size} news`);
    const html = await readFile(join(out, "report.html"), "utf8");
    expect(html).toContain("<h2>What the offline baseline changed</h2>");
    expect(html).toContain(`<div class="v">${changed.size}</div><div class="k">enhanced titles</div>`);
    expect(html).toContain(`<div class="v">${all.size - changed.size}</div><div class="k">titles unchanged</div>`);
    // The closing lines are commands to paste into this project's shell.
    expect(text).toMatch(/^  npm run augment -- --data mind-data\/MINDsmall_train .*--provider anthropic --dry-run$/m);
    expect(text).not.toMatch(/genre-mind augment/);
    // The history lines of the summary: "after" is "before" plus the pseudo-news.
    const before = /before: (N[\dN ]+)\n/.exec(text.split("cold user U")[1]!)?.[1];
    const after = /after: +(N[\dN ]+)\n/.exec(text.split("cold user U")[1]!)?.[1];
    expect(after?.startsWith(`${before} `)).toBe(true);
  });
});
