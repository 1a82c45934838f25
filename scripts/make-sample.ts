/**
 * Writes the bundled sample `mind-data/sample/` (MINDsample_train, MINDsample_dev): invented news
 * text in MIND's exact layout, with every quirk real MIND files have (quotes anywhere in titles,
 * empty abstracts and histories, cold users, geographic entities, users whose history grows
 * between train and dev). Deterministic: the same script always writes the same bytes.
 *
 *   npx tsx scripts/make-sample.ts [out-dir]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatBehaviorLine, formatNewsLine } from "../src/mind/write.js";
import type { BehaviorRow, NewsRow } from "../src/mind/rows.js";

// --- deterministic randomness -------------------------------------------------------------
let seed = 20191115;
function rand(): number {
  // mulberry32: tiny, fast, and identical on every platform.
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number) => rand() < p;
function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
function weighted<T>(items: readonly [T, number][]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [item, w] of items) {
    r -= w;
    if (r < 0) return item;
  }
  return items[items.length - 1]![0];
}

// --- entities (MIND's JSON, written the way Python's json.dumps writes it) -----------------
interface EntityDef {
  label: string;
  type: string;
  wikidataId: string;
  surface: string;
}
interface Place extends EntityDef {
  state: EntityDef;
}

const STATES: Record<string, EntityDef> = Object.fromEntries(
  (
    [
      ["Texas", "Q1439"], ["Florida", "Q812"], ["California", "Q99"], ["New York", "Q1384"], ["Illinois", "Q1204"],
      ["Washington", "Q1223"], ["Massachusetts", "Q771"], ["Colorado", "Q1261"], ["Georgia", "Q1428"],
      ["Arizona", "Q816"], ["Michigan", "Q1166"], ["Pennsylvania", "Q1400"], ["Tennessee", "Q1509"], ["Ohio", "Q1397"],
      ["Oregon", "Q824"], ["Minnesota", "Q1527"], ["North Carolina", "Q1454"], ["Louisiana", "Q1588"],
      ["Nevada", "Q1227"], ["Missouri", "Q1581"], ["Wisconsin", "Q1537"], ["Virginia", "Q1370"],
    ] as const
  ).map(([name, q]) => [name, { label: name, type: "G", wikidataId: q, surface: name }]),
);

const PLACES: Place[] = (
  [
    ["Austin", "Texas", "Q16559"], ["Houston", "Texas", "Q16555"], ["Dallas", "Texas", "Q16557"],
    ["Miami", "Florida", "Q8652"], ["Fort Lauderdale", "Florida", "Q165972"], ["Orlando", "Florida", "Q49233"],
    ["Tampa", "Florida", "Q49255"], ["Los Angeles", "California", "Q65"], ["San Diego", "California", "Q16552"],
    ["Sacramento", "California", "Q18013"], ["Buffalo", "New York", "Q40435"], ["Chicago", "Illinois", "Q1297"],
    ["Seattle", "Washington", "Q5083"], ["Boston", "Massachusetts", "Q100"], ["Denver", "Colorado", "Q16554"],
    ["Atlanta", "Georgia", "Q23556"], ["Phoenix", "Arizona", "Q16556"], ["Detroit", "Michigan", "Q12439"],
    ["Philadelphia", "Pennsylvania", "Q1345"], ["Pittsburgh", "Pennsylvania", "Q1342"],
    ["Nashville", "Tennessee", "Q23197"], ["Memphis", "Tennessee", "Q16563"], ["Columbus", "Ohio", "Q16567"],
    ["Cleveland", "Ohio", "Q37320"], ["Portland", "Oregon", "Q6106"], ["Minneapolis", "Minnesota", "Q36091"],
    ["Charlotte", "North Carolina", "Q16565"], ["New Orleans", "Louisiana", "Q34404"], ["Las Vegas", "Nevada", "Q23768"],
    ["Kansas City", "Missouri", "Q41819"], ["Milwaukee", "Wisconsin", "Q37836"], ["Richmond", "Virginia", "Q43421"],
  ] as const
).map(([city, state, q]) => ({
  label: `${city}, ${state}`,
  type: "G",
  wikidataId: q,
  surface: city,
  state: STATES[state]!,
}));

const org = (label: string, wikidataId: string, surface = label): EntityDef => ({ label, type: "O", wikidataId, surface });
const TEAMS: Record<string, EntityDef[]> = {
  football_nfl: [
    org("Dallas Cowboys", "Q204862", "Cowboys"), org("Green Bay Packers", "Q213837", "Packers"),
    org("New England Patriots", "Q193390", "Patriots"), org("Seattle Seahawks", "Q221878", "Seahawks"),
    org("Denver Broncos", "Q223507", "Broncos"), org("Miami Dolphins", "Q223243", "Dolphins"),
    org("Chicago Bears", "Q205033", "Bears"), org("Pittsburgh Steelers", "Q191477", "Steelers"),
  ],
  baseball_mlb: [
    org("Houston Astros", "Q848117", "Astros"), org("Boston Red Sox", "Q213959", "Red Sox"),
    org("Chicago Cubs", "Q246968", "Cubs"), org("New York Yankees", "Q213417", "Yankees"),
    org("Washington Nationals", "Q1140892", "Nationals"), org("Atlanta Braves", "Q461595", "Braves"),
  ],
  basketball_nba: [
    org("Los Angeles Lakers", "Q121783", "Lakers"), org("Golden State Warriors", "Q157376", "Warriors"),
    org("Milwaukee Bucks", "Q169138", "Bucks"), org("Boston Celtics", "Q131371", "Celtics"),
    org("Denver Nuggets", "Q162990", "Nuggets"), org("Miami Heat", "Q169165", "Heat"),
  ],
  football_ncaa: [
    org("LSU Tigers football", "Q3257839", "LSU"), org("Alabama Crimson Tide football", "Q4042223", "Alabama"),
    org("Ohio State Buckeyes football", "Q2006254", "Ohio State"), org("Clemson Tigers football", "Q5131328", "Clemson"),
  ],
};
const LEAGUES: Record<string, EntityDef> = {
  football_nfl: org("National Football League", "Q1215884", "NFL"),
  baseball_mlb: org("Major League Baseball", "Q1163715", "MLB"),
  basketball_nba: org("National Basketball Association", "Q155223", "NBA"),
  football_ncaa: org("National Collegiate Athletic Association", "Q33238", "NCAA"),
};
const COMPANIES: EntityDef[] = [
  org("Boeing", "Q66"), org("Ford Motor Company", "Q44294", "Ford"), org("Walmart", "Q483551"),
  org("Costco", "Q715583"), org("Netflix", "Q907311"), org("Amazon (company)", "Q3884", "Amazon"),
  org("Apple Inc.", "Q312", "Apple"), org("Tesla, Inc.", "Q478214", "Tesla"), org("General Motors", "Q81965", "GM"),
  org("Target Corporation", "Q1046951", "Target"), org("Starbucks", "Q37158"), org("Delta Air Lines", "Q188920", "Delta"),
];
const AGENCIES: EntityDef[] = [
  org("Federal Reserve System", "Q53536", "Fed"), org("Food and Drug Administration", "Q204711", "FDA"),
  org("NASA", "Q23548"), org("National Weather Service", "Q1129598"),
  org("Centers for Disease Control and Prevention", "Q583725", "CDC"),
];
// People are invented; their IDs are placeholders in MIND's format, not real Wikidata items.
const PEOPLE: EntityDef[] = [
  "Marisol Ortega", "Dale Whitfield", "Priya Raman", "Jonah Castellanos", "Renée Fairbanks", "Tomás Beaulieu",
  "Grace Okafor", "Hank Lindqvist", "Nadia Petrović", "Curtis Bell", "Eleanor Vance", "Luis Ybarra",
].map((name, i) => ({ label: name, type: "P", wikidataId: `Q9${String(700000 + i * 37)}`, surface: name }));
const ROYALS: EntityDef[] = [
  { label: "Queen Elizabeth II", type: "P", wikidataId: "Q9682", surface: "Queen Elizabeth" },
  { label: "Meghan, Duchess of Sussex", type: "P", wikidataId: "Q3304418", surface: "Meghan Markle" },
  { label: "Prince Harry, Duke of Sussex", type: "P", wikidataId: "Q152316", surface: "Prince Harry" },
  { label: "Catherine, Duchess of Cambridge", type: "P", wikidataId: "Q10479", surface: "Kate Middleton" },
];
const CONCEPTS: EntityDef[] = [
  { label: "Thanksgiving", type: "C", wikidataId: "Q083", surface: "Thanksgiving" },
  { label: "Black Friday (shopping)", type: "C", wikidataId: "Q1337", surface: "Black Friday" },
  { label: "Halloween", type: "C", wikidataId: "Q1457", surface: "Halloween" },
  { label: "Veterans Day", type: "C", wikidataId: "Q1136593", surface: "Veterans Day" },
];
const CARS: EntityDef[] = [
  { label: "Ford Mustang", type: "V", wikidataId: "Q219990", surface: "Mustang" },
  { label: "Ford F-Series", type: "V", wikidataId: "Q1058946", surface: "F-150" },
  { label: "Chevrolet Corvette", type: "V", wikidataId: "Q272103", surface: "Corvette" },
  { label: "Jeep Wrangler", type: "V", wikidataId: "Q1065425", surface: "Wrangler" },
];

/** Python's json.dumps escapes non-ASCII as \uXXXX; MIND's entity columns were written that way. */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
const CONFIDENCES = ["1.0", "1.0", "1.0", "0.999", "0.998", "0.996", "0.993", "0.987", "0.972", "0.94"];
function entitiesJson(text: string, found: EntityDef[]): string {
  const parts: string[] = [];
  const seen = new Set<string>();
  for (const e of found) {
    if (seen.has(e.wikidataId)) continue;
    const offsets: number[] = [];
    for (let at = text.indexOf(e.surface); at !== -1; at = text.indexOf(e.surface, at + e.surface.length)) offsets.push(at);
    if (offsets.length === 0) continue;
    seen.add(e.wikidataId);
    parts.push(
      `{"Label": ${pyString(e.label)}, "Type": "${e.type}", "WikidataId": "${e.wikidataId}", "Confidence": ${pick(CONFIDENCES)}, ` +
        `"OccurrenceOffsets": [${offsets.join(", ")}], "SurfaceForms": [${pyString(e.surface)}]}`,
    );
  }
  return `[${parts.join(", ")}]`;
}

