// summarize (GENRE's content summarizer): one enhanced title per news item.
import gazetteer from "../../../data/gazetteer/us-cities.json" with { type: "json" };
import { z } from "zod";
import type { LlmRequest, ParseResult } from "../../engine/types.js";
import type { Catalog, CatalogNews } from "../../mind/catalog.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { sha256 } from "../../util/hash.js";
import { entitiesOf, stateOfEntity } from "../entities.js";
import { copiesInstructions, JSON_LIKE, markupIn, REPLY, shingles, unwrapQuotes } from "../plain-text.js";
import type { Stage } from "../stage.js";
import { SUBCATEGORY_TABLES, subcategoryInWords } from "../subcategory.js";
import { render } from "../template.js";
import { summarizeMerge } from "./merge.js";
import { summarizeReport } from "./report.js";
import { SummarizeOutput } from "./output.js";

// summarize-2: JSON and markup answers are no longer accepted as titles, so stored summarize-1
// answers (some of which were) are asked again.
export const SUMMARIZE_SCHEMA_VERSION = "summarize-2";

/** An enhanced title is a headline: at most this many characters and words (longer for long originals). */
export const MAX_TITLE_CHARS = 200;
export const MAX_TITLE_WORDS = 40;

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

// `[newtitle]` is the marker GENRE's prompt asked for; labels like "Enhanced title:" are the same idea.
const LEADING_MARKER =
  /^\s*(?:\[\s*new\s*title\s*\]|(?:here\s+is|here's)?\s*(?:the|an|your)?\s*(?:new|enhanced|rewritten|improved)\s+(?:title|headline)\s*(?:is)?\s*:)\s*/i;
const INPUT_LABEL = /^\s*title\s*:|\b(?:abstract|category|sub-?category)\s*:/i;

// Keys a model uses when it answers with JSON anyway; `{"title": "X"}` is read as X.
const JSON_TITLE_KEYS = new Set(["title", "newtitle", "new title", "enhanced title", "headline"]);
const WHOLE_FENCE = /^```[\w-]*[ \t]*\n?([\s\S]*?)\n?[ \t]*```$/;

/**
 * An answer that is JSON, or fenced, is a title in disguise: `{"title": "X"}` (bare or fenced)
 * gives X; any other JSON-looking or fenced answer is an error to state back to the model.
 */
function unwrapStructured(text: string, original: string): { title: string } | { error: string } | undefined {
  const fence = WHOLE_FENCE.exec(text);
  const inner = (fence ? fence[1]! : text).trim();
  if (!fence && !(JSON_LIKE.test(inner) && !JSON_LIKE.test(original.trim()))) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(inner);
  } catch {
    return fence && !JSON_LIKE.test(inner)
      ? { error: "the answer is a code block; answer with the enhanced title as one line of plain text" }
      : { error: "the answer looks like JSON but is not valid JSON; answer with the enhanced title as one line of plain text, not JSON" };
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    const [key, title] = entries[0] ?? [];
    if (entries.length === 1 && typeof title === "string" && JSON_TITLE_KEYS.has(key!.toLowerCase().replace(/[_-]+/g, " ").trim())) return { title };
  }
  return { error: "the answer is JSON, not a title; answer with the enhanced title as one line of plain text, not JSON" };
}


export function parseSummary(raw: string, original: string, instructions: ReadonlySet<string>): ParseResult<SummarizeOutput> {
  let text = raw.trim().replace(LEADING_MARKER, "");
  const structured = unwrapStructured(text, original);
  if (structured && "error" in structured) return { ok: false, error: structured.error };
  if (structured) text = structured.title;
  const lines = text.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines.length === 0) return { ok: false, error: "the answer is empty; answer with the enhanced title" };
  if (lines.length > 1) return { ok: false, error: `the answer has ${lines.length} lines; answer with the enhanced title only, on one line, with no explanation` };
  const line = unwrapQuotes(lines[0]!.replace(LEADING_MARKER, ""));
  if (REPLY.test(line)) return { ok: false, error: "the answer is a reply, not a title; answer with the enhanced title only" };
  if (JSON_LIKE.test(line) && !JSON_LIKE.test(original.trim())) {
    return { ok: false, error: "the answer looks like JSON; answer with the enhanced title as one line of plain text, not JSON" };
  }
  const markup = markupIn(line, original);
  if (markup) return { ok: false, error: `the answer contains markup (${markup}); answer with the enhanced title as one line of plain text` };
  if (INPUT_LABEL.test(line)) return { ok: false, error: "the answer repeats the input labels (Title:, Abstract:, Category:); answer with the enhanced title only" };
  if (copiesInstructions(line, instructions)) return { ok: false, error: "the answer repeats the instructions; answer with the enhanced title only" };
  const title = cleanGeneratedText(line);
  if (!title) return { ok: false, error: "the answer is empty; answer with the enhanced title" };
  const maxChars = Math.max(MAX_TITLE_CHARS, original.length + 60);
  const maxWords = Math.max(MAX_TITLE_WORDS, words(original) + 10);
  if (title.length > maxChars || words(title) > maxWords) {
    return { ok: false, error: `the title is too long (${words(title)} words, ${title.length} characters); keep it a headline of at most ${maxWords} words` };
  }
  return { ok: true, value: { title } };
}

