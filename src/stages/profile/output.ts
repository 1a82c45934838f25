// What a profile record stores (StageRecord.output), read back by merge and the report.
import { z } from "zod";
import { Topic, UsState } from "../vocab.js";

export const ProfileOutput = z.object({
  /** Most relevant first. */
  topics: z.array(Topic).min(1),
  /** US state names, most relevant first; may be empty. */
  regions: z.array(UsState),
});
export type ProfileOutput = z.infer<typeof ProfileOutput>;
