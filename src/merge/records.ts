// Reads what the stages stored in one or more run folders and keeps only what merge may trust.
import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { UserError } from "../cli/command.js";
import { PathError } from "../cli/paths.js";
import { addUsage, zeroUsage } from "../engine/cost.js";
import { jsonlLines, type BadLine } from "../engine/store.js";
import { Spend } from "../engine/spend.js";
import { countLeftOut, FailureRecord, RecordSource, StageRecord, type Usage } from "../engine/types.js";
import { newsIdNumber, NewsCodes, SourceTable, type CodedSource } from "../mind/history-rule.js";
import { IndexedValues, userIdNumber } from "../mind/user-ids.js";
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

/**
 * Kept records by item ID, and by user number for `U<digits>` IDs: merge looks up each of ~1M
 * MIND-large users by the bytes of their ID, where finding a string key among 700k costs a hash and
 * a few cache misses.
 */
export class KeptByItem<V = unknown> extends Map<string, Kept<V>> {
  private readonly numbered = new IndexedValues<Kept<V>>();

  override set(id: string, kept: Kept<V>): this {
    const n = userIdNumber(id);
    if (n >= 0) this.numbered.set(n, kept);
    return super.set(id, kept);
  }

  override delete(id: string): boolean {
    throw new Error(`records are kept, not deleted (${id})`);
  }

  override clear(): void {
    throw new Error("records are kept, not cleared");
  }

  /** get() of the ID `U<n>`. */
  byUserNumber(n: number): Kept<V> | undefined {
    return this.numbered.get(n);
  }
}

export interface StageRecords<V = unknown> {
  stage: Stage;
  /** Last valid record per item ID, over the folders in the order given. */
  byItem: KeptByItem<V>;
  /** Distinct provider + model pairs of the records. */
  answerers: { provider: string; model: string }[];
  /** Tokens of every valid record line and failure line read: a superseded answer and the attempts of an item given up on were billed too. */
  usage: Usage;
  /** Failure lines read (a bad one only affects the counts). */
  failureLines: number;
  /**
   * What the valid record lines and the failure lines were billed, priced per answerer: the stage's
   * cost over every run into the folders (a meta file has only its last run's).
   */
  spend: Spend;
  /** Lines that were valid records (before last-one-wins). */
  validLines: number;
  /** Lines skipped: not JSON, not a StageRecord of this stage, or an output its schema rejects. */
  invalidLines: number;
  invalidExamples: string[];
  /** The provenance of the records (users stages), packed. */
  sources: SourceTable;
  /** Items with a failure record (whether or not a later run answered them). */
  failedItems: Set<string>;
  /** Items whose kept record is an imported answer kept in part: what it leaves out, counted by kind. */
  inPart: Map<string, Record<string, number>>;
  metas: { file: string; meta: StageMeta }[];
}

/** Every registered stage's records, by stage name, in registry order. */
export type AllRecords = Map<string, StageRecords>;

const EXAMPLES = 3;

/** A record's source as recordParser reads it: the clicks already NewsCodes. */
class ReadSource implements CodedSource {
  constructor(
    readonly split: string,
    readonly codes: number[],
  ) {}
}

/** StageRecord as merge reads it: the source may come coded (recordParser). */
const ReadRecord = StageRecord.extend({ source: z.union([z.instanceof(ReadSource), RecordSource]).optional() });

const SOURCE_MEMBER = '"source":{"split":"';
const CLICKS_AT = '","clicks":[';
const QUOTE = 34;
const COMMA = 44;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** A JSON string's content that means exactly its characters: no escape, no control character. */
function plain(line: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = line.charCodeAt(i);
    if (c === BACKSLASH || c < 32) return false;
  }
  return true;
}

function isJsonSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/** The last character of a JSON value: a string's quote, a container's close, a number's digit, true/false/null's last letter. */
function endsValue(c: number): boolean {
  return c === QUOTE || c === CLOSE_BRACE || c === CLOSE_BRACKET || (c >= 48 && c <= 57) || c === 101 || c === 108;
}

/**
 * JSON.parse for record lines, with the same result. JSON.parse makes (and interns) a string per
 * source click — 12M in a MIND-large profile.jsonl, two thirds of the time to read it — where merge
 * keeps their NewsCodes. So the top-level member `"source":{"split":"…","clicks":["…",…]}` written
 * as the engine writes it (plain strings, no spaces) is read as codes, and the line without it is
 * parsed as JSON. The member is found by scanning the line's strings and nesting, and cut only at a
 * member boundary of the top-level object, so the rest is valid JSON exactly when the line is; a
 * line with another top-level "source", or none in that form, is parsed whole, and a bad line fails
 * as JSON.parse fails.
 */
export function recordParser(codes: NewsCodes): (line: string) => unknown {
  return (line) => {
    const found = codedSource(line, codes);
    if (!found) return JSON.parse(line);
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(found.rest) as Record<string, unknown>;
    } catch {
      return JSON.parse(line);
    }
    // JSON.parse keeps the last of repeated keys; which one came last is the whole line's to say.
    if (Object.hasOwn(value, "source")) return JSON.parse(line);
    value.source = found.source;
    return value;
  };
}

