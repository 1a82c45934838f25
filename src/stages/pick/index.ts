// pick (LLMRec, Wei et al. WSDM'24; Wang et al. 2024): for each cold user, the model picks from a
// fixed list of real catalog news the ones the user would most likely click. The picks are real
// news IDs that merge appends to the user's history, like generate's pseudo-news, with no new rows.
import { z } from "zod";
import { zInt, type OptionSpec } from "../../cli/command.js";
import type { LlmRequest, ParseResult } from "../../engine/types.js";
import type { Catalog, CatalogNews } from "../../mind/catalog.js";
import { describeSources, HISTORY_RULE_HELP, type CandidateGuard } from "../../mind/history-rule.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { candidateGuard, coldClicks, retrievableIn, retrievalOf, whyNotCold } from "../generate/index.js";
import { extractJson } from "../../util/json.js";
import { jaccard, NEAR_COPY_JACCARD, titleTokens } from "../normalize.js";
import { COLD_MAX_FLAG, K_FLAG, zColdMax, zK } from "../options.js";
import { numberedTitles, sourceOf } from "../profile/index.js";
import type { Stage } from "../stage.js";
import { render } from "../template.js";
import type { TfIdfIndex } from "../tfidf.js";
import { pickMerge } from "./merge.js";
import { PickOutput } from "./output.js";
import { pickReport } from "./report.js";

export const PICK_SCHEMA_VERSION = "pick-1";

/** Catalog news offered to each cold user (`--candidates`). */
export const DEFAULT_CANDIDATES = 20;

/** Structured output: a list of candidate numbers (the count is in the prompt; Anthropic's schemas take no minItems above 1). */
export function pickJsonSchema(): Record<string, unknown> {
  return {
    type: "object",
    properties: { picks: { type: "array", items: { type: "integer" } } },
    required: ["picks"],
    additionalProperties: false,
  };
}

/**
 * The candidates of a cold user: up to `n` catalog news most similar to their history (TF-IDF over
 * title and abstract, cosine to the sum of the history; ties by ID), best first. Only news of the
 * user's source split (a pick goes into that split's history, whose news.tsv must hold it); never a
 * news item they read or one of their impressions in any split (`shown`), nor a near copy of either
 * (history-rule.ts rule 4), nor a near copy of a candidate already listed.
 */
export function pickCandidates(
  index: TfIdfIndex,
  catalog: Catalog,
  guard: CandidateGuard,
  history: readonly CatalogNews[],
  shown: readonly string[],
  split: string,
  n: number,
): CatalogNews[] {
  const read = history.map((h) => h.id);
  const skip = new Set([...read, ...shown]);
  const seen = history.map((h) => titleTokens(h.title));
  const chosen: CatalogNews[] = [];
  const retrievable = retrievableIn(catalog, split);
  for (const { id } of index.similar(read, skip)) {
    if (chosen.length === n) break;
    if (!retrievable(id)) continue;
    const news = catalog.news.get(id)!;
    if (!cleanGeneratedText(news.title)) continue;
    const tokens = titleTokens(news.title);
    if (seen.some((s) => jaccard(tokens, s) >= NEAR_COPY_JACCARD)) continue;
    if (guard.firstConflict(guard.news(id), shown)) continue;
    chosen.push(news);
    seen.push(tokens);
  }
  return chosen;
}

/** `[1] (sports) Texans beat Colts`: the candidates as the prompt numbers them. */
export function numberedCandidates(candidates: readonly CatalogNews[]): string {
  return candidates.map((n, i) => `[${i + 1}] (${n.category}) ${cleanGeneratedText(n.title)}`).join("\n");
}

const CANDIDATE_NUMBER = /^\s*\[?\s*(\d+)\s*\]?\s*$/;

/**
 * `{"picks": [3, 17]}` (a bare list, and numbers written as "3" or "[3]", are read too): exactly `k`
 * distinct numbers of the candidate list, best first; the value holds the picked news IDs.
 */
export function parsePicks(raw: string, candidates: readonly string[], k: number): ParseResult<PickOutput> {
  const json = extractJson(raw);
  if (!json.ok) return json;
  const v = json.value;
  const list: unknown = Array.isArray(v) ? v : typeof v === "object" && v !== null && "picks" in v ? (v as { picks: unknown }).picks : undefined;
  const shape = `the answer must be a JSON object {"picks": [..]} with the numbers of the ${k} candidates, best first`;
  if (!Array.isArray(list)) return { ok: false, error: shape };
  const problems: string[] = [];
  const numbers: number[] = [];
  for (const entry of list) {
    const m = typeof entry === "number" ? (Number.isInteger(entry) ? String(entry) : undefined) : typeof entry === "string" ? CANDIDATE_NUMBER.exec(entry)?.[1] : undefined;
    const n = m === undefined ? Number.NaN : Number(m);
    if (Number.isNaN(n)) problems.push(`${JSON.stringify(entry)} is not a candidate number`);
    else if (n < 1 || n > candidates.length) problems.push(`${n} is not a candidate number (1 to ${candidates.length})`);
    else if (numbers.includes(n)) problems.push(`${n} is picked more than once; the picks must be distinct`);
    else numbers.push(n);
  }
  if (list.length !== k) problems.unshift(`expected exactly ${k} picks, got ${list.length}`);
  if (problems.length) return { ok: false, error: problems.join("; ") };
  return { ok: true, value: { picks: numbers.map((n) => candidates[n - 1]!) } };
}

