// The normalized output of each stage, as stored in StageRecord.output and read by merge and report.
import { z } from "zod";
import { MindCategory, Topic, UsState } from "./vocab.js";

export const SummarizeOutput = z.object({
  /** The enhanced title: one clean line, TSV-safe. */
  title: z.string().min(1),
});
export type SummarizeOutput = z.infer<typeof SummarizeOutput>;

export const ProfileOutput = z.object({
  /** Most relevant first. */
  topics: z.array(Topic).min(1),
  /** US state names, most relevant first; may be empty. */
  regions: z.array(UsState),
});
export type ProfileOutput = z.infer<typeof ProfileOutput>;

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

export const STAGE_OUTPUTS = {
  summarize: SummarizeOutput,
  profile: ProfileOutput,
  generate: GenerateOutput,
} as const;
