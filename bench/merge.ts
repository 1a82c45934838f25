// npm run bench:merge -- --size <MB>
// Merge on a MIND-large-shaped split (behaviors.tsv of --size MB) with records for every news item,
// every user and the cold users, run as a child process: wall time, throughput and peak RSS, beside
// `cp` of the same input files as the floor.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { once } from "node:events";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cpus, loadavg } from "node:os";
import { Out, prng } from "./synthetic.js";

const ROOT = resolve(import.meta.dirname, "..");
const DATA = join(ROOT, "bench", ".data");
// MIND-large train (mind-format.md): 1,373,844,151 bytes of behaviors, 2,232,748 impressions,
// 711,222 users, 101,527 news; history mean ≈ 32.5, median 19, max 801.
const LARGE_BEHAVIORS_MB = 1373.8;
const LARGE_USERS = 711_222;
const LARGE_NEWS = 101_527;
const CATEGORIES = ["news", "sports", "finance", "lifestyle", "health", "weather", "travel", "autos", "foodanddrink", "tv", "movies", "music"];
const TOPICS = ["health", "finance", "travel", "social media", "economy", "weather", "international news", "technology"];
const STATES = ["Texas", "New York", "California", "Florida", "Ohio"];

const { values } = parseArgs({ options: {
    size: { type: "string", default: "100" },
    keep: { type: "boolean", default: false },
    "generate-only": { type: "boolean", default: false },
    "records-only": { type: "boolean", default: false },
  }, });
const sizeMb = Number(values.size);
if (!Number.isFinite(sizeMb) || sizeMb <= 0) throw new Error("--size <MB>: expected a positive number");



/** A user's history is a pure function of the user, so every row of a user repeats it exactly (as in MIND). */
function history(user: number, newsCount: number): string[] {
  const r = prng(user * 2654435761);
  const u = r();
  // ~2.4% empty; a long-tailed length with median ≈ 19 and mean ≈ 32, capped at 801.
  const len = u < 0.024 ? 0 : Math.min(801, Math.max(1, Math.round(-Math.log(1 - r()) * 27)));
  const ids: string[] = [];
  for (let i = 0; i < len; i++) ids.push(`N${1 + Math.floor(r() * newsCount)}`);
  return ids;
}

async function generate(dir: string): Promise<void> {
  const scale = sizeMb / LARGE_BEHAVIORS_MB;
  const users = Math.max(100, Math.round(LARGE_USERS * scale));
  const newsCount = Math.max(1000, Math.round(LARGE_NEWS * Math.min(1, scale * 4)));
  const split = join(dir, "train");
  await mkdir(split, { recursive: true });
  const r = prng(42);
  const news = Out.open(join(split, "news.tsv"));
  const words = "storm market team election vaccine recipe travel stocks coach movie review city county state senate".split(" ");
  for (let i = 1; i <= newsCount; i++) {
    const title = Array.from({ length: 8 + Math.floor(r() * 8) }, () => words[Math.floor(r() * words.length)]).join(" ");
    const abstract = r() < 0.05 ? "" : Array.from({ length: 30 + Math.floor(r() * 20) }, () => words[Math.floor(r() * words.length)]).join(" ");
    const entity = `[{"Label": "Texas", "Type": "G", "WikidataId": "Q1439", "Confidence": 1.0, "OccurrenceOffsets": [0], "SurfaceForms": ["Texas"]}]`;
    const cat = CATEGORIES[i % CATEGORIES.length]!;
    await news.write(`N${i}\t${cat}\t${cat}sub\t${title}\t${abstract}\thttps://assets.msn.com/labs/mind/AA${i.toString(36)}.html\t${entity}\t${entity}\n`);
  }
  await news.close();

  const behaviors = Out.open(join(split, "behaviors.tsv"));
  const target = sizeMb * 1e6;
  let row = 0;
  const histories = new Map<number, string>();
  while (behaviors.bytes < target) {
    const user = 1 + Math.floor(r() * users);
    let h = histories.get(user);
    if (h === undefined) {
      h = history(user, newsCount).join(" ");
      if (histories.size < 50_000) histories.set(user, h);
    }
    const candidates = 5 + Math.floor(-Math.log(1 - r()) * 32);
    const imps: string[] = [];
    for (let i = 0; i < candidates; i++) imps.push(`N${1 + Math.floor(r() * newsCount)}-${r() < 0.04 ? 1 : 0}`);
    const day = 9 + Math.floor(r() * 6);
    const hour = 1 + Math.floor(r() * 12);
    await behaviors.write(
      `${++row}\tU${user}\t11/${day}/2019 ${hour}:${String(Math.floor(r() * 60)).padStart(2, "0")}:${String(Math.floor(r() * 60)).padStart(2, "0")} ${r() < 0.5 ? "AM" : "PM"}\t${h}\t${imps.join(" ")}\n`,
    );
  }
  await behaviors.close();
  await writeFile(join(split, ".complete"), "");
}

