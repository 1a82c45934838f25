import { parseArgs } from "node:util";
import { readFileSync, existsSync } from "node:fs";
import { resolve } from "node:path";
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

/** `max-retries` → `GENRE_MIND_MAX_RETRIES`: every option can also come from the environment. */
export function envName(flag: string): string {
  return `GENRE_MIND_${flag.replace(/-/g, "_").toUpperCase()}`;
}

function fromEnv(spec: OptionSpec, raw: string): unknown {
  if (spec.type === "boolean") return raw === "1" || raw.toLowerCase() === "true";
  if (spec.multiple) return raw.split(",").map((s) => s.trim()).filter(Boolean);
  return raw;
}

function loadConfigFile(path: string | undefined, cwd: string, command: string): Record<string, unknown> {
  const file = path ? resolve(cwd, path) : resolve(cwd, "genre-mind.config.json");
  if (!path && !existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UsageError(`config file ${file}: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${file}: expected a JSON object`);
  }
  // Top-level keys apply to every command; a section named after the command overrides them.
  const all = parsed as Record<string, unknown>;
  for (const [key, value] of Object.entries(all)) {
    if (typeof value === "object" && value !== null && !Array.isArray(value) && !COMMAND_NAMES.has(key)) {
      throw new UsageError(`config file ${file}: '${key}' is not a command name`);
    }
  }
  const section = all[command];
  const top = Object.fromEntries(Object.entries(all).filter(([, v]) => typeof v !== "object" || v === null || Array.isArray(v)));
  return { ...top, ...(typeof section === "object" && section !== null && !Array.isArray(section) ? section : {}) };
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.length > 0 ? `--${i.path.join(".")}` : "options";
      return `${path}: ${i.message}`;
    })
    .join("\n");
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
          args: argv,
          options: Object.fromEntries(
            // parseArgs rejects keys that are present but undefined, so only set ones are passed.
            Object.entries(options).map(([k, s]) => [k, { type: s.type, ...(s.multiple ? { multiple: true } : {}), ...(s.short ? { short: s.short } : {}) }]),
          ),
          allowPositionals: true,
          strict: true,
        });
      } catch (e) {
        throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ""));
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
      const fileValues = loadConfigFile(values.config as string | undefined, ctx.cwd, def.name);
      for (const key of Object.keys(fileValues)) {
        if (key in def.options) continue;
        // A shared config file may hold options of other commands; a key no command knows is a typo.
        if (!KNOWN_OPTION_NAMES.has(key)) throw new UsageError(`config file: unknown option '${key}'`);
        delete fileValues[key];
      }
      const envValues: Record<string, unknown> = {};
      for (const [name, spec] of Object.entries(def.options)) {
        const raw = ctx.env[envName(name)];
        if (raw !== undefined && raw !== "") envValues[name] = fromEnv(spec, raw);
      }
      const flagValues = Object.fromEntries(Object.entries(values).filter(([k]) => k in def.options));
      const merged = { ...fileValues, ...envValues, ...flagValues, positionals: parsed.positionals };
      const result = def.schema.safeParse(merged);
      if (!result.success) throw new UsageError(formatIssues(result.error));
      return def.run(result.data, ctx);
    },
  };
}

/** Filled by the command registry so a shared config file may hold options of other commands. */
export const KNOWN_OPTION_NAMES = new Set<string>(Object.keys(GLOBAL_OPTIONS));
export const COMMAND_NAMES = new Set<string>();

// Reusable value schemas: flags arrive as strings, config files as JSON values.
export const zInt = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number({ error: "expected a whole number" }).int({ error: "expected a whole number" }).min(min).max(max);
export const zNumber = (min: number, max = Number.MAX_VALUE) => z.coerce.number({ error: "expected a number" }).min(min).max(max);
export const zBool = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]);
export const zStringList = z.union([z.string().transform((s) => [s]), z.array(z.string())]);
