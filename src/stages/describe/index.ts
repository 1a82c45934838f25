// describe (Yada & Yamana 2024): a neutral description of about 50 words of what each news category
// and subcategory of the --data splits covers. Its items are of their own kind (kinds.ts):
// `category:<name>` and `subcategory:<name>`.
import { z } from "zod";
import type { LlmRequest, ParseResult } from "../../engine/types.js";
import type { Catalog } from "../../mind/catalog.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { sha256 } from "../../util/hash.js";
import { parseCategoryItemId, type CategoryKind } from "../kinds.js";
import { titleTokens } from "../normalize.js";
import { listInWords, parseParagraph, shingles } from "../plain-text.js";
import type { Stage } from "../stage.js";
import { SUBCATEGORY_TABLES, subcategoryInWords } from "../subcategory.js";
import { render } from "../template.js";
import { categoryIndex, categoryItems, type CategoryItem } from "./categories.js";
import { describeMerge } from "./merge.js";
import { DescribeOutput } from "./output.js";
import { describeReport } from "./report.js";

export { categoryIndex, categoryItems, type CategoryItem } from "./categories.js";

export const DESCRIBE_SCHEMA_VERSION = "describe-1";

export function whyNotDescribed(catalog: Catalog, id: string): string | undefined {
  const parsed = parseCategoryItemId(id);
  if (!parsed) return `'${id}' names no category item: write category:<name> or subcategory:<name> (e.g. subcategory:football_nfl)`;
  if (!categoryIndex(catalog).has(id)) return `no ${parsed.kind} '${parsed.name}' in the given splits`;
  return undefined;
}

/** Titles shown with an item: enough to ground an opaque name (`narendramodi_opinion`), too few to describe. */
export const EXAMPLE_TITLES = 5;

/** The placeholder values of describe.user.md. */
export function describeValues(item: CategoryItem): Record<string, string> {
  const words = subcategoryInWords(item.name);
  const titles: string[] = [];
  for (const n of item.news) {
    const t = cleanGeneratedText(n.title);
    if (t && !titles.includes(t)) titles.push(t);
    if (titles.length === EXAMPLE_TITLES) break;
  }
  return {
    kind: item.kind,
    name: item.name,
    name_words: words === item.name ? "" : words,
    parent: item.parents.join(", "),
    examples: titles.map((t, i) => `(${i + 1}) ${t}`).join("\n"),
  };
}

/** Bounds of a description: the prompt asks for about 50 words; the published GPT-4 ones run 40 to 70. */
export const DESCRIPTION_MIN_WORDS = 15;
export const DESCRIPTION_MAX_WORDS = 120;

