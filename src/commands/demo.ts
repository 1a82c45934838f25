// npm run demo: augment on the bundled sample with the offline provider (no key, no network), then
// show what changed. Re-runnable: the stored answers are reused and the merged output replaced.
import { resolve } from "node:path";
import { z } from "zod";
import { defineCommand, shownPath, type CommandContext } from "../cli/command.js";
import { describeAudit, type Manifest } from "../merge/manifest.js";
import { besideFiles } from "../merge/merge.js";
import { resolveSplits } from "../mind/splits.js";
import { OFFLINE_PROVIDER } from "../providers/offline.js";
import { DEFAULT_DATA } from "../stages/options.js";
import { stages } from "../stages/registry.js";
import { augmentConfig, runAugment } from "./augment.js";

export const DEMO_OUT = "output/demo";

/** The demo's closing summary: a few concrete before/after examples (each stage's) and where the files are. */
export async function describeDemo(manifest: Manifest, data: string[], out: string, cwd: string, reportPath?: string): Promise<string> {
  const where = shownPath(out, cwd);
  const first = manifest.splits[0];
  if (!first) return "";
  const lines: string[] = ["", "What changed"];
  const input = (await resolveSplits(data)).find((sp) => sp.name === first.name);
  for (const stage of stages()) {
    const entry = manifest.stages[stage.name];
    if (entry && stage.report.demo) lines.push(...(await stage.report.demo({ manifest, stage: entry, out, split: first.name, input })));
  }
  lines.push(`  ${describeAudit(manifest)}`);

  const newsFiles = stages().flatMap((s) => (s.merge.news?.file ? [s.merge.news.file] : []));
  const userFiles = stages().flatMap((s) => (s.merge.users ? [s.merge.users.file] : []));
  const beside = newsFiles.length ? ` (${newsFiles.map((f) => `${f.name}: ${f.about}`).join("; ")})` : "";
  lines.push("", "Where the files are");
  for (const split of manifest.splits) lines.push(`  ${where}/${split.name}/news.tsv, behaviors.tsv   drop-in MIND split${beside}`);
  for (const f of userFiles) lines.push(`  ${where}/<split>/${f.name}   ${f.about}`);
  for (const f of besideFiles()) lines.push(`  ${where}/${f.name}   ${f.about}`);
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
    // Every stage runs, the opt-in ones too: offline they cost nothing, and the demo shows them all.
    const every = stages().map((s) => s.name).join(",");
    const augment = { ...augmentConfig().parse({ out: config.out, provider: OFFLINE_PROVIDER, force: true, stages: every, cold: "pseudo" }), data: config.data };
    const { exitCode, manifest, reportPath } = await runAugment(augment, ctx);
    if (exitCode !== 0 || !manifest) return exitCode;
    const data = config.data.map((d) => resolve(ctx.cwd, d));
    ctx.stdout.write(await describeDemo(manifest, data, resolve(ctx.cwd, config.out), ctx.cwd, reportPath));
    return 0;
  },
});
