// `genre-mind <stage>`: one command per registered stage, built from its Stage (flags, help text);
// the stages share their common flags, config and run.
import { defineCommand, type Command } from "../cli/command.js";
import { engineOptions } from "../engine/config.js";
import { commonStageOptions, StageFlags, withData } from "../stages/options.js";
import { runStage } from "../stages/run.js";
import type { Stage } from "../stages/stage.js";

export function stageCommand(stage: Stage): Command {
  return defineCommand({
    name: stage.name,
    summary: stage.command.summary,
    options: { ...commonStageOptions, ...stage.flags, ...engineOptions },
    schema: StageFlags.and(stage.config),
    details: `${stage.command.details.trimEnd()}

Records go to <out>/${stage.name}.jsonl (one line per answered item; an item already answered with the
same prompt, model and input is not asked again, so re-running on a newer snapshot of the data
asks only for new or changed items). Failures go to <out>/${stage.name}.failures.jsonl, and
<out>/${stage.name}.meta.json records prompt hashes, options, splits, counts, tokens and cost.
Before the first request the input splits get validate's checks (remembered in <out>/inputs-checked.json
once passed); an error stops the run with nothing sent.
Ctrl-C (or SIGTERM) stops sending, stores the answers in flight (waiting up to --timeout), prints the
summary and exits 130 (143); run the same command to resume. A second Ctrl-C exits at once.
Exit status: 0 on success, 1 for bad input data or when more than --max-failure-share of the items
failed, 2 for bad usage (a flag, variable or path), 3 when --max-cost stopped the run, 4 when another
run holds <out>/${stage.name}.lock, 130/143 when a signal did.`,
    async run(config, ctx) {
      return (await runStage(stage.name, withData(config, ctx), ctx)).exitCode;
    },
  });
}
