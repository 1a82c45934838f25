// A file as bytes, line by line: merge copies untouched behaviors.tsv lines without decoding them.
import { createReadStream } from "node:fs";

const LF = 10;
const CR = 13;

/**
 * Whole lines of a file: line i is `buf[starts[i], ends[i])` without its line break (CR and LF
 * excluded) and runs up to `starts[i + 1]` (or `buf.length`) with it. A BOM is dropped; the last
 * line may lack a line break. `buf` is only valid until the next chunk is asked for.
 */
export interface ByteLineChunk {
  buf: Buffer;
  starts: number[];
  ends: number[];
  firstLineNo: number;
}

export async function* readByteLineChunks(file: string): AsyncGenerator<ByteLineChunk> {
  let carry: Buffer | undefined;
  let first = true;
  let lineNo = 1;
  const lines = (buf: Buffer, complete: boolean): ByteLineChunk => {
    const starts: number[] = [];
    const ends: number[] = [];
    let start = 0;
    let nl = buf.indexOf(LF, 0);
    while (nl !== -1) {
      starts.push(start);
      ends.push(nl > start && buf[nl - 1] === CR ? nl - 1 : nl);
      start = nl + 1;
      nl = buf.indexOf(LF, start);
    }
    if (!complete && start < buf.length) {
      starts.push(start);
      ends.push(buf[buf.length - 1] === CR ? buf.length - 1 : buf.length);
    }
    const chunk = { buf, starts, ends, firstLineNo: lineNo };
    lineNo += starts.length;
    return chunk;
  };
  for await (const data of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let buf = carry ? Buffer.concat([carry, data]) : data;
    if (first) {
      if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
      first = false;
    }
    const cut = buf.lastIndexOf(LF) + 1;
    carry = cut < buf.length ? buf.subarray(cut) : undefined;
    if (cut > 0) yield lines(buf.subarray(0, cut), true);
  }
  if (carry && carry.length > 0) yield lines(carry, false);
}
