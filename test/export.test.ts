import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/command.js";
import { exportCommand } from "../src/commands/export.js";
import { npyFloat32Matrix } from "../src/trainer/npy.js";
import { pickleStrIntDict } from "../src/trainer/pickle.js";
import { wordTokenize } from "../src/trainer/tokenize.js";
import { invokeCaptured } from "./helpers/cli.js";
import { NUMPY, python, PYTHON } from "./helpers/python.js";
import { tempDir } from "./helpers/temp.js";

const run = (cwd: string, args: string[]) => invokeCaptured(exportCommand, ["recommenders", ...args], cwd);


// What Python's re.findall(r"[\w]+|[.,!?;|]", s.lower()) returns, written out by hand.
const TOKEN_TABLE: [string, string[]][] = [
  ["Café Über-Straße: don't stop!", ["café", "über", "straße", "don", "t", "stop", "!"]],
  ["東京タワー 2024年", ["東京タワー", "2024年"]],
  ["snake_case_word __init__", ["snake_case_word", "__init__"]],
  ["🎉 party👍🏽ok", ["party", "ok"]],
  ["ΟΔΟΣ ΣΟΦΟΣ", ["οδος", "σοφος"]], // final sigma
  ["x² ½ Ⅻ ١٢٣", ["x²", "½", "ⅻ", "١٢٣"]], // No, Nl and Arabic-Indic Nd are word characters
  ["e\u0301cole", ["e", "cole"]], // a combining mark is not: Python's \w is str.isalnum() plus "_"
  ["a.b,c!d?e;f|g:h-i(j)k\"l'm", ["a", ".", "b", ",", "c", "!", "d", "?", "e", ";", "f", "|", "g", "h", "i", "j", "k", "l", "m"]],
  ["...!!", [".", ".", ".", "!", "!"]],
  ["İstanbul ǄEMAL", ["i", "stanbul", "ǆemal"]], // "İ".lower() is "i" + U+0307, a mark
  ["", []],
];

const NEWS_TITLES = [
  "Café Über-Straße: don't stop!",
  "東京タワー 2024年 and the cafe",
  "ΟΔΟΣ ΣΟΦΟΣ; the end?",
  "Snake_Case | x² ½",
];

function newsTsv(titles: string[], firstId = 1): string {
  return titles.map((t, i) => `N${firstId + i}\tnews\tnewsus\t${t}\tabstract words ignored\thttps://x\t[]\t[]\n`).join("");
}

function behaviorsTsv(users: string[]): string {
  return users.map((u, i) => `${i + 1}\t${u}\t11/15/2019 10:22:32 AM\tN1\tN2-1 N3-0\n`).join("");
}

async function split(root: string, name: string, titles: string[], users: string[], firstId = 1): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "news.tsv"), newsTsv(titles, firstId));
  await writeFile(join(dir, "behaviors.tsv"), behaviorsTsv(users));
  return dir;
}

const loadPickle = (file: string) => `import json, pickle
with open(${JSON.stringify(file)}, "rb") as f: d = pickle.load(f)
print(json.dumps([type(d).__name__, list(d.items())]))`;

describe("wordTokenize", () => {
  it("tokenizes as NRMS does", () => {
    for (const [text, tokens] of TOKEN_TABLE) expect(wordTokenize(text), text).toEqual(tokens);
  });

  it.skipIf(!PYTHON)("agrees with Python's re on the tricky strings", () => {
    const texts = [...TOKEN_TABLE.map(([t]) => t), ...NEWS_TITLES, "Ǳ ǲ ǳ ß ﬁ Σ. ς _ 3.5 U.S. 1,000"];
    const expected = python(
      `import json, re, sys
print(json.dumps([re.findall(r"[\\w]+|[.,!?;|]", s.lower()) for s in json.load(sys.stdin)]))`,
      JSON.stringify(texts),
    ) as string[][];
    expect(texts.map(wordTokenize)).toEqual(expected);
  });
});

