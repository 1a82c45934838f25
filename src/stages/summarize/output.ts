// What a summarize record stores (StageRecord.output), read back by merge and the report.
import { z } from "zod";

export const SummarizeOutput = z.object({
  /** The enhanced title: one clean line, TSV-safe. */
  title: z.string().min(1),
});
export type SummarizeOutput = z.infer<typeof SummarizeOutput>;
