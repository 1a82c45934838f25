// Before a stage pays for a single request, its input splits pass the checks of `genre-mind
// validate` (the same code: one streaming pass per file). A bad label found by the profile stage
// after summarize has paid for every news item is money spent on data that merge cannot use.
// A split that passed is remembered by its files' size and mtime, in this process and in the run
// folder, so augment's later stages and a resumed run do not read a large split again.
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { z } from "zod";
import { UserError } from "../cli/command.js";
import type { SplitDir } from "../mind/splits.js";
import { validateSplit, type ProblemCode } from "../mind/validate.js";
import { writeFileAtomic } from "../util/atomic.js";
import { runPaths } from "./folder.js";

/** Problems of lines a --lenient read skips: under --lenient the stage skips them too. */
const SKIPPED_WHEN_LENIENT: ReadonlySet<ProblemCode> = new Set(["malformed-line", "bad-label", "mixed-labels"]);

const passed = new Set<string>();

const Stamp = z.object({ passed: z.array(z.string()) });

/** How a split was checked: strict, lenient (a stage's --lenient: malformed lines skipped), or for merge (every error but bytes that are not UTF-8, which merge copies as they are). */
type Level = "strict" | "lenient" | "merge";

/** The stamps a check at this level may take as passed: a stricter check passed counts. */
const ACCEPTS: Record<Level, readonly Level[]> = { strict: ["strict"], lenient: ["lenient", "strict", "merge"], merge: ["merge", "strict"] };

async function stampOf(split: SplitDir, level: Level): Promise<string> {
  const [news, behaviors] = await Promise.all([stat(split.newsFile), stat(split.behaviorsFile)]);
  return [level, split.newsFile, news.size, news.mtimeMs, split.behaviorsFile, behaviors.size, behaviors.mtimeMs].join("|");
}

/** A stamp at another level, for the same files. */
function atLevel(stamp: string, level: Level): string {
  return [level, ...stamp.split("|").slice(1)].join("|");
}

function readStamps(file: string): string[] {
  try {
    return Stamp.parse(JSON.parse(readFileSync(file, "utf8"))).passed;
  } catch {
    // No file yet, or a damaged one: it is only a cache, the check runs again.
    return [];
  }
}

export interface InputCheckOptions {
  lenient: boolean;
  /** Merge's check: every error stops it but bytes that are not UTF-8 (merge copies them as they are); `lenient` is ignored. */
  forMerge?: boolean;
  /** The run folder; the passing splits are remembered there unless `persist` is false (--dry-run). */
  out: string;
  persist: boolean;
  /** How a path is shown in the message. */
  show: (path: string) => string;
  /** What the message says was not done (default: "Nothing was sent"). */
  nothing?: string;
}

/**
 * Throws a UserError (exit 1) naming the first error of the first split that has one. Returns the
 * stamps of the splits that passed now (not remembered before), for rememberPassed when `persist` is false.
 */
export async function checkInputSplits(splits: readonly SplitDir[], opts: InputCheckOptions): Promise<string[]> {
  const file = runPaths(opts.out).inputCheck;
  const remembered = new Set(readStamps(file));
  const level: Level = opts.forMerge ? "merge" : opts.lenient ? "lenient" : "strict";
  const fresh: string[] = [];
  for (const split of splits) {
    const stamp = await stampOf(split, level);
    if (ACCEPTS[level].some((l) => remembered.has(atLevel(stamp, l)))) continue;
    // Passed earlier in this process, not yet remembered in this run folder.
    const here = ACCEPTS[level].map((l) => atLevel(stamp, l)).find((s) => passed.has(s));
    if (here) {
      fresh.push(here);
      continue;
    }
    const lenientRead = opts.forMerge === true || opts.lenient;
    const report = await validateSplit(split, { coldMax: 5, lenient: lenientRead, displayPath: opts.show, examples: 1 });
    const errors = report.problems.filter((p) => p.severity === "error" && !(!opts.forMerge && opts.lenient && SKIPPED_WHEN_LENIENT.has(p.code)));
    const first = errors[0];
    if (first) {
      const more = errors.length > 1 ? `, and ${errors.length - 1} more kind${errors.length > 2 ? "s" : ""} of error` : "";
      throw new UserError(
        `input split ${opts.show(split.dir)}: ${first.message}: ${first.count}, e.g. ${first.examples[0]}${more}. ` +
          `${opts.nothing ?? "Nothing was sent"}; 'genre-mind validate ${opts.show(split.dir)}' lists every problem.`,
      );
    }
    passed.add(stamp);
    fresh.push(stamp);
  }
  if (opts.persist) await rememberPassed(opts.out, fresh);
  return fresh;
}

/** Remembers in the run folder splits that passed (checkInputSplits' stamps). */
export async function rememberPassed(out: string, fresh: readonly string[]): Promise<void> {
  if (fresh.length === 0) return;
  const file = runPaths(out).inputCheck;
  const remembered = readStamps(file);
  // An older stamp of the same files at the same level (before an edit) is dropped, so the file stays small.
  const sameFiles = (s: string) => s.split("|").slice(0, 2).join("|");
  const replaced = new Set(fresh.map(sameFiles));
  const kept = remembered.filter((s) => !replaced.has(sameFiles(s)));
  await writeFileAtomic(file, JSON.stringify({ passed: [...kept, ...fresh] }, null, 2) + "\n");
}
