import { MindFormatError } from "../mind/errors.js";
import { readLineBatches, type NumberedLine } from "../mind/read.js";

/**
 * What a prediction file's numbers are:
 * - `ranks`: the rank of each candidate in impression order, 1 = best: MIND's submission format
 *   `<impression id> [r1,r2,…]`; scored as 1 / rank, as the official evaluate.py does;
 * - `scores`: one score per candidate, higher = more likely clicked: `<impression id>\t<s1> <s2> …`.
 * Both give a list of numbers per line, and a list of distinct whole numbers 1..n reads either way
 * with opposite results (AUC becomes 1 − AUC), so the numbers alone cannot decide. Without a format
 * given, a file is read by its layout, one for the whole file: bracketed is ranks (MIND's submission
 * format, recommenders' prediction.txt), and a bracketed line that is not a permutation of 1..n is
 * refused (scores written with json.dumps need --pred-format scores); tab-separated is scores, and
 * a file every line of which is a permutation is refused (it reads as ranks too).
 */
export type PredictionFormat = (typeof PREDICTION_FORMATS)[number];
export const PREDICTION_FORMATS = ["ranks", "scores"] as const;

/** How a file's format was decided: given (`--pred-format`) or from its layout (bracketed: ranks; tab-separated: scores). */
export type FormatSource = "given" | "layout";

export interface Prediction {
  key: string;
  lineNo: number;
  /** Scores in candidate order; rank predictions are already turned into 1 / rank. */
  scores: Float64Array;
}

const LEADING_KEY = /^(\S+)\s+(.*)$/s;
const EXAMPLE: Record<PredictionFormat, string> = { ranks: "[2,1,3]", scores: "[0.7,0.1,0.2]" };
const RANKS_GIVEN = "read as ranks by --pred-format ranks; a file of scores needs --pred-format scores";
const RANKS_BY_LAYOUT = "read as ranks, as MIND's bracketed submission format holds; a file of scores needs --pred-format scores";
const FORMAT_CHOICE = "say which with --pred-format ranks or --pred-format scores (or <run>=ranks|scores for one run)";

/** A line's list: a bracketed JSON list, or whitespace-separated fields (numbers where they parse). */
function readList(file: string, line: number, format: PredictionFormat, text: string): unknown[] {
  if (text.startsWith("[")) {
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch {
      throw new MindFormatError(file, line, format, `expected a list of ${format} like ${EXAMPLE[format]}, found '${text.slice(0, 40)}'`);
    }
    if (!Array.isArray(list) || list.length === 0) throw new MindFormatError(file, line, format, `expected a non-empty list of ${format}`);
    return list;
  }
  return text
    .trim()
    .split(/\s+/)
    .map((f) => (f.length > 0 && Number.isFinite(Number(f)) ? Number(f) : f));
}

function ranksToScores(file: string, line: number, list: readonly unknown[], why: string): Float64Array {
  const n = list.length;
  const seen = new Uint8Array(n + 1);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = list[i];
    if (typeof r !== "number" || !Number.isInteger(r) || r < 1 || r > n) {
      throw new MindFormatError(file, line, "ranks", `rank ${JSON.stringify(r)} at position ${i + 1} is not a whole number from 1 to ${n}: the ranks must be a permutation of 1..${n} (${why})`);
    }
    if (seen[r]) throw new MindFormatError(file, line, "ranks", `rank ${r} appears twice: the ranks must be a permutation of 1..${n} (${why})`);
    seen[r] = 1;
    scores[i] = 1 / r;
  }
  return scores;
}

function toScores(file: string, line: number, list: readonly unknown[]): Float64Array {
  const scores = new Float64Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new MindFormatError(file, line, "scores", `score '${typeof v === "string" ? v : JSON.stringify(v)}' at position ${i + 1} is not a finite number`);
    }
    scores[i] = v;
  }
  return scores;
}

/** Whether the list is a permutation of 1..n: ranks, or scores that read as ranks too. */
function isPermutation(list: readonly unknown[]): boolean {
  const n = list.length;
  const seen = new Uint8Array(n + 1);
  for (const r of list) {
    if (typeof r !== "number" || !Number.isInteger(r) || r < 1 || r > n || seen[r]) return false;
    seen[r] = 1;
  }
  return n > 0;
}

/**
 * Reads one prediction file alongside the truth file. Predictions written in truth order (what
 * every trainer writes) are consumed as they are read, so memory stays flat; a prediction read ahead
 * of its impression waits in a map until its impression comes. Worst case (a file in reverse order)
 * that map holds the whole file: about 8 bytes per candidate plus ~350 bytes per impression
 * (measured: 0.65 KB for 37 candidates).
 */
export class PredictionReader {
  /** Given, or decided by the first line's layout; undefined until a line is read. */
  format: PredictionFormat | undefined;
  readonly source: FormatSource;
  private readonly lines: AsyncIterator<NumberedLine[]>;
  private batch: NumberedLine[] = [];
  private next = 0;
  private done = false;
  private readonly ahead = new Map<string, Prediction>();
  /** Without a given format: lines read, and the first of them, to refuse a file every line of which reads as ranks too. */
  private read = 0;
  private permutations = 0;
  private first: { lineNo: number; text: string } | undefined;

