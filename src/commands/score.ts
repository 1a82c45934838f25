import { z } from "zod";
import { defineCommand, UsageError, zBool, zInt, zStringList } from "../cli/command.js";
import { inputFile } from "../cli/paths.js";
import { DEFAULT_COLD_MAX } from "../mind/history-rule.js";
import { PREDICTION_FORMATS, type PredictionFormat } from "../trainer/predictions.js";
import { formatScoreTable, scorePredictions, scoreReport, type RunSpec } from "../trainer/score.js";

/**
 * `--pred` values → runs. `name=a.tsv,b.tsv` names a run of several files (one per training seed);
 * a repeated name adds files to its run; a bare `file` is a run of one file named by the file.
 */
export function parseRuns(values: readonly string[]): RunSpec[] {
  const runs = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const value of values) {
    const eq = value.indexOf("=");
    const name = eq === -1 ? value : value.slice(0, eq);
    const files = eq === -1 ? [value] : value.slice(eq + 1).split(",");
    if (name.length === 0) throw new UsageError(`--pred '${value}': the run name before '=' is empty`);
    if (files.some((f) => f.length === 0)) throw new UsageError(`--pred '${value}': expected name=file or name=file1,file2,… (an empty file name)`);
    for (const f of files) {
      if (seen.has(f)) throw new UsageError(`--pred: the file ${f} is given twice`);
      seen.add(f);
    }
    runs.set(name, [...(runs.get(name) ?? []), ...files]);
  }
  return [...runs].map(([name, files]) => ({ name, files }));
}

/**
 * `--pred-format` values → each run's format: `ranks|scores` for every run, `name=ranks|scores` for
 * one (it wins over the bare value). A run with none reads its files by their layout.
 */
function withFormats(runs: readonly RunSpec[], values: readonly string[]): RunSpec[] {
  let all: PredictionFormat | undefined;
  const named = new Map<string, PredictionFormat>();
  for (const value of values) {
    const eq = value.indexOf("=");
    const name = eq === -1 ? undefined : value.slice(0, eq);
    const format = (eq === -1 ? value : value.slice(eq + 1)) as PredictionFormat;
    if (!PREDICTION_FORMATS.includes(format)) throw new UsageError(`--pred-format '${value}': expected ranks or scores, or <run>=ranks|scores`);
    if (name === undefined) {
      if (all !== undefined && all !== format) throw new UsageError(`--pred-format: both ${all} and ${format} for every run`);
      all = format;
      continue;
    }
    if (!runs.some((r) => r.name === name)) throw new UsageError(`--pred-format '${value}': no run named '${name}' (runs: ${runs.map((r) => r.name).join(", ")})`);
    const before = named.get(name);
    if (before !== undefined && before !== format) throw new UsageError(`--pred-format: both ${before} and ${format} for run '${name}'`);
    named.set(name, format);
  }
  return runs.map((r) => {
    const format = named.get(r.name) ?? all;
    return format ? { ...r, format } : { ...r };
  });
}

