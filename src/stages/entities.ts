// Entity columns and the gazetteer, for the offline baselines (the prompts never show entities).
import cities from "../../data/gazetteer/us-cities.json" with { type: "json" };
import type { Entity } from "../mind/rows.js";
import { STATE_QUALIFIER, vocabKey } from "./normalize.js";
import { US_STATES, US_STATE_BY_CODE } from "./vocab.js";

/**
 * Entities of one column; a malformed column counts as none (the validate command reports it).
 * Hand-checked rather than through zod: the offline profile reads the entities of every click.
 */
export function entitiesOf(raw: string): Pick<Entity, "Label" | "Type" | "WikidataId">[] {
  if (raw.length === 0) return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const out: Pick<Entity, "Label" | "Type" | "WikidataId">[] = [];
  for (const e of value as Record<string, unknown>[]) {
    if (typeof e?.Label !== "string" || typeof e.Type !== "string") continue;
    out.push({ Label: e.Label, Type: e.Type, WikidataId: typeof e.WikidataId === "string" ? e.WikidataId : undefined });
  }
  return out;
}

const PLACES = new Map<string, string>();
for (const state of US_STATES) PLACES.set(vocabKey(state), state);
for (const [city, state] of Object.entries(cities)) {
  if (city.startsWith("_")) continue;
  if (!US_STATES.includes(state)) throw new Error(`data/gazetteer/us-cities.json: '${city}' maps to '${state}', not a US state`);
  PLACES.set(vocabKey(city), state);
}

/**
 * The US state a geographic entity label is in: a state name (Wikidata labels such as
 * `Georgia (U.S. state)` included), a postal code, or a major city; undefined otherwise.
 */
export function stateOfPlace(label: string): string | undefined {
  if (/\b(d\.?\s?c\.?|district of columbia)$/i.test(label.trim())) return undefined;
  const bare = label.replace(STATE_QUALIFIER, "").trim();
  if (/^[A-Z]{2}$/.test(bare)) return US_STATE_BY_CODE[bare];
  const key = vocabKey(bare);
  const direct = PLACES.get(key);
  if (direct) return direct;
  // "Austin, Texas" / "Portland, Oregon": the part after the comma names the state.
  const comma = bare.lastIndexOf(",");
  if (comma !== -1) return PLACES.get(vocabKey(bare.slice(comma + 1))) ?? PLACES.get(vocabKey(bare.slice(0, comma)));
  return undefined;
}

/** Wikidata items whose label is a state name but which are not the state. */
const NOT_A_STATE = new Set(["Q230" /* Georgia, the country */]);

/** The state of a `Type: G` entity, or undefined (other types, foreign places, D.C.). */
export function stateOfEntity(e: Pick<Entity, "Label" | "Type" | "WikidataId">): string | undefined {
  if (e.Type !== "G" || (e.WikidataId && NOT_A_STATE.has(e.WikidataId))) return undefined;
  return stateOfPlace(e.Label);
}