  /** `format`: how to read every line, in either layout; without it, see PredictionFormat. */
  constructor(
    readonly file: string,
    format?: PredictionFormat,
  ) {
    this.format = format;
    this.source = format ? "given" : "layout";
    this.lines = readLineBatches(file)[Symbol.asyncIterator]();
  }

  private async readLine(): Promise<NumberedLine | undefined> {
    while (this.next >= this.batch.length) {
      if (this.done) return undefined;
      const r = await this.lines.next();
      if (r.done) {
        this.done = true;
        return undefined;
      }
      this.batch = r.value;
      this.next = 0;
    }
    return this.batch[this.next++];
  }

  private parse(line: NumberedLine): Prediction {
    const m = LEADING_KEY.exec(line.text.trim());
    if (!m) throw new MindFormatError(this.file, line.lineNo, undefined, "expected '<impression id> [r1,r2,…]' or '<impression id><TAB><s1> <s2> …'");
    const [, key, rest] = m as unknown as [string, string, string];
    if (this.source === "layout") {
      const layout: PredictionFormat = rest.startsWith("[") ? "ranks" : "scores";
      if (this.format === undefined) this.format = layout;
      else if (layout !== this.format) this.refuseMixed(line.lineNo, rest);
      this.first ??= { lineNo: line.lineNo, text: rest };
    }
    const format = this.format!;
    const list = readList(this.file, line.lineNo, format, rest);
    const scores = format === "ranks" ? ranksToScores(this.file, line.lineNo, list, this.source === "given" ? RANKS_GIVEN : RANKS_BY_LAYOUT) : toScores(this.file, line.lineNo, list);
    if (this.source === "layout" && format === "scores") {
      // Only while every line so far is one: the first that is not settles it.
      if (this.permutations === this.read && isPermutation(list)) this.permutations++;
      this.read++;
    }
    return { key, lineNo: line.lineNo, scores };
  }

  /** A line of the other layout than the file's first line, without a given format: one file, one meaning. */
  private refuseMixed(lineNo: number, text: string): never {
    const [here, first] = this.format === "ranks" ? ["tab-separated", "bracketed (ranks)"] : ["bracketed", "tab-separated (scores)"];
    throw new MindFormatError(
      this.file,
      lineNo,
      undefined,
      `'${text.slice(0, 40)}' is ${here} in a file whose first line ${this.first ? `(line ${this.first.lineNo}) ` : ""}is ${first}: ranks (1 = best) and scores (higher = better) give opposite metrics, and a file is read one way; ${FORMAT_CHOICE}`,
    );
  }

  /** The prediction for `key`, or undefined when the file has none. */
  async take(key: string): Promise<Prediction | undefined> {
    const waiting = this.ahead.get(key);
    if (waiting) {
      this.ahead.delete(key);
      return waiting;
    }
    for (;;) {
      const line = await this.readLine();
      if (!line) return undefined;
      if (line.text.trim().length === 0) continue;
      const p = this.parse(line);
      if (p.key === key) return p;
      const twin = this.ahead.get(p.key);
      if (twin) throw new MindFormatError(this.file, p.lineNo, undefined, `a second prediction for impression ${p.key} (first on line ${twin.lineNo})`);
      this.ahead.set(p.key, p);
    }
  }

  /** Whether a prediction for `key` was read ahead; after a failed take, that is every key in the file. */
  has(key: string): boolean {
    return this.ahead.has(key);
  }

  /** Fails on a prediction left over: it names an impression the truth file does not have (or has already used). */
  async finish(): Promise<void> {
    for (;;) {
      const line = await this.readLine();
      if (!line) break;
      if (line.text.trim().length === 0) continue;
      const p = this.parse(line);
      if (!this.ahead.has(p.key)) this.ahead.set(p.key, p);
    }
    if (this.source === "layout" && this.format === "scores" && this.read > 0 && this.permutations === this.read) {
      throw new MindFormatError(
        this.file,
        this.first!.lineNo,
        "scores",
        `every line${this.read > 1 ? ` of the ${this.read}` : ""} is a permutation of 1..n (line ${this.first!.lineNo}: '${this.first!.text.slice(0, 40)}'), as ranks are, and ranks (1 = best) give the opposite metrics of the scores (higher = better) this tab-separated layout otherwise holds; ${FORMAT_CHOICE}`,
      );
    }
    const first = [...this.ahead.values()].sort((a, b) => a.lineNo - b.lineNo)[0];
    if (first) {
      throw new MindFormatError(
        this.file,
        first.lineNo,
        undefined,
        `prediction for impression ${first.key}, which the truth file does not have (or this file lists twice)` +
          (this.ahead.size > 1 ? `; ${this.ahead.size - 1} more like it` : ""),
      );
    }
  }

  async close(): Promise<void> {
    await this.lines.return?.();
  }
}
