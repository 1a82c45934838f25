// Significance of a difference between two runs: a paired bootstrap over impressions and a paired
// t-test over training seeds. Written here (no statistics dependency): the Student t distribution
// comes from the regularized incomplete beta function, checked against table values in the tests.
import { SeededRandom } from "../util/random.js";

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-14). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of I_x(a, b), evaluated by the modified Lentz method. */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    // Even step, then odd step of the fraction.
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-16) return h;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), for 0 ≤ x ≤ 1 and a, b > 0. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The fraction converges fast only on this side of the mean; the other side uses symmetry.
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(x, a, b)) / a;
  return 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom (df > 0). */
export function studentTCdf(t: number, df: number): number {
  if (Number.isNaN(t)) return Number.NaN;
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0;
  // P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2).
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** The t with P(T ≤ t) = p, by bisection on the CDF (exact to double precision; called a few times per report). */
export function studentTQuantile(p: number, df: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function sampleStd(values: ArrayLike<number>): number | null {
  const n = values.length;
  if (n < 2) return null;
  const m = mean(values);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - m) ** 2;
  return Math.sqrt(ss / (n - 1));
}

export interface TestResult {
  /** Two-sided p-value of "no difference". */
  p: number;
  /** 95% interval of the difference (same unit as the input). */
  ci: [number, number];
}

export interface TTestResult extends TestResult {
  t: number;
  df: number;
}

/**
 * Paired t-test on the differences d_i = b_i − a_i (one per seed): t = mean(d) / (sd(d) / √n) with
 * n − 1 degrees of freedom; the 95% interval is mean(d) ± t₀.₉₇₅ · sd(d) / √n. Null for n < 2.
 * Differences that are all equal have sd 0: p is 1 when they are 0, else 0.
 */
export function pairedTTest(differences: ArrayLike<number>): TTestResult | null {
  const n = differences.length;
  if (n < 2) return null;
  const m = mean(differences);
  const se = sampleStd(differences)! / Math.sqrt(n);
  const df = n - 1;
  const t = se === 0 ? (m === 0 ? 0 : m > 0 ? Infinity : -Infinity) : m / se;
  const p = Math.min(1, 2 * studentTCdf(-Math.abs(t), df));
  const half = studentTQuantile(0.975, df) * se;
  return { p, ci: [m - half, m + half], t, df };
}

/** numpy's default ("linear") quantile of sorted values. */
function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const frac = pos - i;
  return i + 1 < sorted.length ? sorted[i]! + frac * (sorted[i + 1]! - sorted[i]!) : sorted[i]!;
}

/** Values per impression in a bootstrap: the four MIND metrics. */
export const BOOTSTRAP_METRICS = 4;

export interface BootstrapInput {
  /** Per impression, its stratum (user group) from 0 to strata − 1. */
  stratumOf: Uint8Array;
  strata: number;
  /** Per impression, BOOTSTRAP_METRICS consecutive values: the paired difference b − a of each metric. */
  differences: Float64Array;
  /**
   * Per impression, its cluster (a user): a resample draws clusters, each with all its impressions.
   * A cluster's impressions must share a stratum. Without it, each impression is its own cluster.
   */
  clusterOf?: Int32Array;
  resamples: number;
  seed: number;
}

/**
 * Paired bootstrap for all impressions (index 0) and within each stratum s (index s + 1). A
 * resample draws as many clusters as the block has, with replacement, and takes the mean difference
 * over the impressions drawn (Σ drawn sums / Σ drawn impressions). Clusters are users by default
 * (score): MIND's impressions come several per user, and a user's are alike, so drawing impressions
 * one by one would take them for independent and make the interval too narrow. Per block and metric:
 * the 95% percentile interval of the resampled means (numpy's linear quantiles 2.5% and 97.5%) and
 * the two-sided p-value of the centred test, (1 + #{|δ* − δ| ≥ |δ|}) / (B + 1), where δ is the
 * observed mean and δ* a resampled one: how often resampling noise alone moves the mean as far as the
 * difference is from zero. Null where a block has fewer than two clusters (no spread to resample).
 */
