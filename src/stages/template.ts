// Prompt templates: plain files in prompts/ that a researcher edits without touching code.
// `{{name}}` is a placeholder; a line whose placeholders all render empty is left out, so
// `Abstract: {{abstract}}` disappears for a news item without an abstract.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../cli/command.js";
import { PathError } from "../cli/paths.js";
import { sha256 } from "../util/hash.js";

/** The prompts bundled with genre-mind (`<repo>/prompts`). */
export const BUNDLED_PROMPTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "prompts");

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;
/** Anything written as a placeholder: `{{Title}}` or `{{topic list}}` must be refused, not sent as is. */
const PLACEHOLDER_LIKE = /\{\{\s*([^{}\n]*?)\s*\}\}/g;

export interface Template {
  /** File name inside the prompts folder, e.g. `profile.user.md`. */
  file: string;
  path: string;
  text: string;
  placeholders: string[];
}

export interface TemplateSpec {
  file: string;
  /** Placeholders the template may use. */
  known: readonly string[];
  /** Placeholders it must use, or every item would get the same prompt. */
  required: readonly string[];
}

export function loadTemplate(dir: string, spec: TemplateSpec): Template {
  const path = join(dir, spec.file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new PathError(`prompt template ${path}: not found`);
    throw new UserError(`prompt template ${path}: ${(e as Error).message}`);
  }
  // Editors add a final newline; it is not part of the message.
  text = text.replace(/\r\n/g, "\n").replace(/\n+$/, "");
  const placeholders = [...new Set([...text.matchAll(PLACEHOLDER_LIKE)].map((m) => m[1]!))];
  for (const p of placeholders) {
    if (!spec.known.includes(p)) {
      const known = spec.known.length ? spec.known.map((k) => `{{${k}}}`).join(", ") : "none";
      throw new UserError(`prompt template ${path}: unknown placeholder {{${p}}} (this template may use: ${known})`);
    }
  }
  for (const r of spec.required) {
    if (!placeholders.includes(r)) throw new UserError(`prompt template ${path}: must contain the placeholder {{${r}}}`);
  }
  return { file: spec.file, path, text, placeholders };
}

/** Fills the placeholders in one pass, so a value containing `{{…}}` is never expanded. */
export function render(template: Template, values: Readonly<Record<string, string>>): string {
  const lines: string[] = [];
  for (const line of template.text.split("\n")) {
    let sawPlaceholder = false;
    let allEmpty = true;
    const out = line.replace(PLACEHOLDER, (_m, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`${template.file}: no value for {{${name}}}`);
      sawPlaceholder = true;
      if (value.length > 0) allEmpty = false;
      return value;
    });
    if (sawPlaceholder && allEmpty) continue;
    lines.push(out);
  }
  return lines.join("\n");
}

/** sha256 of each template's text by file name: what StageMeta records. */
export function templateHashes(templates: readonly Template[]): Record<string, string> {
  return Object.fromEntries(templates.map((t) => [t.file, sha256(t.text)]));
}
