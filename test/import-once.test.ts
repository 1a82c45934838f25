import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CommandContext } from "../src/cli/command.js";
import { judgeOnceLogs, ONCE_VARIANTS, type StageImport } from "../src/import/once.js";
import { onceProfileAsJson } from "../src/import/once-logs.js";
import { StageConfig } from "../src/stages/options.js";
import { writeOnceFixture } from "./import-once.fixture.js";
import { Writable } from "node:stream";

const temps: string[] = [];
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const quiet = () => new Writable({ write: (_c, _e, cb) => cb() });

async function judge(): Promise<Record<string, StageImport>> {
  const root = await mkdtemp(join(tmpdir(), "gm-once-"));
  temps.push(root);
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
    expect(files["generator_v2.log"]).toMatchObject({ lines: 3, imported: 2 });
    expect(files["generator_v2.log"]!.refused).toEqual({ "repeats another item": 1 });
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
});
