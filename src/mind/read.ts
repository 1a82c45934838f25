import { isAscii, isUtf8 } from "node:buffer";
import { open } from "node:fs/promises";
import { MindFormatError, type SkipLog } from "./errors.js";
import { Entity, type BehaviorRow, type Impression, type NewsRow } from "./rows.js";

export interface NumberedLine {
  text: string;
  /** 1-based, as an editor shows it. */
  lineNo: number;
  /** Set when the line's bytes are not valid UTF-8: `text` holds U+FFFD where they were. */
  invalidUtf8?: true;
  /** The line's bytes (CR excluded), kept only for such a line, so a writer can copy it unchanged. */
  bytes?: Buffer;
}

const CHUNK_BYTES = 1 << 20;

/**
 * Up to ~1 MB of a file's text and where its lines are: line i is `text.slice(starts[i], ends[i])`
 * (line break and CR excluded) and has line number `firstLineNo + i`. Hot loops scan `text`
 * between the bounds instead of slicing every line.
 */
export interface LineChunk {
  text: string;
  starts: number[];
  ends: number[];
  firstLineNo: number;
  /** Where `text` starts in the file, in bytes (after a BOM). */
  byteOffset: number;
  /** The chunk is ASCII: a character index in `text` is a byte count. */
  ascii: boolean;
  /** Indexes (into starts/ends) of the lines whose bytes are not valid UTF-8; absent when every line is. */
  invalidUtf8?: number[];
  /** Those lines' bytes (CR excluded), in the same order: copies, the read buffer is reused. */
  invalidBytes?: Buffer[];
}

/** The lines of `bytes` (whole lines, split on LF) that are not valid UTF-8: their indexes and bytes. */
function invalidUtf8Lines(bytes: Buffer): { invalidUtf8: number[]; invalidBytes: Buffer[] } {
  const invalidUtf8: number[] = [];
  const invalidBytes: Buffer[] = [];
  // LF never occurs inside a multi-byte sequence, so byte lines are the decoded lines.
  for (let start = 0, i = 0; start < bytes.length; i++) {
    let nl = bytes.indexOf(10, start);
    if (nl === -1) nl = bytes.length;
    const line = bytes.subarray(start, nl > start && bytes[nl - 1] === 13 ? nl - 1 : nl);
    if (!isUtf8(line)) {
      invalidUtf8.push(i);
      invalidBytes.push(Buffer.from(line));
    }
    start = nl + 1;
  }
  return { invalidUtf8, invalidBytes };
}

/**
 * Streams a file as chunks of whole lines. Accepts a UTF-8 BOM and CRLF endings; a missing final
 * newline is fine. Reads bytes into one reused buffer and decodes it up to its last line break,
 * so no character is ever split and the unfinished line is moved, not the whole chunk copied. An
 * all-ASCII chunk (all of behaviors.tsv, usually) is decoded as latin1: a plain copy, much
 * cheaper than UTF-8 decoding, giving the same string.
 */
