// `import category-descriptions <file.json>`: category descriptions published elsewhere (Yada &
// Yamana's GPT-4 ones, yamanalab/gpt-augmented-news-recommendation,
// dataset/generated/category_description_gpt4.json) read into describe answers. The file is a JSON
// array of {"category": <name>, "description": <text>}; despite the key, every name is a MIND
// subcategory: their generation script asked for each distinct subcategory of MIND-small, and their
// CategoryAugmentedMINDDataset looks descriptions up by news_df["subcategory"]. So each answer
// becomes the description of the subcategory of that name, judged by describe's own parser as a live
// answer would be, and never of a category that shares the name (news, sports, travel …): the text
// was not written for it.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { UserError, type CommandContext } from "../cli/command.js";
import type { LlmRequest, ParseResult } from "../engine/types.js";
import type { Catalog } from "../mind/catalog.js";
import { categoryIndex } from "../stages/describe/categories.js";
import type { DescribeOutput } from "../stages/describe/output.js";
import { categoryItemId } from "../stages/kinds.js";
import type { StageConfig } from "../stages/options.js";
import { prepareStage } from "../stages/run.js";
import type { ImportedStage, ImportOrigin } from "./records.js";

/** Where an answer was read: the file's name and the 1-based line its entry starts on (as `import once` names them). */
export type EntryOrigin = ImportOrigin;

export interface PublishedDescription {
  origin: EntryOrigin;
  name: string;
  description: string;
}

export interface EntryProblem {
  origin: EntryOrigin;
  message: string;
}

export interface DescriptionsRead {
  file: string;
  entries: number;
  answers: PublishedDescription[];
  problems: EntryProblem[];
}

/** Where each element of the top-level JSON array starts: offset and 1-based line (strings and nesting skipped). */
export function arrayElements(text: string): { start: number; line: number }[] {
  const out: { start: number; line: number }[] = [];
  let line = 1;
  let depth = 0;
  let expectValue = false;
  const at = (i: number) => {
    if (depth === 1 && expectValue) out.push({ start: i, line });
    expectValue = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\n") line++;
    else if (c === '"') {
      at(i);
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\") i++;
        else if (text[i] === "\n") line++;
      }
    } else if (c === "[" || c === "{") {
      at(i);
      depth++;
      expectValue = depth === 1 && c === "[";
    } else if (c === "]" || c === "}") depth--;
    else if (c === ",") expectValue = depth === 1;
    else if (!/\s/.test(c)) at(i);
  }
  return out;
}

/** The line of the first array element that is not JSON by itself (JSON.parse's messages give no line). */
function brokenElementLine(text: string): number | undefined {
  const elements = arrayElements(text);
  for (const [i, e] of elements.entries()) {
    const last = i === elements.length - 1;
    let slice = text.slice(e.start, last ? text.length : elements[i + 1]!.start).trimEnd();
    slice = (last ? slice.replace(/\]$/, "") : slice.replace(/,$/, "")).trimEnd();
    try {
      JSON.parse(slice);
    } catch {
      return e.line;
    }
  }
  return undefined;
}

/**
 * Reads the file. Not JSON, or not an array, stops with the file (and line); an entry without a
 * string `category` and `description` is a problem of its line, counted and skipped.
 */
export async function readCategoryDescriptions(path: string, file = path): Promise<DescriptionsRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new UserError(`${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (e) {
    const line = text.trimStart().startsWith("[") ? brokenElementLine(text) : undefined;
    throw new UserError(`${path}${line ? `:${line}` : ""}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(value)) throw new UserError(`${path}: expected a JSON array of {"category": …, "description": …}`);
  const lines = arrayElements(text).map((e) => e.line);
  const read: DescriptionsRead = { file, entries: value.length, answers: [], problems: [] };
  value.forEach((entry: unknown, i) => {
    const origin = { file, line: lines[i] ?? 1 };
    const e = entry as Record<string, unknown> | null;
    const bad = typeof e !== "object" || e === null || Array.isArray(e) ? "entry" : typeof e.category !== "string" || !e.category.trim() ? "category" : typeof e.description !== "string" ? "description" : undefined;
    if (bad) {
      read.problems.push({ origin, message: bad === "entry" ? "not an object" : `field '${bad}' is missing or not a non-empty string` });
      return;
    }
    read.answers.push({ origin, name: (e!.category as string).trim(), description: e!.description as string });
  });
  return read;
}

