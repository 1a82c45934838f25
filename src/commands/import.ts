import { z } from "zod";
import { defineCommand, UsageError, zBool, zStringList, type CommandContext } from "../cli/command.js";
import { inputFile, inputFolder, outputFolder } from "../cli/paths.js";
import { judgeDescriptionsFile } from "../import/category-descriptions.js";
import { judgeOnceLogs, ONCE_STAGES, ONCE_VARIANTS, type FileSummary, type OnceStage, type OnceVariant } from "../import/once.js";
import { describeLeftOut, writeImport } from "../import/records.js";
import { StageConfig } from "../stages/options.js";

const SOURCES = ["once", "category-descriptions"] as const;
/** The model each source's answers came from, unless --model says otherwise. */
const SOURCE_MODEL = { once: "gpt-3.5-turbo", "category-descriptions": "gpt-4" } as const;

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
  const parts = [`${n(f.lines)} lines`, `${n(f.imported)} imported${f.inPart ? ` (${n(f.inPart)} in part, leaving out ${describeLeftOut(f.leftOut)})` : ""}`];
  if (refused.length) parts.push(`refused: ${refused.map(([why, count]) => `${why} ${n(count)}`).join(", ")}`);
  if (f.continuations) parts.push(`${n(f.continuations)} line${f.continuations === 1 ? "" : "s"} continuing an answer`);
  if (f.unknownIds.length) parts.push(`IDs not in --data: ${f.unknownIds.join(", ")}${(f.refused["not in --data"] ?? 0) > f.unknownIds.length ? ", …" : ""}`);
  return `  ${f.file}: ${parts.join("; ")}`;
}

type ImportConfig = { data: string[]; out: string; stages?: string; variant?: string; model?: string; lenient: boolean };

/** `import once <folder>`: ONCE's logs of the stages asked for. */
async function importOnce(folder: string, config: ImportConfig, ctx: CommandContext): Promise<string[]> {
  const stages = (config.stages ?? ONCE_STAGES.join(",")).split(",").map((s) => s.trim());
  const isOnceStage = (s: string): s is OnceStage => ONCE_STAGES.some((o) => o === s);
  const badStage = stages.find((s) => !isOnceStage(s));
  if (badStage !== undefined) throw new UsageError(`--stages: '${badStage}' is not a stage (${ONCE_STAGES.join(", ")})`);
  const variant = variantFiles(config.variant ?? "chain");
  const out = outputFolder(ctx.cwd, config.out, "--out");
  const model = config.model ?? SOURCE_MODEL.once;
  const stageConfig = StageConfig.parse({ data: config.data, out: config.out, lenient: config.lenient });
  const judged = await judgeOnceLogs({ folder: inputFolder(ctx.cwd, folder, "<folder>"), stages: stages.filter(isOnceStage), variant, config: stageConfig }, ctx);
  const written = await writeImport(judged, out, model);
  const lines: string[] = [];
  judged.forEach((s, i) => {
    lines.push(writtenLine(s.stage, written[i]!, config.out));
    for (const f of s.files) lines.push(describeFile(f));
  });
  lines.push(`records: ${config.out}/<stage>.jsonl (provider "imported", model ${model}); failures with their reason: ${config.out}/<stage>.failures.jsonl`);
  return lines;
}

/** `import category-descriptions <file.json>`: published descriptions as describe records. */
async function importDescriptions(file: string, config: ImportConfig, ctx: CommandContext): Promise<string[]> {
  for (const flag of ["stages", "variant"] as const) if (config[flag] !== undefined) throw new UsageError(`--${flag} is for 'import once' only`);
  const path = inputFile(ctx.cwd, file, "<file>");
  const out = outputFolder(ctx.cwd, config.out, "--out");
  const model = config.model ?? SOURCE_MODEL["category-descriptions"];
  const judged = await judgeDescriptionsFile(path, StageConfig.parse({ data: config.data, out: config.out, lenient: config.lenient }), ctx);
  const [written] = await writeImport([judged], out, model);
  const { read, judged: j } = judged;
  const n = (v: number) => v.toLocaleString("en-US");
  const refused = Object.entries(j.refused).sort((a, b) => b[1] - a[1]);
  const parts = [`${n(read.entries)} ${read.entries === 1 ? "entry" : "entries"}`, `${plural(j.imported, "item")} imported`];
  if (refused.length) parts.push(`refused: ${refused.map(([why, count]) => `${why} ${n(count)}`).join(", ")}`);
  if (j.unknownNames.length) parts.push(`names not a subcategory of --data: ${j.unknownNames.join(", ")}${(j.refused["not a subcategory of --data"] ?? 0) > j.unknownNames.length ? ", …" : ""}`);
  for (const p of read.problems.slice(0, 3)) parts.push(`${p.origin.file}:${p.origin.line}: ${p.message}`);
  return [
    writtenLine(judged.stage, written!, config.out),
    `  ${read.file}: ${parts.join("; ")}`,
    `records: ${config.out}/describe.jsonl (provider "imported", model ${model}); failures with their reason: ${config.out}/describe.failures.jsonl`,
  ];
}

