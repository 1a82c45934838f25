// `genre-mind <stage>`: one command per registered stage, built from its Stage (flags, help text);
// the stages share their common flags, config and run.
import { defineCommand, type Command } from "../cli/command.js";
import { engineOptions } from "../engine/config.js";
import { commonStageOptions, StageConfig } from "../stages/options.js";
import { runStage } from "../stages/run.js";
import type { Stage } from "../stages/stage.js";

export function stageCommand(stage: Stage): Command {
  return defineCommand({
    name: stage.name,
    summary: stage.command.summary,
    options: { ...commonStageOptions, ...stage.flags, ...engineOptions },
    schema: StageConfig.and(stage.config),
    details: `${stage.command.details.trimEnd()}

Records go to <out>/${stage.name}.jsonl (one line per answered item; an item already answered with the
same prompt, model and input is not asked again, so re-running on a newer snapshot of the data
asks only for new or changed items). Failures go to <out>/${stage.name}.failures.jsonl, and
<out>/${stage.name}.meta.json records prompt hashes, options, splits, counts, tokens and cost.
Exit status: 0 on success, 1 when more than --max-failure-share of the items failed, 2 for bad usage.`,
    async run(config, ctx) {
      return (await runStage(stage.name, config, ctx)).exitCode;
    },
  });
}
