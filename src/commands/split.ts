import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { defineCommand, UsageError, zBool, zInt } from "../cli/command.js";
import { inputFile, outputFolder } from "../cli/paths.js";
import { resolveSplits } from "../mind/splits.js";
import { defaultPartNames, parsePortions, splitForEvaluation, type SplitOrder } from "../trainer/eval-split.js";

export const splitCommand = defineCommand({
  name: "split",
  summary: "cut a labeled split into validation and test parts by impression (ONCE's split of MIND dev)",
  positionals: [{ name: "split dir", description: "a split folder (news.tsv + behaviors.tsv), e.g. mind-data/MINDsmall_dev", required: true }],
  options: {
    list: { type: "string", arg: "<file.json>", description: "JSON array of Impression IDs, cut in order (ONCE: LegoV2/processor/mind_imp_list.json)" },
    "by-time": { type: "boolean", description: "cut the impressions in time order instead (earliest first)" },
    random: { type: "boolean", description: "cut a seeded shuffle of the impressions instead" },
    seed: { type: "string", arg: "<n>", description: "seed of --random (default 1)" },
    portions: { type: "string", arg: "<p1,p2,…>", description: "relative sizes of the parts (default 5,5)" },
    names: { type: "string", arg: "<a,b,…>", description: "part names, one per portion (default valid,test; train,valid,test for three)" },
    out: { type: "string", arg: "<dir>", description: "where the part folders go (default: beside the split folder)" },
    force: { type: "boolean", description: "replace part folders that already exist" },
  },
  schema: z.object({
    list: z.string().optional(),
    "by-time": zBool.default(false),
    random: zBool.default(false),
    seed: zInt(0, 2 ** 32 - 1).optional(),
    portions: z.string().default("5,5"),
    names: z.string().optional(),
    out: z.string().optional(),
    force: zBool.default(false),
    positionals: z.array(z.string()),
  }),
  details: `Writes <out>/<split>_<name> per part: behaviors.tsv with that part's lines, byte for byte and in
file order; news.tsv (and entity/relation_embedding.vec) shared as hard links, or copies where the
file system refuses links. ONCE's rule: part sizes are int(p × n / sum of portions) of the list of n
IDs, the last part takes the rest; impressions the list does not name go to the last part.
--by-time and --random apply the same cut to all impressions in time order (ties in file order)
or in a shuffle seeded by --seed.`,
  async run(config, ctx) {
    const modes = [config.list !== undefined && "--list", config["by-time"] && "--by-time", config.random && "--random"].filter(Boolean);
    if (modes.length !== 1) throw new UsageError(modes.length === 0 ? "say how to order the impressions: --list <file.json>, --by-time or --random" : `${modes.join(" and ")} exclude each other`);
    if (config.seed !== undefined && !config.random) throw new UsageError("--seed applies to --random only");
    const portions = parsePortions(config.portions);
    if (typeof portions === "string") throw new UsageError(`--portions: ${portions}`);
    const names = config.names === undefined ? defaultPartNames(portions.length) : config.names.split(",").map((s) => s.trim());
    if (!names) throw new UsageError(`--portions gives ${portions.length} parts: name them with --names (e.g. --names ${portions.map((_, i) => `part${i + 1}`).join(",")})`);
    if (names.length !== portions.length) throw new UsageError(`--names gives ${names.length} names for ${portions.length} portions`);
    const badName = names.find((n) => !/^[\w.-]+$/.test(n));
    if (badName !== undefined) throw new UsageError(`--names: '${badName}' is not a folder-name suffix (letters, digits, _ . -)`);
    if (new Set(names).size !== names.length) throw new UsageError("--names: every part needs its own name");

    const splits = await resolveSplits([resolve(ctx.cwd, config.positionals[0]!)]);
    if (splits.length !== 1) throw new UsageError(`${config.positionals[0]} holds ${splits.length} splits; give one split folder`);
    const split = splits[0]!;
    const order: SplitOrder = config.list !== undefined ? { kind: "list", file: inputFile(ctx.cwd, config.list, "--list") } : config.random ? { kind: "random", seed: config.seed ?? 1 } : { kind: "time" };
    const result = await splitForEvaluation({ split, order, portions, names, out: config.out === undefined ? dirname(split.dir) : outputFolder(ctx.cwd, config.out, "--out"), force: config.force });

    // Paths as the user wrote them.
    const show = (dir: string) => join(config.out ?? dirname(config.positionals[0]!), basename(dir));
    const how = order.kind === "list" ? `the order of ${config.list}` : order.kind === "time" ? "time order" : `a shuffle with seed ${order.seed}`;
    const total = result.parts.reduce((a, p) => a + p.impressions, 0);
    const lines = [`${split.name}: ${total.toLocaleString("en-US")} impressions cut ${portions.join(":")} in ${how}`];
    for (const p of result.parts) lines.push(`  ${show(p.dir)}  ${p.impressions.toLocaleString("en-US")} impressions`);
    if (result.notListed > 0) lines.push(`${result.notListed.toLocaleString("en-US")} impressions the list does not name went to ${names[names.length - 1]} (as ONCE's processor does)`);
    lines.push(`news.tsv shared as ${result.shared === "copy" ? "copies (hard links refused)" : "hard links"}`);
    ctx.stdout.write(lines.join("\n") + "\n");
    return 0;
  },
});
