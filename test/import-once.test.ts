import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandContext } from "../src/cli/command.js";
import { judgeOnceLogs, ONCE_VARIANTS, type StageImport } from "../src/import/once.js";
import { onceProfileAsJson } from "../src/import/once-logs.js";
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
    expect(file).toMatchObject({ file: "news_summarizer.log", lines: 8, imported: 2, continuations: 1, unknownIds: ["N99"] });
    expect(file!.refused).toEqual({ "malformed line": 1, "invalid answer": 2, "not in --data": 1, "answered again later": 1 });
    const out = Object.fromEntries(summarize!.items.map((i) => [i.itemId, i]));
    expect(out.N1).toMatchObject({ output: { title: "Tiger Woods wins the 2019 Masters at Augusta" }, origins: [{ file: "news_summarizer.log", line: 2 }] });
    expect(out.N4).toMatchObject({ output: { title: "A storm hits the Texas coast on Monday" }, origins: [{ line: 8 }] });
    expect(out.N2!.error).toMatch(/^news_summarizer\.log:3: the answer has 2 lines/);
    expect(out.N3!.error).toMatch(/^news_summarizer\.log:5: the answer is empty/);
    expect(Object.keys(out).sort()).toEqual(["N1", "N2", "N3", "N4"]);
  });

  it("profile: ONCE's list format through the same normalisation and vocabularies", async () => {
    const { profile } = await judge();
    const [file] = profile!.files;
    expect(file).toMatchObject({ file: "user_profiler.log", lines: 8, imported: 2, unknownIds: ["U9"] });
    expect(file!.refused).toEqual({ "wrong format": 1, "not an item": 1, "invalid answer": 1, "index past the vocabulary": 1, "malformed line": 1, "not in --data": 1 });
    const out = Object.fromEntries(profile!.items.map((i) => [i.itemId, i]));
    expect(out.U1!.output).toEqual({ topics: ["finance", "health", "technology"], regions: ["Texas"] });
    expect(out.U5!.output).toEqual({ topics: ["food"], regions: [] });
    expect(out.U2!.error).toMatch(/^user_profiler\.log:2: the answer is not in ONCE's format/);
    expect(out.U4!.error).toMatch(/^user_profiler\.log:4: "sports" is not a topic/);
    expect(out.U3).toBeUndefined();
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
    expect(first.stdout).toContain("summarize: 4 items → 2 records, 2 failures written");
    expect(first.stdout).toMatch(/news_summarizer\.log: 8 lines; 2 imported; refused: invalid answer 2, malformed line 1, not in --data 1, answered again later 1; 1 line continuing an answer; IDs not in --data: N99/);
    expect(first.stdout).toMatch(/user_profiler\.log: 8 lines; 2 imported; refused: .*index past the vocabulary 1/);
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
    expect(failures.map((f) => [f.itemId, f.reason])).toEqual([["N2", "invalid"], ["N3", "invalid"]]);
    expect(failures[0]).toMatchObject({ provider: "imported", message: expect.stringMatching(/^news_summarizer\.log:3: the answer has 2 lines/), lastAnswer: "[newtitle] Stock markets rally as US inflation cools\nNote: I kept the title neutral." });
    const meta = JSON.parse(await readFile(join(root, "out", "generate.meta.json"), "utf8")) as Record<string, unknown>;
    expect(meta).toMatchObject({ provider: "imported", model: "gpt-3.5-turbo", costUsd: 0, options: { coldMax: 5, importedFrom: ["generator_v1.log", "generator_v2.log"] } });

    const before = await Promise.all(["summarize", "profile", "generate"].flatMap((s) => [`${s}.jsonl`, `${s}.failures.jsonl`]).map((f) => readFile(join(root, "out", f), "utf8")));
    const again = await imp();
    expect(again.stdout).toContain("summarize: 4 items → 0 records, 0 failures written (4 already in out from an earlier import)");
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
    expect(manifest.audit).toMatchObject({ pseudoNews: 5, profiles: 3, violations: 0 });
  });

  it("leaves a later live run only what the import did not cover", async () => {
    const { imp, cli, lines } = await setup();
    await imp(["--stages", "summarize"]);
    const live = await cli(["summarize", "--data", "mind", "--out", "out", "--provider", "offline"]);
    expect(live.code).toBe(0);
    const records = await lines("summarize.jsonl");
    const by = (id: string) => records.filter((r) => r.itemId === id).map((r) => r.provider);
    // N1 and N4 were imported; N2 and N3 failed in the import and are asked; N5..N8 had no answer.
    expect(by("N1")).toEqual(["imported"]);
    expect(by("N4")).toEqual(["imported"]);
    for (const id of ["N2", "N3", "N5", "N6", "N7", "N8"]) expect(by(id)).toEqual(["offline"]);

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
