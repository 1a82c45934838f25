// The durable store: append-only JSONL per stage in the run folder. Every answer is appended as soon
// as it is validated, so a killed process loses only the requests then in flight. A line is written
// with a single write() on an O_APPEND descriptor; a write torn by kill -9 can only be the last line,
// which readers skip and the next appender cuts off before appending.
import { existsSync } from "node:fs";
import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { z } from "zod";
import { MindFormatError } from "../mind/errors.js";

export interface JsonlRead<T> {
  records: T[];
  /** True when the last line was cut short (a write interrupted by a crash): it is ignored. */
  tornTail: boolean;
}

/**
 * Reads every valid line of an append-only JSONL file (missing file → empty). An unparsable final line
 * without a newline is a torn write and is skipped; any other bad line is an error naming file:line.
 */
export async function readJsonl<S extends z.ZodType>(path: string, schema: S): Promise<JsonlRead<z.infer<S>>> {
  if (!existsSync(path)) return { records: [], tornTail: false };
  const text = await readFile(path, "utf8");
  const lines = text.split("\n");
  const endsClean = text.endsWith("\n") || text.length === 0;
  const records: z.infer<S>[] = [];
  let tornTail = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const last = i === lines.length - 1 && !endsClean;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      if (last) {
        tornTail = true;
        continue;
      }
      throw new MindFormatError(path, i + 1, undefined, `not JSON: ${(e as Error).message}`);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      if (last) {
        tornTail = true;
        continue;
      }
      const issue = parsed.error.issues[0];
      throw new MindFormatError(path, i + 1, issue?.path.join(".") || undefined, issue?.message ?? "invalid record");
    }
    records.push(parsed.data);
  }
  return { records, tornTail };
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

  async close(): Promise<void> {
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
  }
}
