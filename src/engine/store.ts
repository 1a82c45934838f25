// The durable store: append-only JSONL per stage in the run folder. Every answer is appended as soon
// as it is validated, so a killed process loses only the requests then in flight. A line is written
// with a single write() on an O_APPEND descriptor; a write torn by kill -9 can only be the last line,
// which readers skip and the next appender cuts off before appending.
import { existsSync } from "node:fs";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { z } from "zod";
import { MindFormatError } from "../mind/errors.js";
import { readLineChunks } from "../mind/read.js";

/** A line the reader could not use: not JSON, or not the schema. */
export interface BadLine {
  file: string;
  lineNo: number;
  /** The last line, without a final newline: a write cut short by a crash, not damage. */
  torn: boolean;
  field?: string;
  message: string;
}

/**
 * The one way a JSONL file of this tool is read (store, batches file, merge, report). Blank lines are
 * skipped. A bad line (not JSON, or not the schema) that is the last one and lacks its newline is a
 * torn write: always skipped, and passed to onBad marked torn. A bad line anywhere else is damage: it
 * stops the read with an error naming file:line, unless the caller takes bad lines itself through
 * onBad (merge and report count and skip them; the engine's own files refuse to go on).
 */
export async function* jsonlLines<S extends z.ZodType>(
  file: string,
  schema: S,
  onBad?: (bad: BadLine) => void,
): AsyncGenerator<{ value: z.infer<S>; lineNo: number }> {
  for await (const { text, starts, ends, firstLineNo } of readLineChunks(file)) {
    // Every chunk but a final unterminated line ends with its newline.
    const lastUnterminated = !text.endsWith("\n");
    for (let i = 0; i < starts.length; i++) {
      const line = text.slice(starts[i], ends[i]);
      if (line.trim() === "") continue;
      const lineNo = firstLineNo + i;
      let bad: Omit<BadLine, "file" | "lineNo" | "torn"> | undefined;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (e) {
        bad = { message: `not JSON: ${(e as Error).message}` };
      }
      if (!bad) {
        const parsed = schema.safeParse(value);
        if (parsed.success) {
          yield { value: parsed.data, lineNo };
          continue;
        }
        const issue = parsed.error.issues[0];
        bad = { field: issue?.path.join(".") || undefined, message: issue?.message ?? "invalid record" };
      }
      const torn = lastUnterminated && i === starts.length - 1;
      if (!torn && !onBad) throw new MindFormatError(file, lineNo, bad.field, bad.message);
      onBad?.({ file, lineNo, torn, ...bad });
    }
  }
}

/**
 * The valid lines of one of the engine's own files, streamed (missing file → none): a damaged line is
 * an error; a torn last line is skipped and reported to onTorn.
 */
export async function* engineJsonl<S extends z.ZodType>(path: string, schema: S, onTorn?: () => void): AsyncGenerator<z.infer<S>> {
  if (!existsSync(path)) return;
  const strict = (bad: BadLine) => {
    if (!bad.torn) throw new MindFormatError(bad.file, bad.lineNo, bad.field, bad.message);
    onTorn?.();
  };
  for await (const { value } of jsonlLines(path, schema, strict)) yield value;
}

export interface JsonlRead<T> {
  records: T[];
  /** True when the last line was cut short (a write interrupted by a crash): it is ignored. */
  tornTail: boolean;
}

/** engineJsonl, collected. */
export async function readJsonl<S extends z.ZodType>(path: string, schema: S): Promise<JsonlRead<z.infer<S>>> {
  const read: JsonlRead<z.infer<S>> = { records: [], tornTail: false };
  for await (const value of engineJsonl(path, schema, () => (read.tornTail = true))) read.records.push(value);
  return read;
}

/**
 * Appends JSON lines. Lines that arrive while a write is in progress go out together in the next
 * write, so each write() ends on a line boundary and a busy run does not make one syscall per line.
 */
export class JsonlAppender {
  private queue: string[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private writing = false;
  private failed: Error | undefined;

  private constructor(private readonly fh: FileHandle, readonly path: string) {}

  /** Opens for appending, first cutting off a torn last line left by a killed writer. */
  static async open(path: string): Promise<JsonlAppender> {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(path, "a+");
    const { size } = await fh.stat();
    if (size > 0) {
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, size - 1);
      if (one[0] !== 0x0a) {
        // Only the tail can be torn: cut back to just after the last newline (or to empty).
        let cut = 0;
        const chunk = 1 << 16;
        for (let end = size; end > 0 && cut === 0; end -= chunk) {
          const start = Math.max(0, end - chunk);
          const buf = Buffer.alloc(end - start);
          await fh.read(buf, 0, buf.length, start);
          const nl = buf.lastIndexOf(0x0a);
          if (nl >= 0) cut = start + nl + 1;
        }
        await fh.truncate(cut);
      }
    }
    return new JsonlAppender(fh, path);
  }

  /** Queues one record; the returned promise resolves once its line is in the file. */
  append(record: unknown): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.queue.push(JSON.stringify(record) + "\n");
    return this.waitForQueue();
  }

  /** Resolves when everything appended so far is in the file. */
  flush(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return this.waitForQueue();
  }

  private waitForQueue(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.writing) void this.drain();
    return p;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0 || this.waiters.length > 0) {
      const data = this.queue.join("");
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        if (data) await this.fh.appendFile(data);
      } catch (e) {
        this.failed = e as Error;
        for (const w of [...waiters, ...this.waiters]) w.reject(this.failed);
        this.waiters = [];
        break;
      }
      for (const w of waiters) w.resolve();
    }
    this.writing = false;
  }

  /** Resolves when everything appended so far is on disk, not just in the file. */
  async sync(): Promise<void> {
    await this.flush();
    await this.fh.sync();
  }

  async close(): Promise<void> {
    await this.sync();
    await this.fh.close();
  }
}
