// profile (GENRE's user profiler): ordered interest topics and US-state regions per user.
import categoryTopics from "../../../data/vocab/category-topics.json" with { type: "json" };
import gazetteer from "../../../data/gazetteer/us-cities.json" with { type: "json" };
import { z } from "zod";
import { zInt, type OptionSpec } from "../../cli/command.js";
import type { LlmRequest, ParseResult, RecordSource } from "../../engine/types.js";
import type { Catalog, CatalogNews } from "../../mind/catalog.js";
import { describeSources, HISTORY_RULE_HELP } from "../../mind/history-rule.js";
import { sha256 } from "../../util/hash.js";
import { entitiesOf, stateOfEntity } from "../entities.js";
import { extractJson } from "../../util/json.js";
import { dedupe, normalizeRegion, normalizeTopic, quoteList } from "../normalize.js";
import type { Stage } from "../stage.js";
import { render } from "../template.js";
import { TOPICS, US_STATES } from "../vocab.js";
import { profileMerge } from "./merge.js";
import { profileReport } from "./report.js";
import { ProfileOutput } from "./output.js";

// profile-2: records carry their source (history-rule.ts); profile-1 records are asked again.
export const PROFILE_SCHEMA_VERSION = "profile-2";

export const PROFILE_JSON_SCHEMA = {
  type: "object",
  properties: {
    topics: { type: "array", items: { type: "string", enum: [...TOPICS] } },
    regions: { type: "array", items: { type: "string", enum: [...US_STATES] } },
  },
  required: ["topics", "regions"],
  additionalProperties: false,
} as const;

// Lenient on shape (a comma-separated string for a list, regions left out), strict on values.
const stringList = z.union([z.array(z.string()), z.string().transform((s) => s.split(",").filter((x) => x.trim()))]);
const RawProfile = z.object({ topics: stringList, regions: stringList.nullish() });

/** A profile's values split by the stage's lists: those on them, normalized, in order, and the others as written. */
export interface ProfileLists {
  topics: string[];
  regions: string[];
  offTopics: string[];
  offRegions: string[];
}

/**
 * The one reading of which topics and regions are on the lists: the parser re-asks for the others,
 * and an import, which cannot re-ask, leaves them out (src/import/once.ts).
 */
export function onProfileLists(lists: { topics: readonly string[]; regions: readonly string[] }): ProfileLists {
  const out: ProfileLists = { topics: [], regions: [], offTopics: [], offRegions: [] };
  for (const t of lists.topics) {
    const n = normalizeTopic(t);
    if (n) out.topics.push(n);
    else out.offTopics.push(t);
  }
  for (const r of lists.regions) {
    const n = normalizeRegion(r);
    if (n) out.regions.push(n);
    else out.offRegions.push(r);
  }
  return out;
}

export function parseProfile(raw: string): ParseResult<ProfileOutput> {
  const json = extractJson(raw);
  if (!json.ok) return json;
  const shape = RawProfile.safeParse(json.value);
  if (!shape.success) {
    return { ok: false, error: 'the answer must be a JSON object {"topics": [...], "regions": [...]} with lists of strings' };
  }
  const { topics, regions, offTopics, offRegions } = onProfileLists({ topics: shape.data.topics, regions: shape.data.regions ?? [] });
  const problems: string[] = [];
  if (offTopics.length) problems.push(`${quoteList(offTopics)} ${offTopics.length > 1 ? "are not topics" : "is not a topic"} of the list; use only: ${TOPICS.join(", ")}`);
  if (offRegions.length) problems.push(`${quoteList(offRegions)} ${offRegions.length > 1 ? "are not US states" : "is not a US state"}; regions must be full names of the 50 US states, or an empty list`);
  if (problems.length === 0 && topics.length === 0) problems.push("give at least one topic");
  if (problems.length) return { ok: false, error: problems.join("; ") };
  const value = ProfileOutput.safeParse({ topics: dedupe(topics), regions: dedupe(regions) });
  if (!value.success) return { ok: false, error: value.error.issues[0]?.message ?? "invalid profile" };
  return { ok: true, value: value.data };
}

/** The clicks a profile describes: the most recent `recent`, most recent first, known news only. */
export function profileClicks(catalog: Catalog, userId: string, recent: number): CatalogNews[] {
  const history = catalog.users.get(userId)?.history;
  if (!history) return [];
  const out: CatalogNews[] = [];
  // recentClicks without the copies: this runs for every user.
  for (let i = history.length - 1; i >= Math.max(0, history.length - recent); i--) {
    const n = catalog.news.get(history[i]!);
    if (n) out.push(n);
  }
  return out;
}

