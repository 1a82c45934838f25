// The stage commands end to end: offline on the bundled sample and a tiny fixture, and against the
// fake Anthropic API on 127.0.0.1 (valid answers, near misses, repair re-asks, failures).
import { cp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FailureRecord, StageRecord } from "../src/engine/types.js";
import { loadCatalog } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { GenerateOutput } from "../src/stages/generate/output.js";
import { ProfileOutput } from "../src/stages/profile/output.js";
import { stageNamed, type StageName } from "../src/stages/registry.js";
import { SummarizeOutput } from "../src/stages/summarize/output.js";
import { BUNDLED_PROMPTS_DIR } from "../src/stages/template.js";
import { StageMeta } from "../src/run/folder.js";
import { blockText, createFakeAnthropic, type FakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { DEV_BEHAVIORS, makeFixture, NEWS, writeFixture } from "./stages.fixture.js";
import { tempDir } from "./helpers/temp.js";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");
const OUTPUTS = { summarize: SummarizeOutput, profile: ProfileOutput, generate: GenerateOutput };

async function records(out: string, stage: StageName): Promise<StageRecord[]> {
  const text = await readFile(join(out, `${stage}.jsonl`), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l)));
}

async function meta(out: string, stage: StageName): Promise<StageMeta> {
  return StageMeta.parse(JSON.parse(await readFile(join(out, `${stage}.meta.json`), "utf8")));
}

async function run(cwd: string, ...argv: string[]) {
  const r = await runCliCaptured(argv, { cwd });
  return r;
}

