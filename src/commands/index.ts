import type { Command } from "../cli/command.js";
import { validateCommand } from "./validate.js";
import { mergeCommand } from "./merge.js";
import { augmentCommand } from "./augment.js";
import { demoCommand } from "./demo.js";
import { exportCommand } from "./export.js";
import { scoreCommand } from "./score.js";
import { splitCommand } from "./split.js";
import { importCommand } from "./import.js";
import { summarizeCommand, profileCommand, generateCommand, promptCommand } from "./stages.js";
import { downloadCommand } from "./download.js";
import { reportCommand } from "./report.js";

/** Every CLI command, in the order `genre-mind --help` lists them. */
export const COMMANDS: Command[] = [validateCommand, importCommand, mergeCommand, augmentCommand, demoCommand, exportCommand, splitCommand, scoreCommand, summarizeCommand, profileCommand, generateCommand, promptCommand, downloadCommand, reportCommand];
