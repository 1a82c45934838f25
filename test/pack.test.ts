// --pack N: several items per request, on the fake Anthropic API with the real SDK. Each item's
// result must be the one it gets when asked alone; a re-packed or resumed run reuses every stored
// item; an item whose part fails is asked again alone with the error.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runEngineWith } from "../src/engine/engine.js";
import { packed, shareUsage, splitPackAnswer } from "../src/engine/pack.js";
import type { PendingItem } from "../src/engine/plan.js";
import { readJsonl } from "../src/engine/store.js";
import type { LlmRequest } from "../src/engine/types.js";
import { runPaths } from "../src/run/folder.js";
import { StageRecord } from "../src/engine/types.js";
import type { StageName } from "../src/stages/registry.js";
import { FACTORS } from "../src/stages/factors/factors.js";
import { TOPICS } from "../src/stages/vocab.js";
import { blockText, createFakeAnthropic, type FakeAnthropic, type FakeMessageRequest } from "./fakes/anthropic-api.js";
import { installBatches } from "./fakes/anthropic-batches.js";
import { config, context, titleAnswer, titleRequests } from "./engine-helpers.js";
import { runCliCaptured } from "./helpers/cli.js";

const SAMPLE = join(import.meta.dirname, "..", "mind-data", "sample");

let fake: FakeAnthropic | undefined;
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "gm-pack-"));
  dirs.push(d);
  return d;
}

async function records(out: string, stage: StageName): Promise<StageRecord[]> {
  const text = await readFile(join(out, `${stage}.jsonl`), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => StageRecord.parse(JSON.parse(l)));
}

const systemOf = (body: FakeMessageRequest) => (typeof body.system === "string" ? body.system : (body.system ?? []).map((b) => b.text).join(""));
const ITEM = /<item id="(\d+)">\n([\s\S]*?)\n<\/item>/g;

/** A model that answers each item from that item's own prompt alone, packed or not. */
function oneItem(stage: StageName, user: string): string {
  if (stage === "summarize") return `${/^Title: (.*)$/m.exec(user)![1]!}, explained`;
  const n = user.length;
  if (stage.startsWith("factors")) {
    const words = ["local politics", "college football", "weather alerts", "celebrity news", "stock markets", "none"];
    return JSON.stringify(Object.fromEntries(FACTORS.map((f, i) => [f.name, words[(n + i) % words.length]!])));
  }
  return JSON.stringify({ topics: [TOPICS[n % TOPICS.length]!, TOPICS[(n >> 3) % TOPICS.length]!], regions: n % 3 === 0 ? ["Texas"] : [] });
}

/** The fake's answer: one item, or a pack answered item by item (`tamper` may change a pack's parts). */
function packAware(stage: StageName, tamper?: (parts: { item: number; answer: unknown }[], n: number) => unknown) {
  return (body: FakeMessageRequest, info: { n: number }) => {
    const user = blockText(body.messages[0]!.content);
    const items = [...user.matchAll(ITEM)];
    if (items.length === 0) return oneItem(stage, user);
    const parts = items.map((m) => {
      const text = oneItem(stage, m[2]!);
      return { item: Number(m[1]), answer: stage === "summarize" ? text : JSON.parse(text) };
    });
    return JSON.stringify({ answers: tamper ? tamper(parts, info.n) : parts });
  };
}

async function runStage(stage: StageName, out: string, ...extra: string[]) {
  const argv = [stage, "--data", SAMPLE, "--out", out, "--provider", "anthropic", "--base-url", fake!.url, ...extra];
  return runCliCaptured(argv, { cwd: out, env: { ANTHROPIC_API_KEY: "test-key" } });
}

const messageBodies = () => fake!.log.filter((l) => l.path === "/v1/messages").map((l) => l.body as FakeMessageRequest);

describe("packed()", () => {
  const item = (key: string, split?: string, packable = true) =>
    ({ key, req: { stage: "profile", system: "s", schemaVersion: 1, packable, source: split ? { split, clicks: ["N1"] } : undefined }, sharers: [], answers: 0, transportRetries: 0, usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 } }) as unknown as PendingItem;
  const keys = (u: PendingItem) => (u.members ?? [u]).map((m) => m.key).join(",");

  it("packs users of one source split together, holding one open group per split", async () => {
    const input = [item("a", "train"), item("b", "dev"), item("c", "train"), item("x", "train", false), item("d", "dev"), item("e", "train"), item("f", "dev")];
    const held: PendingItem[] = [];
    async function* source() {
      for (const i of input) yield i;
    }
    const units: string[] = [];
    const heldSeen: string[] = [];
    for await (const u of packed(source(), 2, held)) {
      units.push(keys(u));
      heldSeen.push(held.map((h) => h.key).join(","));
    }
    expect(units).toEqual(["a,c", "x", "b,d", "e", "f"]);
    // What was taken from the stream and not handed out yet: the open groups' items.
    expect(heldSeen).toEqual(["b", "b", "", "f", ""]);
  });
});

