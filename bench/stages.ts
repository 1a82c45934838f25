// npm run bench:stages -- [--news 65000] [--users 94000]
// The three stages' own work on a MIND-small-shaped split (default sizes: MIND-small train∪dev):
// building every request (selection + rendering) and answering + validating each offline, beside
// loading the catalog (reading and parsing news.tsv and behaviors.tsv) as the baseline of the run.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { CommandContext } from "../src/cli/command.js";
import { StageConfig } from "../src/stages/options.js";
import { resolveSplits } from "../src/mind/splits.js";
import { checkInputSplits } from "../src/run/input-check.js";
import { buildRequests, prepareStage } from "../src/stages/run.js";

const { values } = parseArgs({ options: { news: { type: "string", default: "65000" }, users: { type: "string", default: "94000" } } });
const NEWS = Number(values.news);
const USERS = Number(values.users);

/** mulberry32: the same sizes always give the same files. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const CATS: [string, string][] = [["news", "newsus"], ["sports", "football_nfl"], ["finance", "markets"], ["lifestyle", "lifestylebuzz"], ["health", "medical"], ["weather", "weathertopstories"], ["travel", "traveltripideas"], ["foodanddrink", "recipes"], ["news", "newsworld"], ["autos", "autosnews"]];
const PLACES = ["Houston", "Texas", "Chicago, Illinois", "Denver", "Ohio", "Miami", "Seattle", "Boston", "Paris", "London"];
// A Zipf-like vocabulary: a few words in many titles, most in few, as in news text.
const WORDS = Array.from({ length: 30000 }, (_, i) => `w${i.toString(36)}`);
const word = () => WORDS[Math.floor(WORDS.length * rand() ** 3)]!;
const words = (n: number) => Array.from({ length: n }, word).join(" ");

async function dataset(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const news: string[] = [];
  for (let i = 1; i <= NEWS; i++) {
    const [cat, sub] = pick(CATS);
    const place = pick(PLACES);
    const ents = JSON.stringify([{ Label: place, Type: "G", WikidataId: `Q${i}`, Confidence: 0.9, OccurrenceOffsets: [0], SurfaceForms: [place] }]);
    news.push([`N${i}`, cat, sub, `${place} ${words(9)}`, rand() < 0.9 ? words(30) : "", `https://x/${i}`, ents, "[]"].join("\t"));
  }
  await writeFile(join(dir, "news.tsv"), news.join("\n") + "\n");
  const behaviors: string[] = [];
  for (let u = 1; u <= USERS; u++) {
    // MIND-small: ~21% of users have 1..5 clicks; the median history is ~20.
    const n = rand() < 0.03 ? 0 : rand() < 0.21 ? 1 + Math.floor(rand() * 5) : 6 + Math.floor(rand() ** 2 * 120);
    const history = Array.from({ length: n }, () => `N${1 + Math.floor(rand() * NEWS)}`).join(" ");
    behaviors.push([String(u), `U${u}`, "11/14/2019 10:00:00 AM", history, `N1-1 N2-0`].join("\t"));
  }
  await writeFile(join(dir, "behaviors.tsv"), behaviors.join("\n") + "\n");
}

const root = join(tmpdir(), `gm-bench-stages-${process.pid}`);
const split = join(root, "train");
await dataset(split);
const ctx: CommandContext = { env: {}, stdout: process.stdout, stderr: process.stderr, cwd: root };
const config = StageConfig.parse({ data: [split], out: join(root, "run") });
console.log(`bench:stages · ${NEWS.toLocaleString("en-US")} news, ${USERS.toLocaleString("en-US")} users · ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}`);
console.log("stage       items   catalog load   requests (× load)    offline+parse (× load)   µs/item   RSS");
const loads: Record<string, number> = {};
try {
  for (const stage of ["summarize", "profile", "generate"] as const) {
    let t = performance.now();
    const prepared = await prepareStage(stage, config, ctx);
    const load = performance.now() - t;
    loads[stage] = load;
    t = performance.now();
    const { requests } = await buildRequests(prepared, config, ctx);
    const build = performance.now() - t;
    t = performance.now();
    let invalid = 0;
    for (const r of requests) if (!r.parse(r.offline()).ok) invalid++;
    const answer = performance.now() - t;
    if (invalid) throw new Error(`${stage}: ${invalid} offline answers failed validation`);
    const x = (v: number) => `${v.toFixed(0).padStart(6)} ms (${(v / load).toFixed(2)}×)`;
    console.log(
      `${stage.padEnd(10)} ${String(requests.length).padStart(6)}   ${load.toFixed(0).padStart(7)} ms    ${x(build)}     ${x(answer)}       ${(((build + answer) * 1000) / requests.length).toFixed(0).padStart(5)}   ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
    );
  }
  // What every stage command pays once per input before its first request (then remembered).
  const t = performance.now();
  await checkInputSplits(await resolveSplits([split]), { lenient: false, out: join(root, "run"), persist: false, show: (p) => p });
  const check = performance.now() - t;
  console.log(`input check ${check.toFixed(0).padStart(7)} ms: ${(check / loads.profile!).toFixed(2)}× profile's catalog load (news + behaviors), ${(check / loads.summarize!).toFixed(2)}× summarize's (news only)`);
} finally {
  await rm(root, { recursive: true, force: true });
}

