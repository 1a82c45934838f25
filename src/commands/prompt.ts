import { z } from "zod";
import { defineCommand, UsageError, UserError } from "../cli/command.js";
import { StageName } from "../engine/types.js";
import { commonStageOptions, StageConfig, stageFlagOptions } from "../stages/options.js";
import { buildRequests, prepareStage } from "../stages/run.js";

export const promptCommand = defineCommand({
  name: "prompt",
  summary: "print the fully rendered prompt of one news item or user: exactly what a stage would send",
  positionals: [
    { name: "stage", description: "summarize | profile | generate", required: true },
    { name: "id", description: "a news ID (summarize) or a user ID (profile, generate)", required: true },
  ],
  options: {
    data: commonStageOptions.data!,
    out: { type: "string", arg: "<dir>", description: "run folder holding profile.jsonl (generate --chain; default output/run)" },
    prompts: commonStageOptions.prompts!,
    lenient: commonStageOptions.lenient!,
    ...stageFlagOptions,
  },
  schema: StageConfig.extend({ positionals: z.tuple([z.string(), z.string()]) }),
  details: "The system part is the same for every item of a stage (it is what prompt caching reuses);\nthe user part carries the item. JSON stages also print the output schema sent with the request.",
  async run(config, ctx) {
    const [stageName, id] = config.positionals;
    const stage = StageName.safeParse(stageName);
    if (!stage.success) throw new UsageError(`unknown stage '${stageName}': expected summarize, profile or generate`);
    const prepared = await prepareStage(stage.data, config, ctx);
    const why = prepared.stage.whyNot(prepared.input.catalog, prepared.input.options, id);
    // An ID the stage would not ask about is a wrong argument, like a path that does not exist.
    if (why) throw new UserError(why, 2);
    // The prompt of one item, built exactly as the stage builds it for a run (profiles included).
    const { requests } = await buildRequests(prepared, config, ctx, [id]);
    const req = requests[0];
    if (!req) throw new UserError(`${id} has no profile yet, so generate --chain has no prompt for it`);
    const { system, user } = prepared.input;
    ctx.stdout.write(`=== system (${system.path}) ===\n${req.system}\n\n=== user (${user.path}) ===\n${req.user}\n`);
    if (req.jsonSchema) ctx.stdout.write(`\n=== output schema ===\n${JSON.stringify(req.jsonSchema, null, 2)}\n`);
    if (req.source) {
      ctx.stdout.write(
        `\n=== source ===\n${req.source.split} (${id}'s earliest non-empty history), clicks ${req.source.clicks.join(" ")}\n` +
          `merge uses the answer in every split whose history for ${id} holds all of these clicks\n`,
      );
    }
    return 0;
  },
});
