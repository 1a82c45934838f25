// npm run bench:stages -- [--size small|large] [--news N] [--users N] [--only summarize,profile] [--skip-offline]
//
// Each stage's own peak RSS and time, the way a user runs it: the real CLI command in a child
// process (Node's default heap), offline (every request built, answered, validated and stored),
// again as a resume (everything already stored), and as --dry-run (every request built and priced,
// nothing sent). The baselines run the same way in the same run: Node with the CLI imported and
// nothing else, and the catalog load alone (news.tsv, then news.tsv + behaviors.tsv).
//
// Peak RSS comes from the OS, not from inside the process: every child runs under
// `/usr/bin/time -f '%M %e %U %S'`, which reads the child's ru_maxrss from wait4(2).
//
// The synthetic split is MIND-shaped (history lengths, ~20% cold users, ~3% empty histories,
// popular news clicked more often) with realistic text: curly quotes and apostrophes in ~12% of
// titles (JS strings holding them take 2 bytes a character), accents, and a few titles in Chinese,
// Japanese, Russian, Arabic, Hindi and Greek. Sizes: `small` is MIND-small train∪dev (65,238 news,
// 94,057 users); `large` is MIND-large train∪dev∪test (161,013 news, 1,000,000 users). Files are
// kept in bench/.data/ and reused; --generate-only prints the split folder (for a --dry-run by hand).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, statSync } from "node:fs";
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Writable } from "node:stream";
import { Out, prng } from "./synthetic.js";

const HERE = import.meta.filename;
const ROOT = resolve(import.meta.dirname, "..");
const SIZES = {
  small: { news: 65_238, users: 94_057 },
  large: { news: 161_013, users: 1_000_000 },
} as const;
/** Bumped when the generator changes, so a cached split of the old shape is made again. */
const GENERATOR = 2;

// --- synthetic data ---------------------------------------------------------------------------


const COMMON = (
  "the a of in to for and on with after at by from is are was be as new how why what who says could will " +
  "first year years state city police team season game win loss stocks market home prices weather storm cold snow " +
  "school family dog fans coach star show movie music food recipe holiday week report study doctors health best " +
  "worst top ways things know court vote plan deal jobs company car recall flight travel people man woman women " +
  "children kids life day night time world house former president officials county killed dead crash fire shooting " +
  "video photos here this that you your these most more than just over into out up down off back about million"
).split(" ");
const SYLLABLES = "ka ro mi tel an ber son ville dor lin mar gan ev is ton ham ley wood ric ford ster ly ra cy nor del pa tri vin co bell mont ash har den wick field brook sa ve".split(" ");
const PLACES: [string, string][] = [
  ["Houston", "Houston"], ["Texas", "Texas"], ["Chicago, Illinois", "Chicago"], ["Denver", "Denver"], ["Ohio", "Ohio"],
  ["Miami", "Miami"], ["Seattle", "Seattle"], ["Boston", "Boston"], ["Paris", "Paris"], ["London", "London"],
];
const CATS: [string, string][] = [
  ["news", "newsus"], ["news", "newsworld"], ["news", "newspolitics"], ["sports", "football_nfl"], ["sports", "basketball_nba"],
  ["finance", "markets"], ["finance", "finance-real-estate"], ["lifestyle", "lifestylebuzz"], ["lifestyle", "lifestyleroyals"],
  ["health", "medical"], ["weather", "weathertopstories"], ["travel", "traveltripideas"], ["foodanddrink", "recipes"],
  ["autos", "autosnews"], ["entertainment", "celebrity"], ["tv", "tvnews"], ["movies", "movienews"], ["music", "musicnews"],
  ["video", "viral"], ["kids", "kids"], ["middleeast", "middleeast"], ["northamerica", "northamerica"], ["games", "games"],
];
const ACCENTED = ["café", "Pokémon", "José", "Peña", "Zürich", "São Paulo", "naïve", "Beyoncé", "Müller", "Gisele Bündchen", "crème brûlée", "Bogotá"];
const NON_LATIN = [
  "北京冬奥会筹备工作进入最后冲刺阶段",
  "東京で記録的な大雪、交通機関に乱れ",
  "Москва готовится к новогодним праздникам",
  "ارتفاع أسعار النفط بعد قرار أوبك",
  "दिल्ली में वायु प्रदूषण का स्तर फिर बढ़ा",
  "Η Αθήνα υποδέχεται χιλιάδες τουρίστες",
  "서울 아파트값 상승세 계속",
  "上海迪士尼乐园推出冬季限定活动",
];


