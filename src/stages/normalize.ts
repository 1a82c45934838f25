// Near misses an LLM writes for a vocabulary value (case, plural, `TX`, `tech`) are mapped to the
// value before validation; anything else is an invalid answer that goes back to the repair loop.
import aliases from "../../data/vocab/aliases.json" with { type: "json" };
import { MIND_CATEGORIES, TOPICS, US_STATES, US_STATE_BY_CODE } from "./vocab.js";

/** Lower case, `&` → `and`, separators → space, punctuation at the ends dropped. */
export function vocabKey(value: string): string {
  return value
    .toLowerCase()
    .replace(/&/g, " and ")
    .replace(/[-_/]+/g, " ")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");
}

function lookupTable(values: readonly string[], extra: Record<string, string>): Map<string, string> {
  const table = new Map<string, string>();
  for (const v of values) table.set(vocabKey(v), v);
  for (const [alias, v] of Object.entries(extra)) {
    if (alias.startsWith("_")) continue;
    if (!values.includes(v)) throw new Error(`data/vocab/aliases.json: '${alias}' maps to '${v}', which is not in the vocabulary`);
    table.set(vocabKey(alias), v);
  }
  return table;
}

const TOPIC_TABLE = lookupTable(TOPICS, aliases.topics);
const CATEGORY_TABLE = lookupTable(MIND_CATEGORIES, aliases.categories);
const REGION_TABLE = lookupTable(US_STATES, aliases.regions);

function withPlural(table: Map<string, string>, key: string): string | undefined {
  return table.get(key) ?? (key.endsWith("s") ? table.get(key.slice(0, -1)) : table.get(`${key}s`));
}

export function normalizeTopic(value: string): string | undefined {
  return withPlural(TOPIC_TABLE, vocabKey(value));
}

export function normalizeCategory(value: string): string | undefined {
  const key = vocabKey(value);
  return withPlural(CATEGORY_TABLE, key) ?? CATEGORY_TABLE.get(key.replace(/ /g, ""));
}

/** A trailing `(state)` / `(U.S. state)`, as Wikidata labels and models qualify a state name. */
export const STATE_QUALIFIER = /\s*\((u\.?\s?s\.?\s+)?state\)$/i;

/** `TX`, `Tx.`, `texas`, `Texas (state)`, `State of Texas`, `Calif.` → `Texas`/`California`. */
export function normalizeRegion(value: string): string | undefined {
  const trimmed = value.trim().replace(STATE_QUALIFIER, "");
  const code = trimmed.replace(/\./g, "").toUpperCase();
  if (/^[A-Z]{2}$/.test(code)) return US_STATE_BY_CODE[code];
  const key = vocabKey(trimmed).replace(/^state of /, "").replace(/ state$/, "");
  return REGION_TABLE.get(key) ?? REGION_TABLE.get(vocabKey(trimmed));
}

/** Keeps the first occurrence of each value. */
export function dedupe<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

const STOPWORDS = new Set(
  "a an the of to in on at for and or but is are was were be been by with from as it its this that these those his her their he she they you we i not no after before over into about up out new".split(" "),
);

export const isStopword = (token: string) => STOPWORDS.has(token);

/** Lower-cased word tokens without common function words: what near-copy detection compares. */
export function titleTokens(text: string): Set<string> {
  return new Set(text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((t) => t.length > 0 && !STOPWORDS.has(t)));
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  for (const t of a) if (b.has(t)) shared++;
  return shared / (a.size + b.size - shared);
}

/**
 * A title is a near copy of another when their word sets (lower case, function words dropped)
 * have a Jaccard similarity of at least this: e.g. "Texans beat the Colts 30-23" and
 * "Texans beat Colts 30-23 in Houston" (5 shared of 6 words).
 */
export const NEAR_COPY_JACCARD = 0.6;

export function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}