/** Records for every news item and every user with a history, pseudo-news for the cold ones: a full run's worth. */
async function writeRecords(split: string, runDir: string): Promise<{ news: number; users: number; cold: number }> {
  await mkdir(runDir, { recursive: true });
  const usage = `{"inputTokens":180,"outputTokens":25,"cacheReadTokens":0,"cacheWriteTokens":0}`;
  // Profile and generate records name their source as the stages write it: the split and the most
  // recent clicks, most recent first, after the model (the engine's key order, session.ts).
  const source = (clicks: string[]) => `,"source":${JSON.stringify({ split: basename(split), clicks })}`;
  const rec = (stage: string, id: string, output: unknown, clicks?: string[]) =>
    `{"key":"${stage}-${id}","stage":"${stage}","itemId":"${id}","provider":"offline","model":"offline-baseline"${clicks ? source(clicks) : ""},"output":${JSON.stringify(output)},"usage":${usage},"attempts":1}\n`;
  const summarize = Out.open(join(runDir, "summarize.jsonl"));
  let news = 0;
  for (const line of readFileSync(join(split, "news.tsv"), "utf8").split("\n")) {
    if (!line) continue;
    const [id, , , title] = line.split("\t");
    await summarize.write(rec("summarize", id!, { title: `${title} explained in a longer clearer title` }));
    news++;
  }
  await summarize.close();
  // The users of the behaviors file and their 30 most recent clicks, read back with a cheap scan.
  const recent = new Map<string, string[]>();
  const { createInterface } = await import("node:readline");
  const { createReadStream } = await import("node:fs");
  for await (const line of createInterface({ input: createReadStream(join(split, "behaviors.tsv")), crlfDelay: Infinity })) {
    const t1 = line.indexOf("\t");
    const t2 = line.indexOf("\t", t1 + 1);
    const user = line.slice(t1 + 1, t2);
    if (recent.has(user)) continue;
    const t3 = line.indexOf("\t", t2 + 1);
    const t4 = line.indexOf("\t", t3 + 1);
    recent.set(user, t4 === t3 + 1 ? [] : line.slice(t3 + 1, t4).split(" ").slice(-30).reverse());
  }
  const profile = Out.open(join(runDir, "profile.jsonl"));
  const gen = Out.open(join(runDir, "generate.jsonl"));
  let users = 0;
  let cold = 0;
  for (const [user, clicks] of recent) {
    if (clicks.length === 0) continue;
    const n = Number(user.slice(1));
    await profile.write(rec("profile", user, { topics: [TOPICS[n % 8], TOPICS[(n + 3) % 8]], regions: n % 3 === 0 ? [STATES[n % 5]] : [] }, clicks));
    users++;
    if (clicks.length <= 5) {
      cold++;
      const item = (k: number) => ({ title: `Generated story ${k} for reader ${user} about the market`, abstract: "A generated abstract.", category: CATEGORIES[(n + k) % CATEGORIES.length] });
      await gen.write(rec("generate", user, { items: [item(1), item(2)] }, clicks));
    }
  }
  await profile.close();
  await gen.close();
  return { news, users, cold };
}

/** Runs a command, sampling VmHWM (peak resident set) from /proc while it runs. */
interface Measured {
  seconds: number;
  /** User + system CPU seconds (from /proc), less sensitive than wall time to other load on the machine. */
  cpuSeconds: number | null;
  peakMb: number | null;
  /** stderr lines with the wall time they appeared at: merge logs its phases there. */
  phases: string[];
}

async function measure(cmd: string, args: string[]): Promise<Measured> {
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const phases: string[] = [];
  const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  /** User + system CPU seconds of the child so far: on a busy machine, phases compare by CPU, not wall time. */
  const cpuNow = (): number | null => {
    try {
      const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      return null;
    }
  };
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    let rss = "";
    try {
      rss = `  [RSS ${(Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]) / 1024).toFixed(0)} MB]`;
    } catch {
      // exited
    }
    const cpu = cpuNow();
    const at = `${elapsed().toFixed(1).padStart(7)} s${cpu === null ? "" : ` (CPU ${cpu.toFixed(1).padStart(6)} s)`}`;
    for (const line of d.toString().split("\n")) if (line.trim()) phases.push(`${at}  ${line}${rss}`);
  });
  let peakKb: number | null = null;
  let cpuTicks: number | null = null;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (m) peakKb = Math.max(peakKb ?? 0, Number(m[1]));
      // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesized name): utime and stime in clock ticks.
      const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpuTicks = Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process has exited; the last sample stands.
    }
  };
  const timer = setInterval(sample, 20);
  const [code] = (await once(child, "exit")) as [number | null];
  clearInterval(timer);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${stderr}`);
  return { seconds, cpuSeconds: cpuTicks === null ? null : cpuTicks / ticks, peakMb: peakKb === null ? null : peakKb / 1024, phases };
}

/** A split from bench:io of about the same size is reused rather than generating another. */
function findExisting(): string | undefined {
  if (!existsSync(DATA)) return undefined;
  const candidates: string[] = [];
  const walk = (dir: string, depth: number) => {
    // Only finished splits: bench:io and this script write `.complete` last.
    if (existsSync(join(dir, ".complete")) && existsSync(join(dir, "news.tsv")) && existsSync(join(dir, "behaviors.tsv"))) candidates.push(dir);
    if (depth === 0) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith("merge-out")) walk(join(dir, e.name), depth - 1);
  };
  walk(DATA, 2);
  return candidates.find((d) => Math.abs(statSync(join(d, "behaviors.tsv")).size / 1e6 - sizeMb) / sizeMb < 0.05);
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
let split = findExisting();
if (split) console.log(`reusing ${split}`);
else {
  const dir = join(DATA, `merge-${sizeMb}MB`);
  console.log(`generating a MIND-large-shaped split with ${sizeMb} MB of behaviors in ${dir} ...`);
  const t = Date.now();
  await generate(dir);
  split = join(dir, "train");
  console.log(`  done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}
