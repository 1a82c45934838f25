import { appendFile, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCliCaptured } from "./helpers/cli.js";
import { Manifest } from "../src/merge/manifest.js";
import { compareIds, maxNumericNewsId, sortIds } from "../src/merge/ids.js";
import { FACTORS } from "../src/stages/factors/factors.js";
import { makeDataset, record, writeRecords } from "./merge.fixture.js";

const read = (...p: string[]) => readFile(join(...p), "utf8");
const lines = (text: string) => text.split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));

async function mergeRun(root: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runCliCaptured(["merge", ...args], { cwd: root });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

describe("merge", () => {
  it("writes enhanced titles, pseudo-news, extended histories, profiles and a manifest", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    await writeFile(join(runDir, "summarize.failures.jsonl"), JSON.stringify({ itemId: "NX7", reason: "invalid" }) + "\n");
    const r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);

    // Titles replaced; an item without a record keeps its title; every other field untouched.
    const trainNews = lines(await read(runDir, "train", "news.tsv"));
    expect(trainNews[0]).toEqual(["N100", "news", "newsus", "Enhanced N100 title", "An abstract.", "https://x/1", "[]", "[]"]);
    expect(trainNews.find((f) => f[0] === "NX7")?.[3]).toBe("A non-numeric ID");
    expect(trainNews[2]?.[6]).toContain(`"Label": "Texas"`);

    // Pseudo IDs start above the largest numeric ID of all splits (N950, in dev), users in ID order (U2 < U10).
    const pseudo = trainNews.filter((f) => f[2] === "generated");
    expect(pseudo.map((f) => f[0])).toEqual(["N951", "N952", "N953"]);
    expect(pseudo[0]).toEqual(["N951", "finance", "generated", "Pseudo one for U2", "A.", "", "[]", "[]"]);
    expect(pseudo[1]?.[4]).toBe("");
    // U10 is not in dev: its pseudo-news is not added there.
    const devNews = lines(await read(runDir, "dev", "news.tsv"));
    expect(devNews.filter((f) => f[2] === "generated").map((f) => f[0])).toEqual(["N951", "N952"]);

    // Histories: pseudo IDs at the end, on every row of the user, in every split; impressions untouched.
    const trainB = lines(await read(runDir, "train", "behaviors.tsv"));
    expect(trainB.map((f) => f[3])).toEqual(["N100 N953", "N101 N102 N951 N952", "N100 N101 N102 N120 NX7 N100", "", "N101 N102 N951 N952"]);
    const devB = lines(await read(runDir, "dev", "behaviors.tsv"));
    expect(devB[0]?.[3]).toBe("N101 N102 N950 N951 N952");
    expect(devB[1]?.[3]).toBe("N100");

    // Original and enhanced titles side by side.
    const titles = lines(await read(runDir, "train", "news_titles.tsv"));
    expect(titles[0]).toEqual(["N100", `"Quoted" start of a title`, "Enhanced N100 title"]);
    expect(titles.find((f) => f[0] === "NX7")).toEqual(["NX7", "A non-numeric ID", ""]);

    // Profiles per split: user ID order, '|' between list entries (topics contain spaces), empty
    // regions allowed. U3's profile was written from their 6 train clicks: dev's history (N100) lacks them.
    expect(await read(runDir, "train", "user_profiles.tsv")).toBe("U2\tfinance|social media\tTexas|New York\nU3\tweather\t\nU10\teconomy\t\n");
    expect(await read(runDir, "dev", "user_profiles.tsv")).toBe("U2\tfinance|social media\tTexas|New York\n");
    expect(existsSync(join(runDir, "user_profiles.tsv"))).toBe(false);

    const manifest = Manifest.parse(JSON.parse(await read(runDir, "manifest.json")));
    expect(manifest.pseudoNews).toEqual({ N951: "U2", N952: "U2", N953: "U10" });
    expect(manifest.stages.summarize!.counts).toMatchObject({ items: 6, merged: 5, missing: 1, failed: 1, invalidRecords: 0 });
    // U3's earliest non-empty history (train) has 6 clicks: warm, although dev's has one.
    expect(manifest.stages.generate!.counts).toMatchObject({ items: 2, merged: 2, missing: 0, inapplicable: 0 });
    expect(manifest.stages.profile!.counts).toMatchObject({ items: 3, merged: 3, missing: 0 });
    expect(manifest.stages.summarize!.usage.inputTokens).toBe(50);
    expect(manifest.stages.summarize!.answeredBy).toEqual([{ provider: "offline", model: "offline-baseline", records: 5 }]);
    expect(manifest.splits.map((s) => [s.name, s.input, s.output.pseudoNews, s.output.historiesExtended, s.output.profiles])).toEqual([
      ["train", "../data/train", 3, 3, 3],
      ["dev", "../data/dev", 2, 1, 1],
    ]);
    expect(r.out).toMatch(/train\/: 8 news \(3 pseudo-news\)/);
    expect(r.out).toMatch(/audit: 9 checked \(5 appended pseudo-news IDs, 4 profile rows\), 0 violations/);
    expect(manifest.audit).toEqual({ pseudoNews: 5, picks: 0, profiles: 4, userFactors: 0, violations: 0 });
    // Nothing of the staging area is left behind.
    expect((await readdir(runDir)).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("copies news rows it does not rewrite byte for byte, bytes that are not UTF-8 included", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    // Latin-1 é (0xE9) in N100's abstract and N120's title, as in a file saved in the wrong encoding;
    // N120's record is its original title: an answer that enhanced nothing.
    const file = join(data, "train", "news.tsv");
    const input = Buffer.from((await read(data, "train", "news.tsv")).replace("An abstract.", "Caf\u00e9 abstract.").replace("Storm coming", "Storm coming to Montr\u00e9al"), "latin1");
    await writeFile(file, input);
    await appendFile(join(runDir, "summarize.jsonl"), record("summarize", "N120", { title: "Storm coming to Montr\uFFFDal" }));
    const inputLines = (b: Buffer) => b.toString("latin1").split("\n").filter(Boolean);
    const mergedNews = async (out: string) => inputLines(await readFile(join(out, "train", "news.tsv"))).slice(0, 5);

    const keep = join(root, "keep");
    const k = await mergeRun(root, ["--data", data, "--records", runDir, "--out", keep, "--title", "keep"]);
    expect(k.code, k.err).toBe(0);
    expect(await mergedNews(keep)).toEqual(inputLines(input));

    const replace = join(root, "replace");
    const r = await mergeRun(root, ["--data", data, "--records", runDir, "--out", replace]);
    expect(r.code, r.err).toBe(0);
    const [n100, n101, n102, n120, nx7] = await mergedNews(replace);
    // Only the title field of a row with an enhanced title changes; its other bytes stay as read.
    expect(n100).toBe(inputLines(input)[0]!.replace(`"Quoted" start of a title`, "Enhanced N100 title"));
    expect(n100).toContain("Caf\u00e9 abstract.");
    expect([n101, n102]).toEqual([inputLines(input)[1]!.replace(/\t[^\t]*\t\t/, "\tEnhanced N101 title\t\t"), inputLines(input)[2]!.replace("Stocks rise", "Enhanced N102 title")]);
    // N120's answer is its title as read (U+FFFD for the bad byte): nothing to rewrite, so the row keeps its 0xE9.
    expect(n120).toBe(inputLines(input)[3]);
    expect(nx7).toBe(inputLines(input)[4]);
    // Enhanced titles counts the three that changed, not N120's unchanged answer.
    const manifest = Manifest.parse(JSON.parse(await read(replace, "manifest.json")));
    expect(manifest.splits.find((s) => s.name === "train")!.output.titlesEnhanced).toBe(3);
    expect(r.out).toMatch(/train\/: 8 news \(3 pseudo-news\), 3 enhanced titles/);
  });

  it("reads CRLF endings, a BOM and a missing final newline, and writes plain LF lines", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    const train = await read(data, "train", "behaviors.tsv");
    await writeFile(join(data, "train", "behaviors.tsv"), "\ufeff" + train.replaceAll("\n", "\r\n").slice(0, -2));
    expect((await mergeRun(root, ["--data", data, "--out", runDir])).code).toBe(0);
    const merged = await read(runDir, "train", "behaviors.tsv");
    expect(merged).not.toMatch(/\r|\ufeff/);
    expect(merged.endsWith("N100-0 N101-1\n")).toBe(true);
    expect(lines(merged).map((f) => f[3])).toEqual(["N100 N953", "N101 N102 N951 N952", "N100 N101 N102 N120 NX7 N100", "", "N101 N102 N951 N952"]);
    expect(lines(merged).map((f) => f[4])).toEqual(lines(train).map((f) => f[4]));
  });

  it("gives byte-identical output for the same inputs, records and options, whatever the order of the records", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    // b's record files hold the same lines in reverse order; both run folders sit at the same
    // relative place, so the manifests name the same paths.
    for (const side of ["a", "b"]) await mkdir(join(root, side, "run"), { recursive: true });
    for (const stage of ["summarize", "profile", "generate"]) {
      const text = await read(runDir, `${stage}.jsonl`);
      const recs = text.split("\n").filter(Boolean);
      expect(recs.length, stage).toBeGreaterThan(1);
      await writeFile(join(root, "a", "run", `${stage}.jsonl`), recs.join("\n") + "\n");
      await writeFile(join(root, "b", "run", `${stage}.jsonl`), [...recs].reverse().join("\n") + "\n");
    }
    for (const side of ["a", "b"]) {
      const r = await mergeRun(root, ["--data", data, "--records", join(root, side, "run"), "--out", join(root, side, "out")]);
      expect(r.code, r.err).toBe(0);
    }
    for (const f of ["train/news.tsv", "train/behaviors.tsv", "train/news_titles.tsv", "train/user_profiles.tsv", "dev/news.tsv", "dev/behaviors.tsv", "dev/user_profiles.tsv", "manifest.json"]) {
      expect(await read(root, "b", "out", f), f).toEqual(await read(root, "a", "out", f));
    }
  });

  it("appends or keeps titles on request", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    await mergeRun(root, ["--data", data, "--out", runDir, "--title", "append"]);
    expect(lines(await read(runDir, "train", "news.tsv"))[1]?.[3]).toBe("Team wins 'big' game & more | stuff Enhanced N101 title");
    await mergeRun(root, ["--data", data, "--out", runDir, "--title", "keep", "--force"]);
    expect(lines(await read(runDir, "train", "news.tsv"))[1]?.[3]).toBe("Team wins 'big' game & more | stuff");
    expect(lines(await read(runDir, "train", "news_titles.tsv"))[1]?.[2]).toBe("Enhanced N101 title");
    expect((await mergeRun(root, ["--data", data, "--out", runDir, "--title", "swap", "--force"])).code).toBe(2);
  });

  it("takes the last valid record of an item and counts the invalid ones", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    await appendFile(
      join(runDir, "summarize.jsonl"),
      record("summarize", "N101", { title: "Second answer" }) +
        record("summarize", "N102", { title: " \t\n " }) + // empty after cleaning: invalid
        record("profile", "N120", { topics: ["weather"], regions: [] }) + // wrong stage
        `{"key":"summarize:N120","stage":"summ`, // torn last line
    );
    await appendFile(join(runDir, "profile.jsonl"), record("profile", "U3", { topics: ["astrology"], regions: [] }));
    const r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(0);
    const news = lines(await read(runDir, "train", "news.tsv"));
    expect(news[1]?.[3]).toBe("Second answer");
    expect(news[2]?.[3]).toBe("Enhanced N102 title");
    expect(await read(runDir, "train", "user_profiles.tsv")).toContain("U3\tweather\t\n");
    const manifest = Manifest.parse(JSON.parse(await read(runDir, "manifest.json")));
    expect(manifest.stages.summarize!.counts.invalidRecords).toBe(3);
    expect(manifest.stages.profile!.counts.invalidRecords).toBe(1);
    expect(r.err).toMatch(/3 invalid summarize record line\(s\) skipped, e\.g\. .*summarize\.jsonl:7: output rejected/);
  });

  it("merges records from several shard folders", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    const shard = join(root, "shard2");
    await mkdir(shard);
    await writeFile(join(shard, "summarize.jsonl"), record("summarize", "NX7", { title: "From shard two" }, "anthropic", "claude-haiku-4-5"));
    const out = join(root, "merged");
    expect((await mergeRun(root, ["--data", data, "--records", runDir, "--records", shard, "--out", out])).code).toBe(0);
    const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
    expect(manifest.stages.summarize!.counts).toMatchObject({ merged: 6, missing: 0 });
    expect(manifest.stages.summarize!.answeredBy.map((a) => a.provider)).toEqual(["anthropic", "offline"]);
    expect(manifest.records).toEqual(["../run", "../shard2"]);
  });

  it("reads prompt hashes from the stage meta files, and not their cost", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    const meta = {
      stage: "summarize",
      provider: "offline",
      model: "offline-baseline",
      promptHashes: { "summarize.system.md": "abc", "summarize.user.md": "def" },
      options: {},
      splits: [],
      counts: { items: 6, done: 5, cached: 0, retried: 0, failed: 1, failedByReason: { invalid: 1 } },
      usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
      costUsd: 0.25,
      finishedAt: "2026-01-01T00:00:00Z",
    };
    await writeFile(join(runDir, "summarize.meta.json"), JSON.stringify(meta));
    let r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(0);
    // The meta names no splits: nothing to compare. Splits other than the input are worth a warning.
    expect(r.err).not.toMatch(/were made from/);
    await writeFile(join(runDir, "summarize.meta.json"), JSON.stringify({ ...meta, splits: [{ name: "MINDlarge_train", newsBytes: 1, behaviorsBytes: 2 }] }));
    r = await mergeRun(root, ["--data", data, "--out", runDir, "--force"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: .*summarize\.meta\.json: the summarize records were made from MINDlarge_train \(1\+2 bytes\); merging dev \(\d+\+\d+ bytes\), train/);
    const manifest = Manifest.parse(JSON.parse(await read(runDir, "manifest.json")));
    expect(manifest.stages.summarize!.promptHashes).toEqual({ "summarize.system.md": ["abc"], "summarize.user.md": ["def"] });
    // The meta's cost is its last run's (written before the rename as costUsd, still read): the
    // stage's cost is what its records were billed, and offline answers cost nothing.
    expect(manifest.stages.summarize!.costUsd).toBe(0);
    expect(manifest.stages.profile!.costUsd).toBe(0);

    await writeFile(join(runDir, "profile.meta.json"), "{}");
    r = await mergeRun(root, ["--data", data, "--out", runDir, "--force"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/profile\.meta\.json: not a stage meta file/);
  });
});

