// How a test starts a child process of the CLI or the engine: with the loopback guard preloaded and
// an environment that holds nothing of the developer's machine that could send it elsewhere.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const TSX = createRequire(import.meta.url).resolve("tsx");
const GUARD = fileURLToPath(new URL("./loopback-only.mjs", import.meta.url));

/** `node` arguments that run a TypeScript file under tsx with the loopback guard. */
export function nodeArgs(script: string, ...args: string[]): string[] {
  return ["--import", TSX, "--import", GUARD, script, ...args];
}

const BIN = fileURLToPath(new URL("../../bin/genre-mind.js", import.meta.url));

/** `node` arguments that start the installed `genre-mind` command as a shell would: no tsx preloaded, the loopback guard is. */
export function binArgs(...args: string[]): string[] {
  return ["--import", GUARD, BIN, ...args];
}

/**
 * The parent's environment without proxy settings, API keys or endpoints, or genre-mind options
 * (a developer's shell may hold any of them) and without vitest's markers (the child runs no
 * tests), plus `extra`. tsx keeps no cache in the temp folder.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/proxy/i.test(k) || /^(ANTHROPIC|OPENAI|GENRE_MIND)_|^VITEST/.test(k) || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return { ...env, TSX_DISABLE_CACHE: "1", ...extra };
}
