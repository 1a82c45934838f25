// The Message Batches API (half price, answers within 24 h) behind BatchProvider: submit, poll,
// stream results. Orchestration — splitting, persistence, resume, re-queueing — is the engine's
// batch runner; this file only speaks the API through the SDK.
import Anthropic from "@anthropic-ai/sdk";
import type { Message, MessageCreateParamsNonStreaming } from "@anthropic-ai/sdk/resources/messages/messages";
import type { BatchItemResult, BatchProvider, BatchStatus, ProviderAnswer, ProviderCall, StopKind } from "./types.js";

export interface AnthropicBatchOptions {
  client: Anthropic;
  model: string;
  /** Builds one Messages request from a call; shared with the live provider so both ask alike. */
  params?: (call: ProviderCall, model: string) => MessageCreateParamsNonStreaming;
  /** Reads one Messages answer; shared with the live provider. */
  answer?: (message: Message) => ProviderAnswer;
}

export class AnthropicBatchProvider implements BatchProvider {
  readonly name = "anthropic-batch" as const;
  readonly model: string;
  private readonly client: Anthropic;
  private readonly params: (call: ProviderCall, model: string) => MessageCreateParamsNonStreaming;
  private readonly answer: (message: Message) => ProviderAnswer;

  constructor(options: AnthropicBatchOptions) {
    this.client = options.client;
    this.model = options.model;
    this.params = options.params ?? messageParams;
    this.answer = options.answer ?? answerOf;
  }

  /** The request body one item adds to a batch, so the runner can keep batches under the size limit. */
  request(customId: string, call: ProviderCall) {
    return { custom_id: customId, params: this.params(call, this.model) };
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
          yield { customId: line.custom_id, type: "succeeded", answer: this.answer(r.message) };
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

function messageParams(call: ProviderCall, model: string): MessageCreateParamsNonStreaming {
  return {
    model,
    max_tokens: call.maxTokens,
    system: [{ type: "text", text: call.system, cache_control: { type: "ephemeral" } }],
    messages: call.messages,
    ...(call.jsonSchema ? { output_config: { format: { type: "json_schema", schema: call.jsonSchema } } } : {}),
  };
}

function answerOf(message: Message): ProviderAnswer {
  const text = message.content.map((b) => (b.type === "text" ? b.text : "")).join("");
  const stop: StopKind = message.stop_reason === "max_tokens" ? "max_tokens" : message.stop_reason === "refusal" ? "refusal" : "end";
  const u = message.usage;
  return {
    text,
    stop,
    usage: {
      inputTokens: u.input_tokens,
      outputTokens: u.output_tokens,
      cacheReadTokens: u.cache_read_input_tokens ?? 0,
      cacheWriteTokens: u.cache_creation_input_tokens ?? 0,
    },
  };
}
