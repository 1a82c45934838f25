// One file over HTTP(S) with resume: bytes go to `<file>.part`, a dropped connection continues
// with a Range request, and the file gets its real name only when its size matches what the
// server announced. `<file>.part.json` remembers the announced size and validators (ETag /
// Last-Modified) so a later run resumes only against the same remote file.
import { createWriteStream, writeFileSync } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { dirname } from "node:path";
import { fileSize } from "./zip.js";

export class DownloadError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`download of ${url} failed: ${reason}`);
  }
}

interface PartInfo {
  url: string;
  total?: number;
  etag?: string;
  lastModified?: string;
}

export interface DownloadOptions {
  /** Extra attempts after a dropped connection or a server error (default 5). */
  retries?: number;
  /** Pause before attempt n is `retryDelayMs * n` (default 1000; tests use 0). */
  retryDelayMs?: number;
  /** Called with bytes on disk (resumed bytes included) and the total when known. */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Told about each resume or restart, for the user to read. */
  onNotice?: (message: string) => void;
  /** A connection silent for this long counts as dropped (default 60 s). */
  idleTimeoutMs?: number;
}

// "bytes 100-199/1000" gives start, end and total; "bytes */1000" (a 416 answer) gives the total only.
export function parseContentRange(value: string | null): { start?: number; end?: number; total?: number } | undefined {
  if (!value) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(value.trim());
  if (!m) return undefined;
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined ? undefined : Number(m[2]),
    total: m[3] === "*" || m[3] === undefined ? undefined : Number(m[3]),
  };
}

async function readPartInfo(path: string): Promise<PartInfo | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as PartInfo;
    return typeof parsed.url === "string" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A failure of the connection (worth another attempt), as opposed to a local disk error. */
class ConnectionError extends Error {}

/** GET with redirects followed; node:http rather than fetch because its body hands over every byte received before a drop. */
function request(url: string, headers: Record<string, string>, idleTimeoutMs: number, redirects = 5): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    const req = get(url, { headers: { "user-agent": "genre-mind", ...headers } }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        res.resume();
        if (redirects === 0) return reject(new ConnectionError("too many redirects"));
        return resolve(request(new URL(location, url).href, headers, idleTimeoutMs, redirects - 1));
      }
      resolve(res);
    });
    req.setTimeout(idleTimeoutMs, () => req.destroy(new ConnectionError(`no data for ${idleTimeoutMs / 1000} s`)));
    req.on("error", (e) => reject(e instanceof ConnectionError ? e : new ConnectionError(e.message)));
  });
}

/**
 * Writes the body to `part`. Resolves with the connection error, if the body stopped early, once
 * everything received is on disk; rejects on a disk error (not worth retrying). Must be called in
 * the same tick the response arrives: a drop before the listeners exist would go unseen.
 */
function saveBody(res: IncomingMessage, part: string, append: boolean, onBytes: (n: number) => void): Promise<Error | undefined> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(part, { flags: append ? "a" : "w" });
    let ended = false;
    let dropped: Error | undefined;
    const end = (error?: Error) => {
      if (ended) return;
      ended = true;
      dropped = error;
      out.end();
    };
    out.on("error", (e) => {
      res.destroy();
      reject(e);
    });
    out.on("finish", () => resolve(dropped));
    res.on("data", (chunk: Buffer) => {
      onBytes(chunk.length);
      if (!out.write(chunk)) {
        res.pause();
        out.once("drain", () => res.resume());
      }
    });
    res.on("end", () => end(res.complete ? undefined : new ConnectionError("connection closed")));
    res.on("error", (e) => end(new ConnectionError(e.message)));
    res.on("close", () => end(res.complete ? undefined : new ConnectionError("connection closed")));
  });
}

