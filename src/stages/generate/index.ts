// generate (GENRE's personalized content generator): k pseudo-news items per cold user, asked for
// in one request; --chain conditions on the user's profile topics (UP→CG).
import { createHash } from "node:crypto";
import { z } from "zod";
import { zBool, type OptionSpec } from "../../cli/command.js";
import type { LlmRequest, ParseResult } from "../../engine/types.js";
import { recentClicks, type Catalog, type CatalogNews } from "../../mind/catalog.js";
import { CandidateGuard, describeSources, HISTORY_RULE_HELP, historyClass, isCold } from "../../mind/history-rule.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { sha256 } from "../../util/hash.js";
import { extractJson } from "../../util/json.js";
import { jaccard, NEAR_COPY_JACCARD, normalizeCategory, titleTokens } from "../normalize.js";
import { COLD_MAX_FLAG, K_FLAG, zColdMax, zK } from "../options.js";
import { newsTopicBits, numberedTitles, sourceOf, topicBits } from "../profile/index.js";
import type { Stage } from "../stage.js";
import { MAX_TITLE_CHARS } from "../summarize/index.js";
import { render } from "../template.js";
import { TfIdfIndex } from "../tfidf.js";
import { MIND_CATEGORIES } from "../vocab.js";
import { augmentChained, ChainProfiles, loadProfiles } from "./chain.js";
import { generateMerge } from "./merge.js";
import { generateReport } from "./report.js";
import { GenerateOutput, type PseudoNews } from "./output.js";

// generate-2: records carry their source and keep clear of the user's candidates (history-rule.ts).
export const GENERATE_SCHEMA_VERSION = "generate-2";
export const MAX_ABSTRACT_CHARS = 2000;

/**
 * The structured-output schema. The item count is not in it (Anthropic's structured outputs accept
 * no minItems above 1 and no maxItems): the prompt states k and parseGenerated enforces it.
 */
export function generateJsonSchema(): Record<string, unknown> {
  return {
    type: "object",
    properties: {
      items: {
        type: "array",
        items: {
          type: "object",
          properties: {
            title: { type: "string" },
            abstract: { type: "string" },
            category: { type: "string", enum: [...MIND_CATEGORIES] },
          },
          required: ["title", "abstract", "category"],
          additionalProperties: false,
        },
      },
    },
    required: ["items"],
    additionalProperties: false,
  };
}

export interface GenerateOptions {
  /** The largest history of a cold user. */
  coldMax: number;
  /** Pseudo-news items per cold user. */
  k: number;
  /** Condition on profile topics (UP→CG). */
  chain: boolean;
}

const GenerateConfig = z.object({ "cold-max": zColdMax, k: zK, chain: zBool.default(false) });
const CHAIN_FLAG: OptionSpec = { type: "boolean", description: "condition on the user's profile topics (UP→CG); needs profile records in --out" };

export function generateOptions(config: object): GenerateOptions {
  const c = GenerateConfig.parse(config);
  return { coldMax: c["cold-max"], k: c.k, chain: c.chain };
}

/** A cold user's history, most recent first, known news only (at most cold-max of them by definition). */
export function coldClicks(catalog: Catalog, userId: string, options: { coldMax: number }): CatalogNews[] | undefined {
  const user = catalog.users.get(userId);
  if (!user || !isCold(user.history.length, options.coldMax)) return undefined;
  const clicks = recentClicks(user.history, options.coldMax).flatMap((id) => catalog.news.get(id) ?? []);
  return clicks.length > 0 ? clicks : undefined;
}

/** Why `id` is not a cold user (the items of generate and pick), or undefined when it is one. */
export function whyNotCold(stage: string, catalog: Catalog, options: { coldMax: number }, id: string): string | undefined {
  const user = catalog.users.get(id);
  if (!user) return `no user ${id} in the given splits`;
  const kind = historyClass(user.history.length, options.coldMax);
  if (kind === "empty") return `user ${id} has an empty history in every split: ${stage} skips such users`;
  if (kind === "warm") {
    return `user ${id} has ${user.history.length} clicks in ${user.split}, their earliest non-empty history: not a cold user (1 to ${options.coldMax} clicks, see --cold-max)`;
  }
  if (!coldClicks(catalog, id, options)) return `none of user ${id}'s clicks is in the given news files`;
  return undefined;
}

const RawItem = z.object({ title: z.string(), abstract: z.string().optional(), category: z.string(), retrievedFrom: z.string().optional() });

export interface GenerateCheck {
  k: number;
  history: readonly CatalogNews[];
  /** Valid `retrievedFrom` values (retrievableIn); anything else is dropped. */
  retrievable: (newsId: string) => boolean;
}

