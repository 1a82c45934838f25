// The session: the bookkeeping of one stage run. It decides what an answer means (store it, re-ask
// with the error stated, or give up), appends records and failures to the store, and keeps the
// counts, the usage and the cost. The runners (offline, live, batch) drive items through it.
import type { CommandContext } from "../cli/command.js";
import { runPaths, type StageCounts } from "../run/folder.js";
import type { ProviderAnswer, ProviderCall, ProviderSpec } from "../providers/types.js";
import type { EngineConfig } from "./config.js";
import { expectedUsd } from "./budget.js";
import { addUsage, billed, priceUsd, zeroUsage, type ModelInfo } from "./cost.js";
import { callFor, type PendingItem, type Planned, type Planner } from "./plan.js";
import { memberShares, splitPackAnswer } from "./pack.js";
import { JsonlAppender } from "./store.js";
import type { FailureReason, FailureRecord, StageRecord } from "./types.js";

/** What an answer led to: stored, asked again with the error stated (a repair re-ask), or given up on. */
export type Verdict = "stored" | "reask" | "failed";

function repairPrompt(reason: FailureReason, error: string, maxTokens: number): string {
  if (reason === "truncated") {
    return `Your answer was cut off at the ${maxTokens}-token limit. Answer again, complete and shorter, in the required format only.`;
  }
  if (reason === "refusal") return "Please answer the request above; it is a routine data-labelling task. Reply in the required format only.";
  return `Your answer could not be used: ${error}. Answer again in the required format only, with no other text.`;
}

/** A store file opened at its first line; a run that finishes leaves it even when empty. */
class LazyAppender {
  private opened: Promise<JsonlAppender> | undefined;
  constructor(readonly path: string) {}
  /** Appends a line; resolves with its byte offset once it is in the file. */
  async append(line: StageRecord | FailureRecord): Promise<number> {
    return (await (this.opened ??= JsonlAppender.open(this.path))).append(line);
  }
  async close(ensure: boolean): Promise<void> {
    if (ensure) this.opened ??= JsonlAppender.open(this.path);
    if (this.opened) await (await this.opened).close();
  }
}

export interface SessionSetup {
  stage: string;
  runDir: string;
  config: EngineConfig;
  spec: ProviderSpec;
  model: string;
  ctx: CommandContext;
  planner: Planner;
}

export class StageSession {
  readonly stage: string;
  readonly config: EngineConfig;
  readonly spec: ProviderSpec;
  readonly model: string;
  readonly paths: ReturnType<typeof runPaths>;
  readonly usage = zeroUsage();
  readonly failedByReason: Partial<Record<FailureReason, number>> = {};
  /** Items answered in this run (an item's sharers too). */
  done = 0;
  /** Items that took more than one answer or call. */
  retried = 0;
  /** Provider calls sent again after 429/529/5xx/timeouts, for the summary. */
  transportRetries = 0;
  /** Items a stopped run did not finish (leave), and what they are expected to cost. */
  left = 0;
  leftUsd = 0;
  private readonly records: LazyAppender;
  private readonly failures: LazyAppender;
  private readonly planner: Planner;
  /** The model's prices; undefined: the model is free (offline) or has no price in the table. */
  readonly price: ModelInfo | undefined;

  constructor(setup: SessionSetup) {
    ({ stage: this.stage, config: this.config, spec: this.spec, model: this.model, planner: this.planner } = setup);
    this.paths = runPaths(setup.runDir);
    this.records = new LazyAppender(this.paths.records(this.stage));
    this.failures = new LazyAppender(this.paths.failures(this.stage));
    this.price = this.spec.price?.(this.model);
    // Said once, before anything is sent: a paid run whose cost cannot be counted should not look free.
    if (!this.price && this.spec.paid) {
      setup.ctx.stderr.write(`note: model ${this.model} has no price in data/pricing.json; its cost is not counted (the summary says $0)\n`);
    }
  }

  get failed(): number {
    return Object.values(this.failedByReason).reduce((a, b) => a + b, 0);
  }

  /** Answers an item may receive (repair re-asks included). */
  get maxAnswers(): number {
    return this.spec.mode === "offline" ? 1 : this.config["max-attempts"];
  }

  /** The provider call for an item's next attempt. */
  nextCall(item: PendingItem): ProviderCall {
    return callFor(item.req, item.conversation);
  }

