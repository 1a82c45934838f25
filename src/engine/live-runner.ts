// The live runner: items from the planner go out one call at a time under the concurrency limit and
// the rate gate; each answer goes to the session, which stores it or asks for a repair re-ask. Items
// are pulled as slots free up, so a stream of requests is read at most one item ahead; an item that
// waits before a transport retry gives its slot back meanwhile.
import { setMaxListeners } from "node:events";
import { UserError } from "../cli/command.js";
import type { LiveProvider, ProviderAnswer, ProviderCall } from "../providers/types.js";
import { apiKeyEnv } from "../providers/setup.js";
import { forEachConcurrently, Slots } from "./concurrency.js";
import { classifyError, fatalMessage, type ClassifiedError } from "./errors.js";
import { AbortedError, sleep, type RateGate, type Ticket } from "./limits.js";
import type { PendingItem } from "./plan.js";
import type { Budget, Reservation } from "./budget.js";
import { withTransportRetries, type RetryPolicy } from "./retry.js";
import type { StageSession } from "./session.js";
import { estimateCallTokens } from "./tokens.js";

/** Requests refused as malformed (400/404/422) before any answer, after which the run stops. */
const REJECTED_STREAK = 5;
/**
 * Calls that could not reach the server (refused, unresolved, reset) before any answer, after which
 * the run stops: a wrong --base-url or a server not started would otherwise retry every item for
 * hours. Enough for a server still starting, or a network blip, to come back before it.
 */
const UNREACHABLE_STREAK = 30;

export interface LiveRunOptions {
  /** Builds the client at the first item: a run with nothing to send needs no key. */
  provider: () => LiveProvider;
  gate: RateGate;
  retry: RetryPolicy;
  concurrency: number;
  /** --max-cost: each call is sent only if its worst case fits. */
  budget?: Budget;
  /** Ctrl-C: nothing more is sent; the calls in flight get `timeoutMs` to answer. */
  interrupt?: AbortSignal;
  timeoutMs: number;
}

/** Thrown inside the runner once the run is stopping: the item just returns. */
class RunStopped extends Error {}

/**
 * The first call goes alone: a rejected key then costs one request, not `concurrency` of them, and
 * its answer writes the prompt cache that every later request reads.
 */
class Warmup {
  private state: "cold" | "warming" | "warm" = "cold";
  private release!: () => void;
  private readonly warm = new Promise<void>((resolve) => (this.release = resolve));
  /** True for the caller that makes the first call (and must call `done`). */
  async enter(): Promise<boolean> {
    if (this.state === "warm") return false;
    if (this.state === "warming") {
      await this.warm;
      return false;
    }
    this.state = "warming";
    return true;
  }
  done(): void {
    this.state = "warm";
    this.release();
  }
}

