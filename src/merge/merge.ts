// Merge: input splits + stage records + options → drop-in MIND splits, a pure function of those.
// Behaviors are streamed (MIND-large train is 1.37 GB); news titles and records are small enough to hold.
// Which record applies to which split is history-rule.ts's to say; merge audits its output by it.
// What a stage's records do (edit news rows, write a file per split, add pseudo-news) is the
// stage's to say (Stage.merge, stage-merge.ts); merge runs those effects for every registered stage.
import { existsSync } from "node:fs";
import { copyFile, link, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { UserError } from "../cli/command.js";
import { MindFormatError } from "../mind/errors.js";
import { CandidateGuard, forEachCode, HistoryProbe, NewsCodes, UserSources, type GuardedGroup, type GuardedItem } from "../mind/history-rule.js";
import { behaviorTabs, parseNewsLine, readLineBatches } from "../mind/read.js";
import type { NewsRow } from "../mind/rows.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { LIST_SEPARATOR } from "../mind/text.js";
import { parseMindTime } from "../mind/time.js";
import { IndexedValues, IntColumn } from "../mind/user-ids.js";
import { formatNewsLine, newsLineWith } from "../mind/write.js";
import { runPaths } from "../run/folder.js";
import { checkInputSplits, rememberPassed } from "../run/input-check.js";
import { processAlive } from "../run/lock.js";
import { categoryItemsOf, KINDS, type ItemKind } from "../stages/kinds.js";
import { stages } from "../stages/registry.js";
import type { Stage } from "../stages/stage.js";
import { AtomicFileWriter, writeFileAtomic } from "../util/atomic.js";
import { compareIds, maxNumericNewsId, sortIds } from "./ids.js";
import { readByteLineChunks } from "../mind/byte-lines.js";
import { Manifest, stageCost, type ManifestStage } from "./manifest.js";
import { KeptByItem, loadRecords, type Kept, type StageRecords } from "./records.js";
import type { AppendedNews, MergeInput, NewsEdit, SideFile, UserFile } from "./stage-merge.js";

/** The files merge writes into every split folder: the two MIND files, then each stage's side files. */
export function splitFiles(): string[] {
  const own = stages().flatMap((s) => [s.merge.news?.file, s.merge.users?.file].flatMap((f) => (f ? [f.name] : [])));
  return ["news.tsv", "behaviors.tsv", ...own];
}

/** The files merge writes beside the split folders (StageMerge.beside), one per stage that has one. */
export function besideFiles(): SideFile[] {
  return stages().flatMap((s) => (s.merge.beside ? [s.merge.beside.file] : []));
}

export interface MergeRequest {
  /** `--data` values: split folders or folders of split folders. */
  data: string[];
  out: string;
  /** Run folders holding the records (shards of one run); default: `out`. */
  records: string[];
  force: boolean;
  allowUnknown: boolean;
  /** Merge even when no stage has a valid record (the output is then a copy of the input). */
  allowEmpty: boolean;
  /** The stages' own merge options, by flag name (summarize: title). */
  [option: string]: unknown;
}

export interface MergeResult {
  out: string;
  manifest: Manifest;
  warnings: string[];
}

type Log = (line: string) => void;

/** Counts history IDs up to `cap`: merge only needs to know 0, 1..cold-max or more (StageMerge.historyCap). */
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

/** A stage in this merge: its records and the state its merge part made of them (StageMerge.open). */
interface Merging {
  stage: Stage;
  /** Its position in the merge's list of stages. */
  index: number;
  /** None when the merge options leave the stage out (StageMerge.active). */
  records: StageRecords;
  state: unknown;
  /** The merge options leave its records out. */
  left: boolean;
}

/** Where items of a kind are in the input (merge's view of it: the titles and the user table). */
const KIND_ITEMS: Record<ItemKind, { ids(input: MergeInput): Iterable<string>; known(input: MergeInput, id: string): boolean }> = {
  news: { ids: (input) => input.news.keys(), known: (input, id) => input.news.has(id) },
  users: { ids: (input) => input.users.ids(), known: (input, id) => input.users.has(id) },
  categories: { ids: (input) => input.categories, known: (input, id) => input.categories.has(id) },
};

/** The news-editing stages with their effect, in registry order. */
type Edits = readonly { m: Merging; edit: NewsEdit<unknown> }[];
/** The stages writing a file per split for the users their records apply to. */
type UserFiles = readonly { m: Merging; file: UserFile<unknown> }[];
/** The stages appending news IDs of the input to the histories their records apply to. */
type Appenders = readonly { m: Merging; appends: AppendedNews<unknown> }[];

/** A row as the news-editing stages leave it, with each one's row, count and side-file line. */
function editRow(edits: Edits, original: NewsRow): { row: NewsRow; results: { row: NewsRow; counted: boolean; line?: string }[] } {
  let row = original;
  const results = edits.map(({ m, edit }) => {
    const r = edit.edit(m.state, row, original);
    row = r.row;
    return r;
  });
  return { row, results };
}

interface PseudoRow extends NewsRow {
  userId: string;
  /** The stage whose record the row is written from. */
  from: Merging;
  /** The record's item as the stage validated it: its title and the news it was retrieved from. */
  item: { title: string; retrievedFrom?: string };
  /**
   * The title the news edits give the row when it differs from the record's: an offline item's is
   * its source row's (what a reader of that row sees, e.g. the enhanced title), and --describe title
   * adds its category's description. Unless it is a near copy of one of the user's candidates; then
   * the record's title stays.
   */
  sourceTitle?: string;
  /**
   * Per news edit (Edits order), whether its count (manifest `splits[].output`) takes this row: when
   * the edit counted it and the row as written carries the edit (describe's newsDescribed takes the
   * pseudo-news rows that got a description; factors-news writes no line for one, so never).
   */
  counted: EditBits;
  /** `counted` for when the record's title stays: an edit that counted for the title it gave no longer does. */
  titleKept: EditBits;
}

/**
 * A bit per news edit (Edits order): two numbers on each of ~250k MIND-large pseudo-news rows, where
 * two arrays of booleans made a re-merge's peak ~90 MB larger. assignPseudoIds refuses more edits.
 */
type EditBits = number;
const MAX_EDITS = 31;

/** A pseudo-news row's title, packed for the candidate checks. */
type RowItem = GuardedItem<number> & { row: PseudoRow };
/** What the audit checks against a user's candidates: a pseudo-news row's title, or an appended news item. */
type AuditItem = GuardedItem<number> & ({ row: PseudoRow } | { appended: string; noun: string });

/** Pseudo-news IDs continue after the largest numeric news ID, in stage order, then user order, then item order. */
function assignPseudoIds(merging: readonly Merging[], newsIds: Iterable<string>, edits: Edits): PseudoRow[] {
  if (edits.length > MAX_EDITS) throw new Error(`merge counts at most ${MAX_EDITS} news-editing stages per pseudo-news row; ${edits.length} are registered`);
  let next = maxNumericNewsId(newsIds) + 1n;
  const rows: PseudoRow[] = [];
  for (const m of merging) {
    const adds = m.stage.merge.addsNews;
    if (!adds) continue;
    for (const userId of sortIds(m.records.byItem.keys())) {
      for (const { row, retrievedFrom } of adds.rows(m.state, userId)) {
        // A pseudo-news row is edited like the row it was retrieved from, or like no row (NewsEdit.edit).
        const source = { ...row, id: retrievedFrom ?? "" };
        const { row: edited, results } = editRow(edits, source);
        let counted = 0;
        let titleKept = 0;
        results.forEach((r, e) => {
          const before = e === 0 ? source : results[e - 1]!.row;
          const retitled = r.row.title !== before.title;
          const reabstracted = r.row.abstract !== before.abstract;
          if (r.counted && (retitled || reabstracted)) counted |= 1 << e;
          if (r.counted && reabstracted) titleKept |= 1 << e;
        });
        rows.push({
          id: `N${next++}`,
          userId,
          from: m,
          item: { title: row.title, retrievedFrom },
          sourceTitle: edited.title === row.title ? undefined : edited.title,
          counted,
          titleKept,
          ...row,
          abstract: edited.abstract,
        });
      }
    }
  }
  return rows;
}

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

/**
 * What merge refuses in its --out, before it reads anything: a merged split inside an input split
 * (or the reverse), and earlier merged output without --force. augment asks this before its first
 * stage as well, so nothing is paid for or computed when its merge would refuse.
 */
export async function checkMergeOut(req: Pick<MergeRequest, "data" | "out" | "force">): Promise<void> {
  await refuseOverwrite(resolve(req.out), await resolveSplits(req.data), req.force);
}

/** Exit 2, a path's problem like one that does not exist: the output is in the way, not the data bad. */
async function refuseOverwrite(out: string, splits: SplitDir[], force: boolean): Promise<void> {
  // NewsSplits keeps a split per bit of an int; refused here, before the input is checked or a stage pays.
  if (splits.length > 31) throw new UserError(`merge takes at most 31 split folders; --data names ${splits.length}`, 2);
  for (const s of splits) {
    const target = join(out, s.name);
    if (inside(s.dir, target) || inside(target, s.dir)) {
      throw new UserError(`--out ${out}: the merged split ${target} would overwrite the input split ${s.dir}; choose another --out`, 2);
    }
  }
  if (force) return;
  const paths = runPaths(out);
  const beside = besideFiles().map((f) => join(out, f.name));
  const existing = [...splits.map((s) => paths.split(s.name)), ...beside, paths.legacyUserProfiles, paths.manifest].filter((p) => existsSync(p));
  if (existing.length > 0) {
    throw new UserError(
      `--out ${out} already holds merged output (${existing.map((p) => relative(out, p) || ".").join(", ")}); ` +
        `pass --force to replace it (the split folders are replaced whole, so stale trainer caches in them go too)`,
      2,
    );
  }
}

/**
 * A stage run records the splits it read (StageMeta). Records made from other files (another
 * dataset, another snapshot, a subset) may still name known IDs, so the difference is worth a
 * warning; for a pooled stage (describe) it is an error, thrown here.
 */
async function inputMismatches(merging: readonly Merging[], splits: SplitDir[]): Promise<string[]> {
  const describe = (list: { name: string; newsBytes: number; behaviorsBytes: number }[]) =>
    list.map((s) => `${s.name} (${s.newsBytes}+${s.behaviorsBytes} bytes)`).sort().join(", ");
  const inputs = describe(
    await Promise.all(splits.map(async (s) => ({ name: s.name, newsBytes: (await stat(s.newsFile)).size, behaviorsBytes: (await stat(s.behaviorsFile)).size }))),
  );
  const warnings: string[] = [];
  for (const { stage, records, left } of merging) {
    for (const { file, meta } of records.metas) {
      if (meta.splits.length === 0) continue;
      const made = describe(meta.splits);
      if (made === inputs) continue;
      if (KINDS[stage.kind].pooled && !left && records.byItem.size > 0) {
        throw new UserError(
          `${file}: the ${stage.name} records were made from ${made}; this merge's --data is ${inputs}. ` +
            `Each was written from the stories of those splits and goes into rows of these, which would carry other splits' stories into them: ` +
            `run ${stage.name} over the same --data as the merge.`,
        );
      }
      warnings.push(`${file}: the ${stage.name} records were made from ${made}; merging ${inputs}`);
    }
  }
  return warnings;
}

/**
 * Records of the stages of a kind that name items not in the input, counted per stage (the
 * manifest's unknownRecords); unless --allow-unknown, any stops the merge with counts and examples.
 */
function unknownItems(kind: ItemKind, merging: readonly Merging[], input: MergeInput, allowUnknown: boolean): Map<Merging, number> {
  const counts = new Map<Merging, number>();
  const parts: string[] = [];
  for (const m of merging) {
    if (m.stage.kind !== kind) continue;
    const unknown = [...m.records.byItem.keys()].filter((id) => !KIND_ITEMS[kind].known(input, id));
    counts.set(m, unknown.length);
    if (unknown.length > 0) {
      parts.push(`${unknown.length} of ${m.records.byItem.size} ${m.stage.name} records name ${KINDS[kind].ids} not in any --data split (e.g. ${unknown.slice(0, 3).join(", ")})`);
    }
  }
  if (parts.length > 0 && !allowUnknown) {
    throw new UserError(`${parts.join("; ")}. Were the records made from another dataset? Pass --allow-unknown to merge the rest anyway.`);
  }
  return counts;
}

/** Runs merge; nothing appears in `out` unless the input passed validate's checks and every file was written and passed the audit. */
export async function merge(req: MergeRequest, log: Log = () => {}): Promise<MergeResult> {
  const out = resolve(req.out);
  const splits = await resolveSplits(req.data);
  const recordDirs = (req.records.length > 0 ? req.records : [req.out]).map((d) => resolve(d));
  await refuseOverwrite(out, splits, req.force);
  // The input passes validate's checks (once: a split that passed is remembered in the run folder,
  // where the stage commands that made the records checked it too). Merge copies its rows byte for
  // byte or rewrites only what it owns (a title, a history's appended pseudo-news, its own rows), so
  // the output is not parsed again for the trainers' contract; the audit reads it back for the rule.
  log("checking the input splits");
  const checked = await checkInputSplits(splits, { lenient: false, forMerge: true, out, persist: false, show: (p) => relative(process.cwd(), p) || p, nothing: "Nothing was written" });
  const warnings: string[] = [];
  await removeStaleStaging(out);
  // removeStaleStaging took this process's own leftover too.
  const staging = join(out, `${STAGING_PREFIX}${process.pid}`);
  await mkdir(staging, { recursive: true });
  try {
    const { manifest, json } = await writeStaging(req, out, splits, recordDirs, staging, log, warnings);
    await writeFileAtomic(join(staging, "manifest.json"), json);

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
    for (const f of besideFiles()) await rename(join(staging, f.name), join(out, f.name));
    await rename(join(staging, "manifest.json"), paths.manifest);
    await rememberPassed(out, checked);
    return { out, manifest, warnings };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

const STAGING_PREFIX = ".merge-staging-";

/**
 * Removes the staging folders of merges into `out` whose process is gone: a merge stopped by Ctrl-C
 * or a kill leaves its own behind (a MIND-large one holds gigabytes). A live one's is another merge
 * at work (the run lock does not cover merge) and is left alone.
 */
async function removeStaleStaging(out: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(out);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const pid = Number(name.slice(STAGING_PREFIX.length));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) continue;
    await rm(join(out, name), { recursive: true, force: true });
  }
}

/**
 * Users as marks over their UserSources indexes: the behaviors pass marks ~700k users per stage
 * and split at MIND-large, where a Set of their IDs would hash a string for each.
 */
class UserSet implements ReadonlySet<string> {
  /** 1 for a user in the set. */
  private readonly marks = new IntColumn();
  size = 0;

  constructor(private readonly users: UserSources) {}

  mark(u: number): void {
    if (this.marks.get(u) === 1) return;
    this.marks.set(u, 1);
    this.size++;
  }

  hasIndex(u: number): boolean {
    return this.marks.get(u) === 1;
  }

  has(userId: string): boolean {
    const u = this.users.indexOf(userId);
    return u !== undefined && this.hasIndex(u);
  }

  /** The users of every set given, as one. */
  static union(users: UserSources, sets: readonly UserSet[]): UserSet {
    const all = new UserSet(users);
    for (let u = 0; u < users.size; u++) if (sets.some((set) => set.hasIndex(u))) all.mark(u);
    return all;
  }

  /** IDs in the order the users were met. */
  *[Symbol.iterator](): SetIterator<string> {
    for (let u = 0; u < this.users.size; u++) if (this.hasIndex(u)) yield this.users.idAt(u);
  }
  keys(): SetIterator<string> {
    return this[Symbol.iterator]();
  }
  values(): SetIterator<string> {
    return this[Symbol.iterator]();
  }
  *entries(): SetIterator<[string, string]> {
    for (const id of this) yield [id, id];
  }
  forEach(f: (value: string, key: string, set: ReadonlySet<string>) => void): void {
    for (const id of this) f(id, id, this);
  }
}

/** What one split's behaviors pass found and decided. */
interface SplitPass {
  impressions: number;
  extended: number;
  /** Per merging stage (users stages only): users whose record applies to this split (their history here holds its source clicks). */
  applied: UserSet[];
  /** Per merging stage (appendsNews): the news IDs appended here, counted once per user. */
  appended: number[];
  /**
   * By UserSources index, for users whose pseudo-news applies to this split: the IDs their history
   * here is extended with, encoded once. Read on every row.
   */
  suffixes: IndexedValues<Buffer>;
}

/** Writes the merged splits into `staging`, audits them and returns the manifest to write (and its JSON, keys in their fixed order). */
async function writeStaging(
  req: MergeRequest,
  out: string,
  splits: SplitDir[],
  recordDirs: string[],
  staging: string,
  log: Log,
  warnings: string[],
): Promise<{ manifest: Manifest; json: string }> {
  // One NewsCodes for every stage's sources and the candidates: a history is probed once for all.
  const codes = new NewsCodes();
  const records = await loadRecords(recordDirs, codes);
  const merging: Merging[] = stages().map((stage, index) => {
    const r = records.get(stage.name)!;
    const state = stage.merge.open(r, req);
    if (stage.merge.active?.(state) !== false) return { stage, index, records: r, state, left: false };
    // Left out by the merge options (generate under --cold pick): merged as if it had no records.
    const none = { ...r, byItem: new KeptByItem() };
    return { stage, index, records: none, state: stage.merge.open(none, req), left: true };
  });
  for (const { stage, records: r } of merging) {
    if (r.invalidLines > 0) warnings.push(`${r.invalidLines} invalid ${stage.name} record line(s) skipped, e.g. ${r.invalidExamples.join("; ")}`);
  }
  if (merging.every((m) => m.records.byItem.size === 0) && !req.allowEmpty) {
    throw new UserError(
      `no valid record of any stage in ${recordDirs.map((d) => relative(process.cwd(), d) || ".").join(", ")}: nothing to merge. ` +
        `Run the stages into that folder first (or point --records at it); --allow-empty writes plain copies of the input.`,
    );
  }
  warnings.push(...(await inputMismatches(merging, splits)));
  log(
    `records: ${merging.map((m) => (m.left ? `no ${m.stage.merge.noun} (left out by the merge options)` : `${m.records.byItem.size} ${m.stage.merge.noun}`)).join(", ")} ` +
      `(records folders relative to --out: ${recordDirs.map((d) => relative(out, d) || ".").join(", ")})`,
  );
  const edits: Edits = merging.flatMap((m) => (m.stage.merge.news ? [{ m, edit: m.stage.merge.news }] : []));
  const userFiles: UserFiles = merging.flatMap((m) => (m.stage.merge.users ? [{ m, file: m.stage.merge.users }] : []));
  const sourced = merging.filter((m) => KINDS[m.stage.kind].sourced);
  const appenders: Appenders = merging.flatMap((m) => (m.stage.merge.appendsNews ? [{ m, appends: m.stage.merge.appendsNews }] : []));

  // Pass 1 over news: IDs and original titles, to check the records, number the pseudo-news and
  // tell a near copy of a candidate; the categories items of the rows.
  const titles = new Map<string, string>();
  const newsSplits = new NewsSplits(codes);
  const categories = new Set<string>();
  for (const [i, s] of splits.entries()) {
    for await (const batch of readLineBatches(s.newsFile)) {
      for (const line of batch) {
        const row = parseNewsLine(s.newsFile, line);
        if (!titles.has(row.id)) titles.set(row.id, row.title);
        newsSplits.add(row.id, i);
        for (const id of categoryItemsOf(row)) categories.add(id);
      }
    }
  }
  const users = new UserSources(splits.map((s) => s.name));
  const input: MergeInput = { news: titles, users, categories };
  const unknown = unknownItems("news", merging, input, req.allowUnknown);
  for (const [m, n] of unknownItems("categories", merging, input, req.allowUnknown)) unknown.set(m, n);
  const pseudoRows = assignPseudoIds(merging, titles.keys(), edits);
  const retrieved = retrievedBy(pseudoRows);
  const pseudoSuffix = merging.map(() => new Map<string, string>());
  for (const row of pseudoRows) {
    const mine = pseudoSuffix[row.from.index]!;
    mine.set(row.userId, `${mine.get(row.userId) ?? ""} ${row.id}`);
  }
  const historyCap = Math.max(1, ...merging.map((m) => m.stage.merge.historyCap?.(m.state) ?? 0));
  const guard = new CandidateGuard<number>((code) => titles.get(codes.id(code)));
  const refused = new Set<PseudoRow>();
  const retitled = new Map<string, GuardedGroup<number, RowItem>>();
  for (const [userId, rows] of byUser(pseudoRows.filter((r) => r.sourceTitle !== undefined))) {
    retitled.set(userId, guard.group(rows.map((row) => ({ row, ...guard.item(row.sourceTitle!) }))));
  }

  const passes: SplitPass[] = [];
  for (const [index, split] of splits.entries()) {
    log(`${split.name}: behaviors.tsv (${((await stat(split.behaviorsFile)).size / 1e6).toFixed(1)} MB)`);
    const target = join(staging, split.name, "behaviors.tsv");
    passes.push(await mergeBehaviors(split, index, target, { users, merging, sourced, pseudoSuffix, newsSplits, retrieved, historyCap, codes, retitled, guard, refused }));
  }
  users.finish();
  for (const row of pseudoRows) {
    if (row.sourceTitle === undefined) continue;
    if (refused.has(row)) row.counted = row.titleKept;
    else row.title = row.sourceTitle;
  }
  for (const [m, n] of unknownItems("users", merging, input, req.allowUnknown)) unknown.set(m, n);

  const splitOutputs: Record<string, unknown>[] = [];
  const written = new Set<PseudoRow>();
  for (const [index, split] of splits.entries()) {
    const dir = join(staging, split.name);
    const pass = passes[index]!;
    log(`${split.name}: news.tsv, ${userFiles.map((u) => u.file.file.name).join(", ")}`);
    const here = pseudoRows.filter((r) => pass.applied[r.from.index]!.has(r.userId));
    for (const row of here) written.add(row);
    const news = await mergeNews(split, dir, edits, here);
    for (const { m, file } of userFiles) await writeUserFile(join(dir, file.file.name), sortIds(pass.applied[m.index]!), (userId) => file.line(m.state, userId));
    const carried = await carryFiles(split, dir, warnings);
    // The counts in the order of ManifestSplit.output: news rows, edited rows, behaviors rows, users files, carried files.
    splitOutputs.push({
      name: split.name,
      input: relative(out, split.dir).split(sep).join("/"),
      newsBytes: (await stat(split.newsFile)).size,
      behaviorsBytes: (await stat(split.behaviorsFile)).size,
      output: {
        news: news.rows,
        pseudoNews: news.pseudo,
        ...Object.fromEntries(edits.map(({ edit }, i) => [edit.count.key, news.counted[i]])),
        impressions: pass.impressions,
        historiesExtended: pass.extended,
        ...Object.fromEntries(appenders.map(({ m, appends }) => [appends.count.key, pass.appended[m.index]!])),
        ...Object.fromEntries(userFiles.map(({ m, file }) => [file.count.key, pass.applied[m.index]!.size])),
        carried,
      },
    });
  }

  const besides = merging.flatMap((m) => (m.stage.merge.beside ? [{ m, beside: m.stage.merge.beside }] : []));
  for (const { m, beside } of besides) {
    log(beside.file.name);
    await writeLines(join(staging, beside.file.name), beside.lines(m.state, input));
  }

  const writtenRows = pseudoRows.filter((r) => written.has(r));
  log("auditing the merged splits");
  const appended: AppendedToAudit[] = appenders.map(({ m, appends }) => ({ m, appends, newsSplits, retrieved, users: UserSet.union(users, passes.map((p) => p.applied[m.index]!)) }));
  const audit = await auditStaging(staging, splits, users, userFiles, writtenRows, appended, guard, codes, newsSplits, (id) => titles.get(id));

  // Users each stage's records apply to in some split.
  const applied = merging.map((m) => UserSet.union(users, passes.map((p) => p.applied[m.index]!)));
  const stageInfo = buildStages(merging, input, applied, unknown);
  const userCounts = merging.map((m) => m.stage.merge.userCounts?.(m.state, input, applied[m.index]!) ?? {});
  const mergeOptions = merging.map((m) => m.stage.merge.manifestOptions?.(m.state) ?? {});
  const columns = (files: (SideFile | undefined)[]) => Object.fromEntries(files.flatMap((f) => (f ? [[f.columnsKey, [...f.columns]]] : [])));
  // Key order is the file format's (manifest.ts), so the JSON is written as built here.
  const draft = {
    tool: "genre-mind merge",
    formatVersion: 2,
    options: { ...Object.assign({}, ...mergeOptions), allowUnknown: req.allowUnknown, allowEmpty: req.allowEmpty },
    splits: splitOutputs,
    records: recordDirs.map((d) => relative(out, d).split(sep).join("/") || "."),
    stages: stageInfo,
    users: { total: users.size, ...Object.assign({}, ...userCounts) },
    pseudoNews: Object.fromEntries(writtenRows.map((r) => [r.id, r.userId])),
    audit: { ...audit, violations: 0 },
    files: {
      perSplit: splitFiles(),
      beside: besides.map((b) => b.beside.file.name),
      ...columns(userFiles.map((u) => u.file.file)),
      ...columns(edits.map((e) => e.edit.file)),
      ...columns(besides.map((b) => b.beside.file)),
      listSeparator: LIST_SEPARATOR,
    },
  };
  return { manifest: Manifest.parse(draft), json: JSON.stringify(draft, null, 2) + "\n" };
}

async function writeUserFile(file: string, userIds: readonly string[], line: (userId: string) => string): Promise<void> {
  await writeLines(file, userIds.map(line));
}

async function writeLines(file: string, lines: Iterable<string>): Promise<void> {
  const out = await AtomicFileWriter.open(file);
  try {
    let chunk: string[] = [];
    for (const line of lines) {
      chunk.push(`${line}\n`);
      if (chunk.length === 10_000) {
        await out.write(chunk.join(""));
        chunk = [];
      }
    }
    await out.write(chunk.join(""));
    await out.commit();
  } catch (e) {
    await out.abort();
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
  const own = new Set(splitFiles());
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

const SPACE = 32;

/** The tab positions of a 5-field behaviors line in `buf[start, end)`, or a format error naming the line. */
function lineTabs(file: string, lineNo: number, buf: Buffer, start: number, end: number): [number, number, number, number] {
  const tabs = behaviorTabs(buf, start, end);
  if (!Array.isArray(tabs)) throw new MindFormatError(file, lineNo, tabs.field, tabs.problem);
  return tabs;
}

interface BehaviorsContext {
  users: UserSources;
  merging: readonly Merging[];
  /** The users stages: whether their record applies here is decided on a user's first row of the split. */
  sourced: readonly Merging[];
  /** Per merging stage, by user: the IDs of the pseudo-news it adds, each after a space. */
  pseudoSuffix: readonly ReadonlyMap<string, string>[];
  /** The splits' news IDs: a stage appends to this split's histories only those its news.tsv holds. */
  newsSplits: NewsSplits;
  /** News the user's pseudo-news was retrieved from: not appended again. */
  retrieved: RetrievedBy;
  historyCap: number;
  codes: NewsCodes;
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
  const { users, sourced, pseudoSuffix, retitled, guard, refused } = ctx;
  const file = split.behaviorsFile;
  await mkdir(dirname(target), { recursive: true });
  const out = await AtomicFileWriter.open(target);
  const probe = new HistoryProbe(ctx.codes);
  const pass: SplitPass = { impressions: 0, extended: 0, applied: ctx.merging.map(() => new UserSet(users)), appended: ctx.merging.map(() => 0), suffixes: new IndexedValues() };
  // A stage without records decides nothing: no lookup of each user in it.
  const deciding = sourced.filter((m) => m.records.byItem.size > 0);
  // The row's retitled items, and one callback for the pass that refuses those a candidate of the row copies.
  let mine: GuardedGroup<number, RowItem> | undefined;
  // The retitled items of the users met in this split, by their UserSources index: looked up by ID once per user.
  const retitledHere = new IndexedValues<GuardedGroup<number, RowItem>>();
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
        const [t1, t2, t3, t4] = lineTabs(file, firstLineNo + i, buf, start, end);
        pass.impressions++;
        const parsed = parseMindTime(buf.toString("latin1", t2 + 1, t3));
        const u = users.see(buf, t1 + 1, t2, index, parsed);
        if (users.firstInSplit) {
          users.setLength(u, index, historyLength(buf, t3 + 1, t4, ctx.historyCap));
          if (retitled.size > 0) {
            const group = retitled.get(users.idAt(u));
            if (group) retitledHere.set(u, group);
          }
          let loaded = false;
          let suffix = "";
          for (const m of deciding) {
            const kept = keptFor(m, users, u);
            if (!kept) continue;
            const userId = users.idAt(u);
            if (!loaded) {
              probe.load(buf, t3 + 1, t4);
              loaded = true;
            }
            if (!m.records.sources.heldBy(kept.source, probe)) continue;
            pass.applied[m.index]!.mark(u);
            suffix += pseudoSuffix[m.index]!.get(userId) ?? "";
            const appends = m.stage.merge.appendsNews;
            if (appends) {
              const ids = appendedHere(appends, m, userId, index, ctx.newsSplits, ctx.retrieved);
              if (ids.length > 0) suffix += ` ${ids.join(" ")}`;
              pass.appended[m.index]! += ids.length;
            }
          }
          if (suffix) pass.suffixes.set(u, Buffer.from(suffix));
        }
        mine = retitledHere.get(u);
        if (mine) forEachCode(probe.codes, buf, t4 + 1, end, refuseCopies, true);
        const suffix = pass.suffixes.get(u);
        if (suffix !== undefined) {
          pass.extended++;
          // The history holds the record's clicks, so it is not empty; trailing spaces are dropped.
          let historyEnd = t4;
          while (buf[historyEnd - 1] === SPACE) historyEnd--;
          parts.push(buf.subarray(copyFrom, historyEnd), suffix);
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

/** mind/write.ts rewrites the title and abstract of a row it copies, nothing else: an edit of another field would be lost. */
function onlyEditableChanged(row: NewsRow, original: NewsRow): void {
  for (const field of ["id", "category", "subcategory", "url", "titleEntities", "abstractEntities"] as const) {
    if (row[field] !== original[field]) throw new Error(`merge: a stage's news edit changed the ${field} of ${original.id}; merge writes title and abstract edits only (newsLineWith)`);
  }
}

async function mergeNews(split: SplitDir, dir: string, edits: Edits, pseudo: readonly PseudoRow[]): Promise<{ rows: number; pseudo: number; counted: number[] }> {
  const news = await AtomicFileWriter.open(join(dir, "news.tsv"));
  // Each news-editing stage's side file (summarize: news_titles.tsv), one line per row.
  const files: (AtomicFileWriter | undefined)[] = [];
  for (const { edit } of edits) files.push(edit.file ? await AtomicFileWriter.open(join(dir, edit.file.name)) : undefined);
  let rows = 0;
  const counted = edits.map(() => 0);
  try {
    for await (const batch of readLineBatches(split.newsFile)) {
      const newsParts: string[] = [];
      const fileParts: string[][] = edits.map(() => []);
      for (const line of batch) {
        const original = parseNewsLine(split.newsFile, line);
        rows++;
        const { row, results } = editRow(edits, original);
        results.forEach((r, e) => {
          if (r.counted) counted[e]!++;
          if (files[e] && r.line !== undefined) fileParts[e]!.push(`${r.line}\n`);
        });
        if (row !== original) onlyEditableChanged(row, original);
        // A row keeps every byte it was read with but for a changed title or abstract (bytes that are not UTF-8 included).
        const written = newsLineWith(line, {
          title: row.title === original.title ? undefined : row.title,
          abstract: row.abstract === original.abstract ? undefined : row.abstract,
        });
        if (typeof written === "string") newsParts.push(written);
        else {
          await news.write(newsParts.splice(0).join(""));
          await news.writeBytes(written);
        }
      }
      await news.write(newsParts.join(""));
      for (const [e, f] of files.entries()) await f?.write(fileParts[e]!.join(""));
    }
    for (const p of pseudo) {
      for (let e = 0; e < edits.length; e++) if (p.counted & (1 << e)) counted[e]!++;
      // formatNewsLine reads a NewsRow's eight fields by name: merge's own fields of the row stay out.
      await news.write(formatNewsLine(p));
    }
    await news.commit();
    for (const f of files) await f?.commit();
  } catch (e) {
    await news.abort();
    for (const f of files) await f?.abort();
    throw e;
  }
  return { rows: rows + pseudo.length, pseudo: pseudo.length, counted };
}

/** The record's news IDs a split's history gets: those its news.tsv holds, in the record's order. */
function appendedHere(appends: AppendedNews<unknown>, m: Merging, userId: string, split: number, newsSplits: NewsSplits, retrieved: RetrievedBy): string[] {
  const copied = retrieved.get(userId);
  return appends.ids(m.state, userId).filter((id) => newsSplits.has(id, split) && !copied?.has(id));
}

/**
 * By user, the news their pseudo-news was retrieved from: a news item a stage appends (pick) is left
 * out when one of the user's pseudo-news is its copy. The offline baselines of generate and pick
 * retrieve alike, so under --cold both the history held each story twice, as news and as its copy.
 */
type RetrievedBy = ReadonlyMap<string, ReadonlySet<string>>;

function retrievedBy(rows: readonly PseudoRow[]): RetrievedBy {
  const out = new Map<string, Set<string>>();
  for (const row of rows) {
    if (row.item.retrievedFrom === undefined) continue;
    const set = out.get(row.userId) ?? new Set<string>();
    out.set(row.userId, set.add(row.item.retrievedFrom));
  }
  return out;
}

/** A stage that appended news IDs, as the audit sees it: the users it appended to somewhere, and the splits' news IDs. */
interface AppendedToAudit {
  m: Merging;
  appends: AppendedNews<unknown>;
  users: ReadonlySet<string>;
  newsSplits: NewsSplits;
  retrieved: RetrievedBy;
}

/** The splits (bits by --data index) whose news.tsv holds a news ID: a column by NewsCodes number, a map for the rest. */
class NewsSplits {
  private readonly numbered = new IntColumn();
  private readonly others = new Map<number, number>();

  constructor(private readonly codes: NewsCodes) {}

  add(id: string, split: number): void {
    const code = this.codes.code(id);
    if (code >= 0 && code <= MAX_NUMBERED_NEWS) this.numbered.set(code, this.numbered.get(code) | (1 << split));
    else this.others.set(code, (this.others.get(code) ?? 0) | (1 << split));
  }

  has(id: string, split: number): boolean {
    const code = this.codes.code(id);
    const bits = code >= 0 && code <= MAX_NUMBERED_NEWS ? this.numbered.get(code) : (this.others.get(code) ?? 0);
    return (bits & (1 << split)) !== 0;
  }
}
/** News numbers up to this are a column entry (MIND's reach ~130k); larger ones, rare, a map entry. */
const MAX_NUMBERED_NEWS = 1 << 22;

/** Violations listed in the error; all are counted. */
const SHOWN_VIOLATIONS = 20;
/**
 * Proves the staged output keeps the rule (history-rule.ts rules 3 and 4) by reading it back:
 * every appended pseudo-news ID belongs to the row's user and was written from clicks this split's
 * history holds (pseudo-news left out); every line of a users stage's file (user_profiles.tsv)
 * likewise; news IDs a stage appends (pick: found as the end of the history the record would give
 * it here) likewise; no pseudo-news item or appended news item is, is retrieved from, or is a near
 * copy of a candidate of its user's impressions in any split. A violation stops the merge before
 * anything is put in place. Returns the counts checked in the order of ManifestAudit.
 */
async function auditStaging(
  staging: string,
  splits: readonly SplitDir[],
  users: UserSources,
  userFiles: UserFiles,
  rows: readonly PseudoRow[],
  appenders: readonly AppendedToAudit[],
  guard: CandidateGuard<number>,
  codes: NewsCodes,
  newsSplits: NewsSplits,
  titles: (newsId: string) => string | undefined,
): Promise<Record<string, number>> {
  const owner = new Map<number, PseudoRow>(rows.map((r) => [codes.code(r.id), r]));
  // Pseudo-news IDs number on from the largest input ID: every other history ID is below the first.
  let firstPseudo = Infinity;
  for (const code of owner.keys()) firstPseudo = Math.min(firstPseudo, code);
  // Each item as written and as the stage validated it (the record's title, retrievedFrom), and
  // each news item appended to the user's history.
  const items = new Map<string, AuditItem[]>();
  for (const [userId, mine] of byUser(rows)) {
    items.set(
      userId,
      mine.flatMap((row) => {
        const from = row.item.retrievedFrom === undefined ? undefined : codes.code(row.item.retrievedFrom);
        return [...new Set([row.title, row.item.title])].map((title) => ({ row, ...guard.item(title, from) }));
      }),
    );
  }
  for (const { m, appends, users: appendedTo } of appenders) {
    for (const userId of appendedTo) {
      const list = items.get(userId) ?? [];
      for (const id of appends.ids(m.state, userId)) list.push({ appended: id, noun: appends.audit.noun, ...guard.news(codes.code(id)) });
      items.set(userId, list);
    }
  }
  // By UserSources index: the audit finds a row's user by number, not by a decoded ID.
  const guarded = new IndexedValues<GuardedGroup<number, AuditItem>>();
  for (const [userId, list] of items) {
    const u = users.indexOf(userId);
    if (u !== undefined) guarded.set(u, guard.group(list));
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
  const lines = userFiles.map(() => 0);
  const appendedChecked = appenders.map(() => 0);
  // The news IDs appended at the end of the history being checked, which the probe leaves out.
  const tail = new Set<number>();
  const inTail = (code: number): boolean => tail.has(code) || appendedOnly(code);
  const appended: PseudoRow[] = [];
  const appendedOnly = (code: number): boolean => {
    if (code < firstPseudo) return false;
    const row = owner.get(code);
    if (row) appended.push(row);
    return row !== undefined;
  };
  // The row whose candidates checkCandidate sees: one callback for the whole audit, not one per row.
  let row: { u: number; split: string; mine: GuardedGroup<number, AuditItem> } | undefined;
  const checkCandidate = (code: number): void => {
    const { u, split, mine } = row!;
    for (const { item, reason } of guard.conflicts(mine, code) ?? []) {
      const userId = users.idAt(u);
      const candidate = codes.id(code);
      const copy = `a near copy of ${candidate} ("${titles(candidate)}")`;
      if ("row" in item) {
        const how = reason === "retrieved" ? `was retrieved from ${candidate}` : `is ${copy}`;
        violation(`${item.row.id} ${candidate}`, `${userId}: pseudo-news ${item.row.id} ${how}, a candidate of ${userId}'s impressions in ${split}`);
      } else {
        const how = reason === "retrieved" ? "" : `, ${copy}`;
        violation(`${userId} ${item.appended} ${candidate}`, `${userId}: appended ${item.noun} ${item.appended}${how} is a candidate of ${userId}'s impressions in ${split}`);
      }
    }
  };
  for (const [splitIndex, split] of splits.entries()) {
    const dir = join(staging, split.name);
    // Per users file: users with a line in this split's file (1), then checked against their behaviors row (2).
    const listed = userFiles.map(() => new Uint8Array(users.size));
    for (const [f, { file }] of userFiles.entries()) {
      for await (const batch of readLineBatches(join(dir, file.file.name))) {
        for (const line of batch) {
          const userId = line.text.slice(0, line.text.indexOf("\t"));
          const u = users.indexOf(userId);
          if (u === undefined) violation(`${split.name} ${file.audit.noun} ${userId}`, `${userId} in ${split.name}: a ${file.audit.noun} row for a user not in the input`);
          else listed[f]![u] = 1;
        }
      }
    }
    const seen = new Uint8Array(users.size);
    const behaviors = join(dir, "behaviors.tsv");
    for await (const { buf, starts, ends, firstLineNo } of readByteLineChunks(behaviors)) {
      for (let i = 0; i < starts.length; i++) {
        const end = ends[i]!;
        const [t1, t2, t3, t4] = lineTabs(behaviors, firstLineNo + i, buf, starts[i]!, end);
        const u = users.indexAt(buf, t1 + 1, t2);
        if (u === undefined) {
          const userId = buf.toString("utf8", t1 + 1, t2);
          violation(`${split.name} row ${userId}`, `${userId} in ${split.name}: a behaviors row for a user not in the input`);
          continue;
        }
        if (!seen[u]) {
          seen[u] = 1;
          const userId = users.idAt(u);
          // The history without its pseudo-news and appended news is what the source clicks must be in.
          appended.length = 0;
          const tails = appendedTails(appenders, userId, splitIndex, () => buf.toString("utf8", t3 + 1, t4));
          tail.clear();
          for (const { ids } of tails) for (const id of ids) tail.add(codes.code(id));
          probe.load(buf, t3 + 1, t4, inTail);
          for (const { f, ids } of tails) {
            const { m, appends } = appenders[f]!;
            appendedChecked[f]! += ids.length;
            if (!heldBy(m, users, u, probe)) {
              violation(`${split.name} ${appends.audit.noun} ${userId}`, `${userId} in ${split.name}: appended ${appends.audit.many} ${ids.join(" ")} were written from clicks this split's history does not hold (${sourceText(m, userId)})`);
            }
          }
          for (const row of appended) {
            pseudoNews++;
            const where = `${userId} in ${split.name}: pseudo-news ${row.id}`;
            if (row.userId !== userId) violation(`${split.name} ${row.id} ${userId}`, `${where} was written for ${row.userId}`);
            else if (!heldBy(row.from, users, u, probe)) {
              violation(`${split.name} ${row.id}`, `${where} was written from clicks this split's history does not hold (${sourceText(row.from, userId)})`);
            } else if (row.item.retrievedFrom !== undefined) {
              // Retrieved news must be of the time of the clicks: the news.tsv of the record's source split.
              const sourceSplit = sourceSplitOf(row.from, users, u);
              const s = splits.findIndex((x) => x.name === sourceSplit);
              if (s < 0 || !newsSplits.has(row.item.retrievedFrom, s)) {
                violation(`${row.id} retrieved`, `${where} was retrieved from ${row.item.retrievedFrom}, which the news.tsv of its source split ${sourceSplit} does not hold`);
              }
            }
          }
          for (const [f, { m, file }] of userFiles.entries()) {
            if (listed[f]![u] !== 1) continue;
            listed[f]![u] = 2;
            lines[f]!++;
            if (!heldBy(m, users, u, probe)) {
              const noun = file.audit.noun;
              violation(`${split.name} ${noun} ${userId}`, `${userId} in ${split.name}: the ${noun} was written from clicks this split's history does not hold (${sourceText(m, userId)})`);
            }
          }
        }
        const mine = guarded.get(u);
        if (!mine) continue;
        row = { u, split: split.name, mine };
        forEachCode(codes, buf, t4 + 1, end, checkCandidate, true);
      }
    }
    for (const [f, { file }] of userFiles.entries()) {
      for (let u = 0; u < users.size; u++) {
        if (listed[f]![u] !== 1) continue;
        const userId = users.idAt(u);
        lines[f]!++;
        const noun = file.audit.noun;
        violation(`${split.name} ${noun} ${userId}`, `${userId} in ${split.name}: a ${noun} row for a user with no behaviors row in this split`);
      }
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
  return {
    pseudoNews,
    ...Object.fromEntries(appenders.map(({ appends }, f) => [appends.audit.key, appendedChecked[f]!])),
    ...Object.fromEntries(userFiles.map(({ file }, f) => [file.audit.key, lines[f]!])),
  };
}

/**
 * The news IDs each stage appended to this history, found from its end: what the stage's record
 * gives this split (the IDs its news.tsv holds), last stage first. A record whose IDs the history
 * does not end with was not applied here.
 */
function appendedTails(appenders: readonly AppendedToAudit[], userId: string, split: number, history: () => string): { f: number; ids: string[] }[] {
  const mine = appenders.flatMap((a, f) => (a.users.has(userId) ? [f] : []));
  if (mine.length === 0) return [];
  // Decoded only for a user a stage appended to: most histories are not.
  const ids = history().split(" ").filter(Boolean);
  let end = ids.length;
  const tails: { f: number; ids: string[] }[] = [];
  for (const f of mine.reverse()) {
    const { m, appends, newsSplits, retrieved } = appenders[f]!;
    const expected = appendedHere(appends, m, userId, split, newsSplits, retrieved);
    if (expected.length === 0 || expected.length > end || expected.some((id, i) => ids[end - expected.length + i] !== id)) continue;
    end -= expected.length;
    tails.push({ f, ids: expected });
  }
  return tails;
}

/** A users stage's record for user `u` (a UserSources index): found by the user's number, by their ID for another form. */
function keptFor(m: Merging, users: UserSources, u: number): Kept<unknown> | undefined {
  const n = users.numberAt(u);
  return n >= 0 ? m.records.byItem.byUserNumber(n) : m.records.byItem.get(users.idAt(u));
}

/** The split a users stage's record for user `u` was written from (the user has one: heldBy passed). */
function sourceSplitOf(m: Merging, users: UserSources, u: number): string {
  return m.records.sources.split(keptFor(m, users, u)!.source);
}

/** Rule 3: does the history loaded in `probe` hold every source click of a users stage's record for user `u`? */
function heldBy(m: Merging, users: UserSources, u: number, probe: HistoryProbe): boolean {
  const kept = keptFor(m, users, u);
  return kept !== undefined && m.records.sources.heldBy(kept.source, probe);
}

function sourceText(m: Merging, userId: string): string {
  const kept = m.records.byItem.get(userId);
  if (!kept) return "no record";
  const source = m.records.sources.source(kept.source);
  return `${source.split}: ${source.clicks.join(" ")}`;
}

function buildStages(
  merging: readonly Merging[],
  input: MergeInput,
  applied: readonly ReadonlySet<string>[],
  unknown: ReadonlyMap<Merging, number>,
): Record<string, ManifestStage> {
  const result: Record<string, ManifestStage> = {};
  for (const m of merging) {
    const { stage, records: r } = m;
    const kind = KIND_ITEMS[stage.kind];
    // A users stage's record is merged where the history rule lets it apply; any other, where its item is.
    const merged = KINDS[stage.kind].sourced ? (id: string) => applied[m.index]!.has(id) : (id: string) => r.byItem.has(id);
    let items = 0;
    let missing = 0;
    let failed = 0;
    for (const id of kind.ids(input)) {
      if (!stage.merge.covers(m.state, id, input)) continue;
      items++;
      if (merged(id)) continue;
      missing++;
      if (r.failedItems.has(id)) failed++;
    }
    let mergedCount = 0;
    let inapplicable = 0;
    const answeredBy = r.answerers.map((a) => ({ ...a, records: 0 }));
    for (const [id, rec] of r.byItem) {
      if (!kind.known(input, id)) continue;
      if (!merged(id)) {
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
    result[stage.name] = {
      answeredBy: answeredBy.filter((a) => a.records > 0).sort((a, b) => compareIds(`${a.provider} ${a.model}`, `${b.provider} ${b.model}`)),
      promptHashes: sortedHashes,
      metaFiles: r.metas.length,
      counts: { items, merged: mergedCount, inapplicable, missing, failed, invalidRecords: r.invalidLines, unknownRecords: unknown.get(m) ?? 0 },
      usage: r.usage,
      ...stageCost(r),
    };
  }
  return result;
}
