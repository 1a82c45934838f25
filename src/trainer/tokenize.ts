/**
 * NRMS's tokenizer (microsoft/recommenders `word_tokenize`): `re.findall(r"[\w]+|[.,!?;|]", s.lower())`.
 *
 * Python's `\w` on str patterns is `str.isalnum()` plus `_`: letters (L*) and numbers (Nd, Nl, No),
 * but not combining marks. `[\p{L}\p{N}_]` is that set exactly for every character assigned in the
 * Unicode version of the Python that trains (checked over all code points against Python 3.11);
 * characters assigned later count as word characters, as they do in newer Pythons. JavaScript's
 * `toLowerCase` applies the same full case mapping as `str.lower` (final sigma, `İ` → `i̇`).
 */
const TOKEN = /[\p{L}\p{N}_]+|[.,!?;|]/gu;

export function wordTokenize(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}
