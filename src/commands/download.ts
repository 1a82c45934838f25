import { z } from "zod";
import { defineCommand, UserError, zBool, zInt } from "../cli/command.js";
import { outputFolder } from "../cli/paths.js";
import { DEFAULT_BASE_URL, MIND_SIZES, MindDownloadError, downloadMind } from "../download/mind.js";

export const downloadCommand = defineCommand({
  name: "download",
  summary: "download and unpack MIND (demo, small or large) into mind-data/",
  positionals: [{ name: "size", description: "demo | small | large (large adds the unlabeled test split)", required: true }],
  options: {
    "base-url": { type: "string", arg: "<url>", description: `where the MIND<size>_<split>.zip files are (default ${DEFAULT_BASE_URL})` },
    dest: { type: "string", arg: "<dir>", description: "folder that receives MIND<size>_<split>/ (default mind-data)" },
    "keep-zip": { type: "boolean", description: "keep the zip files after unpacking" },
    retries: { type: "string", arg: "<n>", description: "extra attempts after a dropped connection (default 5)" },
  },
  schema: z.object({
    positionals: z.tuple([z.enum(MIND_SIZES)]),
    "base-url": z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }).default(DEFAULT_BASE_URL),
    dest: z.string().min(1).default("mind-data"),
    "keep-zip": zBool.default(false),
    retries: zInt(0, 100).default(5),
  }),
  details: `Files already unpacked are not fetched again; an interrupted download resumes from its .part file.
Then check a split (genre-mind validate mind-data/MINDsmall_train) and give the splits to the
stages and augment as --data mind-data/MINDsmall_train --data mind-data/MINDsmall_dev.`,
  async run(config, ctx) {
    const [size] = config.positionals;
    const dest = outputFolder(ctx.cwd, config.dest, "--dest");
    try {
      const results = await downloadMind({
        size,
        baseUrl: config["base-url"],
        dest,
        keepZip: config["keep-zip"],
        retries: config.retries,
        progress: ctx.stderr,
        log: (line) => ctx.stdout.write(`${line}\n`),
      });
      ctx.stdout.write(`MIND ${size} is ready: ${results.map((r) => `--data ${r.dir}`).join(" ")}\n`);
      return 0;
    } catch (e) {
      if (e instanceof MindDownloadError) throw new UserError(e.message);
      throw e;
    }
  },
});