function writtenLine(stage: string, w: { items: number; records: number; failures: number; alreadyThere: number }, where: string): string {
  return (
    `${stage}: ${w.items.toLocaleString("en-US")} items → ${plural(w.records, "record")}, ${plural(w.failures, "failure")} written` +
    (w.alreadyThere ? ` (${w.alreadyThere.toLocaleString("en-US")} already in ${where} from an earlier import)` : "")
  );
}

export const importCommand = defineCommand({
  name: "import",
  summary: "turn answers published elsewhere (GENRE/ONCE's gpt-3.5 logs, GPT-4 category descriptions) into stage records, at no cost",
  positionals: [
    { name: "source", description: `whose answers: ${SOURCES.join(", ")}`, required: true },
    {
      name: "path",
      description: "once: ONCE's data/mind folder (news_summarizer.log, user_profiler.log, generator_v*.log, chain_v*.log, user/tok.uid.dat); category-descriptions: a JSON array of {\"category\", \"description\"}",
      required: true,
    },
  ],
  options: {
    data: { type: "string", multiple: true, arg: "<dir>", description: "the MIND split folders the answers are for (required; ONCE: MINDsmall train and dev)" },
    out: { type: "string", arg: "<dir>", description: "run folder the records go to (required)" },
    stages: { type: "string", arg: "<a,b>", description: `once: stages to import (default ${ONCE_STAGES.join(",")})` },
    variant: { type: "string", arg: "<name|files>", description: "once: generator logs: chain (chain_v5/v6.log, UP→CG; default), plain (generator_v1/v2.log, CG) or file names" },
    model: { type: "string", arg: "<id>", description: `the model the records name (default: once ${SOURCE_MODEL.once}, category-descriptions ${SOURCE_MODEL["category-descriptions"]})` },
    lenient: { type: "boolean", description: "skip malformed MIND lines instead of stopping at the first" },
  },
  schema: z.object({
    data: zStringList.refine((l) => l.length > 0, { error: "required: the split folders the answers are for" }),
    out: z.string({ error: "required: the run folder to write into" }).min(1),
    stages: z.string().optional(),
    variant: z.string().optional(),
    model: z.string().min(1).optional(),
    lenient: zBool.default(false),
    positionals: z.array(z.string()),
  }),
  details: `Every answer goes through its stage's own parser, as a live answer would: valid ones become
records in <out>/<stage>.jsonl ("provider": "imported", the model, and the file and line each answer
was read from), items whose every answer fails go to <stage>.failures.jsonl with the reason.
once: ONCE's profiler answers ([topics] / [region] lists) are read into the profile stage's JSON first.
An answer no one can re-ask is kept in part where the stage's parser accepts the part: a profile
without its topics and regions off the stage's lists (none of its topics on the list: no profile), a
summary without a note below its title; the record's "leftOut" says what was left out.
Each generator line is one pseudo-news item; a user's lines in the variant's files make one record.
category-descriptions (Yada & Yamana's GPT-4 descriptions, category_description_gpt4.json): each entry
describes the subcategory of that name in --data (what the file's names are, whatever the key says),
never a category of the same name; an item described twice keeps its last valid description.
Importing again appends nothing new. A later live run of a stage asks only the items the import
did not cover: an imported record answers its item whatever the live prompt or model.`,
  async run(config, ctx) {
    const [source, path] = config.positionals as [string, string];
    if (!SOURCES.includes(source as (typeof SOURCES)[number])) throw new UsageError(`unknown source '${source}': expected ${SOURCES.join(", ")}`);
    const lines = source === "once" ? await importOnce(path, config, ctx) : await importDescriptions(path, config, ctx);
    ctx.stdout.write(lines.join("\n") + "\n");
    return 0;
  },
});
