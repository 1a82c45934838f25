// `import category-descriptions`: the published JSON array read with each entry's line, and every
// description judged by describe's own parser into an outcome per category item.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { arrayElements, judgeDescriptions, readCategoryDescriptions } from "../src/import/category-descriptions.js";
import { loadCatalog } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { parseDescription } from "../src/stages/describe/index.js";
import { makeFixture, NEWS, type NewsLine } from "./stages.fixture.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function file(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gm-import-desc-"));
  dirs.push(dir);
  const path = join(dir, "category_description_gpt4.json");
  await writeFile(path, text);
  return path;
}

// Written for this test in the published file's shape: a JSON array indented by 4, one object per category name.
const LONG = "covers the professional league of American football: game results, player transactions, injuries, coaching changes, the draft and the playoff race, with previews and analysis of the week's games and the teams' seasons.";
const PUBLISHED = `[
    {
        "category": "football_nfl",
        "description": "The football_nfl category ${LONG}"
    },
    {
        "category": "sports",
        "description": "Sports news \\"${LONG}\\""
    },
    {
        "category": "golf",
        "description": "Golf news covers tournaments, players and rankings of the professional tours, with the majors and equipment news along the way."
    },
    {
        "category": "markets",
        "description": "Markets."
    },
    {
        "category": "football_nfl",
        "description": "NFL news ${LONG}"
    },
    {
        "category": 7,
        "description": "no name"
    },
    {
        "category": "finance",
        "description": "Finance news ${LONG}"
    }
]
`;

describe("import category-descriptions", () => {
  it("finds the line each entry starts on", () => {
    expect(arrayElements(PUBLISHED).map((e) => e.line)).toEqual([2, 6, 10, 14, 18, 22, 26]);
    expect(arrayElements('[{"a": "x\\"[{"}, 3,\n "s", [1, {"b": 2}]]')).toEqual([{ start: 1, line: 1 }, { start: 17, line: 1 }, { start: 21, line: 2 }, { start: 26, line: 2 }]);
  });

  it("judges every description with describe's parser as its subcategory's; the last valid answer of an item wins", async () => {
    // "sports" is a category and, for N10, a subcategory too, as in MIND; "finance" is a category only.
    const both: NewsLine = ["N10", "sports", "sports", "Season preview of every league", "", "https://x/10", "[]", "[]"];
    const { data } = await makeFixture({ trainNews: [...NEWS, both], devNews: [...NEWS, both] });
    dirs.push(join(data, ".."));
    const catalog = await loadCatalog(await resolveSplits([data]));
    const path = await file(PUBLISHED);
    const read = await readCategoryDescriptions(path, "gpt4.json");
    expect(read.entries).toBe(7);
    expect(read.problems).toEqual([{ origin: { file: "gpt4.json", line: 22 }, message: "field 'category' is missing or not a non-empty string" }]);
    const judged = judgeDescriptions(read, catalog, (_id, raw) => parseDescription(raw, new Set()));
    expect(judged.refused).toEqual({ "malformed entry": 1, "not a subcategory of --data": 2, "invalid answer": 1, "answered again later": 1 });
    expect(judged.unknownNames).toEqual(["golf", "finance (a category only)"]);
    expect(judged.imported).toBe(2);
    const byId = new Map(judged.items.map((i) => [i.itemId, i]));
    // Yada & Yamana described subcategories: "sports" is not filed as the category of that name.
    expect([...byId.keys()]).toEqual(["subcategory:football_nfl", "subcategory:sports", "subcategory:markets"]);
    expect(byId.get("subcategory:football_nfl")).toMatchObject({ origins: [{ file: "gpt4.json", line: 18 }], output: { description: `NFL news ${LONG}` } });
    // Quotes inside a description are its own; only wrapping quotes would be stripped.
    expect(byId.get("subcategory:sports")!.output!.description).toBe(`Sports news "${LONG}"`);
    expect(byId.get("subcategory:markets")).toMatchObject({ error: "gpt4.json:14: the description is too short (1 words); write 15 to 120 words", answers: ["Markets."] });
  });

  it("stops on a file that is not a JSON array, naming the file and line", async () => {
    await expect(readCategoryDescriptions(await file('[\n  {"category": "a",\n  "description": }\n]'))).rejects.toThrow(/category_description_gpt4.json:2: not valid JSON/);
    await expect(readCategoryDescriptions(await file('{"category": "a"}'))).rejects.toThrow(/expected a JSON array of \{"category": …, "description": …\}/);
    await expect(readCategoryDescriptions(join(tmpdir(), "gm-no-such-file.json"))).rejects.toThrow(/gm-no-such-file.json: no such file/);
  });
});