describe("--pack", () => {
  for (const stage of ["summarize", "profile", "factors-users", "factors-news"] as const) {
    it(`${stage}: every item's record is the one it gets alone; one system prompt per pack`, async () => {
      fake = await createFakeAnthropic({ answer: packAware(stage) });
      const alone = await temp();
      expect((await runStage(stage, alone)).code).toBe(0);
      const single = messageBodies().length;
      fake.log.length = 0;
      const packedOut = await temp();
      const r = await runStage(stage, packedOut, "--pack", "7");
      expect(r.code).toBe(0);
      const packs = messageBodies();
      // Users of one source split per pack (a model reads every user of its pack): packs of 7 per split.
      const promptsBySplit = new Map<string | undefined, Set<string>>();
      for (const rec of await records(alone, stage)) {
        const keys = promptsBySplit.get(rec.source?.split) ?? new Set<string>();
        promptsBySplit.set(rec.source?.split, keys.add(rec.key));
      }
      expect([...promptsBySplit.values()].reduce((n, keys) => n + keys.size, 0)).toBe(single);
      expect(packs.length).toBe([...promptsBySplit.values()].reduce((n, keys) => n + Math.ceil(keys.size / 7), 0));
      if (stage === "profile") expect(promptsBySplit.size).toBe(2);
      for (const body of packs) expect(systemOf(body).match(/Several items may come in one message/g)).toHaveLength(1);

      const byItem = (recs: StageRecord[]) => new Map(recs.map((x) => [x.itemId, x]));
      const a = byItem(await records(alone, stage));
      const b = byItem(await records(packedOut, stage));
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [id, rec] of a) {
        expect(b.get(id)!.output).toEqual(rec.output);
        // Stored under the item's own key: the same key as when it was asked alone.
        expect(b.get(id)!.key).toBe(rec.key);
      }
      // Usage is shared out: the records add up to what the fake billed.
      const billed = packs.reduce((s, body) => s + fake!.inputTokens(body).total, 0);
      expect([...b.values()].reduce((s, x) => s + x.usage.inputTokens + x.usage.cacheReadTokens + x.usage.cacheWriteTokens, 0)).toBe(billed);
      expect([...b.values()].some((x) => x.pack === 7)).toBe(true);
    });
  }

  it("a re-packed or resumed run reuses every stored item, whatever the pack size", async () => {
    fake = await createFakeAnthropic({ answer: packAware("profile") });
    const out = await temp();
    expect((await runStage("profile", out, "--pack", "5", "--limit", "40")).code).toBe(0);
    const sent = messageBodies().length;
    expect(sent).toBe(8);
    for (const pack of ["1", "3", "5"]) {
      const r = await runStage("profile", out, "--pack", pack, "--limit", "40");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/40 items, 0 done, 40 cached/);
    }
    expect(messageBodies().length).toBe(sent);
    // A larger run asks only for the new items, packed.
    await runStage("profile", out, "--pack", "5", "--limit", "50");
    expect(messageBodies().length).toBe(sent + 2);
  });

  it("an item whose part is invalid or missing is asked again alone, with the error; an unreadable pack sends its items alone", async () => {
    // First pack: item 2's topic is outside the vocabulary, item 3 has no answer. Second pack: not JSON.
    fake = await createFakeAnthropic({
      answer: packAware("profile", (parts, n) => {
        if (n > 1) return parts;
        return parts.flatMap((p) => (p.item === 3 ? [] : p.item === 2 ? [{ item: 2, answer: { topics: ["politics"], regions: [] } }] : [p]));
      }),
    });
    const out = await temp();
    const r0 = await runStage("profile", out, "--pack", "4", "--limit", "4");
    expect(r0.code).toBe(0);
    const bodies = messageBodies();
    // The pack, then item 2 (repair) and item 3 (asked afresh), each alone.
    expect(bodies).toHaveLength(3);
    const [, repair, afresh] = bodies;
    expect(systemOf(repair!)).not.toMatch(/Several items/);
    expect(repair!.messages).toHaveLength(3);
    expect(blockText(repair!.messages[0]!.content)).not.toMatch(/<item/);
    expect(blockText(repair!.messages[1]!.content)).toBe('{"topics":["politics"],"regions":[]}');
    expect(blockText(repair!.messages[2]!.content)).toMatch(/"politics" is not a topic of the list/);
    expect(afresh!.messages).toHaveLength(1);
    const recs = await records(out, "profile");
    expect(recs).toHaveLength(4);
    expect(recs.map((x) => [x.attempts, x.pack])).toEqual([
      [1, 4],
      [1, 4],
      [2, undefined],
      [2, undefined],
    ]);

    await fake.close();
    fake = await createFakeAnthropic({ answer: (body, info) => (info.n === 1 && blockText(body.messages[0]!.content).includes("<item") ? "Sorry, here you go: topics" : packAware("profile")(body, info)) });
    const out2 = await temp();
    const r = await runStage("profile", out2, "--pack", "3", "--limit", "3");
    expect(r.code).toBe(0);
    expect(messageBodies().map((b) => blockText(b.messages[0]!.content).includes("<item"))).toEqual([true, false, false, false]);
    expect((await records(out2, "profile")).every((x) => x.attempts === 2 && x.pack === undefined)).toBe(true);
  });

  it("--dry-run shows what the chosen pack size saves, and prices every model", async () => {
    const out = await temp();
    const r = await runCliCaptured(["summarize", "--data", SAMPLE, "--out", out, "--provider", "anthropic-batch", "--dry-run", "--pack", "10"], { cwd: out });
    expect(r.code).toBe(0);
    const [, requests, items] = /requests\s+(\d+) to send carrying ([\d,]+) items \(--pack 10\)/.exec(r.stdout)!;
    expect(Number(requests)).toBe(Math.ceil(Number(items!.replace(",", "")) / 10));
    const m = /--pack 10 saves ([\d,]+) requests, ([\d,]+) \(([\d.]+)%\) input tokens \(each alone: ([\d,]+)\), \$([\d.]+) live, \$([\d.]+) batch/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![3])).toBeGreaterThan(30);
    expect(r.stdout).toMatch(/every priced model, --pack 10/);
    expect(r.stdout).toMatch(/^\s+claude-haiku-4-5\s+live \s*\$\d+\.\d{4}\s+batch \s*\$\d+\.\d{4}$/m);
    expect(r.stdout).toMatch(/^\s+claude-3-haiku\s+live/m);
  });
});

