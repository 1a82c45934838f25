// The engine: turns a stage's requests into validated records, in three parts. Planning (plan.ts)
// keys each request and decides what is sent at all; the session (session.ts) stores answers,
// re-asks invalid ones and keeps counts and cost; a runner per provider mode (offline, live, batch)
// drives the items through. This file wires them for one run and prints the summary. Stages know
// news; the engine knows none of it.
import { providerSpec } from "../providers/registry.js";
import { resolveModel } from "../providers/setup.js";
import type { BatchLimits, ProviderSpec } from "../providers/types.js";
import { runPaths, type StageCounts } from "../run/folder.js";
import { UserError, type CommandContext } from "../cli/command.js";
import { openBatches, runBatches } from "./batch-runner.js";
import { shareText, shareUsd, stageBudget, storedSpendUsd, type CapShare } from "./budget.js";
import type { EngineConfig } from "./config.js";
import { zeroUsage } from "./cost.js";
import { dryRun, type DryRunReport } from "./dry-run.js";
import { RateGate } from "./limits.js";
import { runLive } from "./live-runner.js";
import { runOffline } from "./offline-runner.js";
import { packed } from "./pack.js";
import { Planner, requestKey, type PendingItem, type Planned } from "./plan.js";
import { Progress, type ProgressOptions } from "./progress.js";
import { DEFAULT_RETRY } from "./retry.js";
import { StageSession } from "./session.js";
import type { LlmRequest, ProviderName, Usage } from "./types.js";

export { requestKey } from "./plan.js";

export interface EngineRun {
  stage: string;
  /**
   * Built as they are consumed when lazy: each is dropped once its item is stored. A function gives
   * them anew each time it is called: a batch run plans them again to collect a batch (an array is
   * read again; a one-shot stream is kept in memory for it).
   */
  requests: Iterable<LlmRequest> | AsyncIterable<LlmRequest> | (() => Iterable<LlmRequest> | AsyncIterable<LlmRequest>);
  /** How many requests will come, for the progress total (default: an array's length, else those seen so far). */
  items?: number;
  runDir: string;
  /** Ctrl-C: the run sends nothing more, stores the answers in flight and returns its summary. */
  interrupt?: AbortSignal;
  /** augment: what the stages run before this one count against the same --max-cost. */
  capShare?: CapShare;
  /** The options that chose the requests besides --model ("--limit 5 --shard 1/2"): a batch records them. */
  selection?: string;
}

/** Why a run ended before every item was answered, and what is left. */
export type StopReason =
  | {
      reason: "max-cost";
      capUsd: number;
      /** The stage's spend in its run folder, earlier runs included (under augment, with the stages before it). */
      spentUsd: number;
      /** augment: the stages before this one, each with what it counts against the cap. */
      before?: CapShare;
    }
  | { reason: "interrupted" };

export type Stopped = StopReason & {
  /** Items without an answer in the store (the failed ones included: the next run asks them again). */
  left: number;
  /** What the items not sent are expected to cost (as --dry-run counts it), when the model has a price. */
  leftUsd?: number;
};

export interface EngineSummary {
  stage: string;
  provider: ProviderName;
  model: string;
  counts: StageCounts;
  usage: Usage;
  costUsd: number;
  /** true when failures exceed --max-failure-share: the command must exit 1 (after writing meta). */
  failedShareExceeded: boolean;
  dryRun: boolean;
  /** --dry-run: the estimate, priced for every model. */
  estimate?: DryRunReport;
  /** Set when --max-cost or Ctrl-C ended the run early. */
  stopped?: Stopped;
  /**
   * With --max-cost and a paid provider: what the stage counts against the cap, its spend in the
   * folder as the cap measured it (earlier runs included); a dry run adds what it is expected to cost.
   * augment gives a later stage the cap less this.
   */
  capSpentUsd?: number;
}