async function generate(dir: string, newsCount: number, userCount: number): Promise<void> {
  const rand = prng(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  // A Zipf-like vocabulary: common words in most titles, a long tail of names (~60k) in few.
  const name = () => {
    const n = 2 + Math.floor(rand() * 2);
    let w = "";
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(SYLLABLES.length * rand() ** 2)]!;
    return w[0]!.toUpperCase() + w.slice(1);
  };
  const word = () => (rand() < 0.7 ? COMMON[Math.floor(COMMON.length * rand() ** 1.5)]! : name());
  const words = (n: number) => Array.from({ length: n }, word).join(" ");
  /** Realistic punctuation and letters: what makes V8 store a string with 2 bytes a character. */
  const decorate = (text: string): string => {
    const r = rand();
    if (r < 0.07) return text.replace(/^(\S+)/, "$1’s");
    if (r < 0.1) return `“${text}”`;
    if (r < 0.12) return `${text} – ‘${pick(COMMON)}’`;
    if (r < 0.16) return `${text} ${pick(ACCENTED)}`;
    return text;
  };
  await mkdir(dir, { recursive: true });
  const news = Out.open(join(dir, "news.tsv"));
  for (let i = 1; i <= newsCount; i++) {
    const [cat, sub] = pick(CATS);
    const [label, surface] = pick(PLACES);
    const nonLatin = rand() < 0.005;
    const title = nonLatin ? pick(NON_LATIN) : decorate(`${surface} ${words(7 + Math.floor(rand() * 7))}`);
    const abstract = rand() < 0.05 ? "" : nonLatin ? `${pick(NON_LATIN)}。${pick(NON_LATIN)}` : decorate(words(18 + Math.floor(rand() * 22)) + ".");
    const te = nonLatin ? "[]" : JSON.stringify([{ Label: label, Type: "G", WikidataId: `Q${1000 + (i % 5000)}`, Confidence: 0.97, OccurrenceOffsets: [0], SurfaceForms: [surface] }]);
    await news.write([`N${i}`, cat, sub, title, abstract, `https://assets.msn.com/labs/mind/AA${i.toString(36)}.html`, te, "[]"].join("\t") + "\n");
  }
  await news.close();

  // Popular news are clicked more often, as in MIND.
  const click = () => `N${1 + Math.floor(rand() ** 1.6 * newsCount)}`;
  const behaviors = Out.open(join(dir, "behaviors.tsv"));
  let row = 0;
  for (let u = 1; u <= userCount; u++) {
    // MIND-small: ~3% empty histories, ~21% cold (1..5 clicks); the rest long-tailed (median ~19, max 801).
    const r = rand();
    const len = r < 0.03 ? 0 : r < 0.23 ? 1 + Math.floor(rand() * 5) : Math.min(801, Math.max(6, Math.round(Math.exp(Math.log(19) + 1.0 * normal()))));
    const history = Array.from({ length: len }, click).join(" ");
    // ~2.4 impressions per user (MIND-small: 230k impressions of 94k users), a dozen candidates each.
    const rows = 1 + Math.floor(-Math.log(1 - rand()) * 1.4);
    for (let k = 0; k < rows; k++) {
      const imps = Array.from({ length: 4 + Math.floor(rand() * 16) }, (_, i) => `${click()}-${i === 0 ? 1 : 0}`).join(" ");
      const hour = 1 + Math.floor(rand() * 12);
      const time = `11/${9 + Math.floor(rand() * 6)}/2019 ${hour}:${String(Math.floor(rand() * 60)).padStart(2, "0")}:${String(Math.floor(rand() * 60)).padStart(2, "0")} ${rand() < 0.5 ? "AM" : "PM"}`;
      await behaviors.write(`${++row}\tU${u}\t${time}\t${history}\t${imps}\n`);
    }
  }
  await behaviors.close();
}

// --- children ---------------------------------------------------------------------------------

