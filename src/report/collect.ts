// Everything the report shows, gathered from a run folder: stage meta, records, failures, the
// merge manifest when there is one, and the input splits for the "before" side of each chart.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { jsonlLines } from "../engine/store.js";
import { countLeftOut, FailureRecord, type Usage } from "../engine/types.js";
import { loadCatalog, recentClicks, type Catalog } from "../mind/catalog.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { Manifest, stageCost } from "../merge/manifest.js";
import { loadRecords, type AllRecords, type StageRecords } from "../merge/records.js";
import { runPaths } from "../run/folder.js";
import { parseCategoryItemId, type ItemKind } from "../stages/kinds.js";
import { stages } from "../stages/registry.js";
import { sha256 } from "../util/hash.js";
import { clip } from "./figures.js";
import type { CategoryExample, Distributions, ExampleFields, NewsExample, ReportContext, UserExample } from "./stage-report.js";

export type { CategoryExample, Distributions, NewsExample, UserExample } from "./stage-report.js";

export interface CollectOptions {
  /** Input splits (`--data`); default: the inputs named in manifest.json. */
  data?: string[];
  /** Run folders holding the records; default: those named in manifest.json, else the run folder. */
  records?: string[];
  /** Examples embedded per list (news, users, failures). */
  sample?: number;
}

export interface StageGlance {
  stage: string;
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
  /**
   * What every record and failure line in the folders was billed, priced per answerer and rounded
   * as the manifest's costUsd is (stageCost); null when a billed model has no price (`unpriced`
   * names it); undefined when the stage has no line and no meta file (it did not run).
   */
  costUsd?: number | null;
  /** `provider / model` of billed lines with no price. */
  unpriced: string[];
  finishedAt?: string;
  /** From manifest.json: items that kept their original data. */
  missing?: number;
  /** Answered items whose record is an imported answer kept in part, and what those records leave out by kind. */
  inPart: { items: number; leftOut: Record<string, number> };
}

export interface FailureExample {
  stage: string;
  itemId: string;
  reason: string;
  message: string;
  attempts: number;
  lastAnswer?: string;
}

/** The example of an item of each kind. */
export interface ExampleOf {
  news: NewsExample;
  users: UserExample;
  categories: CategoryExample;
}

/** Per item kind, its sampled examples (`news`) and how many items the run has (`newsTotal`). */
export type KindExamples = { [K in ItemKind]: ExampleOf[K][] } & { [K in ItemKind as `${K}Total`]: number };

export type ReportModel = KindExamples & {
  runDir: string;
  manifest?: Manifest;
  splits: SplitDir[];
  glance: StageGlance[];
  dist: Distributions;
  failures: FailureExample[];
  failuresTotal: number;
  warnings: string[];
};

const RECENT = 10;