describe("splitPackAnswer", () => {
  it("keys parts by item number; a string stays as it is, an object becomes its JSON; the first of a repeated number wins", () => {
    const r = splitPackAnswer('```json\n{"answers": [{"item": 2, "answer": {"a": 1}}, {"item": 1, "answer": "T"}, {"item": 2, "answer": "x"}]}\n```');
    expect(r.ok && [...r.value]).toEqual([
      [2, '{"a":1}'],
      [1, "T"],
    ]);
    expect(splitPackAnswer('{"items": []}')).toMatchObject({ ok: false, error: expect.stringMatching(/"answers"/) });
  });
});

/** The toy title stage's answer, for one item or for each item of a pack. */
function packedTitles(body: FakeMessageRequest): string {
  const user = blockText(body.messages[0]!.content);
  const items = [...user.matchAll(ITEM)];
  if (items.length === 0) return titleAnswer(body);
  return JSON.stringify({ answers: items.map((m) => ({ item: Number(m[1]), answer: JSON.parse(titleAnswer({ messages: [{ content: m[2]! }] })) })) });
}

describe("--pack with a batch provider", () => {
  it("sends packs as batch requests and stores each item's own answer; a restart with packs open pays for nothing twice", async () => {
    fake = await createFakeAnthropic({ answer: (body) => packedTitles(body) });
    const batches = installBatches(fake, { hold: true });
    const dir = await temp();
    const requests = titleRequests(10).map((r): LlmRequest => ({ ...r, packable: true }));
    // A factory: a batch collection plans the requests again instead of holding the items.
    let planned = 0;
    const source = () => {
      planned++;
      return requests;
    };
    const run = (signal?: AbortSignal) =>
      runEngineWith({ stage: "summarize", requests: source, runDir: dir }, config({ provider: "anthropic-batch", "base-url": fake!.url, pack: 4 }), context({ ANTHROPIC_API_KEY: "k" }), {
        batchPollMs: 1,
        batchSignal: signal,
      });
    const stop = new AbortController();
    batches.once("retrieve", () => stop.abort());
    await expect(run(stop.signal)).rejects.toMatchObject({ name: "AbortError" });
    expect(batches.creates).toBe(1);
    const sent = [...batches.batches.values()][0]!.requests;
    expect(sent.map((r) => blockText(r.params.messages[0]!.content).match(/<item id=/g)?.length)).toEqual([4, 4, 2]);

    batches.release();
    planned = 0;
    const summary = await run();
    expect(summary.counts).toMatchObject({ done: 10, failed: 0 });
    expect(batches.creates).toBe(1);
    // Once to check the open batch holds no item this run leaves out, once to find what no open batch
    // holds, once more to collect the batch that ended.
    expect(planned).toBe(3);
    const recs = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
    expect(recs.map((r) => [r.itemId, (r.output as { title: string }).title, r.pack]).sort()).toEqual(
      requests.map((r, i) => [r.itemId, `Title for ${r.itemId}`, i < 8 ? 4 : 2]).sort(),
    );
  });

  it("a pack collected again after a kill mid-collection gives the items left the shares they had: the bill is stored once", async () => {
    fake = await createFakeAnthropic({ answer: (body) => packedTitles(body) });
    const batches = installBatches(fake);
    const dir = await temp();
    const paths = runPaths(dir);
    const requests = titleRequests(5).map((r): LlmRequest => ({ ...r, packable: true }));
    const run = () =>
      runEngineWith({ stage: "summarize", requests, runDir: dir }, config({ provider: "anthropic-batch", "base-url": fake!.url, pack: 5 }), context({ ANTHROPIC_API_KEY: "k" }), { batchPollMs: 1 });
    await run();
    const whole = (await readJsonl(paths.records("summarize"), StageRecord)).records;
    expect(whole).toHaveLength(5);
    // As if killed after storing the pack's first two items: no `collected` line, three records missing.
    const lines = (await readFile(paths.batches("summarize"), "utf8")).split("\n").filter((l) => l && !l.includes('"collected"'));
    await writeFile(paths.batches("summarize"), lines.join("\n") + "\n");
    const stored = (await readFile(paths.records("summarize"), "utf8")).split("\n").filter(Boolean).slice(0, 2);
    await writeFile(paths.records("summarize"), stored.join("\n") + "\n");

    const summary = await run();
    expect(summary.counts).toMatchObject({ cached: 2, done: 3 });
    expect(batches.creates).toBe(1);
    const recs = (await readJsonl(paths.records("summarize"), StageRecord)).records;
    const result = JSON.parse([...batches.batches.values()][0]!.results![0]!) as { result: { message: { usage: { input_tokens: number; output_tokens: number } } } };
    const billed = shareUsage({ inputTokens: result.result.message.usage.input_tokens, outputTokens: result.result.message.usage.output_tokens, cacheReadTokens: 0, cacheWriteTokens: 0 }, 5);
    // Each item's share is the one the uninterrupted collection gave it, and the records add up to the bill.
    expect(recs.map((r) => [r.itemId, r.usage])).toEqual(requests.map((r, i) => [r.itemId, billed[i]]));
    expect(recs.map((r) => r.usage)).toEqual(whole.map((r) => r.usage));
    // This run reports only the shares it stored.
    expect(summary.usage.inputTokens).toBe(billed.slice(2).reduce((a, u) => a + u.inputTokens, 0));
  });

  it("an item whose part of a packed batch answer is invalid is repaired alone in the next batch", async () => {
    fake = await createFakeAnthropic({
      answer: (body, info) => {
        const text = packedTitles(body);
        // N2's part of the first pack is not a title.
        return info.n === 1 && blockText(body.messages[0]!.content).includes("<item") ? text.replace('{"title":"Title for N2"}', '"no"') : text;
      },
    });
    const batches = installBatches(fake);
    const dir = await temp();
    const requests = titleRequests(5).map((r): LlmRequest => ({ ...r, packable: true }));
    const summary = await runEngineWith(
      { stage: "summarize", requests, runDir: dir },
      config({ provider: "anthropic-batch", "base-url": fake.url, pack: 5 }),
      context({ ANTHROPIC_API_KEY: "k" }),
      { batchPollMs: 1 },
    );
    expect(summary.counts).toMatchObject({ done: 5, failed: 0 });
    expect(batches.creates).toBe(2);
    const repair = [...batches.batches.values()][1]!.requests;
    expect(repair).toHaveLength(1);
    expect(repair[0]!.params.messages).toHaveLength(3);
    expect(blockText(repair[0]!.params.messages[0]!.content)).toMatch(/news N2/);
    const recs = (await readJsonl(runPaths(dir).records("summarize"), StageRecord)).records;
    expect(recs.find((r) => r.itemId === "N2")).toMatchObject({ attempts: 2, output: { title: "Title for N2" } });
    expect(recs.filter((r) => r.pack === 5)).toHaveLength(4);
  });
});

