// --max-cost: a hard cap on what a stage costs in its run folder. The spend counts what the store says
// earlier runs were billed (records, failures, the attempts a batches file carries for items still
// open) and what this run is billed. A call is sent only when its worst case — every input token at
// the dearer of the input and cache-write prices, max_tokens of output — fits under the cap beside
// the spend and what the calls in flight may still cost. A live call that would fit once calls in
// flight are answered waits for them; one that cannot fit even then stops the run from sending. A
// batch is created with the requests that fit beside the open batches' worst cases; the batch runner
// asks again (recheck) after each collection, when the real cost has replaced those worst cases.
import { UserError } from "../cli/command.js";
import type { ProviderCall, ProviderSpec } from "../providers/types.js";
import type { RunPaths } from "../run/folder.js";
import type { EngineConfig } from "./config.js";
import { priceUsd, type ModelInfo } from "./cost.js";
import { AbortedError } from "./limits.js";
import { Spend } from "./spend.js";
import { engineJsonl } from "./store.js";
import { estimateCallTokens } from "./tokens.js";
import { FailureRecord, StageRecord, type LlmRequest, type Usage } from "./types.js";

export type CostMode = "live" | "batch";

/** Exit status of a stage command that --max-cost stopped. */
export const MAX_COST_EXIT = 3;

/**
 * augment: its --max-cost covers every stage it runs, so a stage has the cap less what the stages
 * run before it count against it: each one's spend in the folder (in a dry run, with what it is
 * expected to cost), in run order.
 */
export type CapShare = readonly { stage: string; usd: number }[];

export function shareUsd(before: CapShare | undefined): number {
  return (before ?? []).reduce((sum, s) => sum + s.usd, 0);
}

/** "summarize $0.0984, describe $0.0177": what each stage counts against the cap. */
export function shareText(share: CapShare): string {
  return share.map((s) => `${s.stage} $${s.usd.toFixed(4)}`).join(", ");
}

/**
 * What --dry-run says about the cap: whether the stage fits beside what it has cost already (under
 * augment, and what the stages before it have cost and are expected to cost).
 */
export function capVerdict(capUsd: number, ownStoredUsd: number, expectedUsd: number, maxUsd: number, requests: number, before?: CapShare): string {
  const storedUsd = ownStoredUsd + shareUsd(before);
  const head = before?.length
    ? `--max-cost $${capUsd.toFixed(4)} (the whole augment): the stage has cost $${ownStoredUsd.toFixed(4)} in this folder, the stages before it $${shareUsd(before).toFixed(4)} with what they are expected to cost (${shareText(before)});`
    : `--max-cost $${capUsd.toFixed(4)}: the stage has cost $${storedUsd.toFixed(4)} in this folder;`;
  if (storedUsd + maxUsd <= capUsd) return `${head} fits, even with every answer at max_tokens`;
  if (storedUsd + expectedUsd <= capUsd) return `${head} fits at the expected answer length; answers running long could stop it at the cap`;
  const perRequest = requests > 0 ? expectedUsd / requests : 0;
  const sent = perRequest > 0 ? Math.max(0, Math.floor((capUsd - storedUsd) / perRequest)) : 0;
  return `${head} does not fit: the run would stop after about ${sent.toLocaleString("en-US")} of ${requests.toLocaleString("en-US")} requests`;
}

/** The most a call can cost: input at the dearer of its two prices, and every output token it may write. */
export function worstCaseUsd(call: ProviderCall, info: ModelInfo, mode: CostMode): number {
  const input = estimateCallTokens(call).total;
  const usage: Usage = { inputTokens: 0, outputTokens: call.maxTokens, cacheReadTokens: 0, cacheWriteTokens: 0 };
  if (info.cacheWrite > info.input) usage.cacheWriteTokens = input;
  else usage.inputTokens = input;
  return priceUsd(usage, info, mode)!;
}

/** The answer length a request is expected to take: the stage's typical one, else half its cap. */
export function expectedOutput(req: LlmRequest): number {
  return Math.min(req.maxTokens, req.expectedOutputTokens ?? Math.ceil(req.maxTokens / 2));
}

/** What a request is expected to cost: its input, and the stage's typical answer length (as --dry-run counts it). */
export function expectedUsd(req: LlmRequest, info: ModelInfo, mode: CostMode): number {
  const call = { system: req.system, messages: [{ role: "user" as const, content: req.user }], jsonSchema: req.jsonSchema, maxTokens: req.maxTokens };
  return priceUsd({ inputTokens: estimateCallTokens(call).total, outputTokens: expectedOutput(req), cacheReadTokens: 0, cacheWriteTokens: 0 }, info, mode)!;
}

/**
 * Dollars the stage's records and failures were billed in earlier runs, priced per answerer (Spend).
 * A line whose model has no price counts 0 here: the cap needs only this run's model priced.
 */
