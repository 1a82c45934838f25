// Stage logic without the engine: selection, parsing, normalization and the offline answers.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCandidates, loadCatalog, type Catalog } from "../src/mind/catalog.js";
import { resolveSplits } from "../src/mind/splits.js";
import { stateOfPlace } from "../src/stages/entities.js";
import { coldClicks, generateOptions, generateStage, offlineGenerated, parseGenerated } from "../src/stages/generate/index.js";
import { GenerateOutput } from "../src/stages/generate/output.js";
import { jaccard, NEAR_COPY_JACCARD, normalizeCategory, normalizeRegion, normalizeTopic, titleTokens } from "../src/stages/normalize.js";
import { extractJson } from "../src/util/json.js";
import { selectItems, shardOf } from "../src/stages/options.js";
import { offlineProfile, onProfileLists, parseProfile, profileClicks, profileStage } from "../src/stages/profile/index.js";
import { ProfileOutput } from "../src/stages/profile/output.js";
import type { Stage } from "../src/stages/stage.js";
import { offlineSummary, parseSummary, summarizeStage } from "../src/stages/summarize/index.js";
import { SummarizeOutput } from "../src/stages/summarize/output.js";
import { BUNDLED_PROMPTS_DIR, loadTemplate } from "../src/stages/template.js";
import { TfIdfIndex } from "../src/stages/tfidf.js";
import { TOPICS, US_STATES } from "../src/stages/vocab.js";
import { makeFixture } from "./stages.fixture.js";

async function fixtureCatalog(): Promise<Catalog> {
  const { data } = await makeFixture();
  return loadCatalog(await resolveSplits([data]));
}

/** Each stage's options without flags: its defaults. */
const DEFAULTS = { profile: profileStage.options({}), generate: generateOptions({}) };

function requestsOf<Opts, O, P>(stage: Stage<Opts, O, P>, catalog: Catalog, options: Opts = stage.options({}), ids?: string[]) {
  const specs = stage.templates(options);
  const input = { catalog, options, system: loadTemplate(BUNDLED_PROMPTS_DIR, specs.system), user: loadTemplate(BUNDLED_PROMPTS_DIR, specs.user) };
  return [...stage.requests(input, ids ?? stage.items(catalog, options), undefined)];
}

const NO_INSTRUCTIONS = new Set<string>();

describe("item selection", () => {
  it("summarize asks every distinct news ID once, profile every user with clicks, generate the cold users", async () => {
    const catalog = await fixtureCatalog();
    expect(summarizeStage.items(catalog, {}).sort()).toEqual(["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"]);
    expect(profileStage.items(catalog, DEFAULTS.profile).sort()).toEqual(["U1", "U2", "U4"]);
    expect(generateStage.items(catalog, DEFAULTS.generate).sort()).toEqual(["U1", "U4"]);
    expect(generateStage.items(catalog, { ...DEFAULTS.generate, coldMax: 7 }).sort()).toEqual(["U1", "U2", "U4"]);
    expect(generateStage.whyNot(catalog, DEFAULTS.generate, "U2")).toMatch(/7 clicks in train, their earliest non-empty history: not a cold user/);
    expect(generateStage.whyNot(catalog, DEFAULTS.generate, "U3")).toMatch(/empty history in every split/);
    expect(profileStage.whyNot(catalog, DEFAULTS.profile, "U9")).toMatch(/no user U9/);
  });

  it("describes a user by their earliest non-empty history, most recent click first, and records it as the source", async () => {
    const catalog = await fixtureCatalog();
    // train (11/14) says N1 N2; dev (11/15) says N1 N2 N6, N6 being a click of U1's train impressions.
    expect(profileClicks(catalog, "U1", 30).map((n) => n.id)).toEqual(["N2", "N1"]);
    expect(profileClicks(catalog, "U2", 3).map((n) => n.id)).toEqual(["N7", "N6", "N5"]);
    const [req] = requestsOf(profileStage, catalog, DEFAULTS.profile, ["U1"]);
    expect(req!.user).toContain("(1) Stocks rally as the Fed holds rates steady\n(2) Texans beat");
    expect(req!.source).toEqual({ split: "train", clicks: ["N2", "N1"] });
    const [gen] = requestsOf(generateStage, catalog, DEFAULTS.generate, ["U1", "U4"]);
    expect(gen!.user).toContain("(1) (finance) Stocks rally as the Fed holds rates steady\n(2) (sports) Texans beat");
    expect(requestsOf(generateStage, catalog, DEFAULTS.generate, ["U4"])[0]!.source).toEqual({ split: "dev", clicks: ["N5"] });
  });

  it("shards partition the items exactly and do not depend on order", () => {
    const ids = Array.from({ length: 500 }, (_, i) => `U${i * 7 + 1}`);
    const shards = [1, 2, 3].map((k) => selectItems(ids, { k, n: 3 }, undefined));
    expect(shards.flat().sort()).toEqual([...ids].sort());
    expect(new Set(shards.flat()).size).toBe(ids.length);
    for (const s of shards) expect(s.length).toBeGreaterThan(100);
    expect(selectItems([...ids].reverse(), { k: 2, n: 3 }, undefined).sort()).toEqual([...shards[1]!].sort());
    // The partition is pinned: a sharded run that resumes after an upgrade must find its items where they were.
    expect(["U1", "U2", "U3", "U4", "U5", "U6", "N1", "N2"].map((id) => shardOf(id, 3))).toEqual([0, 0, 0, 0, 1, 0, 2, 0]);
    expect(["U1", "U2", "U3", "U4"].map((id) => shardOf(id, 1000))).toEqual([527, 424, 458, 227]);
    expect(selectItems(ids, { k: 1, n: 3 }, 5)).toEqual(shards[0]!.slice(0, 5));
  });
});