describe("offline stages", () => {
  it("run on the bundled sample: one valid, labelled record per item, and a meta file", async () => {
    const out = await tempDir("gm-run-");
    const catalog = await loadCatalog(await resolveSplits([SAMPLE]));
    for (const [stage, extra] of [["summarize", []], ["profile", []], ["generate", []], ["generate", ["--chain"]]] as const) {
      const r = await run(out, stage, "--data", SAMPLE, "--out", out, ...extra);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      const m = await meta(out, stage);
      const s = stageNamed(stage);
      const items = s.items(catalog, s.options({}));
      // Items with the same rendered prompt (the sample has two pairs of identical news rows) are
      // one request for the engine; each item still gets its record (the engine copies the answer).
      expect(m.counts.items).toBeLessThanOrEqual(items.length);
      expect(m.counts.items).toBeGreaterThanOrEqual(items.length - 2);
      expect(m.counts.failed).toBe(0);
      expect(m.provider).toBe("offline");
      expect(Object.keys(m.promptHashes)).toEqual([`${stage}.system.md`, extra.length ? "generate.chain.user.md" : `${stage}.user.md`]);
      expect(m.splits.map((s) => s.name)).toEqual(["MINDsample_train", "MINDsample_dev"]);
      const recs = await records(out, stage);
      expect(new Set(recs.map((r) => r.itemId))).toEqual(new Set(items));
      for (const rec of recs) {
        expect(rec.provider).toBe("offline");
        OUTPUTS[stage].parse(rec.output);
      }
    }
    const gen = (await records(out, "generate")).map((r) => GenerateOutput.parse(r.output));
    expect(gen.every((g) => g.items.length === 2 && g.items.every((i) => i.retrievedFrom && catalog.news.has(i.retrievedFrom)))).toBe(true);
  });

  it("re-running on a newer snapshot asks only for changed items; a prompt edit only for the items it changes", async () => {
    const { root, data, out } = await makeFixture();
    expect((await run(root, "summarize", "--data", data, "--out", out)).code).toBe(0);
    expect((await run(root, "profile", "--data", data, "--out", out)).code).toBe(0);
    expect((await meta(out, "summarize")).counts).toMatchObject({ items: 9, done: 9, cached: 0 });

    // Newer snapshot: N7's abstract edited; U4 clicked one more item.
    const newer = NEWS.map((r) => (r[0] === "N7" ? ([...r.slice(0, 4), "Range, price, towing and charging.", ...r.slice(5)] as typeof r) : r));
    const devBehaviors = DEV_BEHAVIORS.map((b) => (b[1] === "U4" ? [b[0]!, b[1], b[2]!, "N5 N7", b[4]!] : b));
    await writeFixture(data, { trainNews: newer, devNews: newer, devBehaviors });
    await run(root, "summarize", "--data", data, "--out", out);
    await run(root, "profile", "--data", data, "--out", out);
    expect((await meta(out, "summarize")).counts).toMatchObject({ items: 9, done: 1, cached: 8 });
    expect((await meta(out, "profile")).counts).toMatchObject({ items: 3, done: 1, cached: 2 });
    expect((await records(out, "summarize")).slice(9).map((r) => r.itemId)).toEqual(["N7"]);
    expect((await records(out, "profile")).slice(3).map((r) => r.itemId)).toEqual(["U4"]);

    // The Abstract line only renders for news with an abstract: N3 and N5 have none.
    const prompts = await tempDir("gm-prompts-");
    await cp(BUNDLED_PROMPTS_DIR, prompts, { recursive: true });
    const user = await readFile(join(prompts, "summarize.user.md"), "utf8");
    await writeFile(join(prompts, "summarize.user.md"), user.replace("Abstract:", "Summary:"));
    await run(root, "summarize", "--data", data, "--out", out, "--prompts", prompts);
    const m = await meta(out, "summarize");
    expect(m.counts).toMatchObject({ items: 9, done: 7, cached: 2 });
    expect((await records(out, "summarize")).slice(10).map((r) => r.itemId).sort()).toEqual(["N1", "N2", "N4", "N6", "N7", "N8", "N9"]);
  });

  it("--shard k/n partitions the items exactly; --limit takes the first n", async () => {
    const out = await tempDir("gm-run-");
    const all = stageNamed("summarize").items(await loadCatalog(await resolveSplits([SAMPLE])), {});
    const seen: string[] = [];
    for (const shard of ["1/3", "2/3", "3/3"]) {
      const r = await run(out, "summarize", "--data", SAMPLE, "--out", out, "--shard", shard);
      expect(r.code).toBe(0);
      const m = await meta(out, "summarize");
      expect(m.counts.cached).toBe(0);
      expect(m.options).toMatchObject({ shard });
      seen.push(...(await records(out, "summarize")).slice(seen.length).map((r) => r.itemId));
    }
    expect(seen.length).toBe(all.length);
    expect(new Set(seen)).toEqual(new Set(all));
    const lim = await tempDir("gm-run-");
    await run(lim, "profile", "--data", SAMPLE, "--out", lim, "--limit", "4");
    expect((await records(lim, "profile")).length).toBe(4);
    const bad = await run(lim, "profile", "--data", SAMPLE, "--shard", "4/3");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shard: expected k\/n with 1 ≤ k ≤ n/);
  });

  it("generate --chain says what is missing: the profile file, or profiles of too many users", async () => {
    const { root, data, out } = await makeFixture();
    const missing = await run(root, "generate", "--chain", "--data", data, "--out", out);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/generate --chain needs the user profiles in .*profile\.jsonl, which does not exist: run 'genre-mind profile --out/);
    await run(root, "profile", "--data", data, "--out", out, "--limit", "1");
    const partial = await run(root, "generate", "--chain", "--data", data, "--out", out);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/1 of 2 cold users have no profile written from their source history in .*profile\.jsonl \(e\.g\. U\d\)/);
  });

  it("generate --chain --limit n (a trial, as augment --limit runs it) takes the first n cold users that have a profile", async () => {
    const out = await tempDir("gm-run-");
    const catalog = await loadCatalog(await resolveSplits([SAMPLE]));
    const generate = stageNamed("generate");
    const cold = generate.items(catalog, generate.options({}));
    // Profile only some cold users, skipping the first: a plain first-n cut would hit users without one.
    const profiled = cold.slice(1).filter((_, i) => i % 2 === 0).slice(0, 3);
    const p = await run(out, "profile", "--data", SAMPLE, "--out", out, "--limit", String(cold.length * 4));
    expect(p.code).toBe(0);
    const recs = await records(out, "profile");
    const kept = recs.filter((r) => profiled.includes(r.itemId));
    expect(kept.length).toBe(profiled.length);
    // Keep only the chosen users' profiles, as a trial profile run would have written.
    await writeFile(join(out, "profile.jsonl"), kept.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const g = await run(out, "generate", "--chain", "--data", SAMPLE, "--out", out, "--limit", "2");
    expect(g.stderr).not.toMatch(/no profile/);
    expect(g.code).toBe(0);
    expect((await records(out, "generate")).map((r) => r.itemId)).toEqual(profiled.slice(0, 2));
    // Without --limit the missing profiles are still an error (more than --max-failure-share lack one).
    const all = await run(out, "generate", "--chain", "--data", SAMPLE, "--out", out);
    expect(all.code).toBe(2);
    expect(all.stderr).toMatch(/cold users have no profile/);
  });

  it("--help explains the flags and the history rule", async () => {
    const r = await run(tmpdir(), "generate", "--help");
    for (const flag of ["--data", "--out", "--limit", "--shard", "--provider", "--model", "--dry-run", "--cold-max", "--k", "--chain"]) expect(r.stdout).toContain(flag);
    expect(r.stdout).toMatch(/earliest non-empty history/);
    expect(r.stdout).toMatch(/Jaccard similarity ≥ 0\.6/);
  });
});

