// What merge does with profile records: <split>/user_profiles.tsv, one line per user whose profile
// was written from clicks that split's history holds (history-rule.ts rule 3).
import type { StageRecords } from "../../merge/records.js";
import type { StageMerge } from "../../merge/stage-merge.js";
import { LIST_SEPARATOR } from "../../mind/text.js";
import { dedupe } from "../normalize.js";
import type { ProfileOutput } from "./output.js";

export const USER_PROFILES_COLUMNS = ["User ID", "Topics", "Regions"];

/** A profile as merge keeps it: `topics<TAB>regions`, each list joined with LIST_SEPARATOR (the user_profiles.tsv columns). */
export const profileMerge: StageMerge<ProfileOutput, string, StageRecords<string>> = {
  noun: "profiles",
  value: (output, intern) => ({ ok: true, value: intern(`${dedupe(output.topics).join(LIST_SEPARATOR)}\t${dedupe(output.regions).join(LIST_SEPARATOR)}`) }),
  open: (records) => records,
  covers: (_records, id, input) => input.users.sourceLength(id) > 0,
  historyCap: () => 1,
  userCounts: (_records, _input, applied) => ({ profiled: applied.size }),
  users: {
    file: {
      name: "user_profiles.tsv",
      columns: USER_PROFILES_COLUMNS,
      columnsKey: "userProfilesColumns",
      about: `user ID, topics, regions ('${LIST_SEPARATOR}' between entries), for that split's users`,
    },
    count: { key: "profiles", one: "profile", many: "profiles" },
    audit: { key: "profiles", one: "profile row", many: "profile rows", noun: "profile" },
    line: (records, userId) => `${userId}\t${records.byItem.get(userId)!.value}`,
  },
};