describe("summarize answers", () => {
  const original = "Texans beat Colts";
  it("strips a [newtitle] marker, a label and wrapping quotes", () => {
    expect(parseSummary("[newtitle] Houston Texans beat Indianapolis Colts 30-23", original, NO_INSTRUCTIONS)).toEqual({ ok: true, value: { title: "Houston Texans beat Indianapolis Colts 30-23" } });
    expect(parseSummary('Enhanced title: "Houston Texans beat Colts"\n', original, NO_INSTRUCTIONS)).toEqual({ ok: true, value: { title: "Houston Texans beat Colts" } });
    expect(parseSummary("Here's the enhanced title: Houston Texans beat Colts", original, NO_INSTRUCTIONS)).toMatchObject({ value: { title: "Houston Texans beat Colts" } });
    expect(parseSummary("Rewritten headline: Texans top Colts", original, NO_INSTRUCTIONS)).toMatchObject({ value: { title: "Texans top Colts" } });
    expect(parseSummary("'Joker' beats 'Batman' at the box office", original, NO_INSTRUCTIONS)).toMatchObject({ value: { title: "'Joker' beats 'Batman' at the box office" } });
  });

  it("rejects empty, multi-line, label-echoing, instruction-copying and overlong answers", () => {
    const bad = (raw: string, instructions = NO_INSTRUCTIONS) => {
      const r = parseSummary(raw, original, instructions);
      expect(r.ok).toBe(false);
      return r.ok ? "" : r.error;
    };
    expect(bad("  \n ")).toMatch(/empty/);
    expect(bad("Houston wins\nThis title is clearer because…")).toMatch(/2 lines/);
    expect(bad("Title: Texans beat Colts")).toMatch(/input labels/);
    expect(bad("I'm sorry, but I can't rewrite this title.")).toMatch(/a reply, not a title/);
    expect(bad("Sure! Houston Texans beat Colts")).toMatch(/a reply, not a title/);
    expect(bad("Texans beat Colts. Abstract: Houston won")).toMatch(/input labels/);
    const system = loadTemplate(BUNDLED_PROMPTS_DIR, summarizeStage.templates({}).system).text;
    const [req] = requestsOf(summarizeStage, { splits: [], timeline: [], users: new Map(), news: new Map([["N1", { id: "N1", category: "sports", subcategory: "x", title: original, abstract: "", url: "", titleEntities: "", abstractEntities: "", split: "s", inSplits: ["s"] }]]) });
    const sentence = system.replace(/\s+/g, " ").split(". ")[1]!;
    expect(sentence.split(" ").length).toBeLessThan(30);
    expect(req!.parse(sentence)).toMatchObject({ ok: false, error: expect.stringMatching(/repeats the instructions/) });
    expect(bad(Array.from({ length: 60 }, (_, i) => `word${i}`).join(" "))).toMatch(/too long/);
  });

  it("reads a well-formed {\"title\": X} as X, bare, fenced or labelled", () => {
    const title = (raw: string) => parseSummary(raw, original, NO_INSTRUCTIONS);
    expect(title('{"title": "Houston Texans beat Colts"}')).toEqual({ ok: true, value: { title: "Houston Texans beat Colts" } });
    expect(title('```json\n{\n  "title": "Houston Texans beat Colts"\n}\n```')).toEqual({ ok: true, value: { title: "Houston Texans beat Colts" } });
    expect(title('Enhanced title: {"headline": "Texans top Colts"}')).toEqual({ ok: true, value: { title: "Texans top Colts" } });
  });

  it("rejects any other JSON-looking or markup answer, so it is re-asked", () => {
    const error = (raw: string) => {
      const r = parseSummary(raw, original, NO_INSTRUCTIONS);
      expect(r.ok, raw).toBe(false);
      return r.ok ? "" : r.error;
    };
    for (const raw of ['{"title": "unterminated', '{"title": "Texans", "note": "clearer"}', '["Texans beat Colts"]', '"title": "Texans beat Colts"', 'Texans beat Colts"}', '{"title": "{\\"title\\": \\"x\\"}"}', '{"summary": "Texans beat Colts"}']) {
      expect(error(raw)).toMatch(/JSON/);
    }
    expect(error("<b>Texans</b> beat Colts")).toMatch(/markup \(an HTML tag\)/);
    expect(error("Texans &amp; Colts meet")).toMatch(/markup \(an HTML entity\)/);
    expect(error("**Texans** beat Colts")).toMatch(/Markdown bold/);
    expect(error("[Texans](https://x.test) beat Colts")).toMatch(/Markdown link/);
    expect(error("# Texans beat Colts")).toMatch(/heading/);
    expect(error("```\nTexans beat Colts\n```")).toMatch(/code block/);
  });

  it("keeps brackets, quotes and colons that titles have, and what the original itself contains", () => {
    const ok = (raw: string, from = original) => expect(parseSummary(raw, from, NO_INSTRUCTIONS)).toEqual({ ok: true, value: { title: raw } });
    ok('"Frozen 2": Elsa returns to theaters');
    ok("[Photos] Texans beat Colts in overtime");
    ok("Trump: 'We will win' in Texas");
    ok("Q&A: Texans coach on the win (NFL)");
    ok("Texans &amp; Colts: a rivalry", "Texans &amp; Colts");
  });

  it("offline: the title plus what the row knows, one line that passes validation", async () => {
    const catalog = await fixtureCatalog();
    expect(offlineSummary(catalog.news.get("N1")!)).toBe("Texans beat Colts in overtime thriller (Houston Texans, Texas; NFL)");
    expect(offlineSummary(catalog.news.get("N6")!)).toBe("Ten weekend trips from Austin, Texas (trip ideas)");
    expect(offlineSummary(catalog.news.get("N5")!)).toBe("Brexit talks stall again in Brussels (world news)");
  });
});

