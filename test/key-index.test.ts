// The planner's compact memory: 64-bit hash sets and maps over typed arrays.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openBatches } from "../src/engine/batch-runner.js";
import { hash64, HashMap64, HashSet64, pairHash } from "../src/engine/key-index.js";
import { sha256 } from "../src/util/hash.js";
import { storedAt } from "../src/engine/plan.js";
import { tempDir } from "./helpers/temp.js";

describe("HashMap64 / HashSet64", () => {
  it("keeps every entry through growth, overwrites in place, and finds nothing it was not given", () => {
    const map = new HashMap64(4);
    const set = new HashSet64();
    const keys = Array.from({ length: 50_000 }, (_, i) => sha256(`key ${i}`));
    keys.forEach((k, i) => map.set(hash64(k), i * 4 + (i % 4)));
    keys.forEach((k, i) => set.add(pairHash(hash64(k), `U${i}`)));
    expect(map.size).toBe(keys.length);
    expect(keys.every((k, i) => map.get(hash64(k)) === i * 4 + (i % 4))).toBe(true);
    map.set(hash64(keys[7]!), 2 ** 52);
    expect(map.get(hash64(keys[7]!))).toBe(2 ** 52);
    expect(map.size).toBe(keys.length);
    expect(map.get(hash64(sha256("not a key")))).toBeUndefined();
    // values(): every key's current value, once.
    const values = [...map.values()].sort((a, b) => a - b);
    const expected = keys.map((_, i) => (i === 7 ? 2 ** 52 : i * 4 + (i % 4))).sort((a, b) => a - b);
    expect(values).toEqual(expected);
    expect(set.size).toBe(keys.length);
    expect(set.has(pairHash(hash64(keys[3]!), "U3"))).toBe(true);
    // The same key with another item, and the same item with another key, are other pairs.
    expect(set.has(pairHash(hash64(keys[3]!), "U4"))).toBe(false);
    expect(set.has(pairHash(hash64(keys[4]!), "U3"))).toBe(false);
  });

  it("hashes any string, not only hex keys, and tells near strings apart", () => {
    const seen = new HashSet64();
    for (let i = 0; i < 20_000; i++) {
      const h = hash64(`N${i}`);
      expect(seen.has(h)).toBe(false);
      seen.add(h);
    }
    expect(hash64("ab")).not.toEqual(hash64("ba"));
    expect(hash64("é")).toEqual(hash64("é"));
  });
});

describe("a stored record's offset and flags (plan.ts)", () => {
  it("keep offsets past 512 MB, where offset × 4 no longer fits a 32-bit integer", () => {
    for (const offset of [0, 123, 2 ** 29 - 1, 2 ** 29, 2 ** 29 + 77, 624_657_583, 2 ** 40 + 3]) {
      const stored = storedAt.pack(offset, 1);
      expect(storedAt.offset(stored)).toBe(offset);
      const seen = storedAt.with(stored, 2);
      expect(storedAt.offset(seen)).toBe(offset);
      expect([storedAt.has(seen, 1), storedAt.has(seen, 2)]).toEqual([true, true]);
      expect(storedAt.with(seen, 2)).toBe(seen);
      expect(storedAt.has(storedAt.pack(offset, 0), 1)).toBe(false);
    }
  });
});

describe("openBatches", () => {
  it("counts each key once, at the last intent or batch holding it, and only while that one is open", async () => {
    const file = join(await tempDir("gm-open-"), "summarize.batches.jsonl");
    const at = "2026-12-02T00:00:00.000Z";
    const items = (...keys: string[]) => keys.map((key) => ({ key, attempts: 1 }));
    const lines = [
      { batch: "b1", at, items: items("k1", "k2") }, // collected: k1 done; k2 moved on to b2
      { batch: "b2", at, items: items("k2", "k3") }, // open
      { intent: "t1", at, items: [{ key: "p1", attempts: 0, members: items("k4", "k5") }] }, // an intent whose batch was never recorded: open
      { intent: "t2", at, items: items("k3", "k6") }, // k3 re-sent in t2's batch b3, collected: k3 is done, b2 holds only k2
      { batch: "b3", at, intent: "t2" },
      { collected: "b1", at },
      { collected: "b3", at },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    expect(await openBatches(file)).toEqual({ batches: 2, items: 3 });
  });
});
