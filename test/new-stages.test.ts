// The domain logic of describe, pick and factors without the engine: items, prompt values, parsing
// with the repair errors, and the offline answers (which must pass their own stage's parser).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCandidates, loadCatalog, type Catalog } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { categoryIndex, categoryItems, describeValues, frequentTitleWords, offlineDescription, parseDescription, whyNotDescribed } from "../src/stages/describe/index.js";
import { FACTORS, factorList, offlineNewsFactors, offlineUserFactors, parseFactors, readFactors, type FactorKind } from "../src/stages/factors/factors.js";
import { factorsNewsStage, factorsUsersStage } from "../src/stages/factors/index.js";
import { candidateGuard, coldClicks, retrievalOf } from "../src/stages/generate/index.js";
import { numberedCandidates, offlinePicks, parsePicks, pickCandidates, pickProblem } from "../src/stages/pick/index.js";
import { shingles } from "../src/stages/plain-text.js";
import { profileClicks } from "../src/stages/profile/index.js";
import { BUNDLED_PROMPTS_DIR, loadTemplate, render } from "../src/stages/template.js";
import { writeSplit } from "./helpers/split.js";
import { makeFixture } from "./stages.fixture.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");

async function fixtureCatalog(): Promise<Catalog> {
  const { data } = await makeFixture();
  return loadCatalog(await resolveSplits([data]));
}

/** The rendered system prompt's 6-word sequences: what a parser refuses to see copied. */
function instructions(file: string, values: Record<string, string> = {}, known: string[] = Object.keys(values)): Set<string> {
  return shingles(render(loadTemplate(BUNDLED_PROMPTS_DIR, { file, known, required: [] }), values));
}

const words = (n: number, w = "story") => Array.from({ length: n }, (_, i) => `${w}${i}`).join(" ");
const FIFTY = `News about the National Football League covers game results, trades, injuries and the playoff race. ${words(30)}.`;