describe("merge carries, retitles and refuses an empty run", () => {
  it("hard-links the other files of a split folder and lists them; trainer caches stay behind", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    for (const f of ["entity_embedding.vec", "relation_embedding.vec"]) await writeFile(join(data, "train", f), `Q1\t0.1 0.2\n${f}\n`);
    await writeFile(join(data, "train", "parsed_news.pkl"), "a trainer's cache of the original data");
    const r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: train: not carried, trainer caches of the original data: parsed_news\.pkl/);
    expect(r.out).toMatch(/carried entity_embedding\.vec, relation_embedding\.vec/);
    for (const f of ["entity_embedding.vec", "relation_embedding.vec"]) {
      expect(await read(runDir, "train", f)).toBe(await read(data, "train", f));
      expect((await stat(join(runDir, "train", f))).ino).toBe((await stat(join(data, "train", f))).ino);
    }
    expect(existsSync(join(runDir, "train", "parsed_news.pkl"))).toBe(false);
    const manifest = Manifest.parse(JSON.parse(await read(runDir, "manifest.json")));
    expect(manifest.splits.map((s) => s.output.carried)).toEqual([["entity_embedding.vec", "relation_embedding.vec"], []]);
  });

  it("gives offline pseudo-news the enhanced title of the news it was taken from, unless that copies a candidate", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    const taken = (from: string) => ({ title: `Original ${from}`, abstract: "", category: "news", retrievedFrom: from });
    await writeFile(join(runDir, "generate.jsonl"), record("generate", "U10", { items: [taken("N120"), taken("NX7")] }));
    // NX7's enhanced title is a near copy of "Stocks rise" (N102), which U10 was shown.
    await appendFile(join(runDir, "summarize.jsonl"), record("summarize", "NX7", { title: "Stocks rise" }));
    await writeFile(join(runDir, "describe.jsonl"), record("describe", "category:news", { description: "Stories of the day." }));
    await writeFile(join(runDir, "factors-news.jsonl"), record("factors-news", "N120", Object.fromEntries(FACTORS.map((f) => [f.name, "none"]))));
    expect((await mergeRun(root, ["--data", data, "--out", runDir, "--describe", "abstract"])).code).toBe(0);
    const pseudo = () => read(runDir, "train", "news.tsv").then((t) => lines(t).filter((f) => f[2] === "generated").map((f) => f.slice(3, 5)));
    expect(await pseudo()).toEqual([["Enhanced N120 title", "Stories of the day."], ["Original NX7", "Stories of the day."]]);
    // The counts take the pseudo-news rows that carry the edit, as written: five of train's input
    // rows have an enhanced title, and so has N120's copy, not NX7's (its title stayed); all four
    // rows of category news, the two copies among them, got the description. news_factors.tsv
    // has N120's line only, none for its copy.
    const output = async () => Manifest.parse(JSON.parse(await read(runDir, "manifest.json"))).splits.find((s) => s.name === "train")!.output;
    expect(await output()).toMatchObject({ pseudoNews: 2, titlesEnhanced: 6, newsDescribed: 4, newsFactors: 1 });
    expect(lines(await read(runDir, "train", "news_factors.tsv")).map((f) => f[0])).toEqual(["N120"]);
    expect((await mergeRun(root, ["--data", data, "--out", runDir, "--title", "keep", "--force"])).code).toBe(0);
    expect(await pseudo()).toEqual([["Original N120", ""], ["Original NX7", ""]]);
    // --title keep: the enhanced titles are in news_titles.tsv only, which has no line for a pseudo-news row.
    expect(await output()).toMatchObject({ pseudoNews: 2, titlesEnhanced: 5, newsDescribed: 0 });
  });

  it("stops when no stage has a valid record, unless --allow-empty", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeFile(join(runDir, "profile.jsonl"), record("profile", "U3", { topics: ["astrology"], regions: [] }));
    let r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no valid record of any stage in .*: nothing to merge\. .*--allow-empty writes plain copies/);
    expect(await readdir(runDir)).toEqual(["profile.jsonl"]);
    r = await mergeRun(root, ["--data", data, "--out", runDir, "--allow-empty"]);
    expect(r.code).toBe(0);
    for (const f of ["news.tsv", "behaviors.tsv"]) expect(await read(runDir, "train", f)).toBe(await read(data, "train", f));
    expect(Manifest.parse(JSON.parse(await read(runDir, "manifest.json"))).options.allowEmpty).toBe(true);
  });
});