/** A fixed pseudo-random order (by hash of the ID), so the same run always shows the same examples. */
function sampleIds(ids: Iterable<string>, n: number): string[] {
  return [...ids]
    .map((id) => [sha256("report-sample", id), id] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, n)
    .map(([, id]) => id);
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
async function readFailures(dirs: readonly string[]): Promise<Map<string, Map<string, FailureRecord>>> {
  const out = new Map(stages().map((s) => [s.name, new Map<string, FailureRecord>()]));
  for (const dir of dirs) {
    for (const [stage, latest] of out) {
      const file = runPaths(dir).failures(stage);
      if (!existsSync(file)) continue;
      // A torn or bad line: nothing to show.
      for await (const { value } of jsonlLines(file, FailureRecord, () => {})) latest.set(value.itemId, value);
    }
  }
  return out;
}

function glanceOf(r: StageRecords, failures: ReadonlyMap<string, FailureRecord>, manifest: Manifest | undefined): StageGlance {
  const counts = r.answerers.map((a) => ({ ...a, records: 0 }));
  for (const rec of r.byItem.values()) counts[rec.by]!.records++;
  const by = new Map(counts.filter((c) => c.records > 0).map((c) => [`${c.provider}\u0000${c.model}`, c]));
  // StageRecords.usage: every valid record line (superseded ones included) and every failure line's attempts.
  const usage = r.usage;
  const failuresByReason: Record<string, number> = {};
  let openFailures = 0;
  for (const f of failures.values()) {
    if (r.byItem.has(f.itemId)) continue;
    openFailures++;
    failuresByReason[f.reason] = (failuresByReason[f.reason] ?? 0) + 1;
  }
  if (by.size === 0) {
    for (const { meta } of r.metas) by.set(`${meta.provider}\u0000${meta.model}`, { provider: meta.provider, model: meta.model, records: 0 });
  }
  const inPart = { items: r.inPart.size, leftOut: {} as Record<string, number> };
  for (const counts of r.inPart.values()) countLeftOut(inPart.leftOut, counts);
  const m = manifest?.stages[r.stage.name];
  const metaItems = r.metas.length > 0 ? r.metas.reduce((n, { meta }) => n + meta.counts.items, 0) : undefined;
  // manifest.json's definition, rounding included: the page and the file state the same dollars.
  const cost = r.validLines + r.failureLines + r.metas.length > 0 ? stageCost(r) : undefined;
  return {
    stage: r.stage.name,
    answeredBy: [...by.values()].sort((a, b) => b.records - a.records),
    items: m?.counts.items ?? metaItems,
    answered: r.byItem.size,
    openFailures,
    failuresByReason,
    invalidLines: r.invalidLines,
    usage,
    costUsd: cost?.costUsd,
    unpriced: cost?.unpriced ?? [],
    finishedAt: r.metas.map(({ meta }) => meta.finishedAt).sort().at(-1),
    missing: m?.counts.missing,
    inPart,
  };
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

/** How the examples of a kind are built around the fields its stages add (key order is the page's). */
const KIND_EXAMPLES: { [K in ItemKind]: (id: string, fields: ExampleFields, catalog: Catalog | undefined) => ExampleOf[K] } = {
  news(id, fields, catalog) {
    const row = catalog?.news.get(id);
    return { id, category: row?.category, subcategory: row?.subcategory, original: row?.title, ...fields, abstract: clip(row?.abstract) };
  },
  users(id, fields, catalog) {
    const history = catalog?.users.get(id)?.history;
    const recent = history
      ? recentClicks(history, RECENT).map((nid) => {
          const n = catalog?.news.get(nid);
          return { id: nid, category: n?.category, title: n?.title };
        })
      : [];
    return { id, historyLength: history?.length, recent, ...fields };
  },
  categories(id, fields) {
    const parsed = parseCategoryItemId(id);
    return { id, kind: parsed?.kind, name: parsed?.name, ...fields };
  },
};

/**
 * The examples of one kind: a fixed sample of the items its stages answered, each with every
 * stage's fields. Half of them come from the `lead` stages' items (cold users with pseudo-news),
 * the rest from the others', shown alternately so every page has both.
 */
function examplesOf<K extends ItemKind>(
  kind: K,
  contexts: readonly { report: ReportContext<unknown>; stage: StageRecords["stage"] }[],
  catalog: Catalog | undefined,
  sample: number,
): { list: ExampleOf[K][]; total: number } {
  const mine = contexts.filter((c) => c.stage.kind === kind && c.stage.report.examples);
  const itemsOf = (lead: boolean) => new Set(mine.filter((c) => (c.stage.report.examples?.lead ?? false) === lead).flatMap((c) => [...c.report.records.byItem.keys()]));
  const leadPick = sampleIds(itemsOf(true), Math.ceil(sample / 2));
  const picked = new Set(leadPick);
  const restPick = sampleIds([...itemsOf(false)].filter((id) => !picked.has(id)), sample - leadPick.length);
  const ids: string[] = [];
  for (let i = 0; ids.length < leadPick.length + restPick.length; i++) {
    if (i < leadPick.length) ids.push(leadPick[i]!);
    if (i < restPick.length) ids.push(restPick[i]!);
  }
  const list = ids.map((id) => {
    const fields: ExampleFields = {};
    for (const c of mine) {
      const kept = c.report.records.byItem.get(id);
      if (kept) Object.assign(fields, c.stage.report.examples?.fields(c.report, id, kept.value));
    }
    return KIND_EXAMPLES[kind](id, fields, catalog);
  });
  return { list, total: new Set([...itemsOf(true), ...itemsOf(false)]).size };
}

export async function collectReport(runDir: string, opts: CollectOptions = {}): Promise<ReportModel> {
  const warnings: string[] = [];
  const sample = opts.sample ?? 300;
  const manifest = readManifest(runDir, warnings);
  const recordDirs = opts.records?.length ? opts.records : manifest ? manifest.records.map((r) => resolve(runDir, r)) : [runDir];
  const records: AllRecords = await loadRecords(recordDirs);
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
  const contexts = [...records.values()].map((r) => ({
    stage: r.stage,
    report: {
      records: r,
      catalog,
      manifest,
      pseudoIds: (userId: string) => pseudoIds.get(userId) ?? [],
      pseudoCount: (userId: string, generated: number) => (manifest ? (pseudoIds.get(userId)?.length ?? 0) : generated),
    },
  }));

  const glance = [...records.values()].map((r) => glanceOf(r, failures.get(r.stage.name)!, manifest));
  const dist: Distributions = {};
  for (const c of contexts) c.stage.report.chartData?.(c.report, dist);
  const news = examplesOf("news", contexts, catalog, sample);
  const users = examplesOf("users", contexts, catalog, sample);
  const categories = examplesOf("categories", contexts, catalog, sample);

  const open: FailureExample[] = [];
  for (const [stage, latest] of failures) {
    const answered = records.get(stage)!.byItem;
    for (const f of latest.values()) {
      if (answered.has(f.itemId)) continue;
      open.push({ stage, itemId: f.itemId, reason: f.reason, message: clip(f.message) ?? "", attempts: f.attempts, lastAnswer: clip(f.lastAnswer, 1500) });
    }
  }
  const order = [...failures.keys()];
  const byKey = new Map(open.map((f) => [`${f.stage}/${f.itemId}`, f]));
  const failureExamples = sampleIds(byKey.keys(), sample).map((k) => byKey.get(k)!);
  failureExamples.sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage) || a.reason.localeCompare(b.reason));

  for (const r of records.values()) {
    if (r.invalidLines > 0) warnings.push(`${r.stage.name}: ${r.invalidLines} record lines skipped as invalid (e.g. ${r.invalidExamples[0]})`);
  }
  return {
    runDir,
    manifest,
    splits,
    glance,
    dist,
    news: news.list,
    newsTotal: news.total,
    users: users.list,
    usersTotal: users.total,
    categories: categories.list,
    categoriesTotal: categories.total,
    failures: failureExamples,
    failuresTotal: open.length,
    warnings,
  };
}
