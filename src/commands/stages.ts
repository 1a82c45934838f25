// The stage commands, imported by the command list with one line.
export { summarizeCommand } from "./summarize.js";
export { profileCommand } from "./profile.js";
export { generateCommand } from "./generate.js";
export { promptCommand } from "./prompt.js";
