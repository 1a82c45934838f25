import { relative, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, zInt, zStringList } from "../cli/command.js";
import { formatBytes } from "../download/progress.js";
import { writeReport } from "../report/report.js";

export const reportCommand = defineCommand({
  name: "report",
  summary: "write <run dir>/report.html: overview, charts and examples, one file that opens offline",
  positionals: [{ name: "run dir", description: "the --out folder of a run (stage records, meta, manifest.json)", required: true }],
  options: {
    data: { type: "string", multiple: true, arg: "<dir>", description: "input splits, for original titles and histories (default: the inputs in manifest.json)" },
    records: { type: "string", multiple: true, arg: "<dir>", description: "run folders holding the records (default: those in manifest.json, else the run dir)" },
    sample: { type: "string", arg: "<n>", description: "examples embedded per list: news, users, failures (default 300)" },
  },
  schema: z.object({
    positionals: z.tuple([z.string().min(1)]),
    data: zStringList.optional(),
    records: zStringList.optional(),
    sample: zInt(1, 100_000).default(300),
  }),
  async run(config, ctx) {
    const [runDir] = config.positionals;
    const abs = (p: string) => resolve(ctx.cwd, p);
    const result = await writeReport(abs(runDir), {
      data: config.data?.map(abs),
      records: config.records?.map(abs),
      sample: config.sample,
    });
    for (const w of result.warnings) ctx.stderr.write(`warning: ${w}\n`);
    ctx.stdout.write(`report: ${relative(ctx.cwd, result.path) || result.path} (${formatBytes(result.bytes)}) — open it in a browser, no network needed\n`);
    return 0;
  },
});
