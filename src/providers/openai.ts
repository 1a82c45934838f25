// OpenAI's own API: chat completions at api.openai.com with the key in OPENAI_API_KEY, the stage's
// schema as strict structured output, and prices from data/pricing.json. The wire format is
// chat-completions.ts, shared with openai-compatible and openai-batch.
import { familyPrices } from "../engine/cost.js";
import { ChatCompletionsProvider, OpenAiApi, type ChatBodyOptions } from "./chat-completions.js";
import { resolveApiKey, resolveBaseUrl } from "./setup.js";
import type { LiveProviderSpec, ProviderSetup, ProviderSpec } from "./types.js";

const FAMILY = "openai";
const prices = familyPrices(FAMILY);

/**
 * What every request to OpenAI carries besides the call (live and batch alike, so they ask the same
 * thing): max_completion_tokens, the name the API accepts for every model, and the reasoning effort
 * the pricing table gives the model (the lowest it accepts: these are labelling tasks).
 */
export function openAiBodyOptions(model: string): Omit<ChatBodyOptions, "form"> {
  const effort = prices(model)?.reasoningEffort;
  return { model, tokenField: "max_completion_tokens", extra: effort ? { reasoning_effort: effort } : undefined };
}

/** The API client for a run of an OpenAI spec; a missing key stops the run before anything is sent. */
export function openAiApi(spec: ProviderSpec, setup: Pick<ProviderSetup, "config" | "env">, timeoutMs?: number): OpenAiApi {
  return new OpenAiApi({ baseUrl: resolveBaseUrl(spec, setup.config, setup.env)!, apiKey: resolveApiKey(spec, setup.config, setup.env), timeoutMs });
}

export function createOpenAiProvider(setup: ProviderSetup): ChatCompletionsProvider {
  return new ChatCompletionsProvider(openAiApi(openAiSpec, setup, setup.timeoutMs), {
    ...openAiBodyOptions(setup.model),
    structuredOutput: setup.config["structured-output"],
    note: setup.note,
  });
}

export const openAiSpec: LiveProviderSpec = {
  name: "openai",
  // Live and batch OpenAI answers are the same answers: one family, one store.
  family: FAMILY,
  mode: "live",
  key: { env: "OPENAI_API_KEY", required: true },
  // The cheapest current model (OpenAI's recommendation for high-volume, cost-sensitive work).
  defaultModel: "gpt-6-luna",
  baseUrl: { env: "OPENAI_BASE_URL", default: "https://api.openai.com/v1" },
  capabilities: { structuredOutput: true, promptCaching: true, structuredOutputModes: true },
  paid: true,
  price: prices,
  create: createOpenAiProvider,
};
