import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { SplitReport } from "../src/mind/validate.js";
import { runCliCaptured } from "./helpers/cli.js";
import { writeSplit } from "./helpers/split.js";
import { tempDir } from "./helpers/temp.js";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");
const TRAIN = "MINDsample_train";

interface JsonReport {
  ok: boolean;
  errors: number;
  warnings: number;
  splits: SplitReport[];
}

async function validate(args: string[], cwd: string) {
  return runCliCaptured(["validate", ...args], { cwd });
}

async function validateJson(dir: string, ...flags: string[]): Promise<{ code: number; report: JsonReport; stderr: string }> {
  const r = await validate([dir, "--json", ...flags], dir);
  return { code: r.code, report: JSON.parse(r.stdout) as JsonReport, stderr: r.stderr };
}

/** A copy of the sample's train split, with `edit` applied to the lines of one of its files. */
async function brokenCopy(file: "news.tsv" | "behaviors.tsv", edit: (lines: string[]) => string[]): Promise<string> {
  const dir = await tempDir("gm-validate-");
  await cp(join(SAMPLE, TRAIN), dir, { recursive: true });
  const text = await readFile(join(dir, file), "utf8");
  await writeFile(join(dir, file), edit(text.slice(0, -1).split("\n")).join("\n") + "\n");
  return dir;
}

const problem = (report: JsonReport, code: string) => report.splits[0]!.problems.find((p) => p.code === code);
const fields = (line: string) => line.split("\t");

describe("validate on the bundled sample", () => {
  it("is clean: exit 0, per-split counts that match the files", async () => {
    const r = await validate(["mind-data/sample"], join(import.meta.dirname, ".."));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^MINDsample_dev {2}\(mind-data\/sample\/MINDsample_dev\)$/m);
    expect(r.stdout).toMatch(/2 splits checked: clean\n$/);

    const { code, report } = await validateJson(SAMPLE);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.splits.map((s) => s.name)).toEqual(["MINDsample_train", "MINDsample_dev"]);
    for (const split of report.splits) {
      expect(split.problems).toEqual([]);
      const news = (await readFile(join(SAMPLE, split.name, "news.tsv"), "utf8")).trimEnd().split("\n");
      const behaviors = (await readFile(join(SAMPLE, split.name, "behaviors.tsv"), "utf8")).trimEnd().split("\n").map(fields);
      const histories = new Map(behaviors.map((f) => [f[1]!, f[3]!.split(" ").filter(Boolean).length]));
      const c = split.counts;
      expect(c.news).toBe(news.length);
      expect(c.impressions).toBe(behaviors.length);
      expect(c.users).toBe(histories.size);
      expect(c.clicks).toBe(behaviors.reduce((n, f) => n + f[4]!.split(" ").filter((t) => t.endsWith("-1")).length, 0));
      expect(c.emptyHistories).toBe([...histories.values()].filter((n) => n === 0).length);
      expect(c.coldUsers).toBe([...histories.values()].filter((n) => n >= 1 && n <= 5).length);
      expect(c.coldUsers).toBeGreaterThan(0);
      expect(Object.values(c.categories).reduce((a, b) => a + b, 0)).toBe(news.length);
    }
    const dev = report.splits[1]!.counts;
    expect(Object.keys(dev.categories)).toHaveLength(18);
    expect(report.splits[0]!.counts.emptyHistories).toBeGreaterThan(0);
  });

  it("takes the cold threshold from --cold-max", async () => {
    const five = (await validateJson(join(SAMPLE, TRAIN))).report.splits[0]!.counts;
    const two = (await validateJson(join(SAMPLE, TRAIN), "--cold-max", "2")).report.splits[0]!.counts;
    expect(two.coldMax).toBe(2);
    expect(two.coldUsers).toBeLessThan(five.coldUsers);
  });
});

