import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { existsSync } from "node:fs";
import { readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { crc32, deflateRawSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DownloadError, downloadFile, parseContentRange } from "../src/download/fetch.js";
import { downloadMind, mindArchives, type MindDownloadOptions } from "../src/download/mind.js";
import { Progress } from "../src/download/progress.js";
import { extractZip, readZipEntries, ZipError } from "../src/download/zip.js";
import { runCliCaptured } from "./helpers/cli.js";
import { listenOnLoopback } from "./helpers/loopback-server.js";
import { tempDir } from "./helpers/temp.js";

// ---- a minimal zip writer (stored or deflated entries), so tests need no zip tool ----
interface ZipInput {
  name: string;
  data?: string | Buffer;
  store?: boolean;
}

/** `zip64` writes every size and offset through zip64 extra fields and end records, as large archives do. */
function makeZip(inputs: ZipInput[], zip64 = false): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  const FULL = 0xffffffff;
  for (const input of inputs) {
    const name = Buffer.from(input.name, "utf8");
    const raw = Buffer.from(input.data ?? "");
    const method = input.store || input.name.endsWith("/") ? 0 : 8;
    const body = method === 8 ? deflateRawSync(raw) : raw;
    const crc = crc32(raw) >>> 0;
    const extra = Buffer.alloc(zip64 ? 28 : 0);
    if (zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(raw.length), 4);
      extra.writeBigUInt64LE(BigInt(body.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(zip64 ? 45 : 20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(zip64 ? FULL : body.length, 18);
    local.writeUInt32LE(zip64 ? FULL : raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(zip64 ? 20 : 0, 28);
    const localExtra = zip64 ? Buffer.concat([extra.subarray(0, 4), extra.subarray(4, 20)]) : Buffer.alloc(0);
    if (zip64) localExtra.writeUInt16LE(16, 2);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(zip64 ? 45 : 20, 4);
    central.writeUInt16LE(zip64 ? 45 : 20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(zip64 ? FULL : body.length, 20);
    central.writeUInt32LE(zip64 ? FULL : raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt32LE(zip64 ? FULL : offset, 42);
    locals.push(local, name, localExtra, body);
    centrals.push(central, name, extra);
    offset += local.length + name.length + localExtra.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(inputs.length), 24);
    rec.writeBigUInt64LE(BigInt(inputs.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(rec, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : inputs.length, 8);
  end.writeUInt16LE(zip64 ? 0xffff : inputs.length, 10);
  end.writeUInt32LE(zip64 ? FULL : cd.length, 12);
  end.writeUInt32LE(zip64 ? FULL : offset, 16);
  return Buffer.concat([...locals, cd, ...tail, end]);
}

function mindZip(split: string, extraLines = 0): Buffer {
  const news = [`N1\tnews\tnewsus\tTitle of ${split}\tAbstract\thttps://x\t[]\t[]`];
  for (let i = 0; i < extraLines; i++) news.push(`N${i + 2}\tsports\tbaseball\t"Quoted" title ${i} ${"x".repeat(i % 50)}\t\thttps://x\t[]\t[]`);
  return makeZip([
    { name: "news.tsv", data: news.join("\n") + "\n" },
    { name: "behaviors.tsv", data: `1\tU1\t11/15/2019 10:22:32 AM\tN1\tN1-1\n` },
    { name: "entity_embedding.vec", data: "Q1\t0.1\t0.2\n", store: true },
  ]);
}

// ---- a local HTTP server whose behaviour each test scripts ----
interface Served {
  body: Buffer;
  etag?: string;
  /** Honour Range requests (default true). */
  ranges?: boolean;
  /** Close the connection after this many body bytes, for the next `drops` requests. */
  dropAfter?: number;
  drops?: number;
}

interface Hit {
  path: string;
  range?: string;
  ifRange?: string;
}

let base: string;
let files: Map<string, Served>;
let hits: Hit[];
let dir: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  hits.push({ path, range: req.headers.range, ifRange: req.headers["if-range"] as string | undefined });
  const file = files.get(path);
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    return;
  }
  const size = file.body.length;
  let start = 0;
  let status = 200;
  const headers: Record<string, string> = { "content-type": "application/zip", "accept-ranges": file.ranges === false ? "none" : "bytes" };
  if (file.etag) headers.etag = file.etag;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const validatorOk = !req.headers["if-range"] || req.headers["if-range"] === file.etag;
  if (m && file.ranges !== false && validatorOk) {
    start = Number(m[1]);
    if (start >= size) {
      res.writeHead(416, { "content-range": `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers["content-range"] = `bytes ${start}-${size - 1}/${size}`;
  }
  const body = file.body.subarray(start);
  headers["content-length"] = String(body.length);
  res.writeHead(status, headers);
  if (file.dropAfter !== undefined && (file.drops ?? 0) > 0) {
    file.drops = (file.drops ?? 0) - 1;
    res.write(body.subarray(0, file.dropAfter), () => res.socket?.destroy());
    return;
  }
  res.end(body);
}

beforeEach(async () => {
  dir = await tempDir("gm-download-");
  files = new Map();
  hits = [];
  base = `http://127.0.0.1:${await listenOnLoopback(createServer(handle))}/newsrec/`;
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sink(tty = false): Writable & { text: () => string; isTTY?: boolean } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { text: () => string; isTTY?: boolean };
  w.text = () => chunks.join("");
  if (tty) w.isTTY = true;
  return w;
}

function options(over: Partial<MindDownloadOptions> = {}): MindDownloadOptions & { lines: string[]; err: ReturnType<typeof sink> } {
  const lines: string[] = [];
  const err = sink();
  return { size: "demo", baseUrl: base, dest: join(dir, "mind-data"), keepZip: false, retryDelayMs: 0, progress: err, log: (l) => lines.push(l), lines, err, ...over };
}

describe("MIND archive names", () => {
  it("follows microsoft/recommenders: MIND<size>_<split>.zip, test only for large", () => {
    expect(mindArchives("small", "https://h/newsrec", "/d").map((a) => a.url)).toEqual([
      "https://h/newsrec/MINDsmall_train.zip",
      "https://h/newsrec/MINDsmall_dev.zip",
    ]);
    expect(mindArchives("large", "https://h/newsrec/", "/d").map((a) => a.dir)).toEqual([
      "/d/MINDlarge_train",
      "/d/MINDlarge_dev",
      "/d/MINDlarge_test",
    ]);
  });
});

describe("zip reader", () => {
  it("extracts stored, deflated, empty and nested entries byte for byte", async () => {
    const big = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `line ${i} "q" \u00e9\n`).join(""));
    const zip = join(dir, "a.zip");
    await writeFile(zip, makeZip([{ name: "sub/" }, { name: "sub/big.txt", data: big }, { name: "empty.txt", data: "" }, { name: "s.txt", data: "stored", store: true }]));
    const out = join(dir, "out");
    const entries = await extractZip(zip, out);
    expect(entries.map((e) => e.name)).toEqual(["sub/", "sub/big.txt", "empty.txt", "s.txt"]);
    expect((await readFile(join(out, "sub/big.txt"))).equals(big)).toBe(true);
    expect(await readFile(join(out, "empty.txt"), "utf8")).toBe("");
    expect(await readFile(join(out, "s.txt"), "utf8")).toBe("stored");
  });

  it("reads zip64 sizes and offsets from the extra fields and the zip64 end record", async () => {
    const zip = join(dir, "z64.zip");
    await writeFile(zip, makeZip([{ name: "news.tsv", data: "a\tb\n".repeat(5000) }, { name: "behaviors.tsv", data: "x", store: true }], true));
    const entries = await readZipEntries(zip);
    expect(entries.map((e) => [e.name, e.size])).toEqual([
      ["news.tsv", 20000],
      ["behaviors.tsv", 1],
    ]);
    await extractZip(zip, join(dir, "o64"));
    expect(await readFile(join(dir, "o64", "news.tsv"), "utf8")).toBe("a\tb\n".repeat(5000));
    expect(await readFile(join(dir, "o64", "behaviors.tsv"), "utf8")).toBe("x");
  });

  it("refuses an entry that would land outside the folder", async () => {
    const zip = join(dir, "evil.zip");
    await writeFile(zip, makeZip([{ name: "../escape.txt", data: "x" }]));
    await expect(extractZip(zip, join(dir, "out"))).rejects.toThrow(/outside the target folder/);
    expect(existsSync(join(dir, "escape.txt"))).toBe(false);
  });

  it("detects a corrupted entry by its CRC and a truncated file by its missing directory", async () => {
    const good = makeZip([{ name: "a.txt", data: "hello world", store: true }]);
    const bad = Buffer.from(good);
    bad[30 + "a.txt".length] = "H".charCodeAt(0);
    await writeFile(join(dir, "bad.zip"), bad);
    await expect(extractZip(join(dir, "bad.zip"), join(dir, "o1"))).rejects.toThrow(/'a.txt' fails its CRC-32 check/);
    await writeFile(join(dir, "cut.zip"), good.subarray(0, good.length - 30));
    await expect(readZipEntries(join(dir, "cut.zip"))).rejects.toThrow(ZipError);
  });
});

describe("download", () => {
  it("fetches train and dev, unpacks them into MIND<size>_<split>/, and fetches nothing the second time", async () => {
    const train = mindZip("train", 500);
    files.set("/newsrec/MINDdemo_train.zip", { body: train });
    files.set("/newsrec/MINDdemo_dev.zip", { body: mindZip("dev") });
    const opts = options();
    const results = await downloadMind(opts);
    expect(results.map((r) => r.status)).toEqual(["downloaded", "downloaded"]);
    const trainDir = join(opts.dest, "MINDdemo_train");
    expect((await readdir(trainDir)).sort()).toEqual(["behaviors.tsv", "entity_embedding.vec", "news.tsv"]);
    expect(await readFile(join(trainDir, "news.tsv"), "utf8")).toContain('"Quoted" title 499');
    expect(await readFile(join(opts.dest, "MINDdemo_dev", "news.tsv"), "utf8")).toContain("Title of dev");
    // zips are removed unless --keep-zip; no stray part or temporary files are left
    expect((await readdir(opts.dest)).sort()).toEqual(["MINDdemo_dev", "MINDdemo_train"]);
    expect(hits).toHaveLength(2);

    const again = options();
    expect((await downloadMind(again)).map((r) => r.status)).toEqual(["present", "present"]);
    expect(hits).toHaveLength(2);
    expect(again.lines.join("\n")).toMatch(/already there, not fetched/);
  });

  it("resumes with a Range request after the connection drops mid-body", async () => {
    const train = mindZip("train", 2000);
    const half = Math.floor(train.length / 2);
    files.set("/newsrec/MINDdemo_train.zip", { body: train, etag: '"v1"', dropAfter: half, drops: 1 });
    files.set("/newsrec/MINDdemo_dev.zip", { body: mindZip("dev") });
    const opts = options();
    await downloadMind(opts);
    const trainHits = hits.filter((h) => h.path.endsWith("MINDdemo_train.zip"));
    expect(trainHits).toHaveLength(2);
    expect(trainHits[0]!.range).toBeUndefined();
    expect(trainHits[1]!.range).toBe(`bytes=${half}-`);
    expect(trainHits[1]!.ifRange).toBe('"v1"');
    expect(opts.err.text()).toMatch(/connection lost after \d+ of \d+ bytes/);
    expect(await readFile(join(opts.dest, "MINDdemo_train", "news.tsv"), "utf8")).toContain("title 1999");
  });

  it("keeps the .part of a failed run, says how to fetch by hand, and resumes it on the next run", async () => {
    const train = mindZip("train", 2000);
    const cut = 1000;
    files.set("/newsrec/MINDdemo_train.zip", { body: train, etag: '"v1"', dropAfter: cut, drops: 1 });
    files.set("/newsrec/MINDdemo_dev.zip", { body: mindZip("dev") });
    const failing = options({ retries: 0 });
    const error = await downloadMind(failing).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain(`${base}MINDdemo_train.zip`);
    expect(message).toMatch(/curl -fL -C - -o .*MINDdemo_train\.zip/);
    expect(message).toMatch(/unzip .*MINDdemo_train\.zip -d .*MINDdemo_train/);
    const part = join(failing.dest, "MINDdemo_train.zip.part");
    expect((await stat(part)).size).toBe(cut);

    hits = [];
    await downloadMind(options());
    expect(hits[0]).toMatchObject({ path: "/newsrec/MINDdemo_train.zip", range: `bytes=${cut}-`, ifRange: '"v1"' });
    expect(existsSync(part)).toBe(false);
    expect(await readFile(join(failing.dest, "MINDdemo_train", "news.tsv"), "utf8")).toContain("title 1999");
  });

  it("starts over when the remote file changed size since the partial download", async () => {
    const first = mindZip("train", 2000);
    const file = join(dir, "x.zip");
    files.set("/newsrec/x.zip", { body: first, dropAfter: 500, drops: 1 });
    await expect(downloadFile(`${base}x.zip`, file, { retries: 0, retryDelayMs: 0 })).rejects.toThrow(DownloadError);
    // A new release of the file, of another size; this server has no ETag, so Range is honoured blindly.
    const second = mindZip("train", 2100);
    files.set("/newsrec/x.zip", { body: second });
    const notices: string[] = [];
    await downloadFile(`${base}x.zip`, file, { retryDelayMs: 0, onNotice: (m) => notices.push(m) });
    expect(notices.join("\n")).toMatch(/changed size \(\d+ → \d+ bytes\)/);
    expect((await readFile(file)).equals(second)).toBe(true);
  });

  it("discards a partial file larger than the remote file (416) and downloads again", async () => {
    const body = mindZip("train", 10);
    files.set("/newsrec/x.zip", { body });
    const file = join(dir, "x.zip");
    await writeFile(`${file}.part`, Buffer.alloc(body.length + 100));
    await writeFile(`${file}.part.json`, JSON.stringify({ url: `${base}x.zip`, total: body.length + 100 }));
    const notices: string[] = [];
    await downloadFile(`${base}x.zip`, file, { retryDelayMs: 0, onNotice: (m) => notices.push(m) });
    expect(hits[0]!.range).toBe(`bytes=${body.length + 100}-`);
    expect(notices.join("\n")).toMatch(/holds \d+ bytes but the server has \d+/);
    expect((await readFile(file)).equals(body)).toBe(true);
  });

  it("starts over when the server ignores Range, and fails with the URL when it keeps dropping", async () => {
    const body = mindZip("train", 2000);
    files.set("/newsrec/x.zip", { body, ranges: false, dropAfter: 700, drops: 1 });
    const file = join(dir, "x.zip");
    await downloadFile(`${base}x.zip`, file, { retryDelayMs: 0 });
    expect((await readFile(file)).equals(body)).toBe(true);

    files.set("/newsrec/y.zip", { body, ranges: false, dropAfter: 700, drops: 10 });
    const error = await downloadFile(`${base}y.zip`, join(dir, "y.zip"), { retries: 2, retryDelayMs: 0 }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).message).toMatch(new RegExp(`download of ${base}y.zip failed: connection lost after 700 of ${body.length} bytes`));
    expect(hits.filter((h) => h.path === "/newsrec/y.zip")).toHaveLength(3);
  });

  it("unpacks a complete zip already in place without fetching it", async () => {
    const opts = options({ keepZip: true });
    await rm(opts.dest, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(opts.dest, { recursive: true }));
    await writeFile(join(opts.dest, "MINDdemo_train.zip"), mindZip("train"));
    await writeFile(join(opts.dest, "MINDdemo_dev.zip"), mindZip("dev"));
    const results = await downloadMind(opts);
    expect(results.map((r) => r.status)).toEqual(["extracted", "extracted"]);
    expect(hits).toHaveLength(0);
    expect(existsSync(join(opts.dest, "MINDdemo_dev.zip"))).toBe(true);
    expect(opts.lines.join("\n")).not.toContain("warning");

    // an archive without the two MIND files at its top level is unpacked, with a warning
    await writeFile(join(opts.dest, "MINDdemo_dev.zip"), makeZip([{ name: "inner/news.tsv", data: "x" }]));
    await rm(join(opts.dest, "MINDdemo_dev"), { recursive: true });
    const again = options({ keepZip: true });
    await downloadMind(again);
    expect(again.lines.join("\n")).toMatch(/MINDdemo_dev has no news.tsv or behaviors.tsv at its top level/);
  });

  it("reads Content-Range forms", () => {
    expect(parseContentRange("bytes 10-19/100")).toEqual({ start: 10, end: 19, total: 100 });
    expect(parseContentRange("bytes */100")).toEqual({ start: undefined, end: undefined, total: 100 });
    expect(parseContentRange("nonsense")).toBeUndefined();
  });
});

describe("download command", () => {
  it("fetches into ./mind-data and prints the --data flags to use", async () => {
    files.set("/newsrec/MINDsmall_train.zip", { body: mindZip("train", 100) });
    files.set("/newsrec/MINDsmall_dev.zip", { body: mindZip("dev") });
    const r = await runCliCaptured(["download", "small", "--base-url", base], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`--data ${join(dir, "mind-data", "MINDsmall_train")} --data ${join(dir, "mind-data", "MINDsmall_dev")}`);
    // not a terminal: plain progress lines, no carriage returns
    expect(r.stderr).toMatch(/MINDsmall_train\.zip\s+100%/);
    expect(r.stderr).not.toContain("\r");
  });

  it("names the URL that failed (404) and how to fetch it by hand", async () => {
    const r = await runCliCaptured(["download", "large", "--base-url", base], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`download of ${base}MINDlarge_train.zip failed: HTTP 404`);
    expect(r.stderr).toContain(`curl -fL -C - -o ${join(dir, "mind-data", "MINDlarge_train.zip")} ${base}MINDlarge_train.zip`);
    expect(hits).toHaveLength(1);
  });

  it("refuses an unknown size", async () => {
    // --base-url too: were the size check broken, the attempt would reach the local server, not the real one.
    const r = await runCliCaptured(["download", "medium", "--base-url", base], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^genre-mind download: <size>: expected one of demo, small, large \(got 'medium'\)\n/);
    expect(hits).toEqual([]);
  });
});

describe("progress", () => {
  it("redraws one bar on a terminal", () => {
    const out = sink(true);
    let t = 0;
    const p = new Progress(out, "f.zip", () => t);
    for (let done = 0; done <= 1000; done += 100) {
      t += 150;
      p.update(done, 1000);
    }
    p.finish();
    const text = out.text();
    expect(text.split("\r").length).toBeGreaterThan(5);
    expect(text).toMatch(/\[#+\] 100%/);
    // 1000 bytes in 1.65 s of the injected clock
    expect(text).toContain("606 B/s");
    expect(text.endsWith("\n")).toBe(true);
  });
});
