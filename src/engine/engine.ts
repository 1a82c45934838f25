// The engine: turns a stage's requests into validated records. Keys and the durable store decide what
// is sent at all; then every provider shares one path for limits, retries, repair re-asks, failures,
// cost and progress. Stages know news; the engine knows none of it.
import { setMaxListeners } from "node:events";
import { mkdir } from "node:fs/promises";
import pLimit from "p-limit";
import { UserError, type CommandContext } from "../cli/command.js";
import { runPaths, type StageCounts } from "../run/folder.js";
import type { ChatMessage, LiveProvider, ProviderAnswer, ProviderCall } from "../providers/types.js";
import { createAnthropicBatchProvider } from "../providers/anthropic-batch.js";
import { apiKeyEnv, createLiveProvider, resolveModel } from "../providers/index.js";
import { BATCH_LIMITS, runBatches } from "./batch-runner.js";
import { sha256 } from "../util/hash.js";
import type { EngineConfig } from "./config.js";
import { addUsage, costUsd, zeroUsage } from "./cost.js";
import { dryRun } from "./dry-run.js";
import { classifyError, fatalMessage } from "./errors.js";
import { AbortedError, RateGate, sleep, type Ticket } from "./limits.js";
import { Progress, type ProgressOptions } from "./progress.js";
import { JsonlAppender, readJsonl } from "./store.js";
import { estimateCallTokens } from "./tokens.js";
import {
  FailureRecord,
  IMPORTED,
  StageRecord,
  type FailureReason,
  type LlmRequest,
  type ProviderName,
  type StageName,
  type Usage,
} from "./types.js";

export interface EngineRun {
  stage: StageName;
  requests: LlmRequest[];
  runDir: string;
}

export interface EngineSummary {
  stage: StageName;
  provider: ProviderName;
  model: string;
  counts: StageCounts;
  usage: Usage;
  costUsd: number;
  /** true when failures exceed --max-failure-share: the command must exit 1 (after writing meta). */
  failedShareExceeded: boolean;
  dryRun: boolean;
}

/** Knobs tests and the bench turn; the CLI uses the defaults. */
export interface EngineDeps {
  /** A ready provider instead of one built from the config (tests). */
  provider?: LiveProvider;
  /** First retry delay; doubles per retry up to maxBackoffMs (default 500 ms). */
  retryBaseMs?: number;
  maxBackoffMs?: number;
  /** Transport retries per call (429/529/5xx/timeouts) before the item fails as api-error (default 8). */
  maxRetries?: number;
  /** Client timeout per call (default --timeout). */
  timeoutMs?: number;
  progress?: ProgressOptions;
  /** Clock for the rate gate (default performance.now). */
  now?: () => number;
  /** anthropic-batch: how often open batches are polled (default --poll-interval). */
  batchPollMs?: number;
  /** anthropic-batch: smaller per-batch limits than the API's (tests). */
  batchLimits?: Partial<typeof BATCH_LIMITS>;
  /** anthropic-batch: stops polling; the batches stay recorded for the next run. */
  batchSignal?: AbortSignal;
}

/** Provider family for the key: live and batch Claude answers are the same answers, so they share a store. */
function keyFamily(provider: ProviderName): string {
  return provider === "anthropic-batch" ? "anthropic" : provider;
}

/** JSON with sorted object keys, so a schema's key order does not change the request key. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Everything that changes the answer, hashed: provider family, model, parameters (max_tokens is the
 * only one sent: SDK 1.x has no temperature/top_p/top_k for these models), the rendered prompt, the
 * schema and its version; for offline also the inputs outside the prompt. A prompt edit re-asks only
 * the items whose rendered prompt it changes.
 */
export function requestKey(req: LlmRequest, config: EngineConfig): string {
  const offline = config.provider === "offline";
  return sha256(
    "genre-mind/request/v1",
    req.stage,
    keyFamily(config.provider),
    resolveModel(config),
    canonicalJson({ maxTokens: req.maxTokens }),
    req.system,
    req.user,
    req.jsonSchema ? canonicalJson(req.jsonSchema) : "",
    req.schemaVersion,
    offline ? (req.offlineInputs ?? "") : "",
  );
}

/** One item on its way through the engine (shared with the batch runner). */
export interface PendingItem {
  key: string;
  req: LlmRequest;
  /**
   * Other items whose rendered prompt is identical (two news rows alike, two users with the same
   * clicks): asked once, and each gets its own record or failure with the same answer.
   */
  sharers: LlmRequest[];
  /** The conversation so far: the user prompt, then any invalid answers and the errors stated back. */
  messages: ChatMessage[];
  /** Answers received (repair re-asks included; transport retries not). */
  attempts: number;
  /** Calls that were retried after a transport error. */
  transportRetries: number;
  usage: Usage;
  /** The last answer received, kept for the failure record. */
  lastAnswer?: string;
}

