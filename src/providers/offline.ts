// The offline provider: each stage's deterministic non-LLM answer (LlmRequest.offline), served by the
// engine's offline runner through the same validation and store as a model's answer. No network, no
// key, no cost.
import type { OfflineProviderSpec } from "./types.js";

export const OFFLINE_PROVIDER = "offline";
export const OFFLINE_MODEL = "offline";

export const offlineSpec: OfflineProviderSpec = {
  name: OFFLINE_PROVIDER,
  family: OFFLINE_PROVIDER,
  mode: "offline",
  defaultModel: OFFLINE_MODEL,
  capabilities: { structuredOutput: false, promptCaching: false },
  paid: false,
};
