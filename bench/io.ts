/**
 * bench:io — how fast `genre-mind validate` reads MIND-large-shaped data, and at what memory,
 * against baselines read in the same run: pandas (when installed), csv-parse configured for MIND,
 * and our own line reader alone.
 *
 *   npm run bench:io -- --size <MB>       behaviors.tsv size in MB (10^6 bytes; MIND-large train is 1374)
 *   npm run bench:io -- --size 200 --only validate,pandas
 *
 * The synthetic split lives in bench/.data/ (gitignored) and is reused by later runs of the same
 * size. Each tool runs in its own child process; peak RSS is the child's own maxRSS.
 */
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";

const HERE = fileURLToPath(import.meta.url);
const ROOT = resolve(HERE, "..", "..");

// MIND-large train, for scaling (see shared/docs/mind-format.md).
const LARGE = { behaviorsBytes: 1_373_844_151, users: 711_222, news: 101_527 };

// --- synthetic data ---------------------------------------------------------------------------

/** xorshift32: deterministic and cheap enough to draw ~100M numbers. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the a new of in to for and on with after how why what says could will first years state city police team season game win loss " +
  "stocks market home prices weather storm cold snow school family dog fans coach star show movie music food recipe holiday week " +
  "report study doctors health best worst top ways things know trump court vote plan deal jobs company car recall flight travel"
).split(" ");
const CATEGORIES = ["news", "sports", "finance", "lifestyle", "health", "weather", "entertainment", "autos", "travel", "foodanddrink", "tv", "movies", "video", "music", "kids", "middleeast", "northamerica", "games"];

async function generate(dir: string, behaviorsMb: number): Promise<void> {
  const rand = rng(1373);
  const scale = (behaviorsMb * 1e6) / LARGE.behaviorsBytes;
  const newsCount = Math.max(5000, Math.min(LARGE.news, Math.round(LARGE.news * scale)));
  const userCount = Math.max(1000, Math.round(LARGE.users * scale));
  const words = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]!).join(" ");
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  mkdirSync(dir, { recursive: true });

  // News IDs like MIND's: N + integers up to ~130k, not contiguous.
  const ids: string[] = [];
  const used = new Set<number>();
  while (ids.length < newsCount) {
    const n = 1 + Math.floor(rand() * newsCount * 1.3);
    if (!used.has(n)) {
      used.add(n);
      ids.push(`N${n}`);
    }
  }
  const entity = (label: string, surface: string, offset: number) =>
    `{"Label": "${label}", "Type": "${rand() < 0.3 ? "G" : "O"}", "WikidataId": "Q${Math.floor(rand() * 9e6)}", "Confidence": 0.${Math.floor(rand() * 1000)}, "OccurrenceOffsets": [${offset}], "SurfaceForms": ["${surface}"]}`;
  const newsOut: string[] = [];
  for (const id of ids) {
    const title = words(8 + Math.floor(rand() * 7));
    const abstract = rand() < 0.05 ? "" : words(25 + Math.floor(rand() * 20));
    const te = rand() < 0.7 ? `[${entity("Title Entity", title.split(" ")[0]!, 0)}]` : "[]";
    const ae = abstract && rand() < 0.8 ? `[${entity("Abstract Entity One", abstract.split(" ")[0]!, 0)}, ${entity("Abstract Entity Two", abstract.split(" ")[1]!, 2)}]` : "[]";
    const cat = CATEGORIES[Math.floor(rand() ** 2 * CATEGORIES.length)]!;
    newsOut.push(`${id}\t${cat}\t${cat}sub\t${title}\t${abstract}\thttps://assets.msn.com/labs/mind/AA${id.slice(1)}.html\t${te}\t${ae}\n`);
  }
  writeFileSync(join(dir, "news.tsv.tmp"), newsOut.join(""));
  renameSync(join(dir, "news.tsv.tmp"), join(dir, "news.tsv"));

  // Popular news are drawn more often, as in MIND.
  const pickNews = () => ids[Math.floor(rand() ** 1.6 * ids.length)]!;
  const clickTok = ids.map((id) => `${id}-1`);
  const skipTok = ids.map((id) => `${id}-0`);
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  // History length: log-normal with MIND-large's median 19 and mean ~32.5, capped at 801; ~2.4% empty.
  const historyOf: (string | undefined)[] = new Array(userCount);
  const userIds = Array.from({ length: userCount }, (_, i) => `U${i * 3 + 1 + Math.floor(rand() * 3)}`);
  const history = (u: number): string => {
    let h = historyOf[u];
    if (h === undefined) {
      const len = rand() < 0.024 ? 0 : Math.min(801, Math.max(1, Math.round(Math.exp(Math.log(19) + 1.036 * normal()))));
      h = Array.from({ length: len }, pickNews).join(" ");
      historyOf[u] = h;
    }
    return h;
  };
  const times = Array.from({ length: 4096 }, () => {
    const h = Math.floor(rand() * 24);
    return `11/${9 + Math.floor(rand() * 6)}/2019 ${h % 12 || 12}:${String(Math.floor(rand() * 60)).padStart(2, "0")}:${String(Math.floor(rand() * 60)).padStart(2, "0")} ${h < 12 ? "AM" : "PM"}`;
  });

  const target = behaviorsMb * 1e6;
  const tmp = join(dir, "behaviors.tsv.tmp");
  const out = createWriteStream(tmp);
  let written = 0;
  let rows = 0;
  let buf: string[] = [];
  let bufLen = 0;
  while (written + bufLen < target) {
    const u = Math.floor(rand() * userCount);
    // Candidates per impression: long-tailed around MIND-large's ~37, at least one click and one non-click.
    const k = Math.min(300, Math.max(2, Math.round(Math.exp(Math.log(24) + 0.9 * normal()))));
    const clicks = Math.min(k - 1, 1 + (rand() < 0.3 ? 1 : 0) + (rand() < 0.1 ? 1 : 0));
    const toks: string[] = [];
    for (let i = 0; i < k; i++) {
      const n = indexOf.get(pickNews())!;
      toks.push(i < clicks ? clickTok[n]! : skipTok[n]!);
    }
    const line = `${++rows}\t${userIds[u]}\t${times[rows & 4095]}\t${history(u)}\t${toks.join(" ")}\n`;
    buf.push(line);
    bufLen += line.length;
    if (bufLen > 1 << 22) {
      if (!out.write(buf.join(""))) await once(out, "drain");
      written += bufLen;
      buf = [];
      bufLen = 0;
    }
  }
  out.end(buf.join(""));
  await once(out, "finish");
  renameSync(tmp, join(dir, "behaviors.tsv"));
}

// --- children: one tool each --------------------------------------------------------------------

async function child(mode: string, dir: string): Promise<void> {
  const files = [join(dir, "news.tsv"), join(dir, "behaviors.tsv")];
  let rows = 0;
  if (mode === "validate") {
    const { runCli } = await import("../src/cli/main.js");
    let out = "";
    const sink = new Writable({ write(c, _e, cb) { out += String(c); cb(); } });
    const code = await runCli(["validate", dir, "--json"], { env: {}, cwd: ROOT, stdout: sink, stderr: process.stderr });
    if (code !== 0) throw new Error(`validate exited ${code}:\n${out.slice(0, 2000)}`);
    const report = JSON.parse(out) as { splits: { counts: { news: number; impressions: number; users: number } }[] };
    const c = report.splits[0]!.counts;
    rows = c.news + c.impressions;
  } else if (mode === "reader") {
    const { readNews, readBehaviors } = await import("../src/mind/read.js");
    for await (const _ of readNews(files[0]!)) rows++;
    for await (const _ of readBehaviors(files[1]!)) rows++;
  } else if (mode === "line-split") {
    const { readLineBatches } = await import("../src/mind/read.js");
    for (const f of files) for await (const batch of readLineBatches(f)) for (const line of batch) rows += line.text.split("\t").length > 0 ? 1 : 0;
  } else if (mode === "csv-parse") {
    const { parse } = await import("csv-parse");
    for (const f of files) {
      const parser = createReadStream(f).pipe(parse({ delimiter: "\t", quote: false, relax_column_count: true, bom: true }));
      for await (const _ of parser) rows++;
    }
  } else throw new Error(`unknown child mode ${mode}`);
  const u = process.resourceUsage();
  process.stdout.write(JSON.stringify({ rows, maxRssKb: u.maxRSS, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6 }) + "\n");
}

const PANDAS = `
import csv, json, resource, sys
import pandas as pd
rows = 0
for f in sys.argv[1:]:
    df = pd.read_csv(f, sep="\\t", header=None, quoting=csv.QUOTE_NONE)
    rows += len(df)
    del df
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": rows, "maxRssKb": u.ru_maxrss, "cpuSeconds": u.ru_utime + u.ru_stime}))
`;

function findPandasPython(): string | undefined {
  for (const py of ["python3", "/usr/bin/python3", "python"]) {
    const r = spawnSync(py, ["-c", "import pandas"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  return undefined;
}

interface Measured {
  tool: string;
  seconds: number;
  /** user + system CPU of the child: steadier than wall time on a busy machine. */
  cpuSeconds: number;
  rssMb: number;
  rows: number;
}