export type AcceptResult = "stored" | "retry" | "failed";

function repairPrompt(reason: FailureReason, error: string, maxTokens: number): string {
  if (reason === "truncated") {
    return `Your answer was cut off at the ${maxTokens}-token limit. Answer again, complete and shorter, in the required format only.`;
  }
  if (reason === "refusal") return "Please answer the request above; it is a routine data-labelling task. Reply in the required format only.";
  return `Your answer could not be used: ${error}. Answer again in the required format only, with no other text.`;
}

/**
 * The state of one stage run: the store appenders, counts, usage and the validate → store / re-ask /
 * fail decision. The live loop and the batch runner both drive items through it.
 */
export class StageSession {
  readonly paths: ReturnType<typeof runPaths>;
  readonly usage = zeroUsage();
  readonly failedByReason: Record<string, number> = {};
  done = 0;
  failed = 0;
  retried = 0;
  /** Provider calls retried after 429/529/5xx/timeouts, for the summary. */
  transportRetries = 0;
  /** The pricing mode of this run's tokens. */
  readonly costMode: "live" | "batch";
  private warnedPrice = false;

  constructor(
    readonly run: EngineRun,
    readonly config: EngineConfig,
    readonly ctx: CommandContext,
    readonly model: string,
    readonly pending: PendingItem[],
    readonly cached: number,
    readonly items: number,
    private readonly records: JsonlAppender,
    private readonly failures: JsonlAppender,
  ) {
    this.paths = runPaths(run.runDir);
    this.costMode = config.provider === "anthropic-batch" ? "batch" : "live";
  }

  get maxAttempts(): number {
    return this.config.provider === "offline" ? 1 : this.config["max-attempts"];
  }

  /** The provider call for an item's next attempt. */
  call(item: PendingItem): ProviderCall {
    return { system: item.req.system, messages: item.messages, jsonSchema: item.req.jsonSchema, maxTokens: item.req.maxTokens };
  }

  cost(): number {
    const c = costUsd(this.usage, this.model, this.costMode);
    if (c === undefined) {
      if (!this.warnedPrice && this.config.provider !== "offline" && this.config.provider !== "openai-compatible") {
        this.warnedPrice = true;
        this.ctx.stderr.write(`note: no price for model ${this.model} in data/pricing.json; cost is reported as 0\n`);
      }
      return 0;
    }
    return c;
  }

  /** Validates an answer: stores it, or prepares the re-ask, or gives up after max-attempts. */
  async accept(item: PendingItem, answer: ProviderAnswer): Promise<AcceptResult> {
    item.attempts++;
    addUsage(item.usage, answer.usage);
    addUsage(this.usage, answer.usage);
    let reason: FailureReason;
    let error: string;
    if (answer.stop === "refusal") {
      reason = "refusal";
      error = "the model refused";
    } else if (answer.stop === "max_tokens") {
      reason = "truncated";
      error = `the answer was cut off at max_tokens (${item.req.maxTokens})`;
    } else {
      const parsed = item.req.parse(answer.text);
      if (parsed.ok) {
        const record: StageRecord = { ...this.head(item), output: parsed.value, usage: item.usage, attempts: item.attempts };
        // Not `this.done += await …`: that reads done before the await and loses concurrent updates.
        const n = await this.appendForEach(this.records, item, record);
        this.done += n;
        return "stored";
      }
      reason = "invalid";
      error = parsed.error;
    }
    item.lastAnswer = answer.text;
    if (item.attempts >= this.maxAttempts) {
      await this.fail(item, reason, error);
      return "failed";
    }
    // An empty assistant turn is rejected by the API, so a bare refusal is re-asked without one.
    const previous = answer.text.trimEnd();
    item.messages = [
      ...item.messages,
      ...(previous ? [{ role: "assistant" as const, content: previous }] : []),
      { role: "user" as const, content: repairPrompt(reason, error, item.req.maxTokens) },
    ];
    if (!previous) item.messages = [item.messages[0]!, item.messages[item.messages.length - 1]!];
    return "retry";
  }

