// Reading JSON out of a model's answer, for stages and the engine alike.

/**
 * The JSON value in an answer: the whole text, else the first fenced block, else the span from
 * the first `{`/`[` to the last `}`/`]` (models sometimes add a sentence around the JSON).
 */
export function extractJson(raw: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const candidates = [raw.trim()];
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(raw);
  if (fenced) candidates.push(fenced[1]!.trim());
  const start = raw.search(/[{[]/);
  const end = Math.max(raw.lastIndexOf("}"), raw.lastIndexOf("]"));
  if (start !== -1 && end > start) candidates.push(raw.slice(start, end + 1));
  let firstError = "";
  for (const c of candidates) {
    try {
      return { ok: true, value: JSON.parse(c) };
    } catch (e) {
      firstError ||= (e as Error).message;
    }
  }
  return { ok: false, error: `the answer is not valid JSON (${firstError}); answer with one JSON object and nothing else` };
}
