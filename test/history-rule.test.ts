// The history rule's pieces at MIND-large scale (typed arrays, bytes) agree with its plain statement.
import { describe, expect, it } from "vitest";
import {
  CandidateGuard,
  compareSplitTimes,
  forEachCode,
  HistoryProbe,
  NewsCodes,
  replacesSource,
  SourceTable,
  timeOrder,
  UserSources,
  type SplitTime,
} from "../src/mind/history-rule.js";
import { jaccard, NEAR_COPY_JACCARD, titleTokens } from "../src/stages/normalize.js";

const split = (name: string, dataIndex: number, start: number): SplitTime => ({ name, dataIndex, start });

describe("time order and source", () => {
  it("orders splits by first impression; ties and splits without a time keep --data order, timeless last", () => {
    const dev = split("dev", 0, Date.UTC(2019, 10, 15));
    const train = split("train", 1, Date.UTC(2019, 10, 9));
    const other = split("other", 2, Date.UTC(2019, 10, 9));
    const none = split("none", 3, Number.NaN);
    expect(timeOrder([none, dev, other, train]).map((s) => s.name)).toEqual(["train", "other", "dev", "none"]);
    expect(compareSplitTimes(train, train)).toBe(0);
    // Folding in any order leaves the earliest.
    for (const order of [[dev, train, none], [none, train, dev], [train, dev]]) {
      let best: SplitTime | undefined;
      for (const s of order) if (replacesSource(s, best)) best = s;
      expect(best?.name).toBe("train");
    }
  });

  it("UserSources picks each user's earliest non-empty history from rows fed in any split order", () => {
    const users = new UserSources(["dev", "train"]);
    const row = (userId: string, splitIndex: number, day: number, length: number) => {
      const line = Buffer.from(`x\t${userId}\t`);
      const u = users.see(line, 2, 2 + Buffer.byteLength(userId), splitIndex, Date.UTC(2019, 10, day));
      if (users.firstInSplit) users.setLength(u, splitIndex, length);
    };
    row("U1", 0, 15, 3); // dev first in --data, later in time
    row("U2", 0, 15, 2);
    row("U3", 0, 16, 0);
    row("Ü-4", 0, 16, 1); // not of the U<digits> form
    row("U1", 1, 10, 2);
    row("U2", 1, 11, 0);
    expect(users.firstInSplit).toBe(true);
    row("U2", 1, 12, 99);
    expect(users.firstInSplit).toBe(false);
    users.finish();
    expect(users.timeline.map((s) => s.name)).toEqual(["train", "dev"]);
    expect([users.sourceLength("U1"), users.sourceLength("U2"), users.sourceLength("U3"), users.sourceLength("Ü-4"), users.sourceLength("U9")]).toEqual([2, 2, 0, 1, 0]);
    expect([...users.ids()]).toEqual(["U1", "U2", "U3", "Ü-4"]);
    expect(users.indexAt(Buffer.from("Ü-4"), 0, Buffer.byteLength("Ü-4"))).toBe(3);
  });
});

