import type { Command } from "../cli/command.js";
import { registryVersion, stages } from "../stages/registry.js";
import { augmentCommand } from "./augment.js";
import { demoCommand } from "./demo.js";
import { downloadCommand } from "./download.js";
import { exportCommand } from "./export.js";
import { importCommand } from "./import.js";
import { mergeCommand } from "./merge.js";
import { promptCommand } from "./prompt.js";
import { reportCommand } from "./report.js";
import { scoreCommand } from "./score.js";
import { splitCommand } from "./split.js";
import { stageCommand } from "./stage-command.js";
import { validateCommand } from "./validate.js";

let built: { version: number; commands: Command[] } | undefined;

/**
 * Every CLI command, in the order `genre-mind --help` lists them: one per registered stage among
 * them. Built from the stage registry, and again when a stage is registered later (a test's).
 */
export function commands(): Command[] {
  if (built?.version !== registryVersion()) {
    built = {
      version: registryVersion(),
      commands: [
        validateCommand,
        importCommand,
        mergeCommand(),
        augmentCommand(),
        demoCommand,
        exportCommand,
        splitCommand,
        scoreCommand,
        ...stages().map(stageCommand),
        promptCommand(),
        downloadCommand,
        reportCommand,
      ],
    };
  }
  return built.commands;
}
