/** The word for `n` of something: "1 click", "2 clicks" (`plural` for irregular words). */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return n === 1 ? singular : pluralForm;
}
