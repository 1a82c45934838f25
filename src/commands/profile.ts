import { HISTORY_RULE_HELP, stageFlagOptions } from "../stages/options.js";
import { defineStageCommand } from "./stage-command.js";

export const profileCommand = defineStageCommand(
  "profile",
  "profile every user with clicks: ordered topics (19-topic vocabulary) and US-state regions",
  { recent: stageFlagOptions.recent },
  `Every user with a non-empty history is described by the numbered titles of their --recent most
recent clicks (prompts/profile.*.md). Answer: {"topics": [...], "regions": [...]}, topics from
data/vocab/topics.json (at least one), regions US states (may be empty). Near misses are mapped
before validation (case, plurals, "TX" → "Texas", "tech" → "technology": data/vocab/aliases.json);
any other value is invalid and is re-asked with the error.
Offline: topics voted by the clicked news' categories/subcategories (data/vocab/category-topics.json),
regions from their place entities through data/gazetteer/us-cities.json.

${HISTORY_RULE_HELP}`,
);
