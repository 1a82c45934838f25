// pick wired in: its command offline and against the fake Anthropic API (validation, repair), and
// merge --cold pseudo|pick|both (picks appended where the record applies and the split's news.tsv
// holds them, no new rows, impressions untouched, the audit covering them), and the report.
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageRecord } from "../src/engine/types.js";
import { Manifest } from "../src/merge/manifest.js";
import { GenerateOutput } from "../src/stages/generate/output.js";
import { collectReport } from "../src/report/collect.js";
import { writeReport } from "../src/report/report.js";
import { blockText, createFakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { runCliCaptured } from "./helpers/cli.js";
import { makeDataset, record, writeRecords } from "./merge.fixture.js";
import { makeFixture, NEWS, lines, read, records } from "./stages.fixture.js";

const picksOf = (r: StageRecord) => (r.output as { picks: string[] }).picks;
const title = (id: string) => NEWS.find((n) => n[0] === id)![3];

describe("pick offline", () => {
  it("picks the top k of the retrieval for every cold user: news of their source split, never read or shown", async () => {
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["pick", "--data", data, "--out", out], { cwd: root });
    expect(r.code, r.stderr).toBe(0);
    const recs = await records(out, "pick");
    // U1 (train: N1 N2, shown N3 N4 N7 N9) and U4 (dev: N5, shown N2 N3) are the cold users.
    expect(recs.map((x) => [x.itemId, x.source])).toEqual([
      ["U1", { split: "train", clicks: ["N2", "N1"] }],
      ["U4", { split: "dev", clicks: ["N5"] }],
    ]);
    const shown = { U1: ["N1", "N2", "N3", "N4", "N7", "N9", "N6"], U4: ["N5", "N2", "N3"] };
    for (const rec of recs) {
      expect(picksOf(rec)).toHaveLength(2);
      for (const id of picksOf(rec)) expect(shown[rec.itemId as "U1" | "U4"]).not.toContain(id);
    }
    const prompt = await runCliCaptured(["prompt", "pick", "U4", "--data", data, "--k", "1", "--candidates", "3"], { cwd: root });
    expect(prompt.code).toBe(0);
    expect(prompt.stdout).toMatch(/News the user read, most recent first:\n\(1\) \(news\) Brexit talks stall again in Brussels\n\nCandidates:\n\[1\] \(\w+\) .+\n\[2\] .+\n\[3\] .+\n\nChoose the 1 candidates/);
    expect((await runCliCaptured(["prompt", "pick", "U2", "--data", data], { cwd: root })).stderr).toMatch(/not a cold user/);
  });
});

describe("pick against the fake Anthropic API", () => {
  it("re-asks a repeated, out-of-range or short list, and stores the picked IDs in the order given", async () => {
    const fake = await createFakeAnthropic({
      answer: (body: FakeMessageRequest, info) => {
        const user = blockText(body.messages[0]!.content);
        if (info.n > 1) return '{"picks": [3, 1]}';
        if (user.includes("(1) (news) Brexit")) return '{"picks": [2, 2]}';
        return "I would pick [1, 99]";
      },
    });
    const { root, data, out } = await makeFixture();
    const r = await runCliCaptured(["pick", "--data", data, "--out", out, "--provider", "anthropic", "--base-url", fake.url, "--candidates", "4"], { cwd: root, env: { ANTHROPIC_API_KEY: "test-key" } });
    expect(r.code, r.stderr).toBe(0);
    const bodies = fake.log.map((l) => l.body as FakeMessageRequest | undefined).filter((b): b is FakeMessageRequest => b !== undefined);
    const errors = bodies.filter((b) => b.messages.length === 3).map((b) => blockText(b.messages[2]!.content)).join("\n");
    expect(errors).toMatch(/2 is picked more than once; the picks must be distinct/);
    expect(errors).toMatch(/99 is not a candidate number \(1 to [34]\)/);
    expect(bodies[0]!.output_config?.format?.schema).toMatchObject({ properties: { picks: { type: "array", items: { type: "integer" } } } });
    for (const rec of await records(out, "pick")) {
      expect(rec.attempts).toBe(2);
      // The IDs stored are the 3rd and 1st candidate lines of the user's own prompt.
      const first = NEWS.find((n) => n[0] === rec.source!.clicks[0])!;
      const prompt = blockText(bodies.find((b) => b.messages.length === 1 && blockText(b.messages[0]!.content).includes(`first:\n(1) (${first[1]}) ${first[3]}\n`))!.messages[0]!.content);
      const offered = [...prompt.matchAll(/^\[(\d+)\] \(\w+\) (.+)$/gm)].map((m) => m[2]);
      expect(picksOf(rec).map(title)).toEqual([offered[2], offered[0]]);
    }
  });
});

