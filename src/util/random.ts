/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence on every
 * machine and Node version, so a random split or a bootstrap can be repeated exactly. Not for
 * anything secret.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A whole number from 0 to n - 1 (n ≤ 2^32; the bias is below n / 2^32). */
  below(n: number): number {
    return Math.floor((this.nextUint32() / 4294967296) * n);
  }

  /**
   * Draws `draws` indices uniformly from 0 to counts.length - 1 and counts each draw in `counts`:
   * one bootstrap resample. The same sequence as calling below() that many times; kept as one
   * loop over a local state because it runs for every impression of every resample.
   */
  countDraws(counts: Uint32Array, draws: number): void {
    const n = counts.length;
    let state = this.state;
    for (let i = 0; i < draws; i++) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      counts[Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)]!++;
    }
    this.state = state;
  }

  /** Fisher–Yates, in place. */
  shuffle(a: Uint32Array): Uint32Array {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const x = a[i]!;
      a[i] = a[j]!;
      a[j] = x;
    }
    return a;
  }
}
