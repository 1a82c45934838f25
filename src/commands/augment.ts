// augment = summarize → profile → generate (UP→CG by default) → merge, one set of flags, resumable:
// the stages skip every item already answered in --out, so re-running after an interruption
// continues where it stopped.
import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, UserError, zBool, type CommandContext } from "../cli/command.js";
import { engineOptions } from "../engine/config.js";
import { STAGE_NAMES } from "../engine/types.js";
import type { Manifest } from "../merge/manifest.js";
import { writeReport } from "../report/report.js";
import { runPaths } from "../run/folder.js";
import { commonStageOptions, StageConfig, stageFlagOptions } from "../stages/options.js";
import { runStage } from "../stages/run.js";
import { MergeConfig, mergeOptions, mergeRequest, runMerge } from "./merge.js";

export const AugmentConfig = StageConfig.extend(MergeConfig.shape).extend({
  // GENRE's stronger variant (UP→CG) is the default here; a single stage command defaults to false.
  chain: zBool.default(true),
  "no-chain": zBool.default(false),
});
export type AugmentConfig = z.infer<typeof AugmentConfig>;

export interface AugmentResult {
  exitCode: number;
  manifest?: Manifest;
  reportPath?: string;
}

/** Runs the three stages into `config.out`, then merges; stops before merge when a stage failed too often. */
export async function runAugment(config: AugmentConfig, ctx: CommandContext): Promise<AugmentResult> {
  const chain = config.chain && !config["no-chain"];
  const out = resolve(ctx.cwd, config.out);
  const shown = relative(ctx.cwd, out) || ".";
  for (const stage of STAGE_NAMES) {
    const stageConfig: StageConfig = { ...config, chain: stage === "generate" && chain };
    if (stage === "generate" && chain && config["dry-run"] && !existsSync(runPaths(out).records("profile"))) {
      // A dry run stores no profiles, and the chained prompt needs them: estimate the plain prompt.
      ctx.stderr.write("augment: dry run without stored profiles: generate is estimated without --chain\n");
      stageConfig.chain = false;
    }
    ctx.stderr.write(`augment: ${stage}${stageConfig.chain ? " (chained on the profiles)" : ""}\n`);
    const run = await runStage(stage, stageConfig, ctx);
    if (run.exitCode !== 0) {
      const why = run.summary.stopped
        ? run.summary.stopped.reason === "max-cost"
          ? "stopped at --max-cost"
          : "was interrupted"
        : "failed for more than --max-failure-share of its items";
      ctx.stderr.write(
        `augment: ${stage} ${why}; stopping before merge. ` +
          `Run the same command again to ask only what is missing (see ${shown}/${stage}.failures.jsonl).\n`,
      );
      return { exitCode: run.exitCode };
    }
  }
  if (config["dry-run"]) {
    ctx.stderr.write("augment: dry run: nothing sent, nothing merged\n");
    return { exitCode: 0 };
  }
  ctx.stderr.write("augment: merge\n");
  const manifest = await runMerge(mergeRequest(config.data, config.out, config, ctx.cwd), ctx);
  const report = await writeReport(out, { data: config.data.map((d) => resolve(ctx.cwd, d)) });
  for (const warning of report.warnings) ctx.stderr.write(`report: ${warning}\n`);
  ctx.stderr.write(`report: ${relative(ctx.cwd, report.path)} (open it in a browser)\n`);
  return { exitCode: 0, manifest, reportPath: report.path };
}

export const augmentCommand = defineCommand({
  name: "augment",
  summary: "run summarize, profile, generate (chained on the profiles) and merge in one go; resumable",
  options: {
    ...commonStageOptions,
    ...stageFlagOptions,
    chain: { type: "string", arg: "<true|false>", description: "condition generate on the profile topics (UP→CG; default true)" },
    "no-chain": { type: "boolean", description: "same as --chain false: plain generate (CG)" },
    ...engineOptions,
    ...mergeOptions,
  },
  schema: AugmentConfig.extend({ positionals: z.array(z.string()).max(0) }),
  details: `Runs, into one run folder (--out): summarize, profile, generate, then merge (see their --help).
Every stage stores each answer as it arrives and skips items already answered, so after an
interruption (Ctrl-C, a crash, a rate limit) the same command continues where it stopped.
--dry-run prints each stage's estimate and merges nothing. Merge refuses to replace earlier merged
output in --out unless --force is given.`,
  async run(config, ctx) {
    if (config.records.length > 0 && !config.records.some((r) => resolve(ctx.cwd, r) === resolve(ctx.cwd, config.out))) {
      throw new UserError("--records: augment writes its records to --out; include --out among --records (or leave --records out)");
    }
    return (await runAugment(config, ctx)).exitCode;
  },
});