/**
 * The news an item may be retrieved from, in a model's answer and in the offline baseline alike, and
 * that pick may offer: news of the user's source split (the time of the clicks). News of a later
 * split would bring its time into this one's histories.
 */
export function retrievableIn(catalog: Catalog, split: string): (newsId: string) => boolean {
  return (newsId) => catalog.news.get(newsId)?.inSplits.includes(split) === true;
}

export function parseGenerated(raw: string, check: GenerateCheck): ParseResult<GenerateOutput> {
  const json = extractJson(raw);
  if (!json.ok) return json;
  const v = json.value;
  const list: unknown = Array.isArray(v) ? v : typeof v === "object" && v !== null && "items" in v ? (v as { items: unknown }).items : [v];
  const shape = z.array(RawItem).safeParse(list);
  if (!shape.success) {
    return { ok: false, error: 'the answer must be a JSON object {"items": [{"title": "…", "abstract": "…", "category": "…"}]} with string values' };
  }
  const raws = shape.data;
  if (raws.length !== check.k) return { ok: false, error: `expected exactly ${check.k} items, got ${raws.length}` };
  const items: PseudoNews[] = [];
  const problems: string[] = [];
  const historyTokens = check.history.map((n) => titleTokens(n.title));
  raws.forEach((r, i) => {
    const label = `item ${i + 1}`;
    const title = cleanGeneratedText(r.title);
    const abstract = cleanGeneratedText(r.abstract ?? "") ?? "";
    const category = normalizeCategory(r.category);
    if (!title) problems.push(`${label} has an empty title`);
    else if (title.length > MAX_TITLE_CHARS) problems.push(`${label}'s title is longer than ${MAX_TITLE_CHARS} characters`);
    if (abstract.length > MAX_ABSTRACT_CHARS) problems.push(`${label}'s abstract is longer than ${MAX_ABSTRACT_CHARS} characters`);
    if (!category) problems.push(`${label}'s category ${JSON.stringify(r.category)} is not one of: ${MIND_CATEGORIES.join(", ")}`);
    if (title) {
      const tokens = titleTokens(title);
      const copied = historyTokens.findIndex((h) => jaccard(tokens, h) >= NEAR_COPY_JACCARD);
      if (copied !== -1) problems.push(`${label} is a near copy of the read title (${copied + 1}); write a different story`);
      const dup = items.findIndex((o) => jaccard(tokens, titleTokens(o.title)) >= NEAR_COPY_JACCARD);
      if (dup !== -1) problems.push(`${label} is a near copy of item ${dup + 1}; the items must be different stories`);
    }
    if (title && category) {
      const item: PseudoNews = { title, abstract, category };
      if (r.retrievedFrom !== undefined && check.retrievable(r.retrievedFrom)) item.retrievedFrom = r.retrievedFrom;
      items.push(item);
    } else {
      // Keeps item numbers aligned for the near-copy messages.
      items.push({ title: title ?? "", abstract, category: category ?? "" });
    }
  });
  if (problems.length) return { ok: false, error: problems.join("; ") };
  return { ok: true, value: { items } };
}

/** One guard per catalog: candidate title words are computed once per run, whichever user shows them. */
const guards = new WeakMap<Catalog, CandidateGuard>();
export function candidateGuard(catalog: Catalog): CandidateGuard {
  let g = guards.get(catalog);
  if (!g) guards.set(catalog, (g = new CandidateGuard((id) => catalog.news.get(id)?.title)));
  return g;
}

/**
 * history-rule.ts rule 4 as a re-ask: an item copied from the user's impressions is refused. The
 * error does not quote the candidate, so the model cannot learn what the user was shown.
 */
export function candidateProblem(value: GenerateOutput, shown: readonly string[], guard: CandidateGuard): string | undefined {
  const problems: string[] = [];
  value.items.forEach((item, i) => {
    const c = guard.conflictOnce(item.title, item.retrievedFrom, shown);
    if (c?.reason === "near copy") problems.push(`item ${i + 1} is a near copy of a news story this user was already shown; write a different story`);
    else if (c) problems.push(`item ${i + 1} is a news story this user was already shown; choose a different story`);
  });
  return problems.length ? problems.join("; ") : undefined;
}

