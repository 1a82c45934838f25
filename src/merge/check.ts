// The readers contract: what microsoft/recommenders' MINDIterator, NewsRecLib and pandas-based
// trainers need from a split (docs: mind-format.md, "What the readers demand"). Merge runs it on its
// output before anything is put in place; the tests run it too.
import { readLineBatches, readLines, impressionsProblem } from "../mind/read.js";
import { READABLE_NEWS_ID, READABLE_USER_ID } from "../mind/text.js";

export interface ContractReport {
  news: number;
  impressions: number;
  errors: number;
  /** The first problems, as `file:line [field]: problem`. */
  errorExamples: string[];
  /** IDs some trainers cannot parse (not `N<digits>`/`U<digits>`): a warning, MIND itself is fine. */
  warnings: number;
  warningExamples: string[];
}

const EXAMPLES = 5;

function isJsonList(text: string): boolean {
  if (text.length === 0 || text[0] !== "[") return false;
  try {
    return Array.isArray(JSON.parse(text));
  } catch {
    return false;
  }
}

/** Checks one split folder's news.tsv and behaviors.tsv the way their readers will parse them. */
export async function checkReadersContract(newsFile: string, behaviorsFile: string): Promise<ContractReport> {
  const report: ContractReport = { news: 0, impressions: 0, errors: 0, errorExamples: [], warnings: 0, warningExamples: [] };
  const error = (file: string, line: number, field: string | undefined, problem: string) => {
    report.errors++;
    if (report.errorExamples.length < EXAMPLES) report.errorExamples.push(`${file}:${line}${field ? ` [${field}]` : ""}: ${problem}`);
  };
  const warn = (file: string, line: number, field: string, problem: string) => {
    report.warnings++;
    if (report.warningExamples.length < EXAMPLES) report.warningExamples.push(`${file}:${line} [${field}]: ${problem}`);
  };

  const ids = new Set<string>();
  for await (const batch of readLineBatches(newsFile)) {
    for (const { text, lineNo } of batch) {
      report.news++;
      const f = text.split("\t");
      if (f.length !== 8) {
        error(newsFile, lineNo, undefined, `splits into ${f.length} tab-separated fields, readers unpack exactly 8`);
        continue;
      }
      const id = f[0]!;
      if (id.length === 0) error(newsFile, lineNo, "News ID", "empty");
      else if (id.includes("-")) error(newsFile, lineNo, "News ID", `'${id}' contains '-', which readers split impression labels on`);
      else if (!READABLE_NEWS_ID.test(id)) warn(newsFile, lineNo, "News ID", `'${id}' is not N<digits>`);
      if (ids.has(id)) error(newsFile, lineNo, "News ID", `'${id}' appears twice`);
      ids.add(id);
      if (!isJsonList(f[6]!)) error(newsFile, lineNo, "Title Entities", "not a JSON list");
      if (!isJsonList(f[7]!)) error(newsFile, lineNo, "Abstract Entities", "not a JSON list");
    }
  }

  for await (const batch of readLineBatches(behaviorsFile)) {
    for (const { text, lineNo } of batch) {
      report.impressions++;
      const f = text.split("\t");
      if (f.length !== 5) {
        error(behaviorsFile, lineNo, undefined, `splits into ${f.length} tab-separated fields, readers expect 5`);
        continue;
      }
      const userId = f[1]!;
      if (!READABLE_USER_ID.test(userId)) warn(behaviorsFile, lineNo, "User ID", `'${userId}' is not U<digits>`);
      for (const id of f[3]!.split(" ")) {
        if (id.length > 0 && !ids.has(id)) error(behaviorsFile, lineNo, "History", `'${id}' is not in news.tsv`);
      }
      const impressions = f[4]!;
      const problem = impressionsProblem(impressions);
      if (problem) error(behaviorsFile, lineNo, "Impressions", problem);
      for (const token of impressions.split(" ")) {
        if (token.length === 0) continue;
        const dash = token.lastIndexOf("-");
        const id = dash === -1 ? token : token.slice(0, dash);
        if (!ids.has(id)) error(behaviorsFile, lineNo, "Impressions", `'${id}' is not in news.tsv`);
      }
    }
  }
  return report;
}

export interface BehaviorsComparison {
  lines: number;
  /** Rows whose history is the input history with IDs appended. */
  extended: number;
  problems: string[];
}

/**
 * Compares merged behaviors with their input line by line: every column but History must be the
 * same bytes, and History must be the input history, possibly followed by appended IDs.
 */
export async function compareBehaviors(inputFile: string, outputFile: string): Promise<BehaviorsComparison> {
  const result: BehaviorsComparison = { lines: 0, extended: 0, problems: [] };
  const a = readLines(inputFile);
  const b = readLines(outputFile);
  const problem = (text: string) => {
    if (result.problems.length < EXAMPLES) result.problems.push(text);
  };
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done || y.done) {
      if (!x.done || !y.done) problem(`line counts differ: ${outputFile} ends ${x.done ? "after" : "before"} ${inputFile}`);
      break;
    }
    result.lines++;
    const fi = x.value.text.split("\t");
    const fo = y.value.text.split("\t");
    const lineNo = x.value.lineNo;
    if (fi.length !== 5 || fo.length !== 5) {
      problem(`line ${lineNo}: field counts ${fi.length} → ${fo.length}`);
      continue;
    }
    for (const i of [0, 1, 2, 4]) {
      if (fi[i] !== fo[i]) problem(`line ${lineNo}: column ${i + 1} changed`);
    }
    const hi = fi[3]!;
    const ho = fo[3]!;
    if (hi === ho) continue;
    if (hi.length === 0 ? ho.length > 0 && !ho.startsWith(" ") : ho.startsWith(`${hi} `)) result.extended++;
    else problem(`line ${lineNo}: history is not the input history with IDs appended`);
  }
  return result;
}
