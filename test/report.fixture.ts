// A run folder for the report tests: two small splits, records of all three stages written with
// the shared zod schemas, failures, stage meta, and hostile LLM text that must never run as markup.
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FailureRecord, StageRecord, type RecordSource } from "../src/engine/types.js";
import type { StageName } from "../src/stages/registry.js";
import { runPaths, StageMeta } from "../src/run/folder.js";
import { GenerateOutput } from "../src/stages/generate/output.js";
import { ProfileOutput } from "../src/stages/profile/output.js";
import { SummarizeOutput } from "../src/stages/summarize/output.js";
import { MIND_CATEGORIES, TOPICS, US_STATES } from "../src/stages/vocab.js";
import { writeSplit } from "./helpers/split.js";

/** Text an LLM could return; if any of it ran, it would mark the page with data-pwned. */
export const HOSTILE = `<img src=x onerror="document.body.setAttribute('data-pwned','1')"></script><script>document.body.setAttribute('data-pwned','2')</script>`;

export const NEWS_COUNT = 80;
export const USER_COUNT = 60;
const USAGE = { inputTokens: 120, outputTokens: 30, cacheReadTokens: 100, cacheWriteTokens: 0 };

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;

export interface ReportFixture {
  root: string;
  data: string;
  runDir: string;
  /** Users with 1–5 clicks that got pseudo-news. */
  cold: string[];
}

function meta(stage: StageName, items: number, failed: number, failedByReason: Record<string, number>): StageMeta {
  return StageMeta.parse({
    stage,
    provider: "anthropic",
    model: "claude-test",
    promptHashes: { [`${stage}.system.md`]: "0".repeat(64) },
    options: {},
    splits: [],
    counts: { items, done: items - failed, cached: 0, retried: 1, failed, failedByReason },
    usage: USAGE,
    runCostUsd: 0.25,
    finishedAt: "2026-11-27T10:00:00.000Z",
  });
}

export async function makeReportFixture(opts: { hostile?: boolean } = {}): Promise<ReportFixture> {
  const root = await mkdtemp(join(tmpdir(), "gm-report-"));
  const data = join(root, "data");
  const runDir = join(root, "run");
  const paths = runPaths(runDir);
  await mkdir(runDir, { recursive: true });

  const news: string[][] = [];
  for (let i = 1; i <= NEWS_COUNT; i++) {
    const title = `Story ${i} about ${pick(TOPICS, i)} in ${pick(US_STATES, i)}${i % 3 === 0 ? " with a longer tail of words" : ""}`;
    news.push([`N${i}`, pick(MIND_CATEGORIES, i), "sub", title, i % 4 === 0 ? "" : `Abstract ${i}.`, "https://x", "[]", "[]"]);
  }
  const behaviors: string[][] = [];
  const cold: string[] = [];
  // The same history in both splits, which tie in time: train (first in --data) is every user's source.
  const sources = new Map<string, RecordSource>();
  for (let u = 1; u <= USER_COUNT; u++) {
    // Every third user is cold (1–5 clicks), the rest warm (up to 30).
    const len = u % 3 === 0 ? (u % 5) + 1 : 6 + (u % 25);
    if (u % 3 === 0) cold.push(`U${u}`);
    const clicks = Array.from({ length: len }, (_, k) => `N${((u * 7 + k * 3) % NEWS_COUNT) + 1}`);
    sources.set(`U${u}`, { split: "MINDtest_train", clicks: [...clicks].reverse() });
    const history = clicks.join(" ");
    behaviors.push([String(u), `U${u}`, "11/15/2019 10:22:32 AM", history, `N${(u % NEWS_COUNT) + 1}-1 N${((u + 5) % NEWS_COUNT) + 1}-0`]);
  }
  await writeSplit(join(data, "MINDtest_train"), news, behaviors);
  await writeSplit(join(data, "MINDtest_dev"), news, behaviors.slice(0, 10));

  const rec = (stage: StageName, itemId: string, output: unknown) =>
    JSON.stringify(
      StageRecord.parse({ key: `${stage}:${itemId}`, stage, itemId, provider: "anthropic", model: "claude-test", output, usage: USAGE, attempts: 1, source: sources.get(itemId) }),
    ) + "\n";
  const fail = (stage: StageName, itemId: string, reason: string, lastAnswer: string) =>
    JSON.stringify(
      FailureRecord.parse({ key: `${stage}:${itemId}`, stage, itemId, provider: "anthropic", model: "claude-test", reason, message: `gave up on ${itemId}`, lastAnswer, usage: USAGE, attempts: 3 }),
    ) + "\n";

  // summarize: all news but two failures; N1's enhanced title is hostile when asked.
  let lines = "";
  let failures = "";
  for (let i = 1; i <= NEWS_COUNT; i++) {
    if (i === 7 || i === 8) {
      failures += fail("summarize", `N${i}`, i === 7 ? "invalid" : "refusal", i === 7 ? HOSTILE : "I can't help with that.");
      continue;
    }
    const title = opts.hostile && i === 1 ? `Enhanced ${HOSTILE}` : `Story ${i}: a clearer and somewhat longer enhanced title for readers`;
    lines += rec("summarize", `N${i}`, SummarizeOutput.parse({ title }));
  }
  // A failure later answered is not an open failure.
  failures += fail("summarize", "N9", "api-error", "");
  await writeFile(paths.records("summarize"), lines + rec("summarize", "N9", { title: "Story 9 answered on retry" }));
  await writeFile(paths.failures("summarize"), failures);
  await writeFile(paths.stageMeta("summarize"), JSON.stringify(meta("summarize", NEWS_COUNT, 2, { invalid: 1, refusal: 1 })));

  lines = "";
  for (let u = 1; u <= USER_COUNT; u++) {
    lines += rec("profile", `U${u}`, ProfileOutput.parse({ topics: [pick(TOPICS, u), pick(TOPICS, u + 3)], regions: u % 4 === 0 ? [pick(US_STATES, u)] : [] }));
  }
  await writeFile(paths.records("profile"), lines);
  await writeFile(paths.stageMeta("profile"), JSON.stringify(meta("profile", USER_COUNT, 0, {})));

  lines = "";
  for (const [k, userId] of cold.entries()) {
    const items = [0, 1].map((j) => ({
      title: opts.hostile && k === 0 && j === 0 ? `Pseudo ${HOSTILE}` : `Pseudo-news ${j + 1} for ${userId}`,
      abstract: `Generated abstract ${j + 1}.`,
      category: pick(MIND_CATEGORIES, k + j),
    }));
    lines += rec("generate", userId, GenerateOutput.parse({ items }));
  }
  // A torn last line from an interrupted append: skipped, counted.
  await writeFile(paths.records("generate"), lines + `{"key":"generate:U9`);
  await writeFile(paths.stageMeta("generate"), JSON.stringify(meta("generate", cold.length, 0, {})));
  return { root, data, runDir, cold };
}
