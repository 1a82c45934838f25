import { Writable } from "node:stream";
import type { Command } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/main.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const sink = (into: string[]) =>
  new Writable({
    write(chunk, _enc, cb) {
      into.push(String(chunk));
      cb();
    },
  });

/** Runs one CLI invocation in-process with captured output, as a user would from a shell. */
export async function runCliCaptured(argv: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { env: opts.env ?? {}, cwd: opts.cwd, stdout: sink(out), stderr: sink(err) });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

/** Invokes one command directly with stdout captured: a usage error throws (no exit code 2), so a test can expect it. */
export async function invokeCaptured(command: Command, argv: string[], cwd: string): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await command.invoke(argv, { env: {}, cwd, stdout: sink(out), stderr: sink([]) });
  return { code, out: out.join("") };
}