export function pairedBootstrap(input: BootstrapInput): (TestResult | null)[][] {
  const { stratumOf, strata, differences, resamples: B } = input;
  const K = BOOTSTRAP_METRICS;
  const n = stratumOf.length;
  // One row per cluster: its impressions' summed differences and their count.
  const clusterOf = input.clusterOf ?? Int32Array.from({ length: n }, (_, i) => i);
  let clusters = 0;
  for (let i = 0; i < n; i++) clusters = Math.max(clusters, clusterOf[i]! + 1);
  const clusterStratum = new Int32Array(clusters).fill(-1);
  const clusterSums = new Float64Array(clusters * K);
  const clusterSizes = new Float64Array(clusters);
  for (let i = 0; i < n; i++) {
    const c = clusterOf[i]!;
    if (clusterStratum[c] === -1) clusterStratum[c] = stratumOf[i]!;
    else if (clusterStratum[c] !== stratumOf[i]) throw new Error(`pairedBootstrap: cluster ${c} spans strata ${clusterStratum[c]} and ${stratumOf[i]}`);
    clusterSizes[c]!++;
    for (let k = 0; k < K; k++) clusterSums[c * K + k] = clusterSums[c * K + k]! + differences[i * K + k]!;
  }
  // Each stratum's clusters contiguous, so a stratum is one block; the whole array is the block of all.
  const sizes = new Array<number>(strata).fill(0);
  for (let c = 0; c < clusters; c++) if (clusterStratum[c]! >= 0) sizes[clusterStratum[c]!]!++;
  const starts = new Array<number>(strata).fill(0);
  for (let s = 1; s < strata; s++) starts[s] = starts[s - 1]! + sizes[s - 1]!;
  const total = starts[strata - 1]! + sizes[strata - 1]!;
  const rows = new Float64Array(total * K);
  const counts = new Float64Array(total);
  const fill = starts.slice();
  for (let c = 0; c < clusters; c++) {
    const s = clusterStratum[c]!;
    if (s < 0) continue;
    const at = fill[s]!++;
    rows.set(clusterSums.subarray(c * K, (c + 1) * K), at * K);
    counts[at] = clusterSizes[c]!;
  }
  const blocks = [{ start: 0, size: total }, ...sizes.map((size, s) => ({ start: starts[s]!, size }))];

  const rng = new SeededRandom(input.seed);
  // A resample is held as how often each cluster was drawn: the draws touch only this small
  // array, and the sums then read the values in order. Drawing straight into the values would jump
  // around 32 bytes × clusters of memory, several times slower once that leaves the cache.
  const drawn = new Uint32Array(total);
  const result: (TestResult | null)[][] = [];
  for (const { start, size } of blocks) {
    if (size < 2 || B === 0) {
      result.push(new Array<null>(K).fill(null));
      continue;
    }
    const block = rows.subarray(start * K, (start + size) * K);
    const sizesHere = counts.subarray(start, start + size);
    const times = drawn.subarray(0, size);
    const samples = new Float64Array(K * B);
    for (let b = 0; b < B; b++) {
      rng.countDraws(times, size);
      // Four named sums: a loop over the metrics inside this one runs several times slower.
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let impressions = 0;
      for (let j = 0, o = 0; j < size; j++, o += K) {
        const w = times[j]!;
        s0 += w * block[o]!;
        s1 += w * block[o + 1]!;
        s2 += w * block[o + 2]!;
        s3 += w * block[o + 3]!;
        impressions += w * sizesHere[j]!;
      }
      times.fill(0);
      samples[b] = s0 / impressions;
      samples[B + b] = s1 / impressions;
      samples[2 * B + b] = s2 / impressions;
      samples[3 * B + b] = s3 / impressions;
    }
    let impressions = 0;
    for (let j = 0; j < size; j++) impressions += sizesHere[j]!;
    const row: TestResult[] = [];
    for (let k = 0; k < K; k++) {
      let sum = 0;
      for (let j = 0; j < size; j++) sum += block[j * K + k]!;
      const delta = sum / impressions;
      const sample = samples.subarray(k * B, (k + 1) * B).sort();
      let extreme = 0;
      for (let b = 0; b < B; b++) if (Math.abs(sample[b]! - delta) >= Math.abs(delta)) extreme++;
      row.push({ p: (1 + extreme) / (B + 1), ci: [quantileSorted(sample, 0.025), quantileSorted(sample, 0.975)] });
    }
    result.push(row);
  }
  return result;
}