describe("pick through merge", () => {
  it("--cold pick appends the picks, --cold both after the pseudo-news, --cold pseudo leaves them out; impressions untouched", async () => {
    const { root, data, out } = await makeFixture();
    for (const stage of ["pick", "generate"]) expect((await runCliCaptured([stage, "--data", data, "--out", out], { cwd: root })).code).toBe(0);
    const picks = new Map((await records(out, "pick")).map((x) => [x.itemId, picksOf(x)]));
    const history = async (split: string, user: string) => lines(await read(out, split, "behaviors.tsv")).find((f) => f[1] === user)![3];

    const pseudo = await runCliCaptured(["merge", "--data", data, "--out", out], { cwd: root });
    expect(pseudo.code, pseudo.stderr).toBe(0);
    expect(await history("train", "U1")).toMatch(/^N1 N2 N10 N11$/);
    expect(Manifest.parse(JSON.parse(await read(out, "manifest.json"))).stages.pick!.counts).toMatchObject({ items: 2, merged: 0 });

    const pick = await runCliCaptured(["merge", "--data", data, "--out", out, "--cold", "pick", "--force"], { cwd: root });
    expect(pick.code, pick.stderr).toBe(0);
    expect(pick.stdout).toMatch(/train\/: 9 news \(0 pseudo-news\), .*, 1 history extended, 2 picks appended/);
    expect(pick.stdout).toMatch(/audit: 6 checked \(0 appended pseudo-news IDs, 6 appended picks\), 0 violations/);
    // U1's record was written from train's N1 N2, which dev's history (N1 N2 N6) holds: it applies in both.
    expect(await history("train", "U1")).toBe(`N1 N2 ${picks.get("U1")!.join(" ")}`);
    expect(await history("dev", "U1")).toBe(`N1 N2 N6 ${picks.get("U1")!.join(" ")}`);
    expect(await history("dev", "U4")).toBe(`N5 ${picks.get("U4")!.join(" ")}`);
    // Real news: no row added; the impressions column of every line as it was.
    for (const split of ["train", "dev"]) {
      expect(await read(out, split, "news.tsv")).toBe(await read(data, split, "news.tsv"));
      expect(lines(await read(out, split, "behaviors.tsv")).map((f) => [f[0], f[1], f[2], f[4]])).toEqual(lines(await read(data, split, "behaviors.tsv")).map((f) => [f[0], f[1], f[2], f[4]]));
    }
    const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
    expect(manifest.options.cold).toBe("pick");
    expect(manifest.stages.pick!.counts).toMatchObject({ items: 2, merged: 2, missing: 0 });
    expect(manifest.stages.generate!.counts).toMatchObject({ merged: 0 });
    expect(manifest.splits.map((s) => s.output.picks)).toEqual([2, 4]);
    expect(manifest.audit).toMatchObject({ pseudoNews: 0, picks: 6 });

    const both = await runCliCaptured(["merge", "--data", data, "--out", out, "--cold", "both", "--force"], { cwd: root });
    expect(both.code, both.stderr).toBe(0);
    // The offline generate and pick retrieve alike: U4's pseudo-news N12 and N13 are copies of its
    // picks, which are left out rather than put beside their copies.
    const generated = (await records(out, "generate")).find((x) => x.itemId === "U4")!;
    const retrieved = GenerateOutput.parse(generated.output).items.map((i) => i.retrievedFrom);
    expect([...picks.get("U4")!].sort()).toEqual([...retrieved].sort());
    expect(await history("dev", "U4")).toBe("N5 N12 N13");
    expect(both.stdout).toMatch(/audit: \d+ checked \(\d+ appended pseudo-news IDs, 0 appended picks\)/);
  });

  it("appends a pick only where the split's news.tsv holds it, and stops when a pick is one of the user's candidates", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    // U2's source is train (N101 N102), which dev's history holds too; NX7 is in train's news.tsv only.
    await writeFile(join(runDir, "pick.jsonl"), record("pick", "U2", { picks: ["NX7"] }));
    const ok = await runCliCaptured(["merge", "--data", data, "--out", runDir, "--cold", "pick"], { cwd: root });
    expect(ok.code, ok.stderr).toBe(0);
    expect(lines(await read(runDir, "train", "behaviors.tsv")).filter((f) => f[1] === "U2").map((f) => f[3])).toEqual(["N101 N102 NX7", "N101 N102 NX7"]);
    expect(lines(await read(runDir, "dev", "behaviors.tsv")).find((f) => f[1] === "U2")![3]).toBe("N101 N102 N950");

    // N102 is a candidate of U10's impressions in train: a record picking it (edited by hand) is refused.
    await appendFile(join(runDir, "pick.jsonl"), record("pick", "U10", { picks: ["N120", "N102"] }));
    const bad = await runCliCaptured(["merge", "--data", data, "--out", runDir, "--cold", "pick", "--force"], { cwd: root });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/audit: 1 violation\(s\) of the history rule, so nothing was written:\n {2}U10: appended pick N102 is a candidate of U10's impressions in train/);
  });

  it("augment without --cold merges what its stages produced: both with generate and pick, pick alone, pseudo without pick", async () => {
    for (const [stages, cold] of [["profile,generate,pick", "both"], ["pick", "pick"], ["profile,generate", "pseudo"]] as const) {
      const { root, data, out } = await makeFixture();
      const r = await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", stages], { cwd: root });
      expect(r.code, r.stderr).toBe(0);
      const manifest = Manifest.parse(JSON.parse(await read(out, "manifest.json")));
      expect(manifest.options.cold).toBe(cold);
      expect(manifest.stages.pick!.counts.merged > 0).toBe(cold !== "pseudo");
      if (cold !== "pseudo") expect(r.stderr).toMatch(new RegExp(`augment: merge \\(--cold ${cold}: `));
    }
    // A --cold given is kept.
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "profile,pick", "--cold", "pseudo"], { cwd: root })).code).toBe(0);
    expect(Manifest.parse(JSON.parse(await read(out, "manifest.json"))).options.cold).toBe("pseudo");
  });

  it("--cold takes pseudo, pick or both", async () => {
    const { root, data, runDir } = await makeDataset();
    await writeRecords(runDir);
    const r = await runCliCaptured(["merge", "--data", data, "--out", runDir, "--cold", "picks"], { cwd: root });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cold/);
  });
});

describe("pick in the report", () => {
  it("draws the picks' categories against the users' real clicks and shows each user's picks", async () => {
    const { root, data, out } = await makeFixture();
    expect((await runCliCaptured(["augment", "--data", data, "--out", out, "--stages", "pick", "--cold", "pick"], { cwd: root })).code).toBe(0);
    const model = await collectReport(out);
    expect([...model.dist.pickCategories!.picks.values()].reduce((a, b) => a + b, 0)).toBe(4);
    expect(model.dist.pickCategories!.clicks!.get("sports")).toBeGreaterThan(0);
    const u4 = model.users.find((u) => u.id === "U4")!;
    expect(u4.picks).toHaveLength(2);
    expect(u4.picks![0]).toMatchObject({ id: expect.stringMatching(/^N\d$/), title: expect.any(String), category: expect.any(String) });
    const html = await readFile((await writeReport(out)).path, "utf8");
    expect(html).toContain(`data-chart="pick-categories"`);
    expect(html).toContain("picks appended");
  });
});
