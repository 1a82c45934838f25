// How the engine reacts to a failed provider call. Providers throw ProviderError whatever their SDK
// throws (providers/errors.ts), so one match serves all of them; anything else is a fault of ours or
// of the answer, retried like a transient failure and bounded by the retry budget.
import { ProviderError, type ProviderErrorKind } from "../providers/errors.js";
import type { RateLimitReading } from "../providers/types.js";

export type ErrorKind = ProviderErrorKind;

export interface ClassifiedError {
  kind: ErrorKind;
  retryable: boolean;
  status?: number;
  retryAfterMs?: number;
  limits?: RateLimitReading;
  message: string;
}

const RETRYABLE: ReadonlySet<ErrorKind> = new Set(["rate-limit", "overloaded", "server", "timeout", "connection", "malformed"]);

export function classifyError(e: unknown): ClassifiedError {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof ProviderError) {
    return { kind: e.kind, retryable: RETRYABLE.has(e.kind), status: e.status, retryAfterMs: e.retryAfterMs, limits: e.limits, message };
  }
  // Our own abort (the engine's sleeps) and the platform's timeouts, whoever raised them.
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) {
    return { kind: e.name === "AbortError" ? "aborted" : "timeout", retryable: e.name !== "AbortError", message };
  }
  return { kind: "malformed", retryable: true, message };
}

/** Why a run stopped at a fatal status (401/403/402), naming the key's variable, never its value. */
export function fatalMessage(status: number | undefined, keyEnv: string | undefined, detail: string): string {
  const key = keyEnv ? `the key in ${keyEnv}` : "the request";
  if (status === 401) return `the API rejected ${key} (401 authentication_error); nothing more was sent`;
  if (status === 403) return `${key} may not use this API or model (403 permission_error); nothing more was sent`;
  return `the API refused the request (${status}): ${detail}; nothing more was sent`;
}
