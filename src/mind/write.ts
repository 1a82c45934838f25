import { AtomicFileWriter } from "../util/atomic.js";
import type { NumberedLine } from "./read.js";
import type { BehaviorRow, NewsRow } from "./rows.js";
import { tsvField } from "./text.js";

export function formatNewsLine(row: NewsRow): string {
  return (
    [row.id, row.category, row.subcategory, row.title, row.abstract, row.url, row.titleEntities, row.abstractEntities]
      .map(tsvField)
      .join("\t") + "\n"
  );
}

/** The fields a stage may rewrite in a row merge copies (the others are copied byte for byte). */
export interface FieldEdits {
  title?: string;
  abstract?: string;
}
const EDITABLE: Record<keyof FieldEdits, number> = { title: 3, abstract: 4 };
const TAB = 0x09;
const LF = Buffer.from("\n");

/**
 * A news line as read, with only the given fields replaced (none given: no change). Every other
 * byte is copied, so a row merge does not rewrite keeps bytes that are not UTF-8 instead of U+FFFD.
 * The line must have passed parseNewsLine (8 fields).
 */
export function newsLineWith(line: NumberedLine, edits: FieldEdits): string | Buffer {
  const changed = (Object.keys(EDITABLE) as (keyof FieldEdits)[]).filter((f) => edits[f] !== undefined);
  if (line.bytes) {
    if (changed.length === 0) return Buffer.concat([line.bytes, LF]);
    // A tab byte never occurs inside a multi-byte sequence: byte fields are the decoded fields.
    const fields: Buffer[] = [];
    for (let start = 0; ; ) {
      const tab = line.bytes.indexOf(TAB, start);
      fields.push(line.bytes.subarray(start, tab === -1 ? line.bytes.length : tab));
      if (tab === -1) break;
      start = tab + 1;
    }
    for (const f of changed) fields[EDITABLE[f]] = Buffer.from(tsvField(edits[f]!));
    return Buffer.concat([...fields.flatMap((f, i) => (i === 0 ? [f] : [Buffer.of(TAB), f])), LF]);
  }
  if (changed.length === 0) return `${line.text}\n`;
  const fields = line.text.split("\t");
  for (const f of changed) fields[EDITABLE[f]] = tsvField(edits[f]!);
  return `${fields.join("\t")}\n`;
}

export function formatBehaviorLine(row: BehaviorRow): string {
  return [row.impressionId, row.userId, row.time, row.history.join(" "), row.impressions].map(tsvField).join("\t") + "\n";
}

/** Writes rows atomically: the file exists under its name only if every row was written. */
export async function writeRows<T>(path: string, rows: Iterable<T> | AsyncIterable<T>, format: (row: T) => string): Promise<number> {
  const out = await AtomicFileWriter.open(path);
  let count = 0;
  try {
    for await (const row of rows) {
      await out.write(format(row));
      count++;
    }
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
  return count;
}

export const writeNews = (path: string, rows: Iterable<NewsRow> | AsyncIterable<NewsRow>) => writeRows(path, rows, formatNewsLine);
export const writeBehaviors = (path: string, rows: Iterable<BehaviorRow> | AsyncIterable<BehaviorRow>) =>
  writeRows(path, rows, formatBehaviorLine);