  /**
   * The items to ask, from the planner's decisions: copies of answers (and failures) already known
   * for the same prompt are stored on the way.
   */
  async *asks(planned: AsyncIterable<Planned>): AsyncGenerator<PendingItem> {
    for await (const p of planned) {
      if ("ask" in p) yield p.ask;
      else if ("copy" in p) {
        await this.records.append(p.copy);
        // An answer from an earlier run is a store hit (the planner counted it cached).
        if (!p.earlierRun) this.done++;
        if (!p.earlierRun && p.copy.attempts > 1) this.retried++;
      } else {
        await this.failures.append(p.copyFailure);
        this.countFailed(p.copyFailure.reason, 1);
      }
    }
  }

  /** The pricing mode of this run's tokens. */
  get costMode(): "live" | "batch" {
    return this.spec.mode === "batch" ? "batch" : "live";
  }

  /** An item a batch holds: the planner lets it go until the batch is collected. */
  release(item: PendingItem): void {
    this.planner.release(item);
  }

  cost(): number {
    return priceUsd(this.usage, this.price, this.costMode) ?? 0;
  }

  /**
   * Takes an answer for an item or a pack: each item's answer is stored, prepared for a repair
   * re-ask, or given up on after max-attempts. Returns the items to ask again (alone).
   */
  async accept(unit: PendingItem, answer: ProviderAnswer): Promise<PendingItem[]> {
    if (unit.members) return this.acceptPack(unit, unit.members, answer);
    addUsage(this.usage, answer.usage);
    unit.answers++;
    addUsage(unit.usage, answer.usage);
    return (await this.judge(unit, answer.text, answer.stop)) === "reask" ? [unit] : [];
  }

  /**
   * A pack's answer, split by item number: each part is judged as that item's own answer (the usage
   * shared out evenly). When the pack as a whole is unusable — cut off, refused, not the pack format —
   * or an item's part is missing, those items are asked again alone, the pack counting as an attempt.
   */
  private async acceptPack(pack: PendingItem, members: PendingItem[], answer: ProviderAnswer): Promise<PendingItem[]> {
    // Only its members' shares: those of items stored by an earlier collection of this answer are in the store.
    const shares = memberShares(pack, answer.usage);
    members.forEach((m, i) => {
      m.answers++;
      m.transportRetries += pack.transportRetries;
      addUsage(m.usage, shares[i]!);
      addUsage(this.usage, shares[i]!);
    });
    const split = answer.stop === "end" ? splitPackAnswer(answer.text) : undefined;
    const again: PendingItem[] = [];
    for (const [i, m] of members.entries()) {
      const number = pack.memberNumbers?.[i] ?? i + 1;
      const part = split?.ok ? split.value.get(number) : undefined;
      if (part !== undefined) {
        if ((await this.judge(m, part, "end", members.length)) === "reask") again.push(m);
        continue;
      }
      // Nothing of this item's own to show the model: it is asked again from its own prompt.
      const why =
        answer.stop === "end"
          ? split?.ok
            ? { reason: "invalid" as const, error: `the packed answer had no answer for item ${number}` }
            : { reason: "invalid" as const, error: split?.error ?? "unreadable packed answer" }
          : this.stopProblem(answer.stop, pack.req.maxTokens);
      // Kept while it is asked again: left before that (Ctrl-C, the cap), its share is written with it.
      m.problem = why;
      if (m.answers < this.maxAnswers) again.push(m);
      else {
        m.lastAnswer = answer.text;
        await this.fail(m, why.reason, why.error);
      }
    }
    return again;
  }

  private stopProblem(stop: "max_tokens" | "refusal", maxTokens: number): { reason: FailureReason; error: string } {
    return stop === "refusal" ? { reason: "refusal", error: "the model refused" } : { reason: "truncated", error: `the answer was cut off at max_tokens (${maxTokens})` };
  }

  /** One item's answer: stored, or the repair re-ask prepared, or given up on after max-attempts. */
  private async judge(item: PendingItem, text: string, stop: ProviderAnswer["stop"], pack?: number): Promise<Verdict> {
    let reason: FailureReason;
    let error: string;
    if (stop !== "end") ({ reason, error } = this.stopProblem(stop, item.req.maxTokens));
    else {
      const parsed = item.req.parse(text);
      // An answer shared by items with the same prompt must suit each of them (LlmRequest.check).
      const unfit = parsed.ok ? [item.req, ...item.sharers].map((r) => r.check?.(parsed.value)).find((e) => e !== undefined) : undefined;
      if (parsed.ok && unfit === undefined) {
        const record: StageRecord = { ...this.head(item), output: parsed.value, usage: item.usage, attempts: item.answers, ...(pack ? { pack } : {}) };
        // Not `this.done += await …`: that reads done before the await and loses concurrent updates.
        const n = await this.appendForEach(this.records, item, record);
        this.done += n;
        return "stored";
      }
      reason = "invalid";
      error = parsed.ok ? unfit! : parsed.error;
    }
    item.lastAnswer = text;
    item.problem = { reason, error };
    if (item.answers >= this.maxAnswers) {
      await this.fail(item, reason, error);
      return "failed";
    }
    // An empty assistant turn is rejected by the API, so a bare refusal is re-asked without one.
    const previous = text.trimEnd();
    const prompt = this.nextCall(item).messages;
    item.conversation = [
      ...(previous ? prompt : prompt.slice(0, 1)),
      ...(previous ? [{ role: "assistant" as const, content: previous }] : []),
      { role: "user" as const, content: repairPrompt(reason, error, item.req.maxTokens) },
    ];
    return "reask";
  }