describe("validate on broken copies", () => {
  it("reports a duplicate news ID with both line numbers", async () => {
    const dir = await brokenCopy("news.tsv", (lines) => [...lines, lines[2]!]);
    const { code, report } = await validateJson(dir);
    expect(code).toBe(1);
    const p = problem(report, "duplicate-news-id")!;
    expect(p.severity).toBe("error");
    expect(p.count).toBe(1);
    const lines = (await readFile(join(dir, "news.tsv"), "utf8")).trimEnd().split("\n");
    expect(p.examples).toEqual([`news.tsv:${lines.length} [News ID]: ${fields(lines[2]!)[0]} (first on line 3)`]);
  });

  it("reports history and impression IDs missing from news.tsv, with the count and where they are", async () => {
    const behaviors = (await readFile(join(SAMPLE, TRAIN, "behaviors.tsv"), "utf8")).trimEnd().split("\n").map(fields);
    const historyId = behaviors.find((f) => f[3]!.length > 0)![3]!.split(" ")[0]!;
    const impressionId = behaviors[0]![4]!.split(" ")[0]!.split("-")[0]!;
    const dir = await brokenCopy("news.tsv", (lines) => lines.filter((l) => !l.startsWith(`${historyId}\t`) && !l.startsWith(`${impressionId}\t`)));
    const { code, report } = await validateJson(dir);
    expect(code).toBe(1);

    // Histories are checked once per user (they are the same on every row of a user).
    const usersWith = (id: string) => new Set(behaviors.filter((f) => f[3]!.split(" ").includes(id)).map((f) => f[1])).size;
    const rowsWith = (id: string) => behaviors.filter((f) => f[4]!.split(" ").some((t) => t.startsWith(`${id}-`))).length;
    const hist = problem(report, "missing-history-id")!;
    expect(hist.count).toBe(usersWith(historyId) + usersWith(impressionId));
    expect(hist.examples[0]).toMatch(new RegExp(`^behaviors\\.tsv:\\d+ \\[History\\]: (${historyId}|${impressionId})$`));
    const imp = problem(report, "missing-impression-id")!;
    expect(imp.count).toBe(rowsWith(historyId) + rowsWith(impressionId));
    expect(imp.examples[0]).toBe(`behaviors.tsv:1 [Impressions]: ${impressionId}`);
    expect(imp.message).toMatch(/references to [12] distinct IDs/);
  });

  it("reports labels other than 0/1 and a '-' in a news ID as errors", async () => {
    let dir = await brokenCopy("behaviors.tsv", (lines) => lines.map((l, i) => (i === 4 ? l.replace(/-0( |$)/, "-2$1") : l)));
    let { code, report } = await validateJson(dir);
    expect(code).toBe(1);
    expect(problem(report, "bad-label")!.examples[0]).toMatch(/^behaviors\.tsv:5 \[Impressions\]: 'N\d+-2'$/);

    dir = await brokenCopy("news.tsv", (lines) => [...lines, lines[0]!.replace(/^N\d+/, "N1-2")]);
    ({ code, report } = await validateJson(dir));
    expect(code).toBe(1);
    expect(problem(report, "dash-in-news-id")!.examples).toEqual([`news.tsv:${report.splits[0]!.counts.news} [News ID]: N1-2`]);
  });

  it("reports a user whose history differs between rows of the split", async () => {
    const dir = await brokenCopy("behaviors.tsv", (lines) => {
      const users = lines.map((l) => fields(l)[1]);
      const i = users.findIndex((u, k) => users.indexOf(u) !== k);
      const f = fields(lines[i]!);
      f[3] = f[3]!.split(" ").slice(1).join(" ");
      lines[i] = f.join("\t");
      return lines;
    });
    const { code, report } = await validateJson(dir);
    expect(code).toBe(1);
    const p = problem(report, "history-differs")!;
    expect(p.count).toBe(1);
    expect(p.examples[0]).toMatch(/^behaviors\.tsv:\d+ \[History\]: U\d+ \(history differs from line \d+\)$/);
  });

  it("warns (exit 0) about IDs trainers cannot parse as N<digits>/U<digits>", async () => {
    const dir = await brokenCopy("behaviors.tsv", (lines) => lines.map((l) => l.replace(/^(\d+)\tU/, "$1\tuser")));
    const { code, report } = await validateJson(dir);
    expect(code).toBe(0);
    const p = problem(report, "unreadable-user-id")!;
    expect(p.severity).toBe("warning");
    expect(p.count).toBe(report.splits[0]!.counts.users);
  });

  it("stops at a malformed line naming file, line and field; --lenient counts, skips and checks the rest", async () => {
    const dir = await brokenCopy("behaviors.tsv", (lines) => lines.map((l, i) => (i === 6 ? `${l}\textra` : i === 9 ? l.replace(/\tU\d+\t/, "\t\t") : l)));
    const strict = await validate([dir], dir);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^genre-mind validate: behaviors\.tsv:7: expected 5 tab-separated fields \(behaviors\.tsv\), found 6\n.*--lenient/);

    const { code, report } = await validateJson(dir, "--lenient");
    expect(code).toBe(1);
    const p = problem(report, "malformed-line")!;
    expect(p.examples).toEqual([
      "behaviors.tsv:7: expected 5 tab-separated fields (behaviors.tsv), found 6",
      "behaviors.tsv:10 [User ID]: empty user ID",
    ]);
    const c = report.splits[0]!.counts;
    expect(c.skippedLines).toBe(2);
    const total = (await readFile(join(dir, "behaviors.tsv"), "utf8")).trimEnd().split("\n").length;
    expect(c.impressions).toBe(total - 2);
  });

  it("reports lines that are not UTF-8 with file:line: an error, a warning under --lenient", async () => {
    const dir = await brokenCopy("news.tsv", (lines) => lines);
    const lines = (await readFile(join(dir, "news.tsv"))).toString("latin1").split("\n");
    // Latin-1 é (0xE9) in the titles of lines 3 and 5, as a file re-saved in the wrong encoding has it.
    for (const i of [2, 4]) lines[i] = lines[i]!.replace(/^((?:[^\t]*\t){3})/, "$1Caf\u00e9 ");
    await writeFile(join(dir, "news.tsv"), Buffer.from(lines.join("\n"), "latin1"));
    const { code, report } = await validateJson(dir);
    expect(code).toBe(1);
    const p = problem(report, "invalid-utf8")!;
    expect(p).toMatchObject({ severity: "error", count: 2 });
    expect(p.examples[0]).toMatch(/^news\.tsv:3: '.*Caf\uFFFD .*' \(column \d+\)$/);
    expect(p.examples[1]).toMatch(/^news\.tsv:5: /);
    expect(report.splits[0]!.counts.news).toBe(lines.filter(Boolean).length);
    const lenient = await validateJson(dir, "--lenient");
    expect(lenient.code).toBe(0);
    expect(problem(lenient.report, "invalid-utf8")).toMatchObject({ severity: "warning", count: 2 });
  });

  it("names the entity field when a news line has bad entity JSON", async () => {
    const dir = await brokenCopy("news.tsv", (lines) => lines.map((l, i) => (i === 3 ? l.replace(/\t\[[^\t]*\]$/, "\t[{oops") : l)));
    const r = await validate([dir], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^genre-mind validate: news\.tsv:4 \[Abstract Entities\]: invalid JSON/);
  });

  it("accepts an unlabeled test split (MIND-large test) and counts its rows", async () => {
    const dir = await brokenCopy("behaviors.tsv", (lines) => lines.map((l) => l.replace(/-[01]( |$)/g, "$1")));
    const { code, report } = await validateJson(dir);
    expect(code).toBe(0);
    expect(report.splits[0]!.counts.unlabeledImpressions).toBe(report.splits[0]!.counts.impressions);
    expect(report.splits[0]!.counts.clicks).toBe(0);
  });

  it("accepts CRLF files with a BOM", async () => {
    const dir = await tempDir("gm-validate-");
    await cp(join(SAMPLE, TRAIN), dir, { recursive: true });
    for (const f of ["news.tsv", "behaviors.tsv"]) {
      const text = await readFile(join(dir, f), "utf8");
      await writeFile(join(dir, f), "\uFEFF" + text.replace(/\n/g, "\r\n"));
    }
    const { code, report } = await validateJson(dir);
    expect(report.splits[0]!.problems).toEqual([]);
    expect(code).toBe(0);
  });
});

