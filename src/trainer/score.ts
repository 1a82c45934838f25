import { MindFormatError } from "../mind/errors.js";
import { historyClass, type HistoryClass } from "../mind/history-rule.js";
import { parseImpressions, readBehaviors } from "../mind/read.js";
import { impressionMetrics, MeanAccumulator, METRIC_KEYS, METRIC_LABELS, type MetricKey } from "./metrics.js";
import { PredictionReader, type FormatSource, type PredictionFormat } from "./predictions.js";
import { BOOTSTRAP_METRICS, mean, pairedBootstrap, pairedTTest, sampleStd, type TestResult, type TTestResult } from "./stats.js";

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

/** One prediction file's scores: one training seed of a run. */
export interface FileScore {
  file: string;
  /** How its numbers were read; undefined only for a file of no lines (an empty truth file). */
  format: PredictionFormat | undefined;
  /** Given by --pred-format, or taken from the file's layout (bracketed: ranks; tab-separated: scores). */
  formatSource: FormatSource;
  groups: Record<Group, GroupScore>;
}

export interface RunScore {
  name: string;
  files: FileScore[];
  /** Impression counts, and each metric's mean over the run's files. */
  groups: Record<Group, GroupScore>;
  /** Sample standard deviation over the files (n − 1); null with one file. */
  std: Record<Group, Record<MetricKey, number | null>>;
}

/** A run: a name and its prediction files, one per training seed. */
export interface RunSpec {
  name: string;
  files: readonly string[];
  /** How to read every line of its files; without it, see PredictionFormat. */
  format?: PredictionFormat;
}