if (values["generate-only"]) process.exit(0);
const runDir = join(DATA, `merge-out-${sizeMb}MB`);
await rm(runDir, { recursive: true, force: true });
const counts = await writeRecords(split, runDir);
const newsBytes = statSync(join(split, "news.tsv")).size;
const behaviorsBytes = statSync(join(split, "behaviors.tsv")).size;
const recordBytes = ["summarize", "profile", "generate"].reduce((s, st) => s + statSync(join(runDir, `${st}.jsonl`)).size, 0);
console.log(
  `input: news.tsv ${mb(newsBytes)} MB, behaviors.tsv ${mb(behaviorsBytes)} MB; records ${mb(recordBytes)} MB ` +
    `(${counts.news} titles, ${counts.users} profiles, ${counts.cold} cold users with 2 pseudo-news)`,
);

if (values["records-only"]) process.exit(0);
const copyDir = join(DATA, "merge-cp");
await rm(copyDir, { recursive: true, force: true });
await mkdir(copyDir, { recursive: true });
// Warm the page cache the same way for both: the first read of a fresh file would favour the second command.
spawnSync("cat", [join(split, "news.tsv"), join(split, "behaviors.tsv")], { stdio: ["ignore", "ignore", "ignore"] });
const cp = await measure("cp", [join(split, "news.tsv"), join(split, "behaviors.tsv"), copyDir]);
await rm(copyDir, { recursive: true, force: true });
await mkdir(copyDir, { recursive: true });
// merge flushes its output to disk before renaming it into place; the copy that does the same is the fair floor.
const copied = [join(copyDir, "news.tsv"), join(copyDir, "behaviors.tsv")];
const cpSync = await measure("sh", ["-c", `cp "$1" "$2" "$3" && sync "$4" "$5"`, "sh", join(split, "news.tsv"), join(split, "behaviors.tsv"), copyDir, ...copied]);
// The first merge checks the input splits (validate's checks) and remembers them in the run folder,
// as a stage command does; the second, a re-merge with --force, finds them remembered: the figure
// for a merge after the stages, which checked the same splits.
const mergeArgs = ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "merge", "--data", split, "--out", runDir];
const first = await measure(process.execPath, mergeArgs);
const merge = await measure(process.execPath, [...mergeArgs, "--force"]);
const inputMb = (newsBytes + behaviorsBytes) / 1e6;
for (const [name, m] of [["first merge, input checked", first], ["re-merge, input check remembered", merge]] as const) {
  console.log(`${name}: phases (wall and CPU time since start):`);
  for (const line of m.phases) console.log(line);
  console.log(`${m.seconds.toFixed(1).padStart(7)} s  exit`);
  console.log("");
}
console.log(`cp (floor)  ${cp.seconds.toFixed(2)} s  ${(inputMb / cp.seconds).toFixed(0)} MB/s  peak RSS ${cp.peakMb?.toFixed(0) ?? "n/a"} MB`);
console.log(`cp + sync   ${cpSync.seconds.toFixed(2)} s  ${(inputMb / cpSync.seconds).toFixed(0)} MB/s  (the copy flushed to disk, as merge does)`);
for (const [name, m] of [["merge", first], ["re-merge", merge]] as const) {
  console.log(
    `${name.padEnd(11)} ${m.seconds.toFixed(2)} s  ${(inputMb / m.seconds).toFixed(0)} MB/s  peak RSS ${m.peakMb?.toFixed(0) ?? "n/a"} MB` +
      `  (CPU ${m.cpuSeconds?.toFixed(1) ?? "n/a"} s; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`,
  );
}
for (const [name, m] of [["merge", first], ["re-merge", merge]] as const) {
  console.log(
    `${`${name} / cp`.padEnd(16)} ${(m.seconds / cp.seconds).toFixed(1)}x a plain copy, ${(m.seconds / cpSync.seconds).toFixed(1)}x a copy flushed to disk`,
  );
}
console.log("(merge also reads the records, checks the input unless remembered, audits its output and fsyncs it before renaming it into place)");
await rm(copyDir, { recursive: true, force: true });
if (!values.keep) await rm(runDir, { recursive: true, force: true });