describe("validate usage", () => {
  it("exits 2 for a bad flag, a bad value or a missing folder argument", async () => {
    const cwd = join(import.meta.dirname, "..");
    for (const args of [["mind-data/sample", "--no-such-flag"], ["mind-data/sample", "--cold-max", "0"], ["mind-data/sample", "--cold-max", "x"], []]) {
      const r = await validate(args, cwd);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/genre-mind validate: .+\nRun 'genre-mind validate --help' for usage\./);
    }
  });

  it("exits 2 naming the folder when it holds no split", async () => {
    const dir = await tempDir("gm-validate-");
    await mkdir(join(dir, "empty"));
    const r = await validate(["empty"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/empty: neither a split folder/);
  });

  it("exits 2 naming the split folder that lacks one of its two files, alone or in a folder of splits", async () => {
    const dir = await tempDir("gm-validate-");
    await writeSplit(join(dir, "data", "train"), [["N1", "news", "newsus", "T", "", "u", "[]", "[]"]], [["1", "U1", "11/15/2019 9:00:00 AM", "", "N1-1"]]);
    await mkdir(join(dir, "data", "dev"));
    await writeFile(join(dir, "data", "dev", "news.tsv"), "N1\tnews\tnewsus\tT\t\tu\t[]\t[]\n");
    // A folder holding neither file (a zip's leftovers, notes) is no split and is passed over.
    await mkdir(join(dir, "data", "notes"));
    let r = await validate(["data"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/data\/dev: has news.tsv but no behaviors.tsv \(a split folder needs both\)/);
    r = await validate([join("data", "dev")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/data\/dev: has news.tsv but no behaviors.tsv/);
    await writeFile(join(dir, "data", "dev", "behaviors.tsv"), "2\tU1\t11/16/2019 9:00:00 AM\tN1\tN1-0\n");
    r = await validate(["data"], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 splits checked/);
  });
});
