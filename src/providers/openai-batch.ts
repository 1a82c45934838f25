// OpenAI's Batch API (half price, answers within 24 h) behind BatchProvider: the requests go up as a
// JSONL file (purpose "batch"), a batch is created for /v1/chat/completions with the 24 h window and
// the run's tag in its metadata, polled, and its output and error files read back as results. The
// request lines and answers are chat-completions.ts, as for the live provider; splitting, persistence,
// resume and re-queueing are the engine's batch runner.
//
// Our own fetch client, not the official `openai` package: the chat-completions mapping, the errors
// and the key handling already live in chat-completions.ts for the live providers, and this API is
// five plain requests (upload, create, retrieve, list, file content); the SDK would be a second
// transport with its own error classes to translate and a dependency for no behaviour we lack.
import { TransportFailure, withTransportRetries, type RetryPolicy } from "../engine/retry.js";
import { chatBody, firstForm, readCompletion, type OpenAiApi } from "./chat-completions.js";
import { kindOfStatus, ProviderError } from "./errors.js";
import { openAiApi, openAiBodyOptions, openAiSpec } from "./openai.js";
import type { BatchItemResult, BatchProvider, BatchProviderSpec, ProviderCall, ProviderSetup, SubmitOptions } from "./types.js";

const ENDPOINT = "/v1/chat/completions";
/** The metadata key a batch's tag is stored under (keys: 64 characters at most). */
export const TAG_KEY = "genre_mind_intent";
/** Batches looked at when looking for a tag: the newest first, never further back than this. */
const MAX_LISTED = 2000;
/** Batch-API calls are few and slow-paced: each is sent again this often on 429/5xx/timeouts. */
const RETRIES = 5;
const ENDED = new Set(["completed", "failed", "expired", "cancelled"]);

interface Batch {
  id: string;
  status: string;
  created_at: number;
  input_file_id: string;
  output_file_id?: string | null;
  error_file_id?: string | null;
  metadata?: Record<string, string> | null;
  errors?: { data?: { code?: string; message?: string; line?: number | null }[] } | null;
}

interface OutputLine {
  custom_id?: string;
  response?: { status_code?: number; body?: unknown } | null;
  error?: { code?: string; message?: string } | null;
}

export interface OpenAiBatchOptions {
  /** First wait before a retried call (default 1 s; doubles per attempt). */
  retryBaseMs?: number;
  structuredOutput?: ProviderSetup["config"]["structured-output"];
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

export class OpenAiBatchProvider implements BatchProvider {
  private readonly retry: RetryPolicy;
  private readonly body: ReturnType<typeof openAiBodyOptions> & { form: ReturnType<typeof firstForm> };

  constructor(
    private readonly api: OpenAiApi,
    readonly model: string,
    options: OpenAiBatchOptions = {},
  ) {
    this.retry = { maxRetries: RETRIES, baseMs: options.retryBaseMs ?? 1000, capMs: 30_000 };
    // A batch cannot learn from a refusal mid-run: auto asks with the strict schema, which OpenAI supports.
    this.body = { ...openAiBodyOptions(model), form: firstForm(options.structuredOutput ?? "auto") };
  }

  /** One line of the input file: the request the live provider would send, under its custom ID. */
  entry(customId: string, call: ProviderCall) {
    return { custom_id: customId, method: "POST", url: ENDPOINT, body: chatBody(call, this.body) };
  }

  async submit(items: { customId: string; call: ProviderCall }[], options: SubmitOptions): Promise<string> {
    const since = new Date();
    let fileId = options.staged;
    if (!fileId) fileId = await this.upload(items, options);
    try {
      return await this.createBatch(fileId, options.tag, since);
    } catch (e) {
      // A staged file an interrupted run uploaded may be gone (deleted, expired): upload it again.
      if (!options.staged || !(e instanceof ProviderError) || e.kind !== "rejected") throw e;
      return this.createBatch(await this.upload(items, options), options.tag, since);
    }
  }

  private async upload(items: { customId: string; call: ProviderCall }[], options: SubmitOptions): Promise<string> {
    const jsonl = items.map((i) => JSON.stringify(this.entry(i.customId, i.call))).join("\n") + "\n";
    const file = await this.send(() => {
      const form = new FormData();
      form.append("purpose", "batch");
      form.append("file", new Blob([jsonl], { type: "application/jsonl" }), "genre-mind-batch.jsonl");
      return this.api.request("POST", "/files", form);
    });
    const id = (file.json as { id?: unknown } | undefined)?.id;
    if (typeof id !== "string") throw new ProviderError("malformed", `file upload answered without an id: ${file.text.slice(0, 120)}`);
    await options.onStaged?.(id);
    return id;
  }

  /**
   * A create that failed in transit may have created the batch all the same: before it is sent again,
   * the batches created since are looked through for its tag.
   */
  private async createBatch(fileId: string, tag: string, since: Date): Promise<string> {
    let sent = 0;
    const create = async (): Promise<unknown> => {
      if (sent++ > 0) {
        const found = await this.find(tag, since);
        if (found) return { id: found };
      }
      const body = { input_file_id: fileId, endpoint: ENDPOINT, completion_window: "24h", metadata: { [TAG_KEY]: tag } };
      return (await this.api.request("POST", "/batches", body)).json;
    };
    const id = ((await this.send(create)) as { id?: unknown } | undefined)?.id;
    if (typeof id !== "string") throw new ProviderError("malformed", "batch create answered without an id");
    return id;
  }

