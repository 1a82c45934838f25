// A synthetic pair of splits shaped like MIND-small (figures from docs: MIND-small has 65,238
// distinct news and 94,057 distinct users over train and dev, 50,000 users per split, 156,965 train
// and 73,152 dev impressions of ~37 candidates, 18 categories and ~270 subcategories, history length
// mean ~32.5 / median 19 / p95 ~110, ~21% cold users, ~2.4% empty histories). Text is made of
// pseudo-words of English length, so character-based token estimates come out as for real titles
// (~11 words) and abstracts (~36 words, 5% empty). Deterministic: the same scale gives the same files.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SeededRandom } from "../src/util/random.js";
import { MIND_CATEGORIES } from "../src/stages/vocab.js";

export interface MindSmallShape {
  news: number;
  /** Users per split; `both` of them are in train and dev. */
  usersPerSplit: number;
  both: number;
  trainImpressions: number;
  devImpressions: number;
  subcategories: number;
}

export const MIND_SMALL: MindSmallShape = { news: 65_238, usersPerSplit: 50_000, both: 5_943, trainImpressions: 156_965, devImpressions: 73_152, subcategories: 270 };

/** The shape scaled down (for a quick look); 1 is MIND-small. */
export function scaled(scale: number): MindSmallShape {
  const s = (n: number) => Math.max(1, Math.round(n * scale));
  return { ...MIND_SMALL, news: s(MIND_SMALL.news), usersPerSplit: s(MIND_SMALL.usersPerSplit), both: s(MIND_SMALL.both), trainImpressions: s(MIND_SMALL.trainImpressions), devImpressions: s(MIND_SMALL.devImpressions) };
}

const LETTERS = "etaoinshrdlcumwfgypbvkjxqz";

