import { z } from "zod";

export const DescribeOutput = z.object({
  /** One paragraph of plain text on one line, TSV-safe. */
  description: z.string().min(1),
});
export type DescribeOutput = z.infer<typeof DescribeOutput>;