  async find(tag: string, since: Date): Promise<string | undefined> {
    // Clocks differ: look a little further back than the intent was written.
    const oldest = since.getTime() / 1000 - 600;
    let after: string | undefined;
    for (let seen = 0; seen < MAX_LISTED; ) {
      const page = await this.get(`/batches?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      const list = page.json as { data?: Batch[]; has_more?: boolean; last_id?: string } | undefined;
      const data = list?.data ?? [];
      for (const b of data) if (b.metadata?.[TAG_KEY] === tag) return b.id;
      seen += data.length;
      if (!list?.has_more || data.length === 0 || data.some((b) => b.created_at < oldest)) return undefined;
      after = list.last_id ?? data[data.length - 1]!.id;
    }
    return undefined;
  }

  async status(batchId: string): Promise<{ ended: boolean } | undefined> {
    const batch = await this.retrieve(batchId);
    return batch ? { ended: ENDED.has(batch.status) } : undefined;
  }

  private async retrieve(batchId: string): Promise<Batch | undefined> {
    try {
      return (await this.get(`/batches/${encodeURIComponent(batchId)}`)).json as Batch;
    } catch (e) {
      if (e instanceof ProviderError && e.status === 404) return undefined;
      throw e;
    }
  }

  private async content(fileId: string): Promise<string> {
    return (await this.get(`/files/${encodeURIComponent(fileId)}/content`)).text;
  }

  async *results(batchId: string): AsyncIterable<BatchItemResult> {
    const batch = await this.retrieve(batchId);
    if (!batch) return;
    if (batch.status === "failed") {
      yield* this.failedBatch(batch);
      return;
    }
    for (const fileId of [batch.output_file_id, batch.error_file_id]) {
      if (!fileId) continue;
      for (const raw of lines(await this.content(fileId))) {
        let line: OutputLine;
        try {
          line = JSON.parse(raw) as OutputLine;
        } catch {
          continue;
        }
        if (typeof line.custom_id === "string") yield resultOf(line.custom_id, line);
      }
    }
  }

  /**
   * A batch that failed validation ran none of its requests. Its errors name input lines: those
   * requests are wrong and not sent again; the others are, with the batch's reason.
   */
  private async *failedBatch(batch: Batch): AsyncIterable<BatchItemResult> {
    const errors = batch.errors?.data ?? [];
    const byLine = new Map(errors.filter((e) => typeof e.line === "number").map((e) => [e.line!, `${e.code ?? "invalid"}: ${e.message ?? ""}`]));
    const general = errors.filter((e) => typeof e.line !== "number").map((e) => `${e.code ?? "failed"}: ${e.message ?? ""}`).join("; ");
    const input = lines(await this.content(batch.input_file_id));
    for (const [i, raw] of input.entries()) {
      const customId = (JSON.parse(raw) as { custom_id?: string }).custom_id;
      if (!customId) continue;
      const own = byLine.get(i + 1);
      yield { customId, type: "errored", message: `batch ${batch.id} failed: ${own ?? (general || "validation failed")}`, permanent: own !== undefined };
    }
  }

  /** A GET, sent again after 429/5xx/timeouts. */
  private get(path: string) {
    return this.send(() => this.api.request("GET", path));
  }

  /** A call sent again after 429/5xx/timeouts; a final failure leaves as the ProviderError it was. */
  private async send<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await withTransportRetries(call, this.retry);
    } catch (e) {
      if (!(e instanceof TransportFailure)) throw e;
      const c = e.error;
      throw new ProviderError(c.kind, c.message, { status: c.status, retryAfterMs: c.retryAfterMs, limits: c.limits, cause: e });
    }
  }
}

/** One line of an output or error file as a result. */
function resultOf(customId: string, line: OutputLine): BatchItemResult {
  const status = line.response?.status_code;
  if (status === 200) {
    const answer = readCompletion(line.response?.body);
    if (answer) return { customId, type: "succeeded", answer };
    return { customId, type: "errored", message: "the answer is not a chat completion", permanent: false };
  }
  if (line.error?.code === "batch_expired") return { customId, type: "expired", message: line.error.message ?? "batch_expired" };
  if (line.error?.code === "batch_cancelled") return { customId, type: "canceled", message: line.error.message ?? "batch_cancelled" };
  const body = line.response?.body as { error?: { message?: string; code?: string } } | undefined;
  const message = body?.error?.message ?? line.error?.message ?? "the request failed";
  const code = body?.error?.code ?? line.error?.code;
  return {
    customId,
    type: "errored",
    message: `${status ?? "error"}${code ? ` ${code}` : ""}: ${message}`,
    // A request the API refused as malformed fails the same way every time.
    permanent: status !== undefined && kindOfStatus(status) === "rejected",
  };
}

export function createOpenAiBatchProvider(setup: ProviderSetup): OpenAiBatchProvider {
  // Batch calls upload and download whole files: they get the client's long default timeout, not --timeout.
  return new OpenAiBatchProvider(openAiApi(openAiBatchSpec, setup), setup.model, {
    structuredOutput: setup.config["structured-output"],
    retryBaseMs: setup.retryBaseMs,
  });
}

/** The live provider's key, base URL, model, family (so the two share stored answers) and prices. */
export const openAiBatchSpec: BatchProviderSpec = {
  ...openAiSpec,
  name: "openai-batch",
  mode: "batch",
  // Per batch: 50,000 requests and a 200 MB input file, read as the smaller decimal 200,000,000 bytes.
  batchLimits: { maxRequests: 50_000, maxBytes: 200_000_000 },
  create: createOpenAiBatchProvider,
};