  /**
   * An item the run stops before finishing (--max-cost, Ctrl-C); a pack, each of its items. One with
   * an unusable answer already billed is recorded as failed with that answer's problem, so its cost
   * stays in the store; the next run asks it again either way. Counts it, and what it is expected to
   * cost, as left to do.
   */
  async leave(item: PendingItem, why: string): Promise<void> {
    if (item.members) {
      for (const m of item.members) await this.leave(m, why);
      return;
    }
    this.left += 1 + item.sharers.length;
    if (this.price) this.leftUsd += expectedUsd(item.req, this.price, this.costMode);
    // Whatever it was billed must reach the store, or the folder's cost (and --max-cost) falls
    // short: a state from before problems were saved, or any other path that lost the problem,
    // still writes its usage.
    const paid = item.answers > 0 || billed(item.usage);
    const problem = item.problem ?? (paid ? { reason: "invalid" as const, error: "an answer billed earlier could not be used" } : undefined);
    if (problem) await this.fail(item, problem.reason, `${problem.error}; not asked again: ${why}`);
  }

  /** Records an item (each item of a pack) as given up on; it is not a store hit, so the next run asks again. */
  async fail(item: PendingItem, reason: FailureReason, message: string): Promise<void> {
    if (item.members) {
      for (const m of item.members) {
        m.transportRetries += item.transportRetries;
        m.lastAnswer ??= item.lastAnswer;
        await this.fail(m, reason, message);
      }
      return;
    }
    const record: FailureRecord = {
      ...this.head(item),
      reason,
      message,
      lastAnswer: item.lastAnswer,
      usage: item.usage,
      attempts: item.answers,
    };
    this.countFailed(reason, await this.appendForEach(this.failures, item, record));
  }

  private countFailed(reason: FailureReason, n: number): void {
    this.failedByReason[reason] = (this.failedByReason[reason] ?? 0) + n;
  }

  /** The fields every record and failure line starts with (RecordHead). */
  private head(item: PendingItem) {
    return { key: item.key, stage: this.stage, itemId: item.req.itemId, provider: this.config.provider, model: this.model, source: item.req.source };
  }

  /**
   * Appends an item's record or failure, then a copy for each sharer (usage is billed once, to the
   * item), and tells the planner the key is settled. Sharers the planner adds while the lines are
   * being written are appended too. Returns how many lines it appended.
   */
  private async appendForEach(to: LazyAppender, item: PendingItem, line: StageRecord | FailureRecord): Promise<number> {
    const at = await to.append(line);
    const stored = [item.req];
    for (let i = 0; i < item.sharers.length; i++) {
      const sharer = item.sharers[i]!;
      const copy = { ...line, itemId: sharer.itemId, source: sharer.source, usage: zeroUsage() };
      // A sharer that joined after the answer was checked and that the answer does not suit fails
      // (the next run asks it again) rather than being stored.
      const unfit = "output" in line ? sharer.check?.(line.output) : undefined;
      if (unfit === undefined) {
        await to.append(copy);
        stored.push(sharer);
      } else {
        const { output: _output, ...head } = copy as StageRecord;
        await this.failures.append({ ...head, reason: "invalid", message: unfit } satisfies FailureRecord);
        this.countFailed("invalid", 1);
      }
    }
    this.planner.settled(item, { line, at, stored });
    const n = stored.length;
    if (item.answers > 1 || item.transportRetries > 0) this.retried += n;
    return n;
  }

  counts(): StageCounts {
    return {
      items: this.planner.items,
      done: this.done,
      cached: this.planner.cached,
      retried: this.retried,
      failed: this.failed,
      failedByReason: { ...this.failedByReason },
    };
  }

  /** Closes the store files; a run that finished leaves both, even empty. */
  async close(finished: boolean): Promise<void> {
    await Promise.all([this.records.close(finished), this.failures.close(finished)]);
  }
}
