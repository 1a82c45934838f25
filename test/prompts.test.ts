// Prompt templates and the `prompt` command: what a user sees is what a stage sends.
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BUNDLED_PROMPTS_DIR, loadTemplate, render } from "../src/stages/template.js";
import { profileStage } from "../src/stages/profile/index.js";
import { stages } from "../src/stages/registry.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeFixture } from "./stages.fixture.js";
import { tempDir } from "./helpers/temp.js";

async function promptsDir(): Promise<string> {
  const dir = await tempDir("gm-prompts-");
  await cp(BUNDLED_PROMPTS_DIR, dir, { recursive: true });
  return dir;
}

describe("templates", () => {
  it("fill named placeholders once and drop a line whose placeholders are all empty", async () => {
    const dir = await promptsDir();
    await writeFile(join(dir, "t.md"), "Title: {{title}}\nAbstract: {{abstract}}\n{{title}} / {{abstract}}\n\n");
    const t = loadTemplate(dir, { file: "t.md", known: ["title", "abstract"], required: ["title"] });
    expect(render(t, { title: "A {{abstract}} B", abstract: "" })).toBe("Title: A {{abstract}} B\nA {{abstract}} B / ");
    expect(render(t, { title: "T", abstract: "Abs" })).toBe("Title: T\nAbstract: Abs\nT / Abs");
  });

  it("name the file and the placeholder when a template is wrong", async () => {
    const dir = await promptsDir();
    await writeFile(join(dir, "profile.user.md"), "Clicks:\n{{histroy}}\n");
    expect(() => loadTemplate(dir, profileStage.templates({ recent: 30 }).user)).toThrow(/profile\.user\.md: unknown placeholder \{\{histroy\}\} \(this template may use: \{\{history\}\}, \{\{count\}\}\)/);
    // Not silently sent as literal text: a placeholder in the wrong case or with a space.
    await writeFile(join(dir, "profile.user.md"), "Clicks ({{ Count }}):\n{{history}}\n");
    expect(() => loadTemplate(dir, profileStage.templates({ recent: 30 }).user)).toThrow(/unknown placeholder \{\{Count\}\}/);
    await writeFile(join(dir, "profile.user.md"), "{{recent history}}\n{{history}}\n");
    expect(() => loadTemplate(dir, profileStage.templates({ recent: 30 }).user)).toThrow(/unknown placeholder \{\{recent history\}\}/);
    await writeFile(join(dir, "profile.user.md"), "Clicks: none\n");
    expect(() => loadTemplate(dir, profileStage.templates({ recent: 30 }).user)).toThrow(/must contain the placeholder \{\{history\}\}/);
    expect(() => loadTemplate(join(dir, "nope"), profileStage.templates({ recent: 30 }).user)).toThrow(/not found/);
  });

  it("the bundled templates load for every stage and variant, and state their output contract", () => {
    for (const stage of stages()) {
      for (const chain of [false, true]) {
        const specs = stage.templates(stage.options({ chain }));
        const system = loadTemplate(BUNDLED_PROMPTS_DIR, specs.system);
        loadTemplate(BUNDLED_PROMPTS_DIR, specs.user);
        expect(system.text).toMatch(/Answer with/);
      }
    }
  });
});

describe("genre-mind prompt", () => {
  it("prints the rendered system and user parts of one item", async () => {
    const { root, data } = await makeFixture();
    const r = await runCliCaptured(["prompt", "summarize", "N3", "--data", data], { cwd: root });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^=== system \(.*summarize\.system\.md\) ===\nYou are a news title enhancer/);
    // N3 has no abstract: the Abstract line is left out.
    expect(r.stdout).toContain("=== user (");
    expect(r.stdout).toContain("Title: Snowstorm to hit Denver this weekend\nCategory: weather\nSubcategory: weathertopstories\n");

    const p = await runCliCaptured(["prompt", "profile", "U1", "--data", data], { cwd: root });
    expect(p.code).toBe(0);
    // U1's earliest non-empty history is train's (N1 N2); dev's also holds N6, a click of U1's train impressions.
    expect(p.stdout).toContain("(1) Stocks rally as the Fed holds rates steady\n(2) Texans beat Colts");
    expect(p.stdout).not.toContain("Austin");
    expect(p.stdout).toContain("=== source ===\ntrain (U1's earliest non-empty history), clicks N2 N1\n");
    expect(p.stdout).toContain("health, education, travel, religion");
    expect(p.stdout).toContain("=== output schema ===");

    const g = await runCliCaptured(["prompt", "generate", "U4", "--data", data, "--k", "3"], { cwd: root });
    expect(g.stdout).toContain("(1) (news) Brexit talks stall again in Brussels");
    expect(g.stdout).toContain("Write 3 news items");
    expect(g.stdout).toContain("lifestyle, health, news, sports");
  });

  it("explains why an ID is not an item, and what --chain needs", async () => {
    const { root, data, out } = await makeFixture();
    const warm = await runCliCaptured(["prompt", "generate", "U2", "--data", data], { cwd: root });
    expect(warm.code).toBe(2);
    expect(warm.stderr).toMatch(/U2 has 7 clicks in train, their earliest non-empty history: not a cold user \(1 to 5 clicks, see --cold-max\)/);
    const unknown = await runCliCaptured(["prompt", "summarize", "N404", "--data", data], { cwd: root });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no news N404/);
    const stage = await runCliCaptured(["prompt", "merge", "N1", "--data", data], { cwd: root });
    expect(stage.code).toBe(2);
    expect(stage.stderr).toMatch(/unknown stage 'merge'/);
    const chain = await runCliCaptured(["prompt", "generate", "U4", "--data", data, "--chain", "--out", out], { cwd: root });
    expect(chain.code).toBe(2);
    expect(chain.stderr).toMatch(/profile\.jsonl, which does not exist/);
  });

  it("renders the chain variant from a profile record, with the topics before the history", async () => {
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["profile", "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    const r = await runCliCaptured(["prompt", "generate", "U4", "--data", data, "--chain", "--out", out], { cwd: root });
    expect(r.code).toBe(0);
    const profile = JSON.parse((await readFile(join(out, "profile.jsonl"), "utf8")).split("\n").find((l) => l.includes('"U4"'))!);
    expect(r.stdout).toContain(`interested in these topics, strongest first: ${profile.output.topics.join(", ")}.\nThey may also like topics beyond these.`);
    expect(r.stdout.indexOf("topics, strongest first")).toBeLessThan(r.stdout.indexOf("(1) (news) Brexit"));
  });
});
