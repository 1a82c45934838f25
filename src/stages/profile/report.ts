// What the report shows of profile: topics and regions over the profiled users, and each user
// example's profile; the demo shows one profile.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LIST_SEPARATOR } from "../../mind/text.js";
import { COLORS, int, pct } from "../../report/figures.js";
import type { StageReport } from "../../report/stage-report.js";
import { barChart } from "../../report/svg.js";
import { plural } from "../../util/text.js";
import { TOPICS } from "../vocab.js";

declare module "../../report/stage-report.js" {
  interface Distributions {
    /** Profiled users per topic / per state, and the number of profiled users. */
    topics?: { counts: Map<string, number>; users: number; perUser: number };
    regions?: { counts: Map<string, number>; users: number; perUser: number; withAny: number };
  }
  interface UserExample {
    topics?: string[];
    regions?: string[];
  }
}

/** Merge keeps a profile as its two user_profiles.tsv columns; the report wants the lists back. */
function profileLists(value: string): { topics: string[]; regions: string[] } {
  const [topics = "", regions = ""] = value.split("\t");
  const list = (s: string) => (s ? s.split(LIST_SEPARATOR) : []);
  return { topics: list(topics), regions: list(regions) };
}

export const profileReport: StageReport<string> = {
  cards: (answered) => [["profiled users", answered]],
  chartData({ records }, dist) {
    const profile = records.byItem;
    if (profile.size === 0) return;
    const topics = new Map<string, number>();
    const regions = new Map<string, number>();
    let topicSum = 0;
    let regionSum = 0;
    let withAny = 0;
    for (const rec of profile.values()) {
      const p = profileLists(rec.value);
      topicSum += p.topics.length;
      regionSum += p.regions.length;
      if (p.regions.length > 0) withAny++;
      for (const t of p.topics) topics.set(t, (topics.get(t) ?? 0) + 1);
      for (const s of p.regions) regions.set(s, (regions.get(s) ?? 0) + 1);
    }
    dist.topics = { counts: topics, users: profile.size, perUser: topicSum / profile.size };
    dist.regions = { counts: regions, users: profile.size, perUser: regionSum / profile.size, withAny };
  },
  figures(dist) {
    const out = [];
    if (dist.topics) {
      const d = dist.topics;
      const labels = [...TOPICS].sort((a, b) => (d.counts.get(b) ?? 0) - (d.counts.get(a) ?? 0));
      out.push({
        id: "topics",
        title: "Topics over profiled users",
        note: `Share of ${int(d.users)} profiled users whose profile lists each topic; ${d.perUser.toFixed(2)} topics per user (GENRE: 4.82).`,
        svg: barChart({ id: "topics", labels, series: [{ name: "users with the topic", color: COLORS.topic, values: labels.map((l) => ((d.counts.get(l) ?? 0) / d.users) * 100) }], format: pct }),
      });
    }
    if (dist.regions) {
      const d = dist.regions;
      const labels = [...d.counts.keys()].sort((a, b) => d.counts.get(b)! - d.counts.get(a)! || a.localeCompare(b)).slice(0, 20);
      out.push({
        id: "regions",
        title: "Regions over profiled users",
        note: `Share of profiled users naming each US state (top ${labels.length}); ${d.perUser.toFixed(2)} regions per user (GENRE: 0.29), ${pct((d.withAny / Math.max(1, d.users)) * 100)} of users have at least one.`,
        svg: labels.length
          ? barChart({ id: "regions", labels, series: [{ name: "users with the state", color: COLORS.region, values: labels.map((l) => (d.counts.get(l)! / d.users) * 100) }], format: pct })
          : `<p class="empty">No profile names a region.</p>`,
      });
    }
    return out;
  },
  examples: { fields: (_ctx, _id, value) => profileLists(value) },
  async demo({ stage, out, split }) {
    const lines = [`  users profiled:    ${stage.counts.merged} of ${stage.counts.items} ${plural(stage.counts.items, "user")} with a history, e.g.`];
    const first = (await readFile(join(out, split, "user_profiles.tsv"), "utf8")).split("\n")[0];
    if (first) {
      const [user, topics, regions] = first.split("\t");
      lines.push(`    ${user}  topics: ${topics!.split(LIST_SEPARATOR).join(", ")}; regions: ${regions ? regions.split(LIST_SEPARATOR).join(", ") : "(none)"}`);
    }
    return lines;
  },
};