describe("profile answers", () => {
  it("normalizes near misses, dedupes in order, accepts fenced JSON", () => {
    const r = parseProfile('Here it is:\n```json\n{"topics": ["Tech", "FINANCE", "Disaster", "technology", "social-media"], "regions": ["TX", "texas", "Georgia (U.S. state)", "N.Y."]}\n```');
    expect(r).toEqual({ ok: true, value: { topics: ["technology", "finance", "disasters", "social media"], regions: ["Texas", "Georgia", "New York"] } });
    expect(parseProfile('{"topics": ["health"], "regions": null}')).toEqual({ ok: true, value: { topics: ["health"], regions: [] } });
    expect(parseProfile('{"topics": "health, economics"}')).toEqual({ ok: true, value: { topics: ["health", "economy"], regions: [] } });
  });

  it("rejects values outside the vocabularies with an error that names them and the allowed values", () => {
    const r = parseProfile('{"topics": ["sports", "health", "politics"], "regions": ["Houston", "D.C."]}');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toContain('"sports", "politics" are not topics');
    expect(r.error).toContain("international news");
    expect(r.error).toContain('"Houston", "D.C." are not US states');
    expect(parseProfile('{"topics": [], "regions": []}')).toMatchObject({ ok: false, error: expect.stringMatching(/at least one topic/) });
    expect(parseProfile("I think the user likes sports")).toMatchObject({ ok: false, error: expect.stringMatching(/not valid JSON/) });
    expect(parseProfile('{"interests": ["health"]}')).toMatchObject({ ok: false });
  });

  it("sorts values by the lists in one place for the parser and the import: on them normalized and in order, off them as written", () => {
    expect(onProfileLists({ topics: ["sports", "Tech", "FINANCE", "politics"], regions: ["United States", "TX", "Calif."] })).toEqual({
      topics: ["technology", "finance"],
      regions: ["Texas", "California"],
      offTopics: ["sports", "politics"],
      offRegions: ["United States"],
    });
    // The import hands the values on the lists to the parser normalized: each must be its own normal form.
    expect(onProfileLists({ topics: TOPICS, regions: US_STATES })).toEqual({ topics: [...TOPICS], regions: [...US_STATES], offTopics: [], offRegions: [] });
  });

  it("maps regions and topics with the data tables", () => {
    expect(normalizeRegion("Washington, D.C.")).toBeUndefined();
    expect(normalizeRegion("Calif.")).toBe("California");
    expect(normalizeRegion("State of Ohio")).toBe("Ohio");
    expect(normalizeTopic("International")).toBe("international news");
    expect(normalizeTopic("sport")).toBeUndefined();
    expect(normalizeCategory("Food & Drink")).toBe("foodanddrink");
    expect(normalizeCategory("North America")).toBe("northamerica");
    expect(normalizeCategory("TV")).toBe("tv");
    expect(normalizeCategory("politics")).toBeUndefined();
    expect(stateOfPlace("Austin, Texas")).toBe("Texas");
    expect(stateOfPlace("Washington, D.C.")).toBeUndefined();
    expect(stateOfPlace("New York City")).toBe("New York");
  });

  it("offline: topics voted by categories and title words, regions from place entities", async () => {
    const catalog = await fixtureCatalog();
    const u2 = offlineProfile(profileClicks(catalog, "U2", 30));
    expect(ProfileOutput.parse(u2)).toEqual(u2);
    // A subcategory/category vote is 1, a title keyword ("Brexit", "cancer", "Stocks") adds 0.5;
    // ties go to the more recent click (N7 autos, N6 travel, N5 world, N4 medical, …).
    expect(u2.topics).toEqual(["international news", "health", "finance", "transportation", "travel"]);
    expect(u2.regions).toEqual(["Texas", "Colorado"]);
    expect(offlineProfile([])).toEqual({ topics: ["culture"], regions: [] });
  });
});

