// describe (Yada & Yamana 2024): a neutral description of about 50 words of what each news category
// and subcategory of the --data splits covers. Items are neither news nor users: `category:<name>`
// and `subcategory:<name>`.
import { z } from "zod";
import type { ParseResult } from "../../engine/types.js";
import type { Catalog, CatalogNews } from "../../mind/catalog.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { kindedId, splitKindedId } from "../item-ids.js";
import { titleTokens } from "../normalize.js";
import { listInWords, parseParagraph } from "../plain-text.js";
import { subcategoryInWords } from "../subcategory.js";

export const DESCRIBE_SCHEMA_VERSION = "describe-1";

export const DescribeOutput = z.object({
  /** One paragraph of plain text on one line, TSV-safe. */
  description: z.string().min(1),
});
export type DescribeOutput = z.infer<typeof DescribeOutput>;

export const CATEGORY_KINDS = ["category", "subcategory"] as const;
export type CategoryKind = (typeof CATEGORY_KINDS)[number];

export interface CategoryItem {
  id: string;
  kind: CategoryKind;
  name: string;
  /** A subcategory: the categories its news are filed under (one in MIND), in catalog order. Empty for a category. */
  parents: string[];
  /** Its news, in catalog order. */
  news: CatalogNews[];
}

export const categoryItemId = (kind: CategoryKind, name: string): string => kindedId(kind, name);

export function parseCategoryItemId(id: string): { kind: CategoryKind; name: string } | undefined {
  const parsed = splitKindedId(id, CATEGORY_KINDS);
  return parsed && { kind: parsed.kind, name: parsed.id };
}

/** One index per catalog: items, their news and parents, built on first use. */
const INDEXES = new WeakMap<Catalog, Map<string, CategoryItem>>();

/** Every distinct category, then every distinct subcategory, each in order of first appearance in the catalog. */
export function categoryIndex(catalog: Catalog): ReadonlyMap<string, CategoryItem> {
  let index = INDEXES.get(catalog);
  if (index) return index;
  const categories = new Map<string, CategoryItem>();
  const subcategories = new Map<string, CategoryItem>();
  const add = (map: Map<string, CategoryItem>, kind: CategoryKind, name: string, news: CatalogNews) => {
    if (!name) return undefined;
    let item = map.get(name);
    if (!item) map.set(name, (item = { id: categoryItemId(kind, name), kind, name, parents: [], news: [] }));
    item.news.push(news);
    return item;
  };
  for (const n of catalog.news.values()) {
    add(categories, "category", n.category, n);
    const sub = add(subcategories, "subcategory", n.subcategory, n);
    if (sub && n.category && !sub.parents.includes(n.category)) sub.parents.push(n.category);
  }
  index = new Map([...categories.values(), ...subcategories.values()].map((i) => [i.id, i]));
  INDEXES.set(catalog, index);
  return index;
}

export function describeItems(catalog: Catalog): string[] {
  return [...categoryIndex(catalog).keys()];
}

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
