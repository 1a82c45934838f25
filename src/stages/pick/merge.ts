// What merge does with pick records under --cold pick or both: each cold user's picked news IDs go
// to the end of their history in the splits the record applies to (history-rule.ts rule 3) and whose
// news.tsv holds them; no news row is added.
import type { StageRecords } from "../../merge/records.js";
import type { StageMerge } from "../../merge/stage-merge.js";
import { isCold } from "../../mind/history-rule.js";
import { coldMaxFrom } from "../generate/merge.js";
import { COLD_FLAG, ColdConfig, coldMode, type ColdMode } from "../options.js";
import type { PickOutput } from "./output.js";

interface State {
  records: StageRecords<readonly string[]>;
  coldMax: number;
  cold: ColdMode;
}

/** A news ID as a History column holds it: no white space, no dash (trainers split impressions on it). */
const NEWS_ID = /^[^\s-]+$/;

export const pickMerge: StageMerge<PickOutput, readonly string[], State> = {
  noun: "users with picks",
  flags: { cold: COLD_FLAG },
  config: ColdConfig,
  value(output, intern) {
    const bad = output.picks.find((id) => !NEWS_ID.test(id));
    if (bad !== undefined) return { ok: false, error: `'${bad}' is not a news ID` };
    return { ok: true, value: [...new Set(output.picks)].map(intern) };
  },
  open: (records, options) => ({ records, coldMax: coldMaxFrom(records), cold: coldMode(options) }),
  active: (state) => state.cold !== "pseudo",
  manifestOptions: (state) => ({ cold: state.cold }),
  covers: (state, id, input) => isCold(input.users.sourceLength(id), state.coldMax),
  historyCap: (state) => state.coldMax + 1,
  appendsNews: {
    ids: (state, userId) => state.records.byItem.get(userId)!.value,
    count: { key: "picks", one: "pick appended", many: "picks appended" },
    audit: { key: "picks", one: "appended pick", many: "appended picks", noun: "pick" },
  },
};
