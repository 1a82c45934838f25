// The Message Batches API (half price, answers within 24 h) behind BatchProvider: submit, poll,
// stream results. Orchestration — splitting, persistence, resume, re-queueing — is the engine's
// batch runner; this file only speaks the API through the SDK.
import Anthropic from "@anthropic-ai/sdk";
import type { CommandContext } from "../cli/command.js";
import type { EngineConfig } from "../engine/config.js";
import { messageParams, toAnswer } from "./anthropic.js";
import { anthropicBaseUrl, resolveApiKey, resolveModel } from "./index.js";
import type { BatchItemResult, BatchProvider, BatchStatus, ProviderCall } from "./types.js";

export class AnthropicBatchProvider implements BatchProvider {
  readonly name = "anthropic-batch" as const;

  constructor(
    private readonly client: Anthropic,
    readonly model: string,
  ) {}

  /** The request one item adds to a batch (the live provider's parameters), so the runner can size batches. */
  request(customId: string, call: ProviderCall) {
    return { custom_id: customId, params: messageParams(call, this.model) };
  }

  async submit(items: { customId: string; call: ProviderCall }[]): Promise<string> {
    const batch = await this.client.messages.batches.create({ requests: items.map((i) => this.request(i.customId, i.call)) });
    return batch.id;
  }

  async status(batchId: string): Promise<BatchStatus> {
    const batch = await this.client.messages.batches.retrieve(batchId);
    return { id: batch.id, ended: batch.processing_status === "ended", counts: { ...batch.request_counts } };
  }

  async *results(batchId: string): AsyncIterable<BatchItemResult> {
    for await (const line of await this.client.messages.batches.results(batchId)) {
      const r = line.result;
      switch (r.type) {
        case "succeeded":
          yield { customId: line.custom_id, type: "succeeded", answer: toAnswer(r.message) };
          break;
        case "errored":
          yield { customId: line.custom_id, type: "errored", message: `${r.error.error.type}: ${r.error.error.message}` };
          break;
        default:
          yield { customId: line.custom_id, type: r.type, message: r.type };
      }
    }
  }
}

/** Checks the key before anything is queued; the SDK's own retries cover create/retrieve/results calls. */
export function createAnthropicBatchProvider(config: EngineConfig, ctx: CommandContext): AnthropicBatchProvider {
  const baseURL = anthropicBaseUrl(config, ctx);
  const client = new Anthropic({
    apiKey: resolveApiKey(config, ctx)!,
    ...(baseURL ? { baseURL } : {}),
    // Polling is cheap and slow-paced: the SDK's backoff on 429/5xx is enough here.
    maxRetries: 5,
  });
  return new AnthropicBatchProvider(client, resolveModel(config));
}