describe("merge cold users", () => {
  it("takes the cold bound from the generate stage's --cold-max in its meta file", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    expect((await mergeRun(root, ["--data", data, "--out", runDir])).code).toBe(0);
    // By their earliest non-empty history (train): U2 has 2 clicks, U10 one, U3 six.
    expect(Manifest.parse(JSON.parse(await read(runDir, "manifest.json"))).users.cold).toBe(2);
    const meta = {
      stage: "generate",
      provider: "offline",
      model: "offline-baseline",
      promptHashes: {},
      options: { coldMax: 1, k: 2, chain: false, limit: null, shard: null },
      splits: [],
      counts: { items: 3, done: 2, cached: 0, retried: 0, failed: 0, failedByReason: {} },
      usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 },
      costUsd: 0,
      finishedAt: "2026-01-01T00:00:00Z",
    };
    await writeFile(join(runDir, "generate.meta.json"), JSON.stringify(meta));
    expect((await mergeRun(root, ["--data", data, "--out", runDir, "--force"])).code).toBe(0);
    expect(Manifest.parse(JSON.parse(await read(runDir, "manifest.json"))).users.cold).toBe(1);
  });
});

describe("merge refuses bad input", () => {
  it("stops on records of another dataset, with counts and examples, and writes nothing", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeFile(join(runDir, "summarize.jsonl"), ["N7000", "N7001", "N100"].map((id) => record("summarize", id, { title: "T" })).join(""));
    let r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/2 of 3 summarize records name news IDs not in any --data split \(e\.g\. N7000, N7001\)/);
    expect(r.err).toMatch(/--allow-unknown/);
    expect(existsSync(join(runDir, "train"))).toBe(false);

    await writeFile(join(runDir, "summarize.jsonl"), "");
    await writeFile(join(runDir, "profile.jsonl"), record("profile", "U999", { topics: ["health"], regions: [] }, "offline", "offline-baseline", { split: "train", clicks: ["N100"] }));
    r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/1 of 1 profile records name user IDs not in any --data split \(e\.g\. U999\)/);
    expect(await readdir(runDir)).toEqual(["profile.jsonl", "summarize.jsonl"]);

    r = await mergeRun(root, ["--data", data, "--out", runDir, "--allow-unknown"]);
    expect(r.code).toBe(0);
    const manifest = Manifest.parse(JSON.parse(await read(runDir, "manifest.json")));
    expect(manifest.stages.profile!.counts).toMatchObject({ merged: 0, unknownRecords: 1 });
    expect(await read(runDir, "train", "user_profiles.tsv")).toBe("");
  });

  it("never overwrites merged output without --force, and never writes over its input", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    expect((await mergeRun(root, ["--data", data, "--out", runDir])).code).toBe(0);
    await writeFile(join(runDir, "train", "parsed_news.pkl"), "stale trainer cache");
    const before = await read(runDir, "train", "news.tsv");
    await writeFile(join(runDir, "summarize.jsonl"), record("summarize", "N100", { title: "Changed" }));
    let r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already holds merged output \(train, dev, category_descriptions\.tsv, manifest\.json\); pass --force/);
    expect(await read(runDir, "train", "news.tsv")).toBe(before);

    r = await mergeRun(root, ["--data", data, "--out", runDir, "--force"]);
    expect(r.code).toBe(0);
    expect(lines(await read(runDir, "train", "news.tsv"))[0]?.[3]).toBe("Changed");
    expect(existsSync(join(runDir, "train", "parsed_news.pkl"))).toBe(false);

    r = await mergeRun(root, ["--data", join(data, "train"), "--out", data, "--force"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/would overwrite the input split/);
  });

  it("leaves no manifest.json behind when a --force re-merge stops while moving files into place", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    expect((await mergeRun(root, ["--data", data, "--out", runDir])).code).toBe(0);
    // The old top-level user_profiles.tsv is removed on --force; a non-empty folder of that name cannot be,
    // so the move stops after the manifest was removed.
    await mkdir(join(runDir, "user_profiles.tsv", "x"), { recursive: true });
    const r = await mergeRun(root, ["--data", data, "--out", runDir, "--force"]);
    expect(r.code).not.toBe(0);
    expect(existsSync(join(runDir, "manifest.json"))).toBe(false);
  });

  it("removes the staging folders that stopped merges left behind, not a running merge's", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    // A PID whose process has ended, and one that runs (this test's parent).
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    for (const pid of [gone, process.ppid]) await mkdir(join(runDir, `.merge-staging-${pid}`, "train"), { recursive: true });
    await writeFile(join(runDir, `.merge-staging-${gone}`, "train", "behaviors.tsv"), "half written");
    expect((await mergeRun(root, ["--data", data, "--out", runDir])).code).toBe(0);
    expect((await readdir(runDir)).filter((n) => n.startsWith(".merge-staging-"))).toEqual([`.merge-staging-${process.ppid}`]);
  });

  it("names file and line of a malformed input line", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    await appendFile(join(data, "dev", "behaviors.tsv"), "9\tU5\t11/16/2019 10:00:00 AM\tN100\n");
    const r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/dev\/behaviors\.tsv:3: expected 5 tab-separated fields \(behaviors\.tsv\), found 4/);
    expect((await readdir(runDir)).sort()).toEqual(["generate.jsonl", "profile.jsonl", "summarize.jsonl"]);
  });

  it("checks the input splits before merging, and remembers a split that passed only once the merge is complete", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    const devBehaviors = join(data, "dev", "behaviors.tsv");
    const good = await readFile(devBehaviors);
    await appendFile(devBehaviors, "9\tU5\t11/16/2019 10:00:00 AM\tN404\tN100-1\n");
    const r = await mergeRun(root, ["--data", data, "--out", runDir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/input split .*dev: history IDs missing from news\.tsv .*dev\/behaviors\.tsv:3 \[History\]: N404\. Nothing was written/);
    expect((await readdir(runDir)).sort()).toEqual(["generate.jsonl", "profile.jsonl", "summarize.jsonl"]);

    await writeFile(devBehaviors, good);
    expect((await mergeRun(root, ["--data", data, "--out", runDir])).code).toBe(0);
    const stamps = JSON.parse(await read(runDir, "inputs-checked.json")) as { passed: string[] };
    expect(stamps.passed.map((p) => p.split("|")[0])).toEqual(["merge", "merge"]);
    // A split a stage command checked (strictly) is taken as checked: nothing is added to the file.
    const other = join(root, "other");
    await mkdir(other);
    for (const f of ["generate.jsonl", "profile.jsonl", "summarize.jsonl"]) await writeFile(join(other, f), await readFile(join(runDir, f)));
    const strict = JSON.stringify({ passed: stamps.passed.map((p) => p.replace(/^merge\|/, "strict|")) });
    await writeFile(join(other, "inputs-checked.json"), strict);
    expect((await mergeRun(root, ["--data", data, "--out", other])).code).toBe(0);
    expect(await read(other, "inputs-checked.json")).toBe(strict);
  });

  it("requires --data and --out", async () => {
    const { root } = await makeDataset();
    const r = await mergeRun(root, ["--out", "x"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--data/);
  });
});

