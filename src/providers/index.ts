// Builds the provider a config names. Keys come from the environment only and are never printed.
import { UserError, type CommandContext } from "../cli/command.js";
import type { EngineConfig } from "../engine/config.js";
import type { ProviderName } from "../engine/types.js";
import { AnthropicProvider } from "./anthropic.js";
import { createOpenAiCompatibleProvider, OPENAI_DEFAULT_KEY_ENV } from "./openai-compatible.js";
import { OFFLINE_MODEL } from "./offline.js";
import type { LiveProvider } from "./types.js";

export function defaultModel(provider: ProviderName): string {
  switch (provider) {
    case "anthropic":
    case "anthropic-batch":
      return "claude-haiku-4-5";
    case "openai-compatible":
      return "default";
    case "offline":
      return OFFLINE_MODEL;
  }
}

/** The model a run uses: --model, else the provider's default. */
export function resolveModel(config: EngineConfig): string {
  return config.model ?? defaultModel(config.provider);
}

export function apiKeyEnv(config: EngineConfig): string {
  return config["api-key-env"] ?? (config.provider === "openai-compatible" ? OPENAI_DEFAULT_KEY_ENV : "ANTHROPIC_API_KEY");
}

/** The API key from the named variable; missing → a UserError naming the variable (never a value). */
export function resolveApiKey(config: EngineConfig, ctx: CommandContext, required = true): string | undefined {
  const name = apiKeyEnv(config);
  const value = ctx.env[name]?.trim();
  if (!value && required) {
    throw new UserError(
      `no API key: set the environment variable ${name}` +
        (config["api-key-env"] ? "" : " (or name another variable with --api-key-env)") +
        ` for --provider ${config.provider}, or use --provider offline`,
      2,
    );
  }
  return value || undefined;
}

/** --base-url, else ANTHROPIC_BASE_URL from the command's environment (not process.env, so in-process runs can point elsewhere). */
export function anthropicBaseUrl(config: EngineConfig, ctx: CommandContext): string | undefined {
  return config["base-url"] ?? ctx.env.ANTHROPIC_BASE_URL;
}

export interface ProviderHooks {
  timeoutMs?: number;
  /** Response headers of each successful call (rate-limit feedback). */
  onHeaders?: (headers: Headers) => void;
}

/** The live provider for anthropic / openai-compatible; checks the key before anything is sent. */
export function createLiveProvider(config: EngineConfig, ctx: CommandContext, hooks: ProviderHooks = {}): LiveProvider {
  const model = resolveModel(config);
  switch (config.provider) {
    case "anthropic":
    case "anthropic-batch":
      return new AnthropicProvider({
        apiKey: resolveApiKey(config, ctx)!,
        model,
        baseURL: anthropicBaseUrl(config, ctx),
        timeoutMs: hooks.timeoutMs,
        onHeaders: hooks.onHeaders,
      });
    case "openai-compatible":
      return createOpenAiCompatibleProvider(config, ctx.env, { timeoutMs: hooks.timeoutMs });
    case "offline":
      throw new Error("the offline provider has no live client: the engine answers offline requests itself");
  }
}
