// The merged output, read the way the trainers read it (docs: mind-format.md, "What the readers
// demand"), with adversarial LLM text in the records. Independent of src/mind/validate.ts on purpose.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCliCaptured } from "./helpers/cli.js";
import { PYTHON, python } from "./helpers/python.js";
import { makeDataset, record } from "./merge.fixture.js";

// Control characters become spaces; the printable rest of an ANSI escape ("[31m") is ordinary text.
const NASTY = `\t\n\r\r\n\u2028\u2029\u0085\u0000\u000b\u000c\u001b[31m\u007f`;
// Python's str.splitlines breaks on all of these; `for line in file` (universal newlines) on \r and \n.
const LINE_BREAKERS = /[\n\r\u000b\u000c\u001c-\u001e\u0085\u2028\u2029]/;
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/;

async function adversarialMerge() {
  const { root, data, runDir } = await makeDataset();
  await writeFile(
    join(runDir, "summarize.jsonl"),
    record("summarize", "N100", { title: `"Quoted${NASTY}enhanced title` }) +
      record("summarize", "N101", { title: `'single' ${NASTY} "unbalanced` }) +
      record("summarize", "N950", { title: `${NASTY}   Leading junk` }),
  );
  await writeFile(
    join(runDir, "generate.jsonl"),
    record("generate", "U2", {
      items: [
        { title: `"Lead quote${NASTY}tab`, abstract: `line1\nline2\r\nline3\u2028end`, category: "finance" },
        { title: "A - dash - title", abstract: `\t\n`, category: "news" },
      ],
    }) + record("generate", "U10", { items: [{ title: `x${NASTY}y`, abstract: `"`, category: "sports" }] }),
  );
  await writeFile(join(runDir, "profile.jsonl"), record("profile", "U2", { topics: ["social media"], regions: ["New York"] }));
  const r = await runCliCaptured(["merge", "--data", data, "--out", runDir], { cwd: root });
  expect(r.stderr).not.toMatch(/error|fails/i);
  expect(r.code).toBe(0);
  return { data, out: runDir };
}

const fileLines = async (path: string) => {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n");
};