/** Cuts text to at most `max` characters at a word boundary. */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${space > max / 2 ? cut.slice(0, space) : cut}…`;
}

/** Per index, each news item's topic bits (newsTopicBits) once known, with TOPIC_KNOWN set. */
const topicCache = new WeakMap<TfIdfIndex, Int32Array>();
const TOPIC_KNOWN = 1 << 30;

function topicsOf(index: TfIdfIndex, catalog: Catalog, id: string): number {
  let cache = topicCache.get(index);
  if (!cache) topicCache.set(index, (cache = new Int32Array(index.ids.length)));
  const d = index.position(id)!;
  if (!cache[d]) cache[d] = newsTopicBits(catalog.news.get(id)!) | TOPIC_KNOWN;
  return cache[d]! & ~TOPIC_KNOWN;
}

/** Retrieval candidates re-ranked by profile topics in the chained offline baseline. */
const CHAIN_POOL = 64;
/** Score factor for a candidate whose topics meet the user's profile topics (chained offline baseline). */
const CHAIN_BOOST = 1.5;

/**
 * Offline baseline — retrieval standing in for generation: the k news of the user's source split
 * (`split`, retrievableIn) most similar (TF-IDF over title and abstract, cosine to the sum of the
 * history) that the user has not read, skipping those the generate rules would reject (near copies,
 * unknown categories) and the news of the user's impressions (`shown`) and their near copies; ties
 * by ID.
 * Chained (UP→CG), the best CHAIN_POOL candidates are re-ranked: a candidate whose topics (through
 * the offline profile's tables) meet the profile topics has its score multiplied by CHAIN_BOOST.
 */
export function offlineGenerated(
  index: TfIdfIndex,
  catalog: Catalog,
  history: readonly CatalogNews[],
  k: number,
  split: string,
  profileTopics?: readonly string[],
  shown: readonly string[] = [],
): GenerateOutput {
  const read = new Set(history.map((n) => n.id));
  const skip = new Set([...read, ...shown]);
  const guard = candidateGuard(catalog);
  const retrievable = retrievableIn(catalog, split);
  const historyTokens = history.map((n) => titleTokens(n.title));
  const chosen: PseudoNews[] = [];
  const chosenTokens: Set<string>[] = [];
  const consider = (id: string): void => {
    if (!retrievable(id)) return;
    const news = catalog.news.get(id)!;
    const title = cleanGeneratedText(news.title);
    const category = normalizeCategory(news.category);
    if (!title || !category || title.length > MAX_TITLE_CHARS) return;
    const tokens = titleTokens(title);
    if ([...historyTokens, ...chosenTokens].some((h) => jaccard(tokens, h) >= NEAR_COPY_JACCARD)) return;
    if (guard.conflictOnce(title, id, shown)) return;
    chosen.push({ title, abstract: clip(cleanGeneratedText(news.abstract) ?? "", MAX_ABSTRACT_CHARS), category, retrievedFrom: id });
    chosenTokens.push(tokens);
  };
  const ranked = index.similar([...read], skip);
  try {
    if (profileTopics?.length) {
      const wanted = topicBits(profileTopics);
      const pool: { id: string; score: number; at: number }[] = [];
      // next() rather than for-of: a break would close the generator the fallback loop below resumes.
      while (pool.length < CHAIN_POOL) {
        const r = ranked.next();
        if (r.done) break;
        const boost = (topicsOf(index, catalog, r.value.id) & wanted) !== 0 ? CHAIN_BOOST : 1;
        pool.push({ id: r.value.id, score: r.value.score * boost, at: pool.length });
      }
      for (const c of pool.sort((a, b) => b.score - a.score || a.at - b.at)) {
        if (chosen.length === k) break;
        consider(c.id);
      }
    }
    // Checked before the next is drawn: past its first 64 the ranking sorts every touched news (up to
    // 32k), which a user served by the pool above must not pay for. Closed however this ends: the
    // index's score buffers are cleared when its generator finishes.
    while (chosen.length < k) {
      const r = ranked.next();
      if (r.done) break;
      if (!chosen.some((c) => c.retrievedFrom === r.value.id)) consider(r.value.id);
    }
  } finally {
    ranked.return(undefined);
  }
  return { items: chosen };
}

function catalogFingerprint(catalog: Catalog): string {
  const h = createHash("sha256");
  for (const n of catalog.news.values()) h.update(JSON.stringify([n.id, n.category, n.title, n.abstract])).update("\n");
  return h.digest("hex");
}

/** One index and one fingerprint per catalog: built on first use, shared by every request of the run. */
const retrieval = new WeakMap<Catalog, { index?: TfIdfIndex; fingerprint?: string }>();

export function retrievalOf(catalog: Catalog) {
  let r = retrieval.get(catalog);
  if (!r) retrieval.set(catalog, (r = {}));
  return {
    // The texts one at a time: the catalog decodes a news field each time it is read.
    index: () => (r.index ??= new TfIdfIndex((function* () {
      for (const n of catalog.news.values()) yield { id: n.id, text: `${n.title} ${n.abstract}` };
    })())),
    // The offline answer depends on the whole retrieval corpus, which the prompt does not show.
    fingerprint: () => (r.fingerprint ??= catalogFingerprint(catalog)),
  };
}

export const generateStage: Stage<GenerateOptions, GenerateOutput, ChainProfiles> = {
  name: "generate",
  kind: "users",
  command: {
    summary: "write k pseudo-news items for every cold user (GENRE's content generator; --chain for UP→CG)",
    details: `A cold user has 1 to --cold-max clicks (empty histories are skipped); their history is shown as