export async function* readLineChunks(file: string): AsyncGenerator<LineChunk> {
  const fh = await open(file, "r");
  try {
    let buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let filled = 0;
    let lineNo = 1;
    let first = true;
    /** File position of buf[0]. */
    let position = 0;
    // Decoding never fails: bytes that are not UTF-8 become U+FFFD, and the chunk says which lines had them.
    const decode = (end: number): { text: string; ascii: boolean; invalidUtf8?: number[]; invalidBytes?: Buffer[] } => {
      const bytes = buf.subarray(0, end);
      if (isAscii(bytes)) return { text: buf.toString("latin1", 0, end), ascii: true };
      const text = buf.toString("utf8", 0, end);
      return isUtf8(bytes) ? { text, ascii: false } : { text, ascii: false, ...invalidUtf8Lines(bytes) };
    };
    for (;;) {
      if (filled === buf.length) {
        // One line longer than the buffer: grow it.
        const grown = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(grown, 0, 0, filled);
        buf = grown;
      }
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
      if (bytesRead === 0) break;
      let end = filled + bytesRead;
      if (first) {
        first = false;
        if (end >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
          buf.copyWithin(0, 3, end);
          end -= 3;
          position = 3;
        }
      }
      const cut = end > 0 ? buf.lastIndexOf(10, end - 1) + 1 : 0;
      if (cut === 0) {
        filled = end;
        continue;
      }
      const { text, ascii, invalidUtf8, invalidBytes } = decode(cut);
      // The unfinished last line moves to the front: the next read completes it.
      buf.copyWithin(0, cut, end);
      filled = end - cut;
      const starts: number[] = [];
      const ends: number[] = [];
      let start = 0;
      let nl = text.indexOf("\n", start);
      while (nl !== -1) {
        starts.push(start);
        ends.push(nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
        start = nl + 1;
        nl = text.indexOf("\n", start);
      }
      const chunk = { text, starts, ends, firstLineNo: lineNo, byteOffset: position, ascii };
      yield invalidUtf8 ? { ...chunk, invalidUtf8, invalidBytes } : chunk;
      lineNo += starts.length;
      position += cut;
    }
    if (filled > 0) {
      const { text, ascii, invalidUtf8, invalidBytes } = decode(filled);
      const end = text.charCodeAt(text.length - 1) === 13 ? text.length - 1 : text.length;
      const chunk = { text, starts: [0], ends: [end], firstLineNo: lineNo, byteOffset: position, ascii };
      yield invalidUtf8 ? { ...chunk, invalidUtf8, invalidBytes } : chunk;
    }
  } finally {
    await fh.close();
  }
}

/** Streams a file as batches of lines: one batch per ~1 MB chunk keeps the per-line cost low. */
export async function* readLineBatches(file: string): AsyncGenerator<NumberedLine[]> {
  for await (const { text, starts, ends, firstLineNo, invalidUtf8, invalidBytes } of readLineChunks(file)) {
    const lines: NumberedLine[] = starts.map((start, i) => ({ text: text.slice(start, ends[i]), lineNo: firstLineNo + i }));
    invalidUtf8?.forEach((i, k) => {
      lines[i]!.invalidUtf8 = true;
      lines[i]!.bytes = invalidBytes![k];
    });
    yield lines;
  }
}

export async function* readLines(file: string): AsyncGenerator<NumberedLine> {
  for await (const batch of readLineBatches(file)) yield* batch;
}

export function parseNewsLine(file: string, line: NumberedLine): NewsRow {
  const f = line.text.split("\t");
  if (f.length !== 8) {
    throw new MindFormatError(file, line.lineNo, undefined, `expected 8 tab-separated fields (news.tsv), found ${f.length}`);
  }
  const [id, category, subcategory, title, abstract, url, titleEntities, abstractEntities] = f as [
    string, string, string, string, string, string, string, string,
  ];
  if (id.length === 0) throw new MindFormatError(file, line.lineNo, "News ID", "empty news ID");
  return { id, category, subcategory, title, abstract, url, titleEntities, abstractEntities };
}

/** What is wrong with a line, in the words every reader reports it with (a MindFormatError's field and problem). */
export interface LineProblem {
  field?: string;
  problem: string;
}

const TAB = 9;

/** What is wrong with a behaviors.tsv line of `fields` fields, in the one wording every reader uses. */
function behaviorsLineProblem(fields: number, emptyUserId: boolean): LineProblem | undefined {
  if (fields !== 5) return { problem: `expected 5 tab-separated fields (behaviors.tsv), found ${fields}` };
  if (emptyUserId) return { field: "User ID", problem: "empty user ID" };
  return undefined;
}

/**
 * The scanner of a behaviors.tsv line's fields for readers that keep many lines in one piece:
 * validate's chunk of text and merge's bytes. `line[start, end)` is the line without its break;
 * returns the positions of its four tabs, or what is wrong with it.
 */
export function behaviorTabs(line: string | Buffer, start: number, end: number): [number, number, number, number] | LineProblem {
  const text = typeof line === "string";
  const tabs: [number, number, number, number] = [-1, -1, -1, -1];
  let fields = 1;
  // Every tab is counted, a fifth one included: the whole line is scanned once.
  for (let from = start; ; fields++) {
    const tab = text ? line.indexOf("\t", from) : line.indexOf(TAB, from);
    if (tab < 0 || tab >= end) break;
    if (fields <= 4) tabs[fields - 1] = tab;
    from = tab + 1;
  }
  return behaviorsLineProblem(fields, tabs[1] === tabs[0] + 1) ?? tabs;
}

/** A behaviors row with History kept as the raw column: split it (splitIds) only when needed. */
export type RawBehaviorRow = Omit<BehaviorRow, "history"> & { historyColumn: string };

/** parseBehaviorLine without splitting History: a user's history repeats on each of their rows. */
export function parseRawBehaviorLine(file: string, line: NumberedLine): RawBehaviorRow {
  const f = line.text.split("\t");
  const wrong = behaviorsLineProblem(f.length, f[1] === "");
  if (wrong) throw new MindFormatError(file, line.lineNo, wrong.field, wrong.problem);
  const [impressionId, userId, time, historyColumn, impressions] = f as [string, string, string, string, string];
  const problem = impressionsProblem(impressions);
  if (problem) throw new MindFormatError(file, line.lineNo, "Impressions", problem);
  return { impressionId, userId, time, historyColumn, impressions };
}

export function parseBehaviorLine(file: string, line: NumberedLine): BehaviorRow {
  const raw = parseRawBehaviorLine(file, line);
  return { impressionId: raw.impressionId, userId: raw.userId, time: raw.time, history: splitIds(raw.historyColumn), impressions: raw.impressions };
}

export function splitIds(column: string): string[] {
  if (column.length === 0) return [];
  const ids = column.split(" ");
  return ids.includes("") ? ids.filter((s) => s.length > 0) : ids;
}

/**
 * Impressions are `ID-label` tokens, or bare IDs in unlabeled files (MIND-large test). A line must
 * not mix the two, and a label is 0 or 1: that is what every trainer splits on `-` to read.
 * Scans characters and slices only to word an error: it runs on every row of a 1.4 GB file.
 */
export function impressionsProblem(column: string): string | undefined {
  if (column.length === 0) return "no impressions";
  let labeled: boolean | undefined;
  const n = column.length;
  let s = 0;
  while (s < n) {
    let e = column.indexOf(" ", s);
    if (e === -1) e = n;
    if (e > s) {
      let dash = e - 1;
      while (dash >= s && column.charCodeAt(dash) !== 45) dash--;
      const isLabeled = dash >= s;
      if (labeled === undefined) labeled = isLabeled;
      else if (labeled !== isLabeled) return `mixes labeled and unlabeled impressions at '${column.slice(s, e)}'`;
      if (isLabeled) {
        const label = column.charCodeAt(dash + 1);
        if (e - dash !== 2 || (label !== 48 && label !== 49)) {
          return `label '${column.slice(dash + 1, e)}' in '${column.slice(s, e)}' is not 0 or 1`;
        }
        if (dash === s) return `impression '${column.slice(s, e)}' has no news ID`;
      }
    }
    s = e + 1;
  }
  return undefined;
}

export function parseImpressions(column: string): Impression[] {
  return splitIds(column).map((token) => {
    const dash = token.lastIndexOf("-");
    if (dash === -1) return { newsId: token, label: null };
    return { newsId: token.slice(0, dash), label: token.endsWith("1") ? 1 : 0 };
  });
}

// Built once: constructing the schema per call cost more than the parse itself.
const EntityList = Entity.array();

/**
 * The Entity schema's rules, checked by hand: validate parses the entities of every news row, and
 * this is several times cheaper than zod. Anything it rejects goes to zod for the error message.
 */
function isEntityList(value: unknown): value is Entity[] {
  if (!Array.isArray(value)) return false;
  for (const e of value as unknown[]) {
    if (typeof e !== "object" || e === null || Array.isArray(e)) return false;
    const o = e as Record<string, unknown>;
    if (typeof o.Label !== "string" || typeof o.Type !== "string") return false;
    if (o.WikidataId !== undefined && typeof o.WikidataId !== "string") return false;
    if (o.Confidence !== undefined && typeof o.Confidence !== "number") return false;
    if (o.OccurrenceOffsets !== undefined && !(Array.isArray(o.OccurrenceOffsets) && o.OccurrenceOffsets.every((x) => typeof x === "number"))) return false;
    if (o.SurfaceForms !== undefined && !(Array.isArray(o.SurfaceForms) && o.SurfaceForms.every((x) => typeof x === "string"))) return false;
  }
  return true;
}

/** Entity JSON is parsed only on request: most commands never need it and it is the costly part. */
export function parseEntities(file: string, lineNo: number, field: "Title Entities" | "Abstract Entities", raw: string): Entity[] {
  if (raw.length === 0) return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw new MindFormatError(file, lineNo, field, `invalid JSON: ${(e as Error).message}`);
  }
  if (isEntityList(value)) return value;
  const parsed = EntityList.safeParse(value);
  if (!parsed.success) {
    throw new MindFormatError(file, lineNo, field, `not a list of entities: ${parsed.error.issues[0]?.message ?? "bad shape"}`);
  }
  return parsed.data;
}