describe("merged output under the readers' parsing", () => {
  it("keeps every line whole and every ID resolvable, whatever the records contain", async () => {
    const { data, out } = await adversarialMerge();
    for (const split of ["train", "dev"]) {
      const newsText = await readFile(join(out, split, "news.tsv"), "utf8");
      expect(newsText.replaceAll("\n", "").replaceAll("\t", "")).not.toMatch(CONTROL);
      const news = (await fileLines(join(out, split, "news.tsv"))).map((l) => l.split("\t"));
      const ids = new Set<string>();
      for (const f of news) {
        expect(f).toHaveLength(8);
        for (const field of f) expect(field).not.toMatch(CONTROL);
        expect(f[0]).not.toContain("-");
        ids.add(f[0]!);
      }
      // NX7 is an input ID (kept as is); every ID merge adds is N<digits>.
      for (const id of ids) if (id !== "NX7") expect(id).toMatch(/^N\d+$/);

      const input = (await fileLines(join(data, split, "behaviors.tsv"))).map((l) => l.split("\t"));
      const merged = (await fileLines(join(out, split, "behaviors.tsv"))).map((l) => l.split("\t"));
      expect(merged).toHaveLength(input.length);
      merged.forEach((f, i) => {
        const before = input[i]!;
        expect(f).toHaveLength(5);
        expect(f[1]).toMatch(/^U\d+$/);
        // Impression ID, user, time and the impressions column: the same bytes as the input.
        expect([f[0], f[1], f[2], f[4]]).toEqual([before[0], before[1], before[2], before[4]]);
        // History: the input history, then appended IDs.
        expect(f[3] === before[3] || f[3]!.startsWith(before[3] === "" ? "" : `${before[3]} `)).toBe(true);
        for (const id of f[3]!.split(" ").filter(Boolean)) expect(ids.has(id), `${split} history ${id}`).toBe(true);
        for (const tok of f[4]!.split(" ")) expect(ids.has(tok.split("-")[0]!), `${split} impression ${tok}`).toBe(true);
      });
    }
    const titles = (await fileLines(join(out, "train", "news_titles.tsv"))).map((l) => l.split("\t"));
    for (const f of titles) expect(f).toHaveLength(3);
    // Leading quotes reach the file unquoted: readers split on tabs with no quote handling.
    expect(titles[0]).toEqual(["N100", `"Quoted" start of a title`, `"Quoted [31m enhanced title`]);
    for (const split of ["train", "dev"]) expect(await fileLines(join(out, split, "user_profiles.tsv"))).toEqual(["U2\tsocial media\tNew York"]);
    const trainNews = (await fileLines(join(out, "train", "news.tsv"))).map((l) => l.split("\t"));
    expect(trainNews.find((f) => f[0] === "N951")?.slice(3, 5)).toEqual([`"Lead quote [31m tab`, "line1 line2 line3 end"]);
    expect(trainNews.find((f) => f[0] === "N952")?.slice(3, 5)).toEqual(["A - dash - title", ""]);
    for (const split of ["train", "dev"]) {
      const text = await readFile(join(out, split, "news.tsv"), "utf8");
      expect(LINE_BREAKERS.test(text.replaceAll("\n", ""))).toBe(false);
    }
  });

  it.skipIf(!PYTHON)("loads in a re-implementation of microsoft/recommenders' MINDIterator parsing", async () => {
    const { out } = await adversarialMerge();
    // MINDIterator.init_news / init_behaviors, NewsRecLib's integer IDs and a QUOTE_NONE csv read.
    const script = String.raw`
import csv, json, re, sys
def word_tokenize(sent):
    return re.compile(r"[\w]+|[.,!?;|]").findall(sent.lower())
result = {}
for split in ["train", "dev"]:
    news_file = f"{sys.argv[1]}/{split}/news.tsv"
    behaviors_file = f"{sys.argv[1]}/{split}/behaviors.tsv"
    nid2index, news_title = {}, [""]
    with open(news_file, "r", encoding="utf-8") as rd:
        for line in rd:
            nid, vert, subvert, title, ab, url, _, _ = line.strip("\n").split("\t")
            if nid in nid2index:
                continue
            nid2index[nid] = len(nid2index) + 1
            news_title.append(word_tokenize(title))
    uid2index, rows, links = {}, 0, 0
    with open(behaviors_file, "r", encoding="utf-8") as rd:
        for line in rd:
            uid, time, history, impr = line.strip("\n").split("\t")[-4:]
            history = [nid2index[i] for i in history.split()]
            impr_news = [nid2index[i.split("-")[0]] for i in impr.split()]
            label = [int(i.split("-")[1]) for i in impr.split()]
            assert len(impr_news) == len(label)
            if uid not in uid2index:
                uid2index[uid] = len(uid2index) + 1
            int(uid.split("U")[-1])
            rows += 1
            links += len(history) + len(impr_news)
    numeric = [int(n.split("N")[-1]) for n in nid2index if n != "NX7"]
    with open(news_file, "r", encoding="utf-8", newline="") as f:
        widths = {len(r) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)}
    result[split] = {"news": len(nid2index), "rows": rows, "links": links, "maxId": max(numeric), "csvWidths": sorted(widths), "tokens": news_title[1]}
print(json.dumps(result))
`;
    const parsed = python(script, "", [out]) as Record<string, { news: number; rows: number; links: number; maxId: number; csvWidths: number[]; tokens: string[] }>;
    expect(parsed.train).toMatchObject({ news: 8, rows: 5, maxId: 953, csvWidths: [8] });
    expect(parsed.dev).toMatchObject({ news: 6, rows: 2, maxId: 952, csvWidths: [8] });
    expect(parsed.train!.tokens).toEqual(["quoted", "31m", "enhanced", "title"]);
  });
});