function systemOf(body: FakeMessageRequest): string {
  return typeof body.system === "string" ? body.system : (body.system ?? []).map((b) => b.text).join("");
}
const sentBodies = (fake: FakeAnthropic) => fake.log.map((l) => l.body as FakeMessageRequest | undefined).filter((b): b is FakeMessageRequest => b !== undefined);
const lastUser = (body: FakeMessageRequest) => blockText(body.messages[body.messages.length - 1]!.content);

describe("stages against the fake Anthropic API", () => {
  let fake: FakeAnthropic | undefined;

  async function live(answer: (body: FakeMessageRequest, n: number) => string, ...argv: string[]) {
    fake = await createFakeAnthropic({ answer: (body, info) => answer(body, info.n) });
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured([...argv, "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url], { cwd: root, env: { ANTHROPIC_API_KEY: "test-key" } });
    return { ...r, out, fake };
  }

  it("summarize: a marked answer becomes a clean title; an answer echoing the labels is re-asked", async () => {
    const r = await live((body, n) => {
      const title = /^Title: (.*)$/m.exec(blockText(body.messages[0]!.content))![1]!;
      return title.startsWith("Snowstorm") && n === 1 ? `Title: ${title}` : `[newtitle] "${title}, explained"`;
    }, "summarize");
    expect(r.stderr).not.toMatch(/failed/);
    expect(r.code).toBe(0);
    const recs = await records(r.out, "summarize");
    expect(recs).toHaveLength(9);
    expect(recs.find((x) => x.itemId === "N1")!.output).toEqual({ title: "Texans beat Colts in overtime thriller, explained" });
    expect(recs.find((x) => x.itemId === "N3")!.attempts).toBe(2);
    expect(recs.every((x) => x.provider === "anthropic" && x.model === "claude-haiku-4-5")).toBe(true);
    const reask = sentBodies(r.fake).find((b) => b.messages.length === 3)!;
    expect(lastUser(reask)).toMatch(/repeats the input labels/);
    expect(systemOf(reask)).toMatch(/news title enhancer/);
  });

  it("summarize: {\"title\": X} is read as X; other JSON and markup answers are re-asked and never stored", async () => {
    const r = await live((body, n) => {
      const title = /^Title: (.*)$/m.exec(blockText(body.messages[0]!.content))![1]!;
      if (n > 1) return `${title}, plainly`;
      if (title.startsWith("Snowstorm")) return `{"title": "${title}`;
      if (title.startsWith("Brexit")) return JSON.stringify({ title, reason: "more neutral" });
      if (title.startsWith("New cancer")) return `<b>${title}</b>`;
      if (title.startsWith("Stocks")) return "```json\n" + JSON.stringify({ title: `${title}, as JSON` }) + "\n```";
      return `${title} today`;
    }, "summarize");
    expect(r.code).toBe(0);
    const recs = new Map((await records(r.out, "summarize")).map((x) => [x.itemId, x]));
    expect(recs.size).toBe(9);
    expect(recs.get("N2")!.output).toEqual({ title: "Stocks rally as the Fed holds rates steady, as JSON" });
    expect(recs.get("N2")!.attempts).toBe(1);
    for (const [id, title] of [["N3", "Snowstorm to hit Denver this weekend"], ["N5", "Brexit talks stall again in Brussels"], ["N4", "New cancer drug shows promise in trial"]]) {
      expect(recs.get(id!)!.output, id).toEqual({ title: `${title}, plainly` });
      expect(recs.get(id!)!.attempts).toBe(2);
    }
    for (const rec of recs.values()) expect(SummarizeOutput.parse(rec.output).title).not.toMatch(/[{}<>"]/);
    const errors = sentBodies(r.fake).filter((b) => b.messages.length === 3).map(lastUser).join("\n");
    expect(errors).toMatch(/looks like JSON but is not valid JSON/);
    expect(errors).toMatch(/is JSON, not a title/);
    expect(errors).toMatch(/markup \(an HTML tag\)/);
  });

  it("profile: near misses are normalized without a re-ask; an out-of-vocabulary topic is repaired", async () => {
    const r = await live((body, n) => {
      const first = blockText(body.messages[0]!.content);
      if (first.includes("Brexit") && n === 1) return '{"topics": ["politics", "International"], "regions": []}';
      return '{"topics": ["Tech", "Finances", "finance"], "regions": ["TX", "colorado"]}';
    }, "profile");
    expect(r.code).toBe(0);
    const recs = await records(r.out, "profile");
    const byUser = new Map(recs.map((x) => [x.itemId, x]));
    expect(byUser.get("U1")!.output).toEqual({ topics: ["technology", "finance"], regions: ["Texas", "Colorado"] });
    expect(byUser.get("U1")!.attempts).toBe(1);
    // U2 and U4 read the Brexit story: their first answer named "politics".
    expect(byUser.get("U4")!.attempts).toBe(2);
    const repair = sentBodies(r.fake).filter((b) => b.messages.length === 3);
    expect(repair).toHaveLength(2);
    expect(lastUser(repair[0]!)).toMatch(/"politics" is not a topic of the list; use only: health, education/);
    expect(repair[0]!.output_config?.format?.schema).toMatchObject({ properties: { topics: { items: { enum: expect.arrayContaining(["social media"]) } } } });
  });

  it("generate: duplicate or copied pseudo-news are rejected and repaired", async () => {
    const item = (title: string, category = "sports") => ({ title, abstract: "Something happened.", category });
    const r = await live((body, n) => {
      if (n === 1 && blockText(body.messages[0]!.content).includes("Brexit")) return JSON.stringify({ items: [item("Brexit talks stall again in Brussels", "news"), item("Markets slide")] });
      if (n === 1) return JSON.stringify({ items: [item("Colts sign a new kicker"), item("Colts sign new kicker")] });
      return JSON.stringify({ items: [item("Colts sign a new kicker"), item("Ten holiday cookie recipes", "Food and Drink")] });
    }, "generate");
    expect(r.code).toBe(0);
    const recs = await records(r.out, "generate");
    expect(recs.map((x) => [x.itemId, x.attempts]).sort()).toEqual([["U1", 2], ["U4", 2]]);
    expect(GenerateOutput.parse(recs[0]!.output).items[1]!.category).toBe("foodanddrink");
    const errors = sentBodies(r.fake).filter((b) => b.messages.length === 3).map(lastUser).join("\n");
    expect(errors).toMatch(/item 2 is a near copy of item 1/);
    expect(errors).toMatch(/item 1 is a near copy of the read title \(1\)/);
  });

  it("generate: failures past --max-failure-share exit 1, failures up to it exit 0", async () => {
    const item = (title: string) => ({ title, abstract: "Something happened.", category: "news" });
    // U4 read only the Brexit story and always gets a copy of it back: 1 of the 2 cold users fails.
    const answer = (body: FakeMessageRequest) =>
      blockText(body.messages[0]!.content).includes("(1) (news) Brexit") && !blockText(body.messages[0]!.content).includes("(2)")
        ? JSON.stringify({ items: [item("Brexit talks stall again in Brussels"), item("Markets slide")] })
        : JSON.stringify({ items: [item("Colts sign a new kicker"), item("Ten holiday cookie recipes")] });
    const over = await live(answer, "generate", "--max-attempts", "2", "--max-failure-share", "0.4");
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(/generate: 1 of 2 items failed \(more than --max-failure-share 0\.4\)/);
    expect((await meta(over.out, "generate")).counts).toMatchObject({ items: 2, done: 1, failed: 1 });
    await fake!.close();
    const at = await live(answer, "generate", "--max-attempts", "2", "--max-failure-share", "0.5");
    expect(at.code).toBe(0);
    expect((await meta(at.out, "generate")).counts).toMatchObject({ items: 2, done: 1, failed: 1 });
  });

  it("augment and each stage check the input splits before the first request", async () => {
    fake = await createFakeAnthropic({ answer: () => "An enhanced title" });
    const { root, data, out } = await makeFixture({ devBehaviors: DEV_BEHAVIORS.map((b, i) => (i === 1 ? [...b.slice(0, 4), "N2-1 N3-2"] : b)) });
    const env = { ANTHROPIC_API_KEY: "test-key" };
    const live = ["--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url];
    for (const command of ["augment", "summarize", "profile", "generate"]) {
      const r = await runCliCaptured([command, ...live], { cwd: root, env });
      expect(r.code, command).toBe(1);
      expect(r.stderr).toMatch(/^genre-mind \S+: input split \S*dev: impression labels other than 0 or 1: 1, e\.g\. \S*dev\/behaviors\.tsv:2 \[Impressions\]: 'N3-2'\. Nothing was sent; 'genre-mind validate \S*dev' lists every problem\.$/m);
      expect(fake.log).toHaveLength(0);
    }
    // --lenient skips the line, as the stage's reader does, and goes on.
    const lenient = await runCliCaptured(["summarize", ...live, "--lenient"], { cwd: root, env });
    expect(lenient.code).toBe(0);
    expect(fake.log.length).toBeGreaterThan(0);
  });

  it("remembers a split that passed by its files' size and mtime, and checks it again once they change", async () => {
    const { root, data, out } = await makeFixture();
    expect((await run(root, "summarize", "--data", data, "--out", out)).code).toBe(0);
    const stamps = JSON.parse(await readFile(join(out, "inputs-checked.json"), "utf8")) as { passed: string[] };
    expect(stamps.passed).toHaveLength(2);
    expect(stamps.passed.every((s) => s.startsWith("strict|"))).toBe(true);
    await writeFile(join(data, "train", "behaviors.tsv"), (await readFile(join(data, "train", "behaviors.tsv"), "utf8")).replace("N4-0", "N4-00"));
    const r = await run(root, "summarize", "--data", data, "--out", out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/train\/behaviors\.tsv:1 \[Impressions\]: 'N4-00'/);
  });

  it("items with the same prompt are asked once and each gets its record", async () => {
    fake = await createFakeAnthropic({ answer: () => "An enhanced title" });
    const { root, data, out } = await makeFixture();
    const n2 = NEWS.find((r) => r[0] === "N2")!;
    await writeFixture(data, { devNews: [...NEWS, ["N10", ...n2.slice(1)] as typeof n2] });
    const argv = ["summarize", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url];
    const env = { ANTHROPIC_API_KEY: "test-key" };
    const r = await runCliCaptured(argv, { cwd: root, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 item\(s\) have the same prompt as another item/);
    expect(sentBodies(fake).length).toBe(9);
    const recs = await records(out, "summarize");
    expect(recs.map((x) => x.itemId).sort()).toEqual(["N1", "N10", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"]);
    const twins = recs.filter((x) => x.itemId === "N2" || x.itemId === "N10");
    expect(twins[0]!.key).toBe(twins[1]!.key);
    expect(twins.map((x) => x.usage.inputTokens).filter((t) => t > 0)).toHaveLength(1);
    await runCliCaptured(argv, { cwd: root, env });
    expect(sentBodies(fake).length).toBe(9);
    expect(await records(out, "summarize")).toHaveLength(10);
  });

  it("a stage whose answers never validate fails its items, writes meta and exits 1", async () => {
    const r = await live(() => '{"topics": ["sports"], "regions": []}', "profile", "--max-attempts", "2");
    expect(r.code).toBe(1);
    const m = await meta(r.out, "profile");
    expect(m.counts).toMatchObject({ items: 3, done: 0, failed: 3, failedByReason: { invalid: 3 } });
    const failures = (await readFile(join(r.out, "profile.failures.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => FailureRecord.parse(JSON.parse(l)));
    expect(failures.every((f) => f.attempts === 2 && /"sports" is not a topic/.test(f.message))).toBe(true);
  });
});
