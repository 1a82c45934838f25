import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import dictionary from "../data/vocab/subcategory-dictionary.json" with { type: "json" };
import table from "../data/vocab/subcategory-words.json" with { type: "json" };
import { splitKnownWords, subcategoryByRule, subcategoryInWords } from "../src/stages/subcategory.js";

const known = async () =>
  (await readFile(join(import.meta.dirname, "fixtures", "mind-subcategories.txt"), "utf8")).split("\n").filter((l) => l && !l.startsWith("#"));

describe("subcategory words", () => {
  it("names every known MIND subcategory from the table, in known words", async () => {
    const names = await known();
    expect(names.length).toBeGreaterThan(400);
    const words = new Set(dictionary.words);
    const entries = table as Record<string, string>;
    for (const name of names) {
      expect(Object.hasOwn(entries, name), name).toBe(true);
      // No run-together name left in the words: each token is a dictionary word.
      for (const token of subcategoryInWords(name).toLowerCase().match(/[a-z]+/g) ?? []) {
        expect(words.has(token) || token === "s", `${name} → ${subcategoryInWords(name)}: '${token}'`).toBe(true);
      }
    }
  });

  it("splits the run-together names", () => {
    expect(subcategoryInWords("financenews")).toBe("finance news");
    expect(subcategoryInWords("autossports")).toBe("sports cars");
    expect(subcategoryInWords("tipsandtricks")).toBe("tips and tricks");
    expect(subcategoryInWords("newsscienceandtechnology")).toBe("science and technology");
    expect(subcategoryInWords("football_nfl")).toBe("NFL");
  });

  it("names an unknown subcategory by splitting it into known words", () => {
    expect(subcategoryInWords("lifestylepetsandgarden")).toBe("pets and garden");
    expect(subcategoryInWords("newsafricapolitics")).toBe("africa politics news");
    expect(subcategoryInWords("newsus_local")).toBe("US local news");
    expect(subcategoryInWords("soccer_mls_videos")).toBe("soccer MLS videos");
    expect(subcategoryInWords("travel-gallery")).toBe("travel gallery");
    expect(subcategoryInWords("financevideos2020")).toBe("finance videos");
    expect(subcategoryInWords("healthquizzesandtrivia")).toBe("quizzes and trivia");
    // A part with no split into known words stays whole rather than being cut at random.
    expect(subcategoryInWords("autosxyzzy")).toBe("xyzzy");
    expect(subcategoryInWords("moviesxyzzy")).toBe("xyzzy");
    expect(subcategoryInWords("qwertyuiop")).toBe("qwertyuiop");
  });

  it("prefers the fewest words, then the longer ones", () => {
    expect(splitKnownWords("yearinoffbeatgoodnews")).toEqual(["year", "in", "offbeat", "good", "news"]);
    expect(splitKnownWords("homesandproperty")).toEqual(["homes", "and", "property"]);
    expect(splitKnownWords("superfoods")).toEqual(["superfoods"]);
    expect(splitKnownWords("xq")).toBeUndefined();
    expect(subcategoryByRule("tipsandtricks")).toBe("tips and tricks");
  });
});
