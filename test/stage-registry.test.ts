// A stage is a folder (here one file, fixtures/mood-stage.ts, and one prompt pair): registered, it
// runs as its own command, shows its prompt, merges into its own file under the history rule and
// appears in the report, with no other change to genre-mind.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StageRecord } from "../src/engine/types.js";
import { Manifest } from "../src/merge/manifest.js";
import { collectReport } from "../src/report/collect.js";
import { registerStage, stageList } from "../src/stages/registry.js";
import { moodStage } from "./fixtures/mood-stage.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeDataset } from "./merge.fixture.js";

const PROMPTS = join(import.meta.dirname, "fixtures", "mood-prompts");

let f: { root: string; data: string; out: string };
beforeAll(async () => {
  registerStage(moodStage);
  const { root, data, runDir } = await makeDataset();
  f = { root, data, out: runDir };
});
afterAll(async () => {
  await rm(f.root, { recursive: true, force: true });
});

const cli = (...argv: string[]) => runCliCaptured(argv, { cwd: f.root });
const records = async (file: string) => (await readFile(file, "utf8")).split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l)));

describe("a stage added from one file", () => {
  it("is a command with its own flag and help, listed among the stages", async () => {
    expect(stageList()).toMatch(/^summarize, profile, generate, .+ or mood$/);
    const top = await cli("--help");
    expect(top.stdout).toMatch(/\n {2}mood +name the mood of every user.s reading/);
    const help = await cli("mood", "--help");
    expect(help.stdout).toMatch(/--mood-clicks <n> +clicks shown per user \(default 3\)/);
    expect(help.stdout).toContain("Records go to <out>/mood.jsonl");
    const bad = await cli("mood", "--mood-clicks", "x", "--data", f.data);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/genre-mind mood: --mood-clicks: expected a whole number/);
  });

  it("prints the prompt of one of its items", async () => {
    const r = await cli("prompt", "mood", "U3", "--data", f.data, "--prompts", PROMPTS, "--mood-clicks", "2");
    expect(r.code).toBe(0);
    // U3's source is train (N100 N101 N102 N120 NX7 N100): the two most recent clicks, most recent first.
    expect(r.stdout).toContain(`Recent clicks, most recent first:\n"Quoted" start of a title\nA non-numeric ID`);
    expect(r.stdout).toMatch(/=== source ===\ntrain .*clicks N100 NX7\n/);
    expect((await cli("prompt", "mood", "U4", "--data", f.data, "--prompts", PROMPTS)).stderr).toMatch(/user U4 has no clicks/);
  });

  it("runs offline into <out>/mood.jsonl, one record with its source per user with clicks", async () => {
    const r = await cli("mood", "--data", f.data, "--out", f.out, "--prompts", PROMPTS);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const recs = await records(join(f.out, "mood.jsonl"));
    // Offline, the category of the most recent click of the user's source history (all in train here).
    expect(recs.map((x) => [x.itemId, x.output, x.source?.split])).toEqual([
      ["U10", { mood: "news" }, "train"],
      ["U2", { mood: "finance" }, "train"],
      ["U3", { mood: "news" }, "train"],
    ]);
    const meta = JSON.parse(await readFile(join(f.out, "mood.meta.json"), "utf8"));
    expect(meta.options).toMatchObject({ clicks: 3 });
  });

  it("merges into its own per-split file where the history rule allows, and the manifest counts it", async () => {
    const r = await cli("merge", "--data", f.data, "--out", f.out);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    // U2's train source serves dev too (dev's history holds N102 N101); U3's does not (dev's is N100); U10 has no dev row.
    expect(await readFile(join(f.out, "train", "user_moods.tsv"), "utf8")).toBe("U2\tfinance\nU3\tnews\nU10\tnews\n");
    expect(await readFile(join(f.out, "dev", "user_moods.tsv"), "utf8")).toBe("U2\tfinance\n");
    const manifest = Manifest.parse(JSON.parse(await readFile(join(f.out, "manifest.json"), "utf8")));
    expect(manifest.stages.mood!.counts).toMatchObject({ items: 3, merged: 3, missing: 0 });
    expect(manifest.splits.map((s) => s.output.moods)).toEqual([3, 1]);
    expect(manifest.audit).toMatchObject({ moods: 4, violations: 0 });
    expect(manifest.files.perSplit).toContain("user_moods.tsv");
    expect(manifest.files.userMoodsColumns).toEqual(["User ID", "Mood"]);
    expect(r.stdout).toMatch(/train\/: .*, 3 moods/);
    expect(r.stdout).toMatch(/records merged: .*mood 3\/3/);
    // Only the stages the merge had records of are named (profile had none here).
    expect(r.stdout).toMatch(/audit: 4 checked \(0 appended pseudo-news IDs, 4 mood rows\)/);
  });

  it("shows in the report: its row, its card, its chart and its part of the user examples", async () => {
    const model = await collectReport(f.out);
    expect(model.glance.find((g) => g.stage === "mood")).toMatchObject({ answered: 3, items: 3, missing: 0 });
    expect(model.dist.moods).toEqual(new Map([["news", 2], ["finance", 1]]));
    expect(model.users.map((u) => [u.id, u.mood]).sort()).toEqual([["U10", "news"], ["U2", "finance"], ["U3", "news"]]);
    expect(model.usersTotal).toBe(3);
    const r = await cli("report", f.out);
    expect(r.code).toBe(0);
    const html = await readFile(join(f.out, "report.html"), "utf8");
    expect(html).toContain(`<tr data-stage="mood">`);
    expect(html).toContain(`<div class="k">users with a mood</div>`);
    expect(html).toContain(`<figure id="fig-moods">`);
  });

  it("may not take a flag name another stage declares differently", () => {
    const clash = { ...moodStage, name: "clash", flags: { k: { type: "string" as const, description: "something else" } } };
    expect(() => registerStage(clash)).toThrow(/flag --k is already declared differently by generate/);
    expect(() => registerStage(moodStage)).toThrow(/registered twice/);
  });
});
