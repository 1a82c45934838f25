/**
 * A Python pickle (protocol 2) of a `dict` of str → int, the shape of recommenders' `word_dict.pkl`
 * and `uid2index.pkl`. Protocol 2 loads in every Python since 2.3. Items go in insertion order,
 * in `SETITEMS` batches of 1000 as CPython writes them, so the loaded dict iterates in that order.
 */
const PROTO = 0x80;
const EMPTY_DICT = 0x7d; // }
const MARK = 0x28; // (
const BINUNICODE = 0x58; // X: u32 length + UTF-8
const BININT1 = 0x4b; // K: u8
const BININT2 = 0x4d; // M: u16
const BININT = 0x4a; // J: i32
const SETITEM = 0x73; // s
const SETITEMS = 0x75; // u
const STOP = 0x2e; // .
const BATCH = 1000;

class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

function writeInt(out: ByteSink, v: number): void {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`pickle: ${v} is not a 32-bit integer`);
  if (v >= 0 && v <= 0xff) {
    out.byte(BININT1);
    out.byte(v);
  } else if (v >= 0 && v <= 0xffff) {
    out.byte(BININT2);
    out.u16(v);
  } else {
    out.byte(BININT);
    out.i32(v);
  }
}

function writeStr(out: ByteSink, s: string): void {
  const b = utf8.encode(s);
  out.byte(BINUNICODE);
  out.u32(b.length);
  out.bytes(b);
}

export function pickleStrIntDict(entries: Iterable<readonly [string, number]>): Uint8Array {
  const out = new ByteSink();
  out.byte(PROTO);
  out.byte(2);
  out.byte(EMPTY_DICT);
  let batch: (readonly [string, number])[] = [];
  const flush = (): void => {
    if (batch.length === 1) {
      const [k, v] = batch[0]!;
      writeStr(out, k);
      writeInt(out, v);
      out.byte(SETITEM);
    } else if (batch.length > 1) {
      out.byte(MARK);
      for (const [k, v] of batch) {
        writeStr(out, k);
        writeInt(out, v);
      }
      out.byte(SETITEMS);
    }
    batch = [];
  };
  for (const entry of entries) {
    batch.push(entry);
    if (batch.length === BATCH) flush();
  }
  flush();
  out.byte(STOP);
  return out.result();
}
