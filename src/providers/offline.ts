// The offline provider: each stage's deterministic non-LLM answer (LlmRequest.offline), served by the
// engine's offline loop through the same validation and store as a model's answer. No network, no
// key, no cost.
export const OFFLINE_MODEL = "offline";
