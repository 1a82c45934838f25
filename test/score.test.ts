import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/command.js";
import { scoreCommand } from "../src/commands/score.js";
import { impressionMetrics } from "../src/trainer/metrics.js";
import type { ScoreReport } from "../src/trainer/score.js";
import { invokeCaptured } from "./helpers/cli.js";
import { NUMPY, python } from "./helpers/python.js";
import { tempDir } from "./helpers/temp.js";

const log2 = Math.log2;

const run = (cwd: string, args: string[]) => invokeCaptured(scoreCommand, args, cwd);

// Hand-computed values for the impressions used below.
// A: labels [1,0,0,1], ranks [2,1,4,3] → ordering (by rank) labels 0,1,1,0.
//    AUC: positives beat 1 of 2 negatives each → 2/4. MRR (1/2 + 1/3) / 2.
//    DCG = 1/log2(3) + 1/log2(4); ideal = 1 + 1/log2(3).
const A = { auc: 0.5, mrr: 5 / 12, ndcg: (1 / log2(3) + 1 / 2) / (1 + 1 / log2(3)) };
// B: single click ranked first: every metric is 1.
// D: 12 candidates, clicks on the first two, ranked 4th and 7th.
//    AUC: 7 negatives below rank 4, 5 below rank 7 → 12 / 20. MRR (1/4 + 1/7) / 2.
//    DCG@5 = 1/log2(5); DCG@10 = 1/log2(5) + 1/log2(8); ideal = 1 + 1/log2(3).
const D = {
  auc: 0.6,
  mrr: 11 / 56,
  ndcg5: 1 / log2(5) / (1 + 1 / log2(3)),
  ndcg10: (1 / log2(5) + 1 / 3) / (1 + 1 / log2(3)),
};

describe("impressionMetrics", () => {
  it("matches hand-computed values for a permutation of ranks", () => {
    const m = impressionMetrics([1, 0, 0, 1], [1 / 2, 1, 1 / 4, 1 / 3])!;
    expect(m.auc).toBeCloseTo(A.auc, 12);
    expect(m.mrr).toBeCloseTo(A.mrr, 12);
    expect(m.ndcg5).toBeCloseTo(A.ndcg, 12);
    expect(m.ndcg10).toBeCloseTo(A.ndcg, 12);
  });

  it("cuts nDCG at 5 and 10 with several clicks", () => {
    const ranks = [4, 7, 1, 2, 3, 5, 6, 8, 9, 10, 11, 12];
    const m = impressionMetrics([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], ranks.map((r) => 1 / r))!;
    expect(m.auc).toBeCloseTo(D.auc, 12);
    expect(m.mrr).toBeCloseTo(D.mrr, 12);
    expect(m.ndcg5).toBeCloseTo(D.ndcg5, 12);
    expect(m.ndcg10).toBeCloseTo(D.ndcg10, 12);
  });

  it("averages tied scores in AUC and orders ties later-candidate first elsewhere", () => {
    // Positives 0.5 and 0.2 against negatives 0.5 and 0.2: tie ½ + win 1 + loss 0 + tie ½ = 2 of 4.
    const m = impressionMetrics([1, 0, 0, 1], [0.5, 0.5, 0.2, 0.2])!;
    expect(m.auc).toBeCloseTo(0.5, 12);
    // Reversed stable argsort: candidate 1 (unclicked) before 0, then 3 (clicked) before 2 → ranks 2 and 3.
    expect(m.mrr).toBeCloseTo(5 / 12, 12);
    expect(impressionMetrics([1, 0], [0.3, 0.3])!.auc).toBe(0.5);
    expect(impressionMetrics([1, 0], [0.3, 0.3])!.mrr).toBe(0.5);
  });

  it("returns undefined for an impression with one class only", () => {
    expect(impressionMetrics([0, 0, 0], [1, 2, 3])).toBeUndefined();
    expect(impressionMetrics([1, 1], [1, 2])).toBeUndefined();
  });
});

