/**
 * Per-impression metrics exactly as MIND's official evaluate.py computes them:
 * - AUC: sklearn `roc_auc_score`, i.e. the Mann–Whitney statistic with tied scores counted as half;
 * - MRR: `sum(y[order] / (1..n)) / sum(y)` over the full ordering;
 * - nDCG@k: `dcg(y, score, k) / dcg(y, y, k)` with `dcg = sum((2^y - 1) / log2(rank + 1))` over the top k;
 * where `order = np.argsort(score)[::-1]`. Rank predictions become scores `1 / rank` first.
 *
 * Tied scores have no defined order in the official script (numpy's default sort is not stable);
 * we order them as a stable argsort reversed would: among equal scores the later candidate first.
 * Rank predictions are permutations, so the question only arises for the scores format.
 */
export interface ImpressionMetrics {
  auc: number;
  mrr: number;
  ndcg5: number;
  ndcg10: number;
}

export const METRIC_KEYS = ["auc", "mrr", "ndcg5", "ndcg10"] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];
export const METRIC_LABELS: Record<MetricKey, string> = { auc: "AUC", mrr: "MRR", ndcg5: "nDCG@5", ndcg10: "nDCG@10" };

/** Index order by descending score; equal scores: later index first (a reversed stable argsort). */
export function descendingOrder(scores: ArrayLike<number>): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  return order.sort((a, b) => scores[b]! - scores[a]! || b - a);
}

function auc(labels: ArrayLike<number>, scores: ArrayLike<number>, positives: number): number {
  const n = labels.length;
  const asc = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positiveRankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[asc[j + 1]!] === scores[asc[i]!]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) if (labels[asc[t]!] === 1) positiveRankSum += averageRank;
    i = j + 1;
  }
  const negatives = n - positives;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

function dcgAt(labels: ArrayLike<number>, order: readonly number[], k: number): number {
  let dcg = 0;
  for (let i = 0; i < Math.min(k, order.length); i++) dcg += (2 ** labels[order[i]!]! - 1) / Math.log2(i + 2);
  return dcg;
}

/** `labels` are 0/1. Returns undefined when the impression has one class only (AUC is undefined). */
export function impressionMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>): ImpressionMetrics | undefined {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i]!;
  if (positives === 0 || positives === labels.length) return undefined;
  const order = descendingOrder(scores);
  let rr = 0;
  for (let i = 0; i < order.length; i++) rr += labels[order[i]!]! / (i + 1);
  const ideal = descendingOrder(labels);
  return {
    auc: auc(labels, scores, positives),
    mrr: rr / positives,
    ndcg5: dcgAt(labels, order, 5) / dcgAt(labels, ideal, 5),
    ndcg10: dcgAt(labels, order, 10) / dcgAt(labels, ideal, 10),
  };
}

/** A running mean with compensated summation, so 2 million impressions average as exactly as numpy's pairwise sum. */
export class MeanAccumulator {
  private sum = 0;
  private compensation = 0;
  count = 0;
  add(v: number): void {
    const t = this.sum + v;
    if (Math.abs(this.sum) >= Math.abs(v)) this.compensation += this.sum - t + v;
    else this.compensation += v - t + this.sum;
    this.sum = t;
    this.count++;
  }
  mean(): number | null {
    return this.count === 0 ? null : (this.sum + this.compensation) / this.count;
  }
}
