import { z } from "zod";

/** One short text per factor of data/vocab/factors.json, by factor name ("none" when nothing applies). */
export const FactorsOutput = z.record(z.string(), z.string().min(1));
export type FactorsOutput = z.infer<typeof FactorsOutput>;
