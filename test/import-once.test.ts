import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandContext } from "../src/cli/command.js";
import { countLeftOut } from "../src/engine/types.js";
import { judgeOnceLogs, ONCE_VARIANTS, type StageImport } from "../src/import/once.js";
import { onceProfileAsJson } from "../src/import/once-logs.js";
import { collectReport } from "../src/report/collect.js";
import { renderReport } from "../src/report/html.js";
import { StageConfig } from "../src/stages/options.js";
import { writeOnceFixture } from "./import-once.fixture.js";
import { runCliCaptured } from "./helpers/cli.js";
import { tempDir } from "./helpers/temp.js";
import { Writable } from "node:stream";


const quiet = () => new Writable({ write: (_c, _e, cb) => cb() });

async function judge(): Promise<Record<string, StageImport>> {
  const root = await tempDir("gm-once-");
  const { train, dev, once } = await writeOnceFixture(root);
  const ctx: CommandContext = { env: {}, cwd: root, stdout: quiet(), stderr: quiet() };
  const config = StageConfig.parse({ data: [train, dev], out: join(root, "out") });
  const stages = await judgeOnceLogs({ folder: once, stages: ["summarize", "profile", "generate"], variant: ONCE_VARIANTS.plain, config }, ctx);
  return Object.fromEntries(stages.map((s) => [s.stage, s]));
}

