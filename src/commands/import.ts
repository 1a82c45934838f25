import { z } from "zod";
import { defineCommand, UsageError, zBool, zStringList } from "../cli/command.js";
import { inputFolder, outputFolder } from "../cli/paths.js";
import { judgeOnceLogs, ONCE_STAGES, ONCE_VARIANTS, writeImport, type FileSummary, type OnceStage, type OnceVariant } from "../import/once.js";
import { StageConfig } from "../stages/options.js";

const SOURCES = ["once"] as const;

/** `chain` / `plain`, or the generator log files themselves. */
export function variantFiles(value: string): string[] {
  if (Object.hasOwn(ONCE_VARIANTS, value)) return [...ONCE_VARIANTS[value as OnceVariant]];
  const files = value.split(",").map((f) => f.trim());
  const bad = files.find((f) => !/^[\w.-]+\.log$/.test(f));
  if (bad !== undefined) throw new UsageError(`--variant: '${bad}' is neither ${Object.keys(ONCE_VARIANTS).join(" nor ")} nor a log file name like generator_v1.log`);
  return files;
}

const plural = (n: number, word: string) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

function describeFile(f: FileSummary): string {
  const n = (v: number) => v.toLocaleString("en-US");
  const refused = Object.entries(f.refused).sort((a, b) => b[1] - a[1]);
  const parts = [`${n(f.lines)} lines`, `${n(f.imported)} imported`];
  if (refused.length) parts.push(`refused: ${refused.map(([why, count]) => `${why} ${n(count)}`).join(", ")}`);
  if (f.continuations) parts.push(`${n(f.continuations)} line${f.continuations === 1 ? "" : "s"} continuing an answer`);
  if (f.unknownIds.length) parts.push(`IDs not in --data: ${f.unknownIds.join(", ")}${(f.refused["not in --data"] ?? 0) > f.unknownIds.length ? ", …" : ""}`);
  return `  ${f.file}: ${parts.join("; ")}`;
}

export const importCommand = defineCommand({
  name: "import",
  summary: "turn answers published elsewhere (GENRE/ONCE's gpt-3.5 logs) into stage records, at no cost",
  positionals: [
    { name: "source", description: `whose answers: ${SOURCES.join(", ")}`, required: true },
    { name: "folder", description: "ONCE's data/mind folder (news_summarizer.log, user_profiler.log, generator_v*.log, chain_v*.log, user/tok.uid.dat)", required: true },
  ],
  options: {
    data: { type: "string", multiple: true, arg: "<dir>", description: "the MIND split folders the answers are for (required; ONCE: MINDsmall train and dev)" },
    out: { type: "string", arg: "<dir>", description: "run folder the records go to (required)" },
    stages: { type: "string", arg: "<a,b>", description: `stages to import (default ${ONCE_STAGES.join(",")})` },
    variant: { type: "string", arg: "<name|files>", description: "generator logs: chain (chain_v5/v6.log, UP→CG; default), plain (generator_v1/v2.log, CG) or file names" },
    model: { type: "string", arg: "<id>", description: "the model the records name (default gpt-3.5-turbo, what ONCE used)" },
    lenient: { type: "boolean", description: "skip malformed MIND lines instead of stopping at the first" },
  },
  schema: z.object({
    data: zStringList.refine((l) => l.length > 0, { error: "required: the split folders the answers are for" }),
    out: z.string({ error: "required: the run folder to write into" }).min(1),
    stages: z.string().default(ONCE_STAGES.join(",")),
    variant: z.string().default("chain"),
    model: z.string().min(1).default("gpt-3.5-turbo"),
    lenient: zBool.default(false),
    positionals: z.array(z.string()),
  }),
  details: `Every answer goes through its stage's own parser, as a live answer would: valid ones become
records in <out>/<stage>.jsonl ("provider": "imported", the model, and the file and line each answer
was read from), items whose every answer fails go to <stage>.failures.jsonl with the reason.
ONCE's profiler answers ([topics] / [region] lists) are read into the profile stage's JSON first.
Each generator line is one pseudo-news item; a user's lines in the variant's files make one record.
Importing again appends nothing new. A later live run of a stage asks only the items the import
did not cover: an imported record answers its item whatever the live prompt or model.`,
  async run(config, ctx) {
    const [source, folder] = config.positionals as [string, string];
    if (!SOURCES.includes(source as (typeof SOURCES)[number])) throw new UsageError(`unknown source '${source}': expected ${SOURCES.join(", ")}`);
    const stages = config.stages.split(",").map((s) => s.trim());
    const isOnceStage = (s: string): s is OnceStage => ONCE_STAGES.some((o) => o === s);
    const badStage = stages.find((s) => !isOnceStage(s));
    if (badStage !== undefined) throw new UsageError(`--stages: '${badStage}' is not a stage (${ONCE_STAGES.join(", ")})`);
    const variant = variantFiles(config.variant);
    const out = outputFolder(ctx.cwd, config.out, "--out");
    const stageConfig = StageConfig.parse({ data: config.data, out: config.out, lenient: config.lenient });
    const judged = await judgeOnceLogs({ folder: inputFolder(ctx.cwd, folder, "<folder>"), stages: stages.filter(isOnceStage), variant, config: stageConfig }, ctx);
    const written = await writeImport(judged, out, config.model);
    const where = config.out;
    const lines: string[] = [];
    judged.forEach((s, i) => {
      const w = written[i]!;
      lines.push(
        `${s.stage}: ${w.items.toLocaleString("en-US")} items → ${plural(w.records, "record")}, ${plural(w.failures, "failure")} written` +
          (w.alreadyThere ? ` (${w.alreadyThere.toLocaleString("en-US")} already in ${where} from an earlier import)` : ""),
      );
      for (const f of s.files) lines.push(describeFile(f));
    });
    lines.push(`records: ${where}/<stage>.jsonl (provider "imported", model ${config.model}); failures with their reason: ${where}/<stage>.failures.jsonl`);
    ctx.stdout.write(lines.join("\n") + "\n");
    return 0;
  },
});
