// A tiny two-split MIND dataset and stage records, written to a temp dir, for the merge tests.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RecordSource } from "../src/engine/types.js";
import type { StageName } from "../src/stages/registry.js";
import { writeSplit } from "./helpers/split.js";
import { tempDir } from "./helpers/temp.js";

export const USAGE = { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 };

// train: news up to N120; dev: up to N950 (the largest numeric ID lives in dev only).
export const TRAIN_NEWS = [
  ["N100", "news", "newsus", `"Quoted" start of a title`, "An abstract.", "https://x/1", "[]", "[]"],
  ["N101", "sports", "baseball_mlb", "Team wins 'big' game & more | stuff", "", "https://x/2", "[]", "[]"],
  ["N102", "finance", "markets", "Stocks rise", "Markets went up.", "https://x/3", `[{"Label": "Texas", "Type": "G", "WikidataId": "Q1", "Confidence": 1.0, "OccurrenceOffsets": [0], "SurfaceForms": ["Texas"]}]`, "[]"],
  ["N120", "weather", "weathertopstories", "Storm coming", "Rain.", "https://x/4", "[]", "[]"],
  ["NX7", "news", "newsworld", "A non-numeric ID", "", "https://x/5", "[]", "[]"],
];
export const DEV_NEWS = [
  ["N100", "news", "newsus", `"Quoted" start of a title`, "An abstract.", "https://x/1", "[]", "[]"],
  ["N950", "travel", "travelnews", "Trip of a lifetime", "Go.", "https://x/6", "[]", "[]"],
  ["N101", "sports", "baseball_mlb", "Team wins 'big' game & more | stuff", "", "https://x/2", "[]", "[]"],
  ["N102", "finance", "markets", "Stocks rise", "Markets went up.", "https://x/3", "[]", "[]"],
];
// train (11/15) comes before dev (11/16). U2 and U10 are cold (1..5 clicks in train, their earliest
// non-empty history), U3 is warm (6 clicks in train; dev's one click does not matter), U4 has an
// empty history. U10 is in train only.
export const TRAIN_BEHAVIORS = [
  ["1", "U10", "11/15/2019 10:22:32 AM", "N100", "N101-1 N102-0"],
  ["2", "U2", "11/15/2019 11:00:00 AM", "N101 N102", "N120-0 N100-1"],
  ["3", "U3", "11/15/2019 9:00:00 AM", "N100 N101 N102 N120 NX7 N100", "N102-1"],
  ["4", "U4", "11/15/2019 9:05:00 PM", "", "N101-0 N102-1"],
  ["5", "U2", "11/15/2019 12:00:00 PM", "N101 N102", "N100-0 N101-1"],
];
export const DEV_BEHAVIORS = [
  ["7", "U2", "11/16/2019 10:00:00 AM", "N101 N102 N950", "N950-1 N100-0"],
  ["8", "U3", "11/16/2019 10:00:00 AM", "N100", "N102-0 N950-1"],
];

export async function makeDataset(): Promise<{ root: string; data: string; runDir: string }> {
  const root = await tempDir("gm-merge-");
  const data = join(root, "data");
  await writeSplit(join(data, "train"), TRAIN_NEWS, TRAIN_BEHAVIORS);
  await writeSplit(join(data, "dev"), DEV_NEWS, DEV_BEHAVIORS);
  const runDir = join(root, "run");
  await mkdir(runDir, { recursive: true });
  return { root, data, runDir };
}

/** Each user's source under the history rule: train (11/15) comes before dev (11/16); clicks most recent first. */
export const SOURCES: Record<string, RecordSource> = {
  U2: { split: "train", clicks: ["N102", "N101"] },
  U3: { split: "train", clicks: ["N100", "NX7", "N120", "N102", "N101", "N100"] },
  U10: { split: "train", clicks: ["N100"] },
};

/** A record line; profile and generate records carry the user's source unless `source` says otherwise (null: none). */
export function record(stage: StageName, itemId: string, output: unknown, provider = "offline", model = "offline-baseline", source?: RecordSource | null): string {
  const src = source === null || stage === "summarize" ? undefined : (source ?? SOURCES[itemId]);
  return JSON.stringify({ key: `${stage}:${itemId}`, stage, itemId, provider, model, output, usage: USAGE, attempts: 1, source: src }) + "\n";
}

/** Valid records for every item of the fixture. */
export async function writeRecords(runDir: string): Promise<void> {
  await writeFile(
    join(runDir, "summarize.jsonl"),
    ["N100", "N101", "N102", "N120", "N950"].map((id) => record("summarize", id, { title: `Enhanced ${id} title` })).join(""),
  );
  await writeFile(
    join(runDir, "profile.jsonl"),
    record("profile", "U2", { topics: ["finance", "social media"], regions: ["Texas", "New York"] }) +
      record("profile", "U3", { topics: ["weather"], regions: [] }) +
      record("profile", "U10", { topics: ["economy"], regions: [] }),
  );
  await writeFile(
    join(runDir, "generate.jsonl"),
    record("generate", "U2", {
      items: [
        { title: "Pseudo one for U2", abstract: "A.", category: "finance" },
        { title: "Pseudo two for U2", abstract: "", category: "news" },
      ],
    }) + record("generate", "U10", { items: [{ title: "Pseudo for U10", abstract: "B.", category: "sports" }] }),
  );
}