const history = (n: number) => Array.from({ length: n }, (_, i) => `N${i + 1}`).join(" ");
const imps = (labels: number[]) => labels.map((l, i) => `N${i + 1}-${l}`).join(" ");
const T = "11/15/2019 10:22:32 AM";
const TRUTH = [
  `101\tU1\t${T}\t\t${imps([1, 0, 0, 1])}`, // empty history: A
  `102\tU2\t${T}\t${history(3)}\t${imps([0, 0, 1])}`, // cold: B
  `103\tU3\t${T}\t${history(6)}\t${imps([0, 0])}`, // warm, one class: skipped
  `104\tU3\t${T}\t${history(6)}\t${imps([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])}`, // warm: D
].join("\n") + "\n";
const RANKS = ["101 [2,1,4,3]", "102 [3,2,1]", "103 [1,2]", "104 [4,7,1,2,3,5,6,8,9,10,11,12]"];
// Scores, out of order: 104 clicks first and second (MRR (1 + 1/2) / 2); 101 tied (same as A); 102 click 2nd of 3.
const SCORES = [
  "104\t1 0.9 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1",
  "101\t0.5 0.5 0.2 0.2",
  "103\t0.1 0.2",
  "102\t0.9 0.1 0.8",
];
// The ranks as scores 1 / rank in the tab-separated layout: the same metrics, read without --pred-format.
const RECIPROCAL = RANKS.map((l) => l.replace(/ \[(.*)\]$/, (_, r: string) => "\t" + r.split(",").map((x) => String(1 / Number(x))).join(" ")));
const B2 = { auc: 0.5, mrr: 0.5, ndcg: 1 / log2(3) };
const D2 = { auc: 1, mrr: 0.75, ndcg: 1 };

