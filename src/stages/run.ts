// Drives a stage: data → catalog → items (--shard, --limit) → requests → engine → <out>/<stage>.meta.json.
// The stage commands and `augment` (summarize → profile → generate --chain) call runStage.
import { stat } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { shownPath, type CommandContext } from "../cli/command.js";
import { inputFolder, outputFolder } from "../cli/paths.js";
import { MAX_COST_EXIT, type CapShare } from "../engine/budget.js";
import { runEngine, type EngineSummary } from "../engine/engine.js";
import type { LlmRequest } from "../engine/types.js";
import { loadCandidates, loadCatalog, type Catalog } from "../mind/catalog.js";
import { SkipLog } from "../mind/errors.js";
import { resolveSplits, type SplitDir } from "../mind/splits.js";
import { runPaths, StageMeta } from "../run/folder.js";
import { checkInputSplits } from "../run/input-check.js";
import { INTERRUPTED_EXIT, listenForInterrupt } from "../run/interrupt.js";
import { acquireLock } from "../run/lock.js";
import { writeFileAtomic } from "../util/atomic.js";
import { KINDS } from "./kinds.js";
import type { StageCommandConfig } from "./options.js";
import { selectItems } from "./options.js";
import { stageNamed } from "./registry.js";
import type { Stage, StageInput } from "./stage.js";
import { BUNDLED_PROMPTS_DIR, loadTemplate, templateHashes } from "./template.js";

/** Everything a stage needs except the choice of items: shared by runStage and the prompt command. */
export interface PreparedStage {
  stage: Stage;
  input: StageInput;
  promptHashes: Record<string, string>;
}

/** `check` runs on the input splits before the catalog is loaded (runStage: the input check). */
export async function prepareStage(
  name: string,
  config: StageCommandConfig,
  ctx: CommandContext,
  check?: (splits: SplitDir[]) => Promise<void>,
): Promise<PreparedStage> {
  const stage = stageNamed(name);
  const options = stage.options(config);
  // Templates first: a typo in a prompt should not wait for a large catalog to load.
  const dir = config.prompts ? inputFolder(ctx.cwd, config.prompts, "--prompts") : BUNDLED_PROMPTS_DIR;
  const specs = stage.templates(options);
  const system = loadTemplate(dir, specs.system);
  const user = loadTemplate(dir, specs.user);
  const splits = await resolveSplits(config.data.map((d) => resolve(ctx.cwd, d)));
  await check?.(splits);
  const skipped = new SkipLog();
  const catalog = await loadCatalog(splits, { lenient: config.lenient, skipped, newsOnly: !KINDS[stage.kind].needsBehaviors, splitTimes: KINDS[stage.kind].timeOrdered });
  if (skipped.count > 0) {
    ctx.stderr.write(`note: skipped ${skipped.count} malformed line(s) (--lenient), e.g. ${skipped.examples[0]?.message}\n`);
  }
  return { stage, input: { catalog, options, system, user }, promptHashes: templateHashes([system, user]) };
}

export interface StageRun {
  summary: EngineSummary;
  /** Undefined for --dry-run, which writes no meta. */
  meta?: StageMeta;
  /** What the command returns: 3 when --max-cost stopped it, 130/143 after Ctrl-C/SIGTERM, 1 when more than --max-failure-share of the items failed. */
  exitCode: number;
}

/** Items whose requests are built at a time: the engine asks for them as it goes. */
const REQUEST_SLICE = 512;

/**
 * The IDs of a stage's items, held as one string: a million user IDs are then one string for the
 * run's length instead of a million, and the garbage collector has that much less to walk and to
 * size the heap by. IDs are TSV fields, so they hold no line break.
 */
export class ItemList implements Iterable<string> {
  private readonly text: string;
  readonly length: number;

  constructor(ids: readonly string[]) {
    this.text = ids.join("\n");
    this.length = ids.length;
  }

  /** The IDs, `size` at a time. */
  *slices(size: number): Generator<string[]> {
    if (this.length === 0) return;
    let slice: string[] = [];
    for (let s = 0; s <= this.text.length; ) {
      let e = this.text.indexOf("\n", s);
      if (e === -1) e = this.text.length;
      slice.push(this.text.slice(s, e));
      if (slice.length === size) {
        yield slice;
        slice = [];
      }
      s = e + 1;
    }
    if (slice.length > 0) yield slice;
  }

  *[Symbol.iterator](): Generator<string> {
    for (const slice of this.slices(REQUEST_SLICE)) yield* slice;
  }
}

