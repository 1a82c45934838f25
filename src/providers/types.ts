// What a provider is: a declaration (ProviderSpec: name, key, model, limits, prices, a factory) and
// the client it builds — one call in, one raw answer out (live), or a batch submitted and collected.
// Retries, limits, validation, storage and cost live in the engine, once, for every provider.
import type { ModelInfo } from "../engine/cost.js";
import type { EngineConfig } from "../engine/config.js";
import type { Usage } from "../engine/types.js";

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

/** One budget as the API advertised it in a response. */
export interface BudgetReading {
  /** Per minute. */
  limit: number;
  remaining?: number;
  /** When the budget is full again. */
  resetInMs?: number;
}

/** The rate-limit budgets a response advertised (each API spells its headers its own way). */
export interface RateLimitReading {
  requests?: BudgetReading;
  input?: BudgetReading;
  output?: BudgetReading;
  /** Input and output tokens counted together (OpenAI's one token budget). */
  tokens?: BudgetReading;
}

export interface ProviderAnswer {
  text: string;
  stop: StopKind;
  usage: Usage;
  /** Read from the answer's headers, for the engine's rate gate. */
  limits?: RateLimitReading;
}

export interface TokenCounter {
  /** Exact input tokens for a call (dry-run --count-tokens api). */
  countTokens(call: ProviderCall): Promise<number>;
}

/** A live client. Failed calls throw ProviderError (providers/errors.ts), never the SDK's own errors. */
export interface LiveProvider {
  readonly model: string;
  call(call: ProviderCall, signal?: AbortSignal): Promise<ProviderAnswer>;
}

export type BatchItemResult =
  | { customId: string; type: "succeeded"; answer: ProviderAnswer }
  /** `permanent`: the request itself is wrong, so sending it again cannot help. */
  | { customId: string; type: "errored"; message: string; permanent: boolean }
  | { customId: string; type: "expired" | "canceled"; message: string };

/**
 * What the runner tells a provider about one batch it creates. The runner records an intent (tag and
 * items) durably before `submit`, and every staged input and the batch ID as they come, so a run
 * killed at any point can tell what exists.
 */
export interface SubmitOptions {
  /** Unique per create: a provider whose API keeps metadata on a batch attaches it, so `find` can see it. */
  tag: string;
  /** Input this tag already staged in an interrupted run (from `onStaged`): used instead of staging again. */
  staged?: string;
  /**
   * Called with a reference to input staged before the create (e.g. an uploaded file's ID); resolves
   * once the runner has recorded it.
   */
  onStaged?(ref: string): Promise<void>;
}

/** A batch client: what the engine's batch runner drives. Methods throw ProviderError. */
export interface BatchProvider {
  readonly model: string;
  /** What one item adds to a batch's request body, so the runner can keep batches under the byte limit. */
  entry(customId: string, call: ProviderCall): unknown;
  submit(items: { customId: string; call: ProviderCall }[], options: SubmitOptions): Promise<string>;
  /**
   * The batch created with this tag (not before `since`), if the API can list batches with their
   * metadata: a run killed between sending a create and recording its ID adopts that batch instead of
   * paying for its items twice. Absent: such items are sent again.
   */
  find?(tag: string, since: Date): Promise<string | undefined>;
  /** Whether a batch has ended; undefined when the API does not know the batch (deleted, another key). */
  status(batchId: string): Promise<{ ended: boolean } | undefined>;
  results(batchId: string): AsyncIterable<BatchItemResult>;
}

/** A batch API's limits per batch: requests, and bytes of the create request's body. */
export interface BatchLimits {
  maxRequests: number;
  maxBytes: number;
}

/** What a factory is given to build a client. */
export interface ProviderSetup {
  config: EngineConfig;
  /** The command's environment (keys, base URL variables), not process.env. */
  env: NodeJS.ProcessEnv;
  /** --model, else the provider's default. */
  model: string;
  /** Client timeout per call (live providers). */
  timeoutMs?: number;
  /** First wait before a provider retries a call itself (batch APIs; the engine retries live calls). */
  retryBaseMs?: number;
  /** Tells the user once about something the client changed on its own (e.g. a fallback it took). */
  note?(message: string): void;
}

interface ProviderSpecBase {
  /** The --provider value, stored in every record this provider answers. */
  readonly name: string;
  /**
   * Providers whose answers are the same answers (one API, live and batch) share a family: it is part
   * of the request key, so they share stored answers.
   */
  readonly family: string;
  /** The environment variable holding the key (--api-key-env overrides), and whether a run needs one. */
  readonly key?: { env: string; required: boolean };
  /** The model when --model is not given; absent: --model names the model the server serves. */
  readonly defaultModel?: string;
  /**
   * Where --base-url comes from when it is not given: an environment variable, else the provider's
   * default (absent: the SDK's own), or nowhere (required, with an example).
   */
  readonly baseUrl?: { env?: string; default?: string; required?: { example: string } };
  readonly capabilities: {
    /** JSON stages can ask for schema-constrained answers (the engine validates them either way). */
    structuredOutput: boolean;
    /** A repeated system prompt is billed at the cache price (the dry-run counts it so). */
    promptCaching: boolean;
    /** --structured-output chooses how the schema is sent (response format, JSON mode, the prompt). */
    structuredOutputModes?: boolean;
  };
  /** Whether tokens cost money: a model without a price then earns a note. */
  readonly paid: boolean;
  /** Prices and caching facts of a model; undefined when unknown. Absent: answers are free. */
  price?(model: string): ModelInfo | undefined;
  /** Exact token counts for --dry-run --count-tokens api. */
  tokenCounter?(setup: ProviderSetup): TokenCounter;
}

export interface LiveProviderSpec extends ProviderSpecBase {
  readonly mode: "live";
  create(setup: ProviderSetup): LiveProvider;
}

export interface BatchProviderSpec extends ProviderSpecBase {
  readonly mode: "batch";
  readonly batchLimits: BatchLimits;
  create(setup: ProviderSetup): BatchProvider;
}

/** Each request's own deterministic answer (LlmRequest.offline): no client, no network, no cost. */
export interface OfflineProviderSpec extends ProviderSpecBase {
  readonly mode: "offline";
}

export type ProviderSpec = LiveProviderSpec | BatchProviderSpec | OfflineProviderSpec;