// --- text templates -----------------------------------------------------------------------
// Slots: {city} {state} {team} {team2} {league} {company} {agency} {person} {royal} {holiday}
// {car} {n} {n2} {pct} {day}. Each filled slot that is an entity is recorded with its surface form.
type Templates = { sub: string; weight: number; titles: string[]; abstracts: string[] }[];

const CATEGORIES: [string, number, Templates][] = [
  ["news", 30, [
    { sub: "newsus", weight: 5, titles: [
      "{city} police search for driver after hit-and-run near school",
      "{state} lawmakers approve ${n} million plan for rural broadband",
      "Man rescued from flooded car on {city} highway",
      "{city} neighbors rally to rebuild burned-down community garden",
      "Power restored to {n},000 customers in {state} after outage",
    ], abstracts: [
      "Officials in {city} said the investigation is ongoing and asked witnesses to call the tip line.",
      "The measure now heads to the governor of {state}, who has said she will sign it.",
      "Residents said it was the second time this year that the road had closed.",
      "\"We just wanted to help,\" one volunteer said of the weekend effort.",
    ] },
    { sub: "newspolitics", weight: 3, titles: [
      "Senator {person} to seek re-election in {state}",
      "What the new budget deal means for {state} voters",
      "{person} says impeachment hearings will 'speak for themselves'",
    ], abstracts: [
      "The announcement ends weeks of speculation about the race.",
      "Analysts say the deal could shift spending priorities for the next two years.",
    ] },
    { sub: "newscrime", weight: 2, titles: [
      "{city} man charged in string of catalytic converter thefts",
      "Jury selection begins in {city} fraud trial",
    ], abstracts: [
      "Prosecutors say the scheme ran for more than {n2} months.",
      "The suspect is being held on ${n},000 bond.",
    ] },
    { sub: "newsscienceandtechnology", weight: 2, titles: [
      "{agency} picks crew for next lunar test flight",
      "Scientists in {city} map a new kind of deep-sea coral",
    ], abstracts: [
      "The mission is scheduled to launch no earlier than next spring.",
      "Researchers say the find could change how reefs are protected.",
    ] },
    { sub: "newsgoodnews", weight: 1, titles: [
      "Retired teacher in {city} knits {n} hats for newborns",
      "Strangers pay off school lunch debt for {n} {state} students",
    ], abstracts: [
      "She started the project after her grandson was born early.",
      "The district said every student's balance is now zero.",
    ] },
  ]],
  ["sports", 22, [
    { sub: "football_nfl", weight: 5, titles: [
      "{team} beat {team2} {n2}-{pct} behind late field goal",
      "{team} cut veteran linebacker ahead of {day} game",
      "{league} power rankings: {team} climb after bye week",
      "Injury report: {team} quarterback questionable for {day}",
    ], abstracts: [
      "The result keeps the {team} in the playoff race.",
      "The coach said the decision was about depth, not performance.",
    ] },
    { sub: "baseball_mlb", weight: 3, titles: [
      "{team} agree to {n2}-year deal with free-agent pitcher",
      "{team} name new manager after {n2} seasons of decline",
      "Hot stove: {team} and {team2} talk trade at {league} meetings",
    ], abstracts: [
      "The deal is pending a physical, according to people familiar with it.",
      "He becomes the team's third manager since {n2}.",
    ] },
    { sub: "basketball_nba", weight: 3, titles: [
      "{team} rally past {team2} for fifth straight win",
      "{team} guard fined by {league} for criticizing officials",
    ], abstracts: [
      "The bench outscored the starters in the fourth quarter.",
      "The league announced the fine on {day}.",
    ] },
    { sub: "football_ncaa", weight: 2, titles: [
      "{team} hold on to top spot in playoff rankings",
      "{team} quarterback enters transfer portal",
    ], abstracts: [
      "The committee will release its next rankings on Tuesday.",
      "He started {n2} games over two seasons.",
    ] },
    { sub: "more_sports", weight: 1, titles: [
      "{city} marathon draws record field of {n},000 runners",
    ], abstracts: [
      "Organizers said the course would change next year because of construction.",
    ] },
  ]],
  ["finance", 12, [
    { sub: "finance-companies", weight: 3, titles: [
      "{company} to cut {n} jobs as it reshapes business",
      "{company} opens new distribution center near {city}",
      "Why {company} stock fell {pct}% this week",
    ], abstracts: [
      "The company said most of the cuts would come from management roles.",
      "The facility is expected to employ about {n} people when it opens.",
    ] },
    { sub: "markets", weight: 2, titles: [
      "Stocks slip as investors weigh {agency} comments",
      "Dow gains {n} points on trade hopes",
    ], abstracts: [
      "Bond yields edged lower after the report.",
      "Technology shares led the advance.",
    ] },
    { sub: "finance-real-estate", weight: 2, titles: [
      "Home prices in {city} rise {pct}% from a year ago",
      "The {n2} most affordable places to buy a house in {state}",
    ], abstracts: [
      "Inventory remains tight heading into winter.",
      "Median prices vary widely even within the same county.",
    ] },
    { sub: "personalfinance", weight: 2, titles: [
      "{n2} money moves to make before the end of the year",
      "How much you need to retire in {state}",
    ], abstracts: [
      "Small changes now can lower next year's tax bill.",
      "The answer depends on housing costs more than anything else.",
    ] },
  ]],
  ["lifestyle", 8, [
    { sub: "lifestyleroyals", weight: 3, titles: [
      "{royal} surprises schoolchildren on visit",
      "The sweet reason {royal} wore blue again",
      "{royal} shares never-before-seen family photo",
    ], abstracts: [
      "Royal watchers noticed the detail right away.",
      "The photo was posted to mark the anniversary.",
    ] },
    { sub: "lifestylebuzz", weight: 2, titles: [
      "Woman finds {n}-year-old letter inside thrift-store coat",
      "This {city} dog has a job at the local hardware store",
    ], abstracts: [
      "She is now trying to find the writer's family.",
      "Customers say he greets everyone at the door.",
    ] },
    { sub: "lifestylehomeandgarden", weight: 1, titles: [
      "{n2} ways to get your garden ready for the first frost",
    ], abstracts: ["A few hours of work now saves a lot in spring."] },
  ]],
  ["health", 6, [
    { sub: "wellness", weight: 2, titles: [
      "{n2} habits that help you sleep better, according to doctors",
      "Is it a cold or the flu? How to tell the difference",
    ], abstracts: ["Experts say consistency matters more than any single trick."] },
    { sub: "medical", weight: 2, titles: [
      "{agency} approves new treatment for migraines",
      "{agency} reports rise in flu cases in {state}",
    ], abstracts: ["Doctors urge people to get vaccinated before the holidays."] },
    { sub: "nutrition", weight: 1, titles: ["The best breakfast for steady energy, says a dietitian"], abstracts: ["Protein and fiber are the keys."] },
  ]],
  ["weather", 4, [
    { sub: "weathertopstories", weight: 2, titles: [
      "Arctic blast to bring record cold to {state}",
      "First snow of the season blankets {city}",
    ], abstracts: [
      "The {agency} warned of icy roads through the weekend.",
      "Temperatures could drop {n2} degrees below normal.",
    ] },
    { sub: "weather-news", weight: 1, titles: ["Storms knock out power across {state}"], abstracts: ["Crews expect to restore most service by evening."] },
  ]],
  ["entertainment", 5, [
    { sub: "celebrity", weight: 2, titles: [
      "{person} opens up about leaving Hollywood",
      "{person} and longtime partner split after {n2} years",
    ], abstracts: ["The actor spoke in a new interview published this week."] },
    { sub: "entertainment-celebrity", weight: 1, titles: ["{person} spotted filming in {city}"], abstracts: ["Fans gathered outside the set for hours."] },
  ]],
  ["autos", 3, [
    { sub: "autosnews", weight: 2, titles: [
      "{company} recalls {n},000 vehicles over brake issue",
      "The new {car} is faster than ever",
    ], abstracts: ["Owners will be notified by mail.", "Early reviews praise its handling."] },
    { sub: "autosenthusiasts", weight: 1, titles: ["Barn-find {car} sells for ${n},000 at auction"], abstracts: ["It had been parked since {n2}."] },
  ]],
  ["travel", 3, [
    { sub: "travelnews", weight: 2, titles: [
      "{company} adds nonstop flights from {city}",
      "Airport in {city} expects record {holiday} crowds",
    ], abstracts: ["The new routes start in March.", "Officials recommend arriving two hours early."] },
    { sub: "traveltripideas", weight: 1, titles: ["{n2} small towns in {state} worth a weekend trip"], abstracts: ["Each is less than three hours from a major city."] },
  ]],
  ["foodanddrink", 4, [
    { sub: "recipes", weight: 2, titles: [
      "{n2} make-ahead {holiday} sides",
      "Easy one-pan chicken for busy weeknights",
    ], abstracts: ["Most can be made two days in advance.", "Dinner is ready in 30 minutes."] },
    { sub: "restaurantsandnews", weight: 1, titles: ["The best new restaurants in {city} right now"], abstracts: ["Our critic ate at {n2} of them this month."] },
  ]],
  ["tv", 3, [
    { sub: "tvnews", weight: 2, titles: [
      "{company} renews its hit drama for a fourth season",
      "{person} joins cast of long-running sitcom",
    ], abstracts: ["Production begins next year."] },
    { sub: "tv-celebrity", weight: 1, titles: ["{person} reveals what really happened on set"], abstracts: ["The star told a late-night host the story."] },
  ]],
  ["movies", 3, [
    { sub: "movienews", weight: 2, titles: [
      "Box office: family film tops weekend with ${n2} million",
      "{person} to direct remake of 1980s classic",
    ], abstracts: ["The sequel opened in second place.", "Casting is under way."] },
  ]],
  ["video", 3, [
    { sub: "animals", weight: 1, titles: ["Rescue crew frees deer tangled in {city} soccer net"], abstracts: ["The deer ran off unhurt."] },
    { sub: "viral", weight: 1, titles: ["Watch: {city} fans react to stunning finish"], abstracts: ["The clip has been shared thousands of times."] },
  ]],
  ["music", 2, [
    { sub: "musicnews", weight: 1, titles: ["{person} announces tour with stop in {city}", "{person} tops the charts again"], abstracts: ["Tickets go on sale Friday."] },
  ]],
  ["kids", 1, [{ sub: "kids", weight: 1, titles: ["{n2} science projects kids can do at the kitchen table"], abstracts: ["Everything you need is already in the pantry."] }]],
  ["middleeast", 1, [{ sub: "middleeast", weight: 1, titles: ["Talks resume in regional trade dispute"], abstracts: ["Negotiators met for six hours."] }]],
  ["northamerica", 1, [{ sub: "northamerica", weight: 1, titles: ["Cross-border rail link with {city} gets green light"], abstracts: ["Service could begin in two years."] }]],
  ["games", 1, [{ sub: "games", weight: 1, titles: ["The {n2} best video games of the year so far"], abstracts: ["Our editors played them all."] }]],
];

