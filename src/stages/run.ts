// Drives a stage: data → catalog → items (--shard, --limit) → requests → engine → <out>/<stage>.meta.json.
// The stage commands and `augment` (summarize → profile → generate --chain) call runStage.
import { stat } from "node:fs/promises";
import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { shownPath, UserError, type CommandContext } from "../cli/command.js";
import { inputFolder, outputFolder } from "../cli/paths.js";
import { runEngine, type EngineSummary } from "../engine/engine.js";
import { readJsonl } from "../engine/store.js";
import { StageRecord, type LlmRequest, type StageName } from "../engine/types.js";
import { loadCandidates, loadCatalog, type Catalog } from "../mind/catalog.js";
import { describeSources, holdsAll } from "../mind/history-rule.js";
import { SkipLog } from "../mind/errors.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { checkInputSplits } from "../run/input-check.js";
import { runPaths, StageMeta } from "../run/folder.js";
import { MAX_COST_EXIT } from "../engine/budget.js";
import { INTERRUPTED_EXIT, listenForInterrupt } from "../run/interrupt.js";
import { acquireLock } from "../run/lock.js";
import { writeFileAtomic } from "../util/atomic.js";
import { generateStage } from "./generate.js";
import type { StageConfig } from "./options.js";
import { selectItems } from "./options.js";
import { ProfileOutput } from "./outputs.js";
import { profileStage } from "./profile.js";
import type { ChainProfile, Stage, StageInput, StageOptions } from "./stage.js";
import { summarizeStage } from "./summarize.js";
import { BUNDLED_PROMPTS_DIR, loadTemplate, templateHashes } from "./template.js";

export const STAGES: Record<StageName, Stage> = { summarize: summarizeStage, profile: profileStage, generate: generateStage };

export function stageOptionsOf(config: StageConfig): StageOptions {
  return { recent: config.recent, coldMax: config["cold-max"], k: config.k, chain: config.chain };
}

/** Everything a stage needs except the choice of items: shared by runStage and the prompt command. */
export interface PreparedStage {
  stage: Stage;
  input: StageInput;
  promptHashes: Record<string, string>;
}

/** `check` runs on the input splits before the catalog is loaded (runStage: the input check). */
export async function prepareStage(
  name: StageName,
  config: StageConfig,
  ctx: CommandContext,
  check?: (splits: SplitDir[]) => Promise<void>,
): Promise<PreparedStage> {
  const stage = STAGES[name];
  const options = stageOptionsOf(config);
  // Templates first: a typo in a prompt should not wait for a large catalog to load.
  const dir = config.prompts ? inputFolder(ctx.cwd, config.prompts, "--prompts") : BUNDLED_PROMPTS_DIR;
  const specs = stage.templates(options);
  const system = loadTemplate(dir, specs.system);
  const user = loadTemplate(dir, specs.user);
  const splits = await resolveSplits(config.data.map((d) => resolve(ctx.cwd, d)));
  await check?.(splits);
  const skipped = new SkipLog();
  const catalog = await loadCatalog(splits, { lenient: config.lenient, skipped, newsOnly: name === "summarize" });
  if (skipped.count > 0) {
    ctx.stderr.write(`note: skipped ${skipped.count} malformed line(s) (--lenient), e.g. ${skipped.examples[0]?.message}\n`);
  }
  return { stage, input: { catalog, options, system, user }, promptHashes: templateHashes([system, user]) };
}

/**
 * generate --chain reads `<out>/profile.jsonl` (the last record of a user wins). A profile serves a
 * user only when it was written from clicks of their source history (a record without its source,
 * written before records kept one, does not). Users without such a profile are left out with a
 * note while they are at most --max-failure-share of the items (a profile run may fail a few
 * users); beyond that, or without the file, the run stops.
 */
export async function loadProfiles(
  out: string,
  catalog: Catalog,
  itemIds: readonly string[],
  maxShare: number,
  ctx: CommandContext,
): Promise<{ profiles: Map<string, ChainProfile>; kept: string[] }> {
  const file = runPaths(out).records("profile");
  const shown = relative(ctx.cwd, file) || file;
  if (!existsSync(file)) {
    throw new UserError(`generate --chain needs the user profiles in ${shown}, which does not exist: run 'genre-mind profile --out ${relative(ctx.cwd, out) || "."}' with the same --data first`);
  }
  const wanted = new Set(itemIds);
  const { records } = await readJsonl(file, StageRecord.extend({ output: ProfileOutput }));
  const profiles = new Map<string, ChainProfile>();
  for (const r of records) {
    if (!wanted.has(r.itemId)) continue;
    const history = catalog.users.get(r.itemId)?.history ?? [];
    if (r.source && holdsAll(new Set(history), r.source.clicks)) profiles.set(r.itemId, { output: r.output, source: r.source });
    else profiles.delete(r.itemId);
  }
  const kept = itemIds.filter((id) => profiles.has(id));
  const lacking = itemIds.length - kept.length;
  if (lacking > 0) {
    const examples = itemIds.filter((id) => !profiles.has(id)).slice(0, 3).join(", ");
    const message = `${lacking} of ${itemIds.length} cold users have no profile written from their source history in ${shown} (e.g. ${examples})`;
    if (lacking / itemIds.length > maxShare) {
      throw new UserError(`generate --chain: ${message}: run 'genre-mind profile' over the same --data into the same --out first`);
    }
    ctx.stderr.write(`note: ${message}; they are left out of this run\n`);
  }
  return { profiles, kept };
}