/** In the child: one CLI command, or a baseline; the CLI's stdout is passed through for the parent. */
async function child(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  const sink = (w: NodeJS.WriteStream) => new Writable({ write: (c, _e, cb) => w.write(c, cb) });
  const ctx = { env: {}, cwd: ROOT, stdout: sink(process.stdout), stderr: sink(process.stderr) };
  if (what === "node") {
    await import("../src/cli/main.js");
    return;
  }
  if (what === "input-check") {
    // What a stage command pays once per input split before its first request (then remembered).
    await import("../src/cli/main.js");
    const { checkInputSplits } = await import("../src/run/input-check.js");
    const { resolveSplits } = await import("../src/mind/splits.js");
    await checkInputSplits(await resolveSplits([rest[0]!]), { lenient: false, out: rest[1]!, persist: true, show: (p) => p });
    return;
  }
  if (what === "catalog" || what === "catalog-news") {
    // The CLI is imported as in the stage runs, so the baselines differ from them only by the work.
    await import("../src/cli/main.js");
    const { loadCatalog } = await import("../src/mind/catalog.js");
    const { resolveSplits } = await import("../src/mind/splits.js");
    const catalog = await loadCatalog(await resolveSplits([rest[0]!]), { newsOnly: what === "catalog-news" });
    process.stdout.write(`${catalog.news.size} news, ${catalog.users.size} users\n`);
    return;
  }
  const { runCli } = await import("../src/cli/main.js");
  // As the CLI's own entry point does (src/cli/main.ts), so the figures are a user's.
  const { tuneHeapGrowth } = await import("../src/cli/heap.js");
  tuneHeapGrowth(what, process.env.NODE_OPTIONS);
  process.exitCode = await runCli([what!, ...rest], ctx);
}

interface Measured {
  label: string;
  ok: boolean;
  seconds: number;
  cpuSeconds: number;
  rssMb: number;
  output: string;
}

const TIME_FORMAT = "%M %e %U %S";

