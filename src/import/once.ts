// `import once`: ONCE's released gpt-3.5 answers (src/import/once-logs.ts) judged by each stage's own
// parser, as if a live provider had given them, and turned into that stage's records.
import { join } from "node:path";
import type { CommandContext } from "../cli/command.js";
import { countLeftOut, type LlmRequest } from "../engine/types.js";
import { loadCandidates } from "../mind/catalog.js";
import { generateOptions } from "../stages/generate/index.js";
import type { GenerateOutput, PseudoNews } from "../stages/generate/output.js";
import { KINDS } from "../stages/kinds.js";
import { quoteList } from "../stages/normalize.js";
import type { StageConfig } from "../stages/options.js";
import { onProfileLists, profileStage } from "../stages/profile/index.js";
import { prepareStage, type PreparedStage } from "../stages/run.js";
import { onceProfileAsJson, readSummarizerLog, readUidVocabulary, readUserLog, type LoggedAnswer, type LogRead } from "./once-logs.js";
import type { ImportedStage, ItemOutcome } from "./records.js";

export { writeImport } from "./records.js";

/** The stages ONCE published answers for (GENRE's three). */
export const ONCE_STAGES = ["summarize", "profile", "generate"] as const;
export type OnceStage = (typeof ONCE_STAGES)[number];

export const ONCE_FILES = {
  summarize: "news_summarizer.log",
  profile: "user_profiler.log",
  uids: join("user", "tok.uid.dat"),
} as const;

/** The generator logs of each variant: each file is one request per user, so a variant gives two items. */
export const ONCE_VARIANTS = {
  chain: ["chain_v5.log", "chain_v6.log"],
  plain: ["generator_v1.log", "generator_v2.log"],
} as const;
export type OnceVariant = keyof typeof ONCE_VARIANTS;

/** Why a logged answer did not become (part of) a record: the reasons the summary counts. */
export type ImportReason =
  | "malformed line"
  | "index past the vocabulary"
  | "not in --data"
  | "not an item"
  | "wrong format"
  | "invalid answer"
  | "no topic on the list"
  | "copies the user's impressions"
  | "repeats another item"
  | "answered again later";

/** What an answer kept in part leaves out (the keys of StageRecord.leftOut). */
type LeftOutKind = "topics" | "regions" | "notes";

/** Per log file: what was read and what became of it. */
export interface FileSummary {
  file: string;
  stage: OnceStage;
  lines: number;
  /** Answers that are in a record. */
  imported: number;
  /** Of those, answers kept in part: their record says what it leaves out. */
  inPart: number;
  /** What those records leave out, by kind: values counted, or notes. */
  leftOut: Partial<Record<LeftOutKind, number>>;
  /** Answers (or lines) that are not, by reason. */
  refused: Partial<Record<ImportReason, number>>;
  /** IDs that are not in --data (news or users), first few. */
  unknownIds: string[];
  /** Summarizer: lines joined to the answer above them. */
  continuations: number;
}

export interface StageImport extends ImportedStage {
  stage: OnceStage;
  files: FileSummary[];
}

export interface OnceImportOptions {
  folder: string;
  stages: readonly OnceStage[];
  variant: readonly string[];
  /** The stage config the requests are built with (data, cold-max, recent …). */
  config: StageConfig;
}

function summaryOf(read: LogRead, stage: OnceStage): FileSummary {
  const s: FileSummary = { file: read.file, stage, lines: read.lines, imported: 0, inPart: 0, leftOut: {}, refused: {}, unknownIds: [], continuations: read.continuations };
  for (const p of read.problems) refuse(s, p.kind === "malformed line" ? "malformed line" : "index past the vocabulary");
  return s;
}

function refuse(s: FileSummary, reason: ImportReason, n = 1): void {
  s.refused[reason] = (s.refused[reason] ?? 0) + n;
}

/**
 * Answers grouped by item, in log order, after dropping those for IDs outside --data and those for
 * IDs the stage does not cover (counted per file). `summaries` is keyed by file name.
 */
