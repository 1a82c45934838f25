// generate --chain (GENRE's UP→CG): the profile records a chained prompt shows, and how augment
// chains by default.
import { existsSync } from "node:fs";
import { relative } from "node:path";
import { z } from "zod";
import { UserError, zBool, type CommandContext } from "../../cli/command.js";
import { engineJsonl, lineItemId } from "../../engine/store.js";
import { StageRecord, type RecordSource } from "../../engine/types.js";
import type { Catalog } from "../../mind/catalog.js";
import { holdsAll } from "../../mind/history-rule.js";
import { runPaths } from "../../run/folder.js";
import { ProfileOutput } from "../profile/output.js";
import type { AugmentHook } from "../stage.js";

/** What a chained request takes from a user's profile record. */
export interface ChainProfile {
  topics: string[];
  source: RecordSource;
}

/**
 * The kept profiles, one string per user (topics, source split, source clicks): at MIND-large the
 * ~200k cold users' parsed records were ~100 MB of small objects on the JS heap for the whole run,
 * and V8 lets the heap grow to a multiple of what is live before it collects.
 */
export class ChainProfiles {
  private readonly packed = new Map<string, string>();

  // Topics come from a closed vocabulary, IDs are TSV fields and split names folder names: none holds \0 or \n.
  set(userId: string, profile: ChainProfile): void {
    // One join, not a template: a template's result is a tree of string pieces, three more objects per user.
    this.packed.set(userId, [profile.topics.join("\n"), profile.source.split, profile.source.clicks.join("\n")].join("\0"));
  }

  delete(userId: string): void {
    this.packed.delete(userId);
  }

  has(userId: string): boolean {
    return this.packed.has(userId);
  }

  get size(): number {
    return this.packed.size;
  }

  /** A fresh object each time (the request adds to its source's clicks). */
  get(userId: string): ChainProfile | undefined {
    const p = this.packed.get(userId);
    if (p === undefined) return undefined;
    const [topics, split, clicks] = p.split("\0") as [string, string, string];
    return { topics: topics.split("\n"), source: { split, clicks: clicks.split("\n") } };
  }
}

/**
 * generate --chain reads `<out>/profile.jsonl` (the last record of a user wins). A profile serves a
 * user only when it was written from clicks of their source history (a record without its source,
 * written before records kept one, does not). Users without such a profile are left out with a
 * note while they are at most --max-failure-share of the items (a profile run may fail a few
 * users); beyond that, or without the file, the run stops.
 *
 * In a trial (--limit, e.g. `augment --limit 5`, whose profile stage took the first users of the
 * catalog, not the first cold ones) users without a profile are not failures, only users the trial
 * skipped, as long as some user has one; --limit then takes the first of those kept (run.ts).
 */
export async function loadProfiles(
  out: string,
  catalog: Catalog,
  itemIds: readonly string[],
  maxShare: number,
  ctx: CommandContext,
  trial = false,
): Promise<{ profiles: ChainProfiles; kept: string[] }> {
  const file = runPaths(out).records("profile");
  const shown = relative(ctx.cwd, file) || file;
  if (!existsSync(file)) {
    // Exit 2, as for a path that does not exist: --chain was asked of a folder profile has not written yet.
    throw new UserError(`generate --chain needs the user profiles in ${shown}, which does not exist: run 'genre-mind profile --out ${relative(ctx.cwd, out) || "."}' with the same --data first`, 2);
  }
  const wanted = new Set(itemIds);
  const profiles = new ChainProfiles();
  // Streamed: a MIND-large profile file holds a million records, of which the cold users' are kept;
  // the others are not even parsed (a line whose item cannot be told is).
  const schema = StageRecord.extend({ output: ProfileOutput });
  const mayBeWanted = (line: string) => {
    const id = lineItemId(line);
    return id === undefined || wanted.has(id);
  };
  for await (const r of engineJsonl(file, schema, undefined, mayBeWanted)) {
    if (!wanted.has(r.itemId)) continue;
    const history = catalog.users.get(r.itemId)?.history ?? [];
    if (r.source && holdsAll(new Set(history), r.source.clicks)) profiles.set(r.itemId, { topics: r.output.topics, source: r.source });
    else profiles.delete(r.itemId);
  }
  const kept = itemIds.filter((id) => profiles.has(id));
  if (trial && kept.length > 0) return { profiles, kept };
  const lacking = itemIds.length - kept.length;
  if (lacking > 0) {
    const examples = itemIds.filter((id) => !profiles.has(id)).slice(0, 3).join(", ");
    const message = `${lacking} of ${itemIds.length} cold users have no profile written from their source history in ${shown} (e.g. ${examples})`;
    if (lacking / itemIds.length > maxShare) {
      throw new UserError(`generate --chain: ${message}: run 'genre-mind profile' over the same --data into the same --out first`, 2);
    }
    ctx.stderr.write(`note: ${message}; they are left out of this run\n`);
  }
  return { profiles, kept };
}

const AugmentChain = z.object({
  // GENRE's stronger variant (UP→CG) is the default in augment; the generate command defaults to false.
  chain: zBool.default(true),
  "no-chain": zBool.default(false),
});

/** augment chains generate on the profiles it has just written, unless told not to. */
export const augmentChained: AugmentHook = {
  flags: {
    chain: { type: "string", arg: "<true|false>", description: "condition generate on the profile topics (UP→CG; default true)" },
    "no-chain": { type: "boolean", description: "same as --chain false: plain generate (CG)" },
  },
  config: AugmentChain,
  configure(config, out, ctx) {
    const c = AugmentChain.parse(config);
    let chain = c.chain && !c["no-chain"];
    if (chain && config["dry-run"] && !existsSync(runPaths(out).records("profile"))) {
      // A dry run stores no profiles, and the chained prompt needs them: estimate the plain prompt.
      ctx.stderr.write("augment: dry run without stored profiles: generate is estimated without --chain\n");
      chain = false;
    }
    return { config: { ...config, chain }, note: chain ? " (chained on the profiles)" : undefined };
  },
};
