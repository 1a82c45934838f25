import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MindFormatError, SkipLog } from "../src/mind/errors.js";
import { parseEntities, parseImpressions, readBehaviors, readLines, readNews } from "../src/mind/read.js";
import { cleanGeneratedText, tsvField } from "../src/mind/text.js";
import { parseMindTime } from "../src/mind/time.js";
import { formatBehaviorLine, formatNewsLine, newsLineWith, writeBehaviors, writeNews, writeRows } from "../src/mind/write.js";
import type { NewsRow } from "../src/mind/rows.js";
import { tempDir } from "./helpers/temp.js";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");
const SPLITS = ["MINDsample_train", "MINDsample_dev"];

async function tmp(): Promise<string> {
  return tempDir("gm-read-");
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const QUOTED_TITLES = [
  '"Hamilton" returns to Austin',
  'Coach says team is "not panicking"',
  '"Unbalanced quote at the start',
  'Ends with a quote"',
  "Mom's trick & more | list",
  "Café — “curly” ‘quotes’ São Paulo",
];

function newsLine(id: string, title: string, abstract = "An abstract.", ents = "[]"): string {
  return [id, "news", "newsus", title, abstract, "https://assets.msn.com/labs/mind/AAGH0ET.html", ents, "[]"].join("\t");
}

describe("reading news.tsv", () => {
  it("passes quotes, &, | and non-ASCII through byte for byte, and keeps empty abstracts", async () => {
    const dir = await tmp();
    const file = join(dir, "news.tsv");
    await writeFile(file, QUOTED_TITLES.map((t, i) => newsLine(`N${i + 1}`, t, i === 0 ? "" : "x")).join("\n") + "\n");
    const rows = await collect(readNews(file));
    expect(rows.map((r) => r.title)).toEqual(QUOTED_TITLES);
    expect(rows[0]!.abstract).toBe("");
    expect(rows.map((r) => r.lineNo)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("accepts a UTF-8 BOM, CRLF endings and a missing final newline, giving the same rows as LF", async () => {
    const dir = await tmp();
    const lines = QUOTED_TITLES.map((t, i) => newsLine(`N${i + 1}`, t));
    await writeFile(join(dir, "lf.tsv"), lines.join("\n") + "\n");
    await writeFile(join(dir, "crlf.tsv"), "\uFEFF" + lines.join("\r\n"));
    const lf = await collect(readNews(join(dir, "lf.tsv")));
    const crlf = await collect(readNews(join(dir, "crlf.tsv")));
    expect(crlf).toEqual(lf);
    expect(crlf[0]!.id).toBe("N1");
    expect(crlf.at(-1)!.abstractEntities).toBe("[]");
  });

  it("reads lines across 1 MB chunk boundaries, with CRLF and multi-byte characters split between chunks", async () => {
    const dir = await tmp();
    const file = join(dir, "big.tsv");
    const lines: string[] = [];
    // Odd line lengths so line ends, CRs and 2-/3-byte characters land on every chunk offset.
    for (let i = 0; i < 30_000; i++) lines.push(`${i}\t${"é€x".repeat(i % 37)}${"y".repeat(i % 11)}`);
    await writeFile(file, lines.join("\r\n") + "\r\n");
    const read = (await collect(readLines(file))).map((l) => l.text);
    expect(read.length).toBe(lines.length);
    expect(read.join("\n")).toBe(lines.join("\n"));
  });

  it("marks the lines whose bytes are not UTF-8, in every chunk and on a last line without a newline", async () => {
    const dir = await tmp();
    const file = join(dir, "latin1.tsv");
    const good = (i: number) => Buffer.from(`${i}\tcafé “quoted” ${"x".repeat(i % 50)}\n`);
    const bad = (i: number) => Buffer.concat([Buffer.from(`${i}\tcaf`), Buffer.from([0xe9]), Buffer.from(" latin-1\n")]);
    const parts: Buffer[] = [];
    const badLines = [1, 20_000, 40_000];
    for (let i = 1; i <= 40_000; i++) parts.push(badLines.includes(i) ? bad(i) : good(i));
    // The last line has no newline and a truncated 3-byte sequence.
    parts.push(Buffer.concat([Buffer.from("40001\tend "), Buffer.from([0xe2, 0x80])]));
    const bytes = Buffer.concat(parts);
    expect(bytes.length).toBeGreaterThan(3 << 19);
    await writeFile(file, bytes);
    const lines = await collect(readLines(file));
    expect(lines).toHaveLength(40_001);
    expect(lines.filter((l) => l.invalidUtf8).map((l) => l.lineNo)).toEqual([...badLines, 40_001]);
    expect(lines[0]!.text).toBe("1\tcaf\uFFFD latin-1");
  });

  it("newsLineWith copies a line as read and changes only the fields given, even when it is not UTF-8", async () => {
    const dir = await tmp();
    const file = join(dir, "news.tsv");
    const latin1 = Buffer.concat([Buffer.from("N1\tnews\tnewsus\tCaf"), Buffer.from([0xe9]), Buffer.from(" opens\tAbstract \x0b caf"), Buffer.from([0xe9]), Buffer.from("\thttps://x\t[]\t[]\r\n")]);
    const utf8 = Buffer.from("N2\tnews\tnewsus\t“Quoted” title\tCafé \x0b abstract\thttps://y\t[]\t[]\n");
    await writeFile(file, Buffer.concat([latin1, utf8]));
    const [a, b] = await collect(readLines(file));
    const bytes = (v: string | Buffer) => (typeof v === "string" ? Buffer.from(v) : v);
    expect(bytes(newsLineWith(a!, {}))).toEqual(Buffer.concat([latin1.subarray(0, -2), Buffer.from("\n")]));
    expect(bytes(newsLineWith(b!, {}))).toEqual(utf8);
    const renamed = bytes(newsLineWith(a!, { title: "Café\topens" }));
    expect(renamed).toEqual(Buffer.concat([Buffer.from("N1\tnews\tnewsus\tCafé opens\tAbstract \x0b caf"), Buffer.from([0xe9]), Buffer.from("\thttps://x\t[]\t[]\n")]));
    expect(bytes(newsLineWith(b!, { title: "New" }))).toEqual(Buffer.from("N2\tnews\tnewsus\tNew\tCafé \x0b abstract\thttps://y\t[]\t[]\n"));
    // The abstract too (describe --describe abstract): the title's bytes stay as read.
    const described = bytes(newsLineWith(a!, { abstract: "Markets.\tAbstract" }));
    expect(described).toEqual(Buffer.concat([Buffer.from("N1\tnews\tnewsus\tCaf"), Buffer.from([0xe9]), Buffer.from(" opens\tMarkets. Abstract\thttps://x\t[]\t[]\n")]));
    expect(bytes(newsLineWith(b!, { title: "T", abstract: "A" }))).toEqual(Buffer.from("N2\tnews\tnewsus\tT\tA\thttps://y\t[]\t[]\n"));
  });

  it("reads a line longer than the read buffer", async () => {
    const dir = await tmp();
    const file = join(dir, "long.tsv");
    const long = "x".repeat(2_500_000) + "é";
    await writeFile(file, `a\n${long}\nb`);
    expect((await collect(readLines(file))).map((l) => [l.text.length, l.lineNo])).toEqual([[1, 1], [long.length, 2], [1, 3]]);
  });

  it("parses entity JSON only on request, and names file, line and field when it is bad", async () => {
    const ents = '[{"Label": "Austin, Texas", "Type": "G", "WikidataId": "Q16559", "Confidence": 1.0, "OccurrenceOffsets": [10], "SurfaceForms": ["Austin"]}]';
    expect(parseEntities("news.tsv", 1, "Title Entities", ents)).toEqual([
      { Label: "Austin, Texas", Type: "G", WikidataId: "Q16559", Confidence: 1, OccurrenceOffsets: [10], SurfaceForms: ["Austin"] },
    ]);
    expect(parseEntities("news.tsv", 1, "Title Entities", "")).toEqual([]);
    expect(() => parseEntities("x/news.tsv", 7, "Abstract Entities", "[{")).toThrow(/^x\/news\.tsv:7 \[Abstract Entities\]: invalid JSON/);
    for (const bad of ['[{"Type": "G"}]', '{"Label": "x", "Type": "G"}', '[{"Label": "x", "Type": "G", "Confidence": "1.0"}]',
      '[{"Label": "x", "Type": "G", "OccurrenceOffsets": ["3"]}]', '[{"Label": "x", "Type": "G", "SurfaceForms": [3]}]', "[null]", "[[]]"]) {
      expect(() => parseEntities("x/news.tsv", 7, "Title Entities", bad), bad).toThrow(/x\/news\.tsv:7 \[Title Entities\]: not a list of entities/);
    }
    // Keys MIND may add later pass through.
    expect(parseEntities("f", 1, "Title Entities", '[{"Label": "x", "Type": "G", "Extra": 1}]')).toEqual([{ Label: "x", Type: "G", Extra: 1 }]);
  });

  it("stops at a malformed line naming file and line, or counts and skips it with lenient", async () => {
    const dir = await tmp();
    const file = join(dir, "news.tsv");
    await writeFile(file, [newsLine("N1", "ok"), "N2\tnews\ttoo few", newsLine("N3", "ok"), "\tnews\tx\tt\ta\tu\t[]\t[]"].join("\n") + "\n");
    const err = await collect(readNews(file)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MindFormatError);
    expect((err as MindFormatError).message).toBe(`${file}:2: expected 8 tab-separated fields (news.tsv), found 3`);

    const skipped = new SkipLog();
    const rows = await collect(readNews(file, { lenient: true, skipped }));
    expect(rows.map((r) => r.id)).toEqual(["N1", "N3"]);
    expect(skipped.count).toBe(2);
    expect(skipped.examples.map((e) => [e.line, e.field])).toEqual([[2, undefined], [4, "News ID"]]);
  });
});

describe("reading behaviors.tsv", () => {
  it("reads empty histories and unlabeled impressions (MIND-large test) as such", async () => {
    const dir = await tmp();
    const file = join(dir, "behaviors.tsv");
    await writeFile(file, "1\tU1\t11/15/2019 8:55:22 AM\t\tN5-1 N6-0\n2\tU2\t11/15/2019 9:00:00 AM\tN1 N2\tN5 N6\n");
    const rows = await collect(readBehaviors(file));
    expect(rows[0]!.history).toEqual([]);
    expect(rows[1]!.history).toEqual(["N1", "N2"]);
    expect(parseImpressions(rows[0]!.impressions)).toEqual([{ newsId: "N5", label: 1 }, { newsId: "N6", label: 0 }]);
    expect(parseImpressions(rows[1]!.impressions)).toEqual([{ newsId: "N5", label: null }, { newsId: "N6", label: null }]);
  });

  it("names file, line and field for a bad label, a mixed row and a wrong field count", async () => {
    const dir = await tmp();
    const cases: [string, RegExp][] = [
      ["1\tU1\tt\tN1\tN5-2 N6-0", /:1 \[Impressions\]: label '2' in 'N5-2' is not 0 or 1/],
      ["1\tU1\tt\tN1\tN5-1 N6", /:1 \[Impressions\]: mixes labeled and unlabeled impressions at 'N6'/],
      ["1\tU1\tt\tN1\tN5-1\textra", /:1: expected 5 tab-separated fields \(behaviors\.tsv\), found 6/],
      ["1\t\tt\tN1\tN5-1", /:1 \[User ID\]: empty user ID/],
    ];
    for (const [line, expected] of cases) {
      const file = join(dir, "behaviors.tsv");
      await writeFile(file, line + "\n");
      await expect(collect(readBehaviors(file))).rejects.toThrow(expected);
    }
  });
});

describe("writing", () => {
  it("reproduces the bundled sample byte for byte when read and written back", async () => {
    const dir = await tmp();
    for (const split of SPLITS) {
      const news = join(SAMPLE, split, "news.tsv");
      const behaviors = join(SAMPLE, split, "behaviors.tsv");
      await writeNews(join(dir, split, "news.tsv"), readNews(news));
      await writeBehaviors(join(dir, split, "behaviors.tsv"), readBehaviors(behaviors));
      // Buffer.compare, not toEqual: a byte-wise deep equality of 100 KB takes seconds.
      expect(Buffer.compare(await readFile(join(dir, split, "news.tsv")), await readFile(news))).toBe(0);
      expect(Buffer.compare(await readFile(join(dir, split, "behaviors.tsv")), await readFile(behaviors))).toBe(0);
    }
  });

  it("writes LF endings for a CRLF input and keeps every field", async () => {
    const dir = await tmp();
    await writeFile(join(dir, "in.tsv"), "\uFEFF1\tU1\t11/15/2019 8:55:22 AM\t\tN5-1 N6-0\r\n");
    await writeBehaviors(join(dir, "out.tsv"), readBehaviors(join(dir, "in.tsv")));
    expect(await readFile(join(dir, "out.tsv"), "utf8")).toBe("1\tU1\t11/15/2019 8:55:22 AM\t\tN5-1 N6-0\n");
  });

  it("replaces tabs, CR, LF and other control characters in text fields by spaces", () => {
    const row: NewsRow = {
      id: "N1", category: "news", subcategory: "newsus", title: "a\tb\nc\rd\u2028e\u0085f", abstract: "x\u0000y\u007fz",
      url: "u", titleEntities: "[]", abstractEntities: "[]",
    };
    expect(formatNewsLine(row)).toBe("N1\tnews\tnewsus\ta b c d e f\tx y z\tu\t[]\t[]\n");
    expect(formatBehaviorLine({ impressionId: "1", userId: "U1", time: "t", history: ["N1", "N2"], impressions: "N3-1" })).toBe(
      "1\tU1\tt\tN1 N2\tN3-1\n",
    );
  });

  it("leaves the file absent (and no temporary file behind) when writing fails midway", async () => {
    const dir = await tmp();
    const path = join(dir, "news.tsv");
    async function* failing(): AsyncGenerator<NewsRow> {
      for (let i = 0; i < 5000; i++) {
        if (i === 4000) throw new Error("generator broke");
        yield { id: `N${i}`, category: "news", subcategory: "newsus", title: "t".repeat(50), abstract: "", url: "", titleEntities: "[]", abstractEntities: "[]" };
      }
    }
    await expect(writeNews(path, failing())).rejects.toThrow("generator broke");
    expect(await readdir(dir)).toEqual([]);

    // Failing before the first row: the temporary file may still be opening when abort runs.
    async function* failsAtOnce(): AsyncGenerator<NewsRow> {
      throw new Error("no rows");
    }
    await expect(writeNews(path, failsAtOnce())).rejects.toThrow("no rows");
    expect(await readdir(dir)).toEqual([]);

    // An existing file stays as it was.
    await writeFile(path, "old\n");
    await expect(writeRows(path, failing(), formatNewsLine)).rejects.toThrow("generator broke");
    expect(await readFile(path, "utf8")).toBe("old\n");
    expect(await readdir(dir)).toEqual(["news.tsv"]);
  });
});

describe("text helpers", () => {
  it("parseMindTime reads MIND's time format and nothing else", () => {
    expect(parseMindTime("11/15/2019 10:22:32 AM")).toBe(Date.UTC(2019, 10, 15, 10, 22, 32));
    expect(parseMindTime("1/5/2019 12:00:00 AM")).toBe(Date.UTC(2019, 0, 5, 0, 0, 0));
    expect(parseMindTime("1/5/2019 12:00:01 PM")).toBe(Date.UTC(2019, 0, 5, 12, 0, 1));
    expect(parseMindTime("11/9/2019 9:05:58 PM")).toBe(Date.UTC(2019, 10, 9, 21, 5, 58));
    expect(parseMindTime("2/29/2020 11:59:59 PM")).toBe(Date.UTC(2020, 1, 29, 23, 59, 59));
    for (const bad of ["", "11/15/2019 10:22:32", "11/15/2019 10:22:32 am", "111/15/2019 1:22:32 AM", "11/15/19 1:22:32 AM",
      "11/15/2019 1:2:32 AM", "11/15/2019 1:22:32 AMX", "11-15-2019 1:22:32 AM", "2019-11-15T10:22:32Z",
      "13/15/2019 1:22:32 AM", "0/15/2019 1:22:32 AM", "11/31/2019 1:22:32 AM", "2/29/2019 1:22:32 AM", "11/15/2019 13:22:32 PM",
      "11/15/2019 1:60:32 AM", "11/15/2019 1:22:60 AM"]) {
      expect(parseMindTime(bad), bad).toBeNaN();
    }
  });

  it("tsvField changes only field breakers", () => {
    expect(tsvField('"Quote" & | café')).toBe('"Quote" & | café');
    expect(tsvField("a\tb\r\nc\u2029d")).toBe("a b  c d");
  });

  it("cleanGeneratedText collapses white space, trims, and refuses an empty answer", () => {
    expect(cleanGeneratedText("  A\tnew\n\ntitle \u2028 here ")).toBe("A new title here");
    expect(cleanGeneratedText(" \t\r\n ")).toBeUndefined();
    expect(cleanGeneratedText("")).toBeUndefined();
  });
});
