// What a generate record stores (StageRecord.output), read back by merge and the report.
import { z } from "zod";
import { MindCategory } from "../vocab.js";

export const PseudoNews = z.object({
  title: z.string().min(1),
  abstract: z.string(),
  category: MindCategory,
  /** Offline provider only: the catalog news this item was retrieved from (retrieval standing in for generation). */
  retrievedFrom: z.string().optional(),
});
export type PseudoNews = z.infer<typeof PseudoNews>;

export const GenerateOutput = z.object({
  /** Pseudo-news the user would likely read; IDs are assigned at merge time. */
  items: z.array(PseudoNews).min(1),
});
export type GenerateOutput = z.infer<typeof GenerateOutput>;
