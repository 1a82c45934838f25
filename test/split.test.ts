import { readdir, readFile, stat, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { portionSizes, parsePortions } from "../src/trainer/eval-split.js";
import { runCliCaptured } from "./helpers/cli.js";
import { tempDir } from "./helpers/temp.js";


const T = (h: number) => `11/15/2019 ${h}:22:32 AM`;
// Impression IDs are not line numbers here, so a mix-up of the two shows. Line 3 ends in CRLF and
// the last line has no line break: both must reach the parts as the lines they are.
const LINES = [
  `11\tU1\t${T(9)}\tN1\tN1-1 N2-0\n`,
  `12\tU2\t${T(3)}\t\tN2-1 N1-0\n`,
  `13\tU1\t${T(7)}\tN1\tN2-0 N1-1\r\n`,
  `14\tU3\t${T(1)}\tN2 N1\tN1-1\n`,
  `15\tU2\t${T(11)}\t\tN1-0 N2-1\n`,
  `16\tU4\t${T(5)}\tN1\tN2-1`,
];
const NEWS = `N1\tnews\tnewsus\tA title\t\t\t[]\t[]\nN2\tsports\tgolf\tAnother\t\t\t[]\t[]\n`;

async function fixture(list?: unknown): Promise<string> {
  const root = await tempDir("gm-split-");
  const dev = join(root, "MINDtiny_dev");
  await mkdir(dev);
  await writeFile(join(dev, "news.tsv"), NEWS);
  await writeFile(join(dev, "behaviors.tsv"), LINES.join(""));
  await writeFile(join(dev, "entity_embedding.vec"), "Q1\t0.1\n");
  if (list !== undefined) await writeFile(join(root, "imp_list.json"), JSON.stringify(list));
  return root;
}

const cli = (root: string, args: string[]) => runCliCaptured(["split", ...args], { cwd: root });
const part = (root: string, name: string) => readFile(join(root, `MINDtiny_dev_${name}`, "behaviors.tsv"), "utf8");
/** The expected file: these lines in file order, the last one given its line break. */
const expected = (ids: number[]) => ids.map((id) => LINES[id - 11]!).join("").replace(/AM\tN1\tN2-1$/, "AM\tN1\tN2-1\n");

describe("portionSizes (ONCE's splitter)", () => {
  it("cuts int(p × n / sum) for all but the last part, which takes the rest", () => {
    expect(portionSizes(73152, [5, 5])).toEqual([36576, 36576]);
    expect(portionSizes(7, [5, 5])).toEqual([3, 4]);
    expect(portionSizes(7, [1, 1, 1])).toEqual([2, 2, 3]);
    expect(portionSizes(10, [0.8, 0.2])).toEqual([8, 2]);
    expect(portionSizes(0, [5, 5])).toEqual([0, 0]);
  });

  it("rejects portions that are not positive numbers", () => {
    expect(parsePortions("5,5")).toEqual([5, 5]);
    expect(parsePortions(" 8 , 1,1")).toEqual([8, 1, 1]);
    expect(parsePortions("5,x")).toMatch(/'x' in '5,x' is not a positive number/);
    expect(parsePortions("5,0")).toMatch(/'0'/);
    expect(parsePortions("5,")).toMatch(/'' in '5,'/);
    expect(parsePortions("10")).toMatch(/at least two portions/);
  });
});

describe("genre-mind split", () => {
  it("cuts an impression list in order and sends impressions it does not name to the last part, lines byte for byte", async () => {
    // 4 listed: the first int(5 × 4 / 10) = 2 are validation; 14 and 16 are not listed → test.
    const root = await fixture([13, 11, 15, 12]);
    const r = await cli(root, ["MINDtiny_dev", "--list", "imp_list.json", "--portions", "5,5"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(await part(root, "valid")).toBe(expected([11, 13]));
    expect(await part(root, "test")).toBe(expected([12, 14, 15, 16]));
    expect(r.stdout).toContain("MINDtiny_dev: 6 impressions cut 5:5 in the order of imp_list.json");
    expect(r.stdout).toMatch(/MINDtiny_dev_valid\s+2 impressions/);
    expect(r.stdout).toMatch(/MINDtiny_dev_test\s+4 impressions/);
    expect(r.stdout).toContain("2 impressions the list does not name went to test");
    // news.tsv and the embedding file are the source's own files (hard links on one file system).
    const news = await stat(join(root, "MINDtiny_dev", "news.tsv"));
    for (const name of ["valid", "test"]) {
      const dir = join(root, `MINDtiny_dev_${name}`);
      expect((await readdir(dir)).sort()).toEqual(["behaviors.tsv", "entity_embedding.vec", "news.tsv"]);
      expect((await stat(join(dir, "news.tsv"))).ino).toBe(news.ino);
    }
    expect(r.stdout).toContain("news.tsv shared as hard links");
    // Nothing left behind but the parts.
    expect((await readdir(root)).sort()).toEqual(["MINDtiny_dev", "MINDtiny_dev_test", "MINDtiny_dev_valid", "imp_list.json"]);
  });

  it("accepts string IDs, three named portions and another --out", async () => {
    const root = await fixture(["16", "15", "14", "13", "12", "11"]);
    const r = await cli(root, ["MINDtiny_dev", "--list", "imp_list.json", "--portions", "1,1,1", "--names", "a,b,c", "--out", "parts"]);
    expect(r.code).toBe(0);
    const read = (n: string) => readFile(join(root, "parts", `MINDtiny_dev_${n}`, "behaviors.tsv"), "utf8");
    expect(await read("a")).toBe(expected([15, 16]));
    expect(await read("b")).toBe(expected([13, 14]));
    expect(await read("c")).toBe(expected([11, 12]));
  });

  it("cuts by time: earliest impressions first", async () => {
    const root = await fixture();
    const r = await cli(root, ["MINDtiny_dev", "--by-time"]);
    expect(r.code).toBe(0);
    // Hours: 11→9, 12→3, 13→7, 14→1, 15→11, 16→5. Earliest three: 14, 12, 16.
    expect(await part(root, "valid")).toBe(expected([12, 14, 16]));
    expect(await part(root, "test")).toBe(expected([11, 13, 15]));
  });

  it("cuts a seeded shuffle: the same seed gives the same parts", async () => {
    const root = await fixture();
    const parts = async (seed: string) => {
      expect((await cli(root, ["MINDtiny_dev", "--random", "--seed", seed, "--force"])).code).toBe(0);
      return [await part(root, "valid"), await part(root, "test")];
    };
    const a = await parts("7");
    expect(await parts("7")).toEqual(a);
    const lines = (t: string) => t.split(/(?<=\n)/).filter(Boolean);
    expect(lines(a[0]!)).toHaveLength(3);
    expect([...lines(a[0]!), ...lines(a[1]!)].sort()).toEqual(lines(expected([11, 12, 13, 14, 15, 16])).sort());
    const others: string[] = [];
    for (const seed of ["1", "2", "3", "4"]) others.push((await parts(seed))[0]!);
    expect(new Set([a[0], ...others]).size).toBeGreaterThan(1);
  });

  it("refuses to replace existing parts without --force, and replaces them whole with it", async () => {
    const root = await fixture([11, 12]);
    const args = ["MINDtiny_dev", "--list", "imp_list.json"];
    expect((await cli(root, args)).code).toBe(0);
    await writeFile(join(root, "MINDtiny_dev_valid", "parsed_behaviors.pkl"), "stale cache");
    const refused = await cli(root, args);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/MINDtiny_dev_valid, .*MINDtiny_dev_test already exist; pass --force/);
    expect((await cli(root, [...args, "--force"])).code).toBe(0);
    expect(await readdir(join(root, "MINDtiny_dev_valid"))).not.toContain("parsed_behaviors.pkl");
  });

  const bad: [string, unknown, string[], number, RegExp][] = [
    ["unknown impression IDs", [11, 99, 98], [], 1, /imp_list\.json: 2 of 3 listed Impression IDs are not in .*behaviors\.tsv \(e\.g\. 99, 98\)/],
    ["an ID listed twice", [11, 12, 11], [], 1, /imp_list\.json: Impression ID 11 is listed twice \(entries 1 and 3\)/],
    ["a list that is not an array", { ids: [11] }, [], 1, /imp_list\.json: expected a JSON array of Impression IDs/],
    ["an entry that is not an ID", [11, 1.5], [], 1, /imp_list\.json: entry 2 \(1\.5\) is not an Impression ID/],
    ["portions that do not parse", [11], ["--portions", "5;5"], 2, /--portions: '5;5' in '5;5' is not a positive number/],
    ["four portions without names", [11], ["--portions", "1,1,1,1"], 2, /--portions gives 4 parts: name them with --names/],
    ["names that do not fit the portions", [11], ["--names", "a,b,c"], 2, /--names gives 3 names for 2 portions/],
    ["two orders at once", [11], ["--by-time"], 2, /--list and --by-time exclude each other/],
  ];
  for (const [what, list, extra, code, message] of bad) {
    it(`stops on ${what}`, async () => {
      const root = await fixture(list);
      const r = await cli(root, ["MINDtiny_dev", "--list", "imp_list.json", ...extra]);
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(message);
      expect((await readdir(root)).sort()).toEqual(["MINDtiny_dev", "imp_list.json"]);
    });
  }

  it("stops on a missing order, a repeated Impression ID and a time it cannot read", async () => {
    const root = await fixture();
    const none = await cli(root, ["MINDtiny_dev"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--list <file\.json>, --by-time or --random/);
    await writeFile(join(root, "MINDtiny_dev", "behaviors.tsv"), LINES[0]! + LINES[1]!.replace(/^12/, "11"));
    const twice = await cli(root, ["MINDtiny_dev", "--random"]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/behaviors\.tsv:2 \[Impression ID\]: impression 11 is also on line 1/);
    await writeFile(join(root, "MINDtiny_dev", "behaviors.tsv"), LINES[0]! + LINES[1]!.replace("AM", "XM"));
    const time = await cli(root, ["MINDtiny_dev", "--by-time"]);
    expect(time.code).toBe(1);
    expect(time.stderr).toMatch(/behaviors\.tsv:2 \[Time\]: '11\/15\/2019 3:22:32 XM' is not a time/);
  });
});
