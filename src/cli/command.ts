import { parseArgs } from "node:util";
import { readFileSync, existsSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { z } from "zod";

/** A bad flag, value or config entry: the CLI prints it with the command's usage and exits 2. */
export class UsageError extends Error {}

/** A failure the user must act on (bad data, refused key, ...): printed without a stack, exit 1. */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** Shown in --help, e.g. `<dir>`. */
  arg?: string;
  description: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** Where a command runs: streams and environment are passed in so tests can run commands in-process. */
export interface CommandContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  cwd: string;
}

export interface CommandDef<S extends z.ZodType> {
  name: string;
  summary: string;
  /** Positional arguments as they appear in usage, e.g. `<dir>`; they arrive as `positionals`. */
  positionals?: { name: string; description: string; required?: boolean; variadic?: boolean }[];
  options: OptionSpecs;
  /** Validates the merged options (flags over environment over config file); keys are flag names. */
  schema: S;
  run(config: z.infer<S>, ctx: CommandContext): Promise<number>;
  /** Extra help text printed after the options. */
  details?: string;
}

export interface Command {
  name: string;
  summary: string;
  help(): string;
  invoke(argv: string[], ctx: CommandContext): Promise<number>;
}

const GLOBAL_OPTIONS: OptionSpecs = {
  config: { type: "string", arg: "<file>", description: "config file (default: ./genre-mind.config.json when present)" },
  help: { type: "boolean", short: "h", description: "show this help" },
};

const ENV_PREFIX = "GENRE_MIND_";

/** `max-retries` → `GENRE_MIND_MAX_RETRIES`: every option can also come from the environment. */
export function envName(flag: string): string {
  return `${ENV_PREFIX}${flag.replace(/-/g, "_").toUpperCase()}`;
}

/** Prints the stack of an unexpected error (main.ts); the one GENRE_MIND_ variable that is no option. */
export const DEBUG_VARIABLE = "GENRE_MIND_DEBUG";

/**
 * A GENRE_MIND_ variable that names no option of any command (GENRE_MIND_DRYRUN) would be ignored
 * like an unset one, and the run would go ahead without it. One naming another command's option is
 * let be, as a config file's key is: a shell exports it for the stages, and merge must still run.
 */
/** The option a mistyped name most likely meant: the command's own first, then any command's (help is no value to set). */
function suggestedOption(typed: string, own: readonly string[]): string | undefined {
  return nearestName(typed, own) ?? nearestName(typed, [...KNOWN_OPTION_NAMES].filter((n) => n !== "help"));
}

function checkEnvNames(env: NodeJS.ProcessEnv, own: readonly string[]): void {
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || variable === DEBUG_VARIABLE || value === undefined || value === "") continue;
    const flag = variable.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, "-");
    if (flag !== "help" && KNOWN_OPTION_NAMES.has(flag) && envName(flag) === variable) continue;
    const near = suggestedOption(flag, own);
    throw new UsageError(`environment variable ${variable} names no option of any command${near ? ` (did you mean ${envName(near)}?)` : ""}`);
  }
}

function fromEnv(spec: OptionSpec, raw: string): unknown {
  if (spec.type === "boolean") {
    const v = raw.trim().toLowerCase();
    // Anything but 1/0/true/false goes to the schema as it is, which names the variable.
    return v === "1" || v === "true" ? true : v === "0" || v === "false" ? false : raw;
  }
  if (spec.multiple) return raw.split(",").map((s) => s.trim()).filter(Boolean);
  return raw;
}

/** A path as the user would write it: relative to the working folder when inside it, else absolute. */
export function shownPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel === "" ? "." : rel.startsWith("..") || isAbsolute(rel) ? path : rel;
}

/** Where an option's value came from, so an error names what the user has to edit. */
type Source = { kind: "flag" } | { kind: "env"; name: string } | { kind: "file"; file: string; key: string };

interface ConfigFileValues {
  values: Record<string, unknown>;
  /** The key each value came from: `limit`, or `summarize.limit` for a command's section. */
  keys: Record<string, string>;
  /** The file as the user would name it (relative to the working folder when inside it). */
  shown: string;
}

/** `source` names where `path` came from in a message: `--config` or its environment variable. */
function loadConfigFile(path: string | undefined, cwd: string, command: string, source = "--config"): ConfigFileValues {
  const file = path ? resolve(cwd, path) : resolve(cwd, "genre-mind.config.json");
  const shown = shownPath(file, cwd);
  if (!path && !existsSync(file)) return { values: {}, keys: {}, shown };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a folder, expected a JSON file" : `not valid JSON (${(e as Error).message})`;
    throw new UsageError(`${source} ${shown}: ${why}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${shown}: expected a JSON object`);
  }
  // Top-level keys apply to every command; a section named after the command overrides them.
  const all = parsed as Record<string, unknown>;
  const isSection = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  for (const [key, value] of Object.entries(all)) {
    if (isSection(value) && !COMMAND_NAMES.has(key)) {
      throw new UsageError(`config file ${shown}: '${key}' is not a command name`);
    }
  }
  const values: Record<string, unknown> = {};
  const keys: Record<string, string> = {};
  for (const [key, value] of Object.entries(all)) {
    if (isSection(value)) continue;
    values[key] = value;
    keys[key] = key;
  }
  const section = all[command];
  if (isSection(section)) {
    for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
      values[key] = value;
      keys[key] = `${command}.${key}`;
    }
  }
  return { values, keys, shown };
}