describe("ID helpers", () => {
  it("orders IDs by their number and finds the largest numeric news ID", () => {
    expect(["U10", "U2", "U1", "X", "U02"].sort(compareIds)).toEqual(["U1", "U02", "U2", "U10", "X"]);
    expect(maxNumericNewsId(["N5", "N-1", "NX9", "N12", "M99", "N"])).toBe(12n);
  });

  it("orders any mix of IDs the same way whatever order they come in", () => {
    // U1x sorted between U2 and U10 by code units while U2 < U10 by number: a cycle, so the sort
    // result (user_profiles.tsv, pseudo-news IDs) depended on the order of the record lines.
    const ids = ["U2", "U10", "U1x", "N7", "N07b", "X"];
    const expected = ["N7", "N07b", "U1x", "U2", "U10", "X"];
    for (let shift = 0; shift < ids.length; shift++) {
      const rotated = [...ids.slice(shift), ...ids.slice(0, shift)];
      expect(sortIds(rotated)).toEqual(expected);
      expect(sortIds([...rotated].reverse())).toEqual(expected);
    }
  });

  it("sorts IDs of one letter and a number by the number, as compareIds does", () => {
    // A fixed-seed generator: the same IDs on every run, repeats and numbers of 1 to 15 digits included.
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const ids = Array.from({ length: 5000 }, () => `U${random(10) < 8 ? random(200_000) : Number(`${1 + random(9)}${"9".repeat(random(14))}`)}`);
    ids.push("U0", "U999999999999999", ids[0]!);
    const bySort = [...ids].sort(compareIds);
    expect(sortIds(ids)).toEqual(bySort);
    // One ID of another form and the general order decides: a leading zero, another letter, no digits.
    for (const odd of ["U007", "N5", "U", "U12a", "Ü5"]) expect(sortIds([...ids, odd])).toEqual([...ids, odd].sort(compareIds));
    // Numbers past a double's exact range.
    const long = ["U12345678901234567", "U12345678901234566"];
    expect(sortIds([...ids, ...long])).toEqual([...ids, ...long].sort(compareIds));
  });
});