const DAYS = ["Sunday", "Monday", "Thursday", "Saturday"];

interface Filled {
  text: string;
  entities: EntityDef[];
}
interface Slots {
  place: Place;
  team: EntityDef;
  team2: EntityDef;
  values: Record<string, string>;
  entities: Record<string, EntityDef>;
}
function fill(template: string, slots: Slots): Filled {
  const entities: EntityDef[] = [];
  const text = template.replace(/\{(\w+)\}/g, (_, slot: string) => {
    if (slot === "city") {
      entities.push(slots.place);
      return slots.place.surface;
    }
    if (slot === "state") {
      entities.push(slots.place.state);
      return slots.place.state.surface;
    }
    const e = slots.entities[slot];
    if (e) {
      entities.push(e);
      return e.surface;
    }
    return slots.values[slot] ?? slot;
  });
  return { text, entities };
}

interface SampleNews extends NewsRow {
  /** history: published before the sample's impressions; train/dev: shown in that split's impressions. */
  period: "history" | "train" | "dev";
}

// Hand-written titles with the quirks that break naive readers (quotes, &, |, non-ASCII).
const QUIRKS: { category: string; sub: string; title: string; abstract: string; extra: EntityDef[] }[] = [
  { category: "entertainment", sub: "entertainment-celebrity", title: "\"Hamilton\" returns to Austin with a new cast this spring", abstract: "The touring production opens in March; tickets go on sale Friday.", extra: [] },
  { category: "sports", sub: "football_nfl", title: "Coach says Cowboys are \"not panicking\" after loss", abstract: "\"We know who we are,\" he told reporters on Monday.", extra: [] },
  { category: "news", sub: "newsus", title: "Mayor: \"we'll rebuild, and fast", abstract: "The storm damaged more than 200 homes in Fort Lauderdale.", extra: [] },
  { category: "lifestyle", sub: "lifestyleparenting", title: "Mom's 5-minute trick for kids' school lunches", abstract: "", extra: [] },
  { category: "finance", sub: "finance-companies", title: "Barnes & Noble to close 12 stores | Full list", abstract: "Stores in Florida and Texas are on the list.", extra: [org("Barnes & Noble", "Q795454")] },
  { category: "foodanddrink", sub: "restaurantsandnews", title: "Café owner in Miami serves 1,000 free meals — here's why", abstract: "Crème brûlée was on the menu, too.", extra: [] },
  { category: "foodanddrink", sub: "recipes", title: "Crème brûlée, piñata cake & more: 15 holiday desserts", abstract: "", extra: [] },
  { category: "news", sub: "newspolitics", title: "\"Unbalanced quote opens this headline about Ohio", abstract: "A quote that never closes must survive a round trip.", extra: [] },
  { category: "movies", sub: "movienews", title: "The ending nobody saw coming\"", abstract: "Spoilers ahead | read at your own risk.", extra: [] },
  { category: "lifestyle", sub: "lifestyleroyals", title: "Royal family shares “never-before-seen” photo of Prince Harry", abstract: "The picture was taken at Balmoral in 2002.", extra: [ROYALS[2]!] },
  { category: "weather", sub: "weathertopstories", title: "São Paulo-style downpours hit Florida | Latest", abstract: "Up to 6 inches of rain fell in Tampa on Tuesday.", extra: [] },
  { category: "sports", sub: "basketball_nba", title: "Lakers' ‘big three’ can't stop the slide", abstract: "", extra: [TEAMS.basketball_nba![0]!] },
  { category: "music", sub: "musicnews", title: "'Encore' tour adds Nashville & Memphis dates", abstract: "Renée Fairbanks will play both Tennessee cities in June.", extra: [PEOPLE[4]!] },
  { category: "tv", sub: "tvnews", title: "Björk, Beyoncé & Mötley Crüe: the week's \"must-see\" TV", abstract: "Plus a documentary about Chicago's food scene.", extra: [] },
  { category: "autos", sub: "autosnews", title: "Review: the 2020 Mustang | 5 things we love, 2 we don't", abstract: "It's faster than ever — and thirstier.", extra: [CARS[0]!] },
];

