// Rate budgets: requests, input tokens, output tokens and — for an API that counts them together, as
// OpenAI does — all tokens per minute, each a token bucket refilled
// continuously and holding one second's worth, so requests go out evenly paced (the API enforces
// its per-minute limits over short intervals too) instead of a burst that earns a wall of 429s.
// Pressure from the server (429 with retry-after, 529, a low remaining budget in the limits the
// provider read from its headers) scales all budgets down; calm answers scale them back up to the
// configured (or advertised) limits.
import type { RateLimitReading } from "../providers/types.js";

export interface Budgets {
  rpm?: number;
  itpm?: number;
  otpm?: number;
}

export interface Ticket {
  /** When the request was let through (the gate's clock). */
  at: number;
  input: number;
  output: number;
}

export type Pressure = "rate-limit" | "overloaded" | "low-remaining";

const MIN_FACTOR = 0.05;
/** One slow-down per this window: a burst of 429s from requests already in flight is one signal, not fifty. */
const SLOWDOWN_WINDOW_MS = 1000;
/** No speed-up until the pressure has been gone this long. */
const CALM_MS = 2000;
/** Recent answers looked at to tell a limit being hit from scattered 429/529s. */
const OUTCOME_WINDOW = 100;
/**
 * Share of 429/529 among recent answers above which the run itself is the problem and everyone slows
 * down. Below it, a 429/529 only makes its own request wait (retry-after, backoff): a few scattered
 * errors are no reason to halve the pace, while overshooting a limit by half already yields a third
 * of 429s. The real API also says so in its headers (remaining 0), which pause the run on their own.
 */
const PRESSURE_SHARE = 0.3;

export class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortError";
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortedError());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

class Bucket {
  level: number;
  last: number;
  constructor(
    /** Per-minute limit before the pressure factor. */
    public base: number,
    now: number,
    /** Learned from a 429 with no known limit, not configured or advertised. */
    readonly learned = false,
  ) {
    this.level = this.capacity(1);
    this.last = now;
  }
  perMs(factor: number): number {
    return (this.base * factor) / 60_000;
  }
  capacity(factor: number): number {
    return Math.max(1, (this.base * factor) / 60);
  }
  refill(now: number, factor: number): void {
    this.level = Math.min(this.capacity(factor), this.level + (now - this.last) * this.perMs(factor));
    this.last = now;
  }
  /** ms until `need` (capped at one second's worth, so any request can pass) is available. */
  waitFor(need: number, factor: number): number {
    const want = Math.min(need, this.capacity(factor));
    return this.level >= want ? 0 : (want - this.level) / this.perMs(factor);
  }
}

export class RateGate {
  private readonly buckets: { requests?: Bucket; input?: Bucket; output?: Bucket; tokens?: Bucket } = {};
  private readonly configured: Budgets;
  private factor = 1;
  private pausedUntil = 0;
  private pauseStartedAt = -Infinity;
  private lastSlowdown = -Infinity;
  private chain: Promise<unknown> = Promise.resolve();
  /** Start times of recent requests, to learn a rate when a 429 arrives with no limit known. */
  private readonly recent: number[] = [];
  /** Slow-downs applied so far. */
  slowdowns = 0;
  /** 1 for a 429/529, 0 for an answer; the last OUTCOME_WINDOW calls. */
  private readonly outcomes: number[] = [];
  private limitedInWindow = 0;

  constructor(
    budgets: Budgets,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.configured = budgets;
    const t = now();
    if (budgets.rpm) this.buckets.requests = new Bucket(budgets.rpm, t);
    if (budgets.itpm) this.buckets.input = new Bucket(budgets.itpm, t);
    if (budgets.otpm) this.buckets.output = new Bucket(budgets.otpm, t);
  }

  /** True while server pressure keeps the run below its limits. */
  get throttled(): boolean {
    return this.factor < 1 || this.now() < this.pausedUntil;
  }

  get pressureFactor(): number {
    return this.factor;
  }

  /** Waits for a turn (first come, first served) and debits the estimated tokens. */
  acquire(cost: { input: number; output: number }, signal?: AbortSignal): Promise<Ticket> {
    const turn = this.chain.then(() => this.waitTurn(cost, signal));
    this.chain = turn.catch(() => undefined);
    return turn;
  }

  private async waitTurn(cost: { input: number; output: number }, signal?: AbortSignal): Promise<Ticket> {
    for (;;) {
      if (signal?.aborted) throw new AbortedError();
      const now = this.now();
      let wait = Math.max(0, this.pausedUntil - now);
      const needs: [Bucket | undefined, number][] = [
        [this.buckets.requests, 1],
        [this.buckets.input, cost.input],
        [this.buckets.output, cost.output],
        [this.buckets.tokens, cost.input + cost.output],
      ];
      for (const [b, need] of needs) {
        if (!b) continue;
        b.refill(now, this.factor);
        wait = Math.max(wait, b.waitFor(need, this.factor));
      }
      if (wait <= 0) {
        for (const [b, need] of needs) if (b) b.level -= need;
        this.recent.push(now);
        if (this.recent.length > 4096) this.recent.splice(0, 2048);
        return { at: now, input: cost.input, output: cost.output };
      }
      await sleep(Math.max(1, wait), signal);
    }
  }