/** The line without its top-level coded source member, and that source; undefined when it has none in the engine's form. */
function codedSource(line: string, codes: NewsCodes): { rest: string; source: ReadSource } | undefined {
  // To the first string that opens at depth 1 (in the top-level object) as the member's key.
  let depth = 0;
  let last = -1; // the last character outside strings that is not white space
  let beforeLast = -1;
  let at = -1;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === QUOTE) {
      if (depth === 1 && line.startsWith(SOURCE_MEMBER, i)) {
        at = i;
        break;
      }
      // Past the string: an escaped quote does not end it.
      let j = i + 1;
      while (j < line.length && line.charCodeAt(j) !== QUOTE) j += line.charCodeAt(j) === BACKSLASH ? 2 : 1;
      if (j >= line.length) return undefined;
      i = j;
    } else if (isJsonSpace(c)) continue;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === 0 && (c !== OPEN_BRACE || last !== -1)) return undefined;
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
    beforeLast = last;
    last = i;
  }
  if (at < 0) return undefined;
  const afterKey = line.charCodeAt(last);
  // A member starts after the object's `{` or after `,` following a complete value.
  if (afterKey !== OPEN_BRACE && !(afterKey === COMMA && beforeLast >= 0 && endsValue(line.charCodeAt(beforeLast)))) return undefined;
  const splitStart = at + SOURCE_MEMBER.length;
  const splitEnd = line.indexOf('"', splitStart);
  if (splitEnd <= splitStart || !plain(line, splitStart, splitEnd) || !line.startsWith(CLICKS_AT, splitEnd)) return undefined;
  const clicks: number[] = [];
  let i = splitEnd + CLICKS_AT.length;
  for (;;) {
    if (line.charCodeAt(i) !== QUOTE) return undefined;
    // To the closing quote, refusing escapes and control characters (12M IDs in a MIND-large profile.jsonl).
    const open = i + 1;
    let close = open;
    for (let c = line.charCodeAt(close); c !== QUOTE && close < line.length; c = line.charCodeAt(++close)) {
      if (c === BACKSLASH || c < 32) return undefined;
    }
    if (close === open || close === line.length) return undefined;
    const n = newsIdNumber(line, open, close);
    clicks.push(n >= 0 ? n : codes.code(line.slice(open, close)));
    i = close + 1;
    if (line.charCodeAt(i) === CLOSE_BRACKET) break;
    if (line.charCodeAt(i) !== COMMA) return undefined;
    i++;
  }
  if (line.charCodeAt(i + 1) !== CLOSE_BRACE) return undefined;
  const memberEnd = i + 2;
  const source = new ReadSource(line.slice(splitStart, splitEnd), clicks);
  // After `,`: the comma goes with the member. After `{`: the comma after it goes, and a key must follow.
  if (afterKey === COMMA) return { rest: line.slice(0, last) + line.slice(memberEnd), source };
  let next = memberEnd;
  while (next < line.length && isJsonSpace(line.charCodeAt(next))) next++;
  if (line.charCodeAt(next) === CLOSE_BRACE) return { rest: line.slice(0, at) + line.slice(memberEnd), source };
  if (line.charCodeAt(next) !== COMMA) return undefined;
  let key = next + 1;
  while (key < line.length && isJsonSpace(line.charCodeAt(key))) key++;
  if (line.charCodeAt(key) !== QUOTE) return undefined;
  return { rest: line.slice(0, at) + line.slice(key), source };
}

/**
 * All merge needs of a failure line: its item, and who billed what for it. The engine writes all
 * four; a line without the billing still counts as a failed item (it only costs a count).
 */
const FailedItem = FailureRecord.pick({ itemId: true, provider: true, model: true, usage: true }).partial({ provider: true, model: true, usage: true });

async function readStage(stage: Stage, dirs: readonly string[], codes: NewsCodes): Promise<StageRecords> {
  const out: StageRecords = {
    stage,
    byItem: new KeptByItem(),
    answerers: [],
    usage: zeroUsage(),
    failureLines: 0,
    spend: new Spend(),
    validLines: 0,
    invalidLines: 0,
    invalidExamples: [],
    sources: new SourceTable(codes),
    failedItems: new Set(),
    inPart: new Map(),
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
  const parse = recordParser(codes);
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
      for await (const { value: rec, lineNo } of jsonlLines(file, ReadRecord, skip, undefined, parse)) {
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
        out.spend.add(rec.provider, rec.model, rec.usage);
        let by = out.answerers.findIndex((a) => a.provider === rec.provider && a.model === rec.model);
        if (by < 0) by = out.answerers.push({ provider: rec.provider, model: rec.model }) - 1;
        out.byItem.set(rec.itemId, { value: value.value, by, source: rec.source ? out.sources.add(rec.source) : -1 });
        // Last record wins here too: an item answered whole after an import kept it in part is whole.
        if (rec.leftOut) out.inPart.set(rec.itemId, countLeftOut<Record<string, number>>({}, rec.leftOut));
        else if (out.inPart.size > 0) out.inPart.delete(rec.itemId);
      }
    }
    const failures = paths.failures(stage.name);
    if (existsSync(failures)) {
      // A bad line in the failure log only affects a count.
      for await (const { value } of jsonlLines(failures, FailedItem, () => {})) {
        out.failedItems.add(value.itemId);
        out.failureLines++;
        if (value.provider === undefined || value.model === undefined || value.usage === undefined) continue;
        addUsage(out.usage, value.usage);
        out.spend.add(value.provider, value.model, value.usage);
      }
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
