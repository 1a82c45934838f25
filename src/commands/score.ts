import { resolve } from "node:path";
import { z } from "zod";
import { defineCommand, UsageError, zBool, zInt, zStringList } from "../cli/command.js";
import { DEFAULT_COLD_MAX } from "../mind/history-rule.js";
import { formatScoreTable, scorePredictions, scoreReport } from "../trainer/score.js";

export const scoreCommand = defineCommand({
  name: "score",
  summary: "MIND metrics (AUC, MRR, nDCG@5/10) of prediction files, by user group, runs side by side",
  options: {
    truth: { type: "string", arg: "<behaviors.tsv>", description: "labeled behaviors.tsv the predictions are for (e.g. MINDsmall_dev)" },
    pred: { type: "string", multiple: true, arg: "<file>", description: "prediction file: '<id> [r1,r2,…]' ranks or '<id>\\t<s1> <s2> …' scores" },
    "cold-max": { type: "string", arg: "<n>", description: `most history clicks of a cold user (default ${DEFAULT_COLD_MAX}; 0 clicks = empty)` },
    match: { type: "string", arg: "id|line", description: "find a prediction's impression by Impression ID (default) or by truth line number" },
    json: { type: "boolean", description: "print the report as JSON" },
  },
  schema: z.object({
    truth: z.string({ error: "required: the labeled behaviors.tsv" }),
    pred: zStringList.refine((l) => l.length > 0, { error: "required: at least one prediction file" }),
    "cold-max": zInt(1).default(DEFAULT_COLD_MAX),
    match: z.enum(["id", "line"]).default("id"),
    json: zBool.default(false),
    positionals: z.array(z.string()),
  }),
  details: `Metrics are those of MIND's official evaluate.py: per impression sklearn AUC (ties averaged),
MRR and nDCG@k over the candidates ordered by score (ranks r become scores 1/r), averaged over
impressions. Impressions whose candidates are all clicked or all unclicked are skipped and counted.
Groups come from the truth file's History column: empty, cold (1..--cold-max clicks), warm.
recommenders writes prediction.txt keyed by line number (index + 1); on the official MIND files
Impression ID equals the line number, so both --match modes agree there.`,
  async run(config, ctx) {
    const names = config.pred;
    if (new Set(names).size !== names.length) throw new UsageError("the same --pred file is given twice");
    const opts = {
      truth: resolve(ctx.cwd, config.truth),
      preds: names.map((p) => resolve(ctx.cwd, p)),
      coldMax: config["cold-max"],
      matchBy: config.match,
    };
    // Reports name files as the user gave them; the readers open the resolved paths.
    const runs = (await scorePredictions(opts)).map((run, i) => ({ ...run, pred: names[i]! }));
    const report = scoreReport({ ...opts, truth: config.truth }, runs);
    ctx.stdout.write(config.json ? JSON.stringify(report, null, 2) + "\n" : formatScoreTable(report));
    return 0;
  },
});