describe("genre-mind export recommenders", () => {
  it("writes word_dict.pkl and uid2index.pkl, in first-occurrence order", async () => {
    const root = await tempDir("gm-export-");
    const dir = await split(root, "train", NEWS_TITLES, ["U9", "U3", "U9", "U1"]);
    const { code, out } = await run(root, ["train"]);
    expect(code).toBe(0);
    expect(out).toContain(`wordDict_file: ${join(dir, "word_dict.pkl")}`);
    expect(out).toContain(`userDict_file: ${join(dir, "uid2index.pkl")}`);
    expect(out).toMatch(/NRMS requires one: run again with --glove/);

    const words = [...new Set(NEWS_TITLES.flatMap(wordTokenize))];
    expect(words.slice(0, 8)).toEqual(["café", "über", "straße", "don", "t", "stop", "!", "東京タワー"]);
    expect(words).toContain("οδος");
    expect((await readdir(dir)).sort()).toEqual(["behaviors.tsv", "news.tsv", "uid2index.pkl", "word_dict.pkl"]);
  });

  it.skipIf(!PYTHON)("writes pickles Python loads, holding the vocabulary Python's own tokenizer builds", async () => {
    const root = await tempDir("gm-export-");
    const dir = await split(root, "train", NEWS_TITLES, ["U9", "U3", "U9", "U1"]);
    await run(root, ["train"]);
    const words = [...new Set(NEWS_TITLES.flatMap(wordTokenize))];
    // One python3 run: the pickles as loaded, and the vocabulary Python's own tokenizer builds.
    const loaded = python(`import json, pickle, re
def load(p):
    with open(p, "rb") as f: d = pickle.load(f)
    return [type(d).__name__, list(d.items())]
expected = {}
for line in open(${JSON.stringify(join(dir, "news.tsv"))}, encoding="utf-8"):
    for w in re.findall(r"[\\w]+|[.,!?;|]", line.split("\\t")[3].lower()):
        expected.setdefault(w, len(expected) + 1)
print(json.dumps([load(${JSON.stringify(join(dir, "word_dict.pkl"))}), load(${JSON.stringify(join(dir, "uid2index.pkl"))}), list(expected.items())]))`) as unknown[];
    expect(loaded[0]).toEqual(["dict", words.map((w, i) => [w, i + 1])]);
    expect(loaded[1]).toEqual(["dict", [["U9", 1], ["U3", 2], ["U1", 3]]]);
    expect(loaded[2]).toEqual(words.map((w, i) => [w, i + 1]));
  });

  /** Three splits exported as one folder of splits. */
  async function sharedVocabulary(): Promise<{ root: string; out: string }> {
    const root = await tempDir("gm-export-");
    await split(root, "MINDsmall_train", ["alpha beta"], ["U1", "U2"]);
    await split(root, "MINDsmall_dev", ["beta gamma"], ["U2", "U3"], 10);
    await split(root, "MINDsmall_a", ["delta"], ["U4"], 20);
    return { root, out: (await run(root, [".", "--out", "utils"])).out };
  }

  it("shares one vocabulary over several splits and writes to --out", async () => {
    const { out } = await sharedVocabulary();
    // A folder of splits: train first, then dev, then the others by name (dev sorts before train by name).
    expect(out).toContain("splits: MINDsmall_train, MINDsmall_dev, MINDsmall_a");
    expect(out).toMatch(/4 words/);
    // Users as recommenders' notebook numbers them: train's only; U3 and U4 are the unknown user 0 to the trainer.
    expect(out).toMatch(/2 users \(of MINDsmall_train; other users are index 0\)/);
  });

  it.skipIf(!PYTHON)("numbers the shared vocabulary in split order and the train split's users only, as Python loads them", async () => {
    const { root } = await sharedVocabulary();
    expect(python(loadPickle(join(root, "utils", "word_dict.pkl")))).toEqual(["dict", [["alpha", 1], ["beta", 2], ["gamma", 3], ["delta", 4]]]);
    expect(python(loadPickle(join(root, "utils", "uid2index.pkl")))).toEqual(["dict", [["U1", 1], ["U2", 2]]]);
  });

  it("numbers the users of the split named train wherever it is given, else of the first split", async () => {
    const root = await tempDir("gm-export-");
    await split(root, "MINDsmall_dev", ["beta"], ["U2", "U3"]);
    await split(root, "MINDsmall_train", ["alpha"], ["U1", "U2", "U1"], 10);
    await split(root, "valid", ["gamma"], ["U7"], 20);
    await split(root, "test", ["delta"], ["U8", "U9"], 30);
    expect((await run(root, ["MINDsmall_dev", "MINDsmall_train", "--out", "a"])).out).toMatch(/2 users \(of MINDsmall_train;/);
    expect((await run(root, ["test", "valid", "--out", "b"])).out).toMatch(/2 users \(of test;/);
  });

  // Vocabulary of gloveExport: the 1, café 2, . 3, stop 4, unknownword 5.
  const EMBEDDING = [[0, 0, 0], [1e-3, 2.5, -3], [1.25, 0, -0.5], [4, 5, 6], [0.1, 0.2, 0.3], [0, 0, 0]];

  async function gloveExport(): Promise<{ dir: string; out: string }> {
    const root = await tempDir("gm-export-");
    const dir = await split(root, "train", ["The café . stop", "unknownword the"], ["U1"]);
    await writeFile(
      join(root, "glove.txt"),
      [
        "the 0.5 -1 2", // overwritten below, as recommenders' loop does
        ". . . 9 9 9", // 840B has words with spaces: the first field "." is not the word
        "café 1.25 0 -0.5",
        "The 7 7 7", // cased entry (840B): never matches the lowercased vocabulary
        ". 4 5 6",
        "the 1e-3 2.5 -3",
        "stop 0.1 0.2 0.3 ",
      ].join("\n") + "\n",
    );
    return { dir, out: (await run(root, ["train", "--glove", "glove.txt"])).out };
  }

  it("writes embedding.npy from a streamed GloVe file: row 0 and unknown words zero, later duplicates win", async () => {
    const { dir, out } = await gloveExport();
    expect(out).toContain(`wordEmb_file: ${join(dir, "embedding.npy")}`);
    expect(out).toContain("word_emb_dim: 3");
    expect(out).toMatch(/6 × 3 float32; 4 words found in GloVe, 1 left at zero/);

    const expected = EMBEDDING;
    const bytes = await readFile(join(dir, "embedding.npy"));
    const headerLen = bytes.readUInt16LE(8);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    expect((10 + headerLen) % 64).toBe(0);
    expect(bytes.subarray(10, 10 + headerLen).toString("latin1")).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(6, 3\), \} *\n$/);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 10 + headerLen, bytes.byteOffset + bytes.length));
    expect(Array.from(data)).toEqual(expected.flat().map(Math.fround));
  });

  it.skipIf(!NUMPY)("writes an embedding.npy numpy loads", async () => {
    const { dir } = await gloveExport();
    const loaded = python(`import json
import numpy as np
a = np.load(${JSON.stringify(join(dir, "embedding.npy"))})
print(json.dumps([str(a.dtype), list(a.shape), a.astype(float).tolist()]))`) as [string, number[], number[][]];
    expect(loaded[0]).toBe("float32");
    expect(loaded[1]).toEqual([6, 3]);
    expect(loaded[2]).toEqual(EMBEDDING.map((row) => row.map(Math.fround)));
  });

  it("reads a word2vec-style header line and names a short vector line", async () => {
    const root = await tempDir("gm-export-");
    await split(root, "train", ["stop now"], ["U1"]);
    await writeFile(join(root, "w2v.txt"), "2 2\nstop 1 2\nnow 3 4\n");
    expect((await run(root, ["train", "--glove", "w2v.txt"])).out).toMatch(/3 × 2 float32; 2 words found/);
    await writeFile(join(root, "bad.txt"), "stop 1 2\nnow 3\n");
    await expect(run(root, ["train", "--glove", "bad.txt"])).rejects.toThrow(/bad\.txt:2: expected 2 vector components \(as on the first line\), found 1/);
    await writeFile(join(root, "nan.txt"), "stop 1 x\n");
    await expect(run(root, ["train", "--glove", "nan.txt"])).rejects.toThrow(/nan\.txt:1: component 2 'x' is not a number/);
  });

  it("refuses an unknown target and a folder without splits", async () => {
    const root = await tempDir("gm-export-");
    await expect(invokeCaptured(exportCommand, ["tensorflow", "."], root)).rejects.toThrow(UsageError);
    await expect(run(root, ["."])).rejects.toThrow(/neither a split folder/);
  });
});

