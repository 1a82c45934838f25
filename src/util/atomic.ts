import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, open, rename, rm, writeFile } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { once } from "node:events";

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/** Flushes a file's data to disk before it is renamed: after a power loss the rename could otherwise be there and the data not. */
async function syncFile(path: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes the whole file under a temporary name, flushes it to disk, then renames it into place. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeFile(tmp, data);
    await syncFile(tmp);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A streamed file that only appears under its real name once `commit()` succeeds, so an
 * interrupted run never leaves a half file that looks whole. Writes honour back-pressure.
 */
export class AtomicFileWriter {
  private readonly stream: WriteStream;
  private readonly tmp: string;
  private failed: Error | undefined;
  private buffered: string[] = [];
  private bufferedChars = 0;

  private constructor(readonly path: string) {
    this.tmp = tempName(path);
    this.stream = createWriteStream(this.tmp, { flags: "wx" });
    this.stream.on("error", (e) => {
      this.failed = e;
    });
  }

  static async open(path: string): Promise<AtomicFileWriter> {
    await mkdir(dirname(path), { recursive: true });
    return new AtomicFileWriter(path);
  }

  /** Buffers small writes into large ones; returns a promise only when the disk needs to catch up. */
  async write(text: string): Promise<void> {
    if (this.failed) throw this.failed;
    this.buffered.push(text);
    this.bufferedChars += text.length;
    if (this.bufferedChars >= 1 << 16) await this.flush();
  }

  /** Writes bytes as they are (after any buffered text): for copying input without decoding it. */
  async writeBytes(data: Uint8Array): Promise<void> {
    if (this.failed) throw this.failed;
    await this.flush();
    await this.put(data);
  }

  private async flush(): Promise<void> {
    if (this.buffered.length === 0) return;
    const data = this.buffered.join("");
    this.buffered = [];
    this.bufferedChars = 0;
    await this.put(data);
  }

  private async put(data: string | Uint8Array): Promise<void> {
    if (!this.stream.write(data)) await once(this.stream, "drain");
    if (this.failed) throw this.failed;
  }

  async commit(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, "finish");
    if (this.failed) throw this.failed;
    await syncFile(this.tmp);
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    // The stream may still be opening its file: remove it only once the stream has closed,
    // or the open can land after the removal and leave a temporary file behind.
    if (!this.stream.closed) {
      const closed = once(this.stream, "close").catch(() => undefined);
      this.stream.destroy();
      await closed;
    }
    await rm(this.tmp, { force: true });
  }
}
