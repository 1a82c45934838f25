// A tiny two-split MIND dataset for the stage tests, written to a temp dir.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { StageRecord } from "../src/engine/types.js";
import { writeSplit } from "./helpers/split.js";
import { tempDir } from "./helpers/temp.js";

const g = (label: string, id = "Q0") => ({ Label: label, Type: "G", WikidataId: id, Confidence: 1, OccurrenceOffsets: [0], SurfaceForms: [label] });
const o = (label: string) => ({ Label: label, Type: "O", WikidataId: "Q1", Confidence: 1, OccurrenceOffsets: [0], SurfaceForms: [label] });
const ents = (...e: object[]) => (e.length ? JSON.stringify(e) : "[]");

export type NewsLine = [string, string, string, string, string, string, string, string];

export const NEWS: NewsLine[] = [
  ["N1", "sports", "football_nfl", "Texans beat Colts in overtime thriller", "Houston rallied late to win at home.", "https://x/1", ents(o("Houston Texans"), g("Houston")), "[]"],
  ["N2", "finance", "markets", "Stocks rally as the Fed holds rates steady", "Investors cheered the decision.", "https://x/2", "[]", "[]"],
  ["N3", "weather", "weathertopstories", "Snowstorm to hit Denver this weekend", "", "https://x/3", ents(g("Denver")), "[]"],
  ["N4", "health", "medical", "New cancer drug shows promise in trial", "Doctors said results were early.", "https://x/4", "[]", "[]"],
  ["N5", "news", "newsworld", "Brexit talks stall again in Brussels", "", "https://x/5", "[]", "[]"],
  ["N6", "travel", "traveltripideas", "Ten weekend trips from Austin, Texas", "Road trips for every budget.", "https://x/6", ents(g("Austin, Texas")), "[]"],
  ["N7", "autos", "autosnews", "Electric pickup trucks compared", "Range, price and towing.", "https://x/7", "[]", "[]"],
  ["N8", "sports", "football_nfl", "Colts coach praises Texans defense after overtime loss", "Indianapolis fell to Houston.", "https://x/8", ents(o("Indianapolis Colts")), "[]"],
  ["N9", "finance", "markets", "Stock market rally continues for third day", "Tech shares led gains.", "https://x/9", "[]", "[]"],
];

// U1 is cold in both splits (dev is later and longer: its history wins); U2 is warm (7 clicks);
// U3 has an empty history; U4 is cold in dev only.
export const TRAIN_BEHAVIORS = [
  ["1", "U1", "11/14/2019 10:00:00 AM", "N1 N2", "N3-1 N4-0"],
  ["2", "U2", "11/14/2019 11:00:00 AM", "N1 N2 N3 N4 N5 N6 N7", "N8-1 N9-0"],
  ["3", "U3", "11/14/2019 12:00:00 PM", "", "N1-1 N2-0"],
];
export const DEV_BEHAVIORS = [
  ["4", "U1", "11/15/2019 9:00:00 AM", "N1 N2 N6", "N7-0 N9-1"],
  ["5", "U4", "11/15/2019 9:30:00 AM", "N5", "N2-1 N3-0"],
];

export interface Fixture {
  root: string;
  data: string;
  out: string;
}

/**
 * Both splits hold every news row their behaviors name (as MIND does; the stages check their input),
 * identical unless `trainNews`/`devNews` say otherwise.
 */
export interface FixtureOptions {
  trainNews?: NewsLine[];
  devNews?: NewsLine[];
  devBehaviors?: string[][];
}

export async function makeFixture(opts: FixtureOptions = {}): Promise<Fixture> {
  const root = await tempDir("gm-stages-");
  const data = join(root, "data");
  await writeFixture(data, opts);
  return { root, data, out: join(root, "run") };
}

export async function writeFixture(data: string, opts: FixtureOptions = {}): Promise<void> {
  await writeSplit(join(data, "train"), opts.trainNews ?? NEWS, TRAIN_BEHAVIORS);
  await writeSplit(join(data, "dev"), opts.devNews ?? NEWS, opts.devBehaviors ?? DEV_BEHAVIORS);
}

/** A file of a fixture's folder as text. */
export const read = (...p: string[]) => readFile(join(...p), "utf8");
/** A MIND-style file's lines as tab-separated fields. */
export const lines = (text: string) => text.split("\n").filter(Boolean).map((l) => l.split("\t"));
/** The records a stage stored in a run folder (none when it has not run). */
export async function records(out: string, stage: string): Promise<StageRecord[]> {
  const text = await readFile(join(out, `${stage}.jsonl`), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l)));
}
