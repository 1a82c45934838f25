// What merge does with generate records: each item becomes a pseudo-news row (subcategory
// `generated`) appended to its user's history in the splits the record applies to.
import type { StageRecords } from "../../merge/records.js";
import type { StageMerge } from "../../merge/stage-merge.js";
import { DEFAULT_COLD_MAX, isCold } from "../../mind/history-rule.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { COLD_FLAG, ColdConfig, coldMode, type ColdMode } from "../options.js";
import type { GenerateOutput, PseudoNews } from "./output.js";

/** Subcategory of every pseudo-news row, so a trainer or analysis can tell them from real news. */
export const PSEUDO_SUBCATEGORY = "generated";

interface State {
  records: StageRecords<PseudoNews[]>;
  coldMax: number;
  cold: ColdMode;
}

/** The --cold-max a cold users stage (generate, pick) ran with, which says which users it covers. */
export function coldMaxFrom(records: StageRecords): number {
  // The stage records its --cold-max in StageMeta options (Stage.metaOptions).
  for (const { meta } of records.metas) {
    const value = meta.options.coldMax;
    if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  }
  return DEFAULT_COLD_MAX;
}

export const generateMerge: StageMerge<GenerateOutput, PseudoNews[], State> = {
  noun: "users with pseudo-news",
  value(output, intern) {
    const items: PseudoNews[] = [];
    for (const item of output.items) {
      const title = cleanGeneratedText(item.title);
      if (!title) return { ok: false, error: "a pseudo-news title is empty after cleaning" };
      const kept: PseudoNews = { title, abstract: cleanGeneratedText(item.abstract) ?? "", category: intern(item.category) };
      if (item.retrievedFrom !== undefined) kept.retrievedFrom = item.retrievedFrom;
      items.push(kept);
    }
    return { ok: true, value: items };
  },
  flags: { cold: COLD_FLAG },
  config: ColdConfig,
  open: (records, options) => ({ records, coldMax: coldMaxFrom(records), cold: coldMode(options) }),
  active: (state) => state.cold !== "pick",
  manifestOptions: (state) => ({ cold: state.cold }),
  covers: (state, id, input) => isCold(input.users.sourceLength(id), state.coldMax),
  historyCap: (state) => state.coldMax + 1,
  userCounts(state, input) {
    let cold = 0;
    for (const userId of input.users.ids()) if (isCold(input.users.sourceLength(userId), state.coldMax)) cold++;
    return { cold };
  },
  addsNews: {
    rows: (state, userId) =>
      state.records.byItem.get(userId)!.value.map((item) => ({
        row: {
          category: item.category,
          subcategory: PSEUDO_SUBCATEGORY,
          title: item.title,
          abstract: item.abstract,
          url: "",
          titleEntities: "[]",
          abstractEntities: "[]",
        },
        retrievedFrom: item.retrievedFrom,
      })),
  },
};
