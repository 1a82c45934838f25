import { describe, expect, it } from "vitest";
import { incompleteBeta, lnGamma, pairedBootstrap, pairedTTest, sampleStd, studentTCdf, studentTQuantile } from "../src/trainer/stats.js";
import { SeededRandom } from "../src/util/random.js";

describe("the Student t distribution", () => {
  it("lnGamma and the incomplete beta match closed forms", () => {
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    expect(lnGamma(0.1)).toBeCloseTo(Math.log(9.513507698668732), 12);
    for (const x of [0.01, 0.3, 0.5, 0.77, 0.99]) {
      expect(incompleteBeta(x, 1, 1)).toBeCloseTo(x, 13);
      expect(incompleteBeta(x, 3, 1)).toBeCloseTo(x ** 3, 13);
      expect(incompleteBeta(x, 1, 4)).toBeCloseTo(1 - (1 - x) ** 4, 13);
      expect(incompleteBeta(x, 2.5, 4) + incompleteBeta(1 - x, 4, 2.5)).toBeCloseTo(1, 13);
    }
    // scipy.special.betainc(2.5, 4, 0.3)
    expect(incompleteBeta(0.3, 2.5, 4)).toBeCloseTo(0.3521975859067672, 12);
  });

  it("is the Cauchy distribution at 1 degree of freedom and its closed form at 2", () => {
    for (const t of [-30, -2.5, -0.4, 0, 0.4, 1, 3.7, 50]) {
      expect(studentTCdf(t, 1)).toBeCloseTo(0.5 + Math.atan(t) / Math.PI, 13);
      expect(studentTCdf(t, 2)).toBeCloseTo(0.5 + t / (2 * Math.sqrt(2 + t * t)), 13);
    }
  });

  it("gives the critical values of the printed t tables", () => {
    const table: [number, number, number][] = [
      // [P(T ≤ t), df, t] as printed (three decimals)
      [0.975, 1, 12.706],
      [0.975, 2, 4.303],
      [0.975, 5, 2.571],
      [0.975, 10, 2.228],
      [0.975, 30, 2.042],
      [0.975, 120, 1.98],
      [0.995, 5, 4.032],
      [0.95, 10, 1.812],
      [0.9, 20, 1.325],
    ];
    for (const [p, df, t] of table) {
      expect(studentTQuantile(p, df)).toBeCloseTo(t, 3);
      expect(studentTQuantile(1 - p, df)).toBeCloseTo(-t, 3);
      expect(studentTCdf(t, df)).toBeCloseTo(p, 3);
    }
    // Far in the normal limit: 1.959964 at df → ∞.
    expect(studentTQuantile(0.975, 1e7)).toBeCloseTo(1.959964, 5);
  });
});

describe("pairedTTest", () => {
  it("reproduces Student's sleep data (R: t.test(extra ~ group, data = sleep, paired = TRUE))", () => {
    // Extra hours of sleep, drug 2 minus drug 1, for 10 patients (Cushny & Peebles, in Student 1908).
    const d = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4];
    const r = pairedTTest(d)!;
    // R prints: t = -4.0621, df = 9, p-value = 0.002833, 95 percent CI -2.4598858 -0.7001142 (other sign).
    expect(r.t).toBeCloseTo(4.0621, 4);
    expect(r.df).toBe(9);
    expect(r.p).toBeCloseTo(0.002833, 6);
    expect(r.ci[0]).toBeCloseTo(0.7001142, 6);
    expect(r.ci[1]).toBeCloseTo(2.4598858, 6);
  });

  it("handles two seeds, equal differences and a single seed", () => {
    // d = [30, 100/3]: mean 95/3, se = (10/3)/√2/√2 = 5/3, t = 19 at 1 df: p from the Cauchy CDF.
    const r = pairedTTest([30, 100 / 3])!;
    expect(r.t).toBeCloseTo(19, 10);
    expect(r.p).toBeCloseTo(1 - (2 * Math.atan(19)) / Math.PI, 12);
    expect(r.ci[0]).toBeCloseTo(95 / 3 - 12.706204736174707 * (5 / 3), 9);
    expect(pairedTTest([0, 0, 0])).toEqual({ p: 1, ci: [0, 0], t: 0, df: 2 });
    expect(pairedTTest([2, 2, 2])).toMatchObject({ p: 0, ci: [2, 2], t: Infinity });
    expect(pairedTTest([5])).toBeNull();
    expect(sampleStd([5])).toBeNull();
    expect(sampleStd([1, 3])).toBeCloseTo(Math.SQRT2, 14);
  });
});

/** Four metrics per impression, each `value(i)` (the bootstrap always takes four). */
function four(n: number, value: (i: number) => number): Float64Array {
  const d = new Float64Array(n * 4);
  for (let i = 0; i < n; i++) d.fill(value(i), i * 4, i * 4 + 4);
  return d;
}

