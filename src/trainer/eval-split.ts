// Evaluation splits: one labeled split cut into parts by impression (ONCE's validation/test split
// of MIND-small dev), each part a split folder a trainer reads unchanged.
import { createReadStream, existsSync } from "node:fs";
import { copyFile, link, mkdir, readFile, rename, rm } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { UserError } from "../cli/command.js";
import { MindFormatError } from "../mind/errors.js";
import { readRawBehaviorBatches } from "../mind/read.js";
import type { SplitDir } from "../mind/splits.js";
import { parseMindTime } from "../mind/time.js";
import { AtomicFileWriter } from "../util/atomic.js";
import { SeededRandom } from "../util/random.js";

/**
 * Where the order of impressions comes from before it is cut by the portions:
 * - `list`: a JSON array of Impression IDs (ONCE's `mind_imp_list.json`), cut in list order;
 *   impressions the list does not name go to the last part, as in ONCE's processor;
 * - `time`: the impressions by time (ties in file order), earliest in the first part;
 * - `random`: a seeded shuffle of the impressions.
 */
export type SplitOrder = { kind: "list"; file: string } | { kind: "time" } | { kind: "random"; seed: number };

export interface EvalSplitOptions {
  split: SplitDir;
  order: SplitOrder;
  portions: readonly number[];
  /** One per portion: part i is written to `<out>/<split name>_<names[i]>`. */
  names: readonly string[];
  out: string;
  force: boolean;
}

export interface EvalSplitPart {
  name: string;
  dir: string;
  impressions: number;
}

export interface EvalSplitResult {
  parts: EvalSplitPart[];
  /** Impressions in the split that the list does not name (they went to the last part). */
  notListed: number;
  /** How news.tsv (and the embedding files) reached the parts. */
  shared: "hard link" | "copy";
}

/** Files a part shares with its source split unchanged: news.tsv and what MIND ships beside it. */
const SHARED_FILES = ["news.tsv", "entity_embedding.vec", "relation_embedding.vec"];

/**
 * ONCE's splitter (`once_mind_processor.py`): part sizes are `int(p * n / sum)` for all but the
 * last, which takes the rest, so the parts always add up to n.
 */
export function portionSizes(n: number, portions: readonly number[]): number[] {
  const sum = portions.reduce((a, b) => a + b, 0);
  const sizes = portions.map((p) => Math.trunc((p * n) / sum));
  sizes[sizes.length - 1] = n - sizes.slice(0, -1).reduce((a, b) => a + b, 0);
  return sizes;
}

/** `5,5` → [5, 5]; a usage problem is returned as a message. */
export function parsePortions(text: string): number[] | string {
  const fields = text.split(",").map((s) => s.trim());
  const values = fields.map(Number);
  const bad = fields.findIndex((f, i) => f.length === 0 || !Number.isFinite(values[i]) || values[i]! <= 0);
  if (bad !== -1) return `'${fields[bad]}' in '${text}' is not a positive number (expected e.g. 5,5)`;
  if (values.length < 2) return `'${text}' names one part; give at least two portions (e.g. 5,5)`;
  return values;
}

/** The default part names for 2 and 3 portions; other counts need names. */
export function defaultPartNames(count: number): string[] | undefined {
  if (count === 2) return ["valid", "test"];
  if (count === 3) return ["train", "valid", "test"];
  return undefined;
}

interface Impressions {
  ids: string[];
  lineOf: Map<string, number>;
  times: Float64Array | undefined;
}

async function readImpressions(file: string, withTimes: boolean): Promise<Impressions> {
  const ids: string[] = [];
  const lineOf = new Map<string, number>();
  const times: number[] = [];
  for await (const batch of readRawBehaviorBatches(file)) {
    for (const row of batch) {
      const index = ids.length;
      if (row.lineNo !== index + 1) throw new Error(`internal: line ${row.lineNo} read as impression ${index + 1}`);
      const first = lineOf.get(row.impressionId);
      if (first !== undefined) {
        throw new MindFormatError(file, row.lineNo, "Impression ID", `impression ${row.impressionId} is also on line ${first + 1}: Impression IDs must be unique to split by them`);
      }
      if (withTimes) {
        const t = parseMindTime(row.time);
        if (Number.isNaN(t)) throw new MindFormatError(file, row.lineNo, "Time", `'${row.time}' is not a time like 11/15/2019 10:22:32 AM (needed by --by-time)`);
        times.push(t);
      }
      ids.push(row.impressionId);
      lineOf.set(row.impressionId, index);
    }
  }
  return { ids, lineOf, times: withTimes ? Float64Array.from(times) : undefined };
}

/** The list file's Impression IDs as strings (JSON numbers or strings), or a message naming the problem. */
async function readImpressionList(file: string): Promise<string[]> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(err.code === "ENOENT" ? `${file}: no such file` : `${file}: not JSON (${err.message})`);
  }
  if (!Array.isArray(value)) throw new UserError(`${file}: expected a JSON array of Impression IDs, like [29847, 68711, …]`);
  const seen = new Map<string, number>();
  return value.map((v: unknown, i) => {
    const id = typeof v === "number" && Number.isInteger(v) ? String(v) : typeof v === "string" && v.length > 0 ? v : undefined;
    if (id === undefined) throw new UserError(`${file}: entry ${i + 1} (${JSON.stringify(v)}) is not an Impression ID (a whole number or a string)`);
    const first = seen.get(id);
    if (first !== undefined) throw new UserError(`${file}: Impression ID ${id} is listed twice (entries ${first + 1} and ${i + 1})`);
    seen.set(id, i);
    return id;
  });
}

