import { MindFormatError } from "../mind/errors.js";
import { historyClass, type HistoryClass } from "../mind/history-rule.js";
import { parseImpressions, readBehaviors } from "../mind/read.js";
import { impressionMetrics, MeanAccumulator, METRIC_KEYS, METRIC_LABELS, type MetricKey } from "./metrics.js";
import { PredictionReader, type PredictionFormat } from "./predictions.js";

/** GENRE's user groups by history length: empty (0), cold (1..coldMax), warm (more). */
export const GROUPS = ["all", "empty", "cold", "warm"] as const;
export type Group = (typeof GROUPS)[number];

/** How a prediction line finds its impression: by the Impression ID column, or by truth line number. */
export type MatchBy = "id" | "line";

export interface GroupScore {
  /** Impressions averaged over (two classes). */
  impressions: number;
  /** Impressions skipped because every candidate was clicked or none was. */
  skipped: number;
  /** Means over `impressions`, as fractions (0..1); null when the group has none. */
  auc: number | null;
  mrr: number | null;
  ndcg5: number | null;
  ndcg10: number | null;
}

export interface RunScore {
  pred: string;
  format: PredictionFormat | undefined;
  groups: Record<Group, GroupScore>;
}

export interface ScoreOptions {
  truth: string;
  preds: readonly string[];
  coldMax: number;
  matchBy: MatchBy;
}

export function groupOf(historyLength: number, coldMax: number): HistoryClass {
  return historyClass(historyLength, coldMax);
}

class GroupTally {
  impressions = 0;
  skipped = 0;
  readonly means = Object.fromEntries(METRIC_KEYS.map((k) => [k, new MeanAccumulator()])) as Record<MetricKey, MeanAccumulator>;
  result(): GroupScore {
    const out: GroupScore = { impressions: this.impressions, skipped: this.skipped, auc: null, mrr: null, ndcg5: null, ndcg10: null };
    for (const k of METRIC_KEYS) out[k] = this.means[k].mean();
    return out;
  }
}

/**
 * Streams the truth behaviors.tsv once, scoring every prediction file side by side. Memory: the
 * running sums, plus whatever predictions a file lists ahead of their impression (see PredictionReader).
 */
export async function scorePredictions(opts: ScoreOptions): Promise<RunScore[]> {
  const readers = opts.preds.map((p) => new PredictionReader(p));
  const tallies = readers.map(() => Object.fromEntries(GROUPS.map((g) => [g, new GroupTally()])) as Record<Group, GroupTally>);
  try {
    for await (const row of readBehaviors(opts.truth)) {
      const candidates = parseImpressions(row.impressions);
      const labels = new Uint8Array(candidates.length);
      for (let i = 0; i < candidates.length; i++) {
        const label = candidates[i]!.label;
        if (label === null) {
          throw new MindFormatError(opts.truth, row.lineNo, "Impressions", "no click labels (an unlabeled test split cannot be scored)");
        }
        labels[i] = label;
      }
      const key = opts.matchBy === "id" ? row.impressionId : String(row.lineNo);
      const group = groupOf(row.history.length, opts.coldMax);
      for (let r = 0; r < readers.length; r++) {
        const reader = readers[r]!;
        const p = await reader.take(key);
        if (!p) {
          const by = opts.matchBy === "id" ? "Impression ID" : "truth line number";
          throw new MindFormatError(opts.truth, row.lineNo, "Impression ID", `no prediction for impression ${key} in ${reader.file} (matched by ${by})`);
        }
        if (p.scores.length !== labels.length) {
          throw new MindFormatError(reader.file, p.lineNo, reader.format, `${p.scores.length} candidates, but impression ${key} (${opts.truth}:${row.lineNo}) has ${labels.length}`);
        }
        const m = impressionMetrics(labels, p.scores);
        for (const g of ["all", group] as const) {
          const t = tallies[r]![g];
          if (!m) {
            t.skipped++;
            continue;
          }
          t.impressions++;
          for (const k of METRIC_KEYS) t.means[k].add(m[k]);
        }
      }
    }
    for (const reader of readers) await reader.finish();
  } finally {
    for (const reader of readers) await reader.close();
  }
  return readers.map((reader, r) => ({
    pred: reader.file,
    format: reader.format,
    groups: Object.fromEntries(GROUPS.map((g) => [g, tallies[r]![g].result()])) as Record<Group, GroupScore>,
  }));
}