/**
 * The requests of the selected items (`only`: just these, for the prompt command), built a slice of
 * items at a time as they are read, and built anew each time `requests` is called (a batch run plans
 * them again to collect a batch): a MIND-large stage never holds every prompt at once.
 */
export async function buildRequests(
  prepared: PreparedStage,
  config: StageCommandConfig,
  ctx: CommandContext,
  only?: string[],
): Promise<{ requests: () => Iterable<LlmRequest>; items: ItemList }> {
  const { stage, input } = prepared;
  // A stage that may drop items in prepare gets them before --limit, so a trial counts the items it can serve.
  const limit = stage.prepare ? undefined : config.limit;
  let items = only ?? selectItems(stage.items(input.catalog, input.options), config.shard, limit);
  let made: unknown;
  if (stage.prepare) {
    ({ items, prepared: made } = await stage.prepare(input, items, { out: resolve(ctx.cwd, config.out), config, ctx }));
    if (!only && config.limit !== undefined) items = items.slice(0, config.limit);
  }
  if (stage.usesCandidates) input.candidates = await loadCandidates(input.catalog, new Set(items), { lenient: config.lenient });
  const list = new ItemList(items);
  const requests = function* (): Generator<LlmRequest> {
    for (const slice of list.slices(REQUEST_SLICE)) yield* stage.requests(input, slice, made);
  };
  return { requests, items: list };
}

/** `capShare`: augment's stages run before this one under the same --max-cost (EngineRun.capShare). */
export async function runStage(name: string, config: StageCommandConfig, ctx: CommandContext, capShare?: CapShare): Promise<StageRun> {
  const out = outputFolder(ctx.cwd, config.out, "--out");
  // Taken first, so a second run on the same folder and stage refuses before loading anything; a dry
  // run writes nothing and needs no lock.
  const lock = config["dry-run"] ? undefined : await acquireLock(runPaths(out).lock(name), `${name} in ${relative(ctx.cwd, out) || out}`);
  // Ctrl-C stops the run cleanly (a dry run sends nothing: the default handling serves).
  const interrupt = config["dry-run"] ? undefined : listenForInterrupt(ctx.stderr, config.timeout);
  try {
    return await runStageLocked(name, config, ctx, out, interrupt?.signal, capShare);
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

async function runStageLocked(name: string, config: StageCommandConfig, ctx: CommandContext, out: string, interrupt?: AbortSignal, capShare?: CapShare): Promise<StageRun> {
  const prepared = await prepareStage(name, config, ctx, async (splits) => {
    await checkInputSplits(splits, { lenient: config.lenient, out, persist: !config["dry-run"], show: (p) => shownPath(p, ctx.cwd) });
  });
  const { stage } = prepared;
  const { requests, items } = await buildRequests(prepared, config, ctx);
  if (config["dry-run"] && stage.describeItems) {
    const { catalog, options } = prepared.input;
    ctx.stdout.write(stage.describeItems(catalog, options, items));
  }
  const selection = Object.entries(runOptions(config))
    .flatMap(([k, v]) => (v === null ? [] : [`--${k} ${String(v)}`]))
    .join(" ");
  const summary = await runEngine({ stage: name, requests, items: items.length, runDir: out, interrupt, capShare, selection }, config, ctx);
  if (summary.dryRun) return { summary, exitCode: 0 };
  const meta: StageMeta = {
    stage: name,
    provider: summary.provider,
    model: summary.model,
    promptHashes: prepared.promptHashes,
    options: { ...stage.metaOptions(prepared.input.options), ...runOptions(config) },
    splits: await splitSizes(prepared.input.catalog),
    counts: summary.counts,
    usage: summary.usage,
    runCostUsd: summary.costUsd,
    finishedAt: new Date().toISOString(),
  };
  await writeFileAtomic(runPaths(out).stageMeta(name), JSON.stringify(StageMeta.parse(meta), null, 2) + "\n");
  return { summary, meta, exitCode: exitCodeOf(summary, interrupt) };
}

/** The options every stage meta records after the stage's own: which items a run took. */
function runOptions(config: StageCommandConfig): Record<string, unknown> {
  return { limit: config.limit ?? null, shard: config.shard ? `${config.shard.k}/${config.shard.n}` : null };
}

export async function splitSizes(catalog: Catalog): Promise<StageMeta["splits"]> {
  return Promise.all(
    catalog.splits.map(async (s) => ({ name: s.name, newsBytes: (await stat(s.newsFile)).size, behaviorsBytes: (await stat(s.behaviorsFile)).size })),
  );
}
