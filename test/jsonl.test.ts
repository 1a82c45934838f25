// The one JSONL reading policy: a torn last line is skipped; a bad line elsewhere stops the read
// naming file:line, unless the caller counts bad lines itself.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { JsonlAppender, jsonlLines, readJsonl, type BadLine } from "../src/engine/store.js";
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
