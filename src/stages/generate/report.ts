// What the report shows of generate: the pseudo-news categories against the same users' real
// clicks, cold users' history lengths before and after, and each cold user example's pseudo-news
// (cold users lead the user examples); the demo shows one cold user's history before and after.
import { join } from "node:path";
import { readNews, readRawBehaviorBatches, splitIds } from "../../mind/read.js";
import { categoryMixFigure, clickCategories, clip, COLORS, histogram, int, maxOf, mean } from "../../report/figures.js";
import type { StageReport } from "../../report/stage-report.js";
import { columnChart } from "../../report/svg.js";
import { plural } from "../../util/text.js";
import { PSEUDO_SUBCATEGORY } from "./merge.js";
import type { PseudoNews } from "./output.js";

declare module "../../report/stage-report.js" {
  interface Distributions {
    /** Pseudo-news per category, and the categories of the same users' real clicks. */
    categories?: { pseudo: Map<string, number>; clicks?: Map<string, number> };
    /** History length of the users generate ran for, before and after their pseudo-news. */
    coldHistory?: { before: number[]; after: number[] };
  }
  interface UserExample {
    pseudo?: { id?: string; title: string; abstract: string; category: string }[];
  }
}

/** The History of each given user's first row in a behaviors file. */
async function historiesOf(file: string, userIds: ReadonlySet<string>): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for await (const rows of readRawBehaviorBatches(file)) {
    for (const row of rows) if (userIds.has(row.userId) && !out.has(row.userId)) out.set(row.userId, splitIds(row.historyColumn));
  }
  return out;
}

async function titlesOf(file: string, ids: ReadonlySet<string>): Promise<Map<string, string>> {
  const titles = new Map<string, string>();
  for await (const row of readNews(file)) if (ids.has(row.id)) titles.set(row.id, row.title);
  return titles;
}

export const generateReport: StageReport<PseudoNews[]> = {
  cards: (answered, manifest) => [["cold users with pseudo-news", answered], ...(manifest ? [["pseudo-news rows merged", Object.keys(manifest.pseudoNews).length] as [string, number]] : [])],
  chartData({ records, catalog, pseudoCount }, dist) {
    const generate = records.byItem;
    if (generate.size === 0) return;
    const pseudo = new Map<string, number>();
    const before: number[] = [];
    const after: number[] = [];
    for (const [userId, rec] of generate) {
      for (const item of rec.value) pseudo.set(item.category, (pseudo.get(item.category) ?? 0) + 1);
      const user = catalog?.users.get(userId);
      if (!user) continue;
      before.push(user.history.length);
      after.push(user.history.length + pseudoCount(userId, rec.value.length));
    }
    dist.categories = { pseudo, clicks: clickCategories(catalog, generate.keys()) };
    if (before.length > 0) dist.coldHistory = { before, after };
  },
  figures(dist) {
    const out = [];
    if (dist.categories) {
      out.push(
        categoryMixFigure({
          id: "categories",
          title: "Pseudo-news per category vs real clicks",
          note: `Category shares of the generated pseudo-news against the categories the same cold users actually clicked: generation should follow their interests without copying them.`,
          added: dist.categories.pseudo,
          addedName: "pseudo-news",
          color: COLORS.pseudo,
          clicks: dist.categories.clicks,
        }),
      );
    }
    if (dist.coldHistory) {
      const d = dist.coldHistory;
      const cap = Math.max(maxOf(d.after), maxOf(d.before));
      const labels = Array.from({ length: cap }, (_, i) => String(i + 1));
      out.push({
        id: "cold-history",
        title: "History length of cold users before and after their pseudo-news",
        // pick's own figures cover what it appends: summed here, the chart would mix two stages' effects.
        note: `${int(d.before.length)} cold ${plural(d.before.length, "user")}; mean history ${mean(d.before).toFixed(2)} → ${mean(d.after).toFixed(2)} clicks once their pseudo-news is appended (picked news, which merge --cold pick or both appends as well, is not counted here).`,
        svg: columnChart({
          id: "cold-history",
          labels,
          series: [
            { name: "before", color: COLORS.before, values: histogram(d.before, cap, 1) },
            { name: "after", color: COLORS.after, values: histogram(d.after, cap, 1) },
          ],
          xTitle: "clicks in history",
          yTitle: "users",
        }),
      });
    }
    return out;
  },
  examples: {
    lead: true,
    fields(ctx, userId, value) {
      const ids = ctx.pseudoIds(userId);
      return { pseudo: value.map((item, i) => ({ id: ids[i], title: item.title, abstract: clip(item.abstract) ?? "", category: item.category })) };
    },
  },
  async demo({ manifest, stage, out, split, input }) {
    const pseudo = Object.entries(manifest.pseudoNews);
    const lines = [
      `  pseudo-news added: ${pseudo.length} ${plural(pseudo.length, "item")} for ${stage.counts.merged} of ${stage.counts.items} cold ${plural(stage.counts.items, "user")} (subcategory '${PSEUDO_SUBCATEGORY}')`,
    ];
    if (!input) return lines;
    // A user whose pseudo-news the first split's rows carry (some apply to later splits only).
    const owners = new Set(pseudo.map(([, userId]) => userId));
    const merged = await historiesOf(join(out, split, "behaviors.tsv"), owners);
    const example = pseudo.find(([id, userId]) => merged.get(userId)?.includes(id));
    const userId = example?.[1];
    const before = userId === undefined ? undefined : (await historiesOf(input.behaviorsFile, new Set([userId]))).get(userId);
    const after = userId === undefined ? undefined : merged.get(userId);
    if (userId && before && after) {
      const added = after.slice(before.length);
      const titles = await titlesOf(join(out, split, "news.tsv"), new Set(added));
      lines.push(`  cold user ${userId} in ${split}: history of ${before.length} → ${after.length}`);
      lines.push(`    before: ${before.join(" ") || "(empty)"}`);
      lines.push(`    after:  ${after.join(" ")}`);
      for (const id of added) lines.push(`    ${id}: ${titles.get(id) ?? ""}`);
    }
    return lines;
  },
};
