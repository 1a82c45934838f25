// Merge: input splits + stage records + options → drop-in MIND splits, a pure function of those.
// Behaviors are streamed (MIND-large train is 1.37 GB); news titles and records are small enough to hold.
// Which record applies to which split is history-rule.ts's to say; merge audits its output by it.
import { existsSync } from "node:fs";
import { copyFile, link, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { UserError } from "../cli/command.js";
import { STAGE_NAMES, type StageName } from "../engine/types.js";
import { MindFormatError } from "../mind/errors.js";
import { CandidateGuard, forEachCode, HistoryProbe, isCold, UserSources, type GuardedGroup, type GuardedItem } from "../mind/history-rule.js";
import { parseNewsLine, readLineBatches } from "../mind/read.js";
import type { NewsRow } from "../mind/rows.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { cleanGeneratedText, tsvField } from "../mind/text.js";
import { validateSplit } from "../mind/validate.js";
import { parseMindTime } from "../mind/time.js";
import { formatNewsLine, newsLineWithTitle } from "../mind/write.js";
import { runPaths } from "../run/folder.js";
import type { PseudoNews } from "../stages/outputs.js";
import { AtomicFileWriter, writeFileAtomic } from "../util/atomic.js";
import { compareIds, maxNumericNewsId, sortIds } from "./ids.js";
import { readByteLineChunks } from "./lines.js";
import { Manifest, PSEUDO_SUBCATEGORY, type ManifestSplit, type ManifestStage, type MergeOptions } from "./manifest.js";
import { LIST_SEPARATOR, loadRecords, type AllRecords, type StageRecords } from "./records.js";

/** The files merge writes into every split folder. */
export const SPLIT_FILES = ["news.tsv", "behaviors.tsv", "news_titles.tsv", "user_profiles.tsv"] as const;
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

/** The title column of a row under --title: one rule for real news and for pseudo-news taken from one. */
function titleFor(mode: MergeOptions["title"], original: string, enhanced: string | undefined): string {
  return enhanced === undefined || mode === "keep" ? original : mode === "replace" ? enhanced : `${original} ${enhanced}`;
}

interface PseudoRow extends NewsRow {
  userId: string;
  /** The record's item the row is written from. */
  item: PseudoNews;
  /**
   * An offline item taken from a news row that has an enhanced title: its title as --title makes
   * that row's (what a reader of the source row sees), unless it is a near copy of one of the
   * user's candidates; then the record's title stays.
   */
  sourceTitle?: string;
}

/** Pseudo-news IDs continue after the largest numeric news ID, in user order then item order. */
function assignPseudoIds(records: AllRecords, newsIds: Iterable<string>, mode: MergeOptions["title"]): PseudoRow[] {
  let next = maxNumericNewsId(newsIds) + 1n;
  const rows: PseudoRow[] = [];
  for (const userId of sortIds(records.generate.byItem.keys())) {
    for (const item of records.generate.byItem.get(userId)!.value) {
      const enhanced = item.retrievedFrom === undefined ? undefined : records.summarize.byItem.get(item.retrievedFrom)?.value;
      const sourceTitle = titleFor(mode, item.title, enhanced);
      rows.push({
        id: `N${next++}`,
        userId,
        item,
        sourceTitle: sourceTitle === item.title ? undefined : sourceTitle,
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

/** A pseudo-news row's title, packed for the candidate checks. */
type RowItem = GuardedItem<number> & { row: PseudoRow };

/** Rows by their user. */
function byUser(rows: readonly PseudoRow[]): Map<string, PseudoRow[]> {
  const out = new Map<string, PseudoRow[]>();
  for (const row of rows) {
    const list = out.get(row.userId);
    if (list) list.push(row);
    else out.set(row.userId, [row]);
  }
  return out;
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
  const existing = [...splits.map((s) => paths.split(s.name)), paths.legacyUserProfiles, paths.manifest].filter((p) => existsSync(p));
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

/** Runs merge; nothing appears in `out` unless every file was written, passed the audit and the readers contract. */
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
    // Profiles are per split now: a trainer must not find an older top-level file keyed by user alone.
    await rm(paths.legacyUserProfiles, { force: true });
    for (const split of splits) {
      await rm(paths.split(split.name), { recursive: true, force: true });
      await rename(join(staging, split.name), paths.split(split.name));
    }
    await rename(join(staging, "manifest.json"), paths.manifest);
    return { out, manifest, warnings };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** What one split's behaviors pass found and decided. */
interface SplitPass {
  impressions: number;
  extended: number;
  /** Users whose pseudo-news applies to this split (their history here holds its source clicks). */
  pseudoUsers: Set<string>;
  /** Users whose profile applies to this split. */
  profiled: string[];
}

/** Writes the merged splits into `staging`, audits them and returns the manifest to write. */
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
  if (STAGE_NAMES.every((stage) => records[stage].byItem.size === 0) && !req.allowEmpty) {
    throw new UserError(
      `no valid record of any stage in ${recordDirs.map((d) => relative(process.cwd(), d) || ".").join(", ")}: nothing to merge. ` +
        `Run the stages into that folder first (or point --records at it); --allow-empty writes plain copies of the input.`,
    );
  }
  warnings.push(...(await inputMismatches(records, splits)));
  log(
    `records: ${records.summarize.byItem.size} titles, ${records.profile.byItem.size} profiles, ` +
      `${records.generate.byItem.size} users with pseudo-news (records folders relative to --out: ${recordDirs.map((d) => relative(out, d) || ".").join(", ")})`,
  );

  // Pass 1 over news: IDs and original titles, to check the records, number the pseudo-news and
  // tell a near copy of a candidate.
  const titles = new Map<string, string>();
  for (const s of splits) {
    for await (const batch of readLineBatches(s.newsFile)) {
      for (const line of batch) {
        const row = parseNewsLine(s.newsFile, line);
        if (!titles.has(row.id)) titles.set(row.id, row.title);
      }
    }
  }
  const unknownNews = [...records.summarize.byItem.keys()].filter((id) => !titles.has(id));
  if (unknownNews.length > 0 && !req.allowUnknown) {
    throw new UserError(
      `${unknownMessage("summarize", unknownNews.length, records.summarize.byItem.size, unknownNews.slice(0, 3), "news IDs")}. ` +
        `Were the records made from another dataset? Pass --allow-unknown to merge the rest anyway.`,
    );
  }
  const pseudoRows = assignPseudoIds(records, titles.keys(), req.title);
  const pseudoSuffix = new Map<string, string>();
  for (const row of pseudoRows) pseudoSuffix.set(row.userId, `${pseudoSuffix.get(row.userId) ?? ""} ${row.id}`);
  const coldMax = coldMaxFrom(records.generate);
  const codes = records.generate.sources.codes;
  const guard = new CandidateGuard<number>((code) => titles.get(codes.id(code)));
  const refused = new Set<PseudoRow>();
  const retitled = new Map<string, GuardedGroup<number, RowItem>>();
  for (const [userId, rows] of byUser(pseudoRows.filter((r) => r.sourceTitle !== undefined))) {
    retitled.set(userId, guard.group(rows.map((row) => ({ row, ...guard.item(row.sourceTitle!) }))));
  }

  const users = new UserSources(splits.map((s) => s.name));
  const passes: SplitPass[] = [];
  for (const [index, split] of splits.entries()) {
    log(`${split.name}: behaviors.tsv (${((await stat(split.behaviorsFile)).size / 1e6).toFixed(1)} MB)`);
    const target = join(staging, split.name, "behaviors.tsv");
    passes.push(await mergeBehaviors(split, index, target, { users, records, pseudoSuffix, coldMax, retitled, guard, refused }));
  }
  users.finish();
  for (const row of pseudoRows) if (row.sourceTitle !== undefined && !refused.has(row)) row.title = row.sourceTitle;

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

  const manifestSplits: ManifestSplit[] = [];
  const written = new Set<PseudoRow>();
  for (const [index, split] of splits.entries()) {
    const dir = join(staging, split.name);
    const pass = passes[index]!;
    log(`${split.name}: news.tsv, user_profiles.tsv`);
    const here = pseudoRows.filter((r) => pass.pseudoUsers.has(r.userId));
    for (const row of here) written.add(row);
    const news = await mergeNews(split, dir, records, req.title, here);
    await writeProfiles(join(dir, "user_profiles.tsv"), sortIds(pass.profiled), records);
    const carried = await carryFiles(split, dir, warnings);
    manifestSplits.push({
      name: split.name,
      input: relative(out, split.dir).split(sep).join("/"),
      newsBytes: (await stat(split.newsFile)).size,
      behaviorsBytes: (await stat(split.behaviorsFile)).size,
      output: {
        news: news.rows,
        pseudoNews: news.pseudo,
        titlesEnhanced: news.enhanced,
        impressions: pass.impressions,
        historiesExtended: pass.extended,
        profiles: pass.profiled.length,
        carried,
      },
    });
  }

  const writtenRows = pseudoRows.filter((r) => written.has(r));
  log("auditing the merged splits");
  const audit = await auditStaging(staging, splits, users, records, writtenRows, guard, (id) => titles.get(id));

  const applied = (stage: "profile" | "generate") => {
    const set = new Set<string>();
    for (const pass of passes) for (const u of stage === "profile" ? pass.profiled : pass.pseudoUsers) set.add(u);
    return set;
  };
  const appliedProfile = applied("profile");
  const stageInfo = buildStages(records, titles, users, coldMax, { profile: appliedProfile, generate: applied("generate") }, {
    summarize: unknownNews.length,
    profile: unknownProfile.length,
    generate: unknownGenerate.length,
  });
  let cold = 0;
  for (const userId of users.index.keys()) if (isCold(users.sourceLength(userId), coldMax)) cold++;
  const manifest = Manifest.parse({
    tool: "genre-mind merge",
    formatVersion: 2,
    options: { title: req.title, allowUnknown: req.allowUnknown, allowEmpty: req.allowEmpty },
    splits: manifestSplits,
    records: recordDirs.map((d) => relative(out, d).split(sep).join("/") || "."),
    stages: stageInfo,
    users: { total: users.size, profiled: appliedProfile.size, cold },
    pseudoNews: Object.fromEntries(writtenRows.map((r) => [r.id, r.userId])),
    audit: { ...audit, violations: 0 },
    files: {
      perSplit: [...SPLIT_FILES],
      userProfilesColumns: USER_PROFILES_COLUMNS,
      newsTitlesColumns: NEWS_TITLES_COLUMNS,
      listSeparator: LIST_SEPARATOR,
    },
  });
  return { manifest, coldMax };
}

async function writeProfiles(file: string, userIds: readonly string[], records: AllRecords): Promise<void> {
  const profiles = await AtomicFileWriter.open(file);
  try {
    for (let i = 0; i < userIds.length; i += 10_000) {
      const lines = userIds.slice(i, i + 10_000).map((userId) => `${userId}\t${records.profile.byItem.get(userId)!.value}\n`);
      await profiles.write(lines.join(""));
    }
    await profiles.commit();
  } catch (e) {
    await profiles.abort();
    throw e;
  }
}

/** Files a trainer caches from the data it read: carried into a changed split, they would stand for the original data. */
const TRAINER_CACHE = /^parsed_|\.(pkl|pickle|npy|npz)$/i;

/**
 * The rest of the input split folder (MIND ships entity_embedding.vec and relation_embedding.vec in
 * every split; DKN/NAML-style readers look for them there): hard-linked into the output split,
 * copied where a link is not possible (another file system). Hidden files and trainer caches stay.
 */
async function carryFiles(split: SplitDir, dir: string, warnings: string[]): Promise<string[]> {
  const carried: string[] = [];
  const left: string[] = [];
  const own = new Set<string>(SPLIT_FILES);
  for (const entry of (await readdir(split.dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!entry.isFile() || own.has(entry.name) || entry.name.startsWith(".")) continue;
    if (TRAINER_CACHE.test(entry.name)) {
      left.push(entry.name);
      continue;
    }
    const from = join(split.dir, entry.name);
    const to = join(dir, entry.name);
    try {
      await link(from, to);
    } catch {
      await copyFile(from, to);
    }
    carried.push(entry.name);
  }
  if (left.length > 0) warnings.push(`${split.name}: not carried, trainer caches of the original data: ${left.join(", ")}`);
  return carried;
}

const TAB = 9;
const SPACE = 32;

/** The tab positions of a 5-field behaviors line in `buf[start, end)`, or a format error naming the line. */
function behaviorTabs(file: string, lineNo: number, buf: Buffer, start: number, end: number): [number, number, number, number] {
  const t1 = buf.indexOf(TAB, start);
  const t2 = t1 < 0 || t1 >= end ? -1 : buf.indexOf(TAB, t1 + 1);
  const t3 = t2 < 0 || t2 >= end ? -1 : buf.indexOf(TAB, t2 + 1);
  const t4 = t3 < 0 || t3 >= end ? -1 : buf.indexOf(TAB, t3 + 1);
  const t5 = t4 < 0 || t4 >= end ? -1 : buf.indexOf(TAB, t4 + 1);
  if (t4 < 0 || t4 >= end || (t5 >= 0 && t5 < end)) {
    const found = buf.toString("utf8", start, end).split("\t").length;
    throw new MindFormatError(file, lineNo, undefined, `expected 5 tab-separated fields (behaviors.tsv), found ${found}`);
  }
  if (t2 === t1 + 1) throw new MindFormatError(file, lineNo, "User ID", "empty user ID");
  return [t1, t2, t3, t4];
}

interface BehaviorsContext {
  users: UserSources;
  records: AllRecords;
  pseudoSuffix: ReadonlyMap<string, string>;
  coldMax: number;
  /** Pseudo-news rows that would take their source row's title (`item`: that title), by user; `refused` gets those that would copy a candidate. */
  retitled: ReadonlyMap<string, GuardedGroup<number, RowItem>>;
  guard: CandidateGuard<number>;
  refused: Set<PseudoRow>;
}

/**
 * Streams behaviors.tsv as bytes: an untouched line is copied as is (no decoding, the impressions
 * column is never parsed, rebuilt or re-encoded); only the user ID and time are decoded per line,
 * and a user's History on their first row of the split, where a record of theirs decides whether it
 * applies here (history-rule.ts rule 3). CRLF endings become LF and a BOM is dropped.
 */
async function mergeBehaviors(split: SplitDir, index: number, target: string, ctx: BehaviorsContext): Promise<SplitPass> {
  const { users, records, pseudoSuffix, retitled, guard, refused } = ctx;
  const file = split.behaviorsFile;
  await mkdir(dirname(target), { recursive: true });
  const out = await AtomicFileWriter.open(target);
  const probe = new HistoryProbe(records.profile.sources.codes);
  const pass: SplitPass = { impressions: 0, extended: 0, pseudoUsers: new Set(), profiled: [] };
  // The row's retitled items, and one callback for the pass that refuses those a candidate of the row copies.
  let mine: GuardedGroup<number, RowItem> | undefined;
  const refuseCopies = (candidate: number): void => {
    for (const { item } of guard.conflicts(mine!, candidate) ?? []) refused.add(item.row);
  };
  try {
    for await (const { buf, starts, ends, firstLineNo } of readByteLineChunks(file)) {
      const parts: Buffer[] = [];
      let copyFrom = 0;
      for (let i = 0; i < starts.length; i++) {
        const start = starts[i]!;
        const end = ends[i]!;
        const next = i + 1 < starts.length ? starts[i + 1]! : buf.length;
        const [t1, t2, t3, t4] = behaviorTabs(file, firstLineNo + i, buf, start, end);
        const userId = buf.toString("utf8", t1 + 1, t2);
        pass.impressions++;
        const parsed = parseMindTime(buf.toString("latin1", t2 + 1, t3));
        users.see(userId, index, parsed, () => historyLength(buf, t3 + 1, t4, ctx.coldMax + 1));
        if (users.firstInSplit) {
          const profile = records.profile.byItem.get(userId);
          const generated = records.generate.byItem.get(userId);
          if (profile || generated) probe.load(buf, t3 + 1, t4);
          if (profile && records.profile.sources.heldBy(profile.source, probe)) pass.profiled.push(userId);
          if (generated && records.generate.sources.heldBy(generated.source, probe)) pass.pseudoUsers.add(userId);
        }
        mine = retitled.get(userId);
        if (mine) forEachCode(probe.codes, buf, t4 + 1, end, refuseCopies, true);
        if (pass.pseudoUsers.has(userId)) {
          const suffix = pseudoSuffix.get(userId)!;
          pass.extended++;
          // The history holds the record's clicks, so it is not empty; trailing spaces are dropped.
          let historyEnd = t4;
          while (buf[historyEnd - 1] === SPACE) historyEnd--;
          parts.push(buf.subarray(copyFrom, historyEnd), Buffer.from(suffix));
          copyFrom = t4;
        }
        if (next - end !== 1) {
          // A CRLF or a missing final line break: the line is written with LF.
          parts.push(buf.subarray(copyFrom, end), NEWLINE);
          copyFrom = next;
        }
      }
      parts.push(buf.subarray(copyFrom));
      await out.writeBytes(Buffer.concat(parts));
    }
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
  return pass;
}
const NEWLINE = Buffer.from("\n");

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
        // An answer equal to the original title enhanced nothing, so it is not counted as enhanced.
        if (better !== undefined && better !== cleanGeneratedText(row.title)) enhanced++;
        const title = titleFor(mode, row.title, better);
        // A row keeps every byte it was read with but for a changed title (bytes that are not UTF-8 included).
        const written = newsLineWithTitle(line, title === row.title ? undefined : title);
        if (typeof written === "string") newsParts.push(written);
        else {
          await news.write(newsParts.splice(0).join(""));
          await news.writeBytes(written);
        }
        titleParts.push(`${tsvField(row.id)}\t${tsvField(row.title)}\t${better ?? ""}\n`);
      }
      await news.write(newsParts.join(""));
      await titles.write(titleParts.join(""));
    }
    for (const { userId: _u, item: _i, sourceTitle: _s, ...row } of pseudo) await news.write(formatNewsLine(row));
    await news.commit();
    await titles.commit();
  } catch (e) {
    await news.abort();
    await titles.abort();
    throw e;
  }
  return { rows: rows + pseudo.length, pseudo: pseudo.length, enhanced };
}

/** Violations listed in the error; all are counted. */
const SHOWN_VIOLATIONS = 20;

/**
 * Proves the staged output keeps the rule (history-rule.ts rules 3 and 4) by reading it back:
 * every appended pseudo-news ID belongs to the row's user and was written from clicks this split's
 * history holds (pseudo-news left out); every user_profiles.tsv row likewise; no pseudo-news item
 * is retrieved from, or a near copy of, a candidate of its user's impressions in any split. A
 * violation stops the merge before anything is put in place.
 */
async function auditStaging(
  staging: string,
  splits: readonly SplitDir[],
  users: UserSources,
  records: AllRecords,
  rows: readonly PseudoRow[],
  guard: CandidateGuard<number>,
  titles: (newsId: string) => string | undefined,
): Promise<{ pseudoNews: number; profiles: number }> {
  const codes = records.generate.sources.codes;
  const owner = new Map<number, PseudoRow>(rows.map((r) => [codes.code(r.id), r]));
  // Pseudo-news IDs number on from the largest input ID: every other history ID is below the first.
  let firstPseudo = Infinity;
  for (const code of owner.keys()) firstPseudo = Math.min(firstPseudo, code);
  // Each item as written and as the stage validated it (the record's title, retrievedFrom).
  const guarded = new Map<string, GuardedGroup<number, RowItem>>();
  for (const [userId, mine] of byUser(rows)) {
    const items = mine.flatMap((row) => {
      const from = row.item.retrievedFrom === undefined ? undefined : codes.code(row.item.retrievedFrom);
      return [...new Set([row.title, row.item.title])].map((title) => ({ row, ...guard.item(title, from) }));
    });
    guarded.set(userId, guard.group(items));
  }
  const probe = new HistoryProbe(codes);
  const violations: string[] = [];
  const reported = new Set<string>();
  const violation = (key: string, text: string) => {
    if (reported.has(key)) return;
    reported.add(key);
    violations.push(text);
  };
  let pseudoNews = 0;
  let profiles = 0;
  const appended: PseudoRow[] = [];
  const appendedOnly = (code: number): boolean => {
    if (code < firstPseudo) return false;
    const row = owner.get(code);
    if (row) appended.push(row);
    return row !== undefined;
  };
  // The row whose candidates checkCandidate sees: one callback for the whole audit, not one per row.
  let row: { userId: string; split: string; mine: GuardedGroup<number, RowItem> } | undefined;
  const checkCandidate = (code: number): void => {
    const { userId, split, mine } = row!;
    for (const { item, reason } of guard.conflicts(mine, code) ?? []) {
      const candidate = codes.id(code);
      const how = reason === "retrieved" ? `was retrieved from ${candidate}` : `is a near copy of ${candidate} ("${titles(candidate)}")`;
      violation(`${item.row.id} ${candidate}`, `${userId} in ${split}: pseudo-news ${item.row.id} ${how}, a candidate of ${userId}'s impressions in ${split}`);
    }
  };
  const heldBy = (stage: "profile" | "generate", userId: string): boolean => {
    const kept = records[stage].byItem.get(userId);
    return kept !== undefined && records[stage].sources.heldBy(kept.source, probe);
  };
  for (const split of splits) {
    const dir = join(staging, split.name);
    // Users with a row in this split's user_profiles.tsv (1), then checked against their behaviors row (2).
    const profiled = new Uint8Array(users.size);
    for await (const batch of readLineBatches(join(dir, "user_profiles.tsv"))) {
      for (const line of batch) {
        const userId = line.text.slice(0, line.text.indexOf("\t"));
        const u = users.index.get(userId);
        if (u === undefined) violation(`${split.name} profile ${userId}`, `${userId} in ${split.name}: a profile row for a user not in the input`);
        else profiled[u] = 1;
      }
    }
    const seen = new Uint8Array(users.size);
    const file = join(dir, "behaviors.tsv");
    for await (const { buf, starts, ends, firstLineNo } of readByteLineChunks(file)) {
      for (let i = 0; i < starts.length; i++) {
        const end = ends[i]!;
        const [t1, t2, t3, t4] = behaviorTabs(file, firstLineNo + i, buf, starts[i]!, end);
        const userId = buf.toString("utf8", t1 + 1, t2);
        const u = users.index.get(userId)!;
        if (!seen[u]) {
          seen[u] = 1;
          // The history without its pseudo-news is what the source clicks must be in.
          appended.length = 0;
          probe.load(buf, t3 + 1, t4, appendedOnly);
          for (const row of appended) {
            pseudoNews++;
            const where = `${userId} in ${split.name}: pseudo-news ${row.id}`;
            if (row.userId !== userId) violation(`${split.name} ${row.id} ${userId}`, `${where} was written for ${row.userId}`);
            else if (!heldBy("generate", userId)) {
              violation(`${split.name} ${row.id}`, `${where} was written from clicks this split's history does not hold (${sourceText(records, "generate", userId)})`);
            }
          }
          if (profiled[u] === 1) {
            profiled[u] = 2;
            profiles++;
            if (!heldBy("profile", userId)) {
              violation(`${split.name} profile ${userId}`, `${userId} in ${split.name}: the profile was written from clicks this split's history does not hold (${sourceText(records, "profile", userId)})`);
            }
          }
        }
        const mine = guarded.get(userId);
        if (!mine) continue;
        row = { userId, split: split.name, mine };
        forEachCode(codes, buf, t4 + 1, end, checkCandidate, true);
      }
    }
    for (const [userId, u] of users.index) {
      if (profiled[u] !== 1) continue;
      profiles++;
      violation(`${split.name} profile ${userId}`, `${userId} in ${split.name}: a profile row for a user with no behaviors row in this split`);
    }
  }
  if (violations.length > 0) {
    const shown = violations.slice(0, SHOWN_VIOLATIONS).map((v) => `  ${v}`).join("\n");
    const more = violations.length > SHOWN_VIOLATIONS ? `\n  … and ${violations.length - SHOWN_VIOLATIONS} more` : "";
    throw new UserError(
      `audit: ${violations.length} violation(s) of the history rule, so nothing was written:\n${shown}${more}\n` +
        `Records made from other --data than this merge's, or edited by hand, break the rule: run the stages again over the same --data.`,
    );
  }
  return { pseudoNews, profiles };
}

function sourceText(records: AllRecords, stage: "profile" | "generate", userId: string): string {
  const kept = records[stage].byItem.get(userId);
  if (!kept) return "no record";
  const source = records[stage].sources.source(kept.source);
  return `${source.split}: ${source.clicks.join(" ")}`;
}

function buildStages(
  records: AllRecords,
  news: ReadonlyMap<string, string>,
  users: UserSources,
  coldMax: number,
  applied: Record<"profile" | "generate", ReadonlySet<string>>,
  unknown: Record<StageName, number>,
): Record<StageName, ManifestStage> {
  const covered: Record<StageName, (id: string) => boolean> = {
    summarize: (id) => news.has(id),
    profile: (id) => users.sourceLength(id) > 0,
    generate: (id) => isCold(users.sourceLength(id), coldMax),
  };
  const merged: Record<StageName, (id: string) => boolean> = {
    summarize: (id) => records.summarize.byItem.has(id),
    profile: (id) => applied.profile.has(id),
    generate: (id) => applied.generate.has(id),
  };
  const known: Record<StageName, (id: string) => boolean> = {
    summarize: (id) => news.has(id),
    profile: (id) => users.has(id),
    generate: (id) => users.has(id),
  };
  const itemIds: Record<StageName, Iterable<string>> = { summarize: news.keys(), profile: users.index.keys(), generate: users.index.keys() };
  const result = {} as Record<StageName, ManifestStage>;
  for (const stage of STAGE_NAMES) {
    const r = records[stage] as StageRecords<StageName>;
    let items = 0;
    let missing = 0;
    let failed = 0;
    for (const id of itemIds[stage]) {
      if (!covered[stage](id)) continue;
      items++;
      if (merged[stage](id)) continue;
      missing++;
      if (r.failedItems.has(id)) failed++;
    }
    let mergedCount = 0;
    let inapplicable = 0;
    const answeredBy = r.answerers.map((a) => ({ ...a, records: 0 }));
    for (const [id, rec] of r.byItem) {
      if (!known[stage](id)) continue;
      if (!merged[stage](id)) {
        inapplicable++;
        continue;
      }
      mergedCount++;
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
      counts: { items, merged: mergedCount, inapplicable, missing, failed, invalidRecords: r.invalidLines, unknownRecords: unknown[stage] },
      usage: r.usage,
      costUsd: r.metas.length > 0 ? Math.round(r.metas.reduce((s, m) => s + m.meta.costUsd, 0) * 1e6) / 1e6 : null,
    };
  }
  return result;
}
