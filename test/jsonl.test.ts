// The one JSONL reading policy: a torn last line is skipped; a bad line elsewhere stops the read
// naming file:line, unless the caller counts bad lines itself.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { JsonlAppender, JsonlLineReader, jsonlLines, lineItemId, readJsonl, type BadLine } from "../src/engine/store.js";
import { tempDir } from "./engine-helpers.js";

const Row = z.object({ id: z.string(), n: z.number() });
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function file(text: string): Promise<string> {
  const dir = await tempDir();
  dirs.push(dir);
  const path = join(dir, "rows.jsonl");
  await writeFile(path, text);
  return path;
}

async function collect(path: string, onBad?: (bad: BadLine) => void) {
  const out: { id: string; lineNo: number }[] = [];
  for await (const { value, lineNo } of jsonlLines(path, Row, onBad)) out.push({ id: value.id, lineNo });
  return out;
}

describe("jsonlLines", () => {
  it("reads valid lines with their line numbers, skipping blank ones, with or without CRLF", async () => {
    const path = await file('{"id":"a","n":1}\r\n\n  \n{"id":"b","n":2}\n');
    expect(await collect(path)).toEqual([
      { id: "a", lineNo: 1 },
      { id: "b", lineNo: 4 },
    ]);
  });

  it("skips a torn last line (no final newline) and reports it as torn", async () => {
    const path = await file('{"id":"a","n":1}\n{"id":"b","n"');
    const bad: BadLine[] = [];
    expect(await collect(path, (b) => bad.push(b))).toEqual([{ id: "a", lineNo: 1 }]);
    expect(bad).toEqual([expect.objectContaining({ lineNo: 2, torn: true, message: expect.stringMatching(/^not JSON/) })]);
    // Without onBad too: a torn write is not damage.
    expect(await collect(path)).toHaveLength(1);
    expect(await readJsonl(path, Row)).toEqual({ records: [{ id: "a", n: 1 }], tornTail: true });
  });

  it("stops at a bad line in the middle, naming file, line and field", async () => {
    const path = await file('{"id":"a","n":1}\n{"id":"b","n":"two"}\n{"id":"c","n":3}\n');
    await expect(collect(path)).rejects.toThrow(/rows\.jsonl:2 \[n\]: /);
    await expect(readJsonl(path, Row)).rejects.toThrow(/rows\.jsonl:2 \[n\]/);
  });

  it("a bad last line WITH its newline is damage, not a torn write", async () => {
    const path = await file('{"id":"a","n":1}\n{"id":\n');
    await expect(readJsonl(path, Row)).rejects.toThrow(/rows\.jsonl:2: not JSON/);
  });

  it("hands bad lines to a caller that counts them, and reads on", async () => {
    const path = await file('{"id":"a","n":1}\nnot json\n{"id":"c","n":3}\n{"id":"d"');
    const bad: BadLine[] = [];
    expect((await collect(path, (b) => bad.push(b))).map((r) => r.id)).toEqual(["a", "c"]);
    expect(bad.map((b) => [b.lineNo, b.torn])).toEqual([
      [2, false],
      [4, true],
    ]);
  });
});

describe("JsonlAppender after a torn write", () => {
  it("cuts the torn line before appending, so the file reads whole again", async () => {
    const path = await file('{"id":"a","n":1}\n{"id":"b"');
    const appender = await JsonlAppender.open(path);
    await appender.append({ id: "c", n: 3 });
    await appender.close();
    expect(await readFile(path, "utf8")).toBe('{"id":"a","n":1}\n{"id":"c","n":3}\n');
    expect((await readJsonl(path, Row)).records.map((r) => r.id)).toEqual(["a", "c"]);
  });
});

describe("byte offsets", () => {
  it("jsonlLines reports where each line starts, in bytes, past a BOM, CRLF and multi-byte text; JsonlLineReader reads it back", async () => {
    const lines = ['{"id":"a","n":1}', '{"id":"café “é” ’","n":2}', "", '{"id":"北京","n":3}', '{"id":"z","n":4}'];
    const path = await file("\uFEFF" + lines.join("\r\n") + "\r\n");
    const reader = new JsonlLineReader(path);
    try {
      const seen: [string, number][] = [];
      for await (const { value, byteOffset } of jsonlLines(path, Row)) seen.push([value.id, byteOffset]);
      const bytes = await readFile(path);
      for (const [id, at] of seen) {
        expect(JSON.parse(bytes.subarray(at, bytes.indexOf(0x0a, at)).toString("utf8"))).toMatchObject({ id });
        expect(JSON.parse((await reader.lineAt(at))!)).toMatchObject({ id });
      }
      expect(seen.map(([id]) => id)).toEqual(["a", "café “é” ’", "北京", "z"]);
      expect(await reader.lineAt(bytes.length)).toBeUndefined();
    } finally {
      await reader.close();
    }
  });

  it("JsonlAppender.append resolves with the offset its line was written at, after a cut torn line", async () => {
    const path = await file('{"id":"ünï","n":1}\n{"id":"b"');
    const appender = await JsonlAppender.open(path);
    const long = "“x” ".repeat(5000);
    const at = await Promise.all([appender.append({ id: "c", n: 3 }), appender.append({ id: long, n: 4 }), appender.append({ id: "ä", n: 5 })]);
    await appender.close();
    const reader = new JsonlLineReader(path);
    try {
      expect(at[0]).toBe(Buffer.byteLength('{"id":"ünï","n":1}\n'));
      const ids = await Promise.all(at.map(async (o) => (JSON.parse((await reader.lineAt(o))!) as { id: string }).id));
      expect(ids).toEqual(["c", long, "ä"]);
    } finally {
      await reader.close();
    }
  });
});

describe("lineItemId", () => {
  it("reads the itemId of a line as written, and is not fooled by one quoted inside a value", () => {
    const line = JSON.stringify({ key: "k", stage: "profile", itemId: "U7", output: { topics: ['"itemId":"U9"'] } });
    expect(lineItemId(line)).toBe("U7");
    const fake = JSON.stringify({ key: "k", output: { note: '"itemId":"U9"' } });
    expect(lineItemId(fake)).toBeUndefined();
    expect(lineItemId(JSON.stringify({ itemId: 'U"1' }))).toBeUndefined();
  });
});
