// Chat completions at a configured base URL: vLLM, Ollama (/v1), llama.cpp server, any other server
// that speaks OpenAI's API. The wire format is chat-completions.ts; this file says only where the
// server is and what it needs: --base-url and --model are required, a key is optional.
import { UsageError } from "../cli/command.js";
import { familyPrices } from "../engine/cost.js";
import { ChatCompletionsProvider, OpenAiApi } from "./chat-completions.js";
import { resolveApiKey, resolveBaseUrl } from "./setup.js";
import type { LiveProviderSpec, ProviderSetup } from "./types.js";

/** Builds the client from the run's config; the key is read from the environment only. */
export function createOpenAiCompatibleProvider(setup: Pick<ProviderSetup, "config" | "env" | "timeoutMs" | "note">): ChatCompletionsProvider {
  const { config, env } = setup;
  const baseUrl = resolveBaseUrl(openAiCompatibleSpec, config, env)!;
  if (!config.model) {
    throw new UsageError("--provider openai-compatible needs --model: the model name the server serves (e.g. the vLLM --served-model-name)");
  }
  const apiKey = resolveApiKey(openAiCompatibleSpec, config, env);
  // Servers that predate max_completion_tokens know only max_tokens; one that wants the new name says so in its 400.
  return new ChatCompletionsProvider(new OpenAiApi({ baseUrl, apiKey, timeoutMs: setup.timeoutMs }), {
    model: config.model,
    tokenField: "max_tokens",
    structuredOutput: config["structured-output"],
    note: setup.note,
  });
}

export const openAiCompatibleSpec: LiveProviderSpec = {
  name: "openai-compatible",
  family: "openai-compatible",
  mode: "live",
  // Local servers usually need none; OpenAI's own API reads this variable.
  key: { env: "OPENAI_API_KEY", required: false },
  baseUrl: { required: { example: "e.g. http://127.0.0.1:8000/v1 (vLLM) or http://127.0.0.1:11434/v1 (Ollama)" } },
  capabilities: { structuredOutput: true, promptCaching: true, structuredOutputModes: true },
  // Mostly local servers: a model without a price is expected, not worth a note. A model OpenAI
  // prices (the server is OpenAI's, or a proxy to it) is priced as OpenAI prices it.
  paid: false,
  price: familyPrices("openai"),
  create: createOpenAiCompatibleProvider,
};
