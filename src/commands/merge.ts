import { relative, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, zBool, zStringList, type CommandContext, type OptionSpecs } from "../cli/command.js";
import { outputFolder } from "../cli/paths.js";
import { describeAudit, TitleMode, type Manifest } from "../merge/manifest.js";
import { merge, type MergeRequest } from "../merge/merge.js";
import { plural } from "../util/text.js";

/** Merge's flags; augment and demo take the same ones. */
export const mergeOptions: OptionSpecs = {
  records: {
    type: "string",
    multiple: true,
    arg: "<dir>",
    description: "run folder holding the stage records, one per shard of the run (default: --out)",
  },
  title: { type: "string", arg: "<mode>", description: "replace (default: the title column is the enhanced title) | append | keep" },
  force: { type: "boolean", description: "replace merged output already in --out" },
  "allow-unknown": { type: "boolean", description: "skip records of news or users that are not in --data instead of stopping" },
  "allow-empty": { type: "boolean", description: "write plain copies of the input when no stage has a valid record, instead of stopping" },
};

export const MergeConfig = z.object({
  records: zStringList.default([]),
  title: TitleMode.default("replace"),
  force: zBool.default(false),
  "allow-unknown": zBool.default(false),
  "allow-empty": zBool.default(false),
});
export type MergeConfig = z.infer<typeof MergeConfig>;

export function mergeRequest(data: string[], out: string, config: MergeConfig, cwd: string): MergeRequest {
  const at = (p: string) => resolve(cwd, p);
  return {
    data: data.map(at),
    out: at(out),
    records: config.records.map(at),
    title: config.title,
    allowUnknown: config["allow-unknown"],
    allowEmpty: config["allow-empty"],
    force: config.force,
  };
}

/** A few lines on what merge did, for the terminal. */
export function describeMerge(manifest: Manifest, out: string, cwd: string): string {
  const where = relative(cwd, out) || ".";
  const s = manifest.stages;
  const lines = [`merged into ${where}/ (title: ${manifest.options.title})`];
  for (const split of manifest.splits) {
    const o = split.output;
    lines.push(
      `  ${split.name}/: ${o.news} news (${o.pseudoNews} pseudo-news), ${o.titlesEnhanced} enhanced ${plural(o.titlesEnhanced, "title")}, ` +
        `${o.impressions} ${plural(o.impressions, "impression")}, ${o.historiesExtended} ${plural(o.historiesExtended, "history", "histories")} extended, ` +
        `${o.profiles} ${plural(o.profiles, "profile")}` +
        (o.carried.length ? `; carried ${o.carried.join(", ")}` : ""),
    );
  }
  const c = (name: keyof typeof s) => {
    const k = s[name].counts;
    return `${name} ${k.merged}/${k.items}${k.missing ? ` (${k.missing} missing, ${k.failed} failed)` : ""}`;
  };
  lines.push(`  records merged: ${c("summarize")}, ${c("profile")}, ${c("generate")}`);
  lines.push(`  ${describeAudit(manifest)}`);
  lines.push(`  manifest.json: inputs, options, counts, audit, pseudo-news → user`);
  return lines.join("\n") + "\n";
}

export async function runMerge(req: MergeRequest, ctx: CommandContext): Promise<Manifest> {
  const result = await merge(req, (line) => ctx.stderr.write(`merge: ${line}\n`));
  for (const w of result.warnings) ctx.stderr.write(`merge: warning: ${w}\n`);
  ctx.stdout.write(describeMerge(result.manifest, result.out, ctx.cwd));
  return result.manifest;
}

export const mergeCommand = defineCommand({
  name: "merge",
  summary: "merge the stage records into drop-in MIND splits (news.tsv, behaviors.tsv) plus user_profiles.tsv and manifest.json",
  options: {
    data: { type: "string", multiple: true, arg: "<dir>", description: "input split folder or folder of splits (required)" },
    out: { type: "string", arg: "<dir>", description: "run folder: the merged splits go to <dir>/<split name>/ (required)" },
    ...mergeOptions,
  },
  schema: MergeConfig.extend({
    data: z.union([z.string().transform((s) => [s]), z.array(z.string()).min(1)], { error: "required: an input split folder or folder of splits" }),
    out: z.string({ error: "required: the run folder to write into" }).min(1),
    positionals: z.array(z.string()).max(0),
  }),
  details: `Output, for every input split: <out>/<split>/news.tsv, behaviors.tsv (what trainers read),
news_titles.tsv (News ID, original title, enhanced title) and user_profiles.tsv (User ID, topics,
regions; lists joined with '|'; only users whose profile this split's history allows), the other
files of the input split (hard-linked); beside them manifest.json.
A profile or pseudo-news is used in a split only where the user's history there holds every click
it was written from; the output is audited for that, and for pseudo-news copying a news item of the
user's impressions. Nothing is written unless the audit finds no violation and the whole output
passes the readers contract (8 news fields, 5 behaviors fields, every history and impression ID in
news.tsv, no '-' in news IDs).`,
  async run(config, ctx) {
    outputFolder(ctx.cwd, config.out, "--out");
    await runMerge(mergeRequest(config.data, config.out, config, ctx.cwd), ctx);
    return 0;
  },
});
