// What the report shows of describe: the length of the descriptions (categories and subcategories
// apart), and each category example's description; the demo shows one description.
import { join } from "node:path";
import { readLines } from "../../mind/read.js";
import { clip, COLORS, histogram, int, mean } from "../../report/figures.js";
import type { StageReport } from "../../report/stage-report.js";
import { columnChart } from "../../report/svg.js";
import { parseCategoryItemId } from "../kinds.js";
import { wordCount } from "../plain-text.js";
import { categoryIndex } from "./categories.js";
import { CATEGORY_DESCRIPTIONS_FILE } from "./merge.js";

declare module "../../report/stage-report.js" {
  interface Distributions {
    /** Words per description, of categories and of subcategories. */
    descriptionWords?: { category: number[]; subcategory: number[] };
  }
  interface CategoryExample {
    description?: string;
    /** News of the input splits filed under it (a subcategory: and its category). */
    newsCount?: number;
    parent?: string;
  }
}

/** Lengths are drawn in bins of this many words, up to BINS of them (the last one open). */
const BIN = 10;
const BINS = 12;

export const describeReport: StageReport<string> = {
  cards: (answered) => [["category descriptions", answered]],
  options: { describe: "descriptions" },
  chartData({ records }, dist) {
    if (records.byItem.size === 0) return;
    const words = { category: [] as number[], subcategory: [] as number[] };
    for (const [id, rec] of records.byItem) {
      const kind = parseCategoryItemId(id)?.kind;
      if (kind) words[kind].push(wordCount(rec.value));
    }
    dist.descriptionWords = words;
  },
  figures(dist) {
    const d = dist.descriptionWords;
    if (!d) return [];
    const labels = Array.from({ length: BINS }, (_, i) => (i === BINS - 1 ? `${i * BIN}+` : `${i * BIN}–${i * BIN + BIN - 1}`));
    const bins = (xs: number[]) => histogram(xs.map((x) => Math.floor(x / BIN)), BINS - 1);
    const series = [
      { name: `categories (${int(d.category.length)}, mean ${mean(d.category).toFixed(0)} words)`, color: COLORS.before, values: bins(d.category) },
      { name: `subcategories (${int(d.subcategory.length)}, mean ${mean(d.subcategory).toFixed(0)} words)`, color: COLORS.after, values: bins(d.subcategory) },
    ].filter((s, i) => (i === 0 ? d.category : d.subcategory).length > 0);
    return [
      {
        id: "description-length",
        title: "Length of the category descriptions",
        note: "Descriptions per length in words. The prompt asks for about 50 (Yada & Yamana's GPT-4 descriptions were ~50 words); the parser accepts 15 to 120.",
        svg: columnChart({ id: "description-length", labels, series, xTitle: "words in description", yTitle: "descriptions" }),
      },
    ];
  },
  examples: {
    fields({ catalog }, id, description) {
      const item = catalog ? categoryIndex(catalog).get(id) : undefined;
      return { description, newsCount: item?.news.length, parent: item?.parents.join(", ") || undefined };
    },
  },
  async demo({ manifest, stage, out }) {
    const lines: string[] = [];
    for await (const { text } of readLines(join(out, CATEGORY_DESCRIPTIONS_FILE))) {
      const [kind, name, description] = text.split("\t");
      if (kind === "subcategory" && description) lines.push(`    ${name}: ${clip(description, 160)}`);
      if (lines.length === 1) break;
    }
    const mode = String(manifest.options.describe ?? "none");
    const where = mode === "none" ? `${CATEGORY_DESCRIPTIONS_FILE} (--describe title or abstract puts them into news.tsv)` : `${CATEGORY_DESCRIPTIONS_FILE} and the news ${mode}s`;
    return [`  categories described: ${stage.counts.merged} of ${stage.counts.items}, in ${where}${lines.length ? ", e.g." : ""}`, ...lines];
  },
};
