import { MindFormatError } from "./errors.js";
import { historyClass } from "./history-rule.js";
import { behaviorTabs, parseEntities, parseNewsLine, readLineBatches, readLineChunks } from "./read.js";
import type { SplitDir } from "./splits.js";
import { READABLE_NEWS_ID, READABLE_USER_ID } from "./text.js";
import { parseMindTimeAt } from "./time.js";
import { plural } from "../util/text.js";

export type Severity = "error" | "warning";

/** One kind of problem in one split: how often it occurs and where to look first. */
export interface Problem {
  severity: Severity;
  code: ProblemCode;
  message: string;
  count: number;
  /** `file:line: detail`, the first few occurrences in file order. */
  examples: string[];
}

export type ProblemCode =
  | "malformed-line"
  | "duplicate-news-id"
  | "dash-in-news-id"
  | "unreadable-news-id"
  | "unreadable-user-id"
  | "missing-history-id"
  | "missing-impression-id"
  | "bad-label"
  | "mixed-labels"
  | "history-differs"
  | "single-label-impression"
  | "bad-time"
  | "empty-file"
  | "invalid-utf8";

export interface SplitCounts {
  news: number;
  users: number;
  impressions: number;
  clicks: number;
  /** Users whose history is empty. */
  emptyHistories: number;
  /** Users with 1..coldMax clicks in their history. */
  coldUsers: number;
  coldMax: number;
  /** Impression rows without labels (MIND-large test): fine, but they cannot be trained on. */
  unlabeledImpressions: number;
  /** News rows per category, most frequent first. */
  categories: Record<string, number>;
  /** Earliest and latest impression time, as written in the file. */
  firstTime: string | null;
  lastTime: string | null;
  /** Lines skipped under --lenient. */
  skippedLines: number;
}

export interface SplitReport {
  name: string;
  dir: string;
  counts: SplitCounts;
  problems: Problem[];
}

export interface ValidateOptions {
  coldMax: number;
  /** Count and skip malformed lines (reported as errors) instead of stopping at the first. */
  lenient: boolean;
  /** Shown as the file part of `file:line` (default: the path as resolved). */
  displayPath?: (file: string) => string;
  examples?: number;
}

const MESSAGES: Record<ProblemCode, [Severity, string]> = {
  "malformed-line": ["error", "malformed lines (skipped)"],
  "duplicate-news-id": ["error", "news IDs that appear more than once in news.tsv"],
  "dash-in-news-id": ["error", "news IDs containing '-' (trainers split impressions on '-')"],
  "unreadable-news-id": ["warning", "news IDs not of the form N<digits> (NewsRecLib cannot read them)"],
  "unreadable-user-id": ["warning", "user IDs not of the form U<digits> (NewsRecLib cannot read them)"],
  "missing-history-id": ["error", "history IDs missing from news.tsv"],
  "missing-impression-id": ["error", "impression IDs missing from news.tsv"],
  "bad-label": ["error", "impression labels other than 0 or 1"],
  "mixed-labels": ["error", "impression rows mixing labeled and unlabeled candidates"],
  "history-differs": ["error", "users whose history differs between rows of this split"],
  "single-label-impression": ["warning", "labeled impression rows with no click or no non-click (per-impression AUC is undefined)"],
  "bad-time": ["warning", "times not in MIND's format MM/DD/YYYY h:mm:ss AM"],
  "empty-file": ["warning", "empty files"],
  // A warning under --lenient (validateSplit): the lines are then read with U+FFFD in place of the bad bytes.
  "invalid-utf8": ["error", "lines that are not valid UTF-8 (readers decode the bad bytes as U+FFFD)"],
};

class ProblemLog {
  private readonly byCode = new Map<ProblemCode, Problem>();
  constructor(private readonly keep: number) {}

  add(code: ProblemCode, example: string | (() => string), count = 1): Problem {
    let p = this.byCode.get(code);
    if (!p) {
      const [severity, message] = MESSAGES[code];
      p = { severity, code, message, count: 0, examples: [] };
      this.byCode.set(code, p);
    }
    p.count += count;
    if (p.examples.length < this.keep) p.examples.push(typeof example === "string" ? example : example());
    return p;
  }

  get(code: ProblemCode): Problem | undefined {
    return this.byCode.get(code);
  }

  list(): Problem[] {
    const order = Object.keys(MESSAGES);
    return [...this.byCode.values()].sort(
      (a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) || order.indexOf(a.code) - order.indexOf(b.code),
    );
  }
}