/** Knobs tests and the bench turn; the CLI uses the defaults. */
export interface EngineDeps {
  /** First transport-retry delay; doubles per retry up to maxBackoffMs (default 500 ms). */
  retryBaseMs?: number;
  maxBackoffMs?: number;
  /** Transport retries per call (429/529/5xx/timeouts) before the item fails as api-error (default 8). */
  maxRetries?: number;
  /** Client timeout per call (default --timeout). */
  timeoutMs?: number;
  progress?: ProgressOptions;
  /** Clock for the rate gate (default performance.now). */
  now?: () => number;
  /** Batch providers: how often open batches are polled (default --poll-interval). */
  batchPollMs?: number;
  /** Batch providers: smaller per-batch limits than the API's (tests). */
  batchLimits?: Partial<BatchLimits>;
  /** Batch providers: stops polling; the batches stay recorded for the next run. */
  batchSignal?: AbortSignal;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function stoppedLine(s: Stopped, stage: string): string {
  const left = `${fmt(s.left)} item(s) left${s.leftUsd !== undefined && s.left > 0 ? `, expected to cost ~$${s.leftUsd.toFixed(4)}` : ""}`;
  if (s.reason === "max-cost") {
    const own = s.spentUsd - shareUsd(s.before);
    const spent = s.before?.length
      ? `augment's stages have cost $${s.spentUsd.toFixed(4)} in this folder: ${shareText([...s.before, { stage, usd: own }])}`
      : `the stage has cost $${s.spentUsd.toFixed(4)} in this folder`;
    return `  stopped at --max-cost $${s.capUsd.toFixed(4)} (${spent}): ${left}; raise --max-cost and run the same command to go on\n`;
  }
  return `  interrupted: ${left}; run the same command again to resume (nothing stored is asked again)\n`;
}

export function formatSummary(s: EngineSummary, extra: { retriedCalls?: number; seconds?: number } = {}): string {
  const c = s.counts;
  const reasons = Object.entries(c.failedByReason)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  const u = s.usage;
  return (
    [
      `${s.stage} (${s.provider}, ${s.model}): ${fmt(c.items)} items`,
      `${fmt(c.done)} done`,
      `${fmt(c.cached)} cached`,
      `${fmt(c.retried)} retried${extra.retriedCalls ? ` (${fmt(extra.retriedCalls)} calls re-sent after 429/529/5xx/timeouts/lost connections)` : ""}`,
      `${fmt(c.failed)} failed${reasons ? ` (${reasons})` : ""}`,
    ].join(", ") +
    `\n  tokens: input ${fmt(u.inputTokens)}, cache write ${fmt(u.cacheWriteTokens)}, cache read ${fmt(u.cacheReadTokens)}, output ${fmt(u.outputTokens)}` +
    ` · cost $${s.costUsd.toFixed(4)}${extra.seconds !== undefined ? ` · ${extra.seconds.toFixed(1)} s` : ""}\n` +
    (s.stopped ? stoppedLine(s.stopped, s.stage) : "")
  );
}

export async function runEngine(run: EngineRun, config: EngineConfig, ctx: CommandContext): Promise<EngineSummary> {
  return runEngineWith(run, config, ctx, {});
}

/** A dry run's items: each is counted once, and its key remembered so items sharing it are not. */
async function* dryRunAsks(planned: AsyncIterable<Planned>, planner: Planner): AsyncGenerator<PendingItem> {
  for await (const p of planned) {
    if (!("ask" in p)) continue;
    planner.settled(p.ask);
    yield p.ask;
  }
}

type Requests = Iterable<LlmRequest> | AsyncIterable<LlmRequest>;

/** A stream that is its own iterator (a generator) can be read once only. */
function oneShot(r: Requests): boolean {
  const it = Symbol.asyncIterator in r ? r[Symbol.asyncIterator]() : r[Symbol.iterator]();
  return (it as unknown) === r;
}

/** The requests for the first planning, and again for each later one (batch collections). */
async function requestSource(requests: EngineRun["requests"], again: boolean): Promise<{ first: Requests; again: () => Requests; length?: number }> {
  if (typeof requests === "function") return { first: requests(), again: requests };
  const length = Array.isArray(requests) ? requests.length : undefined;
  if (!again || !oneShot(requests)) return { first: requests, again: () => requests, length };
  // Read whole before the first planning: a batch run resuming open batches plans every key first.
  const kept: LlmRequest[] = [];
  for await (const r of requests) kept.push(r);
  return { first: kept, again: () => kept, length: kept.length };
}

/** runEngine with injectable knobs (tests, bench). */
export async function runEngineWith(run: EngineRun, config: EngineConfig, ctx: CommandContext, deps: EngineDeps): Promise<EngineSummary> {
  const started = performance.now();
  const spec = providerSpec(config.provider);
  const model = resolveModel(spec, config);
  const paths = runPaths(run.runDir);
  const planner = await Planner.open(run.stage, { records: paths.records(run.stage), failures: paths.failures(run.stage) }, (req) => requestKey(req, config, spec));
  try {
    return await planAndRun(run, config, ctx, deps, { started, spec, model, paths, planner });
  } finally {
    await planner.close();
  }
}

async function planAndRun(
  run: EngineRun,
  config: EngineConfig,
  ctx: CommandContext,
  deps: EngineDeps,
  { started, spec, model, paths, planner }: { started: number; spec: ProviderSpec; model: string; paths: ReturnType<typeof runPaths>; planner: Planner },
): Promise<EngineSummary> {
  // Items of batches still open are paid for already; only a batch run resumes and collects them. Any
  // other run would ask them again (and the resumed batch run then store none of its results).
  if (spec.mode !== "batch") {
    const file = paths.batches(run.stage);
    const open = await openBatches(file);
    if (open.batches > 0) {
      throw new UserError(
        `${run.stage}: ${open.batches} batch(es) holding ${fmt(open.items)} item(s) are still open in ${file} (sent by a batch run, not collected yet); ` +
          `a --provider ${config.provider} run${config["dry-run"] ? " (this is what --dry-run found)" : ""} would answer those items again, and the batch results already paid for would then be stored for none of them. ` +
          `To collect them, run the same command with the batch provider that opened them (--provider anthropic-batch or openai-batch); ` +
          `to abandon them and pay for their items again, delete ${file}.`,
        2,
      );
    }
  }
  const source = await requestSource(run.requests, spec.mode === "batch");
  const planned = planner.plan(source.first);
  const summary = (counts: StageCounts, usage: Usage, costUsd: number, dryRun: boolean): EngineSummary => ({
    stage: run.stage,
    provider: config.provider,
    model,
    counts,
    usage,
    costUsd,
    failedShareExceeded: counts.items > 0 && counts.failed / counts.items > config["max-failure-share"],
    dryRun,
  });

  if (config["dry-run"]) {
    const storedUsd = config["max-cost"] !== undefined ? await storedSpendUsd(paths, run.stage) : undefined;
    const report = await dryRun({ stage: run.stage, config, ctx, spec, model, asks: dryRunAsks(planned, planner), cached: () => planner.cached, storedUsd, capShare: run.capShare });
    const counts = { items: planner.items, done: 0, cached: planner.cached, retried: 0, failed: 0, failedByReason: {} };
    const capSpentUsd = storedUsd !== undefined && spec.mode !== "offline" ? storedUsd + (report.capExpectedUsd ?? 0) : undefined;
    return { ...summary(counts, zeroUsage(), report.liveCostUsd, true), estimate: report, capSpentUsd };
  }

  const budget = await stageBudget(config, spec, model, paths, run.stage, run.capShare);
  const session = new StageSession({ stage: run.stage, runDir: run.runDir, config, spec, model, ctx, planner });
  const pending = session.asks(planned)[Symbol.asyncIterator]();
  // A runner that stops pulling (--max-cost, Ctrl-C) does not close the stream: what it leaves is
  // counted below, with the items a pack was being filled with. The offline provider answers each
  // item itself: nothing to pack.
  const held: PendingItem[] = [];
  // The batch runner packs itself: a collection gathers a pack's items again from their states.
  const asks = packed({ [Symbol.asyncIterator]: () => ({ next: () => pending.next() }) }, spec.mode === "live" ? config.pack : 1, held);
  // Clients are built at the first item to send: a missing key stops the run before anything is
  // sent, and a run with nothing to send needs no key.
  const setup = {
    config,
    env: ctx.env,
    model,
    timeoutMs: deps.timeoutMs ?? config.timeout * 1000,
    retryBaseMs: deps.retryBaseMs,
    note: (m: string) => ctx.stderr.write(`${m}\n`),
  };
  const gate = new RateGate({ rpm: config.rpm, itpm: config.itpm, otpm: config.otpm }, deps.now);
  const expected = run.items ?? source.length;
  // done/failed count every item a request answers (its sharers too), so the total does as well.
  const progress = new Progress(
    ctx.stderr,
    run.stage,
    () => ({
      done: session.done,
      failed: session.failed,
      total: (expected ?? planner.items) - planner.cached,
      stored: planner.cached,
      checking: expected !== undefined && planner.items < expected,
      costUsd: session.cost(),
      throttled: gate.throttled,
    }),
    deps.progress,
  );
  progress.start();
  let finished = false;
  let stop: StopReason | undefined;
  try {
    switch (spec.mode) {
      case "offline":
        await runOffline(session, asks, run.interrupt);
        break;
      case "live":
        await runLive(session, asks, {
          provider: () => spec.create(setup),
          gate,
          retry: { maxRetries: deps.maxRetries ?? DEFAULT_RETRY.maxRetries, baseMs: deps.retryBaseMs ?? DEFAULT_RETRY.baseMs, capMs: deps.maxBackoffMs ?? DEFAULT_RETRY.capMs },
          concurrency: config.concurrency,
          budget,
          interrupt: run.interrupt,
          timeoutMs: setup.timeoutMs,
        });
        break;
      case "batch":
        await runBatches(session, asks, {
          provider: () => spec.create(setup),
          pollMs: deps.batchPollMs ?? config["poll-interval"] * 1000,
          limits: { ...spec.batchLimits, ...deps.batchLimits },
          again: () => session.asks(planner.plan(source.again(), true)),
          pack: config.pack,
          signal: deps.batchSignal,
          budget,
          interrupt: run.interrupt,
          log: (line) => ctx.stderr.write(`${line}\n`),
          plannedKeys: async function* () {
            for await (const req of source.again()) yield requestKey(req, config, spec);
          },
          madeWith: [`--model ${model}`, run.selection].filter(Boolean).join(" "),
        });
        break;
    }
    stop = budget?.reached ? { reason: "max-cost", capUsd: budget.capUsd, spentUsd: 0, before: run.capShare } : run.interrupt?.aborted ? { reason: "interrupted" } : undefined;
    if (stop) {
      const why = stop.reason === "max-cost" ? "--max-cost reached" : "the run was interrupted";
      for (const item of held.splice(0)) await session.leave(item, why);
      for (let next = await pending.next(); !next.done; next = await pending.next()) await session.leave(next.value, why);
    }
    finished = true;
  } finally {
    progress.stop();
    await session.close(finished);
  }

  const result = summary(session.counts(), { ...session.usage }, session.cost(), false);
  if (budget) result.capSpentUsd = budget.spentUsd - shareUsd(run.capShare);
  if (stop) {
    if (stop.reason === "max-cost") stop.spentUsd = budget!.spentUsd;
    result.stopped = { ...stop, left: planner.items - planner.cached - session.done, leftUsd: session.price ? session.leftUsd : undefined };
  }
  ctx.stdout.write(formatSummary(result, { retriedCalls: session.transportRetries, seconds: (performance.now() - started) / 1000 }));
  if (planner.sharing > 0) ctx.stderr.write(`note: ${planner.sharing} item(s) have the same prompt as another item and share its answer\n`);
  if (result.failedShareExceeded) {
    ctx.stderr.write(
      `${run.stage}: ${result.counts.failed} of ${result.counts.items} items failed (more than --max-failure-share ${config["max-failure-share"]}); see ${paths.failures(run.stage)}\n`,
    );
  }
  return result;
}