function byItem(prepared: PreparedStage, answers: readonly LoggedAnswer[], summaries: Map<string, FileSummary>): Map<string, LoggedAnswer[]> {
  const { stage, input } = prepared;
  const known = (id: string) => (KINDS[stage.kind].needsBehaviors ? input.catalog.users.has(id) : input.catalog.news.has(id));
  const groups = new Map<string, LoggedAnswer[]>();
  const notItems = new Map<string, string>();
  for (const a of answers) {
    const s = summaries.get(a.origin.file)!;
    if (!known(a.id)) {
      refuse(s, "not in --data");
      if (s.unknownIds.length < 5 && !s.unknownIds.includes(a.id)) s.unknownIds.push(a.id);
      continue;
    }
    let why = notItems.get(a.id);
    if (why === undefined && !groups.has(a.id)) {
      why = stage.whyNot(input.catalog, input.options, a.id) ?? "";
      if (why) notItems.set(a.id, why);
    }
    if (why) {
      refuse(s, "not an item");
      continue;
    }
    const g = groups.get(a.id);
    if (g) g.push(a);
    else groups.set(a.id, [a]);
  }
  return groups;
}

/** The stage's requests for these items, built once for all of them (generate: `k` items per user, the rest from `config`). */
function requestsOf(prepared: PreparedStage, ids: readonly string[], k?: { k: number; config: StageConfig }): Map<string, LlmRequest> {
  const input = k === undefined ? prepared.input : { ...prepared.input, options: { ...generateOptions(k.config), k: k.k } };
  return new Map([...prepared.stage.requests(input, ids, undefined)].map((r) => [r.itemId, r]));
}

/**
 * ONCE's profile lists without the values the stage's vocabularies lack (onProfileLists, the
 * parser's own reading), in order. GENRE's prompt offered 19 topics (no sports, entertainment,
 * politics or crime) and US states, and gpt-3.5 often named others ("sports", "United States", "New
 * York City"); a live run re-asks such an answer, an import cannot, and refusing it whole would
 * leave the user without the topics it got right. What is kept still goes through the stage's
 * parser, so a record holds nothing a live one could not.
 */
function listedOnly(lists: { topics: string[]; regions: string[] }): { kept: typeof lists; leftOut: Partial<Record<LeftOutKind, string[]>> } {
  // Normalized, the kept values read the same to the parser as written: a value on a list is its own normal form.
  const { topics, regions, offTopics, offRegions } = onProfileLists(lists);
  const leftOut: Partial<Record<LeftOutKind, string[]>> = {};
  if (offTopics.length) leftOut.topics = offTopics;
  if (offRegions.length) leftOut.regions = offRegions;
  return { kept: { topics, regions }, leftOut };
}

/**
 * A line that starts a note about the answer, which GENRE's prompt asked the model not to write:
 * `Note: …`, `(Note: …)`, `**Note**: …`, `Note that …`, `Explanation: …`, `Disclaimer: …`.
 */
const NOTE = /^[\s(*_]*(?:notes?|explanation|disclaimer)\b[\s*_)]*(?:[:\uFF1A-]|that\b)/i;

/**
 * A summarizer answer split at its first note line: what comes before (the title, for the stage's
 * parser to judge) and the note, from that line to the end. Undefined when no line after the first
 * starts a note: an answer of two titles, say, is not a title with a note.
 */
function titleAndNote(answer: string): { title: string; note: string } | undefined {
  const lines = answer.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l.length > 0);
  const at = lines.findIndex((l, i) => i > 0 && NOTE.test(l));
  if (at < 0) return undefined;
  return { title: lines.slice(0, at).join("\n"), note: lines.slice(at).join("\n") };
}

type Judged = { ok: true; output: unknown; leftOut?: Partial<Record<LeftOutKind, string[]>> } | { ok: false; reason: ImportReason; error: string };

/**
 * One summarize or profile answer through the stage's request, as a live run's first answer would
 * go, with two allowances for answers no one can re-ask: a profile keeps the values on the stage's
 * lists (listedOnly), and a summary followed by a note keeps its title when the stage's parser takes
 * the part before the note as the whole answer. An import is thus never stricter than a live run
 * about the part it keeps, and keeps nothing the stage's parser would not accept on its own.
 */