describe("ONCE's profiler format", () => {
  it("reads [topics] and [region] lists into the profile stage's JSON", () => {
    expect(onceProfileAsJson("[topics]\n- health\n- economy\n[region]\n- Texas\n- Ohio")).toEqual({ ok: true, json: JSON.stringify({ topics: ["health", "economy"], regions: ["Texas", "Ohio"] }) });
    expect(onceProfileAsJson("[Topics]:\n1. health\n2) travel\n\n[regions] (optional)\n* N/A")).toEqual({ ok: true, json: JSON.stringify({ topics: ["health", "travel"], regions: [] }) });
    expect(onceProfileAsJson("[topics] health, finance")).toEqual({ ok: true, json: JSON.stringify({ topics: ["health", "finance"], regions: [] }) });
  });

  it("refuses other text", () => {
    expect(onceProfileAsJson("The user likes sports.")).toMatchObject({ ok: false, error: expect.stringMatching(/not in ONCE's format.*'The user likes sports\.'/) });
    expect(onceProfileAsJson("[region]\n- Texas")).toMatchObject({ ok: false, error: "the answer has no [topics] section" });
    expect(onceProfileAsJson("[topics]\n- health\nI hope this helps!")).toMatchObject({ ok: false, error: expect.stringMatching(/'I hope this helps!'/) });
  });
});

describe("judging ONCE's logs with the stages' own parsers", () => {
  it("summarize: one record per news item, its last valid answer; the rest counted by reason", async () => {
    const { summarize } = await judge();
    const [file] = summarize!.files;
    expect(file).toMatchObject({ file: "news_summarizer.log", lines: 12, imported: 3, inPart: 1, leftOut: { notes: 1 }, continuations: 3, unknownIds: ["N99"] });
    expect(file!.refused).toEqual({ "malformed line": 1, "invalid answer": 3, "not in --data": 1, "answered again later": 1 });
    const out = Object.fromEntries(summarize!.items.map((i) => [i.itemId, i]));
    expect(out.N1).toMatchObject({ output: { title: "Tiger Woods wins the 2019 Masters at Augusta" }, origins: [{ file: "news_summarizer.log", line: 2 }] });
    expect(out.N1!.leftOut).toBeUndefined();
    expect(out.N4).toMatchObject({ output: { title: "A storm hits the Texas coast on Monday" }, origins: [{ line: 8 }] });
    expect(out.N3!.error).toMatch(/^news_summarizer\.log:5: the answer is empty/);
    expect(Object.keys(out).sort()).toEqual(["N1", "N2", "N3", "N4", "N5", "N6"]);
  });

  it("summarize: a title with a note below keeps the title when the stage's parser takes it alone; nothing else is cut", async () => {
    const { summarize } = await judge();
    const out = Object.fromEntries(summarize!.items.map((i) => [i.itemId, i]));
    expect(out.N2).toMatchObject({ output: { title: "Stock markets rally as US inflation cools" }, leftOut: { notes: ["Note: I kept the title neutral."] } });
    // Two titles are not a title and a note; a reply above a note is no title: both refused as a live first answer is.
    expect(out.N5!.error).toMatch(/^news_summarizer\.log:9: the answer has 2 lines/);
    expect(out.N6!.error).toMatch(/^news_summarizer\.log:11: the answer is a reply, not a title.*\(the note below the title left aside\)$/);
  });

  it("profile: ONCE's list format through the same normalisation and vocabularies", async () => {
    const { profile } = await judge();
    const [file] = profile!.files;
    expect(file).toMatchObject({ file: "user_profiler.log", lines: 9, imported: 3, inPart: 1, leftOut: { topics: 2, regions: 2 }, unknownIds: ["U9"] });
    expect(file!.refused).toEqual({ "wrong format": 1, "not an item": 1, "no topic on the list": 1, "index past the vocabulary": 1, "malformed line": 1, "not in --data": 1 });
    const out = Object.fromEntries(profile!.items.map((i) => [i.itemId, i]));
    expect(out.U1!.output).toEqual({ topics: ["finance", "health", "technology"], regions: ["Texas"] });
    expect(out.U1!.leftOut).toBeUndefined();
    expect(out.U5!.output).toEqual({ topics: ["food"], regions: [] });
    expect(out.U3).toBeUndefined();
  });

  it("profile: values off GENRE's lists are left out in order, and the record says which; no topic left is no profile", async () => {
    const { profile } = await judge();
    const out = Object.fromEntries(profile!.items.map((i) => [i.itemId, i]));
    expect(out.U4).toMatchObject({
      output: { topics: ["travel", "finance"], regions: ["Texas"] },
      leftOut: { topics: ["sports", "entertainment"], regions: ["United States", "New York City"] },
      origins: [{ file: "user_profiler.log", line: 4 }],
    });
    // U2's answers: one not in ONCE's format, then one whose every topic is off the list.
    expect(out.U2!.error).toBe('user_profiler.log:9: none of the topics ("sports", "politics") is on the list');
    expect(out.U2!.origins).toEqual([{ file: "user_profiler.log", line: 2 }, { file: "user_profiler.log", line: 9 }]);
  });

  it("generate: one item per line, several lines of a user in one record, repeats and copies refused", async () => {
    const { generate } = await judge();
    const files = Object.fromEntries(generate!.files.map((f) => [f.file, f]));
    expect(files["generator_v1.log"]).toMatchObject({ lines: 6, imported: 1 });
    expect(files["generator_v1.log"]!.refused).toEqual({ "invalid answer": 3, "not an item": 1, "index past the vocabulary": 1 });
    expect(files["generator_v2.log"]).toMatchObject({ lines: 4, imported: 2 });
    expect(files["generator_v2.log"]!.refused).toEqual({ "repeats another item": 1, "copies the user's impressions": 1 });
    const out = Object.fromEntries(generate!.items.map((i) => [i.itemId, i]));
    expect(out.U1!.output).toEqual({
      items: [
        { title: "PGA Tour announces its new season schedule", abstract: "The tour adds two events.", category: "sports" },
        { title: "Inflation report lifts bank stocks", abstract: "Banks gain.", category: "finance" },
      ],
    });
    expect(out.U1!.origins).toEqual([{ file: "generator_v1.log", line: 1 }, { file: "generator_v2.log", line: 1 }]);
    expect(out.U4).toMatchObject({ output: { items: [{ title: "Electric pickup trucks sell out", category: "autos" }] }, origins: [{ file: "generator_v2.log", line: 3 }] });
    expect(out.U5!.error).toMatch(/^generator_v1\.log:5: item 1 is a near copy of the read title/);
    expect(out.U5!.origins).toEqual([{ file: "generator_v1.log", line: 3 }, { file: "generator_v1.log", line: 5 }]);
    expect(out.U2).toBeUndefined();
  });

  it("records the history each answer counts as written from: the user's source history", async () => {
    const { profile, generate } = await judge();
    const of = (s: StageImport, id: string) => s.items.find((i) => i.itemId === id)!.request.source;
    // U1's earliest non-empty history is train's (N1 N2); the prompt lists the most recent first.
    expect(of(profile!, "U1")).toEqual({ split: "MINDtiny_train", clicks: ["N2", "N1"] });
    expect(of(generate!, "U1")).toEqual({ split: "MINDtiny_train", clicks: ["N2", "N1"] });
    expect(of(generate!, "U4")).toEqual({ split: "MINDtiny_dev", clicks: ["N7"] });
  });
});

describe("what answers kept in part leave out", () => {
  it("is counted by kind, from a record's lists or from counts already made, kinds in the order they first come", () => {
    const counts = countLeftOut({}, { topics: ["sports", "politics"], notes: ["Note: kept neutral."] });
    expect(counts).toEqual({ topics: 2, notes: 1 });
    expect(countLeftOut(counts, { regions: 3, topics: 1 })).toBe(counts);
    expect(Object.entries(counts)).toEqual([["topics", 3], ["notes", 1], ["regions", 3]]);
  });
});

describe("genre-mind import once", () => {
  async function setup() {
    const root = await tempDir("gm-once-cli-");
    const paths = await writeOnceFixture(root);
    const cli = (args: string[]) => runCliCaptured(args, { cwd: root });
    const imp = (extra: string[] = []) => cli(["import", "once", "once", "--data", "mind", "--out", "out", "--variant", "plain", ...extra]);
    const lines = async (file: string) => (await readFile(join(root, "out", file), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    return { root, paths, cli, imp, lines };
  }

  it("writes records and failures through the store, says what it did per file, and appends nothing the second time", async () => {
    const { root, imp, lines } = await setup();
    const first = await imp();
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("summarize: 6 items → 3 records, 3 failures written");
    expect(first.stdout).toContain(
      "news_summarizer.log: 12 lines; 3 imported (1 in part, leaving out 1 note below a title); refused: invalid answer 3, malformed line 1, not in --data 1, answered again later 1; 3 lines continuing an answer; IDs not in --data: N99",
    );
    expect(first.stdout).toMatch(/user_profiler\.log: 9 lines; 3 imported \(1 in part, leaving out 2 off-list topics, 2 off-list regions\); refused: [^\n]*no topic on the list 1/);
    expect(first.stdout).toMatch(/user_profiler\.log: [^\n]*index past the vocabulary 1/);
    expect(first.stdout).toContain("generate: 3 items → 2 records, 1 failure written");
    const records = await lines("generate.jsonl");
    expect(records.map((r) => r.itemId)).toEqual(["U1", "U4"]);
    expect(records[0]).toMatchObject({
      stage: "generate",
      provider: "imported",
      model: "gpt-3.5-turbo",
      attempts: 1,
      source: { split: "MINDtiny_train", clicks: ["N2", "N1"] },
      origin: [{ file: "generator_v1.log", line: 1 }, { file: "generator_v2.log", line: 1 }],
    });
    expect(String(records[0]!.key)).toMatch(/^imported-[0-9a-f]{64}$/);
    const failures = await lines("summarize.failures.jsonl");
    expect(failures.map((f) => [f.itemId, f.reason])).toEqual([["N3", "invalid"], ["N5", "invalid"], ["N6", "invalid"]]);
    expect(failures[1]).toMatchObject({
      provider: "imported",
      message: expect.stringMatching(/^news_summarizer\.log:9: the answer has 2 lines/),
      lastAnswer: "[newtitle] Florida's best beaches for a winter escape\n[newtitle] The best beaches in Florida this winter",
    });
    const summaries = await lines("summarize.jsonl");
    expect(summaries.find((r) => r.itemId === "N2")).toMatchObject({ output: { title: "Stock markets rally as US inflation cools" }, leftOut: { notes: ["Note: I kept the title neutral."] } });
    expect(summaries.find((r) => r.itemId === "N1")).not.toHaveProperty("leftOut");
    expect((await lines("profile.jsonl")).find((r) => r.itemId === "U4")).toMatchObject({ leftOut: { topics: ["sports", "entertainment"], regions: ["United States", "New York City"] } });
    const meta = JSON.parse(await readFile(join(root, "out", "generate.meta.json"), "utf8")) as Record<string, unknown>;
    expect(meta).toMatchObject({ provider: "imported", model: "gpt-3.5-turbo", runCostUsd: 0, options: { coldMax: 5, importedFrom: ["generator_v1.log", "generator_v2.log"] } });

    const before = await Promise.all(["summarize", "profile", "generate"].flatMap((s) => [`${s}.jsonl`, `${s}.failures.jsonl`]).map((f) => readFile(join(root, "out", f), "utf8")));
    const again = await imp();
    expect(again.stdout).toContain("summarize: 6 items → 0 records, 0 failures written (6 already in out from an earlier import)");
    const after = await Promise.all(["summarize", "profile", "generate"].flatMap((s) => [`${s}.jsonl`, `${s}.failures.jsonl`]).map((f) => readFile(join(root, "out", f), "utf8")));
    expect(after).toEqual(before);
  });

  it("merges like any other records", async () => {
    const { root, imp, cli } = await setup();
    await imp(["--model", "gpt-3.5-turbo-0613"]);
    const merged = await cli(["merge", "--data", "mind", "--out", "out"]);
    expect(merged.code).toBe(0);
    const news = await readFile(join(root, "out", "MINDtiny_dev", "news.tsv"), "utf8");
    expect(news).toContain("\tA storm hits the Texas coast on Monday\t");
    expect(news).toMatch(/\tgenerated\tPGA Tour announces its new season schedule\t/);
    const manifest = JSON.parse(await readFile(join(root, "out", "manifest.json"), "utf8")) as {
      stages: Record<string, { answeredBy: { provider: string; model: string }[] }>;
      audit: unknown;
    };
    expect(manifest.stages.generate!.answeredBy).toMatchObject([{ provider: "imported", model: "gpt-3.5-turbo-0613" }]);
    // U1's two items in train and dev (train's history holds their source), U4's one in dev: all audited.
    // Profiles: U1 in train and dev, U4 (kept in part) and U5 in dev.
    expect(manifest.audit).toMatchObject({ pseudoNews: 5, profiles: 4, violations: 0 });
    expect(await readFile(join(root, "out", "MINDtiny_dev", "user_profiles.tsv"), "utf8")).toMatch(/^U4\ttravel\|finance\tTexas$/m);

    // The report counts the answers kept in part and what their records leave out.
    const html = renderReport(await collectReport(join(root, "out")));
    const inPart = /<p class="muted" id="in-part">([^<]*(?:<b>[^<]*<\/b>[^<]*)*)<\/p>/.exec(html)?.[1];
    expect(inPart).toContain("<b>summarize</b> 1 (1 note below a title left out)");
    expect(inPart).toContain("<b>profile</b> 1 (2 off-list topics, 2 off-list regions left out)");
  });

  it("reports an item kept in part as whole once a later record answers it whole", async () => {
    const { root, imp, lines } = await setup();
    await imp(["--stages", "summarize"]);
    const inPart = async () => (await collectReport(join(root, "out"))).glance.find((g) => g.stage === "summarize")!.inPart;
    expect(await inPart()).toEqual({ items: 1, leftOut: { notes: 1 } });
    const n2 = (await lines("summarize.jsonl")).find((r) => r.itemId === "N2")!;
    const whole: Record<string, unknown> = { ...n2, key: "a-later-answer", output: { title: "Stocks rally as inflation cools" } };
    delete whole.leftOut;
    await appendFile(join(root, "out", "summarize.jsonl"), JSON.stringify(whole) + "\n");
    expect(await inPart()).toEqual({ items: 0, leftOut: {} });
  });

  it("writes the record of an answer an earlier import refused whole and this one keeps in part", async () => {
    const { root, imp, lines } = await setup();
    await imp(["--stages", "summarize"]);
    // As an import before answers were kept in part left it: N2 a failure, under the key its record has now.
    const file = join(root, "out", "summarize.jsonl");
    const records = await lines("summarize.jsonl");
    const n2 = records.find((r) => r.itemId === "N2")!;
    await writeFile(file, records.filter((r) => r !== n2).map((r) => JSON.stringify(r) + "\n").join(""));
    const failure = { key: n2.key, stage: "summarize", itemId: "N2", provider: "imported", model: n2.model, origin: n2.origin, reason: "invalid", message: "the answer has 2 lines", usage: n2.usage, attempts: 1 };
    await appendFile(join(root, "out", "summarize.failures.jsonl"), JSON.stringify(failure) + "\n");
    const again = await imp(["--stages", "summarize"]);
    expect(again.stdout).toContain("summarize: 6 items → 1 record, 0 failures written (5 already in out from an earlier import)");
    expect((await lines("summarize.jsonl")).filter((r) => r.itemId === "N2")).toMatchObject([{ key: n2.key, leftOut: { notes: ["Note: I kept the title neutral."] } }]);
  });

  it("leaves a later live run only what the import did not cover", async () => {
    const { imp, cli, lines } = await setup();
    await imp(["--stages", "summarize"]);
    const live = await cli(["summarize", "--data", "mind", "--out", "out", "--provider", "offline"]);
    expect(live.code).toBe(0);
    const records = await lines("summarize.jsonl");
    const by = (id: string) => records.filter((r) => r.itemId === id).map((r) => r.provider);
    // N1, N2 (without its note) and N4 were imported; N3, N5 and N6 failed in the import and are asked; N7, N8 had no answer.
    for (const id of ["N1", "N2", "N4"]) expect(by(id)).toEqual(["imported"]);
    for (const id of ["N3", "N5", "N6", "N7", "N8"]) expect(by(id)).toEqual(["offline"]);

    // generate: U1 and U4 were imported from their source histories; U5's answers all failed.
    await imp(["--stages", "generate"]);
    expect((await cli(["generate", "--data", "mind", "--out", "out", "--provider", "offline"])).code).toBe(0);
    const generated = await lines("generate.jsonl");
    const gen = (id: string) => generated.filter((r) => r.itemId === id).map((r) => r.provider);
    expect(gen("U1")).toEqual(["imported"]);
    expect(gen("U4")).toEqual(["imported"]);
    expect(gen("U5")).toEqual(["offline"]);
  });

  it("stops on a source, stage, variant or file it does not know", async () => {
    const { imp, cli } = await setup();
    const unknown = await cli(["import", "genre", "once", "--data", "mind", "--out", "out"]);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown source 'genre': expected once/) });
    expect(await imp(["--stages", "summarize,rewrite"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--stages: 'rewrite' is not a stage/) });
    expect(await cli(["import", "once", "once", "--data", "mind", "--out", "out", "--variant", "v7"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--variant: 'v7' is neither chain nor plain nor a log file name/) });
    const missing = await cli(["import", "once", "once", "--data", "mind", "--out", "out", "--stages", "generate"]);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/once\/chain_v5\.log: no such file \(ONCE's generator log\)/) });
  });
});
