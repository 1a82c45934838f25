import { MindFormatError } from "../mind/errors.js";
import { readLineBatches, type NumberedLine } from "../mind/read.js";

/**
 * Two prediction formats, detected from a file's first line:
 * - `ranks`: the official submission format `<impression id> [r1,r2,…]`, the rank of each candidate
 *   in impression order (1 = shown first);
 * - `scores`: `<impression id>\t<s1> <s2> …`, one score per candidate, higher = more likely clicked.
 */
export type PredictionFormat = "ranks" | "scores";

export interface Prediction {
  key: string;
  lineNo: number;
  /** Scores in candidate order; rank predictions are already turned into 1 / rank. */
  scores: Float64Array;
}

const LEADING_KEY = /^(\S+)\s+(.*)$/s;

function parseRanks(file: string, line: number, text: string): Float64Array {
  let ranks: unknown;
  try {
    ranks = JSON.parse(text);
  } catch {
    throw new MindFormatError(file, line, "ranks", `expected a list of ranks like [2,1,3], found '${text.slice(0, 40)}'`);
  }
  if (!Array.isArray(ranks) || ranks.length === 0) throw new MindFormatError(file, line, "ranks", "expected a non-empty list of ranks");
  const n = ranks.length;
  const seen = new Uint8Array(n + 1);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = ranks[i] as unknown;
    if (typeof r !== "number" || !Number.isInteger(r) || r < 1 || r > n) {
      throw new MindFormatError(file, line, "ranks", `rank ${JSON.stringify(r)} at position ${i + 1} is not a whole number from 1 to ${n}: the ranks must be a permutation of 1..${n}`);
    }
    if (seen[r]) throw new MindFormatError(file, line, "ranks", `rank ${r} appears twice: the ranks must be a permutation of 1..${n}`);
    seen[r] = 1;
    scores[i] = 1 / r;
  }
  return scores;
}

function parseScores(file: string, line: number, text: string): Float64Array {
  const fields = text.trim().split(/\s+/);
  const scores = new Float64Array(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const v = Number(fields[i]);
    if (fields[i]!.length === 0 || !Number.isFinite(v)) {
      throw new MindFormatError(file, line, "scores", `score '${fields[i]}' at position ${i + 1} is not a finite number`);
    }
    scores[i] = v;
  }
  return scores;
}

/**
 * Reads one prediction file alongside the truth file. Predictions written in truth order (what
 * every trainer writes) are consumed as they are read, so memory stays flat; a prediction read ahead
 * of its impression waits in a map until its impression comes. Worst case (a file in reverse order)
 * that map holds the whole file: about 8 bytes per candidate plus ~350 bytes per impression
 * (measured: 0.65 KB for 37 candidates).
 */
export class PredictionReader {
  format: PredictionFormat | undefined;
  private readonly lines: AsyncIterator<NumberedLine[]>;
  private batch: NumberedLine[] = [];
  private next = 0;
  private done = false;
  private readonly ahead = new Map<string, Prediction>();

  constructor(readonly file: string) {
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
    const format: PredictionFormat = rest.startsWith("[") ? "ranks" : "scores";
    if (this.format === undefined) this.format = format;
    else if (format !== this.format) {
      throw new MindFormatError(this.file, line.lineNo, undefined, `a ${format} line in a file of ${this.format} (the format is set by the first line)`);
    }
    const scores = format === "ranks" ? parseRanks(this.file, line.lineNo, rest) : parseScores(this.file, line.lineNo, rest);
    return { key, lineNo: line.lineNo, scores };
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
