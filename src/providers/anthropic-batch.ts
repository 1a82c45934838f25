// The Message Batches API (half price, answers within 24 h) behind BatchProvider: submit, poll,
// stream results. Orchestration — splitting, persistence, resume, re-queueing — is the engine's
// batch runner; this file only speaks the API through the SDK.
import Anthropic from "@anthropic-ai/sdk";
import { anthropicError, anthropicSpec, messageParams, toAnswer } from "./anthropic.js";
import { sleep } from "../engine/limits.js";
import { DEFAULT_RETRY, retryDelayMs, type RetryPolicy } from "../engine/retry.js";
import { ProviderError } from "./errors.js";
import { resolveApiKey, resolveBaseUrl } from "./setup.js";
import type { BatchItemResult, BatchProvider, BatchProviderSpec, ProviderCall, ProviderSetup } from "./types.js";

/** Creates refused with 429/529 sent again before the run gives up (nothing was made for those). */
const CREATE_REFUSALS = 5;

/** Items errored with these types are not worth sending again: the request itself is wrong. */
const PERMANENT_ERRORS = /^(invalid_request_error|authentication_error|permission_error|not_found_error)\b/;

async function translated<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw anthropicError(e);
  }
}

export class AnthropicBatchProvider implements BatchProvider {
  /** A refused create is sent again like a live call: backoff with jitter, capped, at least the retry-after. */
  private readonly createRetry: RetryPolicy;

  constructor(
    private readonly client: Anthropic,
    readonly model: string,
    options: { retryBaseMs?: number } = {},
  ) {
    this.createRetry = { ...DEFAULT_RETRY, maxRetries: CREATE_REFUSALS, baseMs: options.retryBaseMs ?? DEFAULT_RETRY.baseMs };
  }

  /** The request one item adds to a batch (the live provider's parameters). */
  entry(customId: string, call: ProviderCall) {
    return { custom_id: customId, params: messageParams(call, this.model) };
  }

  /**
   * Creates the batch with no SDK retry: an answer lost after the API made the batch (a 5xx, a
   * dropped connection) would make a second, billed batch that nobody records, and this API lists
   * no tags to find the first by. A 429 or 529 refused the create, so it is sent again here.
   */
  async submit(items: { customId: string; call: ProviderCall }[]): Promise<string> {
    const body = { requests: items.map((i) => this.entry(i.customId, i.call)) };
    const sentAt = new Date().toISOString();
    for (let refused = 0; ; refused++) {
      try {
        return (await this.client.messages.batches.create(body, { maxRetries: 0 })).id;
      } catch (e) {
        const error = anthropicError(e);
        if (!(error instanceof ProviderError)) throw error;
        if ((error.kind === "rate-limit" || error.kind === "overloaded") && refused < this.createRetry.maxRetries) {
          await sleep(retryDelayMs(this.createRetry, refused, error.retryAfterMs));
          continue;
        }
        if (error.kind === "server" || error.kind === "timeout" || error.kind === "connection" || error.kind === "malformed") {
          throw new ProviderError(
            "fatal",
            `creating a batch of ${items.length} requests failed after it was sent (${error.message}): the API may have made it all the same. ` +
              `The next run sends these requests again; to pay once, cancel in the Anthropic console a batch of ${items.length} requests created at about ${sentAt}, if there is one.`,
            { cause: e },
          );
        }
        throw error;
      }
    }
  }

  async status(batchId: string): Promise<{ ended: boolean } | undefined> {
    try {
      const batch = await translated(() => this.client.messages.batches.retrieve(batchId));
      return { ended: batch.processing_status === "ended" };
    } catch (e) {
      if (e instanceof ProviderError && e.status === 404) return undefined;
      throw e;
    }
  }

  async *results(batchId: string): AsyncIterable<BatchItemResult> {
    try {
      for await (const line of await this.client.messages.batches.results(batchId)) {
        const r = line.result;
        switch (r.type) {
          case "succeeded":
            yield { customId: line.custom_id, type: "succeeded", answer: toAnswer(r.message) };
            break;
          case "errored": {
            const message = `${r.error.error.type}: ${r.error.error.message}`;
            yield { customId: line.custom_id, type: "errored", message, permanent: PERMANENT_ERRORS.test(message) };
            break;
          }
          default:
            yield { customId: line.custom_id, type: r.type, message: r.type };
        }
      }
    } catch (e) {
      throw anthropicError(e);
    }
  }
}

/** Checks the key before anything is queued; the SDK's own retries cover create/retrieve/results calls. */
export function createAnthropicBatchProvider(setup: ProviderSetup): AnthropicBatchProvider {
  const baseURL = resolveBaseUrl(anthropicBatchSpec, setup.config, setup.env);
  const client = new Anthropic({
    apiKey: resolveApiKey(anthropicBatchSpec, setup.config, setup.env)!,
    ...(baseURL ? { baseURL } : {}),
    // Polling is cheap and slow-paced: the SDK's backoff on 429/5xx is enough here.
    maxRetries: 5,
  });
  return new AnthropicBatchProvider(client, setup.model, { retryBaseMs: setup.retryBaseMs });
}

/** The live provider's key, model, family (so the two share stored answers), prices and token counter. */
export const anthropicBatchSpec: BatchProviderSpec = {
  ...anthropicSpec,
  name: "anthropic-batch",
  mode: "batch",
  // "256 MB" is read as the smaller decimal 256,000,000 so a batch is never rejected for its size.
  batchLimits: { maxRequests: 100_000, maxBytes: 256_000_000 },
  create: createAnthropicBatchProvider,
};
