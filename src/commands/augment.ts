// augment = the chosen stages in registry order (by default GENRE's summarize → profile → generate,
// UP→CG; --stages adds or picks the opt-in describe, pick, factors) → merge, one set of flags, resumable: the stages skip every item already answered in --out, so
// re-running after an interruption continues where it stopped.
import { relative, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, UsageError, UserError, type Command, type CommandContext } from "../cli/command.js";
import { outputFolder } from "../cli/paths.js";
import { cappedPrice } from "../engine/budget.js";
import { engineOptions } from "../engine/config.js";
import { addModelCosts, modelCostTable, type ModelCost } from "../engine/dry-run.js";
import type { Manifest } from "../merge/manifest.js";
import { checkMergeOut } from "../merge/merge.js";
import { providerSpec } from "../providers/registry.js";
import { resolveModel } from "../providers/setup.js";
import { writeReport } from "../report/report.js";
import { augmentColdMode, ColdConfig, commonStageOptions, StageFlags, withData, type StageCommandConfig } from "../stages/options.js";
import { allStageConfig, allStageFlags, stages } from "../stages/registry.js";
import { runStage } from "../stages/run.js";
import type { Stage } from "../stages/stage.js";
import { MergeConfig, mergeOptions, mergeRequest, runMerge, stageMergeConfig } from "./merge.js";

/** What `--stages` takes: a stage's name, or a group's (factors: factors-users and factors-news). */
function stageChoices(): string[] {
  return [...new Set(stages().map((s) => s.group ?? s.name))];
}

/** The stages a plain augment runs: all but the opt-in ones (GENRE's three). */
function defaultStages(): string[] {
  return [...new Set(stages().filter((s) => !s.optIn).map((s) => s.group ?? s.name))];
}

/** "factors runs factors-users and factors-news": what a group name stands for. */
function groupsInWords(): string {
  const groups = stageChoices().filter((g) => !stages().some((s) => s.name === g));
  return groups.map((g) => `${g} runs ${stages().filter((s) => s.group === g).map((s) => s.name).join(" and ")}`).join("; ") || "each a stage";
}

/** `--stages a,b`: the named stages and groups, each checked against the registry. */
function zStages() {
  return z
    .string()
    .transform((value, ctx) => {
      const names = value.split(",").map((n) => n.trim()).filter(Boolean);
      const bad = names.find((n) => !stageChoices().includes(n) && !stages().some((s) => s.name === n));
      if (bad !== undefined || names.length === 0) {
        ctx.addIssue({ code: "custom", message: `${bad === undefined ? "no stage named" : `'${bad}' is not a stage`}: expected a comma-separated list of ${stageChoices().join(", ")}` });
        return z.NEVER;
      }
      return names;
    })
    .optional();
}

/** The stages augment runs, in registry order: those `--stages` names (by name or group), else the default ones. */
export function chosenStages(names: readonly string[] | undefined): Stage[] {
  const chosen = names ?? defaultStages();
  return stages().filter((s) => chosen.includes(s.name) || (s.group !== undefined && chosen.includes(s.group)));
}

/** augment's config: the merge flags, every stage's flags and, for a stage that runs otherwise in augment, its augment flags. */
export function augmentConfig() {
  const flags = Object.assign(allStageConfig(), ...stages().map((s) => s.augment?.config.shape ?? {}));
  return StageFlags.extend(MergeConfig.shape).extend({ stages: zStages() }).and(z.object(flags)).and(stageMergeConfig());
}
export type AugmentConfig = z.infer<ReturnType<typeof augmentConfig>>;

export interface AugmentResult {
  exitCode: number;
  manifest?: Manifest;
  reportPath?: string;
}

/**
 * Runs every stage into `config.out`, then merges; stops before merge when a stage failed too often,
 * was interrupted or reached --max-cost, which covers the stages together.
 */
