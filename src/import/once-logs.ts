// The logs ONCE's request scripts wrote (Jyonn/ONCE, data/mind/), read line by line into answers.
// Formats, as the scripts write them (news_summarizer.py, user_profiler.py,
// personalized_news_generator.py, chain-based.py):
// - news_summarizer.log: `f'{nid}\t{answer}\n'`, the answer with trailing newlines stripped only,
//   so an answer of several lines continues on the lines after its ID;
// - user_profiler.log: `json.dumps({'uid': <index>, 'interest': <answer>})` per line;
// - generator_v*.log, chain_v*.log: `json.dumps({'uid': <index>, 'news': <answer>})` per line;
// - user/tok.uid.dat: line i (from 0) is the User ID of index i.
import { existsSync } from "node:fs";
import { UserError } from "../cli/command.js";
import { PathError } from "../cli/paths.js";
import { readLines } from "../mind/read.js";

/** Where an answer was read: the log file's name and the 1-based line of its start. */
export interface LogOrigin {
  file: string;
  line: number;
}

export interface LoggedAnswer {
  origin: LogOrigin;
  /** The news ID (summarizer) or User ID (the others) the answer is for. */
  id: string;
  answer: string;
}

/** A line that gives no answer to import: unreadable, or naming a user index the vocabulary lacks. */
export interface LogProblem {
  origin: LogOrigin;
  kind: "malformed line" | "unknown user index";
  message: string;
}

export interface LogRead {
  file: string;
  /** Non-blank lines read. */
  lines: number;
  answers: LoggedAnswer[];
  problems: LogProblem[];
  /** Summarizer: lines that continue the answer above them (an answer of several lines). */
  continuations: number;
}

function lines(path: string, what: string): AsyncGenerator<{ text: string; lineNo: number }> {
  if (!existsSync(path)) throw new PathError(`${path}: no such file (ONCE's ${what})`);
  return readLines(path);
}

/** `user/tok.uid.dat`: the User ID of each index. */
export async function readUidVocabulary(path: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const { text, lineNo } of lines(path, "user vocabulary")) {
    const id = text.trim();
    if (id.length === 0 || /\s/.test(id)) throw new UserError(`${path}:${lineNo}: expected one User ID per line, found '${text.slice(0, 40)}'`);
    ids.push(id);
  }
  return ids;
}

const SUMMARY_LINE = /^(N\d+)\t(.*)$/s;

/** `news_summarizer.log`: one answer per news ID; a line not starting `N<digits><TAB>` continues the answer above it. */
export async function readSummarizerLog(path: string, name: string): Promise<LogRead> {
  const read: LogRead = { file: name, lines: 0, answers: [], problems: [], continuations: 0 };
  let current: LoggedAnswer | undefined;
  for await (const { text, lineNo } of lines(path, "summarizer log")) {
    const origin = { file: name, line: lineNo };
    if (text.trim().length === 0) {
      if (current) current.answer += "\n";
      continue;
    }
    read.lines++;
    const m = SUMMARY_LINE.exec(text);
    if (m) {
      current = { origin, id: m[1]!, answer: m[2]! };
      read.answers.push(current);
    } else if (current) {
      current.answer += `\n${text}`;
      read.continuations++;
    } else {
      read.problems.push({ origin, kind: "malformed line", message: `expected 'N<id><TAB><answer>', found '${text.slice(0, 60)}'` });
    }
  }
  for (const a of read.answers) a.answer = a.answer.replace(/\n+$/, "");
  return read;
}

/** A JSON-lines log keyed by user index (`user_profiler.log`: field `interest`; generators: `news`). */
export async function readUserLog(path: string, name: string, field: "interest" | "news", uids: readonly string[]): Promise<LogRead> {
  const read: LogRead = { file: name, lines: 0, answers: [], problems: [], continuations: 0 };
  for await (const { text, lineNo } of lines(path, `${field === "news" ? "generator" : "profiler"} log`)) {
    if (text.trim().length === 0) continue;
    read.lines++;
    const origin = { file: name, line: lineNo };
    const malformed = (message: string) => read.problems.push({ origin, kind: "malformed line", message });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      malformed(`not JSON (${(e as Error).message})`);
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      malformed(`expected {"uid": <index>, "${field}": "<answer>"}`);
      continue;
    }
    const { uid, [field]: answer } = value as Record<string, unknown>;
    if (typeof uid !== "number" || !Number.isInteger(uid) || uid < 0) {
      malformed(`"uid" is ${JSON.stringify(uid)}, not a user index (a whole number from 0)`);
      continue;
    }
    if (typeof answer !== "string") {
      malformed(`"${field}" is ${answer === undefined ? "missing" : `not text (${JSON.stringify(answer).slice(0, 40)})`}`);
      continue;
    }
    const id = uids[uid];
    if (id === undefined) {
      read.problems.push({ origin, kind: "unknown user index", message: `user index ${uid} is past the vocabulary (tok.uid.dat has ${uids.length} users)` });
      continue;
    }
    read.answers.push({ origin, id, answer });
  }
  return read;
}

const SECTION = /^\[\s*(topics?|regions?)\s*\]\s*(?:\(optional\))?\s*:?\s*(.*)$/i;
const ITEM = /^(?:[-*•]|\d+[.)])\s*(.*)$/;
/** What a model writes for "leave it blank", which GENRE's prompt allowed for regions. */
const BLANK = /^(?:none|n\/?a|not applicable|unknown|no regions?|-)\.?$/i;

/**
 * An answer of ONCE's profiler in its own format — `[topics]` then `- topic` lines, then an optional
 * `[region]` and `- state` lines — as the JSON our profile stage parses, so the same normalisation
 * and vocabularies judge it. An item after a header on the same line (`[topics] health`) counts; a
 * region written as "None" is no region. Anything else is an answer in the wrong format.
 */
export function onceProfileAsJson(answer: string): { ok: true; json: string } | { ok: false; error: string } {
  const lists: Record<"topics" | "regions", string[]> = { topics: [], regions: [] };
  let section: "topics" | "regions" | undefined;
  let sawTopics = false;
  for (const raw of answer.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.length === 0) continue;
    const header = SECTION.exec(line);
    if (header) {
      section = header[1]!.toLowerCase().startsWith("topic") ? "topics" : "regions";
      if (section === "topics") sawTopics = true;
      const rest = header[2]!.trim();
      if (rest.length > 0) lists[section].push(...rest.split(",").map((s) => s.trim()).filter(Boolean));
      continue;
    }
    const item = ITEM.exec(line);
    if (!item || !section) {
      return { ok: false, error: `the answer is not in ONCE's format ([topics] then '- topic' lines, then [region] and '- state' lines): '${line.slice(0, 60)}'` };
    }
    const value = item[1]!.trim();
    if (value.length > 0 && !(section === "regions" && BLANK.test(value))) lists[section].push(value);
  }
  if (!sawTopics) return { ok: false, error: "the answer has no [topics] section" };
  return { ok: true, json: JSON.stringify(lists) };
}