const N = 78; // 'N'
const SPACE = 32;
const DASH = 45;
const ZERO = 48;
const NINE = 57;
/** Longest digit run whose key (value * 16 + digit count) stays an exact double. */
const MAX_KEY_DIGITS = 12;

/**
 * The set of news IDs of one split. Canonical `N<digits>` IDs are looked up by a number computed
 * while scanning a line, so the per-candidate hot loop over a 1.4 GB behaviors file allocates
 * nothing; the digit count is part of the key so `N012` and `N12` stay different IDs. Keys of
 * MIND-sized IDs (N1..N~10^6) fit a bitmap of a few MB, faster than a Set of numbers.
 */
class NewsIdSet {
  private bits = new Uint8Array(0);
  private readonly bigKeys = new Set<number>();
  private readonly other = new Set<string>();

  add(id: string): void {
    const key = canonicalKey(id, 0, id.length);
    if (key < 0) this.other.add(id);
    else if (key < MAX_BITMAP_KEY) {
      if (key >> 3 >= this.bits.length) {
        const grown = new Uint8Array(Math.max(key >> 3, this.bits.length * 2) + 1);
        grown.set(this.bits);
        this.bits = grown;
      }
      this.bits[key >> 3]! |= 1 << (key & 7);
    } else this.bigKeys.add(key);
  }
  hasKey(key: number): boolean {
    if (key < MAX_BITMAP_KEY) return key >> 3 < this.bits.length && (this.bits[key >> 3]! & (1 << (key & 7))) !== 0;
    return this.bigKeys.has(key);
  }
  has(id: string): boolean {
    const key = canonicalKey(id, 0, id.length);
    return key >= 0 ? this.hasKey(key) : this.other.has(id);
  }
}
/** 2^28 bits = 32 MB at most, reached only by IDs beyond N16777215. */
const MAX_BITMAP_KEY = 1 << 28;

/** The lookup key of `text[start, end)` if it is `N<digits>`, else -1. */
function canonicalKey(text: string, start: number, end: number): number {
  const digits = end - start - 1;
  if (digits < 1 || digits > MAX_KEY_DIGITS || text.charCodeAt(start) !== N) return -1;
  let value = 0;
  for (let i = start + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) return -1;
    value = value * 10 + (c - ZERO);
  }
  return value * 16 + digits;
}

/**
 * Users seen in a split. Only a 53-bit hash of each history is kept (not the history): MIND-large
 * train has 711k users with ~32 clicks each, and the check only needs to know "same or not".
 */
class UserTable {
  readonly index = new Map<string, number>();
  private hashes = new Float64Array(1 << 16);
  private lines = new Uint32Array(1 << 16);

  get size(): number {
    return this.index.size;
  }
  add(userId: string, hash: number, lineNo: number): void {
    const i = this.index.size;
    if (i === this.hashes.length) {
      const h = new Float64Array(i * 2);
      h.set(this.hashes);
      this.hashes = h;
      const l = new Uint32Array(i * 2);
      l.set(this.lines);
      this.lines = l;
    }
    // Long IDs would be V8 slices pinning the whole 1 MB read chunk; a copy keeps memory small.
    this.index.set(userId.length > 12 ? copyString(userId) : userId, i);
    this.hashes[i] = hash;
    this.lines[i] = lineNo;
  }
  hashAt(i: number): number {
    return this.hashes[i]!;
  }
  lineAt(i: number): number {
    return this.lines[i]!;
  }
}

function copyString(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

/** Two 32-bit FNV-1a style hashes of `text[start, end)` folded into one 53-bit number. */
function hashRange(text: string, start: number, end: number): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}