async function fixture(files: Record<string, string>): Promise<string> {
  const dir = await tempDir("gm-score-");
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe("genre-mind score", () => {
  it("averages over impressions, skips one-class impressions and breaks down by user group", async () => {
    const dir = await fixture({ "behaviors.tsv": TRUTH, "ranks.txt": RANKS.join("\n") + "\n" });
    const { code, out } = await run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred-format", "ranks", "--json"]);
    expect(code).toBe(0);
    const report = JSON.parse(out) as ScoreReport;
    const g = report.runs[0]!.groups;
    expect(report.runs[0]!.files[0]).toMatchObject({ format: "ranks", formatSource: "given" });
    expect(g.all.impressions).toBe(3);
    expect(g.all.skipped).toBe(1);
    expect(g.all.auc).toBeCloseTo((A.auc + 1 + D.auc) / 3, 12);
    expect(g.all.mrr).toBeCloseTo((A.mrr + 1 + D.mrr) / 3, 12);
    expect(g.all.ndcg5).toBeCloseTo((A.ndcg + 1 + D.ndcg5) / 3, 12);
    expect(g.all.ndcg10).toBeCloseTo((A.ndcg + 1 + D.ndcg10) / 3, 12);
    expect(g.empty).toMatchObject({ impressions: 1, skipped: 0 });
    expect(g.empty.mrr).toBeCloseTo(A.mrr, 12);
    expect(g.cold).toMatchObject({ impressions: 1, skipped: 0, auc: 1, mrr: 1, ndcg5: 1, ndcg10: 1 });
    expect(g.warm).toMatchObject({ impressions: 1, skipped: 1 });
    expect(g.warm.ndcg10).toBeCloseTo(D.ndcg10, 12);
  });

  it("moves a history of 3 clicks from cold to warm with --cold-max 2", async () => {
    const dir = await fixture({ "behaviors.tsv": TRUTH, "ranks.txt": RANKS.join("\n") });
    const report = JSON.parse((await run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred-format", "ranks", "--json", "--cold-max", "2"])).out) as ScoreReport;
    expect(report.runs[0]!.groups.cold.impressions).toBe(0);
    expect(report.runs[0]!.groups.cold.auc).toBeNull();
    expect(report.runs[0]!.groups.warm.impressions).toBe(2);
  });

  it("compares runs side by side with differences in points", async () => {
    const dir = await fixture({ "behaviors.tsv": TRUTH, "ranks.txt": RANKS.join("\n"), "scores.txt": SCORES.join("\n") });
    const args = ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred", "scores.txt", "--pred-format", "ranks.txt=ranks"];
    const report = JSON.parse((await run(dir, [...args, "--json"])).out) as ScoreReport;
    const second = report.runs[1]!;
    expect(second.files[0]).toMatchObject({ format: "scores", formatSource: "layout" });
    expect(second.groups.all.auc).toBeCloseTo((A.auc + B2.auc + D2.auc) / 3, 12);
    expect(second.groups.all.mrr).toBeCloseTo((A.mrr + B2.mrr + D2.mrr) / 3, 12);
    expect(second.groups.cold.ndcg5).toBeCloseTo(B2.ndcg, 12);
    const diff = report.differences[0]!;
    expect(diff).toMatchObject({ name: "scores.txt", baseline: "ranks.txt" });
    expect(diff.groups.cold.auc.difference).toBeCloseTo(-50, 9);
    expect(diff.groups.warm.auc.difference).toBeCloseTo(40, 9);
    expect(diff.groups.empty.mrr.difference).toBeCloseTo(0, 9);

    const { out } = await run(dir, args);
    expect(out).toContain("Δ = run − ranks.txt, in points");
    // Without the option the bracketed file is read as ranks all the same, and the table says from what.
    const byLayout = await run(dir, args.slice(0, -2));
    expect(byLayout.out).toContain("read as: ranks.txt ranks (1 = best, bracketed layout); scores.txt scores (higher = better, tab-separated layout)");
    expect(out).toContain("read as: ranks.txt ranks (1 = best, --pred-format); scores.txt scores (higher = better, tab-separated layout)");
    expect(out).toMatch(/cold \(1–5 clicks\): 1 impression/);
    expect(out).toMatch(/warm \(>5 clicks\): 1 impression \(1 skipped: one class only\)/);
    const coldBlock = out.slice(out.indexOf("cold ("), out.indexOf("warm ("));
    expect(coldBlock).toMatch(/ranks\.txt\s+100\.00\s+100\.00\s+100\.00\s+100\.00/);
    expect(coldBlock).toMatch(/Δ scores\.txt\s+-50\.00\s+-50\.00\s+-36\.91\s+-36\.91/);
    const warmBlock = out.slice(out.indexOf("warm ("));
    expect(warmBlock).toMatch(/Δ scores\.txt\s+\+40\.00\s+\+55\.36\s+\+73\.59\s+\+53\.15/);
  });

  describe("runs of several files (seeds) and significance", () => {
    // Clicks first on every impression: AUC and nDCG are 1 (MRR is not: a second click ranks 2nd).
    const PERFECT = ["101\t1 0 0 1", "102\t0 0 1", "103\t0 0", "104\t1 1 0 0 0 0 0 0 0 0 0 0"].join("\n");
    const files = { "behaviors.tsv": TRUTH, "ranks.txt": RANKS.join("\n"), "scores.txt": SCORES.join("\n"), "perfect.txt": PERFECT, "perfect2.txt": PERFECT, "reciprocal.txt": RECIPROCAL.join("\n") };
    const json = async (dir: string, preds: string[], more: string[] = []) =>
      JSON.parse((await run(dir, ["--truth", "behaviors.tsv", ...preds.flatMap((p) => ["--pred", p]), ...more, "--json"])).out) as ScoreReport;

    it("averages a run's files, gives their standard deviation and tests the difference", async () => {
      const dir = await fixture(files);
      const report = await json(dir, ["base=reciprocal.txt,scores.txt", "best=perfect.txt", "best=perfect2.txt"]);
      const [base, best] = report.runs;
      expect(base!.files.map((f) => f.file)).toEqual(["reciprocal.txt", "scores.txt"]);
      expect(best!.files.map((f) => f.file)).toEqual(["perfect.txt", "perfect2.txt"]);
      // All users' AUC per file: reciprocal ranks (0.5 + 1 + 0.6) / 3 = 0.7, scores (0.5 + 0.5 + 1) / 3 = 2/3.
      expect(base!.files[0]!.groups.all.auc).toBeCloseTo(0.7, 12);
      expect(base!.groups.all.auc).toBeCloseTo((0.7 + 2 / 3) / 2, 12);
      expect(base!.std.all.auc).toBeCloseTo(1 / 30 / Math.SQRT2, 12);
      expect(best!.groups.all).toMatchObject({ impressions: 3, skipped: 1, auc: 1, ndcg10: 1 });
      expect(best!.std.all.auc).toBe(0);

      const auc = report.differences[0]!.groups.all.auc;
      expect(auc.difference).toBeCloseTo(100 - ((0.7 + 2 / 3) / 2) * 100, 9);
      // Per file 30 and 33.3 points: t = 19 at 1 degree of freedom (the Cauchy distribution).
      expect(auc.tTest!.t).toBeCloseTo(19, 9);
      expect(auc.tTest!.p).toBeCloseTo(1 - (2 * Math.atan(19)) / Math.PI, 12);
      // Per impression, seeds averaged, the AUC gains are 0.5, 0.25 and 0.2: no resample of them
      // comes near 0, so p is the smallest the bootstrap gives; the interval lies within 20..50 points.
      expect(auc.bootstrap!.p).toBe(1 / 1001);
      expect(auc.bootstrap!.ci[0]).toBeGreaterThanOrEqual(20 - 1e-9);
      expect(auc.bootstrap!.ci[1]).toBeLessThanOrEqual(50 + 1e-9);
      // One impression per group: no bootstrap there; cold's per-file gains 0 and 50 → t = 1, p = ½.
      const cold = report.differences[0]!.groups.cold.auc;
      expect(cold.bootstrap).toBeNull();
      expect(cold.tTest!.p).toBeCloseTo(0.5, 12);
      expect(report.bootstrap).toMatchObject({ resamples: 1000, seed: 1 });

      const out = (await run(dir, ["--truth", "behaviors.tsv", "--pred", "base=reciprocal.txt,scores.txt", "--pred", "best=perfect.txt,perfect2.txt"])).out;
      expect(out).toContain("runs: base (2 files), best (2 files)");
      expect(out).toContain("1,000 resamples (seed 1)");
      const all = out.slice(out.indexOf("all users"), out.indexOf("empty history"));
      expect(all).toMatch(/base\s+68\.33 ± 2\.36/);
      expect(all).toMatch(/best\s+100\.00 ± 0\.00/);
      expect(all).toMatch(/Δ best\s+\+31\.67/);
      expect(all).toMatch(/bootstrap p\s+<0\.001/);
      expect(all).toMatch(/t-test p\s+0\.033/);
    });

    it("resamples users with all their impressions by default, single impressions on request", async () => {
      // U1 and U2, ten impressions each: the better run wins every impression of U1 and none of U2's.
      const rows = Array.from({ length: 20 }, (_, i) => `${i + 1}\t${i < 10 ? "U1" : "U2"}\t${T}\t${history(2)}\t${imps([1, 0])}`);
      const worse = rows.map((_, i) => `${i + 1}\t0 1`);
      const better = rows.map((_, i) => `${i + 1}\t${i < 10 ? "1 0" : "0 1"}`);
      const dir = await fixture({ "behaviors.tsv": rows.join("\n") + "\n", "worse.txt": worse.join("\n"), "better.txt": better.join("\n") });
      const byUsers = await json(dir, ["worse.txt", "better.txt"]);
      expect(byUsers.bootstrap).toMatchObject({ resampleBy: "users", method: expect.stringMatching(/over the users of each group/) });
      const users = byUsers.differences[0]!.groups.all.auc;
      expect(users.difference).toBeCloseTo(50, 9);
      // Two users drawn with replacement: 0, 50 or 100 points; |δ* − 50| ≥ 50 half of the time.
      expect(users.bootstrap!.ci).toEqual([0, 100]);
      expect(users.bootstrap!.p).toBeGreaterThan(0.4);
      const byImpressions = JSON.parse((await run(dir, ["--truth", "behaviors.tsv", "--pred", "worse.txt", "--pred", "better.txt", "--resample-by", "impressions", "--json"])).out) as ScoreReport;
      const impressions = byImpressions.differences[0]!.groups.all.auc.bootstrap!;
      // Twenty draws of 0 or 100 points: standard error 50 / √20 ≈ 11 points.
      expect(impressions.p).toBe(1 / 1001);
      expect(impressions.ci[0]).toBeGreaterThan(20);
      expect(impressions.ci[1]).toBeLessThan(80);
    });

    it("gives the same answer for the same input, and no difference between equal runs", async () => {
      const dir = await fixture({ ...files, "ranks-again.txt": RANKS.join("\n") });
      const a = await json(dir, ["base=ranks.txt", "other=scores.txt"], ["--pred-format", "base=ranks"]);
      expect(await json(dir, ["base=ranks.txt", "other=scores.txt"], ["--pred-format", "base=ranks"])).toEqual(a);
      const same = (await json(dir, ["ranks.txt", "ranks-again.txt"], ["--pred-format", "ranks"])).differences[0]!.groups.all;
      expect(same.mrr).toEqual({ difference: 0, bootstrap: { p: 1, ci: [0, 0] }, tTest: null });
    });

    it("pairs files for the t-test only when both runs have the same number, and says so", async () => {
      const dir = await fixture(files);
      const report = await json(dir, ["base=ranks.txt", "best=perfect.txt,perfect2.txt"], ["--pred-format", "base=ranks"]);
      expect(report.differences[0]!.tTestSkipped).toMatch(/same number of files in both runs \(best 2, base 1\)/);
      expect(report.differences[0]!.groups.all.auc.tTest).toBeNull();
      expect(report.differences[0]!.groups.all.auc.bootstrap).not.toBeNull();
      const out = (await run(dir, ["--truth", "behaviors.tsv", "--pred", "base=ranks.txt", "--pred", "best=perfect.txt,perfect2.txt", "--pred-format", "base=ranks"])).out;
      expect(out).toContain("no t-test for best: a paired t-test needs the same number of files in both runs (best 2, base 1)");
      expect(out).not.toContain("t-test p");
      const quiet = (await run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred", "scores.txt", "--pred-format", "ranks.txt=ranks", "--resamples", "0"])).out;
      expect(quiet).not.toMatch(/bootstrap|t-test/);
    });

    it("refuses --pred values it cannot read", async () => {
      const dir = await fixture(files);
      const args = (p: string) => ["--truth", "behaviors.tsv", "--pred", p];
      await expect(run(dir, args("=ranks.txt"))).rejects.toThrow(/run name before '=' is empty/);
      await expect(run(dir, args("a=ranks.txt,,scores.txt"))).rejects.toThrow(/an empty file name/);
      await expect(run(dir, [...args("a=ranks.txt"), "--pred", "b=ranks.txt"])).rejects.toThrow(/the file ranks\.txt is given twice/);
      await expect(run(dir, [...args("ranks.txt"), "--resamples", "-1"])).rejects.toThrow(/--resamples/);
    });
  });

  describe("ranks or scores", () => {
    // RANKS read as scores: no ties, so each impression's AUC is 1 − its AUC as ranks.
    const AUC_AS_RANKS = (A.auc + 1 + D.auc) / 3;
    const json = async (files: Record<string, string>, args: string[]) =>
      JSON.parse((await run(await fixture({ "behaviors.tsv": TRUTH, ...files }), ["--truth", "behaviors.tsv", ...args, "--json"])).out) as ScoreReport;
    const refused = async (files: Record<string, string>, args: string[]) =>
      run(await fixture({ "behaviors.tsv": TRUTH, ...files }), ["--truth", "behaviors.tsv", ...args]).then(
        () => "",
        (e: Error) => e.message,
      );

    it("reads a bracketed file as ranks, MIND's submission format, says so, and reads it as told", async () => {
      const files = { "p.txt": RANKS.join("\n") };
      const byLayout = await json(files, ["--pred", "p.txt"]);
      expect(byLayout.runs[0]!.groups.all.auc).toBeCloseTo(AUC_AS_RANKS, 12);
      expect(byLayout.runs[0]!.files[0]).toMatchObject({ format: "ranks", formatSource: "layout" });
      const ranks = await json(files, ["--pred", "p.txt", "--pred-format", "ranks"]);
      const scores = await json(files, ["--pred", "p.txt", "--pred-format", "scores"]);
      expect(ranks.runs[0]!.groups).toEqual(byLayout.runs[0]!.groups);
      expect(scores.runs[0]!.groups.all.auc).toBeCloseTo(1 - AUC_AS_RANKS, 12);
      expect(scores.runs[0]!.files[0]).toMatchObject({ format: "scores", formatSource: "given" });
      // A run's own value wins over the one for every run.
      const named = await json(files, ["--pred", "p.txt", "--pred-format", "scores", "--pred-format", "p.txt=ranks"]);
      expect(named.runs[0]!.groups.all.auc).toBeCloseTo(AUC_AS_RANKS, 12);
    });

    it("refuses a bracketed file of scores without --pred-format, and reads it as the tab-separated layout with it", async () => {
      const bracketed = SCORES.map((l) => l.replace(/\t(.*)$/, (_, v: string) => ` [${v.split(" ").join(",")}]`));
      const files = { "b.txt": bracketed.join("\n"), "t.txt": SCORES.join("\n") };
      expect(await refused(files, ["--pred", "b.txt"])).toMatch(
        /\/b\.txt:1 \[ranks\]: rank 0\.9 at position 2 is not a whole number from 1 to 12.*\(read as ranks, as MIND's bracketed submission format holds; a file of scores needs --pred-format scores\)$/,
      );
      const report = await json(files, ["--pred", "b.txt", "--pred", "t.txt", "--pred-format", "b.txt=scores"]);
      expect(report.runs[0]!.groups).toEqual(report.runs[1]!.groups);
      expect(report.runs[1]!.files[0]).toMatchObject({ format: "scores", formatSource: "layout" });
    });

    it("reads a file of permutations and other lists with one meaning for every line, never line by line", async () => {
      // Line 1 reads either way; line 2 cannot be ranks. Impression 102 (cold) clicks its third
      // candidate: ranked 1st (AUC 1) as ranks, scored lowest (AUC 0) as scores.
      const mixed = ["102 [3,2,1]", "101 [0.5,0.5,0.2,0.2]", "103 [0.1,0.2]", SCORES[0]!.replace(/\t(.*)$/, (_, v: string) => ` [${v.split(" ").join(",")}]`)];
      const files = { "m.txt": mixed.join("\n") };
      expect(await refused(files, ["--pred", "m.txt"])).toMatch(/\/m\.txt:2 \[ranks\]: rank 0\.5 at position 1 is not a whole number from 1 to 4.*\(read as ranks, as MIND's bracketed submission format holds; a file of scores needs --pred-format scores\)$/);
      expect(await refused(files, ["--pred", "m.txt", "--pred-format", "ranks"])).toMatch(
        /\/m\.txt:2 \[ranks\]: rank 0\.5 at position 1 is not a whole number from 1 to 4.*\(read as ranks by --pred-format ranks; a file of scores needs --pred-format scores\)$/,
      );
      const scores = await json(files, ["--pred", "m.txt", "--pred-format", "scores"]);
      expect(scores.runs[0]!.groups.cold.auc).toBe(0);
      expect(scores.runs[0]!.groups.empty.auc).toBeCloseTo(A.auc, 12);

      // The tab-separated layout is scores, every line of it, permutations among them included.
      const tab = ["101\t0.5 0.5 0.2 0.2", "102\t3 2 1", "103\t0.1 0.2", SCORES[0]!];
      const read = await json({ "t.txt": tab.join("\n") }, ["--pred", "t.txt"]);
      expect(read.runs[0]!.files[0]).toMatchObject({ format: "scores", formatSource: "layout" });
      expect(read.runs[0]!.groups.cold.auc).toBe(0);
      // A line of the other layout has no meaning of its own either, whichever layout comes first.
      const layouts = { "l.txt": [tab[0], "102 [3,2,1]", ...tab.slice(2)].join("\n") };
      expect(await refused(layouts, ["--pred", "l.txt"])).toMatch(/\/l\.txt:2: '\[3,2,1\]' is bracketed in a file whose first line \(line 1\) is tab-separated \(scores\): .*--pred-format ranks or --pred-format scores/);
      expect((await json(layouts, ["--pred", "l.txt", "--pred-format", "scores"])).runs[0]!.groups.cold.auc).toBe(0);
      const other = { "o.txt": ["102 [3,2,1]", tab[0], ...tab.slice(2)].join("\n") };
      expect(await refused(other, ["--pred", "o.txt"])).toMatch(/\/o\.txt:2: '0\.5 0\.5 0\.2 0\.2' is tab-separated in a file whose first line \(line 1\) is bracketed \(ranks\)/);
    });

    it("refuses a tab-separated file every line of which is a permutation, and reads it as told", async () => {
      const files = { "t.txt": RANKS.map((l) => l.replace(/ \[(.*)\]$/, (_, r: string) => "\t" + r.split(",").join(" "))).join("\n") };
      expect(await refused(files, ["--pred", "t.txt"])).toMatch(
        /\/t\.txt:1 \[scores\]: every line of the 4 is a permutation of 1\.\.n \(line 1: '2 1 4 3'\), as ranks are, .*say which with --pred-format ranks or --pred-format scores/,
      );
      expect((await json(files, ["--pred", "t.txt", "--pred-format", "ranks"])).runs[0]!.groups.all.auc).toBeCloseTo(AUC_AS_RANKS, 12);
      expect((await json(files, ["--pred", "t.txt", "--pred-format", "scores"])).runs[0]!.groups.all.auc).toBeCloseTo(1 - AUC_AS_RANKS, 12);
    });

    it("reads ranks as the tab-separated scores 1 / rank, as before", async () => {
      const report = await json({ "r.txt": RANKS.join("\n"), "s.txt": RECIPROCAL.join("\n") }, ["--pred", "r.txt", "--pred", "s.txt", "--pred-format", "r.txt=ranks"]);
      expect(report.runs[1]!.groups).toEqual(report.runs[0]!.groups);
      expect(report.runs[0]!.groups.all.auc).toBeCloseTo(AUC_AS_RANKS, 12);
    });

    it("refuses --pred-format values it cannot apply", async () => {
      const files = { "p.txt": RANKS.join("\n") };
      expect(await refused(files, ["--pred", "p.txt", "--pred-format", "rank"])).toMatch(/--pred-format 'rank': expected ranks or scores, or <run>=ranks\|scores/);
      expect(await refused(files, ["--pred", "p.txt", "--pred-format", "q=ranks"])).toMatch(/--pred-format 'q=ranks': no run named 'q' \(runs: p\.txt\)/);
      expect(await refused(files, ["--pred", "p.txt", "--pred-format", "ranks", "--pred-format", "scores"])).toMatch(/--pred-format: both ranks and scores for every run/);
      expect(await refused(files, ["--pred", "p.txt", "--pred-format", "p.txt=ranks", "--pred-format", "p.txt=scores"])).toMatch(/--pred-format: both ranks and scores for run 'p\.txt'/);
    });
  });

  it("matches predictions by truth line number with --match line", async () => {
    const dir = await fixture({
      "behaviors.tsv": TRUTH.replace(/^10/gm, "90"),
      "ranks.txt": RANKS.map((l, i) => l.replace(/^\d+/, String(i + 1))).join("\n"),
    });
    await expect(run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred-format", "ranks"])).rejects.toThrow(/behaviors\.tsv:1 \[Impression ID\]: no prediction for impression 901 .*; the file has a prediction keyed 1: run with --match line$/);
    const report = JSON.parse((await run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred-format", "ranks", "--match", "line", "--json"])).out) as ScoreReport;
    expect(report.runs[0]!.groups.all.auc).toBeCloseTo((A.auc + 1 + D.auc) / 3, 12);
  });

  const bad: [string, string[], RegExp][] = [
    ["a missing prediction", RANKS.slice(0, 3), /behaviors\.tsv:4 \[Impression ID\]: no prediction for impression 104 in .*ranks\.txt/],
    ["a wrong number of candidates", [RANKS[0]!, "102 [2,1]", ...RANKS.slice(2)], /ranks\.txt:2 \[ranks\]: 2 candidates, but impression 102 .* has 3/],
    ["a repeated rank", ["101 [1,1,2,3]", ...RANKS.slice(1)], /ranks\.txt:1 \[ranks\]: rank 1 appears twice: the ranks must be a permutation of 1\.\.4/],
    ["a rank out of range", [RANKS[0]!, "102 [0,1,2]", ...RANKS.slice(2)], /ranks\.txt:2 \[ranks\]: rank 0 .*permutation of 1\.\.3/],
    ["a list that is not JSON", [RANKS[0]!, "102 [1,2", ...RANKS.slice(2)], /ranks\.txt:2 \[ranks\]: expected a list of ranks/],
    ["a line of scores in a file of ranks", [RANKS[0]!, "102\t0.1 0.2 0.3", ...RANKS.slice(2)], /ranks\.txt:2 \[ranks\]: rank 0\.1 at position 1 .*\(read as ranks by --pred-format ranks; a file of scores needs --pred-format scores\)$/],
    ["a prediction for an unknown impression", [...RANKS, "999 [1]"], /ranks\.txt:5: prediction for impression 999, which the truth file does not have/],
    ["two predictions for one impression", [RANKS[1]!, RANKS[1]!, RANKS[0]!, ...RANKS.slice(2)], /ranks\.txt:2: a second prediction for impression 102 \(first on line 1\)/],
  ];
  for (const [what, lines, message] of bad) {
    it(`names the line of ${what}`, async () => {
      const dir = await fixture({ "behaviors.tsv": TRUTH, "ranks.txt": lines.join("\n") + "\n" });
      await expect(run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--pred-format", "ranks"])).rejects.toThrow(message);
    });
  }

  it("asks for --truth and --pred", async () => {
    const dir = await fixture({ "behaviors.tsv": TRUTH, "ranks.txt": RANKS.join("\n") });
    await expect(run(dir, ["--pred", "ranks.txt"])).rejects.toThrow(UsageError);
    await expect(run(dir, ["--truth", "behaviors.tsv"])).rejects.toThrow(/--pred/);
    await expect(run(dir, ["--truth", "behaviors.tsv", "--pred", "ranks.txt", "--match", "row"])).rejects.toThrow(/--match/);
  });

  it("names a non-numeric score and an unlabeled truth line", async () => {
    let dir = await fixture({ "behaviors.tsv": TRUTH, "s.txt": "101\t0.5 x 0.2 0.2\n" });
    await expect(run(dir, ["--truth", "behaviors.tsv", "--pred", "s.txt"])).rejects.toThrow(/s\.txt:1 \[scores\]: score 'x' at position 2/);
    dir = await fixture({ "behaviors.tsv": `1\tU1\t${T}\t\tN1 N2\n`, "s.txt": "1\t0.5 0.2\n" });
    await expect(run(dir, ["--truth", "behaviors.tsv", "--pred", "s.txt"])).rejects.toThrow(/behaviors\.tsv:1 \[Impressions\]: no click labels/);
  });

  it.skipIf(!NUMPY)("agrees with numpy on random impressions", async () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const cases: { labels: number[]; scores: number[] }[] = [];
    while (cases.length < 200) {
      const n = 2 + Math.floor(rand() * 40);
      const labels = Array.from({ length: n }, () => (rand() < 0.2 ? 1 : 0));
      if (labels.every((l) => l === labels[0])) continue;
      // Distinct scores: numpy's sort order of ties is unspecified, and the official script inherits that.
      const scores = Array.from({ length: n }, (_, i) => rand() + i * 1e-9);
      cases.push({ labels, scores });
    }
    const py = `
import json, sys
import numpy as np
def order(s): return np.argsort(s)[::-1]
def dcg(y, s, k):
    y = np.take(y, order(s)[:k]); return np.sum((2 ** y - 1) / np.log2(np.arange(len(y)) + 2))
def auc(y, s):
    p = s[y == 1]; q = s[y == 0]
    return float(np.mean((p[:, None] > q[None, :]) + 0.5 * (p[:, None] == q[None, :])))
out = []
for c in json.load(sys.stdin):
    y = np.array(c["labels"], dtype="float32"); s = np.array(c["scores"])
    mrr = np.sum(np.take(y, order(s)) / (np.arange(len(y)) + 1)) / np.sum(y)
    out.append([auc(y, s), float(mrr), float(dcg(y, s, 5) / dcg(y, y, 5)), float(dcg(y, s, 10) / dcg(y, y, 10))])
print(json.dumps(out))`;
    const expected = python(py, JSON.stringify(cases)) as number[][];
    cases.forEach((c, i) => {
      const m = impressionMetrics(c.labels, c.scores)!;
      expect([m.auc, m.mrr, m.ndcg5, m.ndcg10].map((v) => v.toFixed(12))).toEqual(expected[i]!.map((v) => v.toFixed(12)));
    });
  });
});

