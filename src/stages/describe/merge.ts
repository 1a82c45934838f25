// What merge does with describe records: <out>/category_descriptions.tsv beside the split folders
// (kind, name, description), always; with --describe title or abstract, each news row's subcategory
// description (its category's when the subcategory has none) goes into that column.
import { z } from "zod";
import type { StageRecords } from "../../merge/records.js";
import type { StageMerge } from "../../merge/stage-merge.js";
import type { NewsRow } from "../../mind/rows.js";
import { cleanGeneratedText, tsvField } from "../../mind/text.js";
import { CATEGORY_KINDS, categoryItemId, parseCategoryItemId } from "../kinds.js";
import type { DescribeOutput } from "./output.js";

export const DESCRIBE_MODES = ["none", "abstract", "title"] as const;
export type DescribeMode = (typeof DESCRIBE_MODES)[number];
const DescribeConfig = z.object({ describe: z.enum(DESCRIBE_MODES).default("none") });

/** Between a title and its description: the paper's "title [SEP] description" input of a language-model news encoder. */
export const TITLE_SEPARATOR = " [SEP] ";
export const CATEGORY_DESCRIPTIONS_FILE = "category_descriptions.tsv";
export const CATEGORY_DESCRIPTIONS_COLUMNS = ["Kind", "Name", "Description"];

interface State {
  records: StageRecords<string>;
  mode: DescribeMode;
}

/** The description a row gets: its subcategory's, else its category's. */
export function descriptionOf(byItem: ReadonlyMap<string, { value: string }>, row: Pick<NewsRow, "category" | "subcategory">): string | undefined {
  const sub = row.subcategory ? byItem.get(categoryItemId("subcategory", row.subcategory)) : undefined;
  return sub?.value ?? (row.category ? byItem.get(categoryItemId("category", row.category))?.value : undefined);
}

export const describeMerge: StageMerge<DescribeOutput, string, State> = {
  noun: "category descriptions",
  flags: {
    describe: {
      type: "string",
      arg: "<mode>",
      description: "none (default) | abstract: each news row's category description before its abstract | title: after its title, 'title [SEP] description'",
    },
  },
  config: DescribeConfig,
  value(output) {
    const description = cleanGeneratedText(output.description);
    return description ? { ok: true, value: description } : { ok: false, error: "empty description after cleaning" };
  },
  open: (records, options) => ({ records, mode: DescribeConfig.parse(options).describe }),
  manifestOptions: (state) => ({ describe: state.mode }),
  covers: (_state, id, input) => input.categories.has(id),
  news: {
    count: { key: "newsDescribed", one: "described news row", many: "described news rows" },
    edit(state, row) {
      const description = state.mode === "none" ? undefined : descriptionOf(state.records.byItem, row);
      if (description === undefined) return { row, counted: false };
      if (state.mode === "title") return { row: { ...row, title: `${row.title}${TITLE_SEPARATOR}${description}` }, counted: true };
      return { row: { ...row, abstract: row.abstract.trim() ? `${description} ${row.abstract}` : description }, counted: true };
    },
  },
  beside: {
    file: {
      name: CATEGORY_DESCRIPTIONS_FILE,
      columns: CATEGORY_DESCRIPTIONS_COLUMNS,
      columnsKey: "categoryDescriptionsColumns",
      about: "kind (category or subcategory), name, description",
    },
    *lines(state, input) {
      // Categories, then subcategories, each by name: the same records give the same bytes.
      const items = [...state.records.byItem.keys()]
        .filter((id) => input.categories.has(id))
        .map((id) => ({ id, ...parseCategoryItemId(id)! }))
        .sort((a, b) => CATEGORY_KINDS.indexOf(a.kind) - CATEGORY_KINDS.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const { id, kind, name } of items) yield `${kind}\t${tsvField(name)}\t${state.records.byItem.get(id)!.value}`;
    },
  },
};
