// What the benches that write synthetic MIND files share: a seeded generator and a buffered writer.
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { SeededRandom } from "../src/util/random.js";

/** Uniform in [0, 1) from a seed (SeededRandom's sequence), so the same sizes always give the same files. */
export function prng(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.nextUint32() / 4294967296;
}

/** Text written in ~1 MB pieces, waiting for the stream to drain. */
export class Out {
  private parts: string[] = [];
  private size = 0;
  bytes = 0;
  private constructor(private readonly stream: WriteStream) {}
  static open(path: string): Out {
    return new Out(createWriteStream(path));
  }
  async write(text: string): Promise<void> {
    this.parts.push(text);
    this.size += text.length;
    this.bytes += Buffer.byteLength(text);
    if (this.size > 1 << 20) await this.flush();
  }
  private async flush(): Promise<void> {
    const ok = this.stream.write(this.parts.join(""));
    this.parts = [];
    this.size = 0;
    if (!ok) await once(this.stream, "drain");
  }
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, "finish");
  }
}