export async function storedSpendUsd(paths: RunPaths, stage: string): Promise<number> {
  const spend = new Spend();
  for (const [file, schema] of [
    [paths.records(stage), StageRecord],
    [paths.failures(stage), FailureRecord],
  ] as const) {
    for await (const line of engineJsonl(file, schema)) spend.add(line.provider, line.model, line.usage);
  }
  return spend.usd;
}

export interface Reservation {
  readonly usd: number;
}

export class Budget {
  /** Billed so far: earlier runs (and, under augment, the stages before this one), then every answer of this run as it is settled. */
  private spent: number;
  /** The worst case of the calls in flight (and of the batches open). */
  private reserved = 0;
  /** Set at the first call that did not fit: nothing more is sent. */
  reached = false;

  constructor(
    readonly capUsd: number,
    storedUsd: number,
    private readonly info: ModelInfo,
    readonly mode: CostMode,
  ) {
    this.spent = storedUsd;
  }

  get spentUsd(): number {
    return this.spent;
  }

  /** Attempts billed in an earlier run and carried by an item still in the works (a resumed batch). */
  addStored(usage: Usage): void {
    this.spent += priceUsd(usage, this.info, this.mode)!;
  }

  /** Calls waiting for room: woken at every settle to look again. */
  private waiting: (() => void)[] = [];

  /** Reserves a call's worst case, or — when it does not fit beside the spend and the reservations — marks the cap reached. */
  reserve(call: ProviderCall): Reservation | undefined {
    const usd = worstCaseUsd(call, this.info, this.mode);
    if (this.reached || this.spent + this.reserved + usd > this.capUsd) {
      this.reached = true;
      return undefined;
    }
    this.reserved += usd;
    return { usd };
  }

  /**
   * Reserves a call's worst case, waiting while only the calls in flight keep it from fitting; marks
   * the cap reached when it cannot fit beside the spend alone. Rejects when `signal` aborts the wait.
   */
  async reserveWhenRoom(call: ProviderCall, signal?: AbortSignal): Promise<Reservation | undefined> {
    const usd = worstCaseUsd(call, this.info, this.mode);
    for (;;) {
      if (this.reached || this.spent + usd > this.capUsd) {
        this.reached = true;
        return undefined;
      }
      if (this.spent + this.reserved + usd <= this.capUsd) {
        this.reserved += usd;
        return { usd };
      }
      if (signal?.aborted) throw new AbortedError();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new AbortedError());
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiting.push(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
  }

  private notify(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  /**
   * Batch mode: a collection settled what its batches were billed, usually far below their worst
   * case, so whether a call fits is asked afresh (a live run's calls settle one by one instead, and
   * reserveWhenRoom waits for them).
   */
  recheck(): void {
    this.reached = false;
  }

  /** Reserves a call already sent (a batch created by an earlier run): it will be billed, fit or not. */
  commit(call: ProviderCall): Reservation {
    const usd = worstCaseUsd(call, this.info, this.mode);
    this.reserved += usd;
    return { usd };
  }

  /** A reserved call ended: its reservation goes, and what it was billed (nothing for a failed call) is spent. */
  settle(reservation: Reservation, billed?: Usage): void {
    this.reserved -= reservation.usd;
    if (billed) this.spent += priceUsd(billed, this.info, this.mode)!;
    this.notify();
  }

  /** A call whose fate is unknown (it timed out, it was abandoned): it may have been billed, so its worst case is spent. */
  forfeit(reservation: Reservation): void {
    this.reserved -= reservation.usd;
    this.spent += reservation.usd;
    this.notify();
  }

  expectedUsd(req: LlmRequest): number {
    return expectedUsd(req, this.info, this.mode);
  }
}

/** The price a --max-cost run needs; augment asks it before its first stage, so a later stage's model cannot stop the run half-way. */
export function cappedPrice(spec: ProviderSpec, model: string): ModelInfo {
  const info = spec.price?.(model);
  if (!info) throw new UserError(`--max-cost needs the price of model ${model}, and data/pricing.json has none: add it there, or run without --max-cost`, 2);
  return info;
}

/**
 * The run's budget under --max-cost (none without it, or for the free offline provider). Under
 * augment the stages before this one are spent already: the cap is the whole run's.
 */
export async function stageBudget(
  config: EngineConfig,
  spec: ProviderSpec,
  model: string,
  paths: RunPaths,
  stage: string,
  before?: CapShare,
): Promise<Budget | undefined> {
  const cap = config["max-cost"];
  if (cap === undefined || spec.mode === "offline") return undefined;
  const info = cappedPrice(spec, model);
  return new Budget(cap, shareUsd(before) + (await storedSpendUsd(paths, stage)), info, spec.mode === "batch" ? "batch" : "live");
}