export interface StageRun {
  summary: EngineSummary;
  /** Undefined for --dry-run, which writes no meta. */
  meta?: StageMeta;
  /** What the command returns: 3 when --max-cost stopped it, 130/143 after Ctrl-C/SIGTERM, 1 when more than --max-failure-share of the items failed. */
  exitCode: number;
}

/** The requests of the selected items (`only`: just these, for the prompt command). */
export async function buildRequests(
  prepared: PreparedStage,
  config: StageConfig,
  ctx: CommandContext,
  only?: string[],
): Promise<{ requests: LlmRequest[]; items: string[] }> {
  const { stage, input } = prepared;
  let items = only ?? selectItems(stage.items(input.catalog, input.options), config.shard, config.limit);
  if (input.options.chain) {
    const { profiles, kept } = await loadProfiles(resolve(ctx.cwd, config.out), input.catalog, items, config["max-failure-share"], ctx);
    input.profiles = profiles;
    items = kept;
  }
  if (stage.usesCandidates) input.candidates = await loadCandidates(input.catalog, new Set(items), { lenient: config.lenient });
  return { requests: stage.requests(input, items), items };
}

export async function runStage(name: StageName, config: StageConfig, ctx: CommandContext): Promise<StageRun> {
  const out = outputFolder(ctx.cwd, config.out, "--out");
  // Taken first, so a second run on the same folder and stage refuses before loading anything; a dry
  // run writes nothing and needs no lock.
  const lock = config["dry-run"] ? undefined : await acquireLock(runPaths(out).lock(name), `${name} in ${relative(ctx.cwd, out) || out}`);
  // Ctrl-C stops the run cleanly (a dry run sends nothing: the default handling serves).
  const interrupt = config["dry-run"] ? undefined : listenForInterrupt(ctx.stderr, config.timeout);
  try {
    return await runStageLocked(name, config, ctx, out, interrupt?.signal);
  } finally {
    interrupt?.dispose();
    await lock?.release();
  }
}

/** The command's exit status: the cap and a signal come first, then the share of failed items. */
function exitCodeOf(summary: EngineSummary, interrupt?: AbortSignal): number {
  if (summary.stopped?.reason === "max-cost") return MAX_COST_EXIT;
  if (summary.stopped?.reason === "interrupted") return INTERRUPTED_EXIT[interrupt?.reason === "SIGTERM" ? "SIGTERM" : "SIGINT"];
  return summary.failedShareExceeded ? 1 : 0;
}

async function runStageLocked(name: StageName, config: StageConfig, ctx: CommandContext, out: string, interrupt?: AbortSignal): Promise<StageRun> {
  const prepared = await prepareStage(name, config, ctx, (splits) =>
    checkInputSplits(splits, { lenient: config.lenient, out, persist: !config["dry-run"], show: (p) => shownPath(p, ctx.cwd) }),
  );
  const { requests, items } = await buildRequests(prepared, config, ctx);
  if (config["dry-run"] && name !== "summarize") {
    const { catalog, options } = prepared.input;
    ctx.stdout.write(describeSources(name, catalog.users, catalog.timeline, items, name === "generate" ? options.coldMax : undefined));
  }
  const summary = await runEngine({ stage: name, requests, runDir: out, interrupt }, config, ctx);
  if (summary.dryRun) return { summary, exitCode: 0 };
  const meta: StageMeta = {
    stage: name,
    provider: summary.provider,
    model: summary.model,
    promptHashes: prepared.promptHashes,
    options: requestShapingOptions(name, config),
    splits: await splitSizes(prepared.input.catalog),
    counts: summary.counts,
    usage: summary.usage,
    costUsd: summary.costUsd,
    finishedAt: new Date().toISOString(),
  };
  await writeFileAtomic(runPaths(out).stageMeta(name), JSON.stringify(StageMeta.parse(meta), null, 2) + "\n");
  return { summary, meta, exitCode: exitCodeOf(summary, interrupt) };
}

function requestShapingOptions(name: StageName, config: StageConfig): Record<string, unknown> {
  const common = { limit: config.limit ?? null, shard: config.shard ? `${config.shard.k}/${config.shard.n}` : null };
  if (name === "profile") return { recent: config.recent, ...common };
  if (name === "generate") return { coldMax: config["cold-max"], k: config.k, chain: config.chain, ...common };
  return common;
}

export async function splitSizes(catalog: Catalog): Promise<StageMeta["splits"]> {
  return Promise.all(
    catalog.splits.map(async (s) => ({ name: s.name, newsBytes: (await stat(s.newsFile)).size, behaviorsBytes: (await stat(s.behaviorsFile)).size })),
  );
}
