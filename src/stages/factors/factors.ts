// factors (KAR, Xi et al. 2023, "factorization prompting"): for a user, the model reasons about their
// preference along each factor of data/vocab/factors.json; for a news item it states facts along the
// same factors (what the title leaves implicit). One short text per factor, as a JSON object. The
// table, the parser and the offline answers, shared by the two registrations (index.ts).
import factorsFile from "../../../data/vocab/factors.json" with { type: "json" };
import gazetteer from "../../../data/gazetteer/us-cities.json" with { type: "json" };
import { z } from "zod";
import type { ParseResult } from "../../engine/types.js";
import type { CatalogNews } from "../../mind/catalog.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { sha256 } from "../../util/hash.js";
import { entitiesOf, stateOfEntity } from "../entities.js";
import { extractJson } from "../../util/json.js";
import { quoteList, vocabKey } from "../normalize.js";
import { copiesInstructions, listInWords, REPLY, wordCount } from "../plain-text.js";
import { SUBCATEGORY_TABLES, subcategoryInWords } from "../subcategory.js";
import type { FactorsOutput } from "./output.js";

export const FACTORS_SCHEMA_VERSION = "factors-1";

const Offline = z.discriminatedUnion("from", [
  z.object({ from: z.literal("subcategory") }),
  z.object({ from: z.literal("places") }),
  z.object({ from: z.literal("entities"), types: z.array(z.string().length(1)).min(1) }),
  z.object({ from: z.literal("keywords"), keywords: z.record(z.string(), z.string().min(1)), default: z.string().min(1) }),
]);

const Factor = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "a factor name is lower-case letters, digits and _ (it is a JSON key and a column)" }),
  kar: z.string().optional(),
  user: z.string().min(1),
  news: z.string().min(1),
  offline: Offline.optional(),
});
export type Factor = z.infer<typeof Factor>;

const FactorsFile = z.object({
  factors: z
    .array(Factor)
    .min(1)
    .refine((fs) => new Set(fs.map((f) => f.name)).size === fs.length, { error: "factor names must be distinct" }),
});

/** Checks a factors table (data/vocab/factors.json or a test's own); the error names the file and the field. */
export function readFactors(value: unknown, file = "data/vocab/factors.json"): Factor[] {
  const parsed = FactorsFile.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: ${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  }
  return parsed.data.factors;
}

export const FACTORS: readonly Factor[] = readFactors(factorsFile);
const TABLE_HASH = sha256(JSON.stringify(factorsFile), SUBCATEGORY_TABLES, JSON.stringify(gazetteer));


/** Which side of the table a text is for: a user's preference or a news item's facts. */
export const FACTOR_KINDS = ["user", "news"] as const;
export type FactorKind = (typeof FACTOR_KINDS)[number];

// ---- Prompt values.

/** `- topics: the subjects …` lines for the system prompt of one kind of item. */
export function factorList(factors: readonly Factor[], kind: FactorKind): string {
  return factors.map((f) => `- "${f.name}": ${f[kind]}`).join("\n");
}

/** `{"topics": "…", …}`: the answer's shape, for the system prompt. */
export function factorExample(factors: readonly Factor[]): string {
  return `{${factors.map((f) => `"${f.name}": "…"`).join(", ")}}`;
}

export function factorsJsonSchema(factors: readonly Factor[]): Record<string, unknown> {
  return {
    type: "object",
    properties: Object.fromEntries(factors.map((f) => [f.name, { type: "string" }])),
    required: factors.map((f) => f.name),
    additionalProperties: false,
  };
}

// ---- Validation.

/** A factor's text is a short phrase or sentence: a column of a TSV side file, not an essay. */
export const FACTOR_MAX_WORDS = 40;
export const FACTOR_MAX_CHARS = 300;
/** What a factor with nothing to say holds. */
export const NONE = "none";
const NOTHING = /^(?:none|n\/?a|unknown|not applicable|nothing|no information|not specified|not mentioned)[.!]?$/i;

/** `People and organisations`, `event-type` → `people_and_organisations`, `event_type`. */
const keyOf = (key: string) => vocabKey(key).replace(/[^a-z0-9]+/g, "_");

