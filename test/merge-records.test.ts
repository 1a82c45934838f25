// merge reads record lines with recordParser: the source's clicks straight into NewsCodes, the rest
// with JSON.parse. Whatever the line, the outcome must be JSON.parse's: the same value, or the same error.
import { describe, expect, it } from "vitest";
import { RecordSource } from "../src/engine/types.js";
import { KeptByItem, recordParser } from "../src/merge/records.js";
import { NewsCodes } from "../src/mind/history-rule.js";

type Outcome = { value: unknown } | { error: string };

function viaJson(line: string): Outcome {
  try {
    return { value: JSON.parse(line) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** recordParser's outcome, a coded source turned back into IDs; `coded` tells whether the clicks were read as codes. */
function viaParser(line: string): Outcome & { coded: boolean } {
  const codes = new NewsCodes();
  try {
    const value = recordParser(codes)(line) as Record<string, unknown>;
    const source = value !== null && typeof value === "object" ? (value.source as { split: string; codes?: number[] } | undefined) : undefined;
    if (source && source.codes) {
      const read = { split: source.split, clicks: source.codes.map((c) => codes.id(c)) };
      // merge takes a coded source as valid: it must be one the schema would take.
      expect(RecordSource.safeParse(read).success, line).toBe(true);
      return { value: { ...value, source: read }, coded: true };
    }
    return { value, coded: false };
  } catch (e) {
    return { error: (e as Error).message, coded: false };
  }
}

const head = '"key":"k1","stage":"profile","itemId":"U7","provider":"offline","model":"m"';
const rest = '"output":{"topics":["travel"],"regions":[]},"usage":{"inputTokens":1,"outputTokens":2,"cacheReadTokens":0,"cacheWriteTokens":0},"attempts":1';
const source = '"source":{"split":"train","clicks":["N12","N3","Nx-1","N007"]}';
/** Where the engine puts the source (after model), where bench:merge puts it (last), and first. */
const shapes = [`{${head},${source},${rest}}`, `{${head},${rest},${source}}`, `{${source},${head},${rest}}`, `{${head},${source},${rest},"pack":3}`];

describe("recordParser", () => {
  it("reads the engine's source member as codes, wherever it stands, with JSON.parse's value", () => {
    for (const line of shapes) {
      const got = viaParser(line);
      expect(got.coded, line).toBe(true);
      expect(got).toEqual({ ...viaJson(line), coded: true });
    }
  });

  it("leaves lines it cannot cut safely to JSON.parse, with the same value or error", () => {
    const lines = [
      // Not the engine's form: escapes, spaces, an empty or non-string click, a nested "source", an array.
      `{${head},"source":{"split":"train","clicks":["N\\u0031"]},${rest}}`,
      `{${head},"source":{"split":"tr\\"ain","clicks":["N1"]},${rest}}`,
      `{${head},"source": {"split":"train","clicks":["N1"]},${rest}}`,
      `{${head},"source":{"split":"train","clicks":["N1", "N2"]},${rest}}`,
      `{${head},"source":{"split":"train","clicks":[]},${rest}}`,
      `{${head},"source":{"split":"train","clicks":[""]},${rest}}`,
      `{${head},"source":{"split":"","clicks":["N1"]},${rest}}`,
      `{${head},"source":{"split":"train","clicks":[1]},${rest}}`,
      `{${head},"source":{"split":"train","clicks":["N1"],"more":1},${rest}}`,
      `{${head},"source":{"split":"train","clicks":["N1"]]}`,
      `{${head},"output":{"source":{"split":"train","clicks":["N1"]}},"attempts":1}`,
      `[${source}]`,
      `{"a":[1,${source}]}`,
      // Another top-level source: JSON.parse keeps the last.
      `{${head},${source},${rest},"source":{"split":"dev","clicks":["N9"]}}`,
      `{${head},"source":{"split":"dev","clicks":["N9"]},${source},${rest}}`,
      `{${head},"source":null,${source}}`,
      `{${head},${source},"source":null}`,
      // The key's quote inside a string value, with or without the string's end around it.
      `{"title":"a ,${source.replaceAll('"', '\\"')}",${rest}}`,
      `{"title":"a \\\\",${source},${rest}}`,
      // Escaped quotes that would put the member at the top level if a scan took them for string ends.
      `{"a":"\\"","x":{"b":"\\"",${source}}}`,
      // A control character is not allowed raw in a JSON string.
      `{${head},"source":{"split":"train","clicks":["N1\u0001"]}}`,
      `{${head},"source":{"split":"tr\tain","clicks":["N1"]}}`,
      // Broken around the member: JSON.parse's error, not a value.
      `{,${source},${rest}}`,
      `{,${source}}`,
      `{ ,${source}}`,
      `[1,${source}]`,
      `{${head},,${source}}`,
      `{${head}:${source}}`,
      `{"a":${source}}`,
      `{${source},}`,
      `{${source}`,
      `{${source}}}`,
      `{"t":"abc,${source}","u":1}`,
      `{"a":[1},${source}]}`,
      `${source}`,
      `{${head},${source},${rest}} x`,
      `  {${source}}  `,
      `{${source}}`,
    ];
    for (const line of lines) {
      const { coded: _, ...got } = viaParser(line);
      expect(got, line).toEqual(viaJson(line));
    }
  });

  it("agrees with JSON.parse on thousands of damaged lines", () => {
    // A fixed-seed generator: the same lines on every run.
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = ['"', "\\", "{", "}", "[", "]", ",", ":", " ", "N", "1", "source", '"source":', "e", "\u2028", "\t"];
    let coded = 0;
    for (let n = 0; n < 20_000; n++) {
      let line = shapes[random(shapes.length)]!;
      for (let edits = 1 + random(3); edits > 0; edits--) {
        const at = random(line.length + 1);
        const what = random(3);
        if (what === 0) line = line.slice(0, at) + line.slice(at + 1);
        else if (what === 1) line = line.slice(0, at) + pieces[random(pieces.length)] + line.slice(at);
        else line = line.slice(0, at) + line.slice(at, at + random(20)).repeat(2) + line.slice(at + random(20));
      }
      const { coded: c, ...got } = viaParser(line);
      if (c) coded++;
      expect(got, line).toEqual(viaJson(line));
    }
    // Many damaged lines still parse with the member cut out: that path is what was tested.
    expect(coded).toBeGreaterThan(1_000);
  });
});

describe("KeptByItem", () => {
  it("finds a user's record by number as get() finds it by ID, the last one set winning", () => {
    const kept = new KeptByItem<string>();
    const ids = ["U5", "U1000000", "U05", "X7", "U5", "U3", "U1000000"];
    ids.forEach((id, i) => kept.set(id, { value: `${id}#${i}`, by: 0, source: -1 }));
    expect(kept.size).toBe(5);
    for (const [n, id] of [
      [5, "U5"],
      [1_000_000, "U1000000"],
      [3, "U3"],
    ] as const) {
      expect(kept.byUserNumber(n)).toBe(kept.get(id));
    }
    expect(kept.get("U5")?.value).toBe("U5#4");
    // U05 is not U5's number: another ID; X7 has none.
    expect(kept.byUserNumber(7)).toBeUndefined();
    expect(kept.byUserNumber(4)).toBeUndefined();
  });
});
