import { defineStageCommand } from "./stage-command.js";

export const summarizeCommand = defineStageCommand(
  "summarize",
  "enhance every news title with the LLM (GENRE's content summarizer)",
  {},
  `Every distinct news ID of the given splits is asked once (an ID in train and dev counts once)
with its title, abstract, category and subcategory (prompts/summarize.*.md). The answer must be
one line of plain text: not empty, at most 40 words, not a copy of the instructions or of the input
labels, not JSON or markup (HTML, Markdown); {"title": "X"} is read as X, any other JSON is re-asked.
Offline: the title followed by the title-entity labels and subcategory it does not already say.`,
);
