// Transport retries: a call that failed on the way (429, 529, 5xx, a timeout, an unreadable body) is
// sent again, unchanged, after the server's retry-after or an exponential backoff. Not to be
// confused with a repair re-ask (session.ts), which sends a new message stating what was wrong with
// an answer. Used by the live runner and by the dry-run's token counting.
import { classifyError, type ClassifiedError } from "./errors.js";
import { sleep } from "./limits.js";

export interface RetryPolicy {
  /** Retries per call before it is given up on. */
  maxRetries: number;
  /** First backoff; doubles per retry up to capMs. */
  baseMs: number;
  capMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 8, baseMs: 500, capMs: 30_000 };

/** A call given up on: not retryable, or out of retries. */
export class TransportFailure extends Error {
  constructor(readonly error: ClassifiedError) {
    super(error.status ? `${error.status}: ${error.message}` : error.message);
    this.name = "TransportFailure";
  }
}

export interface RetryHooks {
  /** Sees every failure first; throws to stop at once (a rejected key, a stopped run). */
  onError?(error: ClassifiedError): void;
  /** A retry is decided; `wait` follows. */
  onRetry?(error: ClassifiedError): void;
  /** Waits before the next call (default: sleeps; the live runner frees its slot meanwhile). */
  wait?(ms: number): Promise<void>;
}

/** The wait before retry number `retry` (0-based): backoff with jitter, at least the server's retry-after. */
export function retryDelayMs(policy: RetryPolicy, retry: number, retryAfterMs?: number): number {
  const backoff = Math.min(policy.capMs, policy.baseMs * 2 ** retry) * (0.5 + Math.random() / 2);
  return Math.max(backoff, retryAfterMs ?? 0);
}

/** Calls `call` until it succeeds; throws TransportFailure once the error is final. */
export async function withTransportRetries<T>(call: () => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await call();
    } catch (e) {
      const c = classifyError(e);
      hooks.onError?.(c);
      if (!c.retryable || retry >= policy.maxRetries) throw new TransportFailure(c);
      hooks.onRetry?.(c);
      await (hooks.wait ?? sleep)(retryDelayMs(policy, retry, c.retryAfterMs));
    }
  }
}