describe("pairedBootstrap", () => {
  const boot = (stratumOf: number[], differences: Float64Array, resamples = 1000, seed = 1) =>
    pairedBootstrap({ stratumOf: Uint8Array.from(stratumOf), strata: 2, differences, resamples, seed });

  it("a difference that is the same on every impression: interval that value, p = 1 / (B + 1)", () => {
    const r = boot([0, 0, 0, 1, 1], four(5, () => 0.25));
    for (const block of r) for (const m of block) expect(m).toEqual({ p: 1 / 1001, ci: [0.25, 0.25] });
  });

  it("no difference at all: p = 1", () => {
    const r = boot([0, 0, 1, 1], four(4, () => 0));
    expect(r[0]![0]).toEqual({ p: 1, ci: [0, 0] });
  });

  it("resamples each group within itself and all impressions together", () => {
    // Group 0 all +1, group 1 all −1: within a group no spread; over all, the mix varies.
    const r = boot([0, 0, 0, 1, 1, 1], four(6, (i) => (i < 3 ? 1 : -1)));
    expect(r[1]![0]).toEqual({ p: 1 / 1001, ci: [1, 1] });
    expect(r[2]![0]).toEqual({ p: 1 / 1001, ci: [-1, -1] });
    expect(r[0]![0]!.ci[0]).toBeLessThan(-0.3);
    expect(r[0]![0]!.ci[1]).toBeGreaterThan(0.3);
    expect(r[0]![0]!.p).toBeGreaterThan(0.9);
  });

  it("two impressions 0 and 1: the resampled mean is 0, ½ or 1 with chances ¼, ½, ¼", () => {
    const r = boot([0, 0], four(2, (i) => i), 20000)[0]![0]!;
    expect(r.ci).toEqual([0, 1]);
    // |δ* − ½| ≥ ½ exactly when δ* is 0 or 1: half of the resamples (±3 standard errors).
    expect(r.p).toBeGreaterThan(0.5 - 0.011);
    expect(r.p).toBeLessThan(0.5 + 0.011);
  });

  it("agrees with the normal approximation on many impressions", () => {
    // 400 values alternating 0 and 1: mean ½, standard error ½ / √400 = 0.025.
    const r = boot(new Array<number>(400).fill(0), four(400, (i) => i % 2), 4000)[0]![0]!;
    expect(r.ci[0]).toBeCloseTo(0.5 - 1.96 * 0.025, 2);
    expect(r.ci[1]).toBeCloseTo(0.5 + 1.96 * 0.025, 2);
    expect(r.p).toBe(1 / 4001);
  });

  it("resamples users, not impressions, when given each impression's user", () => {
    // Two users of 100 impressions each, one +1 throughout, one −1: there are two observations, not 200.
    const d = four(200, (i) => (i < 100 ? 1 : -1));
    const stratum = Uint8Array.from({ length: 200 }, () => 0);
    const byImpression = pairedBootstrap({ stratumOf: stratum, strata: 1, differences: d, resamples: 2000, seed: 1 })[0]![0]!;
    expect(byImpression.ci[1] - byImpression.ci[0]).toBeLessThan(0.35);
    const clusterOf = Int32Array.from({ length: 200 }, (_, i) => (i < 100 ? 0 : 1));
    const byUser = pairedBootstrap({ stratumOf: stratum, strata: 1, differences: d, clusterOf, resamples: 2000, seed: 1 })[0]![0]!;
    // Two users drawn with replacement: a mean of −1, 0 or +1.
    expect(byUser.ci).toEqual([-1, 1]);
    // Users of unequal size: the mean is over impressions drawn (3 of +1 and 1 of −3 give 0).
    const uneven = Float64Array.from([1, 1, 1, -3].flatMap((v) => [v, v, v, v]));
    const r = pairedBootstrap({ stratumOf: new Uint8Array(4), strata: 1, differences: uneven, clusterOf: Int32Array.from([0, 0, 0, 1]), resamples: 4000, seed: 2 })[0]![0]!;
    expect(r.p).toBe(1);
    expect(r.ci[0]).toBe(-3);
    expect(r.ci[1]).toBe(1);
    // Every impression its own user: the impression bootstrap, draw for draw.
    const rng = new SeededRandom(5);
    const e = four(60, () => rng.nextUint32() / 2 ** 32 - 0.4);
    const strata = Uint8Array.from({ length: 60 }, (_, i) => i % 2);
    expect(pairedBootstrap({ stratumOf: strata, strata: 2, differences: e, clusterOf: Int32Array.from({ length: 60 }, (_, i) => i), resamples: 300, seed: 4 })).toEqual(
      pairedBootstrap({ stratumOf: strata, strata: 2, differences: e, resamples: 300, seed: 4 }),
    );
    expect(() => pairedBootstrap({ stratumOf: Uint8Array.from([0, 1]), strata: 2, differences: four(2, () => 1), clusterOf: Int32Array.from([0, 0]), resamples: 10, seed: 1 })).toThrow(/spans strata/);
  });

  it("is deterministic for a seed, and leaves out groups of fewer than two impressions", () => {
    const rng = new SeededRandom(3);
    const d = four(50, () => rng.nextUint32() / 2 ** 32 - 0.45);
    const stratum = Array.from({ length: 50 }, (_, i) => (i === 49 ? 1 : 0));
    expect(boot(stratum, d, 500, 9)).toEqual(boot(stratum, d, 500, 9));
    expect(boot(stratum, d, 500, 9)[0]![0]!.p).not.toBe(boot(stratum, d, 500, 10)[0]![0]!.p);
    expect(boot(stratum, d)[2]).toEqual([null, null, null, null]);
    expect(boot(stratum, d, 0)[0]).toEqual([null, null, null, null]);
  });
});

describe("SeededRandom", () => {
  it("countDraws draws what below() draws", () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const counts = new Uint32Array(7);
    a.countDraws(counts, 1000);
    const expected = new Uint32Array(7);
    for (let i = 0; i < 1000; i++) expected[b.below(7)]!++;
    expect(counts).toEqual(expected);
    expect(a.nextUint32()).toBe(b.nextUint32());
  });
});