function newsId(used: Set<string>): string {
  for (;;) {
    const id = `N${int(1000, 130000)}`;
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
}
const URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
function url(): string {
  let code = pick(["AAG", "AAJ", "BBW", "AAK", "BBV"]);
  for (let i = 0; i < 4; i++) code += pick([...URL_CHARS]);
  return `https://assets.msn.com/labs/mind/${code}.html`;
}

function entitiesFor(category: string, sub: string): Record<string, EntityDef> {
  const teams = TEAMS[sub];
  const pool = teams ? shuffle([...teams]) : [];
  return {
    ...(pool[0] ? { team: pool[0] } : {}),
    ...(pool[1] ? { team2: pool[1] } : {}),
    ...(LEAGUES[sub] ? { league: LEAGUES[sub] } : {}),
    company: pick(COMPANIES),
    agency: pick(AGENCIES),
    person: pick(PEOPLE),
    royal: pick(ROYALS),
    holiday: pick(CONCEPTS),
    car: pick(CARS),
    ...(category === "weather" ? { agency: AGENCIES[3]! } : {}),
  };
}

function makeNews(count: number): SampleNews[] {
  const used = new Set<string>();
  const all: SampleNews[] = [];
  const period = (): SampleNews["period"] => weighted([["history", 45], ["train", 30], ["dev", 25]]);
  const allQuirkEntities = [...PLACES, ...Object.values(STATES), ...PEOPLE, ...CARS];
  for (const q of QUIRKS) {
    const found = [...q.extra, ...allQuirkEntities];
    all.push({
      id: newsId(used), category: q.category, subcategory: q.sub, title: q.title, abstract: q.abstract, url: url(),
      titleEntities: entitiesJson(q.title, found), abstractEntities: entitiesJson(q.abstract, found),
      period: "history",
    });
  }
  const seenTitles = new Set(all.map((n) => n.title));
  while (all.length < count) {
    const [category, , subs] = weighted(CATEGORIES.map((c) => [c, c[1]] as [typeof c, number]));
    const t = weighted(subs.map((s) => [s, s.weight] as [typeof s, number]));
    const slots: Slots = {
      place: pick(PLACES),
      team: pick(COMPANIES),
      team2: pick(COMPANIES),
      entities: entitiesFor(category, t.sub),
      values: { n: String(int(2, 950)), n2: String(int(2, 30)), pct: String(int(2, 19)), day: pick(DAYS) },
    };
    const title = fill(pick(t.titles), slots);
    // MIND has repeated titles under different IDs, but few; keep most titles distinct.
    if (seenTitles.has(title.text) && !chance(0.05)) continue;
    seenTitles.add(title.text);
    const abstract = chance(0.05) ? { text: "", entities: [] } : fill(pick(t.abstracts), slots);
    all.push({
      id: newsId(used), category, subcategory: t.sub, title: title.text, abstract: abstract.text, url: url(),
      titleEntities: entitiesJson(title.text, title.entities), abstractEntities: entitiesJson(abstract.text, abstract.entities),
      period: period(),
    });
  }
  return all;
}

// --- users and impressions ----------------------------------------------------------------
function mindTime(day: number, secondOfDay: number): string {
  const h24 = Math.floor(secondOfDay / 3600);
  const m = Math.floor((secondOfDay % 3600) / 60);
  const s = secondOfDay % 60;
  const h12 = h24 % 12 === 0 ? 12 : h24 % 12;
  return `11/${day}/2019 ${h12}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")} ${h24 < 12 ? "AM" : "PM"}`;
}

function historyLength(kind: "empty" | "cold" | "warm"): number {
  if (kind === "empty") return 0;
  if (kind === "cold") return int(1, 5);
  // Long-tailed like MIND (median well below the mean), capped so the sample stays small.
  return Math.min(60, 6 + Math.floor(-Math.log(1 - rand()) * 12));
}

interface Impression {
  userId: string;
  time: string;
  history: string[];
  impressions: string;
}

function impressionsFor(candidates: SampleNews[], history: Set<string>): { column: string; clicked: string[] } {
  const pool = shuffle(candidates.filter((n) => !history.has(n.id)));
  const size = Math.min(pool.length, weighted([[int(2, 5), 3], [int(6, 15), 4], [int(16, 30), 2]]));
  const shown = pool.slice(0, size);
  // At least one click and one non-click: NRMS samples negatives per click, and per-impression
  // AUC needs both labels.
  const clicks = Math.max(1, Math.min(size - 1, weighted([[1, 7], [2, 2], [3, 1]])));
  const clickedIdx = new Set(shuffle([...shown.keys()]).slice(0, clicks));
  return {
    column: shown.map((n, i) => `${n.id}-${clickedIdx.has(i) ? 1 : 0}`).join(" "),
    clicked: shown.filter((_, i) => clickedIdx.has(i)).map((n) => n.id),
  };
}

function main(): void {
  const out = resolve(process.argv[2] ?? "mind-data/sample");
  const news = makeNews(330);
  const byPeriod = (p: SampleNews["period"]) => news.filter((n) => n.period === p);
  const historyNews = byPeriod("history");
  const quirkNews = news.slice(0, QUIRKS.length);
  const trainNews = byPeriod("train");
  const devNews = byPeriod("dev");

  const userIds = new Set<string>();
  const trainRows: Impression[] = [];
  const devRows: Impression[] = [];
  const USERS = 320;
  for (let u = 0; u < USERS; u++) {
    let userId: string;
    do userId = `U${int(10, 94999)}`;
    while (userIds.has(userId));
    userIds.add(userId);
    // Every quirk title is in the history of two users seen in both splits, so every quirk reaches
    // news.tsv of both splits (one of the two is cold: the quirks reach the generate stage too).
    const quirkUser = u < QUIRKS.length * 2;
    const kind = quirkUser ? (u % 2 ? "cold" : "warm") : weighted<"empty" | "cold" | "warm">([["empty", 3], ["cold", 23], ["warm", 74]]);
    const seedNews = quirkUser ? [quirkNews[u % QUIRKS.length]!] : [];
    const len = historyLength(kind);
    const history = [...new Set([...seedNews, ...shuffle([...historyNews]).slice(0, len)].slice(0, len).map((n) => n.id))];
    const where = quirkUser ? "both" : weighted([["train", 40], ["dev", 20], ["both", 40]]);
    let devHistory = history;
    if (where !== "dev") {
      const seen = new Set(history);
      const clicks: string[] = [];
      for (let i = weighted([[1, 6], [2, 3], [3, 1]]); i > 0; i--) {
        const day = int(9, 14);
        const sec = int(0, 86399);
        const imp = impressionsFor(trainNews, seen);
        clicks.push(...imp.clicked);
        trainRows.push({ userId, time: mindTime(day, sec), history, impressions: imp.column });
      }
      // The dev snapshot is taken later: it holds the train clicks too, so it is longer.
      devHistory = [...history, ...clicks.filter((id, i) => clicks.indexOf(id) === i && !seen.has(id))];
    }
    if (where !== "train") {
      const seen = new Set(devHistory);
      for (let i = weighted([[1, 7], [2, 3]]); i > 0; i--) {
        const sec = int(0, 86399);
        const imp = impressionsFor(devNews, seen);
        devRows.push({ userId, time: mindTime(15, sec), history: devHistory, impressions: imp.column });
      }
    }
  }

  for (const [name, rows] of [["MINDsample_train", trainRows], ["MINDsample_dev", devRows]] as const) {
    const dir = join(out, name);
    mkdirSync(dir, { recursive: true });
    // MIND's rows are in no particular order; impression IDs count from 1 in each split.
    shuffle(rows);
    const behaviorRows: BehaviorRow[] = rows.map((r, i) => ({
      impressionId: String(i + 1), userId: r.userId, time: r.time, history: r.history, impressions: r.impressions,
    }));
    const referenced = new Set<string>();
    for (const r of rows) {
      for (const id of r.history) referenced.add(id);
      for (const tok of r.impressions.split(" ")) referenced.add(tok.slice(0, tok.lastIndexOf("-")));
    }
    const newsRows = shuffle(news.filter((n) => referenced.has(n.id))).map(({ period: _period, ...row }) => row);
    writeFileSync(join(dir, "news.tsv"), newsRows.map(formatNewsLine).join(""));
    writeFileSync(join(dir, "behaviors.tsv"), behaviorRows.map(formatBehaviorLine).join(""));
    process.stdout.write(`${name}: ${newsRows.length} news, ${new Set(rows.map((r) => r.userId)).size} users, ${rows.length} impressions\n`);
  }
}

main();
