// The contract between stages (which know news) and the engine (which knows LLMs).
// Stages build LlmRequests; the engine keys them (provider, model, parameters, prompt, schema
// version: see requestKey in the engine) and returns one StageRecord per request or a FailureRecord.
import { z } from "zod";
import { isProviderName, providerSpecs } from "../providers/registry.js";

/** A provider in the registry (providers/registry.ts): checked when a config or a record is read. */
export const ProviderName = z.string().refine(isProviderName, {
  error: () => `Invalid option: expected one of ${providerSpecs().map((s) => JSON.stringify(s.name)).join("|")}`,
});
export type ProviderName = z.infer<typeof ProviderName>;

/** Who answered a record: a provider, or "imported" for answers taken from elsewhere (`import once`). */
export const IMPORTED = "imported";
export const Answerer = z.union([ProviderName, z.literal(IMPORTED)]);
export type Answerer = z.infer<typeof Answerer>;

/** The result of checking one raw answer: a normalized value, or an error to state in the repair re-ask. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface LlmRequest<T = unknown> {
  /** The stage asking (src/stages/registry.ts): the engine only keys, stores and reports by it. */
  stage: string;
  /** The news ID or user ID this answer is for. */
  itemId: string;
  /** Static instructions: identical for every item of a stage, so it is what prompt caching marks. */
  system: string;
  user: string;
  /** JSON stages: a JSON Schema for structured-output support; absent for plain-text answers. */
  jsonSchema?: Record<string, unknown>;
  /** Bumped by a stage when its parse/normalize rules change, so stored answers are re-asked. */
  schemaVersion: string;
  maxTokens: number;
  /** Typical answer length, for the dry-run cost estimate (default: half of maxTokens). */
  expectedOutputTokens?: number;
  /**
   * Inputs of the offline answer that are not in the rendered prompt (e.g. entities, the retrieval
   * catalog's fingerprint); part of the request key for the offline provider only.
   */
  offlineInputs?: string;
  /**
   * The stage lets this request share one call with others of its kind (--pack, engine/pack.ts): its
   * answer must then make sense as one part of a larger JSON answer.
   */
  packable?: boolean;
  /**
   * Inputs the prompt does not show that change what a valid answer stands for (pick: the news IDs
   * behind the candidate numbers it shows); part of the request key for every provider, so two items
   * share an answer only when it means the same for both.
   */
  keyInputs?: string;
  /** Validates and normalizes the raw text of an answer (the stage's zod schema lives behind it). */
  parse(raw: string): ParseResult<T>;
  /** The offline provider's deterministic answer, as raw text that goes through `parse` like any other. */
  offline(): string;
  /** Provenance written with the item's record (profile, generate): see RecordSource. */
  source?: RecordSource;
  /**
   * What makes a valid answer invalid for this item in particular, beyond its prompt (generate: a
   * copy of a news item the user was shown): an error to state in the re-ask, or undefined. The
   * engine applies it to every answer an item gets: its own, one shared with items whose prompt is
   * identical, one copied from another item's record, one stored earlier.
   */
  check?(value: T): string | undefined;
}

/**
 * Where a record's answer came from: the split whose history the prompt was written from and the
 * clicked news IDs it showed (in prompt order). Merge uses the answer in a split only where that
 * split's history holds every one of these clicks (src/mind/history-rule.ts). Anything that writes
 * profile or generate records (an import of other answers included) must fill it in; a record
 * without it is not merged.
 */
export const RecordSource = z.object({
  split: z.string().min(1),
  clicks: z.array(z.string().min(1)).min(1),
});
export type RecordSource = z.infer<typeof RecordSource>;

export const Usage = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative().default(0),
  cacheWriteTokens: z.number().int().nonnegative().default(0),
});
export type Usage = z.infer<typeof Usage>;

/** Where every record and failure line starts: the request key and whose answer, from which model. */
const RecordHead = z.object({
  key: z.string(),
  stage: z.string().min(1),
  itemId: z.string(),
  provider: Answerer,
  model: z.string(),
  /** profile and generate: the provenance of the answer (RecordSource). */
  source: RecordSource.optional(),
  /** Imported answers: the file and line each one was read from. */
  origin: z.array(z.object({ file: z.string(), line: z.number().int().positive() })).optional(),
});

/**
 * One line of `<run>/<stage>.jsonl`: a validated answer. The store is append-only; the last record of
 * an item wins (items with an identical prompt share a key, each with its own record).
 */
export const StageRecord = RecordHead.extend({
  /** The normalized output (see each stage's output schema). */
  output: z.unknown(),
  /** Tokens billed for this item across all its attempts. */
  usage: Usage,
  attempts: z.number().int().positive(),
  /** Answered as one part of a request carrying this many items (--pack); absent when asked alone. */
  pack: z.number().int().min(2).optional(),
  /**
   * Imported answers kept in part: what the answer held that the output leaves out, by what it was
   * (`topics`, `regions`: values off the stage's lists; `notes`: a note below a title), as written.
   */
  leftOut: z.record(z.string(), z.array(z.string())).optional(),
});
export type StageRecord = z.infer<typeof StageRecord>;

/**
 * Adds to `into`, kind by kind, what records kept in part leave out: a record's `leftOut` lists, or
 * counts already made from them. The import summary, merge and the report all count them this way.
 */
export function countLeftOut<T extends Partial<Record<string, number>>>(into: T, leftOut: Readonly<Partial<Record<string, readonly string[] | number>>>): T {
  const counts: Partial<Record<string, number>> = into;
  for (const [kind, values] of Object.entries(leftOut)) {
    if (values !== undefined) counts[kind] = (counts[kind] ?? 0) + (typeof values === "number" ? values : values.length);
  }
  return into;
}

export const FAILURE_REASONS = ["invalid", "refusal", "truncated", "api-error", "expired"] as const;
export const FailureReason = z.enum(FAILURE_REASONS);
export type FailureReason = z.infer<typeof FailureReason>;

/** One line of `<run>/<stage>.failures.jsonl`: an item the engine gave up on, kept with its reason. */
export const FailureRecord = RecordHead.extend({
  reason: FailureReason,
  message: z.string(),
  /** The last raw answer, for a human to read (never merged). */
  lastAnswer: z.string().optional(),
  usage: Usage,
  attempts: z.number().int().nonnegative(),
});
export type FailureRecord = z.infer<typeof FailureRecord>;
