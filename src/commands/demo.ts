// npm run demo: augment on the bundled sample with the offline provider (no key, no network), then
// show what changed. Re-runnable: the stored answers are reused and the merged output replaced.
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, shownPath, type CommandContext } from "../cli/command.js";
import { readLines } from "../mind/read.js";
import { describeAudit, type Manifest } from "../merge/manifest.js";
import { resolveSplits } from "../mind/splits.js";
import { plural } from "../util/text.js";
import { OFFLINE_PROVIDER } from "../providers/offline.js";
import { DEFAULT_DATA } from "../stages/options.js";
import { AugmentConfig, runAugment } from "./augment.js";

export const DEMO_OUT = "output/demo";

/** The History of each given user's first row in a behaviors file. */
async function historiesOf(file: string, userIds: ReadonlySet<string>): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for await (const { text } of readLines(file)) {
    const f = text.split("\t");
    if (userIds.has(f[1]!) && !out.has(f[1]!)) out.set(f[1]!, (f[3] ?? "").split(" ").filter(Boolean));
  }
  return out;
}

async function titlesOf(file: string, ids: ReadonlySet<string>): Promise<Map<string, string>> {
  const titles = new Map<string, string>();
  for await (const { text } of readLines(file)) {
    const f = text.split("\t");
    if (ids.has(f[0]!)) titles.set(f[0]!, f[3] ?? "");
  }
  return titles;
}

/** The demo's closing summary: a few concrete before/after examples and where the files are. */
export async function describeDemo(manifest: Manifest, data: string[], out: string, cwd: string, reportPath?: string): Promise<string> {
  const where = shownPath(out, cwd);
  const first = manifest.splits[0];
  if (!first) return "";
  const lines: string[] = ["", "What changed"];
  const s = manifest.stages;

  // A title that came back unchanged was not enhanced: count (and show) only the ones that differ.
  const changed = new Set<string>();
  const examples: string[] = [];
  for (const split of manifest.splits) {
    for await (const { text } of readLines(join(out, split.name, "news_titles.tsv"))) {
      const [id, before, after] = text.split("\t");
      if (!id || !after || after === before || changed.has(id)) continue;
      changed.add(id);
      if (examples.length < 4) examples.push(`    ${id}  before: ${before}`, `    ${" ".repeat(id.length)}  after:  ${after}`);
    }
  }
  lines.push(`  titles enhanced:   ${changed.size} of ${s.summarize.counts.items} news${examples.length ? ", e.g." : ""}`, ...examples);

  lines.push(`  users profiled:    ${s.profile.counts.merged} of ${s.profile.counts.items} ${plural(s.profile.counts.items, "user")} with a history, e.g.`);
  const profile = (await readFile(join(out, first.name, "user_profiles.tsv"), "utf8")).split("\n")[0];
  if (profile) {
    const [user, topics, regions] = profile.split("\t");
    lines.push(`    ${user}  topics: ${topics!.split("|").join(", ")}; regions: ${regions ? regions.split("|").join(", ") : "(none)"}`);
  }

  const pseudo = Object.entries(manifest.pseudoNews);
  lines.push(
    `  pseudo-news added: ${pseudo.length} ${plural(pseudo.length, "item")} for ${s.generate.counts.merged} of ${s.generate.counts.items} cold ${plural(s.generate.counts.items, "user")} (subcategory 'generated')`,
  );
  const input = (await resolveSplits(data)).find((sp) => sp.name === first.name);
  if (input) {
    // A user whose pseudo-news the first split's rows carry (some apply to later splits only).
    const owners = new Set(pseudo.map(([, userId]) => userId));
    const merged = await historiesOf(join(out, first.name, "behaviors.tsv"), owners);
    const example = pseudo.find(([id, userId]) => merged.get(userId)?.includes(id));
    const userId = example?.[1];
    const before = userId === undefined ? undefined : (await historiesOf(input.behaviorsFile, new Set([userId]))).get(userId);
    const after = userId === undefined ? undefined : merged.get(userId);
    if (userId && before && after) {
      const added = after.slice(before.length);
      const titles = await titlesOf(join(out, first.name, "news.tsv"), new Set(added));
      lines.push(`  cold user ${userId} in ${first.name}: history of ${before.length} → ${after.length}`);
      lines.push(`    before: ${before.join(" ") || "(empty)"}`);
      lines.push(`    after:  ${after.join(" ")}`);
      for (const id of added) lines.push(`    ${id}: ${titles.get(id) ?? ""}`);
    }
  }
  lines.push(`  ${describeAudit(manifest)}`);

  lines.push("", "Where the files are");
  for (const split of manifest.splits) lines.push(`  ${where}/${split.name}/news.tsv, behaviors.tsv   drop-in MIND split (news_titles.tsv: original and enhanced titles)`);
  lines.push(`  ${where}/<split>/user_profiles.tsv   user ID, topics, regions ('|' between entries), for that split's users`);
  lines.push(`  ${where}/manifest.json       inputs, options, counts, audit, tokens, cost, pseudo-news → user`);
  lines.push(`  ${where}/*.jsonl             the stored answers (re-running reuses them)`);
  if (reportPath) lines.push(`  ${shownPath(reportPath, cwd)}   charts and examples: open it in a browser`);
  lines.push(
    "",
    "The offline provider is a deterministic non-LLM baseline (retrieval standing in for generation).",
    "For a real LLM, from the project folder: download MIND-small, then estimate the cost (--dry-run sends",
    "nothing) and run the same command without --dry-run (set ANTHROPIC_API_KEY first):",
    "  npm run download -- small",
    "  npm run augment -- --data mind-data/MINDsmall_train --data mind-data/MINDsmall_dev --out output/small --provider anthropic --dry-run",
  );
  return lines.join("\n") + "\n";
}

export const demoCommand = defineCommand({
  name: "demo",
  summary: "augment the bundled sample offline (no key, no network) into output/demo and show what changed",
  options: {
    data: { type: "string", multiple: true, arg: "<dir>", description: `input splits (default ${DEFAULT_DATA})` },
    out: { type: "string", arg: "<dir>", description: `where to write (default ${DEMO_OUT}); earlier demo output there is replaced` },
  },
  schema: z.object({
    data: z.union([z.string().transform((s) => [s]), z.array(z.string()).min(1)]).default([DEFAULT_DATA]),
    out: z.string().min(1).default(DEMO_OUT),
    positionals: z.array(z.string()).max(0),
  }),
  async run(config, ctx: CommandContext) {
    // Only the offline provider: the demo must never need a key or the network, whatever the environment says.
    const augment = AugmentConfig.parse({ data: config.data, out: config.out, provider: OFFLINE_PROVIDER, force: true });
    const { exitCode, manifest, reportPath } = await runAugment(augment, ctx);
    if (exitCode !== 0 || !manifest) return exitCode;
    const data = config.data.map((d) => resolve(ctx.cwd, d));
    ctx.stdout.write(await describeDemo(manifest, data, resolve(ctx.cwd, config.out), ctx.cwd, reportPath));
    return 0;
  },
});