export async function runAugment(config: AugmentConfig & { data: string[] }, ctx: CommandContext): Promise<AugmentResult> {
  const out = outputFolder(ctx.cwd, config.out, "--out");
  const shown = relative(ctx.cwd, out) || ".";
  try {
    await checkMergeOut({ data: config.data.map((d) => resolve(ctx.cwd, d)), out, force: config.force });
  } catch (e) {
    if (!config["dry-run"] || !(e instanceof UserError)) throw e;
    ctx.stderr.write(`augment: note: without --dry-run this would stop before the first stage: ${e.message}\n`);
  }
  if (config["max-cost"] !== undefined) {
    // Every stage asks the same model: a missing price stops the run before the first pays for anything.
    const spec = providerSpec(config.provider);
    if (spec.mode !== "offline") cappedPrice(spec, resolveModel(spec, config));
  }
  const chosen = chosenStages(config.stages);
  const estimates: ModelCost[][] = [];
  const ran: string[] = [];
  // What each stage run so far counts against --max-cost: the next one gets the cap less their sum.
  const capShare: { stage: string; usd: number }[] = [];
  for (const [i, { name: stage, augment }] of chosen.entries()) {
    const { config: stageConfig, note } = augment ? augment.configure(config, out, ctx) : { config, note: undefined };
    ctx.stderr.write(`augment: ${stage}${note ?? ""}\n`);
    ran.push(`${stage}${note ?? ""}`);
    const run = await runStage(stage, stageConfig, ctx, [...capShare]);
    if (run.exitCode !== 0) {
      const rest = chosen.slice(i + 1).map((s) => s.name);
      const before = `stopping before ${[...rest, "merge"].join(", ")}`;
      ctx.stderr.write(
        run.summary.stopped?.reason === "max-cost"
          ? `augment: ${stage} stopped at --max-cost, which covers every stage of this augment; ${before}. ` +
              `Raise --max-cost and run the same command to go on (nothing stored is asked again).\n`
          : `augment: ${stage} ${run.summary.stopped ? "was interrupted" : "failed for more than --max-failure-share of its items"}; ${before}. ` +
              `Run the same command again to ask only what is missing (see ${shown}/${stage}.failures.jsonl).\n`,
      );
      return { exitCode: run.exitCode };
    }
    if (run.summary.capSpentUsd !== undefined) capShare.push({ stage, usd: run.summary.capSpentUsd });
    if (run.summary.estimate) estimates.push(run.summary.estimate.models);
  }
  if (config["dry-run"]) {
    ctx.stdout.write(modelCostTable(addModelCosts(estimates), `the whole run (${ran.join(", ")})${config.pack > 1 ? `, --pack ${config.pack}` : ""}, every priced model`).join("\n") + "\n");
    ctx.stderr.write("augment: dry run: nothing sent, nothing merged\n");
    return { exitCode: 0 };
  }
  const given = ColdConfig.parse(config).cold;
  const cold = augmentColdMode(given, chosenStages(config.stages).map((s) => s.name));
  ctx.stderr.write(`augment: merge${cold !== given ? ` (--cold ${cold}: the stages run give cold users ${cold === "both" ? "pseudo-news and picks" : "picks"})` : ""}\n`);
  const manifest = await runMerge(mergeRequest(config.data, config.out, { ...config, cold }, ctx.cwd), ctx);
  const report = await writeReport(out, { data: config.data.map((d) => resolve(ctx.cwd, d)) });
  for (const warning of report.warnings) ctx.stderr.write(`report: ${warning}\n`);
  ctx.stderr.write(`report: ${relative(ctx.cwd, report.path)} (open it in a browser)\n`);
  return { exitCode: 0, manifest, reportPath: report.path };
}

/** Built from the registry: it runs, and takes the flags of, every stage. */
export const augmentCommand = (): Command => defineCommand({
  name: "augment",
  summary: "run summarize, profile, generate (chained on the profiles) or the --stages named, then merge, in one go; resumable",
  options: {
    ...commonStageOptions,
    stages: { type: "string", arg: "<a,b>", description: `the stages to run (default ${defaultStages().join(",")}; also ${stageChoices().filter((n) => !defaultStages().includes(n)).join(", ") || "none"})` },
    ...allStageFlags(),
    ...Object.assign({}, ...stages().map((s) => s.augment?.flags ?? {})),
    ...engineOptions,
    "max-cost": { ...engineOptions["max-cost"]!, description: "stop sending before the stages run, together, would pass this many dollars of cost in this --out (earlier runs included); exit 3, no merge" },
    ...mergeOptions(),
  },
  schema: augmentConfig().and(z.object({ positionals: z.array(z.string()).max(0) })),
  details: `Runs, into one run folder (--out): ${defaultStages().join(", ")}, then merge (see their --help);
--stages names the stages to run instead, always in this order: ${stageChoices().join(", ")}
(${groupsInWords()}).
Merge uses the records of every stage found in --out, whichever ran this time.
Every stage stores each answer as it arrives and skips items already answered, so after an
interruption (Ctrl-C, a crash, a rate limit) the same command continues where it stopped.
--max-cost caps the stages together: each gets what is left of the cap after the stages before it
(what each has cost in --out, earlier runs included), and reaching it stops the run (exit 3) before merge.
--dry-run prints each stage's estimate and merges nothing. Merge refuses to replace earlier merged
output in --out unless --force is given, and an --out whose merged splits would land in an input
split (exit 2; 4 when another run holds a stage's lock); augment checks both before its first
stage, so nothing is sent when merge would refuse.`,
  async run(config, ctx) {
    if (config.records.length > 0 && !config.records.some((r) => resolve(ctx.cwd, r) === resolve(ctx.cwd, config.out))) {
      throw new UsageError("--records: augment writes its records to --out; include --out among --records (or leave --records out)");
    }
    return (await runAugment(withData(config, ctx), ctx)).exitCode;
  },
});
