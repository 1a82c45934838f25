// Every MIND reader splits lines on "\n" and fields on "\t"; some also break on CR, NEL or the
// Unicode line separators. Any of those inside a field would shift or split a row.
const FIELD_BREAKERS = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/g;

/** Makes a value safe for one TSV field without otherwise changing it (untouched input round-trips). */
export function tsvField(value: string): string {
  return value.replace(FIELD_BREAKERS, " ");
}

/**
 * Cleans text an LLM (or any generator) wrote for a TSV field: field breakers become spaces, runs
 * of white space collapse, ends are trimmed. Returns undefined when nothing is left: an empty
 * answer is a failed item, never an empty field.
 */
export function cleanGeneratedText(value: string): string | undefined {
  const cleaned = value.replace(FIELD_BREAKERS, " ").replace(/\s+/g, " ").trim();
  return cleaned.length > 0 ? cleaned : undefined;
}

/**
 * Joins the entries of a list inside one field of a side file (user_profiles.tsv: topics, regions):
 * topics and US state names contain spaces, never `|`.
 */
export const LIST_SEPARATOR = "|";

/** IDs the common trainers can read: `N<digits>` news and `U<digits>` users (NewsRecLib parses the integer). */
export const READABLE_NEWS_ID = /^N\d+$/;
export const READABLE_USER_ID = /^U\d+$/;