/** `b - a` in points (×100), the unit papers report; null when either side has no impressions. */
export function differencePoints(a: GroupScore, b: GroupScore, k: MetricKey): number | null {
  const x = a[k];
  const y = b[k];
  return x === null || y === null ? null : (y - x) * 100;
}

export interface ScoreReport {
  truth: string;
  matchBy: MatchBy;
  coldMax: number;
  runs: RunScore[];
  /** Every run after the first against the first, in points (×100). */
  differences: { pred: string; baseline: string; groups: Record<Group, Record<MetricKey, number | null>> }[];
}

export function scoreReport(opts: ScoreOptions, runs: RunScore[]): ScoreReport {
  const base = runs[0];
  const differences = base
    ? runs.slice(1).map((run) => ({
        pred: run.pred,
        baseline: base.pred,
        groups: Object.fromEntries(
          GROUPS.map((g) => [g, Object.fromEntries(METRIC_KEYS.map((k) => [k, differencePoints(base.groups[g], run.groups[g], k)]))]),
        ) as Record<Group, Record<MetricKey, number | null>>,
      }))
    : [];
  return { truth: opts.truth, matchBy: opts.matchBy, coldMax: opts.coldMax, runs, differences };
}

/** The table GENRE reported, one block per user group; several runs side by side with Δ rows. */
export function formatScoreTable(report: ScoreReport): string {
  const names = report.runs.map((r) => r.pred);
  const groupTitle: Record<Group, string> = {
    all: "all users",
    empty: "empty history",
    cold: `cold (1–${report.coldMax} clicks)`,
    warm: `warm (>${report.coldMax} clicks)`,
  };
  const rowLabels = [...names, ...names.slice(1).map((n) => `Δ ${n}`)];
  const labelWidth = Math.max(12, ...rowLabels.map((l) => l.length)) + 2;
  const col = 9;
  const cell = (v: number | null, signed = false): string => {
    if (v === null) return "–".padStart(col);
    const shown = Math.abs(v) < 0.005 ? 0 : v; // no "-0.00" from rounding noise
    return `${signed && shown >= 0 ? "+" : ""}${shown.toFixed(2)}`.padStart(col);
  };
  const num = (v: number) => v.toLocaleString("en-US");
  const lines = [
    `MIND metrics ×100, averaged over impressions with both clicked and unclicked candidates`,
    `truth: ${report.truth} (matched by ${report.matchBy === "id" ? "Impression ID" : "line number"})`,
  ];
  if (names.length > 1) lines.push(`Δ = run − ${names[0]}, in points`);
  lines.push("", "".padEnd(labelWidth + 2) + METRIC_KEYS.map((k) => METRIC_LABELS[k].padStart(col)).join(""));
  for (const g of GROUPS) {
    const first = report.runs[0]!.groups[g];
    lines.push(`${groupTitle[g]}: ${num(first.impressions)} impression${first.impressions === 1 ? "" : "s"}` + (first.skipped ? ` (${num(first.skipped)} skipped: one class only)` : ""));
    report.runs.forEach((run, i) => {
      lines.push(`  ${names[i]!.padEnd(labelWidth)}` + METRIC_KEYS.map((k) => cell(run.groups[g][k] === null ? null : run.groups[g][k]! * 100)).join(""));
    });
    report.differences.forEach((d, i) => {
      lines.push(`  ${`Δ ${names[i + 1]}`.padEnd(labelWidth)}` + METRIC_KEYS.map((k) => cell(d.groups[g][k], true)).join(""));
    });
  }
  return lines.join("\n") + "\n";
}
