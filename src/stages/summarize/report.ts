// What the report shows of summarize: title lengths before and after, and each news example's
// enhanced title; the demo shows two titles before and after.
import { join } from "node:path";
import { readLines } from "../../mind/read.js";
import { cleanGeneratedText } from "../../mind/text.js";
import { columnChart } from "../../report/svg.js";
import { COLORS, histogram, maxOf, mean, minOf } from "../../report/figures.js";
import type { StageReport } from "../../report/stage-report.js";
import { wordTokenize } from "../../trainer/tokenize.js";

declare module "../../report/stage-report.js" {
  interface Distributions {
    /** Title length in tokens (as NRMS's MIND reader tokenizes), per news item with an enhanced title. */
    titleTokens?: { original?: number[]; enhanced: number[] };
    /** Enhanced titles that differ from the original, of those whose original is known (--data). */
    titlesChanged?: { changed: number; compared: number };
  }
  interface NewsExample {
    enhanced?: string;
  }
}

/** Title length in the tokens of NRMS's tokenizer (the one export writes word_dict.pkl with): what NRMS actually reads. */
export function titleTokens(title: string): number {
  return wordTokenize(title).length;
}

export const summarizeReport: StageReport<string> = {
  // An answer equal to the original title enhanced nothing; without the originals (no --data) only answers can be counted.
  cards(answered, _manifest, dist) {
    const titles = dist.titlesChanged;
    if (!titles) return [["titles answered (originals not read)", answered]];
    return [["enhanced titles", titles.changed], ...(titles.compared > titles.changed ? [["titles unchanged", titles.compared - titles.changed] as [string, number]] : [])];
  },
  options: { title: "titles" },
  chartData({ records, catalog }, dist) {
    if (records.byItem.size === 0) return;
    const enhanced: number[] = [];
    const original: number[] = [];
    let changed = 0;
    for (const [id, rec] of records.byItem) {
      enhanced.push(titleTokens(rec.value));
      const news = catalog?.news.get(id);
      if (!news) continue;
      original.push(titleTokens(news.title));
      // An answer that only re-spaces the title is the title: what merge would write is the same.
      if (rec.value !== cleanGeneratedText(news.title)) changed++;
    }
    dist.titleTokens = { enhanced, original: original.length > 0 ? original : undefined };
    if (original.length > 0) dist.titlesChanged = { changed, compared: original.length };
  },
  figures(dist) {
    const t = dist.titleTokens;
    if (!t) return [];
    const lengths = [t.enhanced, t.original ?? []];
    const cap = Math.min(40, Math.max(10, ...lengths.map(maxOf)));
    const low = Math.min(cap, Math.max(1, Math.min(...lengths.map(minOf))));
    const labels = Array.from({ length: cap - low + 1 }, (_, i) => (low + i === cap ? `${cap}+` : String(low + i)));
    const series = [];
    if (t.original) series.push({ name: `original (mean ${mean(t.original).toFixed(1)})`, color: COLORS.before, values: histogram(t.original, cap, low) });
    series.push({ name: `enhanced (mean ${mean(t.enhanced).toFixed(1)})`, color: COLORS.after, values: histogram(t.enhanced, cap, low) });
    return [
      {
        id: "title-length",
        title: "Title length before and after summarize",
        note: `News items per title length in tokens, counted the way NRMS's MIND reader splits a title. GENRE reported 13.6 → 16.7.${t.original ? "" : " Original titles unavailable: pass --data."}`,
        svg: columnChart({ id: "title-length", labels, series, xTitle: "tokens in title", yTitle: "news items" }),
      },
    ];
  },
  examples: { fields: (_ctx, _id, value) => ({ enhanced: value }) },
  async demo({ manifest, stage, out }) {
    // A title that came back unchanged was not enhanced: count (and show) only the ones that differ.
    const changed = new Set<string>();
    const examples: string[] = [];
    for (const split of manifest.splits) {
      for await (const { text } of readLines(join(out, split.name, "news_titles.tsv"))) {
        const [id, before, after] = text.split("\t");
        if (!id || !after || after === before || changed.has(id)) continue;
        changed.add(id);
        if (examples.length < 4) examples.push(`    ${id}  before: ${before}`, `    ${" ".repeat(id.length)}  after:  ${after}`);
      }
    }
    return [`  titles enhanced:   ${changed.size} of ${stage.counts.items} news${examples.length ? ", e.g." : ""}`, ...examples];
  },
};
