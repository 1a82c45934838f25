// factors, registered twice (one item kind per stage): factors-users reasons about each user's
// preferences along the factors of data/vocab/factors.json, from the clicks profile describes;
// factors-news states each news item's facts along the same factors. `augment --stages factors`
// runs both.
import { z } from "zod";
import type { LlmRequest } from "../../engine/types.js";
import { describeSources, HISTORY_RULE_HELP } from "../../mind/history-rule.js";
import { shingles } from "../plain-text.js";
import { numberedTitles, profileClicks, RECENT_FLAG, sourceOf, usersWithClicks, whyNoClicks, zRecent } from "../profile/index.js";
import type { Stage } from "../stage.js";
import { newsValues, titledNews, whyNotTitled } from "../summarize/index.js";
import { render, type Template } from "../template.js";
import {
  FACTOR_MAX_WORDS,
  FACTORS,
  FACTORS_SCHEMA_VERSION,
  factorExample,
  factorList,
  factorsJsonSchema,
  offlineFactorInputs,
  offlineNewsFactors,
  offlineUserFactors,
  parseFactors,
  type FactorKind,
} from "./factors.js";
import { factorsNewsMerge, factorsUsersMerge } from "./merge.js";
import { FactorsOutput } from "./output.js";
import { factorsNewsReport, factorsUsersReport } from "./report.js";

const GROUP = "factors";

/** A short text per factor, as JSON; most answers say a few words each. */
const MAX_TOKENS = 80 * FACTORS.length + 100;
const EXPECTED_TOKENS = 20 * FACTORS.length + 20;

/**
 * What every request of one side shares: its system prompt, the answer's schema and bounds, and the
 * parser, which checks against the system prompt's 6-word sequences (an answer copying one repeats
 * the instructions).
 */
function sideOf(system: Template, kind: FactorKind) {
  const text = render(system, { factors: factorList(FACTORS, kind), example: factorExample(FACTORS) });
  const instructions = shingles(text);
  return {
    system: text,
    jsonSchema: factorsJsonSchema(FACTORS),
    schemaVersion: FACTORS_SCHEMA_VERSION,
    // Its system prompt is long (the factor table) and the same for every item: packing saves most here.
    packable: true,
    maxTokens: MAX_TOKENS,
    expectedOutputTokens: EXPECTED_TOKENS,
    parse: (raw: string) => parseFactors(raw, FACTORS, kind, instructions),
  };
}

const details = (what: string) => `${what}
The factors, what the prompt asks of each, and how the offline answer fills it are in
data/vocab/factors.json (${FACTORS.map((f) => f.name).join(", ")}); editing it changes the system prompt, so the
stage asks again. Answer: one JSON object with a text of at most ${FACTOR_MAX_WORDS} words per factor, "none" when
nothing applies ("N/A", "unknown" are read as none; a list is joined with commas); a missing factor,
an empty text, a reply about the task or a copy of the instructions is re-asked.`;

export const factorsUsersStage: Stage<{ recent: number }, FactorsOutput> = {
  name: "factors-users",
  kind: "users",
  group: GROUP,
  optIn: true,
  command: {
    summary: "state every user's preferences along the factors of data/vocab/factors.json (KAR's factorization prompting)",
    details: `${details(`Every user with a non-empty history is shown the titles of their --recent most recent clicks as
"(n) (category) title" lines (prompts/factors.users.*.md), and the model reasons about what they
prefer along each factor. Offline: per factor, the values their clicks give most often.`)}
merge writes <split>/user_factors.tsv: User ID, then one column per factor.

${HISTORY_RULE_HELP}`,
  },
  flags: { recent: RECENT_FLAG },
  config: z.object({ recent: zRecent }),
  options: (config) => ({ recent: z.object({ recent: zRecent }).parse(config).recent }),
  metaOptions: (options) => ({ recent: options.recent, factors: FACTORS.map((f) => f.name) }),
  templates: () => ({
    system: { file: "factors.users.system.md", known: ["factors", "example"], required: ["factors"] },
    user: { file: "factors.users.user.md", known: ["history", "count"], required: ["history"] },
  }),
  items: (catalog, options) => usersWithClicks(catalog, options.recent),
  whyNot: (catalog, options, id) => whyNoClicks("factors-users", catalog, options.recent, id),
  describeItems: (catalog, _options, items) => describeSources("factors-users", catalog.users, catalog.timeline, items),
  *requests(input, itemIds) {
    const side = sideOf(input.system, "user");
    for (const id of itemIds) {
      const clicks = profileClicks(input.catalog, id, input.options.recent);
      const request: LlmRequest<FactorsOutput> = {
        ...side,
        stage: "factors-users",
        itemId: id,
        user: render(input.user, { history: numberedTitles(clicks, true), count: String(clicks.length) }),
        offlineInputs: offlineFactorInputs(clicks),
        offline: () => JSON.stringify(offlineUserFactors(clicks)),
        source: sourceOf(input.catalog, id, clicks),
      };
      yield request;
    }
  },
  output: FactorsOutput,
  merge: factorsUsersMerge,
  report: factorsUsersReport,
};

export const factorsNewsStage: Stage<Record<string, never>, FactorsOutput> = {
  name: "factors-news",
  kind: "news",
  group: GROUP,
  optIn: true,
  command: {
    summary: "state every news item's facts along the factors of data/vocab/factors.json (KAR's factorization prompting)",
    details: `${details(`Every distinct news ID with a title is shown with its title, abstract, category and subcategory
(prompts/factors.news.*.md), and the model states its facts along each factor, including what the
title leaves implicit. Offline: from the subcategory, the entities (places through the gazetteer)
and title words.`)}
merge writes <split>/news_factors.tsv: News ID, then one column per factor, for the news with a record.`,
  },
  flags: {},
  config: z.object({}),
  options: () => ({}),
  metaOptions: () => ({ factors: FACTORS.map((f) => f.name) }),
  templates: () => ({
    system: { file: "factors.news.system.md", known: ["factors", "example"], required: ["factors"] },
    user: { file: "factors.news.user.md", known: ["title", "abstract", "category", "subcategory"], required: ["title"] },
  }),
  items: (catalog) => titledNews(catalog),
  whyNot: (catalog, _options, id) => whyNotTitled("factors-news", catalog, id),
  *requests(input, itemIds) {
    const side = sideOf(input.system, "news");
    for (const id of itemIds) {
      const news = input.catalog.news.get(id);
      if (!news) throw new Error(`factors-news: unknown news ${id}`);
      const request: LlmRequest<FactorsOutput> = {
        ...side,
        stage: "factors-news",
        itemId: id,
        user: render(input.user, newsValues(news)),
        offlineInputs: offlineFactorInputs([news]),
        offline: () => JSON.stringify(offlineNewsFactors(news)),
      };
      yield request;
    }
  },
  output: FactorsOutput,
  merge: factorsNewsMerge,
  report: factorsNewsReport,
};