function describeValue(value: unknown): string {
  if (value === undefined || typeof value === "object") return "";
  const text = String(value);
  return ` (got '${text.length > 40 ? `${text.slice(0, 40)}…` : text}')`;
}

/** zod's generic wording, replaced where it says less than we know. */
function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  if (value === undefined && (issue.code === "invalid_type" || issue.code === "invalid_union") && !issue.message.startsWith("required")) {
    return "required";
  }
  if (issue.code === "invalid_value" && issue.message.startsWith("Invalid option")) {
    return `expected one of ${issue.values.map(String).join(", ")}`;
  }
  // zod's wording for a list of choices, also as a refinement writes it: 'Invalid option: expected one of "a"|"b"'.
  const choices = /^Invalid option: expected one of (.*)$/.exec(issue.message)?.[1];
  if (choices) return `expected one of ${choices.split("|").map((c) => c.replace(/^"|"$/g, "")).join(", ")}`;
  return issue.message;
}

export interface IssueContext {
  /** The raw merged values, to show what was given. */
  raw?: Record<string, unknown>;
  sources?: Record<string, Source>;
  positionalNames?: string[];
}

/**
 * One line for a failed parse: the first problem of each option, named the way the user gave it
 * (`--limit`, `GENRE_MIND_LIMIT`, or the config file and key) with the value that was rejected.
 */
export function formatIssues(error: z.ZodError, ctx: IssueContext = {}): string {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const issue of error.issues) {
    const [key, index] = issue.path;
    const id = issue.path.slice(0, key === "positionals" ? 2 : 1).join(".");
    if (seen.has(id)) continue;
    seen.add(id);
    if (key === undefined) {
      parts.push(`options: ${issue.message}`);
      continue;
    }
    if (key === "positionals") {
      const name = typeof index === "number" ? ctx.positionalNames?.[index] : undefined;
      const value = typeof index === "number" ? (ctx.raw?.positionals as unknown[] | undefined)?.[index] : undefined;
      parts.push(`${name ? `<${name}>` : "arguments"}: ${issueMessage(issue, value)}${describeValue(value)}`);
      continue;
    }
    const value = ctx.raw?.[String(key)];
    const source = ctx.sources?.[String(key)] ?? { kind: "flag" };
    const where =
      source.kind === "env"
        ? `${source.name} (environment variable for --${String(key)})`
        : source.kind === "file"
          ? `${source.file}, key "${source.key}"`
          : `--${String(key)}`;
    parts.push(`${where}: ${issueMessage(issue, value)}${describeValue(value)}`);
  }
  return parts.join("; ");
}

/** Node's parseArgs speaks in paragraphs; one line each, in our words. */
function parseArgsMessage(e: Error, options: OptionSpecs): string {
  const m = e.message;
  const flag = /^(?:Unknown option|Option) '(-[^' ]+)/.exec(m)?.[1] ?? "";
  if (m.startsWith("Unknown option")) {
    const near = nearestName(flag.replace(/^-+/, ""), Object.keys(options));
    return `unknown option '${flag}'${near ? ` (did you mean --${near}?)` : ""}`;
  }
  if (m.includes("does not take an argument")) return `${flag} takes no value`;
  const arg = options[flag.replace(/^-+/, "")]?.arg;
  if (m.includes("argument missing")) return `${flag}: missing its value${arg ? ` ${arg}` : ""}`;
  if (m.includes("ambiguous")) return `${flag}: missing its value (a value starting with '-' is written ${flag}=<value>)`;
  return m.split("\n")[0]!.replace(/\. To specify a positional.*$/s, "");
}