export interface ReadOptions {
  /** Count and skip malformed lines instead of stopping at the first one. */
  lenient?: boolean;
  skipped?: SkipLog;
}

export type Numbered<T> = T & { lineNo: number };

/** Parsed rows, one batch per ~1 MB of file: a hot loop over a batch pays no await per row. */
export async function* readRowBatches<T>(
  file: string,
  parse: (file: string, line: NumberedLine) => T,
  opts: ReadOptions,
): AsyncGenerator<Numbered<T>[]> {
  for await (const batch of readLineBatches(file)) {
    const rows: Numbered<T>[] = [];
    for (const line of batch) {
      try {
        const row = parse(file, line) as Numbered<T>;
        row.lineNo = line.lineNo;
        rows.push(row);
      } catch (e) {
        if (!(e instanceof MindFormatError) || !opts.lenient) throw e;
        opts.skipped?.add(e);
      }
    }
    yield rows;
  }
}

async function* readRows<T>(file: string, parse: (file: string, line: NumberedLine) => T, opts: ReadOptions): AsyncGenerator<Numbered<T>> {
  for await (const rows of readRowBatches(file, parse, opts)) yield* rows;
}

export function readNews(file: string, opts: ReadOptions = {}): AsyncGenerator<Numbered<NewsRow>> {
  return readRows(file, parseNewsLine, opts);
}

export function readBehaviors(file: string, opts: ReadOptions = {}): AsyncGenerator<Numbered<BehaviorRow>> {
  return readRows(file, parseBehaviorLine, opts);
}

export function readRawBehaviorBatches(file: string, opts: ReadOptions = {}): AsyncGenerator<Numbered<RawBehaviorRow>[]> {
  return readRowBatches(file, parseRawBehaviorLine, opts);
}
