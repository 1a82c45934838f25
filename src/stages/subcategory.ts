// A MIND subcategory in words, for the offline summarizer: `autossports` → "sports cars". Every
// known subcategory is in the table; a name it lacks is split into known words by rule.
import dictionary from "../../data/vocab/subcategory-dictionary.json" with { type: "json" };
import table from "../../data/vocab/subcategory-words.json" with { type: "json" };
import { sha256 } from "../util/hash.js";

const WORDS: ReadonlySet<string> = new Set(dictionary.words);
const LONGEST_WORD = Math.max(...dictionary.words.map((w) => w.length));
const PREFIXES: ReadonlySet<string> = new Set(dictionary.prefixes);
// Longest first, so `moviesxyz` loses `movies`, not `movie`.
const PREFIXES_LONGEST_FIRST = [...dictionary.prefixes].sort((a, b) => b.length - a.length);
const KEEP_PREFIX_BEFORE: ReadonlySet<string> = new Set(dictionary.keepPrefixBefore);
const ABBREVIATIONS = dictionary.abbreviations as Record<string, string>;
const TABLE = table as Record<string, string>;

/** Both files, hashed: an offline answer changes when either does. */
export const SUBCATEGORY_TABLES = sha256(JSON.stringify(table), JSON.stringify(dictionary));

/**
 * `part` as the fewest dictionary words, longer words first on a tie ("homes and", not "home
 * sand"); undefined when no split uses only known words.
 */
export function splitKnownWords(part: string): string[] | undefined {
  // best[i]: the best split of part[0, i) as [word count, -sum of squared lengths, words].
  const best: ([number, number, string[]] | undefined)[] = [[0, 0, []]];
  for (let i = 1; i <= part.length; i++) {
    for (let j = Math.max(0, i - LONGEST_WORD); j < i; j++) {
      const before = best[j];
      const word = part.slice(j, i);
      if (!before || !WORDS.has(word)) continue;
      const candidate: [number, number, string[]] = [before[0] + 1, before[1] - word.length ** 2, [...before[2], word]];
      const current = best[i];
      if (!current || candidate[0] < current[0] || (candidate[0] === current[0] && candidate[1] < current[1])) best[i] = candidate;
    }
  }
  return best[part.length]?.[2];
}

/**
 * The rule for names the table lacks: cut at separators and digits (digit runs are dropped), split
 * each part into known words (an unknown part stays whole but for a section prefix), drop one leading section prefix
 * (`lifestyle`, `finance`, ...; a leading `news` moves to the end), spell abbreviations.
 */
export function subcategoryByRule(name: string): string {
  const words: string[] = [];
  for (const part of name.toLowerCase().split(/[^a-z0-9]+|(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])/)) {
    if (part.length === 0 || /^\d+$/.test(part)) continue;
    words.push(...(splitKnownWords(part) ?? withPrefix(part)));
  }
  if (words.length > 1 && PREFIXES.has(words[0]!) && !KEEP_PREFIX_BEFORE.has(words[1]!)) {
    const prefix = words.shift()!;
    if (prefix === "news" && words[words.length - 1] !== "news") words.push("news");
  }
  return words.map((w) => ABBREVIATIONS[w] ?? w).join(" ");
}

/** An unsplittable part: a known section prefix comes off (`autosxyz` → autos, xyz), the rest stays whole. */
function withPrefix(part: string): string[] {
  for (const prefix of PREFIXES_LONGEST_FIRST) {
    if (part.length > prefix.length && part.startsWith(prefix)) {
      const rest = part.slice(prefix.length);
      return [prefix, ...(splitKnownWords(rest) ?? [rest])];
    }
  }
  return [part];
}

/** The subcategory in words: the table, else by rule. */
export function subcategoryInWords(name: string): string {
  return Object.hasOwn(TABLE, name) && !name.startsWith("_") ? TABLE[name]! : subcategoryByRule(name);
}