"(n) (category) title" lines (prompts/generate.*.md). One request asks for --k items
{"title", "abstract", "category"}, category among the 18 MIND categories. Items must differ from
each other and from the history: a title whose word set (lower case, function words dropped) has
Jaccard similarity ≥ ${NEAR_COPY_JACCARD} with another is a near copy, and the answer is re-asked.
--chain puts the user's profile topics before the history (prompts/generate.chain.user.md); it reads
<out>/profile.jsonl and stops when it is missing or lacks more than --max-failure-share of the users.
Offline: retrieval standing in for generation — the k most similar unread catalog news by TF-IDF
over titles and abstracts, each marked with retrievedFrom.

${HISTORY_RULE_HELP}`,
  },
  flags: { "cold-max": COLD_MAX_FLAG, k: K_FLAG, chain: CHAIN_FLAG },
  config: GenerateConfig,
  options: generateOptions,
  metaOptions: (options) => ({ coldMax: options.coldMax, k: options.k, chain: options.chain }),
  output: GenerateOutput,
  merge: generateMerge,
  report: generateReport,
  augment: augmentChained,
  describeItems: (catalog, options, items) => describeSources("generate", catalog.users, catalog.timeline, items, options.coldMax),
  async prepare(input, items, at) {
    if (!input.options.chain) return { items, prepared: new ChainProfiles() };
    const trial = at.config.limit !== undefined;
    const { profiles, kept } = await loadProfiles(at.out, input.catalog, items, at.config["max-failure-share"], at.ctx, trial);
    return { items: kept, prepared: profiles };
  },
  templates: (options) => ({
    system: { file: "generate.system.md", known: ["category_vocabulary", "k"], required: [] },
    user: options.chain
      ? { file: "generate.chain.user.md", known: ["history", "k", "topics"], required: ["history", "topics"] }
      : { file: "generate.user.md", known: ["history", "k"], required: ["history"] },
  }),
  usesCandidates: true,
  items: (catalog, options) => [...catalog.users.keys()].filter((u) => coldClicks(catalog, u, options) !== undefined),
  whyNot: (catalog, options, id) => whyNotCold("generate", catalog, options, id),
  *requests(input, itemIds, profiles) {
    const { catalog, options } = input;
    const system = render(input.system, { category_vocabulary: MIND_CATEGORIES.join(", "), k: String(options.k) });
    const jsonSchema = generateJsonSchema();
    const retrieval = retrievalOf(catalog);
    const fingerprint = retrieval.fingerprint();
    const guard = candidateGuard(catalog);
    for (const id of itemIds) {
      const history = coldClicks(catalog, id, options);
      if (!history) throw new Error(`generate: ${id} is not a cold user`);
      const shown = input.candidates?.get(id) ?? [];
      const values: Record<string, string> = { history: numberedTitles(history, true), k: String(options.k) };
      const source = sourceOf(catalog, id, history);
      const profile = profiles?.get(id);
      if (options.chain) {
        if (!profile) throw new Error(`generate --chain: no profile for user ${id}`);
        values.topics = profile.topics.join(", ");
        // The topics were written from the profile's clicks: the answer derives from those too.
        for (const c of profile.source.clicks) if (!source.clicks.includes(c)) source.clicks.push(c);
      }
      yield {
        stage: "generate",
        itemId: id,
        system,
        user: render(input.user, values),
        jsonSchema,
        schemaVersion: GENERATE_SCHEMA_VERSION,
        maxTokens: 250 * options.k + 100,
        // A headline, a two-sentence abstract and a category per item, as JSON.
        expectedOutputTokens: 90 * options.k + 10,
        // The offline answer avoids the user's candidates, which the prompt does not show.
        offlineInputs: sha256(fingerprint, source.split, ...[...shown].sort()),
        parse: (raw) => parseGenerated(raw, { k: options.k, history, retrievable: retrievableIn(catalog, source.split) }),
        offline: () => JSON.stringify(offlineGenerated(retrieval.index(), catalog, history, options.k, source.split, profile?.topics, shown)),
        source,
        check: (value) => candidateProblem(value, shown, guard),
      } satisfies LlmRequest<GenerateOutput>;
    }
  },
};
