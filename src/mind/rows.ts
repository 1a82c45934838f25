import { z } from "zod";

/** One line of news.tsv. Entity columns stay raw JSON text so an untouched row round-trips byte for byte. */
export const NewsRow = z.object({
  id: z.string().min(1),
  category: z.string(),
  subcategory: z.string(),
  title: z.string(),
  abstract: z.string(),
  url: z.string(),
  titleEntities: z.string(),
  abstractEntities: z.string(),
});
export type NewsRow = z.infer<typeof NewsRow>;

/** One line of behaviors.tsv. `impressions` is the raw column: merge must never touch it. */
export const BehaviorRow = z.object({
  impressionId: z.string(),
  userId: z.string().min(1),
  time: z.string(),
  history: z.array(z.string()),
  impressions: z.string(),
});
export type BehaviorRow = z.infer<typeof BehaviorRow>;

export const Entity = z.looseObject({
  Label: z.string(),
  Type: z.string(),
  WikidataId: z.string().optional(),
  Confidence: z.number().optional(),
  OccurrenceOffsets: z.array(z.number()).optional(),
  SurfaceForms: z.array(z.string()).optional(),
});
export type Entity = z.infer<typeof Entity>;

/** A clicked/not-clicked candidate; `label` is null in unlabeled files (MIND-large test). */
export interface Impression {
  newsId: string;
  label: 0 | 1 | null;
}
