// Reads what the stages stored in one or more run folders and keeps only what merge may trust.
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { UserError } from "../cli/command.js";
import { PathError } from "../cli/paths.js";
import { addUsage, zeroUsage } from "../engine/cost.js";
import { jsonlLines, type BadLine } from "../engine/store.js";
import { StageRecord, type Usage } from "../engine/types.js";
import { NewsCodes, SourceTable } from "../mind/history-rule.js";
import { runPaths, StageMeta } from "../run/folder.js";
import { KINDS } from "../stages/kinds.js";
import { stages } from "../stages/registry.js";
import type { Stage } from "../stages/stage.js";

export interface Kept<V> {
  /** The record's output as the stage's merge part keeps it (StageMerge.value). */
  value: V;
  /** Index into StageRecords.answerers. */
  by: number;
  /** Users stages: the record's provenance, an index into StageRecords.sources; -1 for the others. */
  source: number;
}

export interface StageRecords<V = unknown> {
  stage: Stage;
  /** Last valid record per item ID, over the folders in the order given. */
  byItem: Map<string, Kept<V>>;
  /** Distinct provider + model pairs of the records. */
  answerers: { provider: string; model: string }[];
  /** Tokens of every valid record line read: a superseded answer was billed too. */
  usage: Usage;
  /** Lines that were valid records (before last-one-wins). */
  validLines: number;
  /** Lines skipped: not JSON, not a StageRecord of this stage, or an output its schema rejects. */
  invalidLines: number;
  invalidExamples: string[];
  /** The provenance of the records (users stages), packed. */
  sources: SourceTable;
  /** Items with a failure record (whether or not a later run answered them). */
  failedItems: Set<string>;
  metas: { file: string; meta: StageMeta }[];
}

/** Every registered stage's records, by stage name, in registry order. */
export type AllRecords = Map<string, StageRecords>;

const EXAMPLES = 3;

/** All merge needs of a failure line. */
const FailedItem = z.object({ itemId: z.string() });

async function readStage(stage: Stage, dirs: readonly string[], codes: NewsCodes): Promise<StageRecords> {
  const out: StageRecords = {
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
  // Profiles and categories repeat across users: one shared string per distinct value keeps a
  // MIND-large run (~700k profiles) small.
  const pool = new Map<string, string>();
  const intern = (value: string): string => {
    const known = pool.get(value);
    if (known !== undefined) return known;
    pool.set(value, value);
    return value;
  };
  const sourced = KINDS[stage.kind].sourced;
  const invalid = (where: string, why: string) => {
    out.invalidLines++;
    if (out.invalidExamples.length < EXAMPLES) out.invalidExamples.push(`${where}: ${why}`);
  };
  for (const dir of dirs) {
    const paths = runPaths(dir);
    const file = paths.records(stage.name);
    if (existsSync(file)) {
      // A torn last line of an interrupted append is skipped and counted like any invalid record.
      const skip = (bad: BadLine) => invalid(`${file}:${bad.lineNo}`, `${bad.field ? `${bad.field}: ` : ""}${bad.message}`);
      for await (const { value: rec, lineNo } of jsonlLines(file, StageRecord, skip)) {
        const where = `${file}:${lineNo}`;
        if (rec.stage !== stage.name) {
          invalid(where, `a '${rec.stage}' record in the ${stage.name} file`);
          continue;
        }
        // The stage's schema already rejected empty or out-of-vocabulary values; its merge part cleans
        // again, so a record written by an older or foreign tool still cannot break a TSV line.
        const output = stage.output.safeParse(rec.output);
        const value = output.success ? stage.merge.value(output.data, intern) : { ok: false as const, error: output.error.issues[0]?.message ?? "invalid output" };
        if (!value.ok) {
          invalid(where, `output rejected: ${value.error}`);
          continue;
        }
        if (sourced && !rec.source) {
          invalid(where, `no source (the history it was written from; records made before genre-mind kept it): run '${stage.name}' again`);
          continue;
        }
        out.validLines++;
        addUsage(out.usage, rec.usage);
        let by = out.answerers.findIndex((a) => a.provider === rec.provider && a.model === rec.model);
        if (by < 0) by = out.answerers.push({ provider: rec.provider, model: rec.model }) - 1;
        out.byItem.set(rec.itemId, { value: value.value, by, source: rec.source ? out.sources.add(rec.source) : -1 });
      }
    }
    const failures = paths.failures(stage.name);
    if (existsSync(failures)) {
      // A bad line in the failure log only affects a count.
      for await (const { value } of jsonlLines(failures, FailedItem, () => {})) out.failedItems.add(value.itemId);
    }
    const metaFile = paths.stageMeta(stage.name);
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

/** `codes`: shared with the caller, which probes histories against the records' sources. */
export async function loadRecords(dirs: readonly string[], codes = new NewsCodes()): Promise<AllRecords> {
  for (const dir of dirs) {
    if (!existsSync(dir)) throw new PathError(`--records ${dir}: no such folder`);
  }
  // One stage after the other: reading them side by side only keeps more unfinished batches alive.
  const all: AllRecords = new Map();
  for (const stage of stages()) all.set(stage.name, await readStage(stage, dirs, codes));
  return all;
}