  /** Records an item as given up on; it is not a store hit, so the next run asks again. */
  async fail(item: PendingItem, reason: FailureReason, message: string): Promise<void> {
    const record: FailureRecord = {
      ...this.head(item),
      reason,
      message,
      lastAnswer: item.lastAnswer,
      usage: item.usage,
      attempts: item.attempts,
    };
    const n = await this.appendForEach(this.failures, item, record);
    this.failed += n;
    this.failedByReason[reason] = (this.failedByReason[reason] ?? 0) + n;
  }

  /** The fields every record and failure line starts with (RecordHead). */
  private head(item: PendingItem) {
    return { key: item.key, stage: this.run.stage, itemId: item.req.itemId, provider: this.config.provider, model: this.model };
  }

  /**
   * Appends an item's record or failure, then a copy for each sharer (usage is billed once, to the
   * item); done, failed and retried count every one of them. Returns how many lines it appended.
   */
  private async appendForEach(to: JsonlAppender, item: PendingItem, line: StageRecord | FailureRecord): Promise<number> {
    await to.append(line);
    for (const other of item.sharers) await to.append({ ...line, itemId: other.itemId, usage: zeroUsage() });
    const n = 1 + item.sharers.length;
    if (item.attempts > 1 || item.transportRetries > 0) this.retried += n;
    return n;
  }

  /** Records for items whose identical prompt was answered for another item in an earlier run. */
  async storeCopies(copies: readonly StageRecord[]): Promise<void> {
    for (const c of copies) await this.records.append(c);
  }

  counts(): StageCounts {
    return {
      items: this.items,
      done: this.done,
      cached: this.cached,
      retried: this.retried,
      failed: this.failed,
      failedByReason: { ...this.failedByReason },
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.records.close(), this.failures.close()]);
  }
}

/** Requests refused as malformed (400/404/422) before any answer, after which the run stops. */
const REJECTED_STREAK = 5;

/** Thrown inside the live loop when a call shows no request can succeed (rejected key, no credit). */
class RunStopped extends Error {}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

export function formatSummary(s: EngineSummary, extra: { retriedCalls?: number; seconds?: number } = {}): string {
  const c = s.counts;
  const reasons = Object.entries(c.failedByReason)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  const u = s.usage;
  return (
    [
      `${s.stage} (${s.provider}, ${s.model}): ${fmt(c.items)} items`,
      `${fmt(c.done)} done`,
      `${fmt(c.cached)} cached`,
      `${fmt(c.retried)} retried${extra.retriedCalls ? ` (${fmt(extra.retriedCalls)} calls re-sent after 429/529/5xx/timeouts)` : ""}`,
      `${fmt(c.failed)} failed${reasons ? ` (${reasons})` : ""}`,
    ].join(", ") +
    `\n  tokens: input ${fmt(u.inputTokens)}, cache write ${fmt(u.cacheWriteTokens)}, cache read ${fmt(u.cacheReadTokens)}, output ${fmt(u.outputTokens)}` +
    ` · cost $${s.costUsd.toFixed(4)}${extra.seconds !== undefined ? ` · ${extra.seconds.toFixed(1)} s` : ""}\n`
  );
}

export async function runEngine(run: EngineRun, config: EngineConfig, ctx: CommandContext): Promise<EngineSummary> {
  return runEngineWith(run, config, ctx, {});
}