describe("pickle and npy encoders", () => {
  const ENTRIES: [string, number][] = [...Array.from({ length: 2501 }, (_, i): [string, number] => [`w${i}`, i * 1000]), ["ß", 1], ["🎉", 70_000], ["neg", -5]];

  it("pickles dicts as protocol 2: header, an empty dict filled in SETITEMS batches, STOP", () => {
    const bytes = pickleStrIntDict(ENTRIES);
    expect(Array.from(bytes.subarray(0, 3))).toEqual([0x80, 2, 0x7d]);
    expect(bytes[bytes.length - 1]).toBe(0x2e);
  });

  it.skipIf(!PYTHON)("pickles dicts Python loads, across SETITEMS batches and every integer width", async () => {
    const file = join(await tempDir("gm-pickle-"), "dict.pkl");
    await writeFile(file, pickleStrIntDict(ENTRIES));
    expect(python(loadPickle(file))).toEqual(["dict", ENTRIES]);
  });

  it("pads the npy header to 64 bytes for any shape", () => {
    for (const [r, c] of [[1, 1], [123_456, 300], [0, 50]] as const) {
      const m = npyFloat32Matrix(r, c);
      const bytes = m.bytes();
      const headerLen = new DataView(bytes.buffer).getUint16(8, true);
      expect((10 + headerLen) % 64).toBe(0);
      expect(bytes.length).toBe(10 + headerLen + r * c * 4);
    }
  });
});