describe("histories and candidates as bytes", () => {
  it("a SourceTable gives back every source it packed, past its first arrays", () => {
    const codes = new NewsCodes();
    const table = new SourceTable(codes);
    const sources = Array.from({ length: 3000 }, (_, i) => ({ split: i % 3 ? "train" : "dev", clicks: Array.from({ length: 1 + (i % 7) }, (_, k) => (k === 3 ? `NX${i}` : `N${i * 10 + k}`)) }));
    const at = sources.map((s) => table.add(s));
    sources.forEach((s, i) => expect(table.source(at[i]!)).toEqual(s));
  });

  it("a probe holds a history's IDs (numeric or not) and leaves out the skipped ones", () => {
    const codes = new NewsCodes();
    const sources = new SourceTable(codes);
    const clicks = sources.add({ split: "train", clicks: ["N12", "NX7", "N012"] });
    const other = sources.add({ split: "train", clicks: ["N12", "N4"] });
    const probe = new HistoryProbe(codes);
    const line = Buffer.from("1\tU1\tt\tN3  NX7 N12 N012 N99999999\tN5-1 N6-0");
    const [h0, h1] = [line.indexOf("\t", line.indexOf("\t", line.indexOf("\t") + 1) + 1) + 1, line.lastIndexOf("\t")];
    probe.load(line, h0, h1);
    expect([sources.heldBy(clicks, probe), sources.heldBy(other, probe)]).toEqual([true, false]);
    expect(probe.has(codes.code("N99999999"))).toBe(true);
    probe.load(line, h0, h1, (code) => code === codes.code("NX7"));
    expect(sources.heldBy(clicks, probe)).toBe(false);
    const seen: string[] = [];
    forEachCode(codes, line, h1 + 1, line.length, (c) => seen.push(codes.id(c)), true);
    expect(seen).toEqual(["N5", "N6"]);
  });

  it("the packed near-copy test agrees with jaccard over title words", () => {
    const words = "storm market team election vaccine recipe travel stocks coach movie the of review city".split(" ");
    let seed = 7;
    const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    // More titles than the guard's first arrays hold, so its growth is checked too.
    const titles = Array.from({ length: 2600 }, () => Array.from({ length: 1 + Math.floor(rand() * 9) }, () => words[Math.floor(rand() * words.length)]).join(" "));
    const guard = new CandidateGuard<number>((i) => titles[i]);
    let near = 0;
    for (let i = 0; i < 200; i++) {
      const item = guard.item(titles[i]!);
      for (let j = 200; j < 2600; j += i < 20 ? 1 : 12) {
        const expected = jaccard(titleTokens(titles[i]!), titleTokens(titles[j]!)) >= NEAR_COPY_JACCARD;
        if (expected) near++;
        expect(guard.conflict(item, j) === "near copy", `${titles[i]} / ${titles[j]}`).toBe(expected);
      }
    }
    expect(near).toBeGreaterThan(50);
    // A group answers for its items together, exactly as each would alone.
    for (let i = 0; i < 100; i += 2) {
      const items = [guard.item(titles[i]!, 2500), guard.item(titles[i + 1]!)];
      const group = guard.group(items);
      for (let j = 200; j < 2600; j += 7) {
        const alone = items.filter((item) => guard.conflict(item, j) !== undefined);
        expect((guard.conflicts(group, j) ?? []).map((c) => c.item), `${i} ${j}`).toEqual(alone);
      }
    }
    expect(guard.conflict(guard.item("anything", 5), 5)).toBe("retrieved");
    expect(guard.conflict(guard.item("Storm hits city"), 9999)).toBeUndefined();
  });

  it("the packed near-copy test finds every near copy when words share signature bits (a vocabulary past 32 words)", () => {
    let seed = 11;
    const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const vocabulary = Array.from({ length: 600 }, (_, i) => `w${i.toString(36)}x`);
    const word = () => vocabulary[Math.floor(rand() * vocabulary.length)]!;
    const bases = Array.from({ length: 150 }, () => Array.from({ length: 4 + Math.floor(rand() * 11) }, word));
    // Per base: itself, copies with one to three words replaced, and an unrelated title.
    const candidates = bases.flatMap((b) => [b, ...[1, 2, 3].map((n) => b.map((w, k) => (k < n ? word() : w))), Array.from({ length: b.length }, word)].map((t) => t.join(" ")));
    const guard = new CandidateGuard<number>((i) => candidates[i]);
    let exact = 0;
    let near = 0;
    for (const [i, base] of bases.entries()) {
      const title = base.join(" ");
      const item = guard.item(title);
      const group = guard.group([item, guard.item(bases[(i + 1) % bases.length]!.join(" "))]);
      for (let j = 0; j < candidates.length; j += i % 10 === 0 ? 1 : 7) {
        const expected = jaccard(titleTokens(title), titleTokens(candidates[j]!)) >= NEAR_COPY_JACCARD;
        if (expected) near++;
        if (candidates[j] === title) exact++;
        expect(guard.conflict(item, j) === "near copy", `${title} / ${candidates[j]}`).toBe(expected);
        expect((guard.conflicts(group, j) ?? []).map((c) => c.item).includes(item), `group: ${title} / ${candidates[j]}`).toBe(expected);
      }
    }
    expect(exact).toBeGreaterThan(30);
    expect(near).toBeGreaterThan(exact);
  });

  it("a title checked once gives its entry back, and the next one checked in its place is judged on its own words", () => {
    const titles = ["storm hits the city tonight", "market rallies after the vote", "coach leaves the team"];
    const guard = new CandidateGuard<number>((i) => titles[i]);
    const after = (title: string, from?: number) => guard.conflictOnce(title, from, [0, 1, 2]);
    // The candidates are packed on first sight (after the title that met them): that entry stays.
    expect(after("a recipe for soup")).toBeUndefined();
    const before = guard.item("probe").entry;
    expect(after("the storm hits city tonight")).toEqual({ candidate: 0, reason: "near copy" });
    for (let i = 0; i < 100; i++) {
      expect(after(i % 2 ? "market rallies after vote" : "a recipe for soup")).toEqual(i % 2 ? { candidate: 1, reason: "near copy" } : undefined);
    }
    expect(after("anything at all", 2)).toEqual({ candidate: 2, reason: "retrieved" });
    expect(guard.item("probe").entry).toBe(before + 1);
  });
});
