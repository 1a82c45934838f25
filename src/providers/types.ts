// What a provider does: one call in, one raw answer out (live), or a batch submitted and collected.
// Retries, limits, validation, storage and cost live in the engine, once, for every provider.
import type { ProviderName, Usage } from "../engine/types.js";

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

export interface ProviderCall {
  system: string;
  /** The item's user message, then — on a repair re-ask — the invalid answer and the validation error. */
  messages: ChatMessage[];
  jsonSchema?: Record<string, unknown>;
  maxTokens: number;
}

/** How the model stopped: a cut-off or a refusal is re-asked by the engine like an invalid answer. */
export type StopKind = "end" | "max_tokens" | "refusal";

export interface ProviderAnswer {
  text: string;
  stop: StopKind;
  usage: Usage;
}

export interface LiveProvider {
  readonly name: ProviderName;
  readonly model: string;
  call(call: ProviderCall, signal?: AbortSignal): Promise<ProviderAnswer>;
  /** Exact input tokens for a call when the API can count them (dry-run); undefined means estimate. */
  countTokens?(call: ProviderCall): Promise<number>;
}

export type BatchItemResult =
  | { customId: string; type: "succeeded"; answer: ProviderAnswer }
  | { customId: string; type: "errored" | "expired" | "canceled"; message: string };

export interface BatchStatus {
  id: string;
  ended: boolean;
  counts: { processing: number; succeeded: number; errored: number; expired: number; canceled: number };
}

export interface BatchProvider {
  readonly name: ProviderName;
  readonly model: string;
  submit(items: { customId: string; call: ProviderCall }[]): Promise<string>;
  status(batchId: string): Promise<BatchStatus>;
  results(batchId: string): AsyncIterable<BatchItemResult>;
}