async function measure(label: string, argv: string[], scratch: string): Promise<Measured> {
  const timeFile = join(scratch, "time.txt");
  // No --max-old-space-size: the point is Node's default heap.
  const p = spawn("/usr/bin/time", ["-f", TIME_FORMAT, "-o", timeFile, process.execPath, "--import", "tsx", HERE, "--child", ...argv], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  p.stdout.on("data", (d) => (output += String(d)));
  p.stderr.on("data", (d) => (output += String(d)));
  const [code] = (await once(p, "close")) as [number];
  // When the child dies, time(1) writes "Command exited with non-zero status N" before the figures.
  const figures = readFileSync(timeFile, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number);
  const [kb, wall, user, sys] = figures as [number, number, number, number];
  return { label, ok: code === 0, seconds: wall, cpuSeconds: user + sys, rssMb: kb / 1024, output };
}

async function main(): Promise<void> {
  const childAt = process.argv.indexOf("--child");
  if (childAt !== -1) return child(process.argv.slice(childAt + 1));
  const { values } = parseArgs({
    options: {
      size: { type: "string", default: "small" },
      news: { type: "string" },
      users: { type: "string" },
      only: { type: "string" },
      "skip-offline": { type: "boolean", default: false },
      "generate-only": { type: "boolean", default: false },
      model: { type: "string", default: "claude-haiku-4-5" },
      pack: { type: "string", default: "10" },
    },
  });
  const preset = SIZES[values.size as keyof typeof SIZES];
  if (!preset) throw new Error(`--size: small or large, not ${values.size}`);
  const newsCount = values.news ? Number(values.news) : preset.news;
  const userCount = values.users ? Number(values.users) : preset.users;
  const split = join(ROOT, "bench", ".data", `stages-${newsCount}n-${userCount}u`, "MINDbench_train");
  const marker = join(split, ".complete");
  if (!existsSync(marker) || readFileSync(marker, "utf8") !== String(GENERATOR)) {
    process.stdout.write(`generating a MIND-shaped split (${newsCount.toLocaleString("en-US")} news, ${userCount.toLocaleString("en-US")} users) in ${split} …\n`);
    const t = performance.now();
    await generate(split, newsCount, userCount);
    await writeFile(marker, String(GENERATOR));
    process.stdout.write(`  generated in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  }
  if (values["generate-only"]) {
    process.stdout.write(`${split}\n`);
    return;
  }
  const mb = (f: string) => (statSync(join(split, f)).size / 1e6).toFixed(1);
  process.stdout.write(
    `bench:stages · ${newsCount.toLocaleString("en-US")} news (${mb("news.tsv")} MB), ${userCount.toLocaleString("en-US")} users (behaviors ${mb("behaviors.tsv")} MB) · ` +
      `${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)} · node ${process.version}, default heap\n`,
  );

  const scratch = join(tmpdir(), `gm-bench-stages-${process.pid}`);
  const offlineOut = join(scratch, "offline");
  const dryOut = join(scratch, "dry");
  await mkdir(dryOut, { recursive: true });
  await mkdir(offlineOut, { recursive: true });
  // A stage command checks its input splits once and remembers it in the run folder: the check is
  // measured on its own below, and every stage run finds it remembered, so each row is the stage's own work.
  const only = values.only?.split(",");
  const want = (s: string) => !only || only.includes(s);
  const data = ["--data", split];
  const dry = ["--provider", "anthropic-batch", "--model", values.model!, "--dry-run", "--pack", values.pack!];
  const runs: [string, string[]][] = [
    ["node + CLI imported", ["node"]],
    ["catalog: news", ["catalog-news", split]],
    ["catalog: news + behaviors", ["catalog", split]],
    ["input check (validate, once per split)", ["input-check", split, offlineOut]],
  ];
  for (const stage of ["summarize", "profile", "generate"] as const) {
    if (!want(stage)) continue;
    const own = stage === "generate" ? ["--chain"] : [];
    if (!values["skip-offline"]) {
      runs.push([`${[stage, ...own].join(" ")} offline`, [stage, ...data, ...own, "--out", offlineOut, "--provider", "offline"]]);
      runs.push([`${[stage, ...own].join(" ")} offline, resumed`, [stage, ...data, ...own, "--out", offlineOut, "--provider", "offline"]]);
    }
    runs.push([`${[stage, ...own].join(" ")} --dry-run${stage === "generate" ? "" : ` --pack ${values.pack}`}`, [stage, ...data, ...own, "--out", dryOut, ...dry]]);
  }

  const results: Measured[] = [];
  /** The dry runs' cost tables, added up per model: what the whole run would cost. */
  const totals = new Map<string, { live: number; batch: number; stages: number }>();
  try {
    for (const [label, argv] of runs) {
      // generate --chain reads the profiles: the dry run gets the offline run's (or makes them).
      if (label.startsWith("generate") && label.includes("--dry-run")) {
        const profiles = join(offlineOut, "profile.jsonl");
        if (!existsSync(profiles)) {
          const made = await measure("profile for --chain", ["profile", ...data, "--out", offlineOut, "--provider", "offline"], scratch);
          if (!made.ok) throw new Error(`the offline profile run for generate --chain failed:\n${made.output}`);
        }
        await cp(profiles, join(dryOut, "profile.jsonl"));
      }
      if (label.includes("--dry-run") && !existsSync(join(dryOut, "inputs-checked.json")) && existsSync(join(offlineOut, "inputs-checked.json"))) {
        await cp(join(offlineOut, "inputs-checked.json"), join(dryOut, "inputs-checked.json"));
      }
      const r = await measure(label, argv, scratch);
      results.push(r);
      const base = results.find((x) => x.label === (label.startsWith("summarize") ? "catalog: news" : "catalog: news + behaviors"));
      const x = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}×` : "");
      process.stdout.write(
        `${label.padEnd(34)} ${r.ok ? "  " : "✗ "}peak RSS ${r.rssMb.toFixed(0).padStart(5)} MB ${x(r.rssMb, base?.rssMb).padStart(6)}` +
          ` · wall ${r.seconds.toFixed(1).padStart(6)} s ${x(r.seconds, base?.seconds).padStart(6)} · cpu ${r.cpuSeconds.toFixed(1).padStart(6)} s\n`,
      );
      if (!r.ok) process.stdout.write(r.output.split("\n").filter((l) => /error|heap|killed|exited/i.test(l)).slice(0, 3).map((l) => `    ${l}\n`).join(""));
      if (label.includes("--dry-run") && r.ok) {
        process.stdout.write(r.output.split("\n").filter((l) => /requests|input tokens|cost|saves/.test(l)).map((l) => `    ${l.trim()}\n`).join(""));
        for (const m of r.output.matchAll(/^\s+(\S+)\s+live\s+\$([\d.]+)\s+batch\s+\$([\d.]+)$/gm)) {
          const t = totals.get(m[1]!) ?? { live: 0, batch: 0, stages: 0 };
          totals.set(m[1]!, { live: t.live + Number(m[2]), batch: t.batch + Number(m[3]), stages: t.stages + 1 });
        }
      }
    }
    process.stdout.write("(× the catalog load of the same files: news alone for summarize, news + behaviors for the others; ✗ = the child failed)\n");
    const whole = [...totals].filter(([, t]) => t.stages === 3).sort((a, b) => a[1].batch - b[1].batch);
    if (whole.length > 0) {
      process.stdout.write(`the whole run (summarize and profile --pack ${values.pack}, generate --chain), the five cheapest priced models in batch mode:\n`);
      for (const [model, t] of whole.slice(0, 5)) process.stdout.write(`  ${model.padEnd(20)} batch $${t.batch.toFixed(2).padStart(8)} · live $${t.live.toFixed(2).padStart(8)}\n`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