export type DescriptionRefusal = "malformed entry" | "not a subcategory of --data" | "invalid answer" | "answered again later";

/** What became of one describe item: the record's output, or the error of its last answer. */
export interface DescriptionOutcome {
  itemId: string;
  origins: EntryOrigin[];
  answers: string[];
  output?: DescribeOutput;
  error?: string;
}

export interface JudgedDescriptions {
  imported: number;
  refused: Partial<Record<DescriptionRefusal, number>>;
  /** Names that are not a subcategory of --data, first few; one that is only a category there says so. */
  unknownNames: string[];
  items: DescriptionOutcome[];
}

/**
 * Each answer goes to the subcategory of its name in --data, through the item's `parse`; the last
 * valid answer of an item makes its record (earlier ones count as answered again later), an item with
 * only invalid answers a failure.
 */
export function judgeDescriptions(read: DescriptionsRead, catalog: Catalog, parse: (itemId: string, raw: string) => ParseResult<DescribeOutput>): JudgedDescriptions {
  const index = categoryIndex(catalog);
  const judged: JudgedDescriptions = { imported: 0, refused: {}, unknownNames: [], items: [] };
  const refuse = (why: DescriptionRefusal, n = 1) => (judged.refused[why] = (judged.refused[why] ?? 0) + n);
  if (read.problems.length) refuse("malformed entry", read.problems.length);
  const byItem = new Map<string, { kept?: { answer: PublishedDescription; output: DescribeOutput }; last?: { answer: PublishedDescription; error: string }; all: PublishedDescription[] }>();
  for (const answer of read.answers) {
    const id = categoryItemId("subcategory", answer.name);
    if (!index.has(id)) {
      refuse("not a subcategory of --data");
      const shown = index.has(categoryItemId("category", answer.name)) ? `${answer.name} (a category only)` : answer.name;
      if (judged.unknownNames.length < 5 && !judged.unknownNames.includes(shown)) judged.unknownNames.push(shown);
      continue;
    }
    const parsed = parse(id, answer.description);
    let g = byItem.get(id);
    if (!g) byItem.set(id, (g = { all: [] }));
    g.all.push(answer);
    if (!parsed.ok) {
      refuse("invalid answer");
      g.last = { answer, error: `${answer.origin.file}:${answer.origin.line}: ${parsed.error}` };
      continue;
    }
    if (g.kept) refuse("answered again later");
    g.kept = { answer, output: parsed.value };
  }
  for (const [itemId, g] of byItem) {
    if (g.kept) {
      judged.imported++;
      judged.items.push({ itemId, origins: [g.kept.answer.origin], answers: [g.kept.answer.description], output: g.kept.output });
    } else {
      judged.items.push({ itemId, origins: g.all.map((a) => a.origin), answers: g.all.map((a) => a.description), error: g.last!.error });
    }
  }
  return judged;
}

export interface DescriptionsImport extends ImportedStage {
  read: DescriptionsRead;
  judged: JudgedDescriptions;
}

/** Reads the file and judges every description with the describe stage's requests over `config.data`; nothing is written. */
export async function judgeDescriptionsFile(path: string, config: StageConfig, ctx: CommandContext): Promise<DescriptionsImport> {
  const prepared = await prepareStage("describe", config, ctx);
  const { stage, input } = prepared;
  const read = await readCategoryDescriptions(path, basename(path));
  const requests = new Map<string, LlmRequest>();
  for (const r of stage.requests(input, stage.items(input.catalog, input.options), undefined)) requests.set(r.itemId, r);
  const judged = judgeDescriptions(read, input.catalog, (id, raw) => requests.get(id)!.parse(raw) as ParseResult<DescribeOutput>);
  const items = judged.items.map((o) => ({ stage: stage.name, ...o, request: requests.get(o.itemId)! }));
  return { stage: stage.name, files: [{ file: read.file }], items, prepared, options: {}, read, judged };
}