function judgeAnswer(stage: OnceStage, request: LlmRequest, raw: string): Judged {
  let leftOut: Partial<Record<LeftOutKind, string[]>> | undefined;
  if (stage === "profile") {
    const converted = onceProfileAsJson(raw);
    if (!converted.ok) return { ok: false, reason: "wrong format", error: converted.error };
    const listed = listedOnly(JSON.parse(converted.json) as { topics: string[]; regions: string[] });
    // No topic left is no profile: the stage's output needs one, and an empty list would say the
    // user has no interest, which the answer did not say.
    if (listed.kept.topics.length === 0 && listed.leftOut.topics) {
      return { ok: false, reason: "no topic on the list", error: `none of the topics (${quoteList(listed.leftOut.topics)}) is on the list` };
    }
    raw = JSON.stringify(listed.kept);
    if (listed.leftOut.topics || listed.leftOut.regions) leftOut = listed.leftOut;
  }
  let parsed = request.parse(raw);
  if (!parsed.ok && stage === "summarize") {
    const split = titleAndNote(raw);
    if (split) {
      const title = request.parse(split.title);
      if (!title.ok) return { ok: false, reason: "invalid answer", error: `${title.error} (the note below the title left aside)` };
      parsed = title;
      leftOut = { notes: [split.note] };
    }
  }
  if (!parsed.ok) return { ok: false, reason: "invalid answer", error: parsed.error };
  const unfit = request.check?.(parsed.value);
  if (unfit !== undefined) return { ok: false, reason: "invalid answer", error: unfit };
  return { ok: true, output: parsed.value, ...(leftOut ? { leftOut } : {}) };
}

/**
 * summarize and profile: one answer per item; when an item was answered more than once, its last
 * valid answer makes the record (the store's rule: the last record of an item wins) and the
 * earlier ones are counted as answered again later.
 */
function judgeSingle(stage: OnceStage, prepared: PreparedStage, groups: Map<string, LoggedAnswer[]>, summaries: Map<string, FileSummary>): ItemOutcome[] {
  const requests = requestsOf(prepared, [...groups.keys()]);
  const outcomes: ItemOutcome[] = [];
  for (const [itemId, answers] of groups) {
    const request = requests.get(itemId)!;
    let kept: { answer: LoggedAnswer; output: unknown; leftOut?: Partial<Record<LeftOutKind, string[]>> } | undefined;
    let last: { answer: LoggedAnswer; error: string } | undefined;
    for (const answer of answers) {
      const judged = judgeAnswer(stage, request, answer.answer);
      if (!judged.ok) {
        refuse(summaries.get(answer.origin.file)!, judged.reason);
        last = { answer, error: judged.error };
        continue;
      }
      if (kept) refuse(summaries.get(kept.answer.origin.file)!, "answered again later");
      kept = { answer, output: judged.output, leftOut: judged.leftOut };
    }
    if (kept) {
      const s = summaries.get(kept.answer.origin.file)!;
      s.imported++;
      if (kept.leftOut) {
        s.inPart++;
        countLeftOut(s.leftOut, kept.leftOut);
      }
      outcomes.push({ stage, itemId, request, origins: [kept.answer.origin], answers: [kept.answer.answer], output: kept.output, ...(kept.leftOut ? { leftOut: kept.leftOut } : {}) });
    } else if (last) {
      outcomes.push({ stage, itemId, request, origins: answers.map((a) => a.origin), answers: answers.map((a) => a.answer), error: `${last.answer.origin.file}:${last.answer.origin.line}: ${last.error}` });
    }
  }
  return outcomes;
}

/**
 * generate: every line is one request for one pseudo-news item, and a user may have several (one per
 * file of the variant, sometimes more). Each answer is parsed as a one-item answer; the valid ones are
 * then added one at a time to the user's record as long as the stage's parser accepts the growing
 * list (an item that repeats an earlier one is refused).
 */
