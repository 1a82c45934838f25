// describe wired in: its command offline and against the fake Anthropic API (validation, repair),
// `prompt`, merge (category_descriptions.tsv, --describe title|abstract), `import
// category-descriptions`, augment --stages and the report.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Manifest } from "../src/merge/manifest.js";
import { collectReport } from "../src/report/collect.js";
import { writeReport } from "../src/report/report.js";
import { resolveSplits } from "../src/mind/splits.js";
import { validateSplit } from "../src/mind/validate.js";
import { blockText, createFakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { writeSplit } from "./helpers/split.js";
import { tempDir } from "./helpers/temp.js";
import { makeFixture, NEWS, lines, read, records } from "./stages.fixture.js";


const CATEGORIES = ["sports", "finance", "weather", "health", "news", "travel", "autos"];
const SUBCATEGORIES = ["football_nfl", "markets", "weathertopstories", "medical", "newsworld", "traveltripideas", "autosnews"];
const ITEMS = [...CATEGORIES.map((c) => `category:${c}`), ...SUBCATEGORIES.map((s) => `subcategory:${s}`)];

describe("describe offline", () => {
  it("describes every category and subcategory once; prompt and --dry-run name them", async () => {
    const { root, data, out } = await makeFixture();
    const dry = await runCliCaptured(["describe", "--data", data, "--out", out, "--dry-run"], { cwd: root });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("describe: one request per category (7) and subcategory (7) of the news");
    const r = await runCliCaptured(["describe", "--data", data, "--out", out], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    const recs = await records(out, "describe");
    expect(recs.map((x) => x.itemId)).toEqual(ITEMS);
    expect(recs.find((x) => x.itemId === "subcategory:football_nfl")!.output).toEqual({
      description: "NFL is a subcategory of news within the sports category. Stories in it most often mention texans, colts, overtime, beat, thriller, coach, praises and defense. It is described here from the titles of 2 stories.",
    });

    const prompt = await runCliCaptured(["prompt", "describe", "subcategory:markets", "--data", data], { cwd: root });
    expect(prompt.code).toBe(0);
    expect(prompt.stdout).toContain("Kind: subcategory\nName: markets\nCategory: finance\nExample titles:\n(1) Stocks rally as the Fed holds rates steady\n(2) Stock market rally continues for third day");
    const bad = await runCliCaptured(["prompt", "describe", "markets", "--data", data], { cwd: root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/'markets' names no category item: write category:<name> or subcategory:<name>/);
    expect((await runCliCaptured(["prompt", "describe", "category:golf", "--data", data], { cwd: root })).stderr).toMatch(/no category 'golf' in the given splits/);
  });
});

describe("describe against the fake Anthropic API", () => {
  it("describes a category from the stories of the earliest split that has it, not from a later split's", async () => {
    const root = await tempDir("gm-describe-");
    const data = join(root, "data");
    const nfl = (id: string, title: string) => [id, "sports", "football_nfl", title, "", `https://x/${id}`, "[]", "[]"];
    const trip = ["N3", "travel", "traveltripideas", "Ten quiet islands to visit", "", "https://x/3", "[]", "[]"];
    // dev (11/16) after train (11/15), though named first: dev's N2 and N3 are not train's.
    await writeSplit(join(data, "dev"), [nfl("N1", "Texans beat Colts in overtime"), nfl("N2", "Zebras stampede through stadium parking"), trip], [["1", "U1", "11/16/2019 9:00:00 AM", "N1", "N2-1 N3-0"]]);
    await writeSplit(join(data, "train"), [nfl("N1", "Texans beat Colts in overtime")], [["2", "U1", "11/15/2019 9:00:00 AM", "", "N1-1"]]);
    const out = join(root, "run");
    const r = await runCliCaptured(["describe", "--data", join(data, "dev"), "--data", join(data, "train"), "--out", out], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    const described = new Map((await records(out, "describe")).map((x) => [x.itemId, (x.output as { description: string }).description]));
    for (const id of ["category:sports", "subcategory:football_nfl"]) {
      expect(described.get(id), described.get(id)).toMatch(/mention texans, beat, colts and overtime\. It is described here from the titles of 1 story\./);
      expect(described.get(id)).not.toMatch(/zebras|stampede/);
    }
    // Only dev has travel news: described from dev's.
    expect(described.get("subcategory:traveltripideas")).toMatch(/quiet, islands and visit\. It is described here from the titles of 1 story\./);
    const prompt = await runCliCaptured(["prompt", "describe", "subcategory:football_nfl", "--data", join(data, "dev"), "--data", join(data, "train")], { cwd: root });
    expect(prompt.stdout).toContain("Example titles:\n(1) Texans beat Colts in overtime\n");
    expect(prompt.stdout).not.toContain("Zebras");
  });

  it("merge refuses descriptions made from other splits than its own: they would carry those stories into these rows", async () => {
    const { root, data, out } = await makeFixture();
    // Described from dev alone, merged over train and dev.
    expect((await runCliCaptured(["describe", "--data", join(data, "dev"), "--out", out], { cwd: root })).code).toBe(0);
    const r = await runCliCaptured(["merge", "--data", data, "--out", out, "--describe", "title"], { cwd: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/describe\.meta\.json: the describe records were made from dev \(\d+\+\d+ bytes\); this merge's --data is dev \(\d+\+\d+ bytes\), train \(\d+\+\d+ bytes\)\. .*run describe over the same --data as the merge/);
    expect(existsSync(join(out, "manifest.json"))).toBe(false);
    // Described over the merge's own --data: merged.
    expect((await runCliCaptured(["describe", "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    const ok = await runCliCaptured(["merge", "--data", data, "--out", out, "--describe", "title"], { cwd: root });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("strips a label, re-asks JSON, a list, two paragraphs and a short answer, and stores one line", async () => {
    const long = (what: string) => `${what} covers the subjects, people and events of its field: results, trades, injuries, previews, analysis and the decisions that shape each season for teams, fans and the wider public.`;
    const fake = await createFakeAnthropic({
      answer: (body: FakeMessageRequest, info) => {
        const name = /^Name: (.*)$/m.exec(blockText(body.messages[0]!.content))![1]!;
        if (info.n > 1) return long(`News about ${name}`);
        if (name === "football_nfl") return `Description: "${long("The National Football League")}"`;
        if (name === "markets") return JSON.stringify({ description: long("Markets") });
        if (name === "medical") return `- ${long("Medical news")}`;
        if (name === "newsworld") return `${long("World news")}\n\n${long("It also")}`;
        if (name === "sports") return "Sports.";
        return long(`The ${name} category`);
      },
    });
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["describe", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url], { cwd: root, env: { ANTHROPIC_API_KEY: "test-key" } });
    expect(r.code, r.stderr).toBe(0);
    const recs = new Map((await records(out, "describe")).map((x) => [x.itemId, x]));
    expect(recs.size).toBe(14);
    expect(recs.get("subcategory:football_nfl")!.output).toEqual({ description: long("The National Football League") });
    expect(recs.get("subcategory:football_nfl")!.attempts).toBe(1);
    for (const id of ["subcategory:markets", "subcategory:medical", "subcategory:newsworld", "category:sports"]) {
      expect(recs.get(id)!.attempts, id).toBe(2);
      expect((recs.get(id)!.output as { description: string }).description).toMatch(/^News about /);
    }
    const errors = fake.log
      .map((l) => l.body as FakeMessageRequest | undefined)
      .filter((b): b is FakeMessageRequest => b !== undefined && b.messages.length === 3)
      .map((b) => blockText(b.messages[2]!.content))
      .join("\n");
    expect(errors).toMatch(/the answer is JSON or code/);
    expect(errors).toMatch(/markup \(a Markdown heading, quote or list marker\)/);
    expect(errors).toMatch(/the answer has 2 paragraphs/);
    expect(errors).toMatch(/the description is too short \(1 words\)/);
  });
});

describe("describe through merge", () => {
  it("writes category_descriptions.tsv always, and puts the descriptions into titles or abstracts on request", async () => {
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["describe", "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    const descriptions = new Map((await records(out, "describe")).map((x) => [x.itemId, (x.output as { description: string }).description]));

    const none = await runCliCaptured(["merge", "--data", data, "--out", out], { cwd: root });
    expect(none.code, none.stderr).toBe(0);
    const file = lines(await read(out, "category_descriptions.tsv"));
    // Categories, then subcategories, each by name.
    expect(file.map((f) => `${f[0]}:${f[1]}`)).toEqual([...CATEGORIES.map((c) => `category:${c}`).sort(), ...SUBCATEGORIES.map((s) => `subcategory:${s}`).sort()]);
    expect(file.every((f) => f.length === 3 && f[2] === descriptions.get(`${f[0]}:${f[1]}`))).toBe(true);
    const input = await read(data, "train", "news.tsv");
    expect(await read(out, "train", "news.tsv")).toBe(input);
    const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
    expect(manifest.options.describe).toBe("none");
    expect(manifest.files.beside).toEqual(["category_descriptions.tsv"]);
    expect(manifest.files.categoryDescriptionsColumns).toEqual(["Kind", "Name", "Description"]);
    expect(manifest.stages.describe!.counts).toMatchObject({ items: 14, merged: 14, missing: 0 });

    const nfl = descriptions.get("subcategory:football_nfl")!;
    const title = await runCliCaptured(["merge", "--data", data, "--out", out, "--describe", "title", "--force"], { cwd: root });
    expect(title.code, title.stderr).toBe(0);
    expect(title.stdout).toMatch(/train\/: 9 news \(0 pseudo-news\), 9 described news rows/);
    const titled = lines(await read(out, "train", "news.tsv"));
    expect(titled[0]!.slice(3, 5)).toEqual([`Texans beat Colts in overtime thriller [SEP] ${nfl}`, "Houston rallied late to win at home."]);
    // Behaviors are copied byte for byte: describe adds nothing to histories.
    for (const split of ["train", "dev"]) expect(await read(out, split, "behaviors.tsv")).toBe(await read(data, split, "behaviors.tsv"));

    const abstract = await runCliCaptured(["merge", "--data", data, "--out", out, "--describe", "abstract", "--force"], { cwd: root });
    expect(abstract.code, abstract.stderr).toBe(0);
    const abstracts = lines(await read(out, "dev", "news.tsv"));
    expect(abstracts[0]!.slice(3, 5)).toEqual(["Texans beat Colts in overtime thriller", `${nfl} Houston rallied late to win at home.`]);
    // N3 has no abstract: the description is the abstract.
    expect(abstracts[2]![4]).toBe(descriptions.get("subcategory:weathertopstories"));
    expect(abstracts.every((f, i) => f.length === 8 && [0, 1, 2, 3, 5, 6, 7].every((c) => f[c] === NEWS[i]![c]))).toBe(true);

    const bad = await runCliCaptured(["merge", "--data", data, "--out", out, "--describe", "both", "--force"], { cwd: root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--describe/);
  });

  it("gives pseudo-news rows their category's description under --describe title, and counts them described", async () => {
    const { root, data, out } = await makeFixture();
    for (const stage of ["describe", "generate"]) expect((await runCliCaptured([stage, "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    const r = await runCliCaptured(["merge", "--data", data, "--out", out, "--describe", "title"], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    const pseudo = lines(await read(out, "dev", "news.tsv")).filter((f) => f[2] === "generated");
    expect(pseudo.length).toBeGreaterThan(0);
    const descriptions = new Map((await records(out, "describe")).map((x) => [x.itemId, (x.output as { description: string }).description]));
    for (const f of pseudo) expect(f[3]!.endsWith(` [SEP] ${descriptions.get(`category:${f[1]}`)}`), f[3]).toBe(true);
    // Every row of each news.tsv got a description, the pseudo-news too, and newsDescribed says so.
    const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
    for (const split of manifest.splits) {
      const described = lines(await read(out, split.name, "news.tsv")).filter((f) => f[3]!.includes(" [SEP] "));
      expect(split.output.pseudoNews, split.name).toBeGreaterThan(0);
      expect([split.output.newsDescribed, described.length], split.name).toEqual([split.output.news, split.output.news]);
    }
    expect(r.stdout).toMatch(/dev\/: 13 news \(4 pseudo-news\), 13 described news rows/);
  });
});

describe("import category-descriptions", () => {
  it("turns the published JSON into describe records that merge uses; importing again appends nothing", async () => {
    const { root, data, out } = await makeFixture();
    const text = (what: string) => `${what} covers league results, player trades, injuries, coaching changes, the draft and the playoff race, with previews and analysis of each week's games.`;
    const json = JSON.stringify([
      { category: "football_nfl", description: text("The NFL subcategory") },
      { category: "sports", description: text("Sports news") },
      { category: "golf", description: text("Golf") },
      { category: "markets", description: "Markets." },
    ], null, 4);
    await writeFile(join(root, "gpt4.json"), json);
    const argv = ["import", "category-descriptions", "gpt4.json", "--data", data, "--out", "run"];
    const r = await runCliCaptured(argv, { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("describe: 2 items → 1 record, 1 failure written");
    expect(r.stdout).toMatch(/gpt4\.json: 4 entries; 1 item imported; refused: (not a subcategory of --data 2, invalid answer 1|invalid answer 1, not a subcategory of --data 2); names not a subcategory of --data: sports \(a category only\), golf/);
    const recs = await records(out, "describe");
    expect(recs.map((x) => [x.itemId, x.provider, x.model, x.origin])).toEqual([["subcategory:football_nfl", "imported", "gpt-4", [{ file: "gpt4.json", line: 2 }]]]);
    const again = await runCliCaptured(argv, { cwd: root });
    expect(again.stdout).toContain("(2 already in run from an earlier import)");
    expect(await records(out, "describe")).toHaveLength(1);

    // A later offline run asks only the items the import did not answer.
    const offline = await runCliCaptured(["describe", "--data", data, "--out", out], { cwd: root });
    expect(offline.stdout + offline.stderr).toMatch(/14 items, 13 done, 1 cached/);
    expect((await runCliCaptured(["merge", "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    expect(await read(out, "category_descriptions.tsv")).toContain(`subcategory\tfootball_nfl\t${text("The NFL subcategory")}\n`);

    const misuse = await runCliCaptured([...argv, "--variant", "plain"], { cwd: root });
    expect(misuse.code).toBe(2);
    expect(misuse.stderr).toMatch(/--variant is for 'import once' only/);
  });
});

describe("augment --stages", () => {
  it("runs GENRE's three by default, the named stages otherwise, and refuses an unknown name", async () => {
    const { root, data, out } = await makeFixture();
    const plain = await runCliCaptured(["augment", "--data", data, "--out", out], { cwd: root });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).not.toMatch(/augment: describe/);
    expect(await records(out, "describe")).toEqual([]);
    const chosen = await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "describe", "--force", "--describe", "title"], { cwd: root });
    expect(chosen.code, chosen.stderr).toBe(0);
    expect(chosen.stderr.match(/^augment: \w+/gm)).toEqual(["augment: describe", "augment: merge"]);
    expect(await records(out, "describe")).toHaveLength(14);
    // Merge uses every stage's records in --out: summarize's enhanced title, then the description.
    expect(lines(await read(out, "train", "news.tsv"))[0]![3]).toMatch(/^Texans beat Colts in overtime thriller \(.*\) \[SEP\] NFL is a subcategory/);
    const bad = await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "summarize,descibe"], { cwd: root });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--stages: 'descibe' is not a stage: expected a comma-separated list of summarize, profile, generate, describe/);
  });
});

describe("augment --stages with every stage", () => {
  it("runs them in registry order (factors as its two registrations) and merges all into splits that validate", async () => {
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "summarize,profile,generate,describe,pick,factors", "--cold", "both", "--describe", "abstract"], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/^augment: [\w-]+/gm)).toEqual(["augment: summarize", "augment: profile", "augment: generate", "augment: describe", "augment: pick", "augment: factors-users", "augment: factors-news", "augment: merge"]);
    const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
    expect(Object.entries(manifest.stages).filter(([, s]) => s.counts.merged === 0).map(([name]) => name)).toEqual([]);
    expect(manifest.audit.violations).toBe(0);
    expect(manifest.audit).toMatchObject({ pseudoNews: expect.any(Number), picks: expect.any(Number), profiles: expect.any(Number), userFactors: expect.any(Number) });
    // Offline, generate and pick retrieve the same news here: the picks are the pseudo-news's own
    // sources, left out under --cold both (pick.test.ts), so only the pseudo-news is appended.
    expect(manifest.audit.pseudoNews).toBeGreaterThan(0);
    for (const split of await resolveSplits([out])) {
      const report = await validateSplit(split, { coldMax: 5, lenient: false });
      expect(report.problems.filter((p) => p.severity === "error"), split.name).toEqual([]);
      // Pseudo-news and picks only extend histories: every impression is as it was.
      const impressions = (text: string) => lines(text).map((f) => f[4]);
      expect(impressions(await read(out, split.name, "behaviors.tsv"))).toEqual(impressions(await read(data, split.name, "behaviors.tsv")));
    }
  });
});

describe("describe in the report", () => {
  it("draws the description lengths and lists the categories with their descriptions", async () => {
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "describe"], { cwd: root })).code).toBe(0);
    const model = await collectReport(out);
    expect(model.dist.descriptionWords?.category).toHaveLength(7);
    expect(model.categoriesTotal).toBe(14);
    expect(model.categories.find((c) => c.id === "subcategory:markets")).toMatchObject({ kind: "subcategory", name: "markets", newsCount: 2, parent: "finance" });
    const html = await readFile((await writeReport(out)).path, "utf8");
    expect(html).toContain(`data-chart="description-length"`);
    expect(html).toContain(`<button data-tab="categories">Categories (14)</button>`);
    expect(html).toMatch(/Categories described|category descriptions/);
  });
});