/** Offline baseline: the first k candidates, i.e. the top k of the retrieval. */
export function offlinePicks(k: number): string {
  return JSON.stringify({ picks: Array.from({ length: k }, (_, i) => i + 1) });
}

/**
 * history-rule.ts rule 4 for an answer the item did not get from its own prompt (shared or stored):
 * a pick that is, or is a near copy of, a news item of the user's impressions is refused. The error
 * names the pick's place, not the story, so the model cannot learn what the user was shown.
 */
export function pickProblem(value: PickOutput, shown: readonly string[], guard: CandidateGuard): string | undefined {
  const problems: string[] = [];
  value.picks.forEach((id, i) => {
    if (guard.firstConflict(guard.news(id), shown)) problems.push(`pick ${i + 1} is a news story this user was already shown; choose another candidate`);
  });
  return problems.length ? problems.join("; ") : undefined;
}

export interface PickOptions {
  coldMax: number;
  /** Picks asked per user (fewer when the list is shorter). */
  k: number;
  /** Catalog news offered per user. */
  candidates: number;
}

const PickConfig = z.object({ "cold-max": zColdMax, k: zK, candidates: zInt(1, 100).default(DEFAULT_CANDIDATES) });
const CANDIDATES_FLAG: OptionSpec = { type: "string", arg: "<n>", description: `catalog news offered to each cold user, most similar to their history first (default ${DEFAULT_CANDIDATES})` };

/** Every pick of an answer is one of this user's candidates (an answer shared or stored for another user may not be). */
function notOffered(value: PickOutput, offered: readonly string[]): string | undefined {
  const i = value.picks.findIndex((id) => !offered.includes(id));
  return i < 0 ? undefined : `pick ${i + 1} is not on this user's candidate list; choose from the list`;
}

export const pickStage: Stage<PickOptions, PickOutput> = {
  name: "pick",
  kind: "users",
  optIn: true,
  command: {
    summary: "pick the k real news every cold user would most likely click next (LLMRec-style picked clicks)",
    details: `A cold user has 1 to --cold-max clicks (empty histories are skipped), shown as "(n) (category) title"
lines (prompts/pick.*.md), with a numbered list of --candidates catalog news retrieved by TF-IDF over
titles and abstracts from that history: only news of the user's source split, never one they read or
one of their impressions in any split, nor a near copy (Jaccard ≥ ${NEAR_COPY_JACCARD} on title words) of either.
Answer: {"picks": [3, 17]}, exactly --k distinct numbers of the list, best first (fewer when the list is
shorter than --k). Offline: the top k of the retrieval.
merge --cold pick (or both) appends the picked IDs to the user's history in the splits the record
applies to and whose news.tsv holds them: real news, no new rows.

${HISTORY_RULE_HELP}`,
  },
  flags: { "cold-max": COLD_MAX_FLAG, k: K_FLAG, candidates: CANDIDATES_FLAG },
  config: PickConfig,
  options(config) {
    const c = PickConfig.parse(config);
    return { coldMax: c["cold-max"], k: c.k, candidates: c.candidates };
  },
  metaOptions: (options) => ({ coldMax: options.coldMax, k: options.k, candidates: options.candidates }),
  templates: () => ({
    system: { file: "pick.system.md", known: [], required: [] },
    user: { file: "pick.user.md", known: ["history", "candidates", "k"], required: ["history", "candidates"] },
  }),
  usesCandidates: true,
  items: (catalog, options) => [...catalog.users.keys()].filter((u) => coldClicks(catalog, u, options) !== undefined),
  whyNot: (catalog, options, id) => whyNotCold("pick", catalog, options, id),
  describeItems: (catalog, options, items) => describeSources("pick", catalog.users, catalog.timeline, items, options.coldMax),
  *requests(input, itemIds) {
    const { catalog, options } = input;
    const system = render(input.system, {});
    const jsonSchema = pickJsonSchema();
    const index = retrievalOf(catalog).index();
    const guard = candidateGuard(catalog);
    for (const id of itemIds) {
      const history = coldClicks(catalog, id, options);
      if (!history) throw new Error(`pick: ${id} is not a cold user`);
      const shown = input.candidates?.get(id) ?? [];
      const source = sourceOf(catalog, id, history);
      const offered = pickCandidates(index, catalog, guard, history, shown, source.split, options.candidates);
      // A catalog too small to offer anything (a toy split): nothing to ask.
      if (offered.length === 0) continue;
      const ids = offered.map((n) => n.id);
      const k = Math.min(options.k, ids.length);
      const request: LlmRequest<PickOutput> = {
        stage: "pick",
        itemId: id,
        system,
        user: render(input.user, { history: numberedTitles(history, true), candidates: numberedCandidates(offered), k: String(k) }),
        jsonSchema,
        schemaVersion: PICK_SCHEMA_VERSION,
        maxTokens: 100 + 10 * k,
        // {"picks": [3, 17]}
        expectedOutputTokens: 6 + 3 * k,
        // The numbers of the prompt stand for these IDs: two users share an answer only when they mean the same news.
        keyInputs: ids.join(" "),
        parse: (raw) => parsePicks(raw, ids, k),
        offline: () => offlinePicks(k),
        source,
        check: (value) => notOffered(value, ids) ?? pickProblem(value, shown, guard),
      };
      yield request;
    }
  },
  output: PickOutput,
  merge: pickMerge,
  report: pickReport,
};