async function checkNews(split: SplitDir, opts: Required<Pick<ValidateOptions, "lenient">>, log: ProblemLog, counts: SplitCounts, shown: string): Promise<NewsIdSet> {
  const file = split.newsFile;
  const where = (line: number) => `${shown}:${line}`;
  // `file:line [field]`, as a malformed line is named: the column to look at, by MIND's name for it.
  const at = (line: number, field: string) => `${where(line)} [${field}]`;
  const ids = new NewsIdSet();
  const firstLine = new Map<string, number>();
  const categories = new Map<string, number>();
  let count = 0;
  const malformed = (e: MindFormatError) => {
    if (!opts.lenient) throw e;
    counts.skippedLines++;
    log.add("malformed-line", `${where(e.line)}${e.field ? ` [${e.field}]` : ""}: ${e.problem}`);
  };
  for await (const batch of readLineBatches(file)) {
    for (const line of batch) {
      if (line.invalidUtf8) log.add("invalid-utf8", () => `${where(line.lineNo)}: ${aroundReplacement(line.text)}`);
      let row;
      try {
        row = parseNewsLine(file, line);
        parseEntities(file, line.lineNo, "Title Entities", row.titleEntities);
        parseEntities(file, line.lineNo, "Abstract Entities", row.abstractEntities);
      } catch (e) {
        if (!(e instanceof MindFormatError)) throw e;
        malformed(e);
        continue;
      }
      const seenAt = firstLine.get(row.id);
      if (seenAt !== undefined) {
        log.add("duplicate-news-id", () => `${at(line.lineNo, "News ID")}: ${row.id} (first on line ${seenAt})`);
        continue;
      }
      firstLine.set(row.id, line.lineNo);
      ids.add(row.id);
      count++;
      categories.set(row.category, (categories.get(row.category) ?? 0) + 1);
      if (row.id.includes("-")) log.add("dash-in-news-id", () => `${at(line.lineNo, "News ID")}: ${row.id}`);
      else if (!READABLE_NEWS_ID.test(row.id)) log.add("unreadable-news-id", () => `${at(line.lineNo, "News ID")}: ${row.id}`);
    }
  }
  if (count === 0 && counts.skippedLines === 0) log.add("empty-file", `${shown}: no news`);
  counts.news = count;
  counts.categories = Object.fromEntries([...categories].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
  return ids;
}

/**
 * One streaming pass over behaviors.tsv. Per line it finds the four tabs, hashes the history and
 * walks the impressions column char by char; history IDs are checked once per user (the history
 * is the same on every row of a user, and a row where it is not is itself reported).
 */
async function checkBehaviors(
  split: SplitDir,
  newsIds: NewsIdSet,
  opts: Required<Pick<ValidateOptions, "lenient" | "coldMax">>,
  log: ProblemLog,
  counts: SplitCounts,
  shown: string,
): Promise<void> {
  const file = split.behaviorsFile;
  const where = (line: number) => `${shown}:${line}`;
  const at = (line: number, field: string) => `${where(line)} [${field}]`;
  const users = new UserTable();
  const missingHistory = new Set<string>();
  const missingImpression = new Set<string>();
  let firstTime = Infinity;
  let lastTime = -Infinity;
  let rows = 0;

  const fail = (line: number, field: string | undefined, problem: string) => {
    const e = new MindFormatError(file, line, field, problem);
    if (!opts.lenient) throw e;
    counts.skippedLines++;
    log.add("malformed-line", `${where(line)}${field ? ` [${field}]` : ""}: ${problem}`);
  };

  /** Checks the IDs of a history column; returns its length. */
  const checkHistory = (text: string, start: number, end: number, lineNo: number): number => {
    let n = 0;
    let s = start;
    while (s < end) {
      let e = text.indexOf(" ", s);
      if (e === -1 || e > end) e = end;
      if (e > s) {
        n++;
        const key = canonicalKey(text, s, e);
        if (key >= 0 ? !newsIds.hasKey(key) : !newsIds.has(text.slice(s, e))) {
          const id = text.slice(s, e);
          if (missingHistory.size < 1_000_000) missingHistory.add(id.length > 12 ? copyString(id) : id);
          log.add("missing-history-id", () => `${at(lineNo, "History")}: ${id}`);
        }
      }
      s = e + 1;
    }
    return n;
  };

  for await (const { text, starts, ends, firstLineNo, invalidUtf8 } of readLineChunks(file)) {
    for (const i of invalidUtf8 ?? []) log.add("invalid-utf8", () => `${where(firstLineNo + i)}: ${aroundReplacement(text.slice(starts[i], ends[i]))}`);
    for (let i = 0; i < starts.length; i++) {
      rows++;
      checkLine(text, starts[i]!, ends[i]!, firstLineNo + i);
    }
  }

  /** Checks the line `text[start, end)`; every search is bounded by `end` (text holds other lines too). */
  function checkLine(text: string, start: number, end: number, lineNo: number): void {
    const tabs = behaviorTabs(text, start, end);
    if (!Array.isArray(tabs)) return fail(lineNo, tabs.field, tabs.problem);
    const [t1, t2, t3, t4] = tabs;
    if (t4 + 1 === end) return fail(lineNo, "Impressions", "no impressions");

    // Impressions first: a line that is malformed there is skipped before it counts anywhere.
    let clicks = 0;
    let nonClicks = 0;
    let unlabeled = 0;
    let badLabel = false;
    let s = t4 + 1;
    while (s < end) {
      if (text.charCodeAt(s) === SPACE) {
        s++;
        continue;
      }
      // Fast path: N<digits>-<0|1> followed by a space or the end of the line.
      if (text.charCodeAt(s) === N) {
        let j = s + 1;
        let value = 0;
        for (let c = text.charCodeAt(j); c >= ZERO && c <= NINE; c = text.charCodeAt(++j)) value = value * 10 + (c - ZERO);
        const digits = j - s - 1;
        if (digits >= 1 && digits <= MAX_KEY_DIGITS) {
          const after = j < end ? text.charCodeAt(j) : SPACE;
          const key = value * 16 + digits;
          if (after === DASH) {
            const label = text.charCodeAt(j + 1);
            const next = j + 2 < end ? text.charCodeAt(j + 2) : SPACE;
            if ((label === ZERO || label === ZERO + 1) && next === SPACE) {
              if (label === ZERO) nonClicks++;
              else clicks++;
              if (!newsIds.hasKey(key)) missingImpressionId(text.slice(s, j), lineNo);
              s = j + 3;
              continue;
            }
          } else if (after === SPACE) {
            unlabeled++;
            if (!newsIds.hasKey(key)) missingImpressionId(text.slice(s, j), lineNo);
            s = j + 1;
            continue;
          }
        }
      }
      // Anything else: the general rules of impressionsProblem, on a sliced token.
      let e = text.indexOf(" ", s);
      if (e === -1 || e > end) e = end;
      const token = text.slice(s, e);
      s = e + 1;
      const dash = token.lastIndexOf("-");
      if (dash === -1) {
        unlabeled++;
        if (!newsIds.has(token)) missingImpressionId(token, lineNo);
        continue;
      }
      if (dash === 0) return fail(lineNo, "Impressions", `impression '${token}' has no news ID`);
      const label = token.slice(dash + 1);
      if (label === "1") clicks++;
      else if (label === "0") nonClicks++;
      else {
        badLabel = true;
        log.add("bad-label", () => `${at(lineNo, "Impressions")}: '${token}'`);
      }
      const id = token.slice(0, dash);
      if (!newsIds.has(id)) missingImpressionId(id, lineNo);
    }
    const labeled = clicks + nonClicks;
    if (labeled > 0 && unlabeled > 0) log.add("mixed-labels", () => `${at(lineNo, "Impressions")}: ${labeled} labeled, ${unlabeled} unlabeled`);
    else if (unlabeled > 0) counts.unlabeledImpressions++;
    else if (!badLabel && (clicks === 0 || nonClicks === 0)) {
      log.add("single-label-impression", () => `${at(lineNo, "Impressions")}: ${clicks} ${plural(clicks, "click")}, ${nonClicks} ${plural(nonClicks, "non-click")}`);
    }
    counts.impressions++;
    counts.clicks += clicks;

    const ms = parseMindTimeAt(text, t2 + 1, t3);
    if (Number.isNaN(ms)) log.add("bad-time", () => `${at(lineNo, "Time")}: '${text.slice(t2 + 1, t3)}'`);
    else {
      if (ms < firstTime) {
        firstTime = ms;
        counts.firstTime = copyString(text.slice(t2 + 1, t3));
      }
      if (ms > lastTime) {
        lastTime = ms;
        counts.lastTime = copyString(text.slice(t2 + 1, t3));
      }
    }

    const userId = text.slice(t1 + 1, t2);
    const hash = hashRange(text, t3 + 1, t4);
    const known = users.index.get(userId);
    if (known === undefined) {
      const length = checkHistory(text, t3 + 1, t4, lineNo);
      users.add(userId, hash, lineNo);
      const kind = historyClass(length, opts.coldMax);
      if (kind === "empty") counts.emptyHistories++;
      else if (kind === "cold") counts.coldUsers++;
      if (!READABLE_USER_ID.test(userId)) log.add("unreadable-user-id", () => `${at(lineNo, "User ID")}: ${userId}`);
    } else if (users.hashAt(known) !== hash) {
      log.add("history-differs", () => `${at(lineNo, "History")}: ${userId} (history differs from line ${users.lineAt(known)})`);
      checkHistory(text, t3 + 1, t4, lineNo);
    }
  }

  function missingImpressionId(id: string, lineNo: number): void {
    if (missingImpression.size < 1_000_000) missingImpression.add(id.length > 12 ? copyString(id) : id);
    log.add("missing-impression-id", () => `${at(lineNo, "Impressions")}: ${id}`);
  }

  counts.users = users.size;
  if (rows === 0) log.add("empty-file", `${shown}: no impressions`);
  const hist = log.get("missing-history-id");
  if (hist) hist.message += ` (${hist.count} references to ${missingHistory.size} distinct IDs)`;
  const imp = log.get("missing-impression-id");
  if (imp) imp.message += ` (${imp.count} references to ${missingImpression.size} distinct IDs)`;
}

/** Where the first undecodable byte was, as the reader sees it: `…café Ren�e…`. */
function aroundReplacement(line: string): string {
  const at = line.indexOf("\uFFFD");
  const from = Math.max(0, at - 20);
  return `'${from > 0 ? "…" : ""}${line.slice(from, at + 20)}${at + 20 < line.length ? "…" : ""}' (column ${at + 1})`;
}

/** Validates one split: all the counts and every problem, in one pass over each file. */
export async function validateSplit(split: SplitDir, options: ValidateOptions): Promise<SplitReport> {
  const log = new ProblemLog(options.examples ?? 5);
  const show = options.displayPath ?? ((f: string) => f);
  const counts: SplitCounts = {
    news: 0, users: 0, impressions: 0, clicks: 0, emptyHistories: 0, coldUsers: 0, coldMax: options.coldMax,
    unlabeledImpressions: 0, categories: {}, firstTime: null, lastTime: null, skippedLines: 0,
  };
  const newsIds = await checkNews(split, options, log, counts, show(split.newsFile));
  await checkBehaviors(split, newsIds, options, log, counts, show(split.behaviorsFile));
  const invalid = log.get("invalid-utf8");
  if (invalid && options.lenient) invalid.severity = "warning";
  return { name: split.name, dir: split.dir, counts, problems: log.list() };
}

export function errorCount(reports: readonly SplitReport[]): number {
  return reports.reduce((n, r) => n + r.problems.filter((p) => p.severity === "error").length, 0);
}

export function warningCount(reports: readonly SplitReport[]): number {
  return reports.reduce((n, r) => n + r.problems.filter((p) => p.severity === "warning").length, 0);
}

/** The human-readable report `genre-mind validate` prints. */
export function formatReport(reports: readonly SplitReport[], displayDir: (dir: string) => string = (d) => d): string {
  const out: string[] = [];
  for (const r of reports) {
    const c = r.counts;
    const cats = Object.entries(c.categories);
    out.push(`${r.name}  (${displayDir(r.dir)})`);
    out.push(`  news          ${c.news}`);
    out.push(`  categories    ${cats.length}: ${cats.map(([k, v]) => `${k} ${v}`).join(", ")}`);
    out.push(`  users         ${c.users}  (empty history ${c.emptyHistories}, cold 1-${c.coldMax} clicks ${c.coldUsers})`);
    out.push(
      `  impressions   ${c.impressions}  (clicks ${c.clicks}${c.unlabeledImpressions ? `, unlabeled rows ${c.unlabeledImpressions}` : ""})`,
    );
    if (c.firstTime) out.push(`  time          ${c.firstTime} .. ${c.lastTime}`);
    if (c.skippedLines) out.push(`  skipped lines ${c.skippedLines} (--lenient)`);
    if (r.problems.length === 0) out.push("  ok: no problems");
    for (const p of r.problems) {
      out.push(`  ${p.severity.padEnd(7)} ${p.message}: ${p.count}`);
      for (const ex of p.examples) out.push(`            ${ex}`);
      if (p.count > p.examples.length && p.examples.length > 0) out.push(`            … and ${p.count - p.examples.length} more`);
    }
    out.push("");
  }
  const errors = errorCount(reports);
  const warnings = warningCount(reports);
  out.push(
    `${reports.length} split${reports.length === 1 ? "" : "s"} checked: ` +
      (errors === 0 && warnings === 0 ? "clean" : `${errors} error kind${errors === 1 ? "" : "s"}, ${warnings} warning kind${warnings === 1 ? "" : "s"}`),
  );
  return out.join("\n") + "\n";
}