const MARKER = /^\s*(?:here\s+is|here's)?\s*(?:a|an|the|my)?\s*(?:neutral\s+|short\s+|brief\s+)?description(?:\s+of\s+[^:\n]{1,80})?\s*:\s*/i;
const INPUT_LABELS = /(?:^|\s)(?:kind|name|in words|category|example titles)\s*:/i;

export function parseDescription(raw: string, instructions: ReadonlySet<string>): ParseResult<DescribeOutput> {
  const p = parseParagraph(raw, {
    marker: MARKER,
    inputLabels: INPUT_LABELS,
    instructions,
    minWords: DESCRIPTION_MIN_WORDS,
    maxWords: DESCRIPTION_MAX_WORDS,
    what: "the description",
  });
  return p.ok ? { ok: true, value: { description: p.text } } : p;
}

/** Title words counted per item in the offline description: the most frequent ones, at most this many. */
export const FREQUENT_WORDS = 8;

/** Words of 3+ letters (function words and the item's own name words dropped) by the number of its titles using them; ties by first use. */
export function frequentTitleWords(item: CategoryItem, n = FREQUENT_WORDS): string[] {
  const own = titleTokens(`${item.name.replace(/[-_]+/g, " ")} ${subcategoryInWords(item.name)}`);
  const counts = new Map<string, number>();
  for (const news of item.news) {
    for (const t of titleTokens(news.title)) {
      if (t.length < 3 || /^\d+$/.test(t) || own.has(t)) continue;
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
  }
  return [...counts]
    .map((e, i) => [e, i] as const)
    .sort((a, b) => b[0][1] - a[0][1] || a[1] - b[1])
    .slice(0, n)
    .map(([[w]]) => w);
}

/**
 * Offline baseline: the name in words, its place (a subcategory's category), and the words its
 * titles use most, e.g. "NFL is a subcategory of news within the sports category. Stories in it most
 * often mention texans, colts and overtime. It is described here from the titles of 2 stories."
 */
export function offlineDescription(item: CategoryItem): string {
  const words = subcategoryInWords(item.name);
  const name = words.charAt(0).toUpperCase() + words.slice(1);
  const where = item.kind === "subcategory" && item.parents.length ? ` within the ${listInWords(item.parents)} category` : "";
  const frequent = frequentTitleWords(item);
  const mention = frequent.length ? `Stories in it most often mention ${listInWords(frequent)}.` : "Its stories share no frequent title words.";
  const n = item.news.length;
  return `${name} is a ${item.kind} of news${where}. ${mention} It is described here from the titles of ${n} ${n === 1 ? "story" : "stories"}.`;
}

/** What the offline answer reads beyond the prompt: every title of the item (the prompt shows five) and the word tables. */
function offlineInputs(item: CategoryItem): string {
  return sha256(SUBCATEGORY_TABLES, ...item.news.map((n) => n.title));
}

export const describeStage: Stage<Record<string, never>, DescribeOutput> = {
  name: "describe",
  kind: "categories",
  optIn: true,
  command: {
    summary: "describe every news category and subcategory in about 50 words (Yada & Yamana 2024)",
    details: `Every distinct category and subcategory of the given splits is one item, named category:<name> or
subcategory:<name> (MIND uses some names for both). The prompt (prompts/describe.*.md) shows the
name, the name in words, a subcategory's category and ${EXAMPLE_TITLES} of its titles. The answer must be one
paragraph of plain text of ${DESCRIPTION_MIN_WORDS} to ${DESCRIPTION_MAX_WORDS} words: no label, no quotes around it, no list, JSON or
markup, no second paragraph, not a copy of the instructions or of the input labels.
Offline: the name in words, its category, and the words its titles use most.
merge writes <out>/category_descriptions.tsv (kind, name, description) and, with --describe title or
abstract, puts each news row's subcategory description (else its category's) into that column.`,
  },
  flags: {},
  config: z.object({}),
  options: () => ({}),
  metaOptions: () => ({}),
  templates: () => ({
    system: { file: "describe.system.md", known: [], required: [] },
    user: { file: "describe.user.md", known: ["kind", "name", "name_words", "parent", "examples"], required: ["kind", "name"] },
  }),
  items: (catalog) => categoryItems(catalog),
  whyNot: (catalog, _options, id) => whyNotDescribed(catalog, id),
  describeItems(catalog, _options, items) {
    const kinds = Array.from(items, (id) => parseCategoryItemId(id)?.kind);
    const n = (k: CategoryKind) => kinds.filter((x) => x === k).length.toLocaleString("en-US");
    return `describe: one request per category (${n("category")}) and subcategory (${n("subcategory")}) of the news\n`;
  },
  *requests(input, itemIds) {
    const system = render(input.system, {});
    const instructions = shingles(system);
    const index = categoryIndex(input.catalog);
    for (const id of itemIds) {
      const item = index.get(id);
      if (!item) throw new Error(`describe: no category item ${id}`);
      const request: LlmRequest<DescribeOutput> = {
        stage: "describe",
        itemId: id,
        system,
        user: render(input.user, describeValues(item)),
        schemaVersion: DESCRIBE_SCHEMA_VERSION,
        maxTokens: 300,
        // About 50 words.
        expectedOutputTokens: 75,
        offlineInputs: offlineInputs(item),
        parse: (raw) => parseDescription(raw, instructions),
        offline: () => offlineDescription(item),
      };
      yield request;
    }
  },
  output: DescribeOutput,
  merge: describeMerge,
  report: describeReport,
};
