// What the report shows of factors: how many users and news items have something to say on each
// factor (a text other than "none"), and each example's texts; the demo shows one user's.
import { join } from "node:path";
import { readLines } from "../../mind/read.js";
import { clip, COLORS, pct } from "../../report/figures.js";
import type { StageReport } from "../../report/stage-report.js";
import { barChart } from "../../report/svg.js";
import { plural } from "../../util/text.js";
import { FACTORS, NONE } from "./factors.js";

interface Coverage {
  /** Items with a record. */
  items: number;
  /** Per factor (in the table's order): items whose text is not "none". */
  stated: number[];
  /** Per factor: its most common stated text and how many items have it (a default answer, e.g. the offline "neutral"). */
  top: { text: string; count: number }[];
}

declare module "../../report/stage-report.js" {
  interface Distributions {
    /** Per side of the table: how many records state something on each factor. */
    factorCoverage?: { users?: Coverage; news?: Coverage };
  }
  interface UserExample {
    factors?: Record<string, string>;
  }
  interface NewsExample {
    factors?: Record<string, string>;
  }
}

/** A record as merge keeps it (the texts tab-joined) by factor name. */
function byFactor(value: string): Record<string, string> {
  const texts = value.split("\t");
  return Object.fromEntries(FACTORS.map((f, i) => [f.name, texts[i] ?? ""]));
}

function coverage(values: Iterable<{ value: string }>): Coverage | undefined {
  const stated = FACTORS.map(() => 0);
  const texts = FACTORS.map(() => new Map<string, number>());
  let items = 0;
  for (const { value } of values) {
    items++;
    value.split("\t").forEach((text, i) => {
      if (text === NONE || i >= stated.length) return;
      stated[i]!++;
      texts[i]!.set(text, (texts[i]!.get(text) ?? 0) + 1);
    });
  }
  const top = texts.map((counts) => {
    let best = { text: "", count: 0 };
    for (const [text, count] of counts) if (count > best.count) best = { text, count };
    return best;
  });
  return items > 0 ? { items, stated, top } : undefined;
}

/** Factors on which one text is most of the answers: stated, but the same for everyone. */
function sameForMost(side: string, c: Coverage): string[] {
  return FACTORS.flatMap((f, i) => {
    const { text, count } = c.top[i]!;
    return count * 2 > c.items ? [`${f.name.replace(/_/g, " ")} of ${side} is "${clip(text, 40)}" for ${pct((count / c.items) * 100)}`] : [];
  });
}

/** One chart for both registrations: factors-users draws it from what either filled in. */
function coverageFigures(dist: { factorCoverage?: { users?: Coverage; news?: Coverage } }) {
  const c = dist.factorCoverage;
  if (!c?.users && !c?.news) return [];
  const series = [];
  if (c.users) series.push({ name: `users (${c.users.items.toLocaleString("en-US")})`, color: COLORS.topic, values: c.users.stated.map((n) => (n / c.users!.items) * 100) });
  if (c.news) series.push({ name: `news (${c.news.items.toLocaleString("en-US")})`, color: COLORS.after, values: c.news.stated.map((n) => (n / c.news!.items) * 100) });
  const same = [...(c.users ? sameForMost("users", c.users) : []), ...(c.news ? sameForMost("news", c.news) : [])];
  return [
    {
      id: "factor-coverage",
      title: "Factor coverage",
      note:
        `Share of the users and news items with factors whose text for each factor says something (not "${NONE}"): a factor that is mostly "${NONE}" adds little to a model, ` +
        `and so does one whose text is the same for most.` +
        (same.length > 0 ? ` The same text for most: ${same.join("; ")}.` : ""),
      svg: barChart({ id: "factor-coverage", labels: FACTORS.map((f) => f.name.replace(/_/g, " ")), series, format: pct }),
    },
  ];
}

export const factorsUsersReport: StageReport<string> = {
  cards: (answered) => [["users with factors", answered]],
  chartData({ records }, dist) {
    const users = coverage(records.byItem.values());
    if (users) dist.factorCoverage = { ...dist.factorCoverage, users };
  },
  figures: coverageFigures,
  examples: { fields: (_ctx, _id, value) => ({ factors: byFactor(value) }) },
  async demo({ stage, out, split }) {
    const lines = [`  user factors:      ${stage.counts.merged} of ${stage.counts.items} ${plural(stage.counts.items, "user")} (<split>/user_factors.tsv)`];
    for await (const { text } of readLines(join(out, split, "user_factors.tsv"))) {
      const [userId, ...texts] = text.split("\t");
      lines.push(`    ${userId}  ${clip(FACTORS.slice(0, 3).map((f, i) => `${f.name}: ${texts[i]}`).join("; "), 150)}`);
      break;
    }
    return lines;
  },
};

export const factorsNewsReport: StageReport<string> = {
  cards: (answered) => [["news with factors", answered]],
  chartData({ records }, dist) {
    const news = coverage(records.byItem.values());
    if (news) dist.factorCoverage = { ...dist.factorCoverage, news };
  },
  examples: { fields: (_ctx, _id, value) => ({ factors: byFactor(value) }) },
  async demo({ stage }) {
    return [`  news factors:      ${stage.counts.merged} of ${stage.counts.items} news (<split>/news_factors.tsv)`];
  },
};
