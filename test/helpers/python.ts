// Checks against Python (pickle, re, numpy, the trainers' parsing) run where python3 has what they
// need and are reported as skipped elsewhere: `it.skipIf(!PYTHON)`, never a test that passes
// without having run its check.
import { execFileSync, spawnSync } from "node:child_process";

const has = (code: string) => spawnSync("python3", ["-c", code], { stdio: "ignore" }).status === 0;

/** python3 with the standard library (json, pickle, re, csv). */
export const PYTHON = has("import json, pickle, re, csv");
/** python3 with numpy. */
export const NUMPY = PYTHON && has("import numpy");

/** The JSON a python3 script prints; fails the test when the script fails. */
export function python(script: string, input = "", args: string[] = []): unknown {
  return JSON.parse(execFileSync("python3", ["-c", script, ...args], { input }).toString());
}
