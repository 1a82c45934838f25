// npm run demo: augment on the bundled sample with the offline provider (no key, no network), then
// show what changed. Re-runnable: the stored answers are reused and the merged output replaced.
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, shownPath, type CommandContext } from "../cli/command.js";
import { outputFolder, PathError } from "../cli/paths.js";
import { jsonlLines } from "../engine/store.js";
import { describeAudit, type Manifest } from "../merge/manifest.js";
import { besideFiles } from "../merge/merge.js";
import { resolveSplits } from "../mind/splits.js";
import { OFFLINE_PROVIDER } from "../providers/offline.js";
import { runPaths } from "../run/folder.js";
import { DEFAULT_DATA } from "../stages/options.js";
import { stages } from "../stages/registry.js";
import { augmentConfig, runAugment } from "./augment.js";

export const DEMO_OUT = "output/demo";

const ProviderLine = z.object({ provider: z.string() });

/**
 * What in `out` demo did not write, or undefined. Demo stores offline answers only, and that is how it
 * knows its earlier output: a record or failure of another provider (a paid run, imported answers),
 * a batches file (only a batch provider writes one) or a merge of such answers is someone else's.
 * Its offline answers appended after them would be the last of their items, the ones merge takes.
 */
export async function notDemoOutput(out: string): Promise<string | undefined> {
  const paths = runPaths(out);
  for (const { name } of stages()) {
    const batches = paths.batches(name);
    if (existsSync(batches) && (await stat(batches)).size > 0) return `${basename(batches)} (batches of a batch provider)`;
    for (const file of [paths.records(name), paths.failures(name)]) {
      if (!existsSync(file)) continue;
      // A damaged line is left to the stage run, which stops on it before it appends anything.
      for await (const { value, lineNo } of jsonlLines(file, ProviderLine, () => {})) {
        if (value.provider !== OFFLINE_PROVIDER) return `${basename(file)}:${lineNo} (provider ${value.provider})`;
      }
    }
  }
  if (!existsSync(paths.manifest)) return undefined;
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(paths.manifest, "utf8"));
  } catch {
    return "manifest.json (not readable as a merge's)";
  }
  const stagesOf = z.object({ stages: z.record(z.string(), z.object({ answeredBy: z.array(ProviderLine) })) }).safeParse(manifest);
  if (!stagesOf.success) return "manifest.json (not readable as a merge's)";
  for (const [stage, { answeredBy }] of Object.entries(stagesOf.data.stages)) {
    const other = answeredBy.find((a) => a.provider !== OFFLINE_PROVIDER);
    if (other) return `manifest.json (a merge with ${stage} answers of provider ${other.provider})`;
  }
  return undefined;
}

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
    out: { type: "string", arg: "<dir>", description: `where to write (default ${DEMO_OUT}); earlier demo output there is replaced; another provider's answers there are refused` },
  },
  details: `Demo stores offline answers only, and knows its earlier output by that: it reuses the answers
and replaces the merge. It refuses (exit 2, nothing written) an --out holding a stage record or
failure of any other provider (a paid run, imported answers), a <stage>.batches.jsonl, or a merge
(manifest.json) with such answers: its offline answers would come after them, and merge takes an
item's last answer. An offline augment of your own in --out counts as demo output.`,
  schema: z.object({
    data: z.union([z.string().transform((s) => [s]), z.array(z.string()).min(1)]).default([DEFAULT_DATA]),
    out: z.string().min(1).default(DEMO_OUT),
    positionals: z.array(z.string()).max(0),
  }),
  async run(config, ctx: CommandContext) {
    const foreign = await notDemoOutput(outputFolder(ctx.cwd, config.out, "--out"));
    if (foreign) {
      throw new PathError(
        `--out ${config.out} holds output demo did not make: ${foreign}. Demo would add offline answers after it, and merge takes an item's last answer: choose another --out (default ${DEMO_OUT})`,
      );
    }
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
