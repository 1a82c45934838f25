// What a provider reads from the run's config and environment: its model, key and base URL, each
// resolved the same way for every provider from what its spec declares. Keys come from the
// environment only and are never printed.
import { UsageError, UserError } from "../cli/command.js";
import type { EngineConfig } from "../engine/config.js";
import { OFFLINE_PROVIDER } from "./offline.js";
import type { ProviderSpec } from "./types.js";

/** Stands for "the model the server serves" when a provider has no default and --model is absent. */
const SERVER_DEFAULT_MODEL = "default";

/** The model a run uses: --model, else the provider's default. */
export function resolveModel(spec: ProviderSpec, config: EngineConfig): string {
  return config.model ?? spec.defaultModel ?? SERVER_DEFAULT_MODEL;
}

/** The variable the key is read from: --api-key-env, else the provider's own (undefined: no key). */
export function apiKeyEnv(spec: ProviderSpec, config: EngineConfig): string | undefined {
  return config["api-key-env"] ?? spec.key?.env;
}

/**
 * The API key from the named variable. Missing where the provider needs one → a usage error (exit 2)
 * naming the variable (never a value); a variable named with --api-key-env must be set even where a key is optional.
 */
export function resolveApiKey(spec: ProviderSpec, config: EngineConfig, env: NodeJS.ProcessEnv): string | undefined {
  const name = apiKeyEnv(spec, config);
  if (!name) return undefined;
  const value = env[name]?.trim();
  if (value) return value;
  if (spec.key?.required) {
    throw new UserError(
      `no API key: set the environment variable ${name}` +
        (config["api-key-env"] ? "" : " (or name another variable with --api-key-env)") +
        ` for --provider ${config.provider}, or use --provider ${OFFLINE_PROVIDER}`,
      2,
    );
  }
  if (config["api-key-env"]) throw new UserError(`--api-key-env ${name}: the environment variable ${name} is not set`, 2);
  return undefined;
}

/**
 * --base-url, else the provider's environment variable from the command's environment (not
 * process.env, so in-process runs can point elsewhere), else the provider's default; undefined means
 * the SDK's default. A provider that has no default stops the run with its example.
 */
export function resolveBaseUrl(spec: ProviderSpec, config: EngineConfig, env: NodeJS.ProcessEnv): string | undefined {
  const url = config["base-url"] ?? (spec.baseUrl?.env ? env[spec.baseUrl.env] || undefined : undefined) ?? spec.baseUrl?.default;
  if (!url && spec.baseUrl?.required) throw new UsageError(`--provider ${config.provider} needs --base-url, ${spec.baseUrl.required.example}`);
  return url;
}
