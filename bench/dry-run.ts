// npm run bench:dry-run -- [--stages describe,pick,factors] [--scale 1] [--provider anthropic] [--model …] [--pack N]
// What each stage would cost on MIND-small: `--dry-run` of each stage over a MIND-small-shaped
// synthetic pair of splits (bench/mind-small.ts), nothing sent. A group (factors) stands for its
// stages (factors-users, factors-news). The figures in docs/stages-and-prompts.md come from here.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runCli } from "../src/cli/main.js";
import { stages } from "../src/stages/registry.js";
import { scaled, writeMindSmallShaped } from "./mind-small.js";

const { values } = parseArgs({
  options: {
    stages: { type: "string", default: "describe,pick,factors" },
    scale: { type: "string", default: "1" },
    provider: { type: "string", default: "anthropic" },
    model: { type: "string" },
    pack: { type: "string" },
  },
});

const root = await mkdtemp(join(tmpdir(), "gm-bench-dry-run-"));
try {
  const shape = scaled(Number(values.scale));
  const { train, dev } = await writeMindSmallShaped(root, shape);
  process.stdout.write(`MIND-small-shaped synthetic splits: ${shape.news.toLocaleString("en-US")} news, ${shape.usersPerSplit.toLocaleString("en-US")} users per split, ${shape.subcategories} subcategories\n\n`);
  const ctx = { env: {}, stdout: process.stdout, stderr: process.stderr, cwd: root };
  const names = values.stages.split(",").flatMap((n) => {
    const group = stages().filter((s) => s.group === n).map((s) => s.name);
    return group.length ? group : [n];
  });
  for (const stage of names) {
    const argv = [stage, "--data", train, "--data", dev, "--out", join(root, "run"), "--provider", values.provider, "--dry-run"];
    if (values.model) argv.push("--model", values.model);
    if (values.pack) argv.push("--pack", values.pack);
    const code = await runCli(argv, ctx);
    if (code !== 0) process.exitCode = code;
    process.stdout.write("\n");
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
