/**
 * Speed and memory of `score` and of the GloVe pass of `export recommenders`, each run in a child
 * process so its peak RSS is its own. Ratios are against a baseline measured in the same run: the
 * bare streaming read of the same file (what no implementation can avoid).
 *
 *   npm run bench:score [-- --impressions 200000 --glove-words 100000]
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { readBehaviors, readLineBatches, parseImpressions } from "../src/mind/read.js";
import { scorePredictions, scoreReport } from "../src/trainer/score.js";
import { gloveMatrix } from "../src/trainer/glove.js";

const self = fileURLToPath(import.meta.url);

/** Deterministic: the same files every run. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

async function writeLines(file: string, lines: Iterable<string>): Promise<void> {
  const out = createWriteStream(file);
  let chunk: string[] = [];
  for (const line of lines) {
    chunk.push(line);
    if (chunk.length === 2000) {
      if (!out.write(chunk.join(""))) await once(out, "drain");
      chunk = [];
    }
  }
  out.end(chunk.join(""));
  await once(out, "finish");
}

async function makeFiles(dir: string, impressions: number, gloveWords: number): Promise<void> {
  const rand = lcg(1);
  const sizes: number[] = [];
  function* truth() {
    for (let i = 1; i <= impressions; i++) {
      const n = 2 + Math.floor(rand() * 70); // mean ≈ 37 candidates, as in MIND
      sizes.push(n);
      const hist = Array.from({ length: Math.floor(rand() * 40) }, (_, j) => `N${j + 1}`).join(" ");
      const imps = Array.from({ length: n }, (_, j) => `N${1000 + j}-${j === 0 || rand() < 0.04 ? 1 : 0}`).join(" ");
      yield `${i}\tU${i % 50000}\t11/15/2019 10:22:32 AM\t${hist}\t${imps}\n`;
    }
  }
  await writeLines(join(dir, "truth.tsv"), truth());
  const scoreLine = (i: number) => `${i}\t${Array.from({ length: sizes[i - 1]! }, () => rand().toFixed(6)).join(" ")}\n`;
  function* inOrder() {
    for (let i = 1; i <= impressions; i++) yield scoreLine(i);
  }
  function* reversed() {
    for (let i = impressions; i >= 1; i--) yield scoreLine(i);
  }
  function* ranks() {
    for (let i = 1; i <= impressions; i++) {
      const r = Array.from({ length: sizes[i - 1]! }, (_, j) => j + 1).sort(() => rand() - 0.5);
      yield `${i} [${r.join(",")}]\n`;
    }
  }
  await writeLines(join(dir, "scores.txt"), inOrder());
  await writeLines(join(dir, "reversed.txt"), reversed());
  await writeLines(join(dir, "ranks.txt"), ranks());
  // A second seed of each, for the case of runs of several files.
  await writeLines(join(dir, "scores2.txt"), inOrder());
  await writeLines(join(dir, "ranks2.txt"), ranks());
  function* glove() {
    for (let w = 0; w < gloveWords; w++) yield `w${w} ${Array.from({ length: 300 }, () => (rand() - 0.5).toFixed(5)).join(" ")}\n`;
  }
  await writeLines(join(dir, "glove.txt"), glove());
}

async function child(mode: string, dir: string): Promise<string> {
  const truth = join(dir, "truth.tsv");
  const score = async (runs: string[][]) => {
    const specs = runs.map((files) => ({ name: files.join(","), files: files.map((f) => join(dir, f)) }));
    const opts = { truth, runs: specs, coldMax: 5, matchBy: "id" as const };
    return scoreReport(opts, await scorePredictions(opts), { resamples: 1000, seed: 1, resampleBy: "users" });
  };
  switch (mode) {
    case "read-truth": {
      let n = 0;
      for await (const row of readBehaviors(truth)) n += parseImpressions(row.impressions).length;
      return `${n} candidates`;
    }
    case "score-in-order":
      return `AUC ${(await score([["scores.txt"]])).runs[0]!.groups.all.auc!.toFixed(4)}`;
    case "score-ranks":
      return `AUC ${(await score([["ranks.txt"]])).runs[0]!.groups.all.auc!.toFixed(4)}`;
    case "score-reversed":
      return `AUC ${(await score([["reversed.txt"]])).runs[0]!.groups.all.auc!.toFixed(4)}`;
    case "score-two-runs":
      return `bootstrap p ${(await score([["scores.txt"], ["ranks.txt"]])).differences[0]!.groups.all.auc.bootstrap!.p.toFixed(4)}`;
    case "score-seeds": {
      // Two runs of two seeds each: 4 files read, per-impression values kept, bootstrap and t-test.
      const r = await score([["scores.txt", "scores2.txt"], ["ranks.txt", "ranks2.txt"]]);
      return `bootstrap p ${r.differences[0]!.groups.all.auc.bootstrap!.p.toFixed(4)}, t-test p ${r.differences[0]!.groups.all.auc.tTest!.p.toFixed(4)}`;
    }
    case "read-glove": {
      let n = 0;
      for await (const batch of readLineBatches(join(dir, "glove.txt"))) n += batch.length;
      return `${n} lines`;
    }
    case "glove-matrix": {
      // A 30k-word vocabulary, two thirds of it in the GloVe file.
      const vocab = new Map<string, number>();
      for (let i = 0; i < 30000; i++) vocab.set(i % 3 === 2 ? `x${i}` : `w${i * 2}`, i + 1);
      const m = await gloveMatrix(join(dir, "glove.txt"), vocab);
      return `${m.found} found`;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

interface Measured {
  seconds: number;
  maxRssMb: number;
  note: string;
}

function measure(mode: string, dir: string): Measured {
  const r = spawnSync(process.execPath, [...process.execArgv, self, "--child", mode, "--dir", dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${mode} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Measured;
}

const { values } = parseArgs({
  options: {
    child: { type: "string" },
    dir: { type: "string" },
    impressions: { type: "string", default: "200000" },
    "glove-words": { type: "string", default: "100000" },
  },
});

if (values.child) {
  const t0 = performance.now();
  const note = await child(values.child, values.dir!);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ seconds, maxRssMb: process.resourceUsage().maxRSS / 1024, note }));
} else {
  const dir = await mkdtemp(join(tmpdir(), "gm-bench-score-"));
  try {
    const impressions = Number(values.impressions);
    console.log(`writing ${impressions} impressions and ${values["glove-words"]} GloVe words (300-d) to ${dir} …`);
    await makeFiles(dir, impressions, Number(values["glove-words"]));
    const rows: [string, string][] = [
      ["read-truth", "read-truth"],
      ["score-in-order", "read-truth"],
      ["score-ranks", "read-truth"],
      ["score-reversed", "read-truth"],
      ["score-two-runs", "read-truth"],
      ["score-seeds", "read-truth"],
      ["read-glove", "read-glove"],
      ["glove-matrix", "read-glove"],
    ];
    const results = new Map<string, Measured>();
    for (const [mode] of rows) results.set(mode, measure(mode, dir));
    console.log(`${"case".padEnd(16)} ${"seconds".padStart(8)} ${"× baseline".padStart(11)} ${"peak RSS MB".padStart(12)}  note`);
    for (const [mode, base] of rows) {
      const m = results.get(mode)!;
      const ratio = m.seconds / results.get(base)!.seconds;
      console.log(`${mode.padEnd(16)} ${m.seconds.toFixed(2).padStart(8)} ${ratio.toFixed(2).padStart(11)} ${m.maxRssMb.toFixed(0).padStart(12)}  ${m.note} (baseline ${base})`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