describe("describe", () => {
  it("covers every distinct category, then every distinct subcategory, with their news and parents", async () => {
    const catalog = await fixtureCatalog();
    expect(categoryItems(catalog)).toEqual([
      "category:sports", "category:finance", "category:weather", "category:health", "category:news", "category:travel", "category:autos",
      "subcategory:football_nfl", "subcategory:markets", "subcategory:weathertopstories", "subcategory:medical", "subcategory:newsworld", "subcategory:traveltripideas", "subcategory:autosnews",
    ]);
    const nfl = categoryIndex(catalog).get("subcategory:football_nfl")!;
    expect(nfl.parents).toEqual(["sports"]);
    expect(nfl.news.map((n) => n.id)).toEqual(["N1", "N8"]);
    expect(describeValues(nfl)).toEqual({
      kind: "subcategory",
      name: "football_nfl",
      name_words: "NFL",
      parent: "sports",
      examples: "(1) Texans beat Colts in overtime thriller\n(2) Colts coach praises Texans defense after overtime loss",
    });
    expect(describeValues(categoryIndex(catalog).get("category:sports")!).name_words).toBe("");
    expect(whyNotDescribed(catalog, "subcategory:football_nfl")).toBeUndefined();
    expect(whyNotDescribed(catalog, "subcategory:golf")).toBe("no subcategory 'golf' in the given splits");
    expect(whyNotDescribed(catalog, "N1")).toMatch(/write category:<name> or subcategory:<name>/);
  });

  it("takes one plain paragraph and states what is wrong with anything else", () => {
    const system = instructions("describe.system.md");
    const ok = (raw: string) => {
      const r = parseDescription(raw, system);
      if (!r.ok) throw new Error(r.error);
      return r.value.description;
    };
    const error = (raw: string) => {
      const r = parseDescription(raw, system);
      if (r.ok) throw new Error(`accepted: ${raw}`);
      return r.error;
    };
    expect(ok(FIFTY)).toBe(FIFTY);
    // Near misses are repaired: a label, wrapping quotes, a line wrapped in the middle, a tab.
    expect(ok(`Description: "${FIFTY}"`)).toBe(FIFTY);
    expect(ok(`Here is a neutral description of football_nfl:\n${FIFTY}`)).toBe(FIFTY);
    expect(ok(FIFTY.replace(" covers ", "\ncovers ").replace(" trades", "\ttrades"))).toBe(FIFTY);
    expect(error(`${FIFTY}\n\nI hope this helps.`)).toMatch(/2 paragraphs; answer with the description only: one paragraph of plain text, with no second paragraph/);
    expect(error(JSON.stringify({ description: FIFTY }))).toMatch(/JSON or code/);
    expect(error(`- game results\n- trades\n- ${words(20)}`)).toMatch(/contains markup \(a Markdown heading, quote or list marker\)/);
    expect(error(`# NFL\n${FIFTY}`)).toMatch(/markup/);
    expect(error(`${FIFTY} <b>NFL</b>`)).toMatch(/markup \(an HTML tag\)/);
    expect(error(`Sure! ${FIFTY}`)).toMatch(/a reply, not the description/);
    expect(error(`Name: football_nfl. ${FIFTY}`)).toMatch(/repeats the input labels/);
    expect(error(`Stay neutral and general: describe the whole category, not the example titles. ${words(20)}`)).toMatch(/repeats the instructions/);
    expect(error("Football news.")).toBe("the description is too short (2 words); write 15 to 120 words");
    expect(error(words(121))).toMatch(/too long \(121 words\)/);
    expect(error("  \n ")).toMatch(/empty/);
  });

  it("offline: the name in words, its category and its most frequent title words, a valid answer for every item of the sample", async () => {
    const catalog = await fixtureCatalog();
    const nfl = categoryIndex(catalog).get("subcategory:football_nfl")!;
    // Both titles say texans, colts, overtime; "football" and "nfl" are the name's own words.
    expect(frequentTitleWords(nfl).slice(0, 3)).toEqual(["texans", "colts", "overtime"]);
    expect(offlineDescription(nfl)).toBe(
      "NFL is a subcategory of news within the sports category. Stories in it most often mention texans, colts, overtime, beat, thriller, coach, praises and defense. It is described here from the titles of 2 stories.",
    );
    const sample = await loadCatalog(await resolveSplits([SAMPLE]));
    const system = instructions("describe.system.md");
    const items = [...categoryIndex(sample).values()];
    expect(items.length).toBeGreaterThan(50);
    for (const item of items) expect(parseDescription(offlineDescription(item), system)).toMatchObject({ ok: true });
  });
});

