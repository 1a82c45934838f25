// How the engine reacts to a failed provider call. Every provider throws the Anthropic SDK's error
// classes (openai-compatible builds them from its HTTP status and headers), so one match serves all.
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  OverloadedError,
  PaymentRequiredError,
  PermissionDeniedError,
  RateLimitError,
} from "@anthropic-ai/sdk";

export type ErrorKind =
  /** 401/403/402: no request can succeed; the whole run stops. */
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
  /** A 200 whose body could not be read, or anything unexpected: retried like a transient failure. */
  | "malformed";

export interface ClassifiedError {
  kind: ErrorKind;
  retryable: boolean;
  status?: number;
  /** From retry-after-ms / retry-after. */
  retryAfterMs?: number;
  headers?: Headers;
  message: string;
}

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

function byStatus(status: number): { kind: ErrorKind; retryable: boolean } {
  if (status === 401 || status === 403 || status === 402) return { kind: "fatal", retryable: false };
  if (status === 429) return { kind: "rate-limit", retryable: true };
  if (status === 529) return { kind: "overloaded", retryable: true };
  if (status === 408 || status === 409 || status >= 500) return { kind: "server", retryable: true };
  return { kind: "rejected", retryable: false };
}

export function classifyError(e: unknown): ClassifiedError {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof APIUserAbortError) return { kind: "aborted", retryable: false, message };
  if (e instanceof APIConnectionTimeoutError) return { kind: "timeout", retryable: true, message };
  if (e instanceof APIConnectionError) return { kind: "connection", retryable: true, message };
  if (e instanceof AuthenticationError || e instanceof PermissionDeniedError || e instanceof PaymentRequiredError) {
    return { kind: "fatal", retryable: false, status: e.status, headers: e.headers, message };
  }
  if (e instanceof RateLimitError) return { kind: "rate-limit", retryable: true, status: 429, headers: e.headers, retryAfterMs: retryAfterMs(e.headers), message };
  if (e instanceof OverloadedError) return { kind: "overloaded", retryable: true, status: 529, headers: e.headers, retryAfterMs: retryAfterMs(e.headers), message };
  if (e instanceof APIError && typeof e.status === "number") {
    const h = e.headers instanceof Headers ? e.headers : undefined;
    return { ...byStatus(e.status), status: e.status, headers: h, retryAfterMs: retryAfterMs(h), message };
  }
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) {
    return { kind: e.name === "AbortError" ? "aborted" : "timeout", retryable: e.name !== "AbortError", message };
  }
  return { kind: "malformed", retryable: true, message };
}

/** Why a run stopped at a fatal status (401/403/402), naming the key's variable, never its value. */
export function fatalMessage(status: number | undefined, keyEnv: string, detail: string): string {
  if (status === 401) return `the API rejected the key in ${keyEnv} (401 authentication_error); nothing more was sent`;
  if (status === 403) return `the key in ${keyEnv} may not use this API or model (403 permission_error); nothing more was sent`;
  return `the API refused the request (${status}): ${detail}; nothing more was sent`;
}
