// The one error every provider throws for a failed call, whatever its SDK throws: the engine decides
// on retries, pauses and stopping the run from this alone (engine/errors.ts), so a new provider
// only has to say which kind of failure it saw.
import type { RateLimitReading } from "./types.js";

export type ProviderErrorKind =
  /** 401/402/403: no request can succeed; the whole run stops. */
  | "fatal"
  | "rate-limit"
  | "overloaded"
  | "server"
  | "timeout"
  | "connection"
  /** 400 and other 4xx: the request itself is wrong; retrying the same bytes cannot help. */
  | "rejected"
  /** The run was aborted by us. */
  | "aborted"
  /** A 200 whose body could not be read: retried like a transient failure. */
  | "malformed";

export interface ProviderErrorDetails {
  status?: number;
  /** How long the server asked us to wait (retry-after). */
  retryAfterMs?: number;
  /** The rate-limit budgets the error response advertised. */
  limits?: RateLimitReading;
  cause?: unknown;
}

export class ProviderError extends Error {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly limits?: RateLimitReading;

  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    details: ProviderErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "ProviderError";
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.limits = details.limits;
  }

  /** An HTTP error answer, its kind read from the status. */
  static fromStatus(status: number, message: string, details: Omit<ProviderErrorDetails, "status"> = {}): ProviderError {
    return new ProviderError(kindOfStatus(status), message, { ...details, status });
  }
}

export function kindOfStatus(status: number): ProviderErrorKind {
  if (status === 401 || status === 403 || status === 402) return "fatal";
  if (status === 429) return "rate-limit";
  if (status === 529) return "overloaded";
  if (status === 408 || status === 409 || status >= 500) return "server";
  return "rejected";
}

/** retry-after-ms, else retry-after (seconds or an HTTP date), as HTTP APIs send them. */
export function retryAfterMs(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get("retry-after-ms"));
  if (headers.get("retry-after-ms") !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers.get("retry-after");
  if (raw === null) return undefined;
  const s = Number(raw);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/**
 * A failed connection in words with its cause: fetch and the SDKs say "fetch failed" or "Connection
 * error." and keep the reason (ECONNREFUSED, ENOTFOUND, …) in `cause`, the part a user can act on.
 */
export function connectionMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  let cause = e instanceof Error ? (e.cause as { code?: unknown; message?: unknown; cause?: unknown } | undefined) : undefined;
  // The SDK wraps fetch's error, which wraps the socket's: the innermost code says most.
  for (let depth = 0; cause && depth < 3; depth++) {
    if (typeof cause.code === "string") return `${message} (${cause.code})`;
    const inner = cause.cause as typeof cause | undefined;
    if (!inner) return typeof cause.message === "string" && cause.message !== message ? `${message} (${cause.message})` : message;
    cause = inner;
  }
  return message;
}