function judgeGenerate(prepared: PreparedStage, groups: Map<string, LoggedAnswer[]>, summaries: Map<string, FileSummary>, config: StageConfig): ItemOutcome[] {
  // The stage's requests for k = 1, 2, … items, each built once for every user with that many answers.
  const byK = new Map<number, Map<string, LlmRequest>>();
  const requestFor = (itemId: string, k: number): LlmRequest => {
    let m = byK.get(k);
    if (!m) byK.set(k, (m = requestsOf(prepared, [...groups].filter(([, a]) => a.length >= k).map(([id]) => id), { k, config })));
    return m.get(itemId)!;
  };
  const outcomes: ItemOutcome[] = [];
  for (const [itemId, answers] of groups) {
    let items: PseudoNews[] = [];
    const used: LoggedAnswer[] = [];
    let lastError: string | undefined;
    for (const answer of answers) {
      const s = summaries.get(answer.origin.file)!;
      const parsed = requestFor(itemId, 1).parse(answer.answer);
      if (!parsed.ok) {
        refuse(s, "invalid answer");
        lastError = `${answer.origin.file}:${answer.origin.line}: ${parsed.error}`;
        continue;
      }
      const unfit = requestFor(itemId, 1).check?.(parsed.value);
      if (unfit !== undefined) {
        refuse(s, "copies the user's impressions");
        lastError = `${answer.origin.file}:${answer.origin.line}: ${unfit}`;
        continue;
      }
      const item = (parsed.value as GenerateOutput).items[0]!;
      const together = requestFor(itemId, items.length + 1).parse(JSON.stringify({ items: [...items, item] }));
      if (!together.ok) {
        refuse(s, "repeats another item");
        lastError = `${answer.origin.file}:${answer.origin.line}: ${together.error}`;
        continue;
      }
      items = (together.value as GenerateOutput).items;
      used.push(answer);
    }
    if (items.length > 0) {
      for (const a of used) summaries.get(a.origin.file)!.imported++;
      const request = requestFor(itemId, items.length);
      outcomes.push({ stage: "generate", itemId, request, origins: used.map((a) => a.origin), answers: used.map((a) => a.answer), output: { items } });
    } else {
      const request = requestFor(itemId, 1);
      outcomes.push({ stage: "generate", itemId, request, origins: answers.map((a) => a.origin), answers: answers.map((a) => a.answer), error: lastError! });
    }
  }
  return outcomes;
}

/** Reads the logs of each stage asked for and judges every answer; nothing is written. */
export async function judgeOnceLogs(opts: OnceImportOptions, ctx: CommandContext): Promise<StageImport[]> {
  const at = (file: string) => join(opts.folder, file);
  const needsUsers = opts.stages.some((s) => s !== "summarize");
  const uids = needsUsers ? await readUidVocabulary(at(ONCE_FILES.uids)) : [];
  const result: StageImport[] = [];
  for (const stage of opts.stages) {
    const files = stage === "summarize" ? [ONCE_FILES.summarize] : stage === "profile" ? [ONCE_FILES.profile] : [...opts.variant];
    const reads: LogRead[] = [];
    for (const file of files) {
      reads.push(stage === "summarize" ? await readSummarizerLog(at(file), file) : await readUserLog(at(file), file, stage === "profile" ? "interest" : "news", uids));
    }
    const prepared = await prepareStage(stage, opts.config, ctx);
    const summaries = new Map(reads.map((r) => [r.file, summaryOf(r, stage)]));
    const groups = byItem(prepared, reads.flatMap((r) => r.answers), summaries);
    // What the stage's check keeps pseudo-news clear of (history-rule.ts rule 4), as a live run loads it.
    if (prepared.stage.usesCandidates) prepared.input.candidates = await loadCandidates(prepared.input.catalog, new Set(groups.keys()), { lenient: opts.config.lenient });
    const items = stage === "generate" ? judgeGenerate(prepared, groups, summaries, opts.config) : judgeSingle(stage, prepared, groups, summaries);
    result.push({ stage, files: [...summaries.values()], items, prepared, options: importOptions(stage, opts.config) });
  }
  return result;
}

/** The stage options the answers were judged with, as a stage run records them. */
function importOptions(stage: OnceStage, config: StageConfig): Record<string, unknown> {
  if (stage === "profile") return { recent: profileStage.options(config).recent };
  if (stage === "generate") return { coldMax: generateOptions(config).coldMax };
  return {};
}