export interface ScoreOptions {
  truth: string;
  runs: readonly RunSpec[];
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

/** A typed array that grows by doubling: per-impression values without a JS number[] per value. */
class Growable<A extends Float64Array | Int32Array | Uint8Array> {
  length = 0;
  constructor(
    private data: A,
    private readonly make: (n: number) => A,
  ) {}
  /** Appends `n` zeros and returns where they start. */
  extend(n: number): number {
    if (this.length + n > this.data.length) {
      const bigger = this.make(Math.max(2 * this.data.length, this.length + n));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.length += n;
    return this.length - n;
  }
  get values(): A {
    return this.data;
  }
  view(): A {
    return this.data.subarray(0, this.length) as A;
  }
}

/**
 * Per impression with both classes (in truth order): its user group (index into GROUPS minus one)
 * and, per run, each metric summed over the run's files — what the paired bootstrap resamples.
 */
export interface ImpressionValues {
  stratum: Uint8Array;
  /** Its user, numbered per group in order of appearance: the bootstrap's clusters. */
  user: Int32Array;
  /** Per run, METRIC_KEYS.length values per impression. */
  sums: Float64Array[];
}

export interface Scored {
  runs: RunScore[];
  /** Kept only when there are runs to compare (two or more). */
  impressions: ImpressionValues | undefined;
}

// The bootstrap adds the four metrics with four named sums (see pairedBootstrap): a fifth metric must fail here.
METRIC_KEYS.length satisfies typeof BOOTSTRAP_METRICS;

const STRATUM: Record<Exclude<Group, "all">, number> = { empty: 0, cold: 1, warm: 2 };

/**
 * Streams the truth behaviors.tsv once, scoring every prediction file side by side. Memory: the
 * running sums, whatever predictions a file lists ahead of their impression (see PredictionReader)
 * and, when runs are compared, 32 bytes per impression and run (the bootstrap's input).
 */
export async function scorePredictions(opts: ScoreOptions): Promise<Scored> {
  const files = opts.runs.flatMap((run, r) => run.files.map((file) => ({ file, run: r })));
  const readers = files.map((f) => new PredictionReader(f.file, opts.runs[f.run]!.format));
  const tallies = readers.map(() => Object.fromEntries(GROUPS.map((g) => [g, new GroupTally()])) as Record<Group, GroupTally>);
  const K = METRIC_KEYS.length;
  const compare = opts.runs.length > 1;
  const stratum = new Growable(new Uint8Array(compare ? 1 << 16 : 0), (n) => new Uint8Array(n));
  const user = new Growable(new Int32Array(compare ? 1 << 16 : 0), (n) => new Int32Array(n));
  // A user's number in the group of this impression: a user in two groups (a truth file of two
  // splits) is two clusters, so each cluster lies within one group.
  const users = new Map<string, number>();
  const sums = opts.runs.map(() => new Growable(new Float64Array(compare ? K << 16 : 0), (n) => new Float64Array(n)));
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
      // Where this impression's values go, when it has both classes (AUC is undefined otherwise).
      let slot = -1;
      for (let r = 0; r < readers.length; r++) {
        const reader = readers[r]!;
        const p = await reader.take(key);
        if (!p) {
          const by = opts.matchBy === "id" ? "Impression ID" : "truth line number";
          // The other key is the usual mix-up: recommenders writes prediction.txt keyed by line number.
          const other = opts.matchBy === "id" ? String(row.lineNo) : row.impressionId;
          const hint = other !== key && reader.has(other) ? `; the file has a prediction keyed ${other}: run with --match ${opts.matchBy === "id" ? "line" : "id"}` : "";
          throw new MindFormatError(opts.truth, row.lineNo, "Impression ID", `no prediction for impression ${key} in ${reader.file} (matched by ${by})${hint}`);
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
        if (compare && m) {
          if (slot === -1) {
            slot = stratum.extend(1);
            stratum.values[slot] = STRATUM[group];
            user.extend(1);
            const key = `${group} ${row.userId}`;
            let u = users.get(key);
            if (u === undefined) users.set(key, (u = users.size));
            user.values[slot] = u;
            for (const s of sums) s.extend(K);
          }
          const v = sums[files[r]!.run]!.values;
          for (let k = 0; k < K; k++) v[slot * K + k] = v[slot * K + k]! + m[METRIC_KEYS[k]!];
        }
      }
    }
    for (const reader of readers) await reader.finish();
  } finally {
    for (const reader of readers) await reader.close();
  }
  const runs = opts.runs.map((run, r): RunScore => {
    const own = files.flatMap((f, i) => (f.run === r ? [{ file: f.file, format: readers[i]!.format, formatSource: readers[i]!.source, groups: tallyResults(tallies[i]!) }] : []));
    return { name: run.name, files: own, ...acrossFiles(own) };
  });
  return { runs, impressions: compare ? { stratum: stratum.view(), user: user.view(), sums: sums.map((s) => s.view()) } : undefined };
}

function tallyResults(t: Record<Group, GroupTally>): Record<Group, GroupScore> {
  return Object.fromEntries(GROUPS.map((g) => [g, t[g].result()])) as Record<Group, GroupScore>;
}

/** Mean and sample standard deviation over a run's files, per group and metric. */
function acrossFiles(files: FileScore[]): Pick<RunScore, "groups" | "std"> {
  const groups = {} as Record<Group, GroupScore>;
  const std = {} as Record<Group, Record<MetricKey, number | null>>;
  for (const g of GROUPS) {
    const first = files[0]!.groups[g];
    groups[g] = { impressions: first.impressions, skipped: first.skipped, auc: null, mrr: null, ndcg5: null, ndcg10: null };
    std[g] = { auc: null, mrr: null, ndcg5: null, ndcg10: null };
    for (const k of METRIC_KEYS) {
      if (first[k] === null) continue;
      const values = files.map((f) => f.groups[g][k]!);
      groups[g][k] = mean(values);
      std[g][k] = sampleStd(values);
    }
  }
  return { groups, std };
}

/** `b - a` in points (×100), the unit papers report; null when either side has no impressions. */
export function differencePoints(a: GroupScore, b: GroupScore, k: MetricKey): number | null {
  const x = a[k];
  const y = b[k];
  return x === null || y === null ? null : (y - x) * 100;
}

/** A difference of one metric in one group, in points, with its tests. */
export interface MetricComparison {
  difference: number | null;
  /** Paired bootstrap over impressions (each run's files averaged per impression). */
  bootstrap: TestResult | null;
  /** Paired t-test over files (file i of the run against file i of the baseline). */
  tTest: TTestResult | null;
}

export interface Comparison {
  name: string;
  baseline: string;
  /** Why there is no t-test, when there is none. */
  tTestSkipped?: string;
  groups: Record<Group, Record<MetricKey, MetricComparison>>;
}

export interface SignificanceOptions {
  /** Bootstrap resamples (0: no bootstrap). */
  resamples: number;
  seed: number;
  /** What a resample draws: users (each with all their impressions of the group) or single impressions. */
  resampleBy: "users" | "impressions";
}

export interface ScoreReport {
  truth: string;
  matchBy: MatchBy;
  coldMax: number;
  bootstrap: SignificanceOptions & { method: string };
  tTest: { method: string };
  runs: RunScore[];
  /** Every run after the first against the first, in points (×100). */
  differences: Comparison[];
}

const BOOTSTRAP_METHOD: Record<SignificanceOptions["resampleBy"], string> = {
  users:
    "paired bootstrap over the users of each group, each drawn with all their impressions (each run's files averaged per impression); 95% percentile interval; two-sided p = (1 + #{|δ* − δ| ≥ |δ|}) / (B + 1)",
  impressions:
    "paired bootstrap over the impressions of each group (each run's files averaged per impression); 95% percentile interval; two-sided p = (1 + #{|δ* − δ| ≥ |δ|}) / (B + 1)",
};
const T_TEST_METHOD = "paired t-test over prediction files (file i of a run against file i of the first run), n − 1 degrees of freedom; 95% t interval";

const inPoints = (r: TestResult): TestResult => ({ p: r.p, ci: [r.ci[0] * 100, r.ci[1] * 100] });

function tTestSkipped(run: RunScore, base: RunScore): string | undefined {
  if (run.files.length !== base.files.length) {
    return `a paired t-test needs the same number of files in both runs (${run.name} ${run.files.length}, ${base.name} ${base.files.length})`;
  }
  if (run.files.length < 2) return "a t-test over seeds needs two or more files per run";
  return undefined;
}

export function scoreReport(opts: Omit<ScoreOptions, "runs">, scored: Scored, sig: SignificanceOptions): ScoreReport {
  const { runs, impressions } = scored;
  const base = runs[0]!;
  const K = METRIC_KEYS.length;
  const differences = runs.slice(1).map((run, i): Comparison => {
    let boot: ReturnType<typeof pairedBootstrap> | undefined;
    if (impressions && sig.resamples > 0) {
      const a = impressions.sums[0]!;
      const b = impressions.sums[i + 1]!;
      const d = new Float64Array(a.length);
      for (let j = 0; j < d.length; j++) d[j] = b[j]! / run.files.length - a[j]! / base.files.length;
      const clusterOf = sig.resampleBy === "users" ? impressions.user : undefined;
      boot = pairedBootstrap({ stratumOf: impressions.stratum, strata: 3, differences: d, clusterOf, resamples: sig.resamples, seed: sig.seed });
    }
    const skipped = tTestSkipped(run, base);
    const groups = Object.fromEntries(
      GROUPS.map((g, gi) => [
        g,
        Object.fromEntries(
          METRIC_KEYS.map((k, ki) => {
            const difference = differencePoints(base.groups[g], run.groups[g], k);
            const b = difference === null ? null : (boot?.[gi]?.[ki] ?? null);
            const t = skipped || difference === null ? null : pairedTTest(run.files.map((f, s) => (f.groups[g][k]! - base.files[s]!.groups[g][k]!) * 100));
            return [k, { difference, bootstrap: b && inPoints(b), tTest: t }];
          }),
        ),
      ]),
    ) as Record<Group, Record<MetricKey, MetricComparison>>;
    return { name: run.name, baseline: base.name, ...(skipped ? { tTestSkipped: skipped } : {}), groups };
  });
  return {
    truth: opts.truth,
    matchBy: opts.matchBy,
    coldMax: opts.coldMax,
    bootstrap: { ...sig, method: BOOTSTRAP_METHOD[sig.resampleBy] },
    tTest: { method: T_TEST_METHOD },
    runs,
    differences,
  };
}

const signedPoints = (v: number) => {
  const shown = Math.abs(v) < 0.005 ? 0 : v; // no "-0.00" from rounding noise
  return `${shown >= 0 ? "+" : ""}${shown.toFixed(2)}`;
};
const pValue = (p: number) => (p < 0.001 ? "<0.001" : p.toFixed(3));
const interval = (ci: [number, number]) => `[${signedPoints(ci[0])}, ${signedPoints(ci[1])}]`;

const reading = (f: FileScore): string =>
  f.format === undefined
    ? "(no lines)"
    : `${f.format} (${f.format === "ranks" ? "1 = best" : "higher = better"}, ${f.formatSource === "given" ? "--pred-format" : f.format === "ranks" ? "bracketed layout" : "tab-separated layout"})`;

/**
 * The table GENRE reported, one block per user group; several runs side by side, each later run
 * with its Δ row against the first and, below it, the bootstrap and t-test rows.
 */
export function formatScoreTable(report: ScoreReport): string {
  const names = report.runs.map((r) => r.name);
  const groupTitle: Record<Group, string> = {
    all: "all users",
    empty: "empty history",
    cold: `cold (1–${report.coldMax} clicks)`,
    warm: `warm (>${report.coldMax} clicks)`,
  };
  const num = (v: number) => v.toLocaleString("en-US");
  const seeds = report.runs.some((r) => r.files.length > 1);
  const boot = report.differences.length > 0 && report.bootstrap.resamples > 0;
  const lines = [
    `MIND metrics ×100, averaged over impressions with both clicked and unclicked candidates`,
    `truth: ${report.truth} (matched by ${report.matchBy === "id" ? "Impression ID" : "line number"})`,
  ];
  lines.push(`read as: ${report.runs.map((r) => `${r.name} ${[...new Set(r.files.map(reading))].join(" and ")}`).join("; ")}`);
  if (seeds) lines.push(`runs: ${report.runs.map((r) => `${r.name} (${r.files.length} file${r.files.length === 1 ? "" : "s"})`).join(", ")}; a run of several files shows mean ± standard deviation over them`);
  if (names.length > 1) lines.push(`Δ = run − ${names[0]}, in points`);
  if (boot) lines.push(`bootstrap: paired, over ${report.bootstrap.resampleBy === "users" ? "users (each with all their impressions)" : "impressions"}, ${num(report.bootstrap.resamples)} resamples (seed ${report.bootstrap.seed}), 95% percentile interval, two-sided p`);
  if (report.differences.some((d) => !d.tTestSkipped)) lines.push(`t-test: paired over files (file i of each run against file i of ${names[0]}), 95% interval, two-sided p`);

  // Cells are built first, then every column is as wide as its widest cell.
  type Row = { text: string } | { label: string; cells: string[] };
  const rows: Row[] = [];
  const metricRow = (label: string, cell: (k: MetricKey) => string) => rows.push({ label, cells: METRIC_KEYS.map(cell) });
  for (const g of GROUPS) {
    const first = report.runs[0]!.groups[g];
    rows.push({ text: `${groupTitle[g]}: ${num(first.impressions)} impression${first.impressions === 1 ? "" : "s"}` + (first.skipped ? ` (${num(first.skipped)} skipped: one class only)` : "") });
    for (const run of report.runs) {
      metricRow(`  ${run.name}`, (k) => {
        const v = run.groups[g][k];
        const sd = run.std[g][k];
        return v === null ? "–" : `${(v * 100).toFixed(2)}${sd === null ? "" : ` ± ${(sd * 100).toFixed(2)}`}`;
      });
    }
    for (const d of report.differences) {
      const c = d.groups[g];
      metricRow(`  Δ ${d.name}`, (k) => (c[k].difference === null ? "–" : signedPoints(c[k].difference!)));
      if (boot) {
        metricRow("      bootstrap 95% CI", (k) => (c[k].bootstrap ? interval(c[k].bootstrap!.ci) : "–"));
        metricRow("      bootstrap p", (k) => (c[k].bootstrap ? pValue(c[k].bootstrap!.p) : "–"));
      }
      if (!d.tTestSkipped) {
        metricRow("      t-test 95% CI", (k) => (c[k].tTest ? interval(c[k].tTest!.ci) : "–"));
        metricRow("      t-test p", (k) => (c[k].tTest ? pValue(c[k].tTest!.p) : "–"));
      }
    }
  }
  const labelled = rows.filter((r): r is { label: string; cells: string[] } => "label" in r);
  const labelWidth = Math.max(14, ...labelled.map((r) => r.label.length)) + 2;
  const widths = METRIC_KEYS.map((k, i) => Math.max(9, METRIC_LABELS[k].length + 2, ...labelled.map((r) => r.cells[i]!.length + 2)));
  lines.push("", "".padEnd(labelWidth) + METRIC_KEYS.map((k, i) => METRIC_LABELS[k].padStart(widths[i]!)).join(""));
  for (const r of rows) lines.push("text" in r ? r.text : r.label.padEnd(labelWidth) + r.cells.map((c, i) => c.padStart(widths[i]!)).join(""));
  const skipped = seeds ? report.differences.filter((d) => d.tTestSkipped) : [];
  if (skipped.length > 0) lines.push("", ...skipped.map((d) => `no t-test for ${d.name}: ${d.tTestSkipped}`));
  return lines.join("\n") + "\n";
}
