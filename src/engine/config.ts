// Engine options shared by every stage command (summarize, profile, generate, augment, demo).
import { z } from "zod";
import { zBool, zInt, zNumber, type OptionSpecs } from "../cli/command.js";
import { STRUCTURED_OUTPUT_MODES } from "../providers/chat-completions.js";
import { DEFAULT_PROVIDER, providerSpecs } from "../providers/registry.js";
import type { ProviderSpec } from "../providers/types.js";
import { ProviderName } from "./types.js";

/** "a, b: x; c: y": providers that say the same thing, grouped, in registry order. */
function perProvider(say: (spec: ProviderSpec) => string | undefined): string {
  const groups = new Map<string, string[]>();
  for (const spec of providerSpecs()) {
    const text = say(spec);
    if (text !== undefined) groups.set(text, [...(groups.get(text) ?? []), spec.name]);
  }
  return [...groups].map(([text, names]) => `${names.join(", ")}: ${text}`).join("; ");
}

const names = (specs: ProviderSpec[]) => specs.map((s) => s.name).join(", ");

export const engineOptions: OptionSpecs = {
  provider: { type: "string", arg: "<name>", description: `${providerSpecs().map((s) => s.name).join(" | ")} (default: ${DEFAULT_PROVIDER})` },
  model: { type: "string", arg: "<id>", description: `model ID (default per provider: ${perProvider((s) => (s.mode === "offline" ? undefined : s.defaultModel))})` },
  "base-url": {
    type: "string",
    arg: "<url>",
    description: `API base URL (${perProvider((s) => (s.baseUrl?.required ? "required" : s.baseUrl?.env ? `${s.baseUrl.env} or the default` : undefined))})`,
  },
  "api-key-env": {
    type: "string",
    arg: "<VAR>",
    description: `environment variable holding the API key (default ${[...new Set(providerSpecs().flatMap((s) => (s.key ? [s.key.env] : [])))].join(" / ")})`,
  },
  concurrency: { type: "string", arg: "<n>", description: "requests in flight at most (default 8)" },
  rpm: { type: "string", arg: "<n>", description: "requests per minute budget (default: unlimited)" },
  itpm: { type: "string", arg: "<n>", description: "input tokens per minute budget (default: unlimited)" },
  otpm: { type: "string", arg: "<n>", description: "output tokens per minute budget (default: unlimited)" },
  "max-attempts": { type: "string", arg: "<n>", description: "attempts per item, repair re-asks included (default 3)" },
  "max-failure-share": { type: "string", arg: "<0..1>", description: "exit non-zero when more than this share of items failed (default 0.05)" },
  "max-cost": {
    type: "string",
    arg: "<USD>",
    description: "stop sending before the stage's cost in this --out (earlier runs included) would pass this many dollars; exit 3",
  },
  "structured-output": {
    type: "string",
    arg: "<how>",
    description: `${names(providerSpecs().filter((s) => s.capabilities.structuredOutputModes))}: how JSON stages ask for their schema: auto (default: strict json_schema, the prompt if the server refuses it before any answer) | schema | json (JSON mode + schema in the prompt) | prompt`,
  },
  "poll-interval": { type: "string", arg: "<s>", description: `${names(providerSpecs().filter((s) => s.mode === "batch"))}: seconds between batch status polls (default 30)` },
  pack: {
    type: "string",
    arg: "<n>",
    description: "items per request for the stages that allow it (summarize, profile, factors-users, factors-news): one copy of the system prompt for n items (default 1; not offline)",
  },
  "dry-run": { type: "boolean", description: "render every prompt, count tokens and print the cost estimate; send nothing" },
  timeout: { type: "string", arg: "<s>", description: "seconds to wait for one answer before retrying it (default 120)" },
  "count-tokens": {
    type: "string",
    arg: "<how>",
    description: `dry-run token count: estimate (chars/3.5, default) | api (the API's own counter: ${names(providerSpecs().filter((s) => s.tokenCounter))}; needs the key)`,
  },
};

export const EngineConfig = z.object({
  provider: ProviderName.default(DEFAULT_PROVIDER),
  model: z.string().min(1).optional(),
  "base-url": z.url({ error: "expected a URL such as http://127.0.0.1:8000/v1" }).optional(),
  "api-key-env": z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "expected an environment variable name" }).optional(),
  concurrency: zInt(1, 1000).default(8),
  rpm: zNumber(0).optional(),
  itpm: zNumber(0).optional(),
  otpm: zNumber(0).optional(),
  "max-attempts": zInt(1, 20).default(3),
  "max-failure-share": zNumber(0, 1).default(0.05),
  "max-cost": zNumber(0).optional(),
  "structured-output": z.enum(STRUCTURED_OUTPUT_MODES).default("auto"),
  "poll-interval": zNumber(0.001).default(30),
  pack: zInt(1, 100).default(1),
  "dry-run": zBool.default(false),
  "count-tokens": z.enum(["estimate", "api"]).default("estimate"),
  timeout: zNumber(0.001).default(120),
});
export type EngineConfig = z.infer<typeof EngineConfig>;
