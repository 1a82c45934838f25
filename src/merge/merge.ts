// Merge: input splits + stage records + options → drop-in MIND splits, a pure function of those.
// Behaviors are streamed (MIND-large train is 1.37 GB); news files and records are small enough to hold.
import { createReadStream, existsSync } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { UserError } from "../cli/command.js";
import { STAGE_NAMES, type StageName } from "../engine/types.js";
import { MindFormatError } from "../mind/errors.js";
import { parseNewsLine, readLineBatches } from "../mind/read.js";
import type { NewsRow } from "../mind/rows.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { tsvField } from "../mind/text.js";
import { validateSplit } from "../mind/validate.js";
import { parseMindTime } from "../mind/time.js";
import { formatNewsLine } from "../mind/write.js";
import { runPaths } from "../run/folder.js";
import { AtomicFileWriter, writeFileAtomic } from "../util/atomic.js";
import { compareIds, maxNumericNewsId, sortIds } from "./ids.js";
import { Manifest, PSEUDO_SUBCATEGORY, type ManifestSplit, type ManifestStage, type MergeOptions } from "./manifest.js";
import { LIST_SEPARATOR, loadRecords, type AllRecords, type StageRecords } from "./records.js";

export const SPLIT_FILES = ["news.tsv", "behaviors.tsv", "news_titles.tsv"] as const;
export const NEWS_TITLES_COLUMNS = ["News ID", "Original title", "Enhanced title"];
export const USER_PROFILES_COLUMNS = ["User ID", "Topics", "Regions"];
/** History length bounds of a cold user (GENRE: 1 to 5 clicks), unless the generate stage recorded others. */
export const DEFAULT_COLD_MAX = 5;

export interface MergeRequest extends MergeOptions {
  /** `--data` values: split folders or folders of split folders. */
  data: string[];
  out: string;
  /** Run folders holding the records (shards of one run); default: `out`. */
  records: string[];
  force: boolean;
}

export interface MergeResult {
  out: string;
  manifest: Manifest;
  warnings: string[];
}

type Log = (line: string) => void;

/**
 * Every user of the input with the length of the history that describes them, by the same rule as
 * loadCatalog: the snapshot of the split with the most recent impressions, ties to the later split.
 * Columns in typed arrays, not an object per user: MIND-large has 711k users.
 */
class UserTable {
  readonly index = new Map<string, number>();
  private split = new Int32Array(1 << 16);
  private curTime = new Float64Array(1 << 16);
  private curLen = new Int32Array(1 << 16);
  private bestTime = new Float64Array(1 << 16);
  /** -1 until a split has been folded in. */
  private bestLen = new Int32Array(1 << 16);

  get size(): number {
    return this.index.size;
  }

  has(userId: string): boolean {
    return this.index.has(userId);
  }

  /** A behaviors row; `length` is only called for the first row of a user in a split. */
  see(userId: string, split: number, time: number, length: () => number): void {
    const i = this.index.get(userId);
    if (i === undefined) {
      const n = this.index.size;
      if (n === this.split.length) this.grow();
      this.index.set(userId, n);
      this.split[n] = split;
      this.curTime[n] = time;
      this.curLen[n] = length();
      this.bestTime[n] = -Infinity;
      this.bestLen[n] = -1;
    } else if (this.split[i] !== split) {
      this.fold(i);
      this.split[i] = split;
      this.curTime[i] = time;
      this.curLen[i] = length();
    } else if (time > this.curTime[i]!) this.curTime[i] = time;
  }

  private fold(i: number): void {
    if (this.bestLen[i]! < 0 || this.curTime[i]! >= this.bestTime[i]!) {
      this.bestTime[i] = this.curTime[i]!;
      this.bestLen[i] = this.curLen[i]!;
    }
  }

  /** Call once after the last split. */
  finish(): void {
    for (let i = 0; i < this.index.size; i++) this.fold(i);
  }

  /** History length (capped, see historyLength); undefined for a user not in the input. */
  historyLength(userId: string): number | undefined {
    const i = this.index.get(userId);
    return i === undefined ? undefined : this.bestLen[i];
  }

