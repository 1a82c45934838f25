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

const TITLE_FIELD = 3;
const TAB = 0x09;
const LF = Buffer.from("\n");

/**
 * A news line as read, with only its title replaced (`title` undefined: no change). Every other
 * byte is copied, so a row merge does not rewrite keeps bytes that are not UTF-8 instead of U+FFFD.
 * The line must have passed parseNewsLine (8 fields).
 */
export function newsLineWithTitle(line: NumberedLine, title: string | undefined): string | Buffer {
  if (line.bytes) {
    if (title === undefined) return Buffer.concat([line.bytes, LF]);
    // A tab byte never occurs inside a multi-byte sequence: byte fields are the decoded fields.
    const fields: Buffer[] = [];
    for (let start = 0; ; ) {
      const tab = line.bytes.indexOf(TAB, start);
      fields.push(line.bytes.subarray(start, tab === -1 ? line.bytes.length : tab));
      if (tab === -1) break;
      start = tab + 1;
    }
    fields[TITLE_FIELD] = Buffer.from(tsvField(title));
    return Buffer.concat([...fields.flatMap((f, i) => (i === 0 ? [f] : [Buffer.of(TAB), f])), LF]);
  }
  if (title === undefined) return `${line.text}\n`;
  const fields = line.text.split("\t");
  fields[TITLE_FIELD] = tsvField(title);
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
