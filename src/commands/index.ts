import type { Command } from "../cli/command.js";
import { validateCommand } from "./validate.js";
import { mergeCommand } from "./merge.js";

/** Every CLI command, in the order `genre-mind --help` lists them. */
export const COMMANDS: Command[] = [validateCommand, mergeCommand];