  lengths(): Int32Array {
    return this.bestLen.subarray(0, this.index.size);
  }

  private grow(): void {
    const grow = <T extends Int32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(a.length * 2);
      b.set(a);
      return b;
    };
    this.split = grow(this.split);
    this.curTime = grow(this.curTime);
    this.curLen = grow(this.curLen);
    this.bestTime = grow(this.bestTime);
    this.bestLen = grow(this.bestLen);
  }
}

/** Counts history IDs up to `cap`: merge only needs 0, 1..coldMax or more. */
function historyLength(buf: Buffer, start: number, end: number, cap: number): number {
  let n = 0;
  let inToken = false;
  for (let i = start; i < end; i++) {
    if (buf[i] === 32) inToken = false;
    else if (!inToken) {
      inToken = true;
      if (++n >= cap) return n;
    }
  }
  return n;
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

function coldMaxFrom(records: StageRecords<"generate">): number {
  // The generate stage records its --cold-max in StageMeta options (stages/run.ts requestShapingOptions).
  for (const { meta } of records.metas) {
    const value = meta.options.coldMax;
    if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  }
  return DEFAULT_COLD_MAX;
}

interface PseudoRow extends NewsRow {
  userId: string;
}

/** Pseudo-news IDs continue after the largest numeric news ID, in user order then item order. */
function assignPseudoIds(generate: StageRecords<"generate">, newsIds: Iterable<string>): PseudoRow[] {
  let next = maxNumericNewsId(newsIds) + 1n;
  const rows: PseudoRow[] = [];
  for (const userId of sortIds(generate.byItem.keys())) {
    for (const item of generate.byItem.get(userId)!.value) {
      rows.push({
        id: `N${next++}`,
        userId,
        category: item.category,
        subcategory: PSEUDO_SUBCATEGORY,
        title: item.title,
        abstract: item.abstract,
        url: "",
        titleEntities: "[]",
        abstractEntities: "[]",
      });
    }
  }
  return rows;
}

async function refuseOverwrite(out: string, splits: SplitDir[], force: boolean): Promise<void> {
  for (const s of splits) {
    const target = join(out, s.name);
    if (inside(s.dir, target) || inside(target, s.dir)) {
      throw new UserError(`--out ${out}: the merged split ${target} would overwrite the input split ${s.dir}; choose another --out`);
    }
  }
  if (force) return;
  const paths = runPaths(out);
  const existing = [...splits.map((s) => paths.split(s.name)), paths.userProfiles, paths.manifest].filter((p) => existsSync(p));
  if (existing.length > 0) {
    throw new UserError(
      `--out ${out} already holds merged output (${existing.map((p) => relative(out, p) || ".").join(", ")}); ` +
        `pass --force to replace it (the split folders are replaced whole, so stale trainer caches in them go too)`,
    );
  }
}

/**
 * A stage run records the splits it read (StageMeta). Records made from other files (another
 * dataset, another snapshot, a subset) may still name known IDs, so the difference is worth a warning.
 */
async function inputMismatches(records: AllRecords, splits: SplitDir[]): Promise<string[]> {
  const describe = (list: { name: string; newsBytes: number; behaviorsBytes: number }[]) =>
    list.map((s) => `${s.name} (${s.newsBytes}+${s.behaviorsBytes} bytes)`).sort().join(", ");
  const inputs = describe(
    await Promise.all(splits.map(async (s) => ({ name: s.name, newsBytes: (await stat(s.newsFile)).size, behaviorsBytes: (await stat(s.behaviorsFile)).size }))),
  );
  const warnings: string[] = [];
  for (const stage of STAGE_NAMES) {
    for (const { file, meta } of records[stage].metas) {
      if (meta.splits.length === 0) continue;
      const made = describe(meta.splits);
      if (made !== inputs) warnings.push(`${file}: the ${stage} records were made from ${made}; merging ${inputs}`);
    }
  }
  return warnings;
}

function unknownMessage(stage: StageName, count: number, total: number, examples: string[], what: string): string {
  return `${count} of ${total} ${stage} records name ${what} not in any --data split (e.g. ${examples.join(", ")})`;
}

/** Runs merge; nothing appears in `out` unless every file was written and passed the readers contract. */
export async function merge(req: MergeRequest, log: Log = () => {}): Promise<MergeResult> {
  const out = resolve(req.out);
  const splits = await resolveSplits(req.data);
  const recordDirs = (req.records.length > 0 ? req.records : [req.out]).map((d) => resolve(d));
  await refuseOverwrite(out, splits, req.force);
  const warnings: string[] = [];
  const staging = join(out, `.merge-staging-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    // The records and the user table live only inside writeStaging: validation gets their memory back.
    const { manifest, coldMax } = await writeStaging(req, out, splits, recordDirs, staging, log, warnings);
    for (const split of splits) {
      const dir = join(staging, split.name);
      const staged: SplitDir = { name: split.name, dir, newsFile: join(dir, "news.tsv"), behaviorsFile: join(dir, "behaviors.tsv") };
      log(`${split.name}: validating the merged split`);
      const report = await validateSplit(staged, { coldMax, lenient: true, displayPath: (f) => relative(staging, f) });
      const errors = report.problems.filter((p) => p.severity === "error");
      if (errors.length > 0) {
        const described = errors.map((p) => `  ${p.message}: ${p.count}\n${p.examples.map((e) => `    ${e}`).join("\n")}`);
        throw new UserError(
          `the merged ${split.name} split fails validation, so nothing was written:\n${described.join("\n")}\n` +
            `Check the input with 'genre-mind validate ${split.dir}'.`,
        );
      }
    }
    await writeFileAtomic(join(staging, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");

    // Put everything in place; the manifest goes last, so its presence marks a complete merge.
    // A --force re-merge removes the old one first: stopped half-way, it would vouch for a mix.
    const paths = runPaths(out);
    await rm(paths.manifest, { force: true });
    for (const split of splits) {
      await rm(paths.split(split.name), { recursive: true, force: true });
      await rename(join(staging, split.name), paths.split(split.name));
    }
    await rename(join(staging, "user_profiles.tsv"), paths.userProfiles);
    await rename(join(staging, "manifest.json"), paths.manifest);
    return { out, manifest, warnings };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Writes the merged splits and user_profiles.tsv into `staging` and returns the manifest to write. */
async function writeStaging(
  req: MergeRequest,
  out: string,
  splits: SplitDir[],
  recordDirs: string[],
  staging: string,
  log: Log,
  warnings: string[],
): Promise<{ manifest: Manifest; coldMax: number }> {
  const records = await loadRecords(recordDirs);
  for (const stage of STAGE_NAMES) {
    const r = records[stage];
    if (r.invalidLines > 0) warnings.push(`${r.invalidLines} invalid ${stage} record line(s) skipped, e.g. ${r.invalidExamples.join("; ")}`);
  }
  warnings.push(...(await inputMismatches(records, splits)));
  log(
    `records: ${records.summarize.byItem.size} titles, ${records.profile.byItem.size} profiles, ` +
      `${records.generate.byItem.size} users with pseudo-news (records folders relative to --out: ${recordDirs.map((d) => relative(out, d) || ".").join(", ")})`,
  );

  // Pass 1 over news: IDs only, to check the records and number the pseudo-news.
  const newsIds = new Set<string>();
  for (const s of splits) {
    for await (const batch of readLineBatches(s.newsFile)) {
      for (const line of batch) newsIds.add(parseNewsLine(s.newsFile, line).id);
    }
  }
  const unknownNews = [...records.summarize.byItem.keys()].filter((id) => !newsIds.has(id));
  if (unknownNews.length > 0 && !req.allowUnknown) {
    throw new UserError(
      `${unknownMessage("summarize", unknownNews.length, records.summarize.byItem.size, unknownNews.slice(0, 3), "news IDs")}. ` +
        `Were the records made from another dataset? Pass --allow-unknown to merge the rest anyway.`,
    );
  }
  const pseudoRows = assignPseudoIds(records.generate, newsIds);
  const pseudoSuffix = new Map<string, string>();
  for (const row of pseudoRows) pseudoSuffix.set(row.userId, `${pseudoSuffix.get(row.userId) ?? ""} ${row.id}`);
  const coldMax = coldMaxFrom(records.generate);

  const users = new UserTable();
  const manifestSplits: ManifestSplit[] = [];
  for (const [index, split] of splits.entries()) {
    const dir = join(staging, split.name);
    const behaviorsBytes = (await stat(split.behaviorsFile)).size;
    log(`${split.name}: behaviors.tsv (${(behaviorsBytes / 1e6).toFixed(1)} MB)`);
    const { impressions, extended, pseudoUsersHere } = await mergeBehaviors(split, index, join(dir, "behaviors.tsv"), users, pseudoSuffix, coldMax);
    log(`${split.name}: news.tsv`);
    const news = await mergeNews(split, dir, records, req.title, pseudoRows.filter((r) => pseudoUsersHere.has(r.userId)));
    manifestSplits.push({
      name: split.name,
      input: relative(out, split.dir).split(sep).join("/"),
      newsBytes: (await stat(split.newsFile)).size,
      behaviorsBytes,
      output: { news: news.rows, pseudoNews: news.pseudo, titlesEnhanced: news.enhanced, impressions, historiesExtended: extended },
    });
  }
  users.finish();

  const unknownUsers = (stage: "profile" | "generate") => [...records[stage].byItem.keys()].filter((id) => !users.has(id));
  const unknownProfile = unknownUsers("profile");
  const unknownGenerate = unknownUsers("generate");
  if ((unknownProfile.length > 0 || unknownGenerate.length > 0) && !req.allowUnknown) {
    const parts: string[] = [];
    if (unknownProfile.length > 0) {
      parts.push(unknownMessage("profile", unknownProfile.length, records.profile.byItem.size, unknownProfile.slice(0, 3), "user IDs"));
    }
    if (unknownGenerate.length > 0) {
      parts.push(unknownMessage("generate", unknownGenerate.length, records.generate.byItem.size, unknownGenerate.slice(0, 3), "user IDs"));
    }
    throw new UserError(`${parts.join("; ")}. Were the records made from another dataset? Pass --allow-unknown to merge the rest anyway.`);
  }

  const profiled = sortIds([...records.profile.byItem.keys()].filter((id) => users.has(id)));
  const profiles = await AtomicFileWriter.open(join(staging, "user_profiles.tsv"));
  try {
    for (let i = 0; i < profiled.length; i += 10_000) {
      const lines = profiled.slice(i, i + 10_000).map((userId) => `${userId}\t${records.profile.byItem.get(userId)!.value}\n`);
      await profiles.write(lines.join(""));
    }
    await profiles.commit();
  } catch (e) {
    await profiles.abort();
    throw e;
  }

  const writtenPseudo = pseudoRows.filter((r) => users.has(r.userId));
  const stageInfo = buildStages(records, newsIds, users, coldMax, {
    summarize: unknownNews.length,
    profile: unknownProfile.length,
    generate: unknownGenerate.length,
  });
  const manifest = Manifest.parse({
    tool: "genre-mind merge",
    formatVersion: 1,
    options: { title: req.title, allowUnknown: req.allowUnknown },
    splits: manifestSplits,
    records: recordDirs.map((d) => relative(out, d).split(sep).join("/") || "."),
    stages: stageInfo,
    users: {
      total: users.size,
      profiled: profiled.length,
      cold: users.lengths().filter((len) => len >= 1 && len <= coldMax).length,
    },
    pseudoNews: Object.fromEntries(writtenPseudo.map((r) => [r.id, r.userId])),
    files: {
      perSplit: [...SPLIT_FILES],
      userProfiles: "user_profiles.tsv",
      userProfilesColumns: USER_PROFILES_COLUMNS,
      newsTitlesColumns: NEWS_TITLES_COLUMNS,
      listSeparator: LIST_SEPARATOR,
    },
  });
  return { manifest, coldMax };
}

const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;

/**
 * Streams behaviors.tsv as bytes: an untouched line is copied as is (no decoding, the impressions
 * column is never parsed, rebuilt or re-encoded); only the user ID and time are decoded per line.
 * CRLF endings become LF and a BOM is dropped, as every reader expects.
 */
async function mergeBehaviors(
  split: SplitDir,
  index: number,
  target: string,
  users: UserTable,
  pseudoSuffix: ReadonlyMap<string, string>,
  coldMax: number,
): Promise<{ impressions: number; extended: number; pseudoUsersHere: Set<string> }> {
  const file = split.behaviorsFile;
  const out = await AtomicFileWriter.open(target);
  const pseudoUsersHere = new Set<string>();
  let impressions = 0;
  let extended = 0;
  let lineNo = 0;
  let carry: Buffer | undefined;
  let first = true;

  // Handles line [start, end) of buf (end excludes LF and CR); returns the offset copying resumes from.
  const line = (buf: Buffer, start: number, end: number, parts: Buffer[], copyFrom: number): number => {
    lineNo++;
    const t1 = buf.indexOf(TAB, start);
    const t2 = t1 < 0 || t1 >= end ? -1 : buf.indexOf(TAB, t1 + 1);
    const t3 = t2 < 0 || t2 >= end ? -1 : buf.indexOf(TAB, t2 + 1);
    const t4 = t3 < 0 || t3 >= end ? -1 : buf.indexOf(TAB, t3 + 1);
    const t5 = t4 < 0 || t4 >= end ? -1 : buf.indexOf(TAB, t4 + 1);
    if (t4 < 0 || t4 >= end || (t5 >= 0 && t5 < end)) {
      const found = buf.toString("utf8", start, end).split("\t").length;
      throw new MindFormatError(file, lineNo, undefined, `expected 5 tab-separated fields (behaviors.tsv), found ${found}`);
    }
    const userId = buf.toString("utf8", t1 + 1, t2);
    if (userId.length === 0) throw new MindFormatError(file, lineNo, "User ID", "empty user ID");
    impressions++;

    const parsed = parseMindTime(buf.toString("latin1", t2 + 1, t3));
    const time = Number.isNaN(parsed) ? -Infinity : parsed;
    users.see(userId, index, time, () => historyLength(buf, t3 + 1, t4, coldMax + 1));

    const suffix = pseudoSuffix.get(userId);
    if (suffix === undefined) return copyFrom;
    pseudoUsersHere.add(userId);
    extended++;
    let historyEnd = t4;
    while (historyEnd > t3 + 1 && buf[historyEnd - 1] === SPACE) historyEnd--;
    parts.push(buf.subarray(copyFrom, historyEnd), Buffer.from(historyEnd === t3 + 1 ? suffix.slice(1) : suffix));
    return t4;
  };

  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      let buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      if (first) {
        if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
        first = false;
      }
      const parts: Buffer[] = [];
      let start = 0;
      let copyFrom = 0;
      let nl = buf.indexOf(LF, 0);
      while (nl !== -1) {
        const crlf = nl > start && buf[nl - 1] === CR;
        copyFrom = line(buf, start, crlf ? nl - 1 : nl, parts, copyFrom);
        if (crlf) {
          parts.push(buf.subarray(copyFrom, nl - 1));
          copyFrom = nl;
        }
        start = nl + 1;
        nl = buf.indexOf(LF, start);
      }
      parts.push(buf.subarray(copyFrom, start));
      carry = start < buf.length ? buf.subarray(start) : undefined;
      await out.writeBytes(Buffer.concat(parts));
    }
    if (carry && carry.length > 0) {
      const end = carry[carry.length - 1] === CR ? carry.length - 1 : carry.length;
      const parts: Buffer[] = [];
      const copyFrom = line(carry, 0, end, parts, 0);
      parts.push(carry.subarray(copyFrom, end), Buffer.from("\n"));
      await out.writeBytes(Buffer.concat(parts));
    }
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
  return { impressions, extended, pseudoUsersHere };
}

async function mergeNews(
  split: SplitDir,
  dir: string,
  records: AllRecords,
  mode: MergeOptions["title"],
  pseudo: readonly PseudoRow[],
): Promise<{ rows: number; pseudo: number; enhanced: number }> {
  const news = await AtomicFileWriter.open(join(dir, "news.tsv"));
  const titles = await AtomicFileWriter.open(join(dir, "news_titles.tsv"));
  let rows = 0;
  let enhanced = 0;
  try {
    for await (const batch of readLineBatches(split.newsFile)) {
      const newsParts: string[] = [];
      const titleParts: string[] = [];
      for (const line of batch) {
        const row = parseNewsLine(split.newsFile, line);
        rows++;
        const better = records.summarize.byItem.get(row.id)?.value;
        if (better !== undefined) enhanced++;
        const title = better === undefined || mode === "keep" ? row.title : mode === "replace" ? better : `${row.title} ${better}`;
        newsParts.push(formatNewsLine({ ...row, title }));
        titleParts.push(`${tsvField(row.id)}\t${tsvField(row.title)}\t${better ?? ""}\n`);
      }
      await news.write(newsParts.join(""));
      await titles.write(titleParts.join(""));
    }
    for (const row of pseudo) await news.write(formatNewsLine(row));
    await news.commit();
    await titles.commit();
  } catch (e) {
    await news.abort();
    await titles.abort();
    throw e;
  }
  return { rows: rows + pseudo.length, pseudo: pseudo.length, enhanced };
}

function buildStages(
  records: AllRecords,
  newsIds: ReadonlySet<string>,
  users: UserTable,
  coldMax: number,
  unknown: Record<StageName, number>,
): Record<StageName, ManifestStage> {
  const covered: Record<StageName, (id: string) => boolean> = {
    summarize: (id) => newsIds.has(id),
    profile: (id) => (users.historyLength(id) ?? 0) > 0,
    generate: (id) => {
      const len = users.historyLength(id) ?? 0;
      return len >= 1 && len <= coldMax;
    },
  };
  const known: Record<StageName, (id: string) => boolean> = {
    summarize: (id) => newsIds.has(id),
    profile: (id) => users.has(id),
    generate: (id) => users.has(id),
  };
  const itemIds: Record<StageName, Iterable<string>> = { summarize: newsIds, profile: users.index.keys(), generate: users.index.keys() };
  const result = {} as Record<StageName, ManifestStage>;
  for (const stage of STAGE_NAMES) {
    const r = records[stage] as StageRecords<StageName>;
    let items = 0;
    let missing = 0;
    let failed = 0;
    for (const id of itemIds[stage]) {
      if (!covered[stage](id)) continue;
      items++;
      if (r.byItem.has(id)) continue;
      missing++;
      if (r.failedItems.has(id)) failed++;
    }
    let merged = 0;
    const answeredBy = r.answerers.map((a) => ({ ...a, records: 0 }));
    for (const [id, rec] of r.byItem) {
      if (!known[stage](id)) continue;
      merged++;
      answeredBy[rec.by]!.records++;
    }
    const promptHashes: Record<string, string[]> = {};
    for (const { meta } of r.metas) {
      for (const [file, hash] of Object.entries(meta.promptHashes)) {
        const list = (promptHashes[file] ??= []);
        if (!list.includes(hash)) list.push(hash);
      }
    }
    const sortedHashes = Object.fromEntries(Object.keys(promptHashes).sort().map((f) => [f, promptHashes[f]!.sort()]));
    result[stage] = {
      answeredBy: answeredBy.filter((a) => a.records > 0).sort((a, b) => compareIds(`${a.provider} ${a.model}`, `${b.provider} ${b.model}`)),
      promptHashes: sortedHashes,
      metaFiles: r.metas.length,
      counts: { items, merged, missing, failed, invalidRecords: r.invalidLines, unknownRecords: unknown[stage] },
      usage: r.usage,
      costUsd: r.metas.length > 0 ? Math.round(r.metas.reduce((s, m) => s + m.meta.costUsd, 0) * 1e6) / 1e6 : null,
    };
  }
  return result;
}