  /** Corrects the token budgets by what the call really used (or gives the estimate back when nothing was billed). */
  settle(ticket: Ticket, actual: { input: number; output: number } | undefined): void {
    const used = actual ?? { input: 0, output: 0 };
    if (this.buckets.input) this.buckets.input.level += ticket.input - used.input;
    if (this.buckets.output) this.buckets.output.level += ticket.output - used.output;
    if (this.buckets.tokens) this.buckets.tokens.level += ticket.input + ticket.output - used.input - used.output;
  }

  private note(limited: 0 | 1): void {
    this.outcomes.push(limited);
    this.limitedInWindow += limited;
    if (this.outcomes.length > OUTCOME_WINDOW) this.limitedInWindow -= this.outcomes.shift()!;
  }

  /** Share of 429/529 among recent calls (0 until there are enough of them to judge). */
  get limitedShare(): number {
    return this.outcomes.length < 10 ? 0 : this.limitedInWindow / this.outcomes.length;
  }

  /**
   * A 429 or 529 came back. The request itself waits (the caller sleeps retry-after); the whole run
   * slows down and pauses only when such answers are a large share of recent ones.
   */
  limited(kind: "rate-limit" | "overloaded", ticket: Ticket | undefined, retryAfterMs?: number): void {
    this.note(1);
    if (this.limitedShare >= PRESSURE_SHARE) this.slowDown(kind, ticket, retryAfterMs);
  }

  /**
   * Pressure on the whole run: pauses new requests for retry-after and scales the budgets down (once
   * per second). Evidence from a request sent before the current pause began is stale and ignored.
   */
  slowDown(kind: Pressure, ticket: Ticket | undefined, retryAfterMs?: number): void {
    const now = this.now();
    const fresh = !ticket || ticket.at > this.pauseStartedAt;
    if (!fresh) return;
    if (retryAfterMs !== undefined && retryAfterMs > 0 && now + retryAfterMs > this.pausedUntil) {
      this.pausedUntil = now + retryAfterMs;
      this.pauseStartedAt = now;
    }
    if (kind === "rate-limit" && !this.buckets.requests) {
      // No limit known: the rate that met the 429s becomes the ceiling, once there is traffic to measure.
      const windowStart = now - 10_000;
      const n = this.recent.filter((t) => t >= windowStart).length;
      const first = this.recent.find((t) => t >= windowStart) ?? now;
      if (n >= 20) this.buckets.requests = new Bucket((n * 60_000) / Math.max(1000, now - first), now, true);
    }
    // Only evidence gathered at the current pace counts: a request sent before the last slow-down says
    // nothing about the slower pace, so the factor is not halved again for the same overshoot.
    if (now - this.lastSlowdown < SLOWDOWN_WINDOW_MS || (ticket && ticket.at <= this.lastSlowdown)) return;
    this.lastSlowdown = now;
    this.slowdowns++;
    this.refillAll(now);
    if (kind === "low-remaining") {
      // A budget running low is a mild signal (we may simply be pacing right at the limit): it never
      // takes the pace below half; 429s and an empty budget's pause handle real overshoot.
      this.factor = Math.min(this.factor, Math.max(0.5, this.factor * 0.9));
    } else this.factor = Math.max(MIN_FACTOR, this.factor * (kind === "rate-limit" ? 0.5 : 0.8));
    this.outcomes.length = 0;
    this.limitedInWindow = 0;
  }

  /** A successful answer: once the pressure has been gone a while, budgets grow back. */
  speedUp(): void {
    this.note(0);
    const now = this.now();
    if (this.factor >= 1 || now - this.lastSlowdown < CALM_MS || this.limitedShare >= PRESSURE_SHARE / 2) return;
    this.refillAll(now);
    this.factor = Math.min(1, this.factor * 1.02 + 0.002);
  }

  private refillAll(now: number): void {
    for (const b of Object.values(this.buckets)) b?.refill(now, this.factor);
  }

  /** Adopts advertised limits below ours and slows down when a budget's remaining runs low. */
  observe(reading: RateLimitReading | undefined, ticket?: Ticket): void {
    if (!reading) return;
    const now = this.now();
    const kinds = [
      ["requests", this.configured.rpm],
      ["input", this.configured.itpm],
      ["output", this.configured.otpm],
      // Only advertised: no flag sets a budget of input and output together.
      ["tokens", undefined],
    ] as const;
    for (const [slot, configured] of kinds) {
      const advertised = reading[slot];
      if (!advertised) continue;
      const { limit, remaining, resetInMs } = advertised;
      const ceiling = configured ? Math.min(configured, limit) : limit;
      const b = this.buckets[slot];
      if (!b || b.learned || b.base > ceiling) {
        if (b) b.base = ceiling;
        else this.buckets[slot] = new Bucket(ceiling, now);
      }
      if (remaining === undefined) continue;
      if (remaining <= 0) {
        // The reset is when the bucket is FULL again; the next unit is back after 1/limit of a minute.
        const refill = Math.max(1000, 60_000 / limit);
        this.slowDown("low-remaining", ticket, resetInMs !== undefined ? Math.min(refill, resetInMs) : refill);
      } else if (remaining < limit * 0.1) {
        this.slowDown("low-remaining", ticket);
      }
    }
  }
}