export const scoreCommand = defineCommand({
  name: "score",
  summary: "MIND metrics (AUC, MRR, nDCG@5/10) of prediction files, by user group, runs side by side with significance tests",
  options: {
    truth: { type: "string", arg: "<behaviors.tsv>", description: "labeled behaviors.tsv the predictions are for (e.g. MINDsmall_dev)" },
    pred: {
      type: "string",
      multiple: true,
      arg: "<[name=]file,…>",
      description: "prediction file(s) of a run: 'file', or 'name=seed1.tsv,seed2.tsv,…' (one file per training seed); the first run is the baseline",
    },
    "pred-format": {
      type: "string",
      multiple: true,
      arg: "<[run=]ranks|scores>",
      description:
        "what the numbers are: ranks (1 = best, as in MIND's '<id> [2,1,3]') or scores (higher = better); 'run=…' for one run. Default: bracketed lists are ranks, tab-separated ones scores (below)",
    },
    "cold-max": { type: "string", arg: "<n>", description: `most history clicks of a cold user (default ${DEFAULT_COLD_MAX}; 0 clicks = empty)` },
    match: { type: "string", arg: "id|line", description: "find a prediction's impression by Impression ID (default) or by truth line number" },
    resamples: { type: "string", arg: "<n>", description: "paired bootstrap resamples (default 1000; 0: no bootstrap)" },
    "bootstrap-seed": { type: "string", arg: "<n>", description: "seed of the bootstrap's draws (default 1)" },
    "resample-by": { type: "string", arg: "users|impressions", description: "what the bootstrap draws: users, each with all their impressions (default), or single impressions" },
    json: { type: "boolean", description: "print the report as JSON" },
  },
  schema: z.object({
    truth: z.string({ error: "required: the labeled behaviors.tsv" }),
    pred: zStringList.refine((l) => l.length > 0, { error: "required: at least one prediction file" }),
    "pred-format": zStringList.default([]),
    "cold-max": zInt(1).default(DEFAULT_COLD_MAX),
    match: z.enum(["id", "line"]).default("id"),
    resamples: zInt(0, 1_000_000).default(1000),
    "bootstrap-seed": zInt(0, 2 ** 32 - 1).default(1),
    "resample-by": z.enum(["users", "impressions"]).default("users"),
    json: zBool.default(false),
    positionals: z.array(z.string()),
  }),
  details: `A prediction line is '<impression id> [r1,r2,…]' (bracketed, comma-separated) or
'<impression id><TAB><s1> <s2> …'. Ranks (1 = best) and scores (higher = better) give opposite
metrics, and a list like [3,1,2] reads as either, so the numbers cannot tell: --pred-format says
which, for every line of a run's files, in either layout. Without it the layout decides for the
whole file: bracketed is ranks (MIND's submission format; a line that is not a permutation of 1..n
stops it, naming --pred-format scores), tab-separated is scores (refused when every line is a
permutation of 1..n, which reads as ranks too); a line of the other layout stops it.
The table's 'read as' line and the JSON's format and
formatSource say how each file was read.

Metrics are those of MIND's official evaluate.py: per impression sklearn AUC (ties averaged),
MRR and nDCG@k over the candidates ordered by score (ranks r become scores 1/r), averaged over
impressions. Impressions whose candidates are all clicked or all unclicked are skipped and counted.
Groups come from the truth file's History column: empty, cold (1..--cold-max clicks), warm.
recommenders writes prediction.txt (bracketed ranks) keyed by line number (index + 1);
on the official MIND files Impression ID equals the line number, so both --match modes agree there.

A run of several files (seeds) shows mean ± sample standard deviation over its files. Each later
run is compared with the first: a paired bootstrap (each run's files averaged per impression; the
users of each group resampled with replacement, each with all their impressions — a user's
impressions are alike, so drawing them one by one (--resample-by impressions) narrows the interval
more than the data allow —, --resamples times, seeded: the same input gives the same numbers)
gives a 95% percentile interval of the difference and the
two-sided p = (1 + #{|δ* − δ| ≥ |δ|}) / (resamples + 1); with the same number (≥ 2) of
files in both runs, a paired t-test over files (file i against file i: give seeds in the same
order) gives its own p and 95% interval.`,
  async run(config, ctx) {
    const runs = withFormats(parseRuns(config.pred), config["pred-format"]);
    const opts = {
      truth: inputFile(ctx.cwd, config.truth, "--truth"),
      runs: runs.map((r) => ({ ...r, files: r.files.map((f) => inputFile(ctx.cwd, f, "--pred")) })),
      coldMax: config["cold-max"],
      matchBy: config.match,
    };
    const scored = await scorePredictions(opts);
    // Reports name files as the user gave them; the readers open the resolved paths.
    scored.runs.forEach((run, r) => run.files.forEach((f, i) => (f.file = runs[r]!.files[i]!)));
    const report = scoreReport({ ...opts, truth: config.truth }, scored, { resamples: config.resamples, seed: config["bootstrap-seed"], resampleBy: config["resample-by"] });
    ctx.stdout.write(config.json ? JSON.stringify(report, null, 2) + "\n" : formatScoreTable(report));
    return 0;
  },
});
