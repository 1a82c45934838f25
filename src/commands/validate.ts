import { resolve } from "node:path";
import { z } from "zod";
import { defineCommand, shownPath, zBool, zInt } from "../cli/command.js";
import { MindFormatError } from "../mind/errors.js";
import { DEFAULT_COLD_MAX } from "../mind/history-rule.js";
import { resolveSplits } from "../mind/splits.js";
import { errorCount, formatReport, validateSplit, warningCount, type SplitReport } from "../mind/validate.js";

export const validateCommand = defineCommand({
  name: "validate",
  summary: "check MIND splits: counts per split and every problem a trainer would trip on",
  positionals: [{ name: "dir", description: "a split folder (news.tsv + behaviors.tsv) or a folder of split folders", required: true, variadic: true }],
  options: {
    "cold-max": { type: "string", arg: "<n>", description: `users with 1..n clicks count as cold (default ${DEFAULT_COLD_MAX})` },
    lenient: { type: "boolean", description: "count and skip malformed lines (still errors) instead of stopping at the first" },
    json: { type: "boolean", description: "print the report as JSON" },
  },
  schema: z.object({
    "cold-max": zInt(1).default(DEFAULT_COLD_MAX),
    lenient: zBool.default(false),
    json: zBool.default(false),
    positionals: z.array(z.string()).min(1),
  }),
  details: "Exit status: 0 when clean (warnings allowed), 1 when there are errors, 2 for bad usage.",
  async run(config, ctx) {
    const show = (path: string) => shownPath(path, ctx.cwd);
    const splits = await resolveSplits(config.positionals.map((d) => resolve(ctx.cwd, d)));
    const reports: SplitReport[] = [];
    for (const split of splits) {
      try {
        reports.push(await validateSplit(split, { coldMax: config["cold-max"], lenient: config.lenient, displayPath: show }));
      } catch (e) {
        if (!(e instanceof MindFormatError)) throw e;
        const where = `${show(e.file)}:${e.line}`;
        if (config.json) {
          ctx.stdout.write(JSON.stringify({ ok: false, stoppedAt: { file: show(e.file), line: e.line, field: e.field ?? null, problem: e.problem }, splits: reports }, null, 2) + "\n");
        }
        ctx.stderr.write(
          `genre-mind validate: ${where}${e.field ? ` [${e.field}]` : ""}: ${e.problem}\n` +
            "Run with --lenient to count and skip malformed lines and check the rest.\n",
        );
        return 1;
      }
    }
    const errors = errorCount(reports);
    if (config.json) {
      ctx.stdout.write(JSON.stringify({ ok: errors === 0, errors, warnings: warningCount(reports), splits: reports.map((r) => ({ ...r, dir: show(r.dir) })) }, null, 2) + "\n");
    } else {
      ctx.stdout.write(formatReport(reports, show));
    }
    return errors === 0 ? 0 : 1;
  },
});