export async function writeMindSmallShaped(root: string, shape: MindSmallShape = MIND_SMALL, seed = 14): Promise<{ train: string; dev: string }> {
  const r = new SeededRandom(seed);
  const uniform = () => r.nextUint32() / 4294967296;
  // Letters by English frequency, lengths 2..10 (mean ~5): pseudo-words that tokenize like words by length.
  const vocabulary = Array.from({ length: 30_000 }, () => {
    const n = 2 + Math.min(8, Math.floor(-Math.log(1 - uniform()) * 3));
    let w = "";
    for (let i = 0; i < n; i++) w += LETTERS[Math.floor(uniform() ** 2 * LETTERS.length)]!;
    return w;
  });
  // Zipf-like: a few words in many titles, most in few.
  const word = () => vocabulary[Math.floor(vocabulary.length * uniform() ** 3)]!;
  const text = (n: number) => Array.from({ length: n }, word).join(" ");
  const around = (mean: number) => Math.max(1, Math.round(mean * (0.6 + 0.8 * uniform())));

  // Categories by MIND's skew (news, sports, finance, … carry most items); subcategories under them.
  const catWeights = MIND_CATEGORIES.map((_, i) => 1 / (i + 1));
  const subs = Array.from({ length: shape.subcategories }, (_, i) => {
    const cat = MIND_CATEGORIES[i < MIND_CATEGORIES.length ? i : weighted(catWeights, uniform())]!;
    return { cat, sub: `${cat}${vocabulary[i * 7]!}` };
  });
  const subWeights = subs.map((_, i) => 1 / (i + 1) ** 0.9);

  const news: string[] = [];
  for (let i = 1; i <= shape.news; i++) {
    const { cat, sub } = subs[weighted(subWeights, uniform())]!;
    const place = vocabulary[i % 500]!;
    const ents = JSON.stringify([{ Label: place, Type: uniform() < 0.5 ? "G" : "O", WikidataId: `Q${i}`, Confidence: 0.9, OccurrenceOffsets: [0], SurfaceForms: [place] }]);
    news.push([`N${i}`, cat, sub, text(around(11)), uniform() < 0.95 ? text(around(36)) : "", `https://assets.msn.com/labs/mind/${i}.html`, ents, "[]"].join("\t"));
  }
  // train holds the first ~79% of the news IDs, dev the last ~65%: ~44% in both, as in MIND-small.
  const trainNews = news.slice(0, Math.round(shape.news * 0.786));
  const newsIn = (lo: number, hi: number) => () => `N${lo + 1 + Math.floor(uniform() * (hi - lo))}`;
  const trainId = newsIn(0, trainNews.length);
  const devId = newsIn(Math.round(shape.news * 0.35), shape.news);

  const historyLength = () => {
    const x = uniform();
    if (x < 0.025) return 0;
    if (x < 0.235) return 1 + Math.floor(uniform() * 5);
    // Log-normal for the warm users: median ~24, p95 ~110.
    const z = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
    return Math.min(801, Math.max(6, Math.round(24 * Math.exp(0.9 * z))));
  };
  const impressions = (id: () => string) => {
    const n = around(37);
    return Array.from({ length: n }, (_, k) => `${id()}-${k === 0 || uniform() < 0.03 ? 1 : 0}`).join(" ");
  };
  const time = (day: number, k: number) => `11/${day}/2019 ${1 + (k % 12)}:${String(k % 60).padStart(2, "0")}:${String((k * 7) % 60).padStart(2, "0")} ${k % 2 ? "AM" : "PM"}`;

  const trainUsers = Array.from({ length: shape.usersPerSplit }, (_, u) => u + 1);
  const devUsers = [...trainUsers.slice(0, shape.both), ...Array.from({ length: shape.usersPerSplit - shape.both }, (_, u) => shape.usersPerSplit + u + 1)];
  const trainHistory = new Map<number, string[]>();
  const trainClicks = new Map<number, string[]>();
  const rows = (users: number[], count: number, day: (k: number) => number, history: (u: number) => string[], id: () => string, clicked?: Map<number, string[]>) => {
    const out: string[] = [];
    for (let k = 0; k < count; k++) {
      const u = users[k < users.length ? k : Math.floor(uniform() * users.length)]!;
      const imp = impressions(id);
      if (clicked) {
        const list = clicked.get(u) ?? [];
        for (const c of imp.split(" ")) if (c.endsWith("-1")) list.push(c.slice(0, -2));
        clicked.set(u, list);
      }
      out.push([String(out.length + 1), `U${u}`, time(day(k), k), history(u).join(" "), imp].join("\t"));
    }
    return out;
  };
  const train = rows(trainUsers, shape.trainImpressions, (k) => 9 + (k % 6), (u) => {
    let h = trainHistory.get(u);
    if (!h) trainHistory.set(u, (h = Array.from({ length: historyLength() }, trainId)));
    return h;
  }, trainId, trainClicks);
  // A user in both splits: dev's history is train's plus the clicks of their train impressions.
  const devHistory = new Map<number, string[]>();
  const dev = rows(devUsers, shape.devImpressions, () => 15, (u) => {
    let h = devHistory.get(u);
    if (!h) devHistory.set(u, (h = trainHistory.has(u) ? [...trainHistory.get(u)!, ...(trainClicks.get(u) ?? [])] : Array.from({ length: historyLength() }, devId)));
    return h;
  }, devId);

  // Like MIND's, dev's news.tsv holds every news item its behaviors name (train news in moved-over histories too).
  const devStart = Math.round(shape.news * 0.35);
  const named = new Set<number>();
  for (const line of dev) for (const m of line.split("\t").slice(3).join(" ").matchAll(/N(\d+)/g)) if (Number(m[1]) <= devStart) named.add(Number(m[1]));
  const devNews = [...[...named].sort((a, b) => a - b).map((n) => news[n - 1]!), ...news.slice(devStart)];

  const dirs = { train: join(root, "MINDsmallshaped_train"), dev: join(root, "MINDsmallshaped_dev") };
  for (const [dir, n, b] of [[dirs.train, trainNews, train], [dirs.dev, devNews, dev]] as const) {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "news.tsv"), n.join("\n") + "\n");
    await writeFile(join(dir, "behaviors.tsv"), b.join("\n") + "\n");
  }
  return dirs;
}

function weighted(weights: readonly number[], x: number): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]! / total;
    if (x < acc) return i;
  }
  return weights.length - 1;
}
