// Answers that came from elsewhere (import once, import category-descriptions), judged by their
// stage's parser, written into the run folder as that stage's records and failures through the
// engine's store, with a meta file like a stage run's.
import { zeroUsage } from "../engine/cost.js";
import { engineJsonl, JsonlAppender } from "../engine/store.js";
import { FailureRecord, IMPORTED, StageRecord, type LlmRequest } from "../engine/types.js";
import { runPaths, StageMeta } from "../run/folder.js";
import type { PreparedStage } from "../stages/run.js";
import { splitSizes } from "../stages/run.js";
import { writeFileAtomic } from "../util/atomic.js";
import { sha256 } from "../util/hash.js";
import { plural } from "../util/text.js";

/** Where an answer was read: a file's name and the 1-based line. */
export interface ImportOrigin {
  file: string;
  line: number;
}

/** What became of one item: a record's output, or the error of its last answer. */
export interface ItemOutcome {
  stage: string;
  itemId: string;
  /** The stage's request for the item: its provenance, and what a live run would have asked. */
  request: LlmRequest;
  /** Where the answers that make the record (or the failure) were read, in order. */
  origins: ImportOrigin[];
  answers: string[];
  output?: unknown;
  /** A record of an answer kept in part: what it leaves out (StageRecord.leftOut). */
  leftOut?: Record<string, string[]>;
  error?: string;
}

/** One stage's judged answers, ready to be written. */
export interface ImportedStage {
  stage: string;
  /** The files the answers were read from (the meta's importedFrom). */
  files: { file: string }[];
  items: ItemOutcome[];
  /** The stage's catalog (the meta's splits). */
  prepared: PreparedStage;
  /** What the meta records of the options the answers were judged with. */
  options: Record<string, unknown>;
}

/**
 * What imported answers kept in part left out (StageRecord.leftOut, counted by kind), in the words of
 * the import summary and the report: `3 off-list topics, 1 note below a title`.
 */
export function describeLeftOut(leftOut: Readonly<Partial<Record<string, number>>>): string {
  const words: Record<string, (n: number) => string> = {
    topics: (n) => `off-list ${plural(n, "topic")}`,
    regions: (n) => `off-list ${plural(n, "region")}`,
    notes: (n) => `${plural(n, "note")} below a title`,
  };
  return Object.entries(leftOut)
    .map(([kind, n = 0]) => `${n.toLocaleString("en-US")} ${Object.hasOwn(words, kind) ? words[kind]!(n) : kind}`)
    .join(", ");
}

export interface WrittenStage {
  stage: string;
  items: number;
  /** Records and failures appended now. */
  records: number;
  failures: number;
  /** Records and failures the run folder already held from an earlier import of the same answers. */
  alreadyThere: number;
}

/**
 * The key of an imported record: no live request can have it (a live key is a hex digest), and the
 * same answers for the same item, written from the same history, always give the same key, so an
 * import run twice appends nothing.
 */
export function importedKey(outcome: ItemOutcome, model: string): string {
  const origins = outcome.origins.map((o) => `${o.file}:${o.line}`).join(" ");
  return `${IMPORTED}-${sha256(outcome.stage, outcome.itemId, model, JSON.stringify(outcome.request.source ?? null), origins, ...outcome.answers)}`;
}

/** Appends each stage's records and failures to the run folder through the engine's store, and writes its meta. */
export async function writeImport(judged: readonly ImportedStage[], out: string, model: string): Promise<WrittenStage[]> {
  const paths = runPaths(out);
  const written: WrittenStage[] = [];
  for (const { stage, items, prepared, files, options } of judged) {
    // By kind: an item that failed in an earlier import and makes a record now (the importer came to
    // keep part of its answer) has the same key, and its record is still to be written.
    const existingRecords = new Set<string>();
    const existingFailures = new Set<string>();
    for await (const r of engineJsonl(paths.records(stage), StageRecord)) existingRecords.add(r.key);
    for await (const r of engineJsonl(paths.failures(stage), FailureRecord)) existingFailures.add(r.key);
    const w: WrittenStage = { stage, items: items.length, records: 0, failures: 0, alreadyThere: 0 };
    const records = await JsonlAppender.open(paths.records(stage));
    const failures = await JsonlAppender.open(paths.failures(stage));
    try {
      for (const item of items) {
        const key = importedKey(item, model);
        if ((item.error === undefined ? existingRecords : existingFailures).has(key)) {
          w.alreadyThere++;
          continue;
        }
        const head = { key, stage, itemId: item.itemId, provider: IMPORTED, model, source: item.request.source, origin: item.origins };
        if (item.error === undefined) {
          await records.append(StageRecord.parse({ ...head, output: item.output, ...(item.leftOut ? { leftOut: item.leftOut } : {}), usage: zeroUsage(), attempts: 1 }));
          w.records++;
        } else {
          const lastAnswer = item.answers[item.answers.length - 1];
          await failures.append(FailureRecord.parse({ ...head, reason: "invalid", message: item.error, lastAnswer, usage: zeroUsage(), attempts: item.answers.length }));
          w.failures++;
        }
      }
    } finally {
      await records.close();
      await failures.close();
    }
    const failed = items.filter((i) => i.error !== undefined).length;
    const meta: StageMeta = {
      stage,
      provider: IMPORTED,
      model,
      promptHashes: {},
      options: { ...options, importedFrom: files.map((f) => f.file) },
      splits: await splitSizes(prepared.input.catalog),
      counts: { items: items.length, done: w.records + w.failures, cached: w.alreadyThere, retried: 0, failed, failedByReason: failed ? { invalid: failed } : {} },
      usage: zeroUsage(),
      runCostUsd: 0,
      finishedAt: new Date().toISOString(),
    };
    await writeFileAtomic(paths.stageMeta(stage), JSON.stringify(StageMeta.parse(meta), null, 2) + "\n");
    written.push(w);
  }
  return written;
}

