// What the benches that write synthetic MIND files share: a seeded generator and a buffered writer.
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";

/** mulberry32: a small seeded PRNG, so the same sizes always give the same files. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