/** Which part each line of the behaviors file goes to, and how many impressions the list left out. */
async function assignParts(opts: EvalSplitOptions, imps: Impressions): Promise<{ partOfLine: Uint8Array; notListed: number }> {
  const n = imps.ids.length;
  const last = opts.portions.length - 1;
  let order: Uint32Array;
  let notListed = 0;
  if (opts.order.kind === "list") {
    const list = await readImpressionList(opts.order.file);
    const lines = list.map((id) => imps.lineOf.get(id));
    const unknown = list.filter((_, i) => lines[i] === undefined);
    if (unknown.length > 0) {
      throw new UserError(
        `${opts.order.file}: ${unknown.length.toLocaleString("en-US")} of ${list.length.toLocaleString("en-US")} listed Impression IDs are not in ${opts.split.behaviorsFile} ` +
          `(e.g. ${unknown.slice(0, 5).join(", ")}); is the list for another split?`,
      );
    }
    order = Uint32Array.from(lines as number[]);
    notListed = n - list.length;
  } else {
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (opts.order.kind === "time") {
      const times = imps.times!;
      order.sort((a, b) => times[a]! - times[b]! || a - b);
    } else {
      new SeededRandom(opts.order.seed).shuffle(order);
    }
  }
  // Every line starts in the last part; the cut list moves its own impressions to theirs.
  const partOfLine = new Uint8Array(n).fill(last);
  let at = 0;
  portionSizes(order.length, opts.portions).forEach((size, part) => {
    for (let i = at; i < at + size; i++) partOfLine[order[i]!] = part;
    at += size;
  });
  return { partOfLine, notListed };
}

const LF = 10;

/** Copies each behaviors line, bytes as they are (CRLF kept), to its part's file; a BOM is dropped. */
async function writeParts(file: string, partOfLine: Uint8Array, writers: AtomicFileWriter[]): Promise<number[]> {
  const counts = writers.map(() => 0);
  let line = 0;
  let carry: Buffer | undefined;
  let first = true;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let buf = carry ? Buffer.concat([carry, chunk]) : chunk;
    if (first) {
      first = false;
      if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    }
    const pieces: Buffer[][] = writers.map(() => []);
    let start = 0;
    for (let nl = buf.indexOf(LF, 0); nl !== -1; nl = buf.indexOf(LF, start)) {
      const part = partOfLine[line++]!;
      pieces[part]!.push(buf.subarray(start, nl + 1));
      counts[part]!++;
      start = nl + 1;
    }
    carry = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined;
    for (let p = 0; p < writers.length; p++) if (pieces[p]!.length > 0) await writers[p]!.writeBytes(Buffer.concat(pieces[p]!));
  }
  if (carry && carry.length > 0) {
    // The file's last line had no line break; in a part it may not be last, so it gets one.
    const part = partOfLine[line++]!;
    await writers[part]!.writeBytes(Buffer.concat([carry, Buffer.from("\n")]));
    counts[part]!++;
  }
  if (line !== partOfLine.length) throw new Error(`internal: ${file} has ${line} lines on the second read, ${partOfLine.length} on the first`);
  return counts;
}

/** Hard link when the file system allows it (no space used), else a copy. */
async function share(from: string, to: string): Promise<"hard link" | "copy"> {
  try {
    await link(from, to);
    return "hard link";
  } catch {
    await copyFile(from, to);
    return "copy";
  }
}

function inside(parent: string, child: string): boolean {
  const r = relative(parent, child);
  return r === "" || (!r.startsWith("..") && !r.startsWith("/"));
}

export async function splitForEvaluation(opts: EvalSplitOptions): Promise<EvalSplitResult> {
  const out = resolve(opts.out);
  const targets = opts.names.map((name) => join(out, `${opts.split.name}_${name}`));
  for (const t of targets) {
    // Exit 2: the output path is in the way (as merge's --out is), the input is fine.
    if (inside(t, opts.split.dir) || inside(opts.split.dir, t)) throw new UserError(`${t} would overwrite the input split ${opts.split.dir}; choose another --out or --names`, 2);
  }
  const existing = targets.filter((t) => existsSync(t));
  if (existing.length > 0 && !opts.force) {
    throw new UserError(`${existing.join(", ")} already exist${existing.length === 1 ? "s" : ""}; pass --force to replace ${existing.length === 1 ? "it" : "them"}`, 2);
  }

  const imps = await readImpressions(opts.split.behaviorsFile, opts.order.kind === "time");
  const { partOfLine, notListed } = await assignParts(opts, imps);

  const staging = join(out, `.split-staging-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    const staged = opts.names.map((_, i) => join(staging, String(i)));
    for (const dir of staged) await mkdir(dir, { recursive: true });
    const writers = await Promise.all(staged.map((dir) => AtomicFileWriter.open(join(dir, "behaviors.tsv"))));
    let counts: number[];
    try {
      counts = await writeParts(opts.split.behaviorsFile, partOfLine, writers);
      for (const w of writers) await w.commit();
    } catch (e) {
      for (const w of writers) await w.abort();
      throw e;
    }
    let shared: "hard link" | "copy" = "hard link";
    for (const name of SHARED_FILES) {
      const from = join(opts.split.dir, name);
      if (!existsSync(from)) continue;
      for (const dir of staged) if ((await share(from, join(dir, name))) === "copy") shared = "copy";
    }
    for (let i = 0; i < targets.length; i++) {
      await rm(targets[i]!, { recursive: true, force: true });
      await rename(staged[i]!, targets[i]!);
    }
    return { parts: opts.names.map((name, i) => ({ name, dir: targets[i]!, impressions: counts[i]! })), notListed, shared };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