/** runEngine with injectable knobs (tests, bench). */
export async function runEngineWith(run: EngineRun, config: EngineConfig, ctx: CommandContext, deps: EngineDeps): Promise<EngineSummary> {
  const started = performance.now();
  const model = resolveModel(config);
  const paths = runPaths(run.runDir);

  // Keys first: an item whose key has a record is done and is never sent again. Items that share a
  // key are asked once; an item whose key was answered for another item gets a copy of that answer.
  const byKey = new Map<string, LlmRequest[]>();
  for (const req of run.requests) {
    if (req.stage !== run.stage) throw new Error(`request for ${req.itemId} is for stage ${req.stage}, not ${run.stage}`);
    const key = requestKey(req, config);
    const group = byKey.get(key);
    if (group) group.push(req);
    else byKey.set(key, [req]);
  }
  const stored = await readJsonl(paths.records(run.stage), StageRecord);
  const answerByKey = new Map<string, StageRecord>();
  const storedItems = new Set<string>();
  for (const r of stored.records) {
    answerByKey.set(r.key, r);
    storedItems.add(`${r.key}\t${r.itemId}`);
  }
  // An imported answer (`import once`) came from another prompt and model, so no key computed here
  // can equal its key: it answers its own item, whatever the key.
  const importedItems = new Set(stored.records.filter((r) => r.provider === IMPORTED).map((r) => r.itemId));
  const pending: PendingItem[] = [];
  const copies: StageRecord[] = [];
  let cached = 0;
  for (const [key, group] of byKey) {
    const missing = group.filter((req) => !storedItems.has(`${key}\t${req.itemId}`) && !importedItems.has(req.itemId));
    cached += group.length - missing.length;
    const answer = answerByKey.get(key);
    if (missing.length === 0) continue;
    if (answer) {
      cached += missing.length;
      if (!config["dry-run"]) for (const req of missing) copies.push({ ...answer, itemId: req.itemId, usage: zeroUsage() });
      continue;
    }
    const [req, ...sharers] = missing as [LlmRequest, ...LlmRequest[]];
    pending.push({ key, req, sharers, messages: [{ role: "user", content: req.user }], attempts: 0, transportRetries: 0, usage: zeroUsage() });
  }
  const items = run.requests.length;
  const sharing = items - byKey.size;

  if (config["dry-run"]) {
    const report = await dryRun({ stage: run.stage, config, ctx, model, pending: pending.map((p) => p.req), cached, deps });
    return {
      stage: run.stage,
      provider: config.provider,
      model,
      counts: { items, done: 0, cached, retried: 0, failed: 0, failedByReason: {} },
      usage: zeroUsage(),
      costUsd: report.liveCostUsd,
      failedShareExceeded: false,
      dryRun: true,
    };
  }

  // A missing key stops the run before anything is opened or queued. Nothing to send needs no key.
  let provider: LiveProvider | undefined = deps.provider;
  const gate = new RateGate({ rpm: config.rpm, itpm: config.itpm, otpm: config.otpm }, deps.now);
  const batch = config.provider === "anthropic-batch" && pending.length > 0 ? createAnthropicBatchProvider(config, ctx) : undefined;
  if (!provider && pending.length > 0 && config.provider !== "offline" && config.provider !== "anthropic-batch") {
    provider = createLiveProvider(config, ctx, { timeoutMs: deps.timeoutMs ?? config.timeout * 1000, onHeaders: (h) => gate.observe(h) });
  }

  await mkdir(run.runDir, { recursive: true });
  const session = new StageSession(
    run,
    config,
    ctx,
    model,
    pending,
    cached,
    items,
    await JsonlAppender.open(paths.records(run.stage)),
    await JsonlAppender.open(paths.failures(run.stage)),
  );
  await session.storeCopies(copies);

  // done/failed count every item a request answers (its sharers too), so the total must as well.
  const toAnswer = pending.reduce((n, p) => n + 1 + p.sharers.length, 0);
  const progress = new Progress(
    ctx.stderr,
    run.stage,
    () => ({ done: session.done, failed: session.failed, total: toAnswer, costUsd: session.cost(), throttled: gate.throttled }),
    deps.progress,
  );
  progress.start();
  try {
    if (config.provider === "offline" && !deps.provider) await runOffline(session);
    else if (batch) {
      await runBatches(session, batch, {
        pollMs: deps.batchPollMs ?? config["poll-interval"] * 1000,
        limits: deps.batchLimits,
        signal: deps.batchSignal,
        log: (line) => ctx.stderr.write(`${line}\n`),
      });
    } else if (pending.length > 0) await runLive(session, provider!, gate, deps);
  } finally {
    progress.stop();
    await session.close();
  }

  const summary: EngineSummary = {
    stage: run.stage,
    provider: config.provider,
    model,
    counts: session.counts(),
    usage: { ...session.usage },
    costUsd: session.cost(),
    failedShareExceeded: items > 0 && session.failed / items > config["max-failure-share"],
    dryRun: false,
  };
  ctx.stdout.write(formatSummary(summary, { retriedCalls: session.transportRetries, seconds: (performance.now() - started) / 1000 }));
  if (sharing > 0) ctx.stderr.write(`note: ${sharing} item(s) have the same prompt as another item and share its answer\n`);
  if (summary.failedShareExceeded) {
    ctx.stderr.write(
      `${run.stage}: ${session.failed} of ${items} items failed (more than --max-failure-share ${config["max-failure-share"]}); see ${paths.failures(run.stage)}\n`,
    );
  }
  return summary;
}

