// A small zip reader: enough for the MIND archives (stored and deflated entries, zip64 sizes).
// Node has no zip reader of its own, and a fresh machine may have no `unzip`; entries are
// streamed through zlib's raw inflate, so a 1.4 GB behaviors.tsv never sits in memory.
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createInflateRaw } from "node:zlib";

export class ZipError extends Error {}

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate; anything else is refused with the entry's name. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  isDirectory: boolean;
  encrypted: boolean;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const MAX_32 = 0xffffffff;

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

function u64(buf: Buffer, at: number): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError("zip64 value too large");
  return Number(value);
}

/** Lists the entries from the central directory (the authoritative sizes, also for data-descriptor entries). */
export async function readZipEntries(zipPath: string): Promise<ZipEntry[]> {
  const fh = await open(zipPath, "r");
  try {
    const fileSize = (await fh.stat()).size;
    // The end record is 22 bytes plus a comment of at most 65535 bytes.
    const tailStart = Math.max(0, fileSize - 22 - 0xffff);
    const tail = await readAt(fh, tailStart, fileSize - tailStart);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ZipError(`${zipPath}: not a zip file (no end of central directory; the download may be incomplete)`);
    let entryCount = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === ZIP64_LOCATOR_SIG) {
      const zip64At = u64(tail, eocd - 20 + 8);
      const rec = await readAt(fh, zip64At, 56);
      if (rec.length < 56 || rec.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw new ZipError(`${zipPath}: broken zip64 end record`);
      entryCount = u64(rec, 32);
      cdSize = u64(rec, 40);
      cdOffset = u64(rec, 48);
    }
    if (cdOffset + cdSize > fileSize) throw new ZipError(`${zipPath}: central directory lies past the end of the file (truncated download?)`);
    const cd = await readAt(fh, cdOffset, cdSize);
    const entries: ZipEntry[] = [];
    let at = 0;
    for (let n = 0; n < entryCount; n++) {
      if (at + 46 > cd.length || cd.readUInt32LE(at) !== CENTRAL_SIG) throw new ZipError(`${zipPath}: broken central directory at entry ${n + 1}`);
      const flags = cd.readUInt16LE(at + 8);
      const nameLen = cd.readUInt16LE(at + 28);
      const extraLen = cd.readUInt16LE(at + 30);
      const commentLen = cd.readUInt16LE(at + 32);
      let compressedSize = cd.readUInt32LE(at + 20);
      let size = cd.readUInt32LE(at + 24);
      let localHeaderOffset = cd.readUInt32LE(at + 42);
      const name = cd.toString(flags & 0x800 ? "utf8" : "latin1", at + 46, at + 46 + nameLen);
      // Zip64 extra field: the 8-byte values present are exactly those whose 32-bit field is saturated.
      let ex = at + 46 + nameLen;
      const exEnd = ex + extraLen;
      while (ex + 4 <= exEnd) {
        const id = cd.readUInt16LE(ex);
        const len = cd.readUInt16LE(ex + 2);
        if (id === 0x0001) {
          let p = ex + 4;
          if (size === MAX_32) {
            size = u64(cd, p);
            p += 8;
          }
          if (compressedSize === MAX_32) {
            compressedSize = u64(cd, p);
            p += 8;
          }
          if (localHeaderOffset === MAX_32) localHeaderOffset = u64(cd, p);
        }
        ex += 4 + len;
      }
      entries.push({
        name,
        method: cd.readUInt16LE(at + 10),
        crc32: cd.readUInt32LE(at + 16),
        compressedSize,
        size,
        localHeaderOffset,
        isDirectory: name.endsWith("/"),
        encrypted: (flags & 1) === 1,
      });
      at = exEnd + commentLen;
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/** Counts bytes and the CRC-32 of what passes through, to check each entry against the directory. */
class Checker extends Transform {
  crc = 0;
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.crc = crc32(chunk, this.crc);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Where an entry lands; names that would escape the folder (`../`, absolute paths) are refused. */
function entryTarget(destDir: string, name: string): string {
  const root = resolve(destDir);
  const target = resolve(root, name.replace(/\\/g, "/"));
  if (target !== root && !target.startsWith(root + sep)) throw new ZipError(`zip entry '${name}' points outside the target folder`);
  return target;
}

export interface ExtractProgress {
  (entry: ZipEntry, index: number, total: number): void;
}

/**
 * Extracts every entry into `destDir` (created). Each entry's size and CRC-32 are checked; a
 * mismatch is an error naming the entry. Returns the extracted entries.
 */
export async function extractZip(zipPath: string, destDir: string, onEntry?: ExtractProgress): Promise<ZipEntry[]> {
  const entries = await readZipEntries(zipPath);
  await mkdir(destDir, { recursive: true });
  const fh = await open(zipPath, "r");
  try {
    for (const [i, entry] of entries.entries()) {
      const target = entryTarget(destDir, entry.name);
      onEntry?.(entry, i, entries.length);
      if (entry.isDirectory) {
        await mkdir(target, { recursive: true });
        continue;
      }
      if (entry.encrypted) throw new ZipError(`${zipPath}: entry '${entry.name}' is encrypted`);
      if (entry.method !== 0 && entry.method !== 8) {
        throw new ZipError(`${zipPath}: entry '${entry.name}' uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
      }
      const local = await readAt(fh, entry.localHeaderOffset, 30);
      if (local.length < 30 || local.readUInt32LE(0) !== LOCAL_SIG) throw new ZipError(`${zipPath}: broken local header of '${entry.name}'`);
      const dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      await mkdir(dirname(target), { recursive: true });
      const checker = new Checker();
      const source = createReadStream(zipPath, { start: dataStart, end: dataStart + entry.compressedSize - 1 });
      const sink = createWriteStream(target);
      // An empty entry: createReadStream with end < start would read the whole file.
      if (entry.compressedSize === 0) {
        source.destroy();
        await pipeline(async function* () {}, checker, sink);
      } else if (entry.method === 8) {
        await pipeline(source, createInflateRaw(), checker, sink);
      } else {
        await pipeline(source, checker, sink);
      }
      if (checker.bytes !== entry.size) {
        throw new ZipError(`${zipPath}: entry '${entry.name}' gave ${checker.bytes} bytes, the directory says ${entry.size}`);
      }
      if (checker.crc >>> 0 !== entry.crc32 >>> 0) throw new ZipError(`${zipPath}: entry '${entry.name}' fails its CRC-32 check`);
    }
    return entries;
  } finally {
    await fh.close();
  }
}

/**
 * Extracts into a temporary sibling folder and renames it into place, so `destDir` exists only
 * when every entry came out whole: its presence is what "already extracted" means.
 */
export async function extractZipAtomic(zipPath: string, destDir: string, onEntry?: ExtractProgress): Promise<ZipEntry[]> {
  // A fixed name, cleared first: an unpack killed half-way leaves nothing behind after the next run.
  const tmp = join(dirname(destDir), `.${basename(destDir)}.unpacking`);
  await rm(tmp, { recursive: true, force: true });
  try {
    const entries = await extractZip(zipPath, tmp, onEntry);
    await rename(tmp, destDir);
    return entries;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
