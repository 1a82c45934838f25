import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalog, recentClicks } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { tempDir } from "./helpers/temp.js";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");

const news = (id: string) => [id, "news", "newsus", `Title ${id}`, "", "", "[]", "[]"].join("\t");

describe("loadCatalog", () => {
  it("keeps each user's history exactly as in behaviors.tsv, from the split with the latest impressions", async () => {
    const catalog = await loadCatalog(await resolveSplits([SAMPLE]));
    // The sample's dev split is later than train: a user in both gets the dev history.
    const expected = new Map<string, string>();
    for (const split of ["MINDsample_train", "MINDsample_dev"]) {
      for (const line of (await readFile(join(SAMPLE, split, "behaviors.tsv"), "utf8")).trimEnd().split("\n")) {
        const f = line.split("\t");
        expected.set(f[1]!, f[3]!);
      }
    }
    expect(catalog.users.size).toBe(expected.size);
    for (const [userId, history] of expected) {
      expect(catalog.users.get(userId)!.history.join(" "), userId).toBe(history);
    }
    const trainOnly = [...catalog.users.values()].filter((u) => u.split === "MINDsample_train").length;
    expect(trainOnly).toBeGreaterThan(0);
    expect(trainOnly).toBeLessThan(catalog.users.size);
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
});
