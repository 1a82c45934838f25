// GENRE's method as the paper and its request scripts (Jyonn/ONCE) state it: the facts a run here must
// keep to be called GENRE's (docs/stages-and-prompts.md, "Where summarize, profile and generate differ
// from GENRE's requests", lists what it deliberately does otherwise).
import { describe, expect, it } from "vitest";
import { loadCatalog, type Catalog } from "../src/mind/catalog.js";
import { DEFAULT_COLD_MAX, historyClass } from "../src/mind/history-rule.js";
import { resolveSplits } from "../src/mind/splits.js";
import { ChainProfiles } from "../src/stages/generate/chain.js";
import { generateOptions, generateStage } from "../src/stages/generate/index.js";
import { PSEUDO_SUBCATEGORY } from "../src/stages/generate/merge.js";
import { profileStage } from "../src/stages/profile/index.js";
import type { Stage } from "../src/stages/stage.js";
import { summarizeStage } from "../src/stages/summarize/index.js";
import { summarizeMerge } from "../src/stages/summarize/merge.js";
import { BUNDLED_PROMPTS_DIR, loadTemplate } from "../src/stages/template.js";
import { MIND_CATEGORIES, TOPICS, US_STATES } from "../src/stages/vocab.js";
import { makeFixture } from "./stages.fixture.js";

/** user_profiler.py's 19 topics, in its order. */
const GENRE_TOPICS = [
  "health", "education", "travel", "religion", "culture", "food", "fashion", "technology", "social media",
  "gender and sexuality", "race and ethnicity", "history", "economy", "finance", "real estate",
  "transportation", "weather", "disasters", "international news",
];
/** personalized_news_generator.py's categories: MIND's 18. */
const GENRE_CATEGORIES = [
  "lifestyle", "health", "news", "sports", "weather", "entertainment", "autos", "travel", "foodanddrink",
  "tv", "finance", "movies", "video", "music", "kids", "middleeast", "northamerica", "games",
];

async function catalog(): Promise<Catalog> {
  const { data } = await makeFixture();
  return loadCatalog(await resolveSplits([data]));
}

function userPrompts<Opts, O, P>(stage: Stage<Opts, O, P>, c: Catalog, options: Opts, prepared?: P) {
  const specs = stage.templates(options);
  const input = { catalog: c, options, system: loadTemplate(BUNDLED_PROMPTS_DIR, specs.system), user: loadTemplate(BUNDLED_PROMPTS_DIR, specs.user) };
  return [...stage.requests(input, stage.items(c, options), prepared)];
}

describe("GENRE's vocabularies", () => {
  it("profile topics are the paper's 19, regions the 50 US states, generate's categories MIND's 18", () => {
    expect([...TOPICS]).toEqual(GENRE_TOPICS);
    expect([...MIND_CATEGORIES]).toEqual(GENRE_CATEGORIES);
    expect(US_STATES).toHaveLength(50);
    expect(new Set(US_STATES).size).toBe(50);
    expect(US_STATES).not.toContain("District of Columbia");
  });
});

describe("GENRE's users and counts", () => {
  it("a cold user has 1 to 5 clicks; an empty history is no cold user", () => {
    expect(DEFAULT_COLD_MAX).toBe(5);
    expect([0, 1, 5, 6].map((n) => historyClass(n, DEFAULT_COLD_MAX))).toEqual(["empty", "cold", "cold", "warm"]);
    expect(generateOptions({}).coldMax).toBe(5);
  });

  it("two pseudo-news per cold user, a profile from at most the 30 most recent clicks", () => {
    expect(generateOptions({}).k).toBe(2);
    expect(profileStage.options({}).recent).toBe(30);
  });
});

describe("what each prompt shows (GENRE's inputs)", () => {
  it("summarize: title, abstract, category and subcategory, each labelled", async () => {
    const c = await catalog();
    const r = userPrompts(summarizeStage, c, {}).find((q) => q.itemId === "N1")!;
    expect(r.user).toBe(
      "Title: Texans beat Colts in overtime thriller\nAbstract: Houston rallied late to win at home.\nCategory: sports\nSubcategory: football_nfl",
    );
  });

  it("profile: the clicked titles, numbered, without categories", async () => {
    const c = await catalog();
    const r = userPrompts(profileStage, c, profileStage.options({})).find((q) => q.itemId === "U4")!;
    expect(r.user).toContain("(1) Brexit talks stall again in Brussels");
    expect(r.user).not.toContain("(news)");
    expect(r.system).toContain(GENRE_TOPICS.join(", "));
  });

  it("generate: the cold user's history as (n) (category) title, MIND's categories offered", async () => {
    const c = await catalog();
    const r = userPrompts(generateStage, c, generateOptions({})).find((q) => q.itemId === "U4")!;
    expect(r.user).toContain("(1) (news) Brexit talks stall again in Brussels");
    expect(r.system).toContain(GENRE_CATEGORIES.join(", "));
  });

  it("generate --chain: the profile's topics (not its regions) before the history, with the hint to look beyond them", async () => {
    const c = await catalog();
    const profiles = new ChainProfiles();
    profiles.set("U4", { topics: ["international news", "history"], source: { split: c.users.get("U4")!.split!, clicks: ["N5"] } });
    const options = generateOptions({ chain: true });
    const specs = generateStage.templates(options);
    const input = { catalog: c, options, system: loadTemplate(BUNDLED_PROMPTS_DIR, specs.system), user: loadTemplate(BUNDLED_PROMPTS_DIR, specs.user) };
    const [r] = [...generateStage.requests(input, ["U4"], profiles)];
    const at = r!.user.indexOf("international news, history");
    expect(at).toBeGreaterThanOrEqual(0);
    expect(at).toBeLessThan(r!.user.indexOf("(1) (news) Brexit"));
    expect(r!.user).toMatch(/beyond/);
  });
});

describe("GENRE's merge", () => {
  it("the enhanced title replaces the title by default; pseudo-news rows have a fixed subcategory", () => {
    expect(summarizeMerge.open({} as never, {}).mode).toBe("replace");
    expect(PSEUDO_SUBCATEGORY).toBe("generated");
  });
});
