// A tiny MIND dataset and an ONCE `data/mind/` folder beside it, in the exact formats ONCE's request
// scripts write (see src/import/once-logs.ts), with the faults the real logs have.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSplit } from "./helpers/split.js";

const news = (id: string, category: string, sub: string, title: string) => [id, category, sub, title, "", "", "[]", "[]"];
export const NEWS = [
  news("N1", "sports", "golf", "Tiger Woods wins the Masters"),
  news("N2", "finance", "markets", "Stocks rally as inflation cools"),
  news("N3", "health", "medical", "New flu vaccine approved"),
  news("N4", "news", "newsus", "Storm hits Texas coast"),
  news("N5", "travel", "travelnews", "Best beaches in Florida"),
  news("N6", "lifestyle", "royals", "Royal wedding planned for spring"),
  news("N7", "autos", "autosnews", "Electric trucks arrive"),
  news("N8", "foodanddrink", "recipes", "Easy pumpkin pie"),
];

const T_TRAIN = "11/11/2019 9:00:00 AM";
const T_DEV = "11/15/2019 9:00:00 AM";
// U1: cold in both splits (train N1 N2; dev adds N3). U2: warm. U3: empty history. U4, U5: cold, dev only.
export const TRAIN = [
  ["1", "U1", T_TRAIN, "N1 N2", "N3-1 N4-0"],
  ["2", "U2", T_TRAIN, "N1 N2 N3 N4 N5 N6", "N7-1 N8-0"],
  ["3", "U3", T_TRAIN, "", "N1-1 N2-0"],
];
export const DEV = [
  ["4", "U1", T_DEV, "N1 N2 N3", "N5-1 N6-0"],
  ["5", "U4", T_DEV, "N7", "N1-0 N2-1"],
  ["6", "U5", T_DEV, "N8", "N3-1 N4-0"],
];

/** Index i is line i of tok.uid.dat; U9 is in no split. */
export const UIDS = ["U1", "U2", "U3", "U4", "U5", "U9"];

const json = (o: unknown) => JSON.stringify(o);
const item = (title: string, abstract: string, category: string) => json({ title, abstract, category });

export const SUMMARIZER = [
  "this line is not an answer", // malformed: before any answer
  "N1\t[newtitle] Tiger Woods wins the 2019 Masters at Augusta",
  "N2\t[newtitle] Stock markets rally as US inflation cools",
  "Note: I kept the title neutral.", // continues N2's answer: a title with a note below it, kept without the note
  "N3\t", // empty answer
  "N99\t[newtitle] A news item that is not in the data",
  "N4\t[newtitle] Storm hits the Texas coast",
  "N4\t[newtitle] A storm hits the Texas coast on Monday", // answered again: the last valid answer wins
  "N5\t[newtitle] Florida's best beaches for a winter escape",
  "[newtitle] The best beaches in Florida this winter", // a second title, not a note: refused whole
  "N6\tI'm sorry, I cannot improve this title.",
  "Note: the abstract is empty.", // a note below a reply: the part before the note is no title
];

export const PROFILER = [
  json({ uid: 0, interest: "[topics]\n- finance\n- Health\n- tech\n[region]\n- TX" }),
  json({ uid: 1, interest: "The user is interested in sports and finance." }), // wrong format
  json({ uid: 2, interest: "[topics]\n- health" }), // U3: empty history, not an item
  // Off GENRE's lists: sports, entertainment, the country and a city are left out, in order.
  json({ uid: 3, interest: "[topics]\n- sports\n- travel\n- entertainment\n- finance\n[region]\n- United States\n- Texas\n- New York City" }),
  json({ uid: 17, interest: "[topics]\n- health" }), // index past the vocabulary
  "{uid: 4, interest: not json}", // malformed
  json({ uid: 4, interest: "[topics]\n- cooking\n\n[region] (optional)\n- None" }), // cooking → food; no region
  json({ uid: 5, interest: "[topics]\n- food" }), // U9: not in the data
  json({ uid: 1, interest: "[topics]\n- sports\n- politics\n[region]\n- United States" }), // U2 again: no topic on the list
];

export const GENERATOR_V1 = [
  json({ uid: 0, news: item("PGA Tour announces its new season schedule", "The tour adds two events.", "sports") }),
  json({ uid: 3, news: "Sure! Here is a news item: Electric cars are coming." }), // not JSON
  json({ uid: 4, news: item("Thanksgiving dessert ideas", "", "desserts") }), // category not in the list
  json({ uid: 1, news: item("Golf equipment trends", "", "sports") }), // U2 is warm: not an item
  json({ uid: 4, news: item("Easy pumpkin pie", "Bake it.", "foodanddrink") }), // a copy of U5's clicked title
  json({ uid: 99, news: item("Anything", "", "news") }), // index past the vocabulary
];

export const GENERATOR_V2 = [
  json({ uid: 0, news: '```json\n{\n  "title": "Inflation report lifts bank stocks",\n  "abstract": "Banks gain.",\n  "category": "finance"\n}\n```' }),
  json({ uid: 0, news: item("Inflation report lifts bank stocks today", "", "finance") }), // a third line for U1, repeating the second
  json({ uid: 3, news: item("Electric pickup trucks sell out", "Demand is high.", "autos") }),
  json({ uid: 3, news: item("Stocks rally as inflation cools again", "", "finance") }), // a copy of a news item U4 was shown
];

/** Writes `<root>/mind/{train,dev}` and `<root>/once/` (ONCE's data/mind layout); returns their paths. */
export async function writeOnceFixture(root: string): Promise<{ train: string; dev: string; once: string }> {
  const train = join(root, "mind", "MINDtiny_train");
  const dev = join(root, "mind", "MINDtiny_dev");
  await writeSplit(train, NEWS, TRAIN);
  await writeSplit(dev, NEWS, DEV);
  const once = join(root, "once");
  await mkdir(join(once, "user"), { recursive: true });
  const file = (name: string, lines: string[]) => writeFile(join(once, name), lines.join("\n") + "\n");
  await file("user/tok.uid.dat", UIDS);
  await file("news_summarizer.log", SUMMARIZER);
  await file("user_profiler.log", PROFILER);
  await file("generator_v1.log", GENERATOR_V1);
  await file("generator_v2.log", GENERATOR_V2);
  return { train, dev, once };
}
