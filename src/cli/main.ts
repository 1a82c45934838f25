import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEBUG_VARIABLE, nearestName, UsageError, UserError, type CommandContext } from "./command.js";
import { tuneHeapGrowth } from "./heap.js";
import { commands } from "../commands/index.js";
import { MindFormatError } from "../mind/errors.js";
import { SplitNotFoundError } from "../mind/splits.js";

function topHelp(): string {
  const lines = ["genre-mind — LLM-augmented MIND training data (GENRE)", "", "Usage: genre-mind <command> [options]", "", "Commands:"];
  for (const c of commands()) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  lines.push("", "Run 'genre-mind <command> --help' for a command's options.");
  return lines.join("\n") + "\n";
}

const PATH_ERRORS: Record<string, string> = {
  ENOENT: "no such file or folder",
  ENOTDIR: "a file where a folder is expected",
  EISDIR: "a folder where a file is expected",
  EEXIST: "a file is in the way of a folder to be made",
};

/** Runs one CLI invocation and returns its exit code; never calls process.exit, so tests can use it. */
export async function runCli(argv: string[], ctx: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    ctx.stdout.write(topHelp());
    return name ? 0 : 2;
  }
  const command = commands().find((c) => c.name === name);
  if (!command) {
    const near = nearestName(name, commands().map((c) => c.name));
    ctx.stderr.write(`genre-mind: unknown command '${name}'${near ? ` (did you mean ${near}?)` : ""}\n\n${topHelp()}`);
    return 2;
  }
  try {
    return await command.invoke(rest, ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      ctx.stderr.write(`genre-mind ${name}: ${e.message}\nRun 'genre-mind ${name} --help' for usage.\n`);
      return 2;
    }
    if (e instanceof UserError) {
      ctx.stderr.write(`genre-mind ${name}: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof MindFormatError) {
      ctx.stderr.write(`genre-mind ${name}: ${e.message}\n`);
      return 1;
    }
    // A --data path that is missing or holds no split is a wrong path, not bad data.
    if (e instanceof SplitNotFoundError) {
      ctx.stderr.write(`genre-mind ${name}: ${e.message}\n`);
      return 2;
    }
    const err = e as NodeJS.ErrnoException;
    const pathProblem = err.code !== undefined && PATH_ERRORS[err.code];
    if (pathProblem) {
      // A path no command checked up front: still one line naming it, and a usage exit.
      ctx.stderr.write(`genre-mind ${name}: ${err.path ?? "a path"}: ${pathProblem}\n`);
      if (ctx.env[DEBUG_VARIABLE]) ctx.stderr.write(`${err.stack}\n`);
      return 2;
    }
    ctx.stderr.write(`genre-mind ${name}: ${err.message}\n`);
    if (ctx.env[DEBUG_VARIABLE]) ctx.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

/**
 * The CLI as a process runs it, with the process's streams and exit status: `npm run <command>`
 * (tsx src/cli/main.ts) and the installed `genre-mind` (bin/genre-mind.js) both come here.
 */
export async function main(argv: string[]): Promise<void> {
  // A process-wide V8 setting: set once for the process's command, not by runCli, which tests and
  // augment call many times in one process.
  tuneHeapGrowth(argv[0], process.env.NODE_OPTIONS);
  process.exitCode = await runCli(argv, { env: process.env, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() });
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) await main(process.argv.slice(2));
