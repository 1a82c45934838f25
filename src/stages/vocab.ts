// The closed vocabularies live in data/vocab/*.json so a researcher can read them without code.
import { z } from "zod";
import topics from "../../data/vocab/topics.json" with { type: "json" };
import categories from "../../data/vocab/mind-categories.json" with { type: "json" };
import states from "../../data/vocab/us-states.json" with { type: "json" };

/** GENRE's 19 profile topics. */
export const TOPICS = topics as [string, ...string[]];
/** The 18 MIND news categories. */
export const MIND_CATEGORIES = categories as [string, ...string[]];
/** Postal abbreviation → US state name. */
export const US_STATE_BY_CODE: Readonly<Record<string, string>> = states;
export const US_STATES = Object.values(states) as [string, ...string[]];

export const Topic = z.enum(TOPICS);
export const UsState = z.enum(US_STATES);
export const MindCategory = z.enum(MIND_CATEGORIES);
