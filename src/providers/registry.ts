// Every provider the engine, the dry-run, the rate gate and the CLI know, by name. A provider is its
// own file declaring a ProviderSpec (providers/types.ts); adding one is that file plus one line in
// BUILT_IN below. Tests may register their own.
import { anthropicBatchSpec } from "./anthropic-batch.js";
import { anthropicSpec } from "./anthropic.js";
import { offlineSpec } from "./offline.js";
import { openAiCompatibleSpec } from "./openai-compatible.js";
import { openAiBatchSpec } from "./openai-batch.js";
import { openAiSpec } from "./openai.js";
import type { ProviderSpec } from "./types.js";

/** In the order --help lists them. */
const BUILT_IN: readonly ProviderSpec[] = [anthropicSpec, anthropicBatchSpec, openAiSpec, openAiBatchSpec, openAiCompatibleSpec, offlineSpec];

/** The provider a run uses without --provider: no key, no network, no cost. */
export const DEFAULT_PROVIDER = offlineSpec.name;

const registry = new Map<string, ProviderSpec>();

export function registerProvider(spec: ProviderSpec): void {
  if (registry.has(spec.name)) throw new Error(`provider ${spec.name} is registered twice`);
  registry.set(spec.name, spec);
}

for (const spec of BUILT_IN) registerProvider(spec);

export function isProviderName(name: string): boolean {
  return registry.has(name);
}

export function providerSpecs(): ProviderSpec[] {
  return [...registry.values()];
}

/** The spec of a provider name the config has already checked (ProviderName). */
export function providerSpec(name: string): ProviderSpec {
  const spec = registry.get(name);
  if (!spec) throw new Error(`no provider named ${name} is registered`);
  return spec;
}
