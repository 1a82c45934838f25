// Everything the report shows, gathered from a run folder: stage meta, records, failures, the
// merge manifest when there is one, and the input splits for the "before" side of each chart.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { addUsage, zeroUsage } from "../engine/cost.js";
import { jsonlLines } from "../engine/store.js";
import { FailureRecord, STAGE_NAMES, type StageName, type Usage } from "../engine/types.js";
import { loadCatalog, recentClicks, type Catalog } from "../mind/catalog.js";
import { cleanGeneratedText } from "../mind/text.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { Manifest } from "../merge/manifest.js";
import { LIST_SEPARATOR, loadRecords, type AllRecords } from "../merge/records.js";
import { runPaths } from "../run/folder.js";
import { wordTokenize } from "../trainer/tokenize.js";
import { sha256 } from "../util/hash.js";

export interface CollectOptions {
  /** Input splits (`--data`); default: the inputs named in manifest.json. */
  data?: string[];
  /** Run folders holding the records; default: those named in manifest.json, else the run folder. */
  records?: string[];
  /** Examples embedded per list (news, users, failures). */
  sample?: number;
}

export interface StageGlance {
  stage: StageName;
  /** `provider / model` with the number of records each answered. */
  answeredBy: { provider: string; model: string; records: number }[];
  /** Items the stage covers (manifest, else the stage meta of the last run), when known. */
  items?: number;
  answered: number;
  /** Items whose latest outcome is a failure record (no valid record since). */
  openFailures: number;
  failuresByReason: Record<string, number>;
  invalidLines: number;
  usage: Usage;
  /** Sum of the stage runs' reported cost; undefined when no meta file was found. */
  costUsd?: number;
  finishedAt?: string;
  /** From manifest.json: items that kept their original data. */
  missing?: number;
}

export interface NewsExample {
  id: string;
  category?: string;
  subcategory?: string;
  original?: string;
  enhanced: string;
  abstract?: string;
}

export interface UserExample {
  id: string;
  historyLength?: number;
  recent: { id: string; category?: string; title?: string }[];
  topics?: string[];
  regions?: string[];
  pseudo?: { id?: string; title: string; abstract: string; category: string }[];
}

export interface FailureExample {
  stage: StageName;
  itemId: string;
  reason: string;
  message: string;
  attempts: number;
  lastAnswer?: string;
}

export interface Distributions {
  /** Title length in tokens (as NRMS's MIND reader tokenizes), per news item with an enhanced title. */
  titleTokens?: { original?: number[]; enhanced: number[] };
  /** Enhanced titles that differ from the original, of those whose original is known (--data). */
  titlesChanged?: { changed: number; compared: number };
  /** Profiled users per topic / per state, and the number of profiled users. */
  topics?: { counts: Map<string, number>; users: number; perUser: number };
  regions?: { counts: Map<string, number>; users: number; perUser: number; withAny: number };
  /** Pseudo-news per category, and the categories of the same users' real clicks. */
  categories?: { pseudo: Map<string, number>; clicks?: Map<string, number> };
  /** History length of the users generate ran for, before and after their pseudo-news. */
  coldHistory?: { before: number[]; after: number[] };
}

export interface ReportModel {
  runDir: string;
  manifest?: Manifest;
  splits: SplitDir[];
  glance: StageGlance[];
  dist: Distributions;
  news: NewsExample[];
  newsTotal: number;
  users: UserExample[];
  usersTotal: number;
  failures: FailureExample[];
  failuresTotal: number;
  warnings: string[];
}

const RECENT = 10;
const MAX_TEXT = 600;

/** Title length in the tokens of NRMS's tokenizer (the one export writes word_dict.pkl with): what NRMS actually reads. */
export function titleTokens(title: string): number {
  return wordTokenize(title).length;
}

/** A fixed pseudo-random order (by hash of the ID), so the same run always shows the same examples. */
function sampleIds(ids: Iterable<string>, n: number): string[] {
  return [...ids]
    .map((id) => [sha256("report-sample", id), id] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, n)
    .map(([, id]) => id);
}

