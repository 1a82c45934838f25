// Reads what the stages stored in one or more run folders and keeps only what merge may trust.
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "../cli/command.js";
import { StageRecord, STAGE_NAMES, type StageName, type Usage } from "../engine/types.js";
import { readLines } from "../mind/read.js";
import { cleanGeneratedText } from "../mind/text.js";
import { runPaths } from "../run/folder.js";
import { StageMeta } from "../run/folder.js";
import { STAGE_OUTPUTS, type PseudoNews } from "../stages/outputs.js";

/** A record's output after validation and TSV cleaning: what merge writes. */
export interface MergeValues {
  summarize: { title: string };
  profile: { topics: string[]; regions: string[] };
  generate: { items: PseudoNews[] };
}

export interface KeptRecord<S extends StageName> {
  itemId: string;
  provider: string;
  model: string;
  usage: Usage;
  value: MergeValues[S];
}

export interface StageRecords<S extends StageName> {
  stage: S;
  /** Last valid record per item ID, over the folders in the order given. */
  byItem: Map<string, KeptRecord<S>>;
  /** Lines that were valid records (before last-one-wins). */
  validLines: number;
  /** Lines skipped: not JSON, not a StageRecord of this stage, or an output its schema rejects. */
  invalidLines: number;
  invalidExamples: string[];
  /** Items with a failure record (whether or not a later run answered them). */
  failedItems: Set<string>;
  metas: { file: string; meta: StageMeta }[];
}

export type AllRecords = { [S in StageName]: StageRecords<S> };

const EXAMPLES = 3;

function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * The stage schemas already reject empty or out-of-vocabulary values; cleaning again here means a
 * record written by an older or foreign tool still cannot break a TSV line.
 */
function normalize<S extends StageName>(stage: S, output: unknown): { ok: true; value: MergeValues[S] } | { ok: false; error: string } {
  const parsed = STAGE_OUTPUTS[stage].safeParse(output);
  if (!parsed.success) return { ok: false, error: parsed.error.issues[0]?.message ?? "invalid output" };
  if (stage === "summarize") {
    const title = cleanGeneratedText((parsed.data as { title: string }).title);
    if (!title) return { ok: false, error: "empty title after cleaning" };
    return { ok: true, value: { title } as MergeValues[S] };
  }
  if (stage === "profile") {
    const p = parsed.data as { topics: string[]; regions: string[] };
    return { ok: true, value: { topics: dedupe(p.topics), regions: dedupe(p.regions) } as MergeValues[S] };
  }
  const items: PseudoNews[] = [];
  for (const item of (parsed.data as { items: PseudoNews[] }).items) {
    const title = cleanGeneratedText(item.title);
    if (!title) return { ok: false, error: "a pseudo-news title is empty after cleaning" };
    items.push({ title, abstract: cleanGeneratedText(item.abstract) ?? "", category: item.category });
  }
  return { ok: true, value: { items } as MergeValues[S] };
}

async function readStage<S extends StageName>(stage: S, dirs: readonly string[]): Promise<StageRecords<S>> {
  const out: StageRecords<S> = {
    stage,
    byItem: new Map(),
    validLines: 0,
    invalidLines: 0,
    invalidExamples: [],
    failedItems: new Set(),
    metas: [],
  };
  const invalid = (where: string, why: string) => {
    out.invalidLines++;
    if (out.invalidExamples.length < EXAMPLES) out.invalidExamples.push(`${where}: ${why}`);
  };
  for (const dir of dirs) {
    const paths = runPaths(dir);
    const file = paths.records(stage);
    if (existsSync(file)) {
      for await (const line of readLines(file)) {
        if (line.text.trim().length === 0) continue;
        const where = `${file}:${line.lineNo}`;
        let json: unknown;
        try {
          json = JSON.parse(line.text);
        } catch {
          // An interrupted append leaves a torn last line; it is skipped like any invalid record.
          invalid(where, "not JSON");
          continue;
        }
        const rec = StageRecord.safeParse(json);
        if (!rec.success) {
          invalid(where, `not a stage record (${rec.error.issues[0]?.path.join(".")}: ${rec.error.issues[0]?.message})`);
          continue;
        }
        if (rec.data.stage !== stage) {
          invalid(where, `a '${rec.data.stage}' record in the ${stage} file`);
          continue;
        }
        const value = normalize(stage, rec.data.output);
        if (!value.ok) {
          invalid(where, `output rejected: ${value.error}`);
          continue;
        }
        out.validLines++;
        // Re-inserting moves the item to the end of the map; order is irrelevant since every use sorts.
        out.byItem.set(rec.data.itemId, {
          itemId: rec.data.itemId,
          provider: rec.data.provider,
          model: rec.data.model,
          usage: rec.data.usage,
          value: value.value,
        });
      }
    }
    const failures = paths.failures(stage);
    if (existsSync(failures)) {
      for await (const line of readLines(failures)) {
        try {
          const itemId = (JSON.parse(line.text) as { itemId?: unknown }).itemId;
          if (typeof itemId === "string") out.failedItems.add(itemId);
        } catch {
          // A torn line in the failure log only affects a count.
        }
      }
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
    if (!existsSync(dir)) throw new UserError(`--records ${dir}: no such folder`);
  }
  const [summarize, profile, generate] = await Promise.all(STAGE_NAMES.map((s) => readStage(s, dirs)));
  return { summarize, profile, generate } as AllRecords;
}
