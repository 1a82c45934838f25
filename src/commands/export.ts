import { resolve } from "node:path";
import { z } from "zod";
import { defineCommand, UsageError } from "../cli/command.js";
import { inputFile, outputFolder } from "../cli/paths.js";
import { resolveSplits } from "../mind/splits.js";
import { exportRecommenders } from "../trainer/export.js";

const TARGETS = ["recommenders"] as const;

export const exportCommand = defineCommand({
  name: "export",
  summary: "write the vocabulary, user and embedding files a trainer needs (microsoft/recommenders NRMS)",
  positionals: [
    { name: "target", description: `what to write for: ${TARGETS.join(", ")}`, required: true },
    { name: "split dir", description: "a split folder (news.tsv + behaviors.tsv) or a folder of split folders", required: true, variadic: true },
  ],
  options: {
    out: { type: "string", arg: "<dir>", description: "where to write (default: the first folder given)" },
    glove: { type: "string", arg: "<glove.*.txt>", description: "GloVe vectors: also write embedding.npy" },
  },
  schema: z.object({
    out: z.string().optional(),
    glove: z.string().optional(),
    positionals: z.array(z.string()),
  }),
  details: `Writes word_dict.pkl (title words → index from 1, first occurrence order, NRMS's tokenizer),
uid2index.pkl (the train split's users → index from 1, first occurrence order, as recommenders'
mind_utils notebook numbers them: any other user is index 0 to the trainer) and, with --glove,
embedding.npy (float32, one row per index plus row 0; words GloVe lacks stay zero, as recommenders
does). Several splits share one word vocabulary, in the order given; a folder of splits lists its
train split first, then dev (or valid), then the others by name. The train split is the first whose
folder name contains "train", else the first given.`,
  async run(config, ctx) {
    const [target, ...dirs] = config.positionals;
    if (!TARGETS.includes(target as (typeof TARGETS)[number])) {
      throw new UsageError(`unknown target '${target}': expected ${TARGETS.join(", ")}`);
    }
    const given = dirs.map((d) => resolve(ctx.cwd, d));
    const splits = await resolveSplits(given);
    const outDir = outputFolder(ctx.cwd, config.out ?? given[0]!, "--out");
    const glove = config.glove === undefined ? undefined : inputFile(ctx.cwd, config.glove, "--glove");
    const s = await exportRecommenders(splits, outDir, glove);
    const n = (v: number) => v.toLocaleString("en-US");
    const lines = [
      `splits: ${splits.map((x) => x.name).join(", ")}`,
      `wrote ${s.wordDictFile}  ${n(s.words)} words`,
      `wrote ${s.userDictFile}  ${n(s.users)} users (of ${s.usersFrom}; other users are index 0)`,
    ];
    if (s.embedding) {
      const e = s.embedding;
      lines.push(`wrote ${e.file}  ${n(s.words + 1)} × ${e.dim} float32; ${n(e.found)} words found in GloVe, ${n(e.missing)} left at zero`);
    }
    lines.push("", "NRMS hparams (prepare_hparams keyword arguments or yaml keys):");
    lines.push(`  wordDict_file: ${s.wordDictFile}`, `  userDict_file: ${s.userDictFile}`);
    if (s.embedding) lines.push(`  wordEmb_file: ${s.embedding.file}`, `  word_emb_dim: ${s.embedding.dim}`);
    else lines.push("  wordEmb_file: (NRMS requires one: run again with --glove <glove.*.txt>)");
    ctx.stdout.write(lines.join("\n") + "\n");
    return 0;
  },
});