function clip(text: string | undefined, max = MAX_TEXT): string | undefined {
  if (text === undefined) return undefined;
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Merge keeps a profile as its two user_profiles.tsv columns; the report wants the lists back. */
function profileLists(value: string): { topics: string[]; regions: string[] } {
  const [topics = "", regions = ""] = value.split("\t");
  const list = (s: string) => (s ? s.split(LIST_SEPARATOR) : []);
  return { topics: list(topics), regions: list(regions) };
}

function readManifest(runDir: string, warnings: string[]): Manifest | undefined {
  const file = runPaths(runDir).manifest;
  if (!existsSync(file)) return undefined;
  try {
    const parsed = Manifest.safeParse(JSON.parse(readFileSync(file, "utf8")));
    if (parsed.success) return parsed.data;
    warnings.push(`${file}: not a manifest this version reads (${parsed.error.issues[0]?.message}); reporting the stages only`);
  } catch (e) {
    warnings.push(`${file}: ${(e as Error).message}; reporting the stages only`);
  }
  return undefined;
}

/** Latest failure per item, per stage, over the record folders in order. */
async function readFailures(dirs: readonly string[]): Promise<Record<StageName, Map<string, FailureRecord>>> {
  const out = { summarize: new Map(), profile: new Map(), generate: new Map() } as Record<StageName, Map<string, FailureRecord>>;
  for (const dir of dirs) {
    for (const stage of STAGE_NAMES) {
      const file = runPaths(dir).failures(stage);
      if (!existsSync(file)) continue;
      // A torn or bad line: nothing to show.
      for await (const { value } of jsonlLines(file, FailureRecord, () => {})) out[stage].set(value.itemId, value);
    }
  }
  return out;
}

function glanceOf(stage: StageName, records: AllRecords, failures: Map<string, FailureRecord>, manifest: Manifest | undefined): StageGlance {
  const r = records[stage];
  const counts = r.answerers.map((a) => ({ ...a, records: 0 }));
  for (const rec of r.byItem.values()) counts[rec.by]!.records++;
  const by = new Map(counts.filter((c) => c.records > 0).map((c) => [`${c.provider}\u0000${c.model}`, c]));
  // Every valid record line was billed, superseded ones included.
  const usage = addUsage(zeroUsage(), r.usage);
  const failuresByReason: Record<string, number> = {};
  let openFailures = 0;
  for (const f of failures.values()) {
    // Failed attempts were billed too, whether or not a later run answered the item.
    addUsage(usage, f.usage);
    if (r.byItem.has(f.itemId)) continue;
    openFailures++;
    failuresByReason[f.reason] = (failuresByReason[f.reason] ?? 0) + 1;
  }
  if (by.size === 0) {
    for (const { meta } of r.metas) by.set(`${meta.provider}\u0000${meta.model}`, { provider: meta.provider, model: meta.model, records: 0 });
  }
  const m = manifest?.stages[stage];
  const metaItems = r.metas.length > 0 ? r.metas.reduce((n, { meta }) => n + meta.counts.items, 0) : undefined;
  return {
    stage,
    answeredBy: [...by.values()].sort((a, b) => b.records - a.records),
    items: m?.counts.items ?? metaItems,
    answered: r.byItem.size,
    openFailures,
    failuresByReason,
    invalidLines: r.invalidLines,
    usage,
    costUsd: r.metas.length > 0 ? r.metas.reduce((s, { meta }) => s + meta.costUsd, 0) : undefined,
    finishedAt: r.metas.map(({ meta }) => meta.finishedAt).sort().at(-1),
    missing: m?.counts.missing,
  };
}

function distributions(records: AllRecords, catalog: Catalog | undefined, pseudoCount: (userId: string, generated: number) => number): Distributions {
  const dist: Distributions = {};
  const summarize = records.summarize.byItem;
  if (summarize.size > 0) {
    const enhanced: number[] = [];
    const original: number[] = [];
    let changed = 0;
    for (const [id, rec] of summarize) {
      enhanced.push(titleTokens(rec.value));
      const news = catalog?.news.get(id);
      if (!news) continue;
      original.push(titleTokens(news.title));
      // An answer that only re-spaces the title is the title: what merge would write is the same.
      if (rec.value !== cleanGeneratedText(news.title)) changed++;
    }
    dist.titleTokens = { enhanced, original: original.length > 0 ? original : undefined };
    if (original.length > 0) dist.titlesChanged = { changed, compared: original.length };
  }
  const profile = records.profile.byItem;
  if (profile.size > 0) {
    const topics = new Map<string, number>();
    const regions = new Map<string, number>();
    let topicSum = 0;
    let regionSum = 0;
    let withAny = 0;
    for (const rec of profile.values()) {
      const p = profileLists(rec.value);
      topicSum += p.topics.length;
      regionSum += p.regions.length;
      if (p.regions.length > 0) withAny++;
      for (const t of p.topics) topics.set(t, (topics.get(t) ?? 0) + 1);
      for (const s of p.regions) regions.set(s, (regions.get(s) ?? 0) + 1);
    }
    dist.topics = { counts: topics, users: profile.size, perUser: topicSum / profile.size };
    dist.regions = { counts: regions, users: profile.size, perUser: regionSum / profile.size, withAny };
  }
  const generate = records.generate.byItem;
  if (generate.size > 0) {
    const pseudo = new Map<string, number>();
    const clicks = new Map<string, number>();
    const before: number[] = [];
    const after: number[] = [];
    for (const [userId, rec] of generate) {
      for (const item of rec.value) pseudo.set(item.category, (pseudo.get(item.category) ?? 0) + 1);
      const user = catalog?.users.get(userId);
      if (!user) continue;
      for (const id of user.history) {
        const category = catalog?.news.get(id)?.category;
        if (category) clicks.set(category, (clicks.get(category) ?? 0) + 1);
      }
      before.push(user.history.length);
      after.push(user.history.length + pseudoCount(userId, rec.value.length));
    }
    dist.categories = { pseudo, clicks: clicks.size > 0 ? clicks : undefined };
    if (before.length > 0) dist.coldHistory = { before, after };
  }
  return dist;
}

async function resolveInputs(runDir: string, manifest: Manifest | undefined, opts: CollectOptions, warnings: string[]): Promise<SplitDir[]> {
  if (opts.data && opts.data.length > 0) return resolveSplits(opts.data);
  if (!manifest) return [];
  const dirs = manifest.splits.map((s) => resolve(runDir, s.input));
  const missing = dirs.filter((d) => !existsSync(d));
  if (missing.length > 0) {
    warnings.push(`input splits named in manifest.json are not here (${missing.join(", ")}): pass --data to show original titles and histories`);
    return [];
  }
  return resolveSplits(dirs);
}

export async function collectReport(runDir: string, opts: CollectOptions = {}): Promise<ReportModel> {
  const warnings: string[] = [];
  const sample = opts.sample ?? 300;
  const manifest = readManifest(runDir, warnings);
  const recordDirs = opts.records?.length ? opts.records : manifest ? manifest.records.map((r) => resolve(runDir, r)) : [runDir];
  const records = await loadRecords(recordDirs);
  const failures = await readFailures(recordDirs);
  const splits = await resolveInputs(runDir, manifest, opts, warnings);
  const catalog = splits.length > 0 ? await loadCatalog(splits, { lenient: true }) : undefined;

  // Pseudo-news IDs as merge assigned them, so examples show the rows a trainer will read.
  const pseudoIds = new Map<string, string[]>();
  for (const [newsId, userId] of Object.entries(manifest?.pseudoNews ?? {})) {
    const list = pseudoIds.get(userId) ?? [];
    list.push(newsId);
    pseudoIds.set(userId, list);
  }
  const pseudoCount = (userId: string, generated: number) => (manifest ? (pseudoIds.get(userId)?.length ?? 0) : generated);

  const glance = STAGE_NAMES.map((s) => glanceOf(s, records, failures[s], manifest));
  const dist = distributions(records, catalog, pseudoCount);

  const news: NewsExample[] = sampleIds(records.summarize.byItem.keys(), sample).map((id) => {
    const row = catalog?.news.get(id);
    return {
      id,
      category: row?.category,
      subcategory: row?.subcategory,
      original: row?.title,
      enhanced: records.summarize.byItem.get(id)!.value,
      abstract: clip(row?.abstract),
    };
  });

  // Half the user examples are users generate ran for (when there are any), so pseudo-news is always on show.
  const generated = records.generate.byItem;
  const profiled = records.profile.byItem;
  const coldPick = sampleIds(generated.keys(), Math.ceil(sample / 2));
  const picked = new Set(coldPick);
  const warmPick = sampleIds(
    [...profiled.keys()].filter((id) => !picked.has(id)),
    sample - coldPick.length,
  );
  // Alternate cold and warm users so every page shows both kinds.
  const userIds: string[] = [];
  for (let i = 0; userIds.length < coldPick.length + warmPick.length; i++) {
    if (i < coldPick.length) userIds.push(coldPick[i]!);
    if (i < warmPick.length) userIds.push(warmPick[i]!);
  }
  const users: UserExample[] = userIds.map((id) => {
    const history = catalog?.users.get(id)?.history;
    const profileValue = profiled.get(id)?.value;
    const profile = profileValue === undefined ? undefined : profileLists(profileValue);
    const gen = generated.get(id)?.value;
    const ids = pseudoIds.get(id) ?? [];
    return {
      id,
      historyLength: history?.length,
      recent: history
        ? recentClicks(history, RECENT).map((nid) => {
            const n = catalog?.news.get(nid);
            return { id: nid, category: n?.category, title: n?.title };
          })
        : [],
      topics: profile?.topics,
      regions: profile?.regions,
      pseudo: gen?.map((item, i) => ({ id: ids[i], title: item.title, abstract: clip(item.abstract) ?? "", category: item.category })),
    };
  });
  const usersTotal = new Set([...profiled.keys(), ...generated.keys()]).size;

  const open: FailureExample[] = [];
  for (const stage of STAGE_NAMES) {
    for (const f of failures[stage].values()) {
      if (records[stage].byItem.has(f.itemId)) continue;
      open.push({ stage, itemId: f.itemId, reason: f.reason, message: clip(f.message) ?? "", attempts: f.attempts, lastAnswer: clip(f.lastAnswer, 1500) });
    }
  }
  const byKey = new Map(open.map((f) => [`${f.stage}/${f.itemId}`, f]));
  const failureExamples = sampleIds(byKey.keys(), sample).map((k) => byKey.get(k)!);
  failureExamples.sort((a, b) => STAGE_NAMES.indexOf(a.stage) - STAGE_NAMES.indexOf(b.stage) || a.reason.localeCompare(b.reason));

  for (const stage of STAGE_NAMES) {
    if (records[stage].invalidLines > 0) {
      warnings.push(`${stage}: ${records[stage].invalidLines} record lines skipped as invalid (e.g. ${records[stage].invalidExamples[0]})`);
    }
  }
  return {
    runDir,
    manifest,
    splits,
    glance,
    dist,
    news,
    newsTotal: records.summarize.byItem.size,
    users,
    usersTotal,
    failures: failureExamples,
    failuresTotal: open.length,
    warnings,
  };
}
