// Reads what the stages stored in one or more run folders and keeps only what merge may trust.
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { UserError } from "../cli/command.js";
import { PathError } from "../cli/paths.js";
import { addUsage, zeroUsage } from "../engine/cost.js";
import { jsonlLines, type BadLine } from "../engine/store.js";
import { StageRecord, type StageName, type Usage } from "../engine/types.js";
import { NewsCodes, SourceTable } from "../mind/history-rule.js";
import { cleanGeneratedText } from "../mind/text.js";
import { runPaths, StageMeta } from "../run/folder.js";
import { STAGE_OUTPUTS, type PseudoNews } from "../stages/outputs.js";

/** Joins topics and regions in user_profiles.tsv: topics and state names contain spaces, never `|`. */
export const LIST_SEPARATOR = "|";

/**
 * A record's output after validation and TSV cleaning, in the form merge writes it. Compact on
 * purpose: a MIND-large run holds ~700k profiles and ~100k titles in memory.
 */
export interface MergeValues {
  /** The enhanced title. */
  summarize: string;
  /** `topics<TAB>regions`, each list joined with LIST_SEPARATOR: the user_profiles.tsv columns. */
  profile: string;
  generate: PseudoNews[];
}

export interface Kept<S extends StageName> {
  value: MergeValues[S];
  /** Index into StageRecords.answerers. */
  by: number;
  /** profile and generate: the record's provenance, an index into StageRecords.sources; -1 for summarize. */
  source: number;
}

export interface StageRecords<S extends StageName> {
  stage: S;
  /** Last valid record per item ID, over the folders in the order given. */
  byItem: Map<string, Kept<S>>;
  /** Distinct provider + model pairs of the records. */
  answerers: { provider: string; model: string }[];
  /** Tokens of every valid record line read: a superseded answer was billed too. */
  usage: Usage;
  /** Lines that were valid records (before last-one-wins). */
  validLines: number;
  /** Lines skipped: not JSON, not a StageRecord of this stage, or an output its schema rejects. */
  invalidLines: number;
  invalidExamples: string[];
  /** The provenance of the records (profile, generate), packed. */
  sources: SourceTable;
  /** Items with a failure record (whether or not a later run answered them). */
  failedItems: Set<string>;
  metas: { file: string; meta: StageMeta }[];
}

export type AllRecords = { [S in StageName]: StageRecords<S> };

const EXAMPLES = 3;

/** All merge needs of a failure line. */
const FailedItem = z.object({ itemId: z.string() });

function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)];
}

// Profiles and categories repeat across users: one shared string per distinct value keeps a
// MIND-large run (~700k profiles) small.
function intern(pool: Map<string, string>, value: string): string {
  const known = pool.get(value);
  if (known !== undefined) return known;
  pool.set(value, value);
  return value;
}

/**
 * The stage schemas already reject empty or out-of-vocabulary values; cleaning again here means a
 * record written by an older or foreign tool still cannot break a TSV line.
 */
function normalize<S extends StageName>(stage: S, output: unknown, pool: Map<string, string>): { ok: true; value: MergeValues[S] } | { ok: false; error: string } {
  const parsed = STAGE_OUTPUTS[stage].safeParse(output);
  if (!parsed.success) return { ok: false, error: parsed.error.issues[0]?.message ?? "invalid output" };
  if (stage === "summarize") {
    const title = cleanGeneratedText((parsed.data as { title: string }).title);
    if (!title) return { ok: false, error: "empty title after cleaning" };
    return { ok: true, value: title as MergeValues[S] };
  }
  if (stage === "profile") {
    const p = parsed.data as { topics: string[]; regions: string[] };
    const columns = `${dedupe(p.topics).join(LIST_SEPARATOR)}\t${dedupe(p.regions).join(LIST_SEPARATOR)}`;
    return { ok: true, value: intern(pool, columns) as MergeValues[S] };
  }
  const items: PseudoNews[] = [];
  for (const item of (parsed.data as { items: PseudoNews[] }).items) {
    const title = cleanGeneratedText(item.title);
    if (!title) return { ok: false, error: "a pseudo-news title is empty after cleaning" };
    const kept: PseudoNews = { title, abstract: cleanGeneratedText(item.abstract) ?? "", category: intern(pool, item.category) };
    if (item.retrievedFrom !== undefined) kept.retrievedFrom = item.retrievedFrom;
    items.push(kept);
  }
  return { ok: true, value: items as MergeValues[S] };
}

