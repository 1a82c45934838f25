// What merge does with factors records: <split>/user_factors.tsv (a line per user whose record this
// split's history allows, history-rule.ts rule 3) and <split>/news_factors.tsv (a line per news row
// with a record); after the ID, one column per factor of data/vocab/factors.json, in its order.
import type { StageRecords } from "../../merge/records.js";
import type { StageMerge } from "../../merge/stage-merge.js";
import type { ParseResult } from "../../engine/types.js";
import { cleanGeneratedText, tsvField } from "../../mind/text.js";
import { FACTORS } from "./factors.js";
import type { FactorsOutput } from "./output.js";

export const USER_FACTORS_COLUMNS = ["User ID", ...FACTORS.map((f) => f.name)];
export const NEWS_FACTORS_COLUMNS = ["News ID", ...FACTORS.map((f) => f.name)];

/** A record as merge keeps it: its texts in the table's order, tab-joined (the columns after the ID). */
function factorColumns(output: FactorsOutput, intern: (text: string) => string): ParseResult<string> {
  const texts: string[] = [];
  for (const f of FACTORS) {
    const text = output[f.name] === undefined ? undefined : cleanGeneratedText(output[f.name]!);
    // A record from before an edit of data/vocab/factors.json lacks the new factor.
    if (text === undefined) return { ok: false, error: `no text for the factor '${f.name}' (data/vocab/factors.json changed since the record was written?)` };
    texts.push(intern(text));
  }
  return { ok: true, value: texts.join("\t") };
}

export const factorsUsersMerge: StageMerge<FactorsOutput, string, StageRecords<string>> = {
  noun: "users with factors",
  value: factorColumns,
  open: (records) => records,
  covers: (_records, id, input) => input.users.sourceLength(id) > 0,
  historyCap: () => 1,
  users: {
    file: { name: "user_factors.tsv", columns: USER_FACTORS_COLUMNS, columnsKey: "userFactorsColumns", about: "user ID, a text per factor, for that split's users" },
    count: { key: "userFactors", one: "user factors row", many: "user factors rows" },
    audit: { key: "userFactors", one: "user factors row", many: "user factors rows", noun: "user factors" },
    line: (records, userId) => `${userId}\t${records.byItem.get(userId)!.value}`,
  },
};

export const factorsNewsMerge: StageMerge<FactorsOutput, string, StageRecords<string>> = {
  noun: "news with factors",
  value: factorColumns,
  open: (records) => records,
  covers: (_records, id, input) => input.news.has(id),
  news: {
    count: { key: "newsFactors", one: "news factors row", many: "news factors rows" },
    file: { name: "news_factors.tsv", columns: NEWS_FACTORS_COLUMNS, columnsKey: "newsFactorsColumns", about: "news ID and a text per factor, for the news with factors" },
    edit(records, row) {
      const columns = records.byItem.get(row.id)?.value;
      return { row, counted: columns !== undefined, line: columns === undefined ? undefined : `${tsvField(row.id)}\t${columns}` };
    },
  },
};
