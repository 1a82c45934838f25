// Every stage genre-mind runs, in the order augment runs them and every listing shows them (the
// command list, merge's manifest, the report). A stage is its own folder declaring a Stage
// (stage.ts); adding one is that folder plus one line in BUILT_IN below. Tests may register their own.
import type { z } from "zod";
import type { OptionSpecs } from "../cli/command.js";
import { describeStage } from "./describe/index.js";
import { factorsNewsStage, factorsUsersStage } from "./factors/index.js";
import { generateStage } from "./generate/index.js";
import { pickStage } from "./pick/index.js";
import { profileStage } from "./profile/index.js";
import type { Stage } from "./stage.js";
import { summarizeStage } from "./summarize/index.js";

const BUILT_IN: readonly Stage[] = [summarizeStage, profileStage, generateStage, describeStage, pickStage, factorsUsersStage, factorsNewsStage];

const registry = new Map<string, Stage>();
let version = 0;

/** A stage name is a file name in the run folder and a CLI command: lower case, digits, dashes. */
const NAME = /^[a-z][a-z0-9-]*$/;

export function registerStage(stage: Stage): void {
  if (!NAME.test(stage.name)) throw new Error(`stage name '${stage.name}': use lower case letters, digits and dashes`);
  if (registry.has(stage.name)) throw new Error(`stage ${stage.name} is registered twice`);
  for (const [flag, spec] of Object.entries(stage.flags)) {
    // augment and prompt take every stage's flags at once: one flag name, one meaning.
    const other = stages().find((s) => Object.hasOwn(s.flags, flag) && s.flags[flag] !== spec);
    if (other) throw new Error(`stage ${stage.name}: flag --${flag} is already declared differently by ${other.name}; share the spec`);
  }
  registry.set(stage.name, stage);
  version++;
}

for (const stage of BUILT_IN) registerStage(stage);

/** In registration order. */
export function stages(): Stage[] {
  return [...registry.values()];
}

export function isStageName(name: string): boolean {
  return registry.has(name);
}

/** The stage of a name the config has already checked (StageName). */
export function stageNamed(name: string): Stage {
  const stage = registry.get(name);
  if (!stage) throw new Error(`no stage named ${name} is registered`);
  return stage;
}

/** Changes whenever a stage is registered: what is built from the registry is rebuilt then. */
export function registryVersion(): number {
  return version;
}

/** "summarize, profile or generate" */
export function stageList(): string {
  const names = stages().map((s) => s.name);
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : (names[0] ?? "");
}

/** The flags of every stage, for commands that serve them all (augment, prompt): registry order. */
export function allStageFlags(): OptionSpecs {
  return Object.assign({}, ...stages().map((s) => s.flags));
}

/** Their schema: StageConfig extended by this serves any stage. */
export function allStageConfig(): z.ZodRawShape {
  return Object.assign({}, ...stages().map((s) => s.config.shape));
}
/** A registered stage's name (isStageName checks one): the engine and the run folder see it as a label. */
export type StageName = string;
