import { NEAR_COPY_JACCARD } from "../stages/normalize.js";
import { HISTORY_RULE_HELP, stageFlagOptions } from "../stages/options.js";
import { defineStageCommand } from "./stage-command.js";

export const generateCommand = defineStageCommand(
  "generate",
  "write k pseudo-news items for every cold user (GENRE's content generator; --chain for UP→CG)",
  { "cold-max": stageFlagOptions["cold-max"], k: stageFlagOptions.k, chain: stageFlagOptions.chain },
  `A cold user has 1 to --cold-max clicks (empty histories are skipped); their history is shown as
"(n) (category) title" lines (prompts/generate.*.md). One request asks for --k items
{"title", "abstract", "category"}, category among the 18 MIND categories. Items must differ from
each other and from the history: a title whose word set (lower case, function words dropped) has
Jaccard similarity ≥ ${NEAR_COPY_JACCARD} with another is a near copy, and the answer is re-asked.
--chain puts the user's profile topics before the history (prompts/generate.chain.user.md); it reads
<out>/profile.jsonl and stops when it is missing or lacks more than --max-failure-share of the users.
Offline: retrieval standing in for generation — the k most similar unread catalog news by TF-IDF
over titles and abstracts, each marked with retrievedFrom.

${HISTORY_RULE_HELP}`,
);