/** The name (option, command, stage) a typo most likely meant: at most two edits away, or a prefix of it. */
export function nearestName(typed: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = name.startsWith(typed) && typed.length >= 3 ? 1 : editDistance(typed, name);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** `--limit -3` reads as a flag after --limit; a string option followed by a negative number takes it as its value. */
function joinNegativeValues(argv: string[], options: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const name = a.startsWith("--") ? a.slice(2) : undefined;
    if (name && options[name]?.type === "string" && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function defineCommand<S extends z.ZodType>(def: CommandDef<S>): Command {
  const options = { ...def.options, ...GLOBAL_OPTIONS };
  COMMAND_NAMES.add(def.name);
  for (const key of Object.keys(def.options)) KNOWN_OPTION_NAMES.add(key);
  const help = (): string => {
    const pos = (def.positionals ?? []).map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`) + (p.variadic ? "..." : "")).join(" ");
    const usage = ["genre-mind", def.name, pos, Object.keys(def.options).length ? "[options]" : ""].filter(Boolean).join(" ");
    const lines = [usage, "", def.summary, ""];
    for (const p of def.positionals ?? []) lines.push(`  ${p.name.padEnd(28)} ${p.description}`);
    if (def.positionals?.length) lines.push("");
    lines.push("Options:");
    for (const [name, spec] of Object.entries(options)) {
      const flag = `${spec.short ? `-${spec.short}, ` : ""}--${name}${spec.arg ? ` ${spec.arg}` : ""}`;
      lines.push(`  ${flag.padEnd(28)} ${spec.description}${spec.multiple ? " (repeatable)" : ""}`);
    }
    lines.push("", "Every option can also be set in genre-mind.config.json (key = option name) or as GENRE_MIND_<OPTION>.");
    if (def.details) lines.push("", def.details.trimEnd());
    return lines.join("\n") + "\n";
  };

  return {
    name: def.name,
    summary: def.summary,
    help,
    async invoke(argv, ctx) {
      let parsed;
      try {
        parsed = parseArgs({
          args: joinNegativeValues(argv, options),
          options: Object.fromEntries(
            // parseArgs rejects keys that are present but undefined, so only set ones are passed.
            Object.entries(options).map(([k, s]) => [k, { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) }]),
          ),
          allowPositionals: true,
          strict: true,
        });
      } catch (e) {
        throw new UsageError(parseArgsMessage(e as Error, options));
      }
      const values = parsed.values as Record<string, unknown>;
      if (values.help) {
        ctx.stdout.write(help());
        return 0;
      }
      const maxPositionals = def.positionals?.some((p) => p.variadic) ? Infinity : (def.positionals?.length ?? 0);
      if (parsed.positionals.length > maxPositionals) {
        throw new UsageError(`unexpected argument '${parsed.positionals[maxPositionals]}'`);
      }
      const required = (def.positionals ?? []).filter((p) => p.required);
      if (parsed.positionals.length < required.length) {
        throw new UsageError(`missing <${required[parsed.positionals.length]!.name}>`);
      }
      checkEnvNames(ctx.env, Object.keys(def.options));
      const configEnv = envName("config");
      const fromVariable = values.config === undefined && ctx.env[configEnv] ? ctx.env[configEnv] : undefined;
      const file = loadConfigFile(fromVariable ?? (values.config as string | undefined), ctx.cwd, def.name, fromVariable ? configEnv : undefined);
      const fileValues = file.values;
      const sources: Record<string, Source> = {};
      for (const key of Object.keys(fileValues)) {
        if (key in def.options) {
          sources[key] = { kind: "file", file: file.shown, key: file.keys[key]! };
          continue;
        }
        // A shared config file may hold options of other commands; a key no command knows is a typo.
        if (!KNOWN_OPTION_NAMES.has(key)) {
          const near = suggestedOption(key, Object.keys(def.options));
          throw new UsageError(`config file ${file.shown}: unknown option '${file.keys[key]}'${near ? ` (did you mean '${near}'?)` : ""}`);
        }
        delete fileValues[key];
      }
      const envValues: Record<string, unknown> = {};
      for (const [name, spec] of Object.entries(def.options)) {
        const raw = ctx.env[envName(name)];
        if (raw !== undefined && raw !== "") {
          envValues[name] = fromEnv(spec, raw);
          sources[name] = { kind: "env", name: envName(name) };
        }
      }
      const flagValues = Object.fromEntries(Object.entries(values).filter(([k]) => k in def.options));
      for (const key of Object.keys(flagValues)) sources[key] = { kind: "flag" };
      const merged = { ...fileValues, ...envValues, ...flagValues, positionals: parsed.positionals };
      const result = def.schema.safeParse(merged);
      if (!result.success) {
        throw new UsageError(formatIssues(result.error, { raw: merged, sources, positionalNames: def.positionals?.map((p) => p.name) }));
      }
      return def.run(result.data, ctx);
    },
  };
}

/** Filled by the command registry so a shared config file may hold options of other commands. */
export const KNOWN_OPTION_NAMES = new Set<string>(Object.keys(GLOBAL_OPTIONS));
export const COMMAND_NAMES = new Set<string>();

// Reusable value schemas: flags arrive as strings, config files as JSON values. A number's message
// states the whole range, whichever bound was missed, so a user fixes it in one go.
function zNumeric(whole: boolean, min: number, max: number | undefined): z.ZodType<number, unknown> {
  const kind = whole ? "a whole number" : "a number";
  const range = max === undefined ? `, at least ${min}` : ` between ${min} and ${max}`;
  const message = `expected ${kind}${range}`;
  return z.unknown().transform((v, ctx) => {
    const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
    const ok = Number.isFinite(n) && (!whole || Number.isSafeInteger(n)) && n >= min && (max === undefined || n <= max);
    if (ok) return n;
    ctx.addIssue({ code: "custom", message, input: v });
    return z.NEVER;
  });
}
export const zInt = (min: number, max?: number) => zNumeric(true, min, max);
export const zNumber = (min: number, max?: number) => zNumeric(false, min, max);
export const zBool = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")], { error: "expected true or false" });
export const zStringList = z.union([z.string().transform((s) => [s]), z.array(z.string())]);
