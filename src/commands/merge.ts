import { relative, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, zBool, zStringList, type Command, type CommandContext, type OptionSpecs } from "../cli/command.js";
import { outputFolder } from "../cli/paths.js";
import { describeAudit, tookPart, type Manifest } from "../merge/manifest.js";
import { merge, type MergeRequest } from "../merge/merge.js";
import { stages } from "../stages/registry.js";
import { plural } from "../util/text.js";

/** Merge's flags, each stage's among them (summarize: --title); augment and demo take the same ones. */
export function mergeOptions(): OptionSpecs {
  return {
    records: {
      type: "string",
      multiple: true,
      arg: "<dir>",
      description: "run folder holding the stage records, one per shard of the run (default: --out)",
    },
    ...Object.assign({}, ...stages().map((s) => s.merge.flags ?? {})),
    force: { type: "boolean", description: "replace merged output already in --out" },
    "allow-unknown": { type: "boolean", description: "skip records of news or users that are not in --data instead of stopping" },
    "allow-empty": { type: "boolean", description: "write plain copies of the input when no stage has a valid record, instead of stopping" },
  };
}

export const MergeConfig = z.object({
  records: zStringList.default([]),
  force: zBool.default(false),
  "allow-unknown": zBool.default(false),
  "allow-empty": zBool.default(false),
});
export type MergeConfig = z.infer<typeof MergeConfig>;

/** The stages' merge flags (summarize: --title), by flag name. */
export function stageMergeConfig() {
  return z.object(Object.assign({}, ...stages().map((s) => s.merge.config?.shape ?? {})));
}

/** The request merge runs from a parsed config: the stages' merge flags are passed on by name. */
export function mergeRequest(data: string[], out: string, config: MergeConfig & Record<string, unknown>, cwd: string): MergeRequest {
  const at = (p: string) => resolve(cwd, p);
  return {
    data: data.map(at),
    out: at(out),
    records: config.records.map(at),
    ...stageMergeConfig().parse(config),
    allowUnknown: config["allow-unknown"],
    allowEmpty: config["allow-empty"],
    force: config.force,
  };
}

/** A few lines on what merge did, for the terminal. */
export function describeMerge(manifest: Manifest, out: string, cwd: string): string {
  const where = relative(cwd, out) || ".";
  const { allowUnknown: _u, allowEmpty: _e, ...stageOptions } = manifest.options;
  const options = Object.entries(stageOptions).map(([k, v]) => `${k}: ${String(v)}`);
  const lines = [`merged into ${where}/${options.length ? ` (${options.join(", ")})` : ""}`];
  // The stages this merge had anything of: the others add no count.
  const all = stages().filter((st) => tookPart(manifest.stages[st.name]));
  // Counts in manifest order, each with its label: the stages' news edits, then behaviors rows, news appended, then their user files.
  const edited = all.flatMap((st) => (st.merge.news ? [st.merge.news.count] : []));
  const userFiles = all.flatMap((st) => (st.merge.users ? [st.merge.users.count] : []));
  const appended = all.flatMap((st) => (st.merge.appendsNews ? [st.merge.appendsNews.count] : []));
  const count = (n: number, one: string, many: string) => `${n} ${plural(n, one, many)}`;
  for (const split of manifest.splits) {
    const o = split.output;
    const counts = [
      ...edited.map((c) => count(o[c.key] ?? 0, c.one, c.many)),
      count(o.impressions, "impression", "impressions"),
      `${count(o.historiesExtended, "history", "histories")} extended`,
      ...appended.map((c) => count(o[c.key] ?? 0, c.one, c.many)),
      ...userFiles.map((c) => count(o[c.key] ?? 0, c.one, c.many)),
    ];
    lines.push(`  ${split.name}/: ${o.news} news (${o.pseudoNews} pseudo-news), ${counts.join(", ")}` + (o.carried.length ? `; carried ${o.carried.join(", ")}` : ""));
  }
  const merged = all.map(({ name }) => {
    const k = manifest.stages[name]!.counts;
    return `${name} ${k.merged}/${k.items}${k.missing ? ` (${k.missing} missing, ${k.failed} failed)` : ""}`;
  });
  lines.push(`  records merged: ${merged.join(", ") || "none"}`);
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

/** Built from the registry: it takes every stage's merge flags. */
export const mergeCommand = (): Command => defineCommand({
  name: "merge",
  summary: "merge the stage records into drop-in MIND splits (news.tsv, behaviors.tsv) plus user_profiles.tsv and manifest.json",
  options: {
    data: { type: "string", multiple: true, arg: "<dir>", description: "input split folder or folder of splits (required)" },
    out: { type: "string", arg: "<dir>", description: "run folder: the merged splits go to <dir>/<split name>/ (required)" },
    ...mergeOptions(),
  },
  schema: MergeConfig.extend({
    data: z.union([z.string().transform((s) => [s]), z.array(z.string()).min(1)], { error: "required: an input split folder or folder of splits" }),
    out: z.string({ error: "required: the run folder to write into" }).min(1),
    positionals: z.array(z.string()).max(0),
  }).and(stageMergeConfig()),
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
