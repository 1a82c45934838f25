// Paths named on the command line are checked before any work: one that does not exist, or a file
// where a folder is expected (or the reverse), is a usage mistake (exit 2) said in one line that
// names the flag, instead of a Node error (ENOENT, EISDIR, EEXIST) from deep inside a reader.
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UserError } from "./command.js";

/** A path that does not exist or is the wrong kind: exit 2, like any other usage mistake. */
export class PathError extends UserError {
  constructor(message: string) {
    super(message, 2);
  }
}

type Kind = "file" | "folder" | "other";

function kindOf(path: string): Kind | undefined {
  try {
    const s = statSync(path);
    return s.isFile() ? "file" : s.isDirectory() ? "folder" : "other";
  } catch {
    return undefined;
  }
}

/** `--truth behaviors.tsv`: a file that must exist. Returns the resolved path. */
export function inputFile(cwd: string, given: string, label: string): string {
  const path = resolve(cwd, given);
  const kind = kindOf(path);
  if (kind === undefined) throw new PathError(`${label} ${given}: no such file`);
  if (kind === "folder") throw new PathError(`${label} ${given}: a folder, expected a file`);
  return path;
}

/** `--prompts <dir>`: a folder that must exist. Returns the resolved path. */
export function inputFolder(cwd: string, given: string, label: string): string {
  const path = resolve(cwd, given);
  const kind = kindOf(path);
  if (kind === undefined) throw new PathError(`${label} ${given}: no such folder`);
  if (kind !== "folder") throw new PathError(`${label} ${given}: a file, expected a folder`);
  return path;
}

/** `--out <dir>`: a folder to write into; it may not exist yet, but neither it nor a parent may be a file. */
export function outputFolder(cwd: string, given: string, label: string): string {
  const path = resolve(cwd, given);
  for (let p = path; ; p = dirname(p)) {
    const kind = kindOf(p);
    if (kind === "folder") break;
    if (kind !== undefined) {
      throw new PathError(p === path ? `${label} ${given}: a file, expected a folder` : `${label} ${given}: ${p} is a file, so no folder can be made below it`);
    }
    if (dirname(p) === p) break;
  }
  return path;
}
