import { z } from "zod";

export const PickOutput = z.object({
  /** News IDs of the picked candidates, best first. */
  picks: z.array(z.string().min(1)).min(1),
});
export type PickOutput = z.infer<typeof PickOutput>;
