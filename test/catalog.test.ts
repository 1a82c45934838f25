import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCandidates, loadCatalog, recentClicks } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { tempDir } from "./helpers/temp.js";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");

const news = (id: string) => [id, "news", "newsus", `Title ${id}`, "", "", "[]", "[]"].join("\t");

describe("loadCatalog", () => {
  it("describes each user by their earliest non-empty history, exactly as in behaviors.tsv", async () => {
    const catalog = await loadCatalog(await resolveSplits([SAMPLE]));
    // The sample's train split (11/9..11/14) comes before dev (11/15); so does its folder.
    expect(catalog.splits.map((s) => s.name)).toEqual(["MINDsample_train", "MINDsample_dev"]);
    expect(catalog.timeline.map((s) => s.name)).toEqual(["MINDsample_train", "MINDsample_dev"]);
    const expected = new Map<string, { history: string; split?: string }>();
    for (const split of ["MINDsample_train", "MINDsample_dev"]) {
      for (const line of (await readFile(join(SAMPLE, split, "behaviors.tsv"), "utf8")).trimEnd().split("\n")) {
        const f = line.split("\t");
        const known = expected.get(f[1]!);
        if (!known || (known.split === undefined && f[3] !== "")) expected.set(f[1]!, { history: f[3]!, split: f[3] ? split : undefined });
      }
    }
    expect(catalog.users.size).toBe(expected.size);
    for (const [userId, { history, split }] of expected) {
      expect(catalog.users.get(userId)!.history.join(" "), userId).toBe(history);
      expect(catalog.users.get(userId)!.split, userId).toBe(split);
    }
    // U66101: empty in train, and dev's history is the three clicks of their train impressions.
    expect(catalog.users.get("U66101")).toEqual({ userId: "U66101", history: ["N83497", "N105984", "N36889"], split: "MINDsample_dev" });
    const fromDev = [...catalog.users.values()].filter((u) => u.split === "MINDsample_dev").length;
    expect(fromDev).toBeGreaterThan(0);
    expect(fromDev).toBeLessThan(catalog.users.size / 2);
  });

  it("reads odd IDs (leading zeros, other forms, unknown) as written", async () => {
    const dir = await tempDir("gm-catalog-");
    await mkdir(join(dir, "s"));
    await writeFile(join(dir, "s", "news.tsv"), ["N12", "N012", "X5", "N99999999999"].map(news).join("\n") + "\n");
    await writeFile(
      join(dir, "s", "behaviors.tsv"),
      "1\tU1\t11/15/2019 8:55:22 AM\tN12 N012  X5 N7 N99999999999\tN12-1 N012-0\n2\tU2\t11/15/2019 8:55:22 AM\t\tN12-1 X5-0\n",
    );
    const catalog = await loadCatalog(await resolveSplits([join(dir, "s")]));
    expect(catalog.users.get("U1")!.history).toEqual(["N12", "N012", "X5", "N7", "N99999999999"]);
    expect(catalog.users.get("U2")!.history).toEqual([]);
    expect(recentClicks(catalog.users.get("U1")!.history, 2)).toEqual(["N99999999999", "N7"]);
  });

  it("keeps histories past 65,536 distinct news, and text of any characters, exactly", async () => {
    const dir = await tempDir("gm-catalog-");
    await mkdir(join(dir, "s"));
    const ids = Array.from({ length: 70_000 }, (_, i) => `N${i * 3 + 1}`);
    const rows = ids.map(news);
    rows[69_999] = [ids[69_999], "news", "newsus", "“Café” ’s 北京", "Ünïcode abstract", "", "[]", "[]"].join("\t");
    await writeFile(join(dir, "s", "news.tsv"), rows.join("\n") + "\n");
    const history = [ids[69_999], ids[0], ids[65_536], "N2", ids[65_535]].join(" ");
    // User IDs of every form: numbered ones are kept as numbers, the others as written.
    const users = ["U1", "U012", "X9", "U5000000", "U77"];
    await writeFile(join(dir, "s", "behaviors.tsv"), users.map((u, i) => `${i + 1}\t${u}\t11/15/2019 8:55:22 AM\t${i === 0 ? history : ids[i]}\tN1-1\n`).join(""));
    const catalog = await loadCatalog(await resolveSplits([join(dir, "s")]));
    expect(catalog.users.get("U1")!.history.join(" ")).toBe(history);
    expect(catalog.news.get(ids[69_999]!)).toMatchObject({ title: "“Café” ’s 北京", abstract: "Ünïcode abstract" });
    expect([...catalog.users.keys()]).toEqual(users);
    expect([...catalog.users.entries()].map(([id, u]) => [id, u.history.length])).toEqual(users.map((u, i) => [u, i === 0 ? 5 : 1]));
    expect(catalog.users.get("U12")).toBeUndefined();
    expect(catalog.users.has("X9")).toBe(true);
    expect(catalog.users.get("U5000000")!.history).toEqual([ids[3]]);
  });
});

describe("loadCandidates", () => {
  it("gives each asked user their impressions' news in every split, each once, in the order first met", async () => {
    const catalog = await loadCatalog(await resolveSplits([SAMPLE]));
    const expected = new Map<string, Set<string>>();
    const shownTimes = new Map<string, number>();
    for (const split of ["MINDsample_train", "MINDsample_dev"]) {
      for (const line of (await readFile(join(SAMPLE, split, "behaviors.tsv"), "utf8")).trimEnd().split("\n")) {
        const f = line.split("\t");
        const set = expected.get(f[1]!) ?? new Set<string>();
        expected.set(f[1]!, set);
        for (const c of f[4]!.split(" ")) set.add(c.slice(0, c.lastIndexOf("-")));
        shownTimes.set(f[1]!, (shownTimes.get(f[1]!) ?? 0) + f[4]!.split(" ").length);
      }
    }
    // Every other user, so the table's user numbers differ from the catalog's.
    const asked = [...expected.keys()].filter((_, i) => i % 2 === 1);
    const table = await loadCandidates(catalog, new Set(asked));
    for (const userId of asked) expect(table.get(userId), userId).toEqual([...expected.get(userId)!]);
    // The sample shows some of them a news item more than once.
    expect(asked.filter((u) => shownTimes.get(u)! > expected.get(u)!.size).length).toBeGreaterThan(10);
    expect(table.get([...expected.keys()][0]!)).toBeUndefined();
    expect(table.get("U0")).toBeUndefined();
  });

  it("keeps a news shown twice once, and IDs no news.tsv has", async () => {
    const root = await tempDir();
    await mkdir(join(root, "train"));
    await writeFile(join(root, "train", "news.tsv"), ["N1", "N2", "N3"].map(news).join("\n") + "\n");
    const behaviors = [
      ["1", "U1", "11/14/2019 10:00:00 AM", "N1", "N3-1 N2-0 N3-0"],
      ["2", "U2", "11/14/2019 10:00:00 AM", "N2", "N1-1"],
      ["3", "U1", "11/14/2019 11:00:00 AM", "N1", "N9-0 N2-1 N1-0"],
    ];
    await writeFile(join(root, "train", "behaviors.tsv"), behaviors.map((r) => r.join("\t")).join("\n") + "\n");
    const catalog = await loadCatalog(await resolveSplits([join(root, "train")]), { lenient: true });
    const table = await loadCandidates(catalog, new Set(["U1", "U2"]), { lenient: true });
    expect(table.get("U1")).toEqual(["N3", "N2", "N9", "N1"]);
    expect(table.get("U2")).toEqual(["N1"]);
  });
});
