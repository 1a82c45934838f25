// The offline provider: each stage's deterministic non-LLM answer (LlmRequest.offline), served through
// the same validation and store as a model's answer. No network, no key, no cost.
import type { LlmRequest } from "../engine/types.js";
import type { ProviderAnswer } from "./types.js";

export const OFFLINE_MODEL = "offline";

export function offlineAnswer(req: LlmRequest): ProviderAnswer {
  return { text: req.offline(), stop: "end", usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 } };
}