/** The offline provider: deterministic answers, nothing to limit or retry; still validated and stored. */
async function runOffline(session: StageSession): Promise<void> {
  let inFlight: Promise<unknown>[] = [];
  for (const item of session.pending) {
    let text: string;
    try {
      text = item.req.offline();
    } catch (e) {
      item.attempts = 1;
      await session.fail(item, "invalid", `offline answer failed: ${(e as Error).message}`);
      continue;
    }
    // Not awaited one by one: the appender coalesces lines, and waiting every few thousand bounds memory.
    // Every one is awaited in the end, so the counts are final and a failed write is not lost.
    inFlight.push(session.accept(item, { text, stop: "end", usage: zeroUsage() }));
    if (inFlight.length >= 2048) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
}

async function runLive(session: StageSession, provider: LiveProvider, gate: RateGate, deps: EngineDeps): Promise<void> {
  const config = session.config;
  const abort = new AbortController();
  // Every call and backoff listens on this one signal: hundreds of listeners are expected, not a leak.
  setMaxListeners(0, abort.signal);
  let stopped: Error | undefined;
  const maxRetries = deps.maxRetries ?? 8;
  const base = deps.retryBaseMs ?? 500;
  const cap = deps.maxBackoffMs ?? 30_000;
  // Output tokens are debited before the call: the running mean of real answers (max_tokens until one is known).
  let outSeen = 0;
  let outTotal = 0;
  let answered = 0;
  let rejectedStreak = 0;

  // The first call goes alone: a rejected key then costs one request, not `concurrency` of them, and
  // its answer writes the prompt cache that every later request reads.
  let warmed = false;
  let warmupClaimed = false;
  let releaseWarmup!: () => void;
  const warmup = new Promise<void>((r) => (releaseWarmup = r));

  const send = async (item: PendingItem): Promise<ProviderAnswer> => {
    const call = session.call(item);
    for (let retry = 0; ; retry++) {
      if (stopped) throw new RunStopped();
      let first = false;
      if (!warmed) {
        if (warmupClaimed) await warmup;
        else first = warmupClaimed = true;
      }
      if (stopped) throw new RunStopped();
      const est = estimateCallTokens(call);
      const outEst = Math.min(item.req.maxTokens, outSeen > 0 ? Math.ceil((outTotal / outSeen) * 1.2) : item.req.maxTokens);
      let ticket: Ticket | undefined;
      try {
        ticket = await gate.acquire({ input: est.total, output: outEst }, abort.signal);
        const answer = await provider.call(call, abort.signal);
        gate.settle(ticket, { input: answer.usage.inputTokens + answer.usage.cacheWriteTokens, output: answer.usage.outputTokens });
        gate.speedUp();
        answered++;
        outSeen++;
        outTotal += answer.usage.outputTokens;
        return answer;
      } catch (e) {
        if (ticket) gate.settle(ticket, undefined);
        if (e instanceof AbortedError || stopped) throw new RunStopped();
        const c = classifyError(e);
        if (c.kind === "aborted") throw new RunStopped();
        if (c.kind === "fatal") {
          stopped ??= new UserError(fatalMessage(c.status, apiKeyEnv(session.config), c.message));
          abort.abort();
          throw new RunStopped();
        }
        gate.observe(c.headers, ticket);
        if (c.kind === "rejected" && answered === 0 && ++rejectedStreak >= REJECTED_STREAK) {
          // Every request so far refused as malformed (unknown model, unsupported parameter): the next
          // thousand would be too. Stop instead of filling the failures file with the same error.
          stopped ??= new UserError(`the API rejected the first ${rejectedStreak} requests and answered none (${c.status}): ${c.message}`);
          abort.abort();
          throw new RunStopped();
        }
        if (!c.retryable || retry >= maxRetries) {
          throw Object.assign(new Error(c.status ? `${c.status}: ${c.message}` : c.message), { final: true });
        }
        if (c.kind === "rate-limit" || c.kind === "overloaded") gate.limited(c.kind, ticket, c.retryAfterMs ?? 1000);
        item.transportRetries++;
        session.transportRetries++;
        const backoff = Math.min(cap, base * 2 ** retry) * (0.5 + Math.random() / 2);
        await sleep(Math.max(backoff, c.retryAfterMs ?? 0), abort.signal).catch(() => undefined);
      } finally {
        if (first) {
          warmed = true;
          releaseWarmup();
        }
      }
    }
  };

  const processItem = async (item: PendingItem): Promise<void> => {
    for (;;) {
      if (stopped) return;
      let answer: ProviderAnswer;
      try {
        answer = await send(item);
      } catch (e) {
        if (e instanceof RunStopped) return;
        await session.fail(item, "api-error", (e as Error).message);
        return;
      }
      const result = await session.accept(item, answer);
      if (result !== "retry") return;
    }
  };

  const limit = pLimit(config.concurrency);
  await Promise.all(session.pending.map((item) => limit(() => processItem(item))));
  if (stopped) throw stopped;
}