export async function runLive(session: StageSession, items: AsyncIterable<PendingItem>, options: LiveRunOptions): Promise<void> {
  const { gate } = options;
  const budget = options.budget;
  const abort = new AbortController();
  // Sending stops here (Ctrl-C, the cap reached): waits for the gate or a retry end; calls in flight go on.
  const hold = new AbortController();
  const waits = AbortSignal.any([abort.signal, hold.signal]);
  // Every call and backoff listens on these signals: hundreds of listeners are expected, not a leak.
  setMaxListeners(0, abort.signal);
  setMaxListeners(0, waits);
  const why = () => (budget?.reached ? "--max-cost reached" : "the run was interrupted");
  let grace: NodeJS.Timeout | undefined;
  const onInterrupt = () => {
    hold.abort();
    // The answers in flight get --timeout, then they are abandoned (their items are asked again next run).
    grace = setTimeout(() => abort.abort(), options.timeoutMs);
    grace.unref();
  };
  if (options.interrupt?.aborted) onInterrupt();
  else options.interrupt?.addEventListener("abort", onInterrupt, { once: true });
  /** Why the run stopped early: a UserError to report, or a failure of our own (a store write). */
  let stopped: unknown;
  const stop = (reason: unknown) => {
    stopped ??= reason;
    abort.abort();
  };
  let provider: LiveProvider | undefined;
  /** Held by an item while it calls; see `wait` below. */
  const slots = new Slots(options.concurrency);
  const warmup = new Warmup();
  // Output tokens are debited before the call: the running mean of real answers (max_tokens until one is known).
  let answered = 0;
  let outputTotal = 0;
  let rejectedStreak = 0;
  let unreachableStreak = 0;

  /** One call, under the gate; the gate learns from its answer or its error. */
  const callOnce = async (item: PendingItem, call: ProviderCall): Promise<ProviderAnswer> => {
    if (stopped || hold.signal.aborted) throw new RunStopped();
    const first = await warmup.enter();
    let ticket: Ticket | undefined;
    let reservation: Reservation | undefined;
    try {
      if (stopped || hold.signal.aborted) throw new RunStopped();
      if (budget && !(reservation = await budget.reserveWhenRoom(call, waits))) {
        // A call that cannot fit under --max-cost even with nothing in flight: nothing more is sent.
        hold.abort();
        throw new RunStopped();
      }
      const meanOutput = answered > 0 ? Math.ceil((outputTotal / answered) * 1.2) : item.req.maxTokens;
      ticket = await gate.acquire({ input: estimateCallTokens(call).total, output: Math.min(item.req.maxTokens, meanOutput) }, waits);
      const answer = await provider!.call(call, abort.signal);
      if (reservation) budget!.settle(reservation, answer.usage);
      reservation = undefined;
      gate.observe(answer.limits);
      gate.settle(ticket, { input: answer.usage.inputTokens + answer.usage.cacheWriteTokens, output: answer.usage.outputTokens });
      gate.speedUp();
      answered++;
      outputTotal += answer.usage.outputTokens;
      return answer;
    } catch (e) {
      if (ticket) gate.settle(ticket, undefined);
      if (reservation) {
        // A call that timed out or was abandoned may have been answered and billed all the same.
        if (abort.signal.aborted || classifyError(e).kind === "timeout") budget!.forfeit(reservation);
        else budget!.settle(reservation);
      }
      if (e instanceof AbortedError || e instanceof RunStopped || stopped) throw new RunStopped();
      const c = classifyError(e);
      gate.observe(c.limits, ticket);
      if (c.kind === "rate-limit" || c.kind === "overloaded") gate.limited(c.kind, ticket, c.retryAfterMs ?? 1000);
      throw e;
    } finally {
      if (first) warmup.done();
    }
  };

  /**
   * A failed call that stops the run or this item: a rejected key; before any answer, nothing but
   * malformed requests or no server reached; a call held back by Ctrl-C or the cap.
   */
  const stopOn = (c: ClassifiedError) => {
    // Held back by Ctrl-C or the cap: not a failure to retry (nor a re-sent call to count).
    if (stopped || hold.signal.aborted || c.kind === "aborted") throw new RunStopped();
    if (c.kind === "fatal") {
      stop(new UserError(fatalMessage(c.status, apiKeyEnv(session.spec, session.config), c.message)));
      throw new RunStopped();
    }
    if (c.kind === "rejected" && answered === 0 && ++rejectedStreak >= REJECTED_STREAK) {
      // Every request so far refused as malformed (unknown model, unsupported parameter): the next
      // thousand would be too. Stop instead of filling the failures file with the same error.
      stop(new UserError(`the API rejected the first ${rejectedStreak} requests and answered none (${c.status}): ${c.message}`));
      throw new RunStopped();
    }
    if (c.kind === "connection" && answered === 0 && ++unreachableStreak >= UNREACHABLE_STREAK) {
      stop(new UserError(`could not reach the API in ${unreachableStreak} calls and got no answer (${c.message}); check --base-url and that the server runs, then run the same command again`));
      throw new RunStopped();
    }
  };

  /** An item's call, sent again after transport errors. */
  const send = (item: PendingItem): Promise<ProviderAnswer> => {
    const call = session.nextCall(item);
    return withTransportRetries(() => callOnce(item, call), options.retry, {
      onError: stopOn,
      onRetry: () => {
        item.transportRetries++;
        session.transportRetries++;
      },
      wait: async (ms) => {
        // Waiting out a retry-after holds no slot: under 429s the limit sets the pace, not --concurrency.
        slots.release();
        try {
          await sleep(ms, waits);
        } finally {
          await slots.acquire();
        }
      },
    });
  };

  /**
   * Asks until the session stores the item or gives up on it (a pack: each of its items, re-asked
   * alone), or the run stops sending.
   */
  const processItem = async (item: PendingItem): Promise<void> => {
    const queue = [item];
    for (let next = queue.shift(); next; next = queue.shift()) {
      let answer: ProviderAnswer;
      try {
        if (hold.signal.aborted) throw new RunStopped();
        answer = await send(next);
      } catch (e) {
        if (stopped) return;
        if (e instanceof RunStopped || hold.signal.aborted) {
          for (const left of [next, ...queue]) await session.leave(left, why());
          return;
        }
        await session.fail(next, "api-error", (e as Error).message);
        continue;
      }
      queue.push(...(await session.accept(next, answer)));
    }
  };

  const work = async (item: PendingItem) => {
    try {
      provider ??= options.provider();
      await processItem(item);
    } catch (e) {
      // A missing key, a failed store write: the calls in flight are aborted.
      stop(e);
    }
  };
  try {
    await forEachConcurrently(items, slots, work, () => stopped !== undefined || hold.signal.aborted);
  } finally {
    clearTimeout(grace);
    options.interrupt?.removeEventListener("abort", onInterrupt);
  }
  if (stopped) throw stopped;
}
