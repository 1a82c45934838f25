import { AtomicFileWriter } from "../util/atomic.js";
import type { BehaviorRow, NewsRow } from "./rows.js";
import { tsvField } from "./text.js";

export function formatNewsLine(row: NewsRow): string {
  return (
    [row.id, row.category, row.subcategory, row.title, row.abstract, row.url, row.titleEntities, row.abstractEntities]
      .map(tsvField)
      .join("\t") + "\n"
  );
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
