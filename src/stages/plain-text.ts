// What makes an answer of plain text a clean piece of text and not a reply about the task: the
// hygiene of the stages that answer in prose (describe; the per-factor texts of factors).
import { cleanGeneratedText } from "../mind/text.js";

export const wordCount = (s: string): number => s.split(/\s+/).filter(Boolean).length;

/** `a`, `a and b`, `a, b and c`. */
export function listInWords(values: readonly string[]): string {
  if (values.length <= 2) return values.join(" and ");
  return `${values.slice(0, -1).join(", ")} and ${values[values.length - 1]}`;
}

const WRAPPERS: [string, string][] = [['"', '"'], ["“", "”"], ["'", "'"], ["‘", "’"], ["«", "»"], ["**", "**"], ["*", "*"], ["`", "`"]];

/** `"Text"` → `Text`, but `'Joker' beats 'Batman'` stays as it is. */
export function unwrapQuotes(line: string): string {
  for (let changed = true; changed; ) {
    changed = false;
    for (const [open, close] of WRAPPERS) {
      if (line.length <= open.length + close.length || !line.startsWith(open) || !line.endsWith(close)) continue;
      const inner = line.slice(open.length, line.length - close.length);
      if (inner.includes(open) || inner.includes(close)) continue;
      line = inner.trim();
      changed = true;
    }
  }
  return line;
}

/** 6-word sequences of a text: an answer sharing one with the instructions is (part of) a copy of them. */
export function shingles(text: string, n = 6): Set<string> {
  const tokens = text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const out = new Set<string>();
  for (let i = 0; i + n <= tokens.length; i++) out.add(tokens.slice(i, i + n).join(" "));
  return out;
}

export function copiesInstructions(text: string, instructions: ReadonlySet<string>): boolean {
  for (const s of shingles(text)) if (instructions.has(s)) return true;
  return false;
}

/** A chatty refusal or a reply about the task is not an answer, whatever its length. */
export const REPLY = /^(?:i'?m sorry|sorry,|i can(?:no|')t|i am unable|as an ai|sure[,!]|certainly[,!])/i;

/** Starts or ends like a JSON object or array, or opens with a quoted key and a value. */
export const JSON_LIKE = /^\{|\}$|^\[\s*["{[]|["}\]]\s*\]$|^"[^"]*"\s*:\s*["{[\d]/;

const MARKUP: [RegExp, string][] = [
  [/<\/?[a-z][a-z0-9-]*(?:\s[^<>]*)?\/?>/i, "an HTML tag"],
  [/&(?:[a-z]{2,8}|#\d{1,6}|#x[\da-f]{1,6});/i, "an HTML entity"],
  [/```|`[^`]+`/, "a code span"],
  [/\*\*\S[^*]*\*\*|__\S[^_]*__/, "Markdown bold"],
  [/\[[^\]]+\]\([^)\s]+\)/, "a Markdown link"],
  [/^(?:#{1,6}|>|[-*+•]|\d{1,2}[.)])\s/, "a Markdown heading, quote or list marker"],
];

/** What markup a line contains, unless `original` (the news' own text) contains the same. */
export function markupIn(line: string, original = ""): string | undefined {
  for (const [pattern, what] of MARKUP) if (pattern.test(line) && !pattern.test(original)) return what;
  return undefined;
}

export interface ParagraphRules {
  /** A leading label to strip (e.g. `Description:`), the near miss a model writes most often. */
  marker?: RegExp;
  /** Labels of the prompt's input (e.g. `Category:`): an answer repeating one is refused. */
  inputLabels?: RegExp;
  instructions: ReadonlySet<string>;
  minWords: number;
  maxWords: number;
  /** What the answer is, in the error messages ("the description"). */
  what: string;
}

/**
 * One paragraph of plain prose: no JSON or code, no markup (list, heading, HTML …), no second paragraph, no reply
 * about the task, no input labels, no copy of the instructions, within the word bounds. Lines of one
 * paragraph are joined (a model may wrap a long line); wrapping quotes and the marker are stripped.
 * Returns the cleaned one-line text, or the error to state in the re-ask.
 */
export function parseParagraph(raw: string, rules: ParagraphRules): { ok: true; text: string } | { ok: false; error: string } {
  const again = `answer with ${rules.what} only: one paragraph of plain text`;
  let text = raw.trim();
  if (rules.marker) text = text.replace(rules.marker, "");
  if (!text) return { ok: false, error: `the answer is empty; ${again}` };
  if (JSON_LIKE.test(text) || text.startsWith("```")) return { ok: false, error: `the answer is JSON or code; ${again}, with no JSON` };
  const paragraphs = text.split(/\r?\n\s*\r?\n|\r\s*\r/).map((p) => p.trim()).filter(Boolean);
  if (paragraphs.length > 1) return { ok: false, error: `the answer has ${paragraphs.length} paragraphs; ${again}, with no second paragraph and no explanation` };
  const lines = paragraphs[0]!.split(/\r?\n|\r/).map((l) => l.trim()).filter(Boolean);
  for (const l of lines) {
    const markup = markupIn(l);
    if (markup) return { ok: false, error: `the answer contains markup (${markup}); ${again}, in full sentences` };
  }
  let line = unwrapQuotes(lines.join(" "));
  if (rules.marker) line = unwrapQuotes(line.replace(rules.marker, ""));
  if (REPLY.test(line)) return { ok: false, error: `the answer is a reply, not ${rules.what}; ${again}` };
  if (rules.inputLabels?.test(line)) return { ok: false, error: `the answer repeats the input labels; ${again}, with no labels` };
  if (copiesInstructions(line, rules.instructions)) return { ok: false, error: `the answer repeats the instructions; ${again}` };
  const clean = cleanGeneratedText(line);
  if (!clean) return { ok: false, error: `the answer is empty; ${again}` };
  const n = wordCount(clean);
  if (n < rules.minWords) return { ok: false, error: `${rules.what} is too short (${n} words); write ${rules.minWords} to ${rules.maxWords} words` };
  if (n > rules.maxWords) return { ok: false, error: `${rules.what} is too long (${n} words); write at most ${rules.maxWords} words` };
  return { ok: true, text: clean };
}
