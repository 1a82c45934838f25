// What the report shows of pick: the categories of the picked news against the same users' real
// clicks, and each cold user example's picks; the demo says how many were appended.
import { categoryMixFigure, clickCategories, COLORS } from "../../report/figures.js";
import type { StageReport } from "../../report/stage-report.js";
import { plural } from "../../util/text.js";

declare module "../../report/stage-report.js" {
  interface Distributions {
    /** Picked news per category (their rows in --data), and the categories of the same users' real clicks. */
    pickCategories?: { picks: Map<string, number>; clicks?: Map<string, number> };
  }
  interface UserExample {
    picks?: { id: string; title?: string; category?: string }[];
  }
}

/** Picks merge appended over all splits (manifest `splits[].output.picks`). */
function appendedPicks(manifest: { splits: { output: Record<string, unknown> }[] }): number {
  return manifest.splits.reduce((n, s) => n + (typeof s.output.picks === "number" ? s.output.picks : 0), 0);
}

export const pickReport: StageReport<readonly string[]> = {
  cards: (answered, manifest) => [["cold users with picks", answered], ...(manifest && appendedPicks(manifest) > 0 ? [["picks appended", appendedPicks(manifest)] as [string, number]] : [])],
  options: { cold: "cold users get" },
  chartData({ records, catalog }, dist) {
    // The categories of the picks are their rows': without the input splits there is nothing to draw.
    if (records.byItem.size === 0 || !catalog) return;
    const picks = new Map<string, number>();
    for (const { value } of records.byItem.values()) {
      for (const id of value) {
        const category = catalog.news.get(id)?.category;
        if (category) picks.set(category, (picks.get(category) ?? 0) + 1);
      }
    }
    dist.pickCategories = { picks, clicks: clickCategories(catalog, records.byItem.keys()) };
  },
  figures: (dist) =>
    dist.pickCategories
      ? [
          categoryMixFigure({
            id: "pick-categories",
            title: "Picked news per category vs real clicks",
            note: "Category shares of the real news picked for cold users against the categories the same users actually clicked: picks should follow their interests.",
            added: dist.pickCategories.picks,
            addedName: "picks",
            color: COLORS.pick,
            clicks: dist.pickCategories.clicks,
          }),
        ]
      : [],
  examples: {
    lead: true,
    fields: ({ catalog }, _userId, ids) => ({
      picks: ids.map((id) => {
        const news = catalog?.news.get(id);
        return { id, title: news?.title, category: news?.category };
      }),
    }),
  },
  async demo({ manifest, stage }) {
    const cold = String(manifest.options.cold ?? "pseudo");
    const appended = appendedPicks(manifest);
    if (cold === "pseudo") return ["  picks:             not merged (--cold pseudo appends pseudo-news; --cold pick or both appends the picks)"];
    return [`  picks appended:    ${appended} ${plural(appended, "news item")} to the histories of ${stage.counts.merged} of ${stage.counts.items} cold ${plural(stage.counts.items, "user")} (--cold ${cold})`];
  },
};