/**
 * Offline baseline: the title followed by what the row itself knows and the title does not say —
 * title-entity labels, the state of a place entity, the subcategory in words —
 * e.g. "Texans rally past Colts (Houston Texans, Indianapolis Colts; NFL)".
 */
export function offlineSummary(news: CatalogNews): string {
  const title = cleanGeneratedText(news.title) ?? news.title;
  const inTitle = (s: string) => title.toLowerCase().includes(s.toLowerCase());
  const facts: string[] = [];
  const known = (s: string) => inTitle(s) || facts.some((f) => f.toLowerCase().includes(s.toLowerCase()));
  // "Columbus, Ohio" for a title saying "Columbus" adds only "Ohio".
  const add = (label: string | undefined) => {
    for (const part of (label ?? "").split(",")) {
      const clean = cleanGeneratedText(part.replace(/[();]/g, " "));
      if (clean && !known(clean)) facts.push(clean);
    }
  };
  for (const e of entitiesOf(news.titleEntities)) {
    add(e.Label);
    add(stateOfEntity(e));
  }
  const labels = facts.slice(0, 4);
  const sub = news.subcategory ? subcategoryInWords(news.subcategory) : "";
  const parts = [labels.join(", "), sub && !known(sub) ? sub : ""].filter(Boolean);
  if (parts.length === 0) return title;
  const expanded = `${title} (${parts.join("; ")})`;
  return expanded.length <= Math.max(MAX_TITLE_CHARS, title.length + 60) && words(expanded) <= Math.max(MAX_TITLE_WORDS, words(title) + 10)
    ? expanded
    : title;
}

const OFFLINE_TABLES = sha256(SUBCATEGORY_TABLES, JSON.stringify(gazetteer));

/** The news a stage over news covers: every distinct news ID of the splits (the catalog keeps the first row of an ID) with a title. */
export function titledNews(catalog: Catalog): string[] {
  return [...catalog.news.values()].filter((n) => n.title.trim().length > 0).map((n) => n.id);
}

/** Why `id` is not one of titledNews. */
export function whyNotTitled(stage: string, catalog: Catalog, id: string): string | undefined {
  const news = catalog.news.get(id);
  if (!news) return `no news ${id} in the given splits`;
  if (news.title.trim().length === 0) return `news ${id} has an empty title: ${stage} skips it`;
  return undefined;
}

/** The placeholders of a news item's user prompt (summarize.user.md, factors.news.user.md). */
export function newsValues(news: CatalogNews): Record<string, string> {
  return { title: news.title.trim(), abstract: news.abstract.trim(), category: news.category, subcategory: news.subcategory };
}

export const summarizeStage: Stage<Record<string, never>, SummarizeOutput> = {
  name: "summarize",
  kind: "news",
  command: {
    summary: "enhance every news title with the LLM (GENRE's content summarizer)",
    details: `Every distinct news ID of the given splits is asked once (an ID in train and dev counts once)
with its title, abstract, category and subcategory (prompts/summarize.*.md). The answer must be
one line of plain text: not empty, at most 40 words, not a copy of the instructions or of the input
labels, not JSON or markup (HTML, Markdown); {"title": "X"} is read as X, any other JSON is re-asked.
Offline: the title followed by the title-entity labels and subcategory it does not already say.`,
  },
  flags: {},
  config: z.object({}),
  options: () => ({}),
  metaOptions: () => ({}),
  output: SummarizeOutput,
  merge: summarizeMerge,
  report: summarizeReport,
  templates: () => ({
    system: { file: "summarize.system.md", known: [], required: [] },
    user: { file: "summarize.user.md", known: ["title", "abstract", "category", "subcategory"], required: ["title"] },
  }),
  items: (catalog) => titledNews(catalog),
  whyNot: (catalog, _options, id) => whyNotTitled("summarize", catalog, id),
  *requests(input, itemIds) {
    const system = render(input.system, {});
    const instructions = shingles(system);
    for (const id of itemIds) {
      const news = input.catalog.news.get(id);
      if (!news) throw new Error(`summarize: unknown news ${id}`);
      const user = render(input.user, newsValues(news));
      yield {
        stage: "summarize",
        itemId: id,
        system,
        user,
        schemaVersion: SUMMARIZE_SCHEMA_VERSION,
        packable: true,
        maxTokens: 200,
        // GENRE measured enhanced titles at ~17 tokens; Claude's tokenizer counts a little more.
        expectedOutputTokens: 30,
        offlineInputs: `${OFFLINE_TABLES}\n${news.titleEntities}`,
        parse: (raw) => parseSummary(raw, news.title, instructions),
        offline: () => offlineSummary(news),
      } satisfies LlmRequest<SummarizeOutput>;
    }
  },
};
