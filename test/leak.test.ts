// The leaking cases of issue 10, built on purpose: each must be prevented (the rule) or refused
// (the re-ask, the audit). The rule itself: src/mind/history-rule.ts.
import { appendFile, readdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { StageRecord } from "../src/engine/types.js";
import { Manifest } from "../src/merge/manifest.js";
import { loadCandidates, loadCatalog } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { candidateGuard, coldClicks, generateOptions, generateStage, offlineGenerated } from "../src/stages/generate/index.js";
import { pickCandidates } from "../src/stages/pick/index.js";
import { GenerateOutput } from "../src/stages/generate/output.js";
import { BUNDLED_PROMPTS_DIR, loadTemplate } from "../src/stages/template.js";
import { TfIdfIndex } from "../src/stages/tfidf.js";
import { blockText, createFakeAnthropic, type FakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { writeSplit } from "./helpers/split.js";
import { tempDir } from "./helpers/temp.js";
import { makeDataset, record } from "./merge.fixture.js";
import { NEWS, type NewsLine } from "./stages.fixture.js";

const SAMPLE = resolve(import.meta.dirname, "..", "mind-data", "sample");
const temp = () => tempDir("gm-leak-");

const fields = (text: string) => text.split("\n").filter(Boolean).map((l) => l.split("\t"));
const rowsOf = async (file: string, userId: string) => fields(await readFile(file, "utf8")).filter((f) => f[1] === userId);

// N10 is a near copy of N9 ("Stock market rally continues for third day"); nobody is shown N11.
const N10: NewsLine = ["N10", "finance", "markets", "Stock market rally continues for a third day", "Same story.", "https://x/10", "[]", "[]"];
const N11: NewsLine = ["N11", "lifestyle", "lifestylebuzz", "Local library opens new wing", "", "https://x/11", "[]", "[]"];

/**
 * train (11/14) before dev (11/15).
 * U1: train N1 N2, dev N1 N2 N3 (N3 is the click of U1's train impression); shown N3 N4 N7 N9.
 * U5: empty in train (clicks N3 there), cold in dev with exactly that click: U66101's case.
 * U6 and U7: the same single click (one prompt), different impressions.
 */
async function leakData(root: string, id: (userId: string) => string = (u) => u): Promise<string> {
  const data = join(root, "data");
  await writeSplit(join(data, "train"), [...NEWS, N10, N11], [
    ["1", id("U1"), "11/14/2019 10:00:00 AM", "N1 N2", "N3-1 N4-0"],
    ["2", id("U5"), "11/14/2019 11:00:00 AM", "", "N3-1 N9-0"],
    ["3", id("U6"), "11/14/2019 12:00:00 PM", "N5", "N6-1 N7-0"],
    ["4", id("U7"), "11/14/2019 12:30:00 PM", "N5", "N8-1 N4-0"],
  ]);
  await writeSplit(join(data, "dev"), NEWS, [
    ["5", id("U1"), "11/15/2019 9:00:00 AM", "N1 N2 N3", "N7-0 N9-1"],
    ["6", id("U5"), "11/15/2019 9:30:00 AM", "N3", "N6-1 N2-0"],
  ]);
  return data;
}

describe("a user empty in train and cold in dev", () => {
  it("is asked once from dev; nothing is appended or profiled in train, dev gets both", async () => {
    const root = await temp();
    const data = await leakData(root);
    const out = join(root, "run");
    const r = await runCliCaptured(["augment", "--data", data, "--out", out], { cwd: root });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);

    const generated = fields(await readFile(join(out, "generate.jsonl"), "utf8")).length;
    expect(generated).toBe(4); // U1, U5, U6, U7: one record each, however many splits they are in
    const records = (await readFile(join(out, "generate.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l)));
    expect(records.find((x) => x.itemId === "U5")!.source).toEqual({ split: "dev", clicks: ["N3"] });
    expect(records.find((x) => x.itemId === "U1")!.source).toEqual({ split: "train", clicks: ["N2", "N1"] });

    const manifest = Manifest.parse(JSON.parse(await readFile(join(out, "manifest.json"), "utf8")));
    const owned = (userId: string) => Object.entries(manifest.pseudoNews).filter(([, u]) => u === userId).map(([id]) => id);
    // U5: train history stays empty; dev's history (N3) gets the pseudo-news written from it.
    expect((await rowsOf(join(out, "train", "behaviors.tsv"), "U5"))[0]![3]).toBe("");
    expect((await rowsOf(join(out, "dev", "behaviors.tsv"), "U5"))[0]![3]).toBe(["N3", ...owned("U5")].join(" "));
    // U1: written from train's history, which dev's holds too: appended in both.
    expect((await rowsOf(join(out, "train", "behaviors.tsv"), "U1"))[0]![3]).toBe(["N1", "N2", ...owned("U1")].join(" "));
    expect((await rowsOf(join(out, "dev", "behaviors.tsv"), "U1"))[0]![3]).toBe(["N1", "N2", "N3", ...owned("U1")].join(" "));
    const profiled = async (split: string) => fields(await readFile(join(out, split, "user_profiles.tsv"), "utf8")).map((f) => f[0]);
    expect(await profiled("train")).toEqual(["U1", "U6", "U7"]);
    expect(await profiled("dev")).toEqual(["U1", "U5"]);
    expect(manifest.audit).toMatchObject({ violations: 0, profiles: 5 });
    expect(manifest.audit.pseudoNews).toBe(2 * 2 + 2 + 2 * 2);
  });

  it("is treated the same when user IDs are not U<digits> (merge finds those by their text, not their number)", async () => {
    // A leading zero, another form, a non-ASCII ID, and one ordinary ID beside them.
    const ids: Record<string, string> = { U1: "user-1", U5: "U05", U6: "Ü6", U7: "U7" };
    const root = await temp();
    const data = await leakData(root, (u) => ids[u]!);
    const out = join(root, "run");
    const r = await runCliCaptured(["augment", "--data", data, "--out", out], { cwd: root });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const manifest = Manifest.parse(JSON.parse(await readFile(join(out, "manifest.json"), "utf8")));
    const owned = (userId: string) => Object.entries(manifest.pseudoNews).filter(([, u]) => u === userId).map(([id]) => id);
    expect(owned("U05")).toHaveLength(2);
    expect((await rowsOf(join(out, "train", "behaviors.tsv"), "U05"))[0]![3]).toBe("");
    expect((await rowsOf(join(out, "dev", "behaviors.tsv"), "U05"))[0]![3]).toBe(["N3", ...owned("U05")].join(" "));
    expect((await rowsOf(join(out, "dev", "behaviors.tsv"), "user-1"))[0]![3]).toBe(["N1", "N2", "N3", ...owned("user-1")].join(" "));
    const profiled = async (split: string) => fields(await readFile(join(out, split, "user_profiles.tsv"), "utf8")).map((f) => f[0]);
    expect((await profiled("train")).sort()).toEqual(["U7", "user-1", "Ü6"].sort());
    expect((await profiled("dev")).sort()).toEqual(["U05", "user-1"].sort());
    expect(manifest.audit).toMatchObject({ violations: 0, profiles: 5 });
    expect(manifest.audit.pseudoNews).toBe(2 * 2 + 2 + 2 * 2);
  });

  it("--dry-run and prompt show the requests under the rule", async () => {
    const root = await temp();
    const data = await leakData(root);
    const dry = await runCliCaptured(["generate", "--data", data, "--out", join(root, "run"), "--dry-run"], { cwd: root });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      "generate: one request per user, from their earliest non-empty history; splits in time order: train (from 11/14/2019) → dev (from 11/15/2019)\n" +
        "  4 cold users (1-5 clicks): 3 from train, 1 from dev; skipped: 0 with an empty history in every split, 0 warm\n",
    );
    const p = await runCliCaptured(["prompt", "generate", "U5", "--data", data], { cwd: root });
    expect(p.stdout).toContain("=== source ===\ndev (U5's earliest non-empty history), clicks N3\n");
  });
});

describe("U66101 in the bundled sample", () => {
  let out = "";
  beforeAll(async () => {
    const root = await temp();
    out = join(root, "run");
    const r = await runCliCaptured(["augment", "--data", SAMPLE, "--out", out], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
  });

  it("gets nothing in train, where its history is empty and its impressions' clicks are dev's history", async () => {
    const train = await rowsOf(join(out, "MINDsample_train", "behaviors.tsv"), "U66101");
    expect(train.map((f) => f[3])).toEqual(["", "", ""]);
    const [dev] = await rowsOf(join(out, "MINDsample_dev", "behaviors.tsv"), "U66101");
    expect(dev![3]!.startsWith("N83497 N105984 N36889 N")).toBe(true);
    expect(await readFile(join(out, "MINDsample_train", "user_profiles.tsv"), "utf8")).not.toContain("U66101");
  });

  it("appends no pseudo-news taken from, or copying, a news item of its user's impressions", async () => {
    const manifest = Manifest.parse(JSON.parse(await readFile(join(out, "manifest.json"), "utf8")));
    expect(manifest.audit.violations).toBe(0);
    const shown = new Map<string, Set<string>>();
    for (const split of ["MINDsample_train", "MINDsample_dev"]) {
      for (const f of fields(await readFile(join(SAMPLE, split, "behaviors.tsv"), "utf8"))) {
        const set = shown.get(f[1]!) ?? new Set<string>();
        for (const t of f[4]!.split(" ")) set.add(t.split("-")[0]!);
        shown.set(f[1]!, set);
      }
    }
    let items = 0;
    for (const line of (await readFile(join(out, "generate.jsonl"), "utf8")).split("\n").filter(Boolean)) {
      const rec = StageRecord.parse(JSON.parse(line));
      for (const item of GenerateOutput.parse(rec.output).items) {
        items++;
        expect(shown.get(rec.itemId)!.has(item.retrievedFrom!), `${rec.itemId} ${item.retrievedFrom}`).toBe(false);
      }
    }
    expect(items).toBeGreaterThan(100);
  });

  it("retrieves pseudo-news only from the news of the split its clicks come from (no dev story in a train history)", async () => {
    const newsOf = async (split: string) => new Set(fields(await readFile(join(SAMPLE, split, "news.tsv"), "utf8")).map((f) => f[0]!));
    const news: Record<string, Set<string>> = { MINDsample_train: await newsOf("MINDsample_train"), MINDsample_dev: await newsOf("MINDsample_dev") };
    let devOnly = 0;
    for (const id of news.MINDsample_dev!) if (!news.MINDsample_train!.has(id)) devOnly++;
    expect(devOnly).toBeGreaterThan(50);
    const bySplit = new Map<string, number>();
    for (const line of (await readFile(join(out, "generate.jsonl"), "utf8")).split("\n").filter(Boolean)) {
      const rec = StageRecord.parse(JSON.parse(line));
      const split = rec.source!.split;
      for (const item of GenerateOutput.parse(rec.output).items) {
        expect(news[split]!.has(item.retrievedFrom!), `${rec.itemId} (${split}) ${item.retrievedFrom}`).toBe(true);
        bySplit.set(split, (bySplit.get(split) ?? 0) + 1);
      }
    }
    expect(bySplit.get("MINDsample_train")).toBeGreaterThan(100);
    expect(bySplit.get("MINDsample_dev")).toBeGreaterThan(0);
  });
});

describe("retrieved news is news of the user's source split", () => {
  it("in the offline answer and in a model's answer alike: U5 (source dev) gets and keeps no story only train has", async () => {
    const root = await temp();
    const catalog = await loadCatalog(await resolveSplits([await leakData(root)]));
    const candidates = await loadCandidates(catalog, new Set(["U5"]));
    const requestFor = (k: number) => {
      const options = generateOptions({ k });
      const specs = generateStage.templates(options);
      const input = { catalog, options, candidates, system: loadTemplate(BUNDLED_PROMPTS_DIR, specs.system), user: loadTemplate(BUNDLED_PROMPTS_DIR, specs.user) };
      return [...generateStage.requests(input, ["U5"], undefined)][0]!;
    };
    const retrieved = (answer: string) => GenerateOutput.parse(JSON.parse(answer)).items.map((i) => i.retrievedFrom);
    // N11 (train only, shown to nobody) is one of U5's stories when train is the split asked for.
    const index = new TfIdfIndex([...catalog.news.values()].map((n) => ({ id: n.id, text: `${n.title} ${n.abstract}` })));
    expect(offlineGenerated(index, catalog, coldClicks(catalog, "U5", generateOptions({}))!, 20, "train", undefined, candidates.get("U5")).items.map((i) => i.retrievedFrom)).toContain("N11");

    const all = requestFor(20);
    expect(all.source?.split).toBe("dev");
    const offline = retrieved(all.offline!());
    expect(offline.length).toBeGreaterThan(0);
    expect(offline.filter((id) => !catalog.news.get(id!)!.inSplits.includes("dev"))).toEqual([]);

    const two = requestFor(2);
    const items = GenerateOutput.parse(JSON.parse(two.offline!())).items;
    const parsed = two.parse(JSON.stringify({ items: [{ ...items[0]!, retrievedFrom: "N11" }, items[1]!] }));
    expect(parsed.ok && parsed.value.items.map((i) => i.retrievedFrom)).toEqual([undefined, items[1]!.retrievedFrom]);
    expect(items[1]!.retrievedFrom).toBeDefined();
  });

  it("in what pick offers: U5 (source dev) is offered no story only train has", async () => {
    const root = await temp();
    const catalog = await loadCatalog(await resolveSplits([await leakData(root)]));
    const shown = (await loadCandidates(catalog, new Set(["U5"]))).get("U5")!;
    const index = new TfIdfIndex([...catalog.news.values()].map((n) => ({ id: n.id, text: `${n.title} ${n.abstract}` })));
    const history = coldClicks(catalog, "U5", generateOptions({}))!;
    const offered = (split: string) => pickCandidates(index, catalog, candidateGuard(catalog), history, shown, split, 20).map((n) => n.id);
    expect(offered("train")).toContain("N11");
    const dev = offered("dev");
    expect(dev.length).toBeGreaterThan(0);
    expect(dev.filter((id) => !catalog.news.get(id)!.inSplits.includes("dev"))).toEqual([]);
  });
});

describe("candidates are off limits", () => {
  it("the offline generator never picks a candidate of the user, nor a near copy of one", async () => {
    const root = await temp();
    const catalog = await loadCatalog(await resolveSplits([await leakData(root)]));
    const index = new TfIdfIndex([...catalog.news.values()].map((n) => ({ id: n.id, text: `${n.title} ${n.abstract}` })));
    const history = coldClicks(catalog, "U1", generateOptions({}))!;
    // Without the rule, U1 (Texans beat Colts; Stocks rally) gets N8 and N10, the story of N9 that U1 was shown.
    expect(offlineGenerated(index, catalog, history, 2, "train").items.map((i) => i.retrievedFrom)).toEqual(["N8", "N10"]);
    const shown = (await loadCandidates(catalog, new Set(["U1"]))).get("U1")!;
    const picked = offlineGenerated(index, catalog, history, 2, "train", undefined, shown).items.map((i) => i.retrievedFrom);
    expect(picked[0]).toBe("N8");
    expect(picked).not.toContain("N9");
    expect(picked).not.toContain("N10");
  });

  describe("through the fake Anthropic API", () => {
    let fake: FakeAnthropic | undefined;
    const item = (title: string, category = "sports") => ({ title, abstract: "Something happened.", category });
    const sent = () => fake!.log.map((l) => l.body as FakeMessageRequest | undefined).filter((b): b is FakeMessageRequest => b !== undefined);
    const reasks = () => sent().filter((b) => b.messages.length === 3).map((b) => blockText(b.messages[2]!.content));
    const generate = (root: string, data: string, out: string) =>
      runCliCaptured(["generate", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake!.url], { cwd: root, env: { ANTHROPIC_API_KEY: "test-key" } });

    it("an answer copying a candidate is re-asked with an error that does not quote it", async () => {
      // Every first answer copies N10 (the story of N9, which U1 and U5 were shown) or N8 (which U7 was shown).
      fake = await createFakeAnthropic({
        answer: (_body, info) =>
          JSON.stringify({
            items: info.n === 1 ? [item("Stock market rally continues for a third day", "finance"), item("Colts coach praises Texans defense after overtime loss")] : [item("Ten holiday cookie recipes", "foodanddrink"), item("Electric scooters arrive downtown", "autos")],
          }),
      });
      const root = await temp();
      const data = await leakData(root);
      const out = join(root, "run");
      const r = await generate(root, data, out);
      expect(r.code).toBe(0);
      const errors = reasks();
      // U1 (shown N9): item 1; U5 (shown N9) too; U6 and U7 share one prompt, and U7 was shown N8: item 2.
      expect(errors).toHaveLength(3);
      expect(errors.filter((e) => /item 1 is a near copy of a news story this user was already shown/.test(e))).toHaveLength(2);
      expect(errors.filter((e) => /item 2 is a near copy of a news story this user was already shown/.test(e))).toHaveLength(1);
      for (const e of errors) expect(e).not.toMatch(/Stock|Colts|N9|N8/);
      const recs = (await readFile(join(out, "generate.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l)));
      expect(recs.map((x) => [x.itemId, x.attempts, x.source?.split]).sort()).toEqual([
        ["U1", 2, "train"],
        ["U5", 2, "dev"],
        ["U6", 2, "train"],
        ["U7", 2, "train"],
      ]);
      // U6 and U7 were one request (4 sent for 3 prompts, each re-asked once).
      expect(sent()).toHaveLength(6);
    });

    it("a stored answer is asked again when new data shows the user the story it copies", async () => {
      fake = await createFakeAnthropic({
        answer: (body) => {
          const again = body.messages.length === 3;
          return JSON.stringify({ items: [item(again ? "Ten holiday cookie recipes" : "Local library opens new wing downtown", again ? "foodanddrink" : "lifestyle"), item("Electric scooters arrive downtown", "autos")] });
        },
      });
      const root = await temp();
      const data = await leakData(root);
      const out = join(root, "run");
      expect((await generate(root, data, out)).code).toBe(0);
      const first = sent().length;
      expect(reasks()).toEqual([]);
      // A newer snapshot: U6 was shown N11 (the library story) in dev.
      await appendFile(join(data, "dev", "news.tsv"), N11.join("\t") + "\n");
      await appendFile(join(data, "dev", "behaviors.tsv"), "7\tU6\t11/15/2019 10:00:00 AM\tN5\tN11-1 N1-0\n");
      expect((await generate(root, data, out)).code).toBe(0);
      expect(sent().length).toBe(first + 2);
      expect(reasks()).toHaveLength(1);
      const last = (await readFile(join(out, "generate.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l))).at(-1)!;
      expect(last.itemId).toBe("U6");
      expect(GenerateOutput.parse(last.output).items[0]!.title).toBe("Ten holiday cookie recipes");
    });
  });
});

describe("merge's audit", () => {
  const merge = (root: string, data: string, out: string) => runCliCaptured(["merge", "--data", data, "--out", out], { cwd: root });

  it("stops at a hand-made record copying a candidate, naming user, split, item and reason, and writes nothing", async () => {
    const { root, data, runDir } = await makeDataset();
    // U2 was shown N120 ("Storm coming") in train.
    await writeFile(join(runDir, "generate.jsonl"), record("generate", "U2", { items: [{ title: "Storm coming", abstract: "", category: "weather" }] }));
    let r = await merge(root, data, runDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit: 1 violation\(s\) of the history rule, so nothing was written:\n {2}U2: pseudo-news N951 is a near copy of N120 \("Storm coming"\), a candidate of U2's impressions in train/);
    expect(r.stderr).toMatch(/run the stages again over the same --data/);
    expect(await readdir(runDir)).toEqual(["generate.jsonl"]);

    // An offline item retrieved from a candidate (N950, shown to U2 in dev) is caught by its ID.
    await writeFile(join(runDir, "generate.jsonl"), record("generate", "U2", { items: [{ title: "A trip", abstract: "", category: "travel", retrievedFrom: "N950" }] }));
    r = await merge(root, data, runDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/U2: pseudo-news N951 was retrieved from N950, a candidate of U2's impressions in dev/);
  });

  it("stops at a hand-made record retrieved from a news item of a later split than its clicks", async () => {
    const { root, data, runDir } = await makeDataset();
    // U10's clicks are train's; N950 is only in dev's news.tsv (and no candidate of U10's).
    await writeFile(join(runDir, "generate.jsonl"), record("generate", "U10", { items: [{ title: "A trip", abstract: "", category: "travel", retrievedFrom: "N950" }] }));
    let r = await merge(root, data, runDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit: 1 violation\(s\).*\n {2}U10 in train: pseudo-news N951 was retrieved from N950, which the news.tsv of its source split train does not hold/);
    expect(await readdir(runDir)).toEqual(["generate.jsonl"]);
    // From train's news (N101 is not one of U10's candidates in any split: N101, N102 are): merged.
    await writeFile(join(runDir, "generate.jsonl"), record("generate", "U10", { items: [{ title: "A trip", abstract: "", category: "travel", retrievedFrom: "N120" }] }));
    r = await merge(root, data, runDir);
    expect(r.code, r.stderr).toBe(0);
  });

  it("merges no record written before records kept their source", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeFile(join(runDir, "summarize.jsonl"), record("summarize", "N100", { title: "Enhanced" }));
    await writeFile(join(runDir, "profile.jsonl"), record("profile", "U2", { topics: ["finance"], regions: [] }, "offline", "offline-baseline", null));
    await writeFile(join(runDir, "generate.jsonl"), record("generate", "U2", { items: [{ title: "Old pseudo", abstract: "", category: "news" }] }, "offline", "offline-baseline", null));
    const r = await merge(root, data, runDir);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 invalid generate record line\(s\) skipped, e\.g\. .*generate\.jsonl:1: no source .*run 'generate' again/);
    const manifest = Manifest.parse(JSON.parse(await readFile(join(runDir, "manifest.json"), "utf8")));
    expect(manifest.pseudoNews).toEqual({});
    expect(manifest.stages.profile!.counts).toMatchObject({ merged: 0, invalidRecords: 1 });
    expect(await readFile(join(runDir, "train", "user_profiles.tsv"), "utf8")).toBe("");
    expect(await readFile(join(runDir, "train", "behaviors.tsv"), "utf8")).toBe(await readFile(join(data, "train", "behaviors.tsv"), "utf8"));
  });
});
