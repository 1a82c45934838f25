// What merge does with summarize records: the title column of a news row per --title, and
// news_titles.tsv (ID, original title, enhanced title) beside news.tsv.
import { z } from "zod";
import type { StageMerge } from "../../merge/stage-merge.js";
import type { StageRecords } from "../../merge/records.js";
import { cleanGeneratedText, tsvField } from "../../mind/text.js";
import type { SummarizeOutput } from "./output.js";

export const TITLE_MODES = ["replace", "append", "keep"] as const;
export const TitleMode = z.enum(TITLE_MODES);
export type TitleMode = z.infer<typeof TitleMode>;

const TitleConfig = z.object({ title: TitleMode.default("replace") });

export const NEWS_TITLES_COLUMNS = ["News ID", "Original title", "Enhanced title"];

/** The title column of a row under --title: one rule for real news and for pseudo-news taken from one. */
function titleFor(mode: TitleMode, original: string, enhanced: string | undefined): string {
  return enhanced === undefined || mode === "keep" ? original : mode === "replace" ? enhanced : `${original} ${enhanced}`;
}

interface State {
  records: StageRecords<string>;
  mode: TitleMode;
}

export const summarizeMerge: StageMerge<SummarizeOutput, string, State> = {
  noun: "titles",
  flags: { title: { type: "string", arg: "<mode>", description: "replace (default: the title column is the enhanced title) | append | keep" } },
  config: TitleConfig,
  value(output) {
    const title = cleanGeneratedText(output.title);
    return title ? { ok: true, value: title } : { ok: false, error: "empty title after cleaning" };
  },
  open: (records, options) => ({ records, mode: TitleConfig.parse(options).title }),
  manifestOptions: (state) => ({ title: state.mode }),
  covers: (_state, id, input) => input.news.has(id),
  news: {
    count: { key: "titlesEnhanced", one: "enhanced title", many: "enhanced titles" },
    file: { name: "news_titles.tsv", columns: NEWS_TITLES_COLUMNS, columnsKey: "newsTitlesColumns", about: "original and enhanced titles" },
    edit(state, row, original) {
      const better = state.records.byItem.get(row.id)?.value;
      const title = titleFor(state.mode, row.title, better);
      return {
        row: title === row.title ? row : { ...row, title },
        // An answer equal to the original title enhanced nothing, so it is not counted as enhanced.
        counted: better !== undefined && better !== cleanGeneratedText(original.title),
        line: `${tsvField(original.id)}\t${tsvField(original.title)}\t${better ?? ""}`,
      };
    },
  },
};