/** The provenance of a prompt written from `clicks` of the user's source history. */
export function sourceOf(catalog: Catalog, userId: string, clicks: readonly CatalogNews[]): RecordSource {
  const split = catalog.users.get(userId)?.split;
  if (split === undefined || clicks.length === 0) throw new Error(`${userId} has no source history`);
  return { split, clicks: clicks.map((n) => n.id) };
}

export function numberedTitles(clicks: readonly CatalogNews[], withCategory: boolean): string {
  return clicks.map((n, i) => `(${i + 1}) ${withCategory ? `(${n.category}) ` : ""}${n.title.trim()}`).join("\n");
}

interface TopicTable {
  categories: Record<string, string[]>;
  subcategories: Record<string, string[]>;
  keywords: Record<string, string>;
  fallback: string;
}
const TABLE = categoryTopics as unknown as TopicTable;
for (const t of [...Object.values(TABLE.categories).flat(), ...Object.values(TABLE.subcategories).flat(), ...Object.values(TABLE.keywords), TABLE.fallback]) {
  if (!TOPICS.includes(t)) throw new Error(`data/vocab/category-topics.json: '${t}' is not one of the 19 topics`);
}

interface OfflineFacts {
  topics: readonly string[];
  keywordTopics: readonly string[];
  states: readonly string[];
}

/** Per news item, computed once per run: a news item is clicked by many users. */
const FACTS = new WeakMap<CatalogNews, OfflineFacts>();

function offlineFacts(n: CatalogNews): OfflineFacts {
  const known = FACTS.get(n);
  if (known) return known;
  const keywordTopics = titleKeywordTopics(n.title);
  const states = new Set<string>();
  for (const e of [...entitiesOf(n.titleEntities), ...entitiesOf(n.abstractEntities)]) {
    const s = stateOfEntity(e);
    if (s) states.add(s);
  }
  const facts = {
    topics: tableTopics(n),
    keywordTopics: [...keywordTopics],
    states: [...states],
  };
  FACTS.set(n, facts);
  return facts;
}

function titleKeywordTopics(title: string): Set<string> {
  const topics = new Set<string>();
  for (const w of title.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    const t = Object.hasOwn(TABLE.keywords, w) ? TABLE.keywords[w] : undefined;
    if (t) topics.add(t);
  }
  return topics;
}

function tableTopics(n: CatalogNews): readonly string[] {
  return Object.hasOwn(TABLE.subcategories, n.subcategory)
    ? TABLE.subcategories[n.subcategory]!
    : Object.hasOwn(TABLE.categories, n.category)
      ? TABLE.categories[n.category]!
      : [];
}

/**
 * The topics a news item votes for in the offline profile (category/subcategory and title keywords)
 * as a bit set over TOPICS. Not through offlineFacts' cache: the chained offline generate asks about
 * 64 news per cold user, and a cached object per news (with its states, which generate never reads)
 * kept tens of MB on the JS heap at MIND-large; the caller caches the number.
 */
export function newsTopicBits(n: CatalogNews): number {
  return topicBits([...tableTopics(n), ...titleKeywordTopics(n.title)]);
}

/** Topics as a bit set over TOPICS (19 of them); names outside it have no bit. */
export function topicBits(topics: Iterable<string>): number {
  let bits = 0;
  for (const t of topics) {
    const i = (TOPICS as readonly string[]).indexOf(t);
    if (i >= 0) bits |= 1 << i;
  }
  return bits;
}

/** Most votes first; ties by first vote (clicks are most recent first), so the order is stable. */
function ranked(votes: Map<string, number>): [string, number][] {
  return [...votes].map((e, i) => [e, i] as const).sort((a, b) => b[0][1] - a[0][1] || a[1] - b[1]).map(([e]) => e);
}

export const OFFLINE_MAX_TOPICS = 5;
export const OFFLINE_MAX_REGIONS = 3;

/**
 * Offline baseline. Topics: each click votes 1 for the topics of its subcategory (or, when the
 * subcategory is not in the table, of its category) and 0.5 for each topic a title keyword names;
 * topics with at least one full vote are kept, the best first (at most 5), else the best one,
 * else the table's fallback. Regions: each click votes once for every US state its `Type: G`
 * title/abstract entities resolve to through the gazetteer (at most 3).
 */
export function offlineProfile(clicks: readonly CatalogNews[]): ProfileOutput {
  const topicVotes = new Map<string, number>();
  const regionVotes = new Map<string, number>();
  const vote = (m: Map<string, number>, k: string, w: number) => m.set(k, (m.get(k) ?? 0) + w);
  for (const n of clicks) {
    const facts = offlineFacts(n);
    for (const t of facts.topics) vote(topicVotes, t, 1);
    for (const t of facts.keywordTopics) vote(topicVotes, t, 0.5);
    for (const s of facts.states) vote(regionVotes, s, 1);
  }
  const order = ranked(topicVotes);
  let topics = order.filter(([, v]) => v >= 1).map(([t]) => t).slice(0, OFFLINE_MAX_TOPICS);
  if (topics.length === 0) topics = order.length ? [order[0]![0]] : [TABLE.fallback];
  return { topics, regions: ranked(regionVotes).map(([s]) => s).slice(0, OFFLINE_MAX_REGIONS) };
}