export function parseFactors(raw: string, factors: readonly Factor[], kind: FactorKind, instructions: ReadonlySet<string>): ParseResult<FactorsOutput> {
  const json = extractJson(raw);
  if (!json.ok) return json;
  const shape = `the answer must be one JSON object with a short text for each factor: ${factorExample(factors)}`;
  const v = json.value;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, error: shape };
  const given = new Map(Object.entries(v).map(([k, x]) => [keyOf(k), x]));
  const out: FactorsOutput = {};
  const missing: string[] = [];
  const problems: string[] = [];
  for (const f of factors) {
    const x = given.get(f.name);
    const text = typeof x === "string" ? x : Array.isArray(x) && x.every((e) => typeof e === "string") ? x.join(", ") : typeof x === "number" ? String(x) : undefined;
    if (x === undefined || x === null) {
      missing.push(f.name);
      continue;
    }
    if (text === undefined) {
      problems.push(`"${f.name}" must be a text`);
      continue;
    }
    const clean = cleanGeneratedText(text);
    if (!clean) problems.push(`"${f.name}" is empty; write "${NONE}" when nothing applies`);
    else if (NOTHING.test(clean)) out[f.name] = NONE;
    else if (REPLY.test(clean)) problems.push(`"${f.name}" is a reply about the task; state the ${f.name.replace(/_/g, " ")} itself`);
    else if (copiesInstructions(clean, instructions) || keyOf(clean) === keyOf(f[kind])) problems.push(`"${f.name}" repeats the instructions; state the ${f.name.replace(/_/g, " ")} itself`);
    else if (wordCount(clean) > FACTOR_MAX_WORDS || clean.length > FACTOR_MAX_CHARS) problems.push(`"${f.name}" is too long (${wordCount(clean)} words); keep it under ${FACTOR_MAX_WORDS} words`);
    else out[f.name] = clean;
  }
  if (missing.length) problems.unshift(`${quoteList(missing)} ${missing.length > 1 ? "are" : "is"} missing; give every factor, "${NONE}" when nothing applies`);
  if (problems.length) return { ok: false, error: problems.join("; ") };
  return { ok: true, value: out };
}

// ---- Offline baseline.

const WORD = /[^\p{L}\p{N}]+/u;

/** The values a news row gives one factor offline (none when it says nothing about it). */
function newsValues(n: CatalogNews, f: Factor): string[] {
  const o = f.offline;
  if (!o) return [];
  const entities = () => [...entitiesOf(n.titleEntities), ...entitiesOf(n.abstractEntities)];
  switch (o.from) {
    case "subcategory": {
      const sub = n.subcategory ? subcategoryInWords(n.subcategory) : "";
      const cat = subcategoryInWords(n.category);
      return dedupeCase([sub, cat].filter(Boolean));
    }
    case "places":
      return dedupeCase(
        entities()
          .filter((e) => e.Type === "G")
          .flatMap((e) => {
            const state = stateOfEntity(e);
            return state && vocabKey(state) !== vocabKey(e.Label) ? [e.Label, state] : [e.Label];
          }),
      );
    case "entities":
      return dedupeCase(entities().filter((e) => o.types.includes(e.Type)).map((e) => e.Label));
    case "keywords": {
      const text = ` ${`${n.title} ${n.subcategory.replace(/[-_]+/g, " ")}`.toLowerCase().split(WORD).filter(Boolean).join(" ")} `;
      const found: string[] = [];
      for (const [k, value] of Object.entries(o.keywords)) if (text.includes(` ${k.toLowerCase()} `) && !found.includes(value)) found.push(value);
      return found;
    }
  }
}

function dedupeCase(values: readonly string[]): string[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const k = vocabKey(v);
    if (!k || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Values per text of a news item and of a user: enough to read, short enough for the bounds. */
const NEWS_VALUES = 4;
const USER_VALUES = 3;

function fallback(f: Factor): string {
  return f.offline?.from === "keywords" ? f.offline.default : NONE;
}

function clip(values: readonly string[], n: number): string {
  let text = listInWords(values.slice(0, n));
  while (text.length > FACTOR_MAX_CHARS && n > 1) text = listInWords(values.slice(0, --n));
  return text.length > FACTOR_MAX_CHARS ? values[0]!.slice(0, FACTOR_MAX_CHARS).trim() : text;
}

/** Offline baseline for a news item: per factor, what its subcategory, entities (with the gazetteer) and title words say. */
export function offlineNewsFactors(n: CatalogNews, factors: readonly Factor[] = FACTORS): FactorsOutput {
  return Object.fromEntries(factors.map((f) => {
    const values = newsValues(n, f);
    return [f.name, values.length ? clip(values, NEWS_VALUES) : fallback(f)];
  }));
}

/**
 * Offline baseline for a user: per factor, the values their clicks give most often (ties by the
 * most recent click first), at most three, e.g. topics "NFL, markets and weather".
 */
export function offlineUserFactors(clicks: readonly CatalogNews[], factors: readonly Factor[] = FACTORS): FactorsOutput {
  return Object.fromEntries(factors.map((f) => {
    const votes = new Map<string, number>();
    for (const n of clicks) for (const v of newsValues(n, f)) votes.set(v, (votes.get(v) ?? 0) + 1);
    const ranked = [...votes].map((e, i) => [e, i] as const).sort((a, b) => b[0][1] - a[0][1] || a[1] - b[1]).map(([[v]]) => v);
    return [f.name, ranked.length ? clip(ranked, USER_VALUES) : fallback(f)];
  }));
}

/** What the offline answer reads beyond the prompt (the table, the entity columns), for the request key. */
export function offlineFactorInputs(news: readonly CatalogNews[]): string {
  return sha256(TABLE_HASH, ...news.flatMap((n) => [n.titleEntities, n.abstractEntities]));
}