async function measure(tool: string, cmd: string, args: string[]): Promise<Measured> {
  const start = process.hrtime.bigint();
  const p = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  p.stdout.on("data", (d) => (out += String(d)));
  const [code] = (await once(p, "close")) as [number];
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${tool} exited ${code}`);
  const last = JSON.parse(out.trim().split("\n").at(-1)!) as { rows: number; maxRssKb: number; cpuSeconds: number };
  return { tool, seconds, cpuSeconds: last.cpuSeconds, rssMb: last.maxRssKb / 1024, rows: last.rows };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { size: { type: "string", default: "200" }, only: { type: "string" }, child: { type: "string" }, dir: { type: "string" } },
    allowPositionals: false,
  });
  if (values.child) return child(values.child, values.dir!);

  const size = Number(values.size);
  if (!Number.isFinite(size) || size <= 0) throw new Error("--size <MB>: a positive number of MB (10^6 bytes) for behaviors.tsv");
  const dir = join(ROOT, "bench", ".data", `io-${size}mb`);
  const marker = join(dir, ".complete");
  if (!existsSync(marker)) {
    process.stdout.write(`generating a MIND-large-shaped split with a ${size} MB behaviors.tsv in ${dir} …\n`);
    const t = Date.now();
    await generate(dir, size);
    writeFileSync(marker, JSON.stringify({ size, generator: 1 }));
    process.stdout.write(`  generated in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
  const newsBytes = statSync(join(dir, "news.tsv")).size;
  const behaviorsBytes = statSync(join(dir, "behaviors.tsv")).size;
  const mb = (newsBytes + behaviorsBytes) / 1e6;
  process.stdout.write(`data: news.tsv ${(newsBytes / 1e6).toFixed(1)} MB + behaviors.tsv ${(behaviorsBytes / 1e6).toFixed(1)} MB\n`);

  const only = values.only?.split(",");
  const want = (t: string) => !only || only.includes(t);
  const node = (mode: string): [string, string[]] => [process.execPath, ["--import", "tsx", HERE, "--child", mode, "--dir", dir]];
  const runs: [string, string, string[]][] = [];
  if (want("validate")) runs.push(["validate", ...node("validate")]);
  if (want("reader")) runs.push(["reader", ...node("reader")]);
  if (want("line-split")) runs.push(["line-split", ...node("line-split")]);
  if (want("csv-parse")) runs.push(["csv-parse", ...node("csv-parse")]);
  if (want("pandas")) {
    const py = findPandasPython();
    if (py) runs.push(["pandas", py, ["-c", PANDAS, join(dir, "news.tsv"), join(dir, "behaviors.tsv")]]);
    else process.stdout.write("pandas: not installed (python3 -c 'import pandas' failed) — skipped\n");
  }

  const LABEL: Record<string, string> = {
    validate: "genre-mind validate (all checks)",
    reader: "our reader: typed rows",
    "line-split": "our line reader + split('\\t')",
    "csv-parse": "csv-parse (tab, quote: false)",
    pandas: "pandas read_csv (QUOTE_NONE)",
  };
  const results: Measured[] = [];
  for (const [tool, cmd, args] of runs) {
    const r = await measure(tool, cmd, args);
    results.push(r);
    process.stdout.write(
      `${LABEL[tool]!.padEnd(36)} wall ${r.seconds.toFixed(2).padStart(7)} s ${(mb / r.seconds).toFixed(1).padStart(6)} MB/s | ` +
        `cpu ${r.cpuSeconds.toFixed(2).padStart(7)} s ${(mb / r.cpuSeconds).toFixed(1).padStart(6)} MB/s | peak RSS ${r.rssMb.toFixed(0).padStart(5)} MB (${r.rows} rows)\n`,
    );
  }
  const by = (t: string) => results.find((r) => r.tool === t);
  const ratio = (a: string, b: string) => {
    const x = by(a);
    const y = by(b);
    if (!x || !y) return;
    process.stdout.write(
      `${a} vs ${b}: ${(y.seconds / x.seconds).toFixed(2)}x the speed (wall), ${(y.cpuSeconds / x.cpuSeconds).toFixed(2)}x (cpu), ` +
        `${(x.rssMb / y.rssMb).toFixed(2)}x the peak memory\n`,
    );
  };
  ratio("validate", "pandas");
  ratio("line-split", "csv-parse");
  ratio("reader", "csv-parse");
  ratio("validate", "csv-parse");
}

await main();