/** What the offline profile reads from a row beyond its title, hashed once per news item. */
const ROW_HASHES = new WeakMap<CatalogNews, string>();
function offlineRowHash(n: CatalogNews): string {
  let h = ROW_HASHES.get(n);
  if (h === undefined) ROW_HASHES.set(n, (h = sha256(n.category, n.subcategory, n.titleEntities, n.abstractEntities)));
  return h;
}

const OFFLINE_TABLES = sha256(JSON.stringify(categoryTopics), JSON.stringify(gazetteer));

export interface ProfileOptions {
  /** Clicks described, most recent first. */
  recent: number;
}

/** --recent of the stages that describe a user from their recent clicks (profile, factors-users): one spec. */
export const RECENT_FLAG: OptionSpec = { type: "string", arg: "<n>", description: "clicks described per user, most recent first (default 30)" };
export const zRecent = zInt(1, 1000).default(30);
const ProfileConfig = z.object({ recent: zRecent });

/** The users a stage describes from their `recent` most recent clicks: those with a known one. */
export function usersWithClicks(catalog: Catalog, recent: number): string[] {
  return [...catalog.users.keys()].filter((u) => profileClicks(catalog, u, recent).length > 0);
}

/** Why `id` is not one of usersWithClicks. */
export function whyNoClicks(stage: string, catalog: Catalog, recent: number, id: string): string | undefined {
  const user = catalog.users.get(id);
  if (!user) return `no user ${id} in the given splits`;
  if (user.history.length === 0) return `user ${id} has an empty history in every split: ${stage} covers users with clicks only`;
  if (profileClicks(catalog, id, recent).length === 0) return `none of user ${id}'s recent clicks is in the given news files`;
  return undefined;
}

export const profileStage: Stage<ProfileOptions, ProfileOutput> = {
  name: "profile",
  kind: "users",
  command: {
    summary: "profile every user with clicks: ordered topics (19-topic vocabulary) and US-state regions",
    details: `Every user with a non-empty history is described by the numbered titles of their --recent most
recent clicks (prompts/profile.*.md). Answer: {"topics": [...], "regions": [...]}, topics from
data/vocab/topics.json (at least one), regions US states (may be empty). Near misses are mapped
before validation (case, plurals, "TX" → "Texas", "tech" → "technology": data/vocab/aliases.json);
any other value is invalid and is re-asked with the error.
Offline: topics voted by the clicked news' categories/subcategories (data/vocab/category-topics.json),
regions from their place entities through data/gazetteer/us-cities.json.

${HISTORY_RULE_HELP}`,
  },
  flags: { recent: RECENT_FLAG },
  config: ProfileConfig,
  options: (config) => ({ recent: ProfileConfig.parse(config).recent }),
  metaOptions: (options) => ({ recent: options.recent }),
  output: ProfileOutput,
  merge: profileMerge,
  report: profileReport,
  describeItems: (catalog, _options, items) => describeSources("profile", catalog.users, catalog.timeline, items),
  templates: () => ({
    system: { file: "profile.system.md", known: ["topic_vocabulary"], required: [] },
    user: { file: "profile.user.md", known: ["history", "count"], required: ["history"] },
  }),
  items: (catalog, options) => usersWithClicks(catalog, options.recent),
  whyNot: (catalog, options, id) => whyNoClicks("profile", catalog, options.recent, id),
  *requests(input, itemIds) {
    const system = render(input.system, { topic_vocabulary: TOPICS.join(", ") });
    for (const id of itemIds) {
      const clicks = profileClicks(input.catalog, id, input.options.recent);
      const user = render(input.user, { history: numberedTitles(clicks, false), count: String(clicks.length) });
      yield {
        stage: "profile",
        itemId: id,
        system,
        user,
        jsonSchema: PROFILE_JSON_SCHEMA as unknown as Record<string, unknown>,
        schemaVersion: PROFILE_SCHEMA_VERSION,
        packable: true,
        maxTokens: 400,
        // ~5 topics and ~0.3 regions (GENRE's averages) as compact JSON.
        expectedOutputTokens: 50,
        offlineInputs: sha256(OFFLINE_TABLES, ...clicks.map(offlineRowHash)),
        parse: parseProfile,
        offline: () => JSON.stringify(offlineProfile(clicks)),
        source: sourceOf(input.catalog, id, clicks),
      } satisfies LlmRequest<ProfileOutput>;
    }
  },
};