describe("pick", () => {
  it("offers news of the user's source split only, never read or shown, nor a near copy of either", async () => {
    const root = await mkdtemp(join(tmpdir(), "gm-pick-"));
    try {
      const row = (id: string, title: string, cat = "sports") => [id, cat, "x", title, "", "", "[]", "[]"];
      const news = [
        row("N1", "Texans beat Colts in overtime thriller"),
        row("N2", "Texans quarterback injured in overtime win"),
        row("N3", "Colts coach fired after loss to Texans"),
        // A near copy of N3 (a candidate of U1's impressions) under another ID.
        row("N4", "Colts coach fired after loss to the Texans"),
        // A near copy of N1, which U1 read.
        row("N5", "Texans beat the Colts in an overtime thriller"),
        row("N6", "Texans defense dominates Colts"),
        row("N7", "Markets rally on rate cut", "finance"),
      ];
      await writeSplit(join(root, "train"), news, [["1", "U1", "11/14/2019 10:00:00 AM", "N1", "N3-1 N7-0"]]);
      // N8 is in dev only: not a candidate for a user asked from train.
      await writeSplit(join(root, "dev"), [...news, row("N8", "Texans and Colts trade barbs before overtime rematch")], [["2", "U1", "11/15/2019 10:00:00 AM", "N1 N3", "N6-1"]]);
      const catalog = await loadCatalog(await resolveSplits([root]));
      const history = coldClicks(catalog, "U1", { coldMax: 5 })!;
      const shown = (await loadCandidates(catalog, new Set(["U1"]))).get("U1")!;
      expect([...shown].sort()).toEqual(["N3", "N6", "N7"]);
      const candidates = pickCandidates(retrievalOf(catalog).index(), catalog, candidateGuard(catalog), history, shown, "train", 20);
      expect(candidates.map((n) => n.id)).toEqual(["N2"]);
      expect(catalog.news.get("N8")!.inSplits).toEqual(["dev"]);
      expect(catalog.news.get("N1")!.inSplits).toEqual(["train", "dev"]);
      expect(pickCandidates(retrievalOf(catalog).index(), catalog, candidateGuard(catalog), history, [], "dev", 2).map((n) => n.id)).toEqual(["N8", "N2"]);
      expect(numberedCandidates(candidates)).toBe("[1] (sports) Texans quarterback injured in overtime win");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("takes exactly k distinct candidate numbers, best first, and names what is wrong", () => {
    const candidates = ["N10", "N20", "N30", "N40"];
    expect(parsePicks('{"picks": [3, 1]}', candidates, 2)).toEqual({ ok: true, value: { picks: ["N30", "N10"] } });
    expect(parsePicks('Here you go: ```json\n[2, "4"]\n```', candidates, 2)).toEqual({ ok: true, value: { picks: ["N20", "N40"] } });
    expect(parsePicks('{"picks": ["[4]"]}', candidates, 1)).toEqual({ ok: true, value: { picks: ["N40"] } });
    expect(parsePicks('{"picks": [3, 5]}', candidates, 2)).toEqual({ ok: false, error: "5 is not a candidate number (1 to 4)" });
    expect(parsePicks('{"picks": [3, 3]}', candidates, 2)).toEqual({ ok: false, error: "3 is picked more than once; the picks must be distinct" });
    expect(parsePicks('{"picks": [3, 1, 2]}', candidates, 2)).toEqual({ ok: false, error: "expected exactly 2 picks, got 3" });
    expect(parsePicks('{"picks": [1.5, "N10"]}', candidates, 2)).toEqual({ ok: false, error: '1.5 is not a candidate number; "N10" is not a candidate number' });
    expect(parsePicks('{"choice": 1}', candidates, 1)).toMatchObject({ ok: false, error: expect.stringContaining('{"picks": [..]}') });
    expect(parsePicks("three and one", candidates, 2)).toMatchObject({ ok: false, error: expect.stringContaining("not valid JSON") });
    expect(parsePicks(offlinePicks(3), candidates, 3)).toEqual({ ok: true, value: { picks: ["N10", "N20", "N30"] } });
  });

  it("refuses a pick the user was shown, or a near copy of one (rule 4 for shared and stored answers)", async () => {
    const catalog = await fixtureCatalog();
    const guard = candidateGuard(catalog);
    expect(pickProblem({ picks: ["N5", "N9"] }, ["N7", "N9"], guard)).toBe("pick 2 is a news story this user was already shown; choose another candidate");
    // N9 "Stock market rally continues for third day" is no near copy of N2 "Stocks rally as the Fed holds rates steady".
    expect(pickProblem({ picks: ["N9"] }, ["N2"], guard)).toBeUndefined();
  });
});

describe("factors", () => {
  const systemOf = (kind: FactorKind) => instructions(`factors.${kind === "user" ? "users" : "news"}.system.md`, { factors: factorList(FACTORS, kind), example: "{}" });

  it("reads data/vocab/factors.json and refuses a bad edit naming the field", () => {
    expect(FACTORS.map((f) => f.name)).toEqual(["topics", "regions", "people_and_organisations", "event_type", "tone", "format"]);
    expect(() => readFactors({ factors: [{ name: "Event Type", user: "u", news: "n" }] })).toThrow(/data\/vocab\/factors.json: factors.0.name: a factor name is lower-case/);
    expect(() => readFactors({ factors: [{ name: "a", user: "u", news: "n" }, { name: "a", user: "u", news: "n" }] })).toThrow(/factor names must be distinct/);
    expect(() => readFactors({ factors: [{ name: "a", user: "u", news: "n", offline: { from: "keywords", keywords: {} } }] })).toThrow(/factors.0.offline.default/);
  });

  it("covers the users profile asks (factors-users) and every news item with a title (factors-news)", async () => {
    const catalog = await fixtureCatalog();
    const recent = { recent: 30 };
    expect(factorsUsersStage.items(catalog, recent)).toEqual(["U1", "U2", "U4"]);
    expect(factorsNewsStage.items(catalog, {})).toEqual(["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"]);
    expect(factorsUsersStage.whyNot(catalog, recent, "U3")).toMatch(/empty history in every split: factors-users covers users with clicks only/);
    expect(factorsNewsStage.whyNot(catalog, {}, "N99")).toBe("no news N99 in the given splits");
    expect(factorsNewsStage.whyNot(catalog, {}, "N1")).toBeUndefined();
  });

  it("takes one short text per factor, normalizes near misses and names every problem", () => {
    const system = systemOf("news");
    const full = { topics: "NFL football", regions: "Houston, Texas", people_and_organisations: "Houston Texans, Indianapolis Colts", event_type: "game result", tone: "neutral", format: "news report" };
    expect(parseFactors(JSON.stringify(full), FACTORS, "news", system)).toEqual({ ok: true, value: full });
    // Keys as a label, a list for a text, "N/A" for nothing.
    const loose = { Topics: ["NFL", "football"], Regions: "N/A", "People and organisations": "Houston Texans", "event type": "game result", tone: "neutral", format: "news report" };
    expect(parseFactors(JSON.stringify(loose), FACTORS, "news", system)).toEqual({ ok: true, value: { ...full, topics: "NFL, football", regions: "none", people_and_organisations: "Houston Texans" } });
    const bad = { topics: "", regions: 3, people_and_organisations: "the people, teams, companies and institutions in the story", event_type: words(41), tone: "I'm sorry, I cannot tell" };
    expect(parseFactors(JSON.stringify(bad), FACTORS, "news", system)).toEqual({
      ok: false,
      error:
        '"format" is missing; give every factor, "none" when nothing applies; "topics" is empty; write "none" when nothing applies; "people_and_organisations" repeats the instructions; state the people and organisations itself; "event_type" is too long (41 words); keep it under 40 words; "tone" is a reply about the task; state the tone itself',
    });
    expect(parseFactors('["NFL"]', FACTORS, "news", system)).toMatchObject({ ok: false, error: expect.stringContaining('{"topics": "…", "regions": "…"') });
  });

  it("offline: per factor from the subcategory, the entities with the gazetteer and title words; valid answers for all of the sample", async () => {
    const catalog = await fixtureCatalog();
    expect(offlineNewsFactors(catalog.news.get("N1")!)).toEqual({
      topics: "NFL and sports",
      regions: "Houston and Texas",
      people_and_organisations: "Houston Texans",
      event_type: "game result",
      tone: "neutral",
      format: "news report",
    });
    // U2's 7 clicks each name other topics and events: ties go to the most recent click (N7, N6, …).
    expect(offlineUserFactors(profileClicks(catalog, "U2", 30))).toMatchObject({ topics: "cars, autos and trip ideas", event_type: "research finding, severe weather and market move", tone: "neutral" });
    const sample = await loadCatalog(await resolveSplits([SAMPLE]));
    const [user, news] = [systemOf("user"), systemOf("news")];
    for (const id of factorsUsersStage.items(sample, { recent: 30 })) {
      const answer = offlineUserFactors(profileClicks(sample, id, 30));
      expect(parseFactors(JSON.stringify(answer), FACTORS, "user", user)).toEqual({ ok: true, value: answer });
    }
    for (const id of factorsNewsStage.items(sample, {})) {
      const answer = offlineNewsFactors(sample.news.get(id)!);
      expect(parseFactors(JSON.stringify(answer), FACTORS, "news", news)).toEqual({ ok: true, value: answer });
    }
  });
});
