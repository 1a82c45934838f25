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
 * The itemId of a record or failure line as JsonlAppender writes it, without parsing the line;
 * undefined when it cannot be told so. An escaped quote in a string value cannot fake the key.
 */
export function lineItemId(line: string): string | undefined {
  const at = line.indexOf('"itemId":"');
  if (at === -1) return undefined;
  const end = line.indexOf('"', at + 10);
  const id = end === -1 ? undefined : line.slice(at + 10, end);
  return id === undefined || id.includes("\\") ? undefined : id;
}

/**
 * The one way a JSONL file of this tool is read (store, batches file, merge, report). Blank lines are
 * skipped. A bad line (not JSON, or not the schema) that is the last one and lacks its newline is a
 * torn write: always skipped, and passed to onBad marked torn. A bad line anywhere else is damage: it
 * stops the read with an error naming file:line, unless the caller takes bad lines itself through
 * onBad (merge and report count and skip them; the engine's own files refuse to go on). `wanted`
 * may pass over lines before they are parsed (not checked either). `parse` stands in for JSON.parse
 * (merge reads record lines its own way, with the same result; it throws as JSON.parse does).
 */
export async function* jsonlLines<S extends z.ZodType>(
  file: string,
  schema: S,
  onBad?: (bad: BadLine) => void,
  wanted?: (line: string) => boolean,
  parse: (line: string) => unknown = JSON.parse,
): AsyncGenerator<{ value: z.infer<S>; lineNo: number; byteOffset: number }> {
  for await (const { text, starts, ends, firstLineNo, byteOffset: chunkOffset, ascii } of readLineChunks(file)) {
    // Every chunk but a final unterminated line ends with its newline.
    const lastUnterminated = !text.endsWith("\n");
    // Bytes before line i of a non-ASCII chunk, counted as the loop goes.
    let counted = 0;
    let countedTo = 0;
    for (let i = 0; i < starts.length; i++) {
      const line = text.slice(starts[i], ends[i]);
      if (line.trim() === "" || (wanted && !wanted(line))) continue;
      const lineNo = firstLineNo + i;
      if (!ascii) {
        counted += Buffer.byteLength(text.slice(countedTo, starts[i]));
        countedTo = starts[i]!;
      }
      const byteOffset = chunkOffset + (ascii ? starts[i]! : counted);
      let bad: Omit<BadLine, "file" | "lineNo" | "torn"> | undefined;
      let value: unknown;
      try {
        value = parse(line);
      } catch (e) {
        bad = { message: `not JSON: ${(e as Error).message}` };
      }
      if (!bad) {
        const parsed = schema.safeParse(value);
        if (parsed.success) {
          yield { value: parsed.data, lineNo, byteOffset };
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
export async function* engineJsonl<S extends z.ZodType>(path: string, schema: S, onTorn?: () => void, wanted?: (line: string) => boolean): AsyncGenerator<z.infer<S>> {
  for await (const { value } of engineJsonlLines(path, schema, onTorn, wanted)) yield value;
}

/** engineJsonl with each line's number and byte offset (where JsonlLineReader finds it again). */
export async function* engineJsonlLines<S extends z.ZodType>(
  path: string,
  schema: S,
  onTorn?: () => void,
  wanted?: (line: string) => boolean,
): AsyncGenerator<{ value: z.infer<S>; lineNo: number; byteOffset: number }> {
  if (!existsSync(path)) return;
  const strict = (bad: BadLine) => {
    if (!bad.torn) throw new MindFormatError(bad.file, bad.lineNo, bad.field, bad.message);
    onTorn?.();
  };
  yield* jsonlLines(path, schema, strict, wanted);
}

/**
 * Reads single lines back by byte offset (what jsonlLines and JsonlAppender.append report), so a
 * caller can remember where a record is instead of the record itself.
 */
export class JsonlLineReader {
  private fh: Promise<FileHandle> | undefined;
  constructor(readonly path: string) {}

  /** The line starting at `offset`, without its newline; undefined past the end of the file. */
  async lineAt(offset: number): Promise<string | undefined> {
    const fh = await (this.fh ??= open(this.path, "r"));
    const parts: Buffer[] = [];
    for (let at = offset, size = 4096; ; at += size, size *= 2) {
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, size, at);
      const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
      if (nl !== -1 || bytesRead < size) {
        parts.push(buf.subarray(0, nl === -1 ? bytesRead : nl));
        const line = Buffer.concat(parts).toString("utf8");
        return line.length > 0 || nl !== -1 ? line : undefined;
      }
      parts.push(buf);
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await (await fh).close();
  }
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

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    /** Where the next line will start: the file is only appended to, by this appender alone. */
    private end: number,
  ) {}

  /** Opens for appending, first cutting off a torn last line left by a killed writer. */
  static async open(path: string): Promise<JsonlAppender> {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(path, "a+");
    const { size } = await fh.stat();
    let end = size;
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
        end = cut;
      }
    }
    return new JsonlAppender(fh, path, end);
  }

  /** Queues one record; the returned promise resolves, with the line's byte offset, once it is in the file. */
  async append(record: unknown): Promise<number> {
    if (this.failed) throw this.failed;
    const line = JSON.stringify(record) + "\n";
    const at = this.end;
    this.end += Buffer.byteLength(line);
    this.queue.push(line);
    await this.waitForQueue();
    return at;
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
