// writeReport: the entry point for `genre-mind report` and for augment/demo at the end of a run.
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { PathError } from "../cli/paths.js";
import { runPaths } from "../run/folder.js";
import { writeFileAtomic } from "../util/atomic.js";
import { collectReport, type CollectOptions } from "./collect.js";
import { renderReport } from "./html.js";

export type ReportOptions = CollectOptions;

export interface ReportResult {
  /** `<run dir>/report.html` */
  path: string;
  bytes: number;
  warnings: string[];
}

/** Writes `<runDir>/report.html` (atomically) from whatever the run folder holds. */
export async function writeReport(runDir: string, options: ReportOptions = {}): Promise<ReportResult> {
  const dir = resolve(runDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PathError(`${runDir}: no such run folder`);
  const model = await collectReport(dir, options);
  const empty = model.glance.every((g) => g.answered === 0 && g.openFailures === 0 && g.costUsd === undefined) && !model.manifest;
  if (empty) throw new PathError(`${runDir}: no stage records, stage meta or manifest.json to report on (is it the --out folder of a run?)`);
  const html = renderReport(model);
  const path = runPaths(dir).report;
  await writeFileAtomic(path, html);
  return { path, bytes: Buffer.byteLength(html), warnings: model.warnings };
}