/** Downloads `url` to `file` (resuming `<file>.part`); returns the byte count. */
export async function downloadFile(url: string, file: string, opts: DownloadOptions = {}): Promise<number> {
  const part = `${file}.part`;
  const infoPath = `${part}.json`;
  const retries = opts.retries ?? 5;
  const notice = opts.onNotice ?? (() => {});
  let lastReason = "no attempt made";
  let failures = 0;
  await mkdir(dirname(file), { recursive: true });

  const discard = async () => {
    await rm(part, { force: true });
    await rm(infoPath, { force: true });
  };

  while (failures <= retries) {
    if (failures > 0) await delay((opts.retryDelayMs ?? 1000) * failures);
    let offset = (await fileSize(part)) ?? 0;
    let info = offset > 0 ? await readPartInfo(infoPath) : undefined;
    if (offset > 0 && info?.url !== url) {
      // A part file we cannot vouch for (another URL, or no record of what it was): start clean.
      await discard();
      offset = 0;
      info = undefined;
    }
    const headers: Record<string, string> = {};
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      const validator = info?.etag ?? info?.lastModified;
      if (validator) headers["if-range"] = validator;
    }

    let res: IncomingMessage;
    try {
      res = await request(url, headers, opts.idleTimeoutMs ?? 60_000);
    } catch (e) {
      lastReason = (e as Error).message;
      failures++;
      continue;
    }
    const status = res.statusCode ?? 0;
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };

    let total: number | undefined;
    if (status === 416) {
      res.resume();
      const range = parseContentRange(header("content-range") ?? null);
      if (range?.total !== undefined && range.total === offset) {
        await rename(part, file);
        await rm(infoPath, { force: true });
        return offset;
      }
      notice(`${file}.part holds ${offset} bytes but the server has ${range?.total ?? "an unknown number of"}: downloading again`);
      await discard();
      failures++;
      lastReason = "size mismatch between the partial file and the server";
      continue;
    }
    if (status === 206) {
      const range = parseContentRange(header("content-range") ?? null);
      if (range?.start !== offset) {
        res.destroy();
        notice(`the server resumed at byte ${range?.start ?? "?"} instead of ${offset}: downloading again`);
        await discard();
        failures++;
        lastReason = "the server answered a different byte range than asked for";
        continue;
      }
      if (info?.total !== undefined && range.total !== undefined && range.total !== info.total) {
        res.destroy();
        notice(`the remote file changed size (${info.total} → ${range.total} bytes) since the partial download: downloading again`);
        await discard();
        failures++;
        lastReason = `size mismatch: the remote file changed from ${info.total} to ${range.total} bytes`;
        continue;
      }
      total = range.total;
      notice(`resuming at ${offset} bytes`);
    } else if (status === 200) {
      if (offset > 0) notice("the server sent the whole file (no resume): starting over");
      offset = 0;
      const length = header("content-length");
      total = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
    } else {
      res.resume();
      lastReason = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ""}`;
      // 4xx will not change by asking again; 5xx and 429 might.
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) break;
      failures++;
      continue;
    }
    const partInfo: PartInfo = { url, total: total ?? info?.total };
    const etag = header("etag");
    const lastModified = header("last-modified");
    // A weak ETag cannot validate a byte range (RFC 9110), so only strong ones are kept.
    if (etag && !etag.startsWith("W/")) partInfo.etag = etag;
    if (lastModified) partInfo.lastModified = lastModified;
    // Synchronous on purpose: no await may come between the response and saveBody (see there).
    writeFileSync(infoPath, JSON.stringify(partInfo));

    let done = offset;
    opts.onProgress?.(done, total);
    const dropped = await saveBody(res, part, offset > 0, (n) => {
      done += n;
      opts.onProgress?.(done, total);
    });
    const have = (await fileSize(part)) ?? 0;
    if (dropped) {
      lastReason = `connection lost after ${have}${total ? ` of ${total}` : ""} bytes (${dropped.message})`;
      notice(`${lastReason}; resuming`);
      failures++;
      continue;
    }
    if (total !== undefined && have !== total) {
      if (have < total) {
        lastReason = `connection closed after ${have} of ${total} bytes`;
        notice(`${lastReason}; resuming`);
        failures++;
        continue;
      }
      await discard();
      throw new DownloadError(url, `size mismatch: got ${have} bytes, the server announced ${total}`);
    }
    await rename(part, file);
    await rm(infoPath, { force: true });
    return have;
  }
  throw new DownloadError(url, lastReason);
}