describe("generate answers", () => {
  const history = [{ id: "N1", category: "sports", subcategory: "", title: "Texans beat Colts in overtime thriller", abstract: "", url: "", titleEntities: "", abstractEntities: "", split: "s", inSplits: ["s"] }];
  const check = { k: 2, history, retrievable: (id: string) => id === "N9" };
  const item = (title: string, category = "sports") => ({ title, abstract: "A story.", category });

  it("accepts k different items and normalizes the category", () => {
    const r = parseGenerated(JSON.stringify({ items: [item("Colts sign new kicker", "Sports"), item("Ten holiday cookie recipes", "Food & Drink")] }), check);
    expect(r).toEqual({ ok: true, value: { items: [item("Colts sign new kicker"), item("Ten holiday cookie recipes", "foodanddrink")] } });
    expect(GenerateOutput.parse(r.ok ? r.value : {})).toBeTruthy();
  });

  it("rejects a wrong count, near copies of the history or of each other, and unknown categories", () => {
    const err = (value: unknown) => {
      const r = parseGenerated(JSON.stringify(value), check);
      return r.ok ? "" : r.error;
    };
    expect(err({ items: [item("One story")] })).toMatch(/exactly 2 items, got 1/);
    expect(err({ items: [item("The Texans beat the Colts in an overtime thriller"), item("Other story here")] })).toMatch(/item 1 is a near copy of the read title \(1\)/);
    expect(err({ items: [item("Storm hits Denver on Friday"), item("Storm hits Denver Friday night")] })).toMatch(/item 2 is a near copy of item 1/);
    expect(err({ items: [item("A story", "politics"), item("Other story")] })).toMatch(/category "politics" is not one of: lifestyle/);
    expect(err({ items: [{ title: "x" }, item("y")] })).toMatch(/JSON object \{"items"/);
  });

  it("calls a title a near copy at a Jaccard similarity of exactly 0.6, not below", () => {
    const err = (value: unknown) => {
      const r = parseGenerated(JSON.stringify(value), check);
      return r.ok ? "" : r.error;
    };
    const words = (t: string) => titleTokens(t);
    // The read title's words: texans beat colts overtime thriller. 3 shared of 5 = 0.6; 3 of 6 = 0.5.
    expect(jaccard(words("Texans beat Colts"), words(history[0]!.title))).toBe(NEAR_COPY_JACCARD);
    expect(err({ items: [item("Texans beat Colts"), item("Cookie recipes for the holidays")] })).toMatch(/item 1 is a near copy of the read title \(1\)/);
    expect(jaccard(words("Texans beat Colts again"), words(history[0]!.title))).toBe(0.5);
    expect(err({ items: [item("Texans beat Colts again"), item("Cookie recipes for the holidays")] })).toBe("");
    // Between the items: 3 shared of 5 words is a copy, 3 of 6 is not.
    expect(err({ items: [item("Storm hits Denver Friday night"), item("Storm hits Denver")] })).toMatch(/item 2 is a near copy of item 1/);
    expect(err({ items: [item("Storm hits Denver Friday night"), item("Storm hits Denver suburbs")] })).toBe("");
  });

  it("keeps retrievedFrom only when it names a news item of the source split", () => {
    const r = parseGenerated(JSON.stringify([{ ...item("Colts sign kicker"), retrievedFrom: "N9" }, { ...item("Cookie recipes"), retrievedFrom: "N404" }]), check);
    expect(r.ok && r.value.items.map((i) => i.retrievedFrom)).toEqual(["N9", undefined]);
  });

  it("offline: the most similar unread news by TF-IDF, never a near copy, deterministic", async () => {
    const catalog = await fixtureCatalog();
    const index = new TfIdfIndex([...catalog.news.values()].map((n) => ({ id: n.id, text: `${n.title} ${n.abstract}` })));
    const hist = coldClicks(catalog, "U4", DEFAULTS.generate)!;
    const split = catalog.timeline[0]!.name;
    const out = offlineGenerated(index, catalog, hist, 2, split);
    expect(out.items).toHaveLength(2);
    expect(out.items.every((i) => i.retrievedFrom && i.retrievedFrom !== "N5")).toBe(true);
    expect(offlineGenerated(index, catalog, hist, 2, split)).toEqual(out);
    // A reader of N6, N2, N1 (Texans beat Colts…): N8 is about the same game; N3 shares "weekend" with N6.
    const read = ["N6", "N2", "N1"].map((id) => catalog.news.get(id)!);
    expect(offlineGenerated(index, catalog, read, 2, split).items.map((i) => i.retrievedFrom)).toEqual(["N8", "N3"]);
    // Chained on a finance profile, N9 (markets) overtakes N3 (a snowstorm) by the topic boost.
    expect(offlineGenerated(index, catalog, read, 2, split, ["finance"]).items.map((i) => i.retrievedFrom)).toEqual(["N8", "N9"]);
    // U1 read N1 and N2: N8 and N9 come first, but U1 was shown N9 (and N7, N3, N4), so it is never picked.
    const u1 = coldClicks(catalog, "U1", DEFAULTS.generate)!;
    expect(offlineGenerated(index, catalog, u1, 2, split).items.map((i) => i.retrievedFrom)).toEqual(["N8", "N9"]);
    const shown = (await loadCandidates(catalog, new Set(["U1"]))).get("U1")!;
    expect([...shown].sort()).toEqual(["N3", "N4", "N7", "N9"]);
    expect(offlineGenerated(index, catalog, u1, 2, split, undefined, shown).items.map((i) => i.retrievedFrom)).toEqual(["N8", "N5"]);
    for (const req of requestsOf(generateStage, catalog)) expect(req.parse(req.offline())).toMatchObject({ ok: true });
  });
});

describe("offline answers pass their own validation", () => {
  it("on the bundled sample, for every item of every stage", async () => {
    const catalog = await loadCatalog(await resolveSplits([join(import.meta.dirname, "..", "mind-data", "sample")]));
    const all: Stage[] = [summarizeStage, profileStage, generateStage];
    for (const stage of all) {
      const reqs = requestsOf(stage, catalog);
      expect(reqs.length).toBeGreaterThan(10);
      for (const req of reqs) {
        const r = req.parse(req.offline());
        if (!r.ok) throw new Error(`${stage.name} ${req.itemId}: ${r.error}`);
        const schemas: Record<string, { parse(v: unknown): unknown }> = { summarize: SummarizeOutput, profile: ProfileOutput, generate: GenerateOutput };
        schemas[stage.name]!.parse(r.value);
      }
    }
  });

  it("extractJson finds the object in chatter and reports invalid JSON", () => {
    expect(extractJson('Sure! {"a": 1} Hope this helps.')).toEqual({ ok: true, value: { a: 1 } });
    expect(extractJson("{nope")).toMatchObject({ ok: false });
  });
});
