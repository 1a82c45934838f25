// Writes tiny MIND split folders for tests: one tab-joined line per row, each ending in "\n".
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export type Rows = readonly (readonly string[])[];

export const tsvLines = (rows: Rows): string => rows.map((r) => r.join("\t") + "\n").join("");

/** `<dir>/news.tsv` and `<dir>/behaviors.tsv` from rows of fields (the folder is created). */
export async function writeSplit(dir: string, news: Rows, behaviors: Rows): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "news.tsv"), tsvLines(news));
  await writeFile(join(dir, "behaviors.tsv"), tsvLines(behaviors));
}
