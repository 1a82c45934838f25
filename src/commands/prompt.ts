import { z } from "zod";
import { defineCommand, nearestName, UsageError, UserError, type Command } from "../cli/command.js";
import { commonStageOptions, DEFAULT_DATA, StageFlags, withData } from "../stages/options.js";
import { KINDS, type ItemKind } from "../stages/kinds.js";
import { allStageConfig, allStageFlags, isStageName, stageList, stages } from "../stages/registry.js";
import { buildRequests, prepareStage } from "../stages/run.js";

/** "a news ID (summarize) or a user ID (profile, generate)" */
function itemHelp(): string {
  const byKind = new Map<ItemKind, string[]>();
  for (const s of stages()) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s.name]);
  return [...byKind].map(([kind, names]) => `${KINDS[kind].item} (${names.join(", ")})`).join(" or ");
}

/** Built from the registry: it takes every stage's flags. */
export function promptCommand(): Command {
  return defineCommand({
    name: "prompt",
    summary: "print the fully rendered prompt of one news item or user: exactly what a stage would send",
    positionals: [
      { name: "stage", description: stageList().replace(/, | or /g, " | "), required: true },
      { name: "id", description: itemHelp(), required: true },
    ],
    options: {
      data: { type: "string", multiple: true, arg: "<dir>", description: `a split folder or a folder of splits (default: the bundled sample ${DEFAULT_DATA}, said on stderr)` },
      out: { type: "string", arg: "<dir>", description: "run folder holding profile.jsonl (generate --chain; default output/run)" },
      prompts: commonStageOptions.prompts!,
      lenient: commonStageOptions.lenient!,
      ...allStageFlags(),
    },
    schema: StageFlags.extend({ positionals: z.tuple([z.string(), z.string()]) }).and(z.object(allStageConfig())),
    details: "The system part is the same for every item of a stage (it is what prompt caching reuses);\nthe user part carries the item. JSON stages also print the output schema sent with the request.",
    async run(flags, ctx) {
      const [stageName, id] = flags.positionals;
      if (!isStageName(stageName)) {
        const near = nearestName(stageName, stages().map((st) => st.name));
        throw new UsageError(`unknown stage '${stageName}'${near ? ` (did you mean ${near}?)` : ""}: expected ${stageList()}`);
      }
      // prompt sends nothing (its provider is offline), so a left-out --data is the sample, with a note.
      const config = withData(flags, ctx);
      const prepared = await prepareStage(stageName, config, ctx);
      const why = prepared.stage.whyNot(prepared.input.catalog, prepared.input.options, id);
      // An ID the stage would not ask about is a wrong argument, like a path that does not exist.
      if (why) throw new UserError(why, 2);
      // The prompt of one item, built exactly as the stage builds it for a run (profiles included).
      const { requests } = await buildRequests(prepared, config, ctx, [id]);
      const [req] = requests();
      // A stage's prepare step may leave an item out (generate --chain: a user without a profile yet).
      if (!req) throw new UserError(`${stageName} has no prompt for ${id} with these options (see the note above)`);
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
}