async function readStage<S extends StageName>(stage: S, dirs: readonly string[], codes: NewsCodes): Promise<StageRecords<S>> {
  const out: StageRecords<S> = {
    stage,
    byItem: new Map(),
    answerers: [],
    usage: zeroUsage(),
    validLines: 0,
    invalidLines: 0,
    invalidExamples: [],
    sources: new SourceTable(codes),
    failedItems: new Set(),
    metas: [],
  };
  const pool = new Map<string, string>();
  const invalid = (where: string, why: string) => {
    out.invalidLines++;
    if (out.invalidExamples.length < EXAMPLES) out.invalidExamples.push(`${where}: ${why}`);
  };
  for (const dir of dirs) {
    const paths = runPaths(dir);
    const file = paths.records(stage);
    if (existsSync(file)) {
      // A torn last line of an interrupted append is skipped and counted like any invalid record.
      const skip = (bad: BadLine) => invalid(`${file}:${bad.lineNo}`, `${bad.field ? `${bad.field}: ` : ""}${bad.message}`);
      for await (const { value: rec, lineNo } of jsonlLines(file, StageRecord, skip)) {
        const where = `${file}:${lineNo}`;
        if (rec.stage !== stage) {
          invalid(where, `a '${rec.stage}' record in the ${stage} file`);
          continue;
        }
        const value = normalize(stage, rec.output, pool);
        if (!value.ok) {
          invalid(where, `output rejected: ${value.error}`);
          continue;
        }
        if (stage !== "summarize" && !rec.source) {
          invalid(where, `no source (the history it was written from; records made before genre-mind kept it): run '${stage}' again`);
          continue;
        }
        out.validLines++;
        addUsage(out.usage, rec.usage);
        let by = out.answerers.findIndex((a) => a.provider === rec.provider && a.model === rec.model);
        if (by < 0) by = out.answerers.push({ provider: rec.provider, model: rec.model }) - 1;
        out.byItem.set(rec.itemId, { value: value.value, by, source: rec.source ? out.sources.add(rec.source) : -1 });
      }
    }
    const failures = paths.failures(stage);
    if (existsSync(failures)) {
      // A bad line in the failure log only affects a count.
      for await (const { value } of jsonlLines(failures, FailedItem, () => {})) out.failedItems.add(value.itemId);
    }
    const metaFile = paths.stageMeta(stage);
    if (existsSync(metaFile)) {
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(metaFile, "utf8"));
      } catch (e) {
        throw new UserError(`${metaFile}: not valid JSON (${(e as Error).message})`);
      }
      const meta = StageMeta.safeParse(json);
      if (!meta.success) {
        const issue = meta.error.issues[0];
        throw new UserError(`${metaFile}: not a stage meta file (${issue?.path.join(".")}: ${issue?.message})`);
      }
      out.metas.push({ file: metaFile, meta: meta.data });
    }
  }
  return out;
}

export async function loadRecords(dirs: readonly string[]): Promise<AllRecords> {
  for (const dir of dirs) {
    if (!existsSync(dir)) throw new PathError(`--records ${dir}: no such folder`);
  }
  // One stage after the other: reading them side by side only keeps more unfinished batches alive.
  const codes = new NewsCodes();
  const summarize = await readStage("summarize", dirs, codes);
  const profile = await readStage("profile", dirs, codes);
  const generate = await readStage("generate", dirs, codes);
  return { summarize, profile, generate };
}
