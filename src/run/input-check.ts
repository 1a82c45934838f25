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

async function stampOf(split: SplitDir, lenient: boolean): Promise<string> {
  const [news, behaviors] = await Promise.all([stat(split.newsFile), stat(split.behaviorsFile)]);
  return [lenient ? "lenient" : "strict", split.newsFile, news.size, news.mtimeMs, split.behaviorsFile, behaviors.size, behaviors.mtimeMs].join("|");
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
  /** The run folder; the passing splits are remembered there unless `persist` is false (--dry-run). */
  out: string;
  persist: boolean;
  /** How a path is shown in the message. */
  show: (path: string) => string;
}

/** Throws a UserError (exit 1) naming the first error of the first split that has one. */
export async function checkInputSplits(splits: readonly SplitDir[], opts: InputCheckOptions): Promise<void> {
  const file = runPaths(opts.out).inputCheck;
  const remembered = new Set(readStamps(file));
  const fresh: string[] = [];
  for (const split of splits) {
    const stamp = await stampOf(split, opts.lenient);
    if (passed.has(stamp) || remembered.has(stamp)) continue;
    const report = await validateSplit(split, { coldMax: 5, lenient: opts.lenient, displayPath: opts.show, examples: 1 });
    const errors = report.problems.filter((p) => p.severity === "error" && !(opts.lenient && SKIPPED_WHEN_LENIENT.has(p.code)));
    const first = errors[0];
    if (first) {
      const more = errors.length > 1 ? `, and ${errors.length - 1} more kind${errors.length > 2 ? "s" : ""} of error` : "";
      throw new UserError(
        `input split ${opts.show(split.dir)}: ${first.message}: ${first.count}, e.g. ${first.examples[0]}${more}. ` +
          `Nothing was sent; 'genre-mind validate ${opts.show(split.dir)}' lists every problem.`,
      );
    }
    passed.add(stamp);
    fresh.push(stamp);
  }
  if (fresh.length > 0 && opts.persist) {
    // An older stamp of the same files (before an edit) is dropped, so the file stays small.
    const sameFiles = (s: string) => s.split("|").slice(0, 2).join("|");
    const replaced = new Set(fresh.map(sameFiles));
    const kept = [...remembered].filter((s) => !replaced.has(sameFiles(s)));
    await writeFileAtomic(file, JSON.stringify({ passed: [...kept, ...fresh] }, null, 2) + "\n");
  }
}
