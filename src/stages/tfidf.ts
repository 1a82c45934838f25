// TF-IDF retrieval over catalog titles and abstracts for the offline generate baseline. Built once
// per run and queried per cold user through an inverted index.
import { isStopword } from "./normalize.js";

export interface Ranked {
  id: string;
  score: number;
}

/** Query terms kept per user: the heaviest ones carry the similarity, the tail only costs time. */
const QUERY_TERMS = 32;
/** Postings read per query term, the heaviest first. */
const MAX_POSTINGS = 1000;

const HEAD = 64;

function byScoreThenId(a: Ranked, b: Ranked): number {
  return b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Inserts into `top` (best first, at most n long) when the item ranks among the best n. */
function pushTop(top: Ranked[], score: number, id: string, n: number): void {
  const r = { id, score };
  if (top.length === n && byScoreThenId(r, top[n - 1]!) >= 0) return;
  let i = top.length < n ? top.length : n - 1;
  if (top.length < n) top.push(r);
  while (i > 0 && byScoreThenId(r, top[i - 1]!) < 0) {
    top[i] = top[i - 1]!;
    i--;
  }
  top[i] = r;
}

export class TfIdfIndex {
  readonly ids: string[];
  // Vectors and postings are ranges of four flat arrays, found through their start offsets: a
  // typed-array view (plus an object) per news and per term put ~2 × (161k + terms) small objects on
  // the JS heap at MIND-large, which V8 then grows several times over before a full GC.
  /** Document d's terms and weights are vecTerms/vecWeights[vecStart[d] .. vecStart[d + 1]). */
  private readonly vecStart: Int32Array;
  private readonly vecTerms: Int32Array;
  private readonly vecWeights: Float64Array;
  /** Term t's postings, heaviest first past MAX_POSTINGS: postDocs/postWeights[postStart[t] .. postStart[t + 1]). */
  private readonly postStart: Int32Array;
  private readonly postDocs: Int32Array;
  private readonly postWeights: Float64Array;
  private readonly indexOf = new Map<string, number>();
  /** Document indexes sorted by ID: the deterministic fill when similarity runs out. */
  private readonly byId: number[];
  private readonly scores: Float64Array;
  private readonly marked: Uint8Array;
  /**
   * The documents a query touched (up to QUERY_TERMS × MAX_POSTINGS), in one buffer for every query:
   * an array that large, made per query, lands in V8's large-object space, which only a full GC frees.
   */
  private readonly touched: Int32Array;

  constructor(docs: Iterable<{ id: string; text: string }>) {
    this.ids = [];
    // Build-time only: the query needs term ids, never the terms themselves.
    const termIds = new Map<string, number>();
    let df = new Int32Array(1 << 12);
    let terms = 0;
    // Each document's (term, count) pairs, in first-seen order, one after another in two typed
    // arrays until the document frequencies are known: a Map per document (161k at MIND-large) put
    // hundreds of MB on the JS heap at once.
    let termsSeen = new Int32Array(1 << 16);
    let countsSeen = new Int32Array(1 << 16);
    let used = 0;
    const starts = [0];
    const tf = new Map<number, number>();
    for (const d of docs) {
      this.indexOf.set(d.id, this.ids.length);
      this.ids.push(d.id);
      tf.clear();
      for (const token of d.text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
        if (token.length < 2 || isStopword(token)) continue;
        let t = termIds.get(token);
        if (t === undefined) {
          t = terms++;
          termIds.set(token, t);
          if (t === df.length) {
            const grown = new Int32Array(df.length * 2);
            grown.set(df);
            df = grown;
          }
        }
        tf.set(t, (tf.get(t) ?? 0) + 1);
      }
      if (used + tf.size > termsSeen.length) {
        const size = Math.max(termsSeen.length * 2, used + tf.size);
        const grownTerms = new Int32Array(size);
        const grownCounts = new Int32Array(size);
        grownTerms.set(termsSeen.subarray(0, used));
        grownCounts.set(countsSeen.subarray(0, used));
        termsSeen = grownTerms;
        countsSeen = grownCounts;
      }
      for (const [t, c] of tf) {
        df[t]!++;
        termsSeen[used] = t;
        countsSeen[used++] = c;
      }
      starts.push(used);
    }
    termIds.clear();
    const n = this.ids.length;
    this.vecStart = Int32Array.from(starts);
    this.vecTerms = termsSeen.slice(0, used);
    termsSeen = new Int32Array(0);
    this.vecWeights = new Float64Array(used);
    const postingSize = new Int32Array(terms);
    for (let d = 0; d < n; d++) {
      let norm = 0;
      const from = this.vecStart[d]!;
      const to = this.vecStart[d + 1]!;
      for (let i = from; i < to; i++) {
        const t = this.vecTerms[i]!;
        const w = countsSeen[i]! * Math.log((1 + n) / (1 + df[t]!));
        this.vecWeights[i] = w;
        norm += w * w;
        postingSize[t]!++;
      }
      norm = Math.sqrt(norm) || 1;
      for (let i = from; i < to; i++) this.vecWeights[i]! /= norm;
    }
    countsSeen = new Int32Array(0);
    this.postStart = new Int32Array(terms + 1);
    for (let t = 0; t < terms; t++) this.postStart[t + 1] = this.postStart[t]! + postingSize[t]!;
    this.postDocs = new Int32Array(used);
    this.postWeights = new Float64Array(used);
    const fill = this.postStart.slice(0, terms);
    for (let d = 0; d < n; d++) {
      for (let i = this.vecStart[d]!; i < this.vecStart[d + 1]!; i++) {
        const t = this.vecTerms[i]!;
        this.postDocs[fill[t]!] = d;
        this.postWeights[fill[t]!] = this.vecWeights[i]!;
        fill[t]!++;
      }
    }
    // Impact order: a query scans the docs where a term weighs most first and stops at MAX_POSTINGS,
    // so a common term costs the same as a rare one (an approximation only for very common terms).
    for (let t = 0; t < terms; t++) {
      const from = this.postStart[t]!;
      const docs = this.postDocs.subarray(from, this.postStart[t + 1]!);
      if (docs.length <= MAX_POSTINGS) continue;
      const weights = this.postWeights.subarray(from, this.postStart[t + 1]!);
      const order = [...docs.keys()].sort((a, b) => weights[b]! - weights[a]! || docs[a]! - docs[b]!);
      const sortedDocs = Int32Array.from(order, (i) => docs[i]!);
      const sortedWeights = Float64Array.from(order, (i) => weights[i]!);
      docs.set(sortedDocs);
      weights.set(sortedWeights);
    }
    this.byId = [...this.ids.keys()].sort((a, b) => (this.ids[a]! < this.ids[b]! ? -1 : this.ids[a]! > this.ids[b]! ? 1 : 0));
    this.scores = new Float64Array(n);
    this.marked = new Uint8Array(n);
    this.touched = new Int32Array(n);
  }

  /** A news item's place in `ids`, or undefined when it is not in the index. */
  position(id: string): number | undefined {
    return this.indexOf.get(id);
  }

  /**
   * Catalog news most similar (cosine) to the sum of the given news, best first, ties by ID;
   * then the rest by ID, so a caller always finds enough. Lazy: stops when the caller does.
   */
  *similar(toIds: readonly string[], exclude: ReadonlySet<string>): Generator<Ranked> {
    const query = new Map<number, number>();
    for (const id of toIds) {
      const d = this.indexOf.get(id);
      if (d === undefined) continue;
      for (let i = this.vecStart[d]!; i < this.vecStart[d + 1]!; i++) {
        const t = this.vecTerms[i]!;
        query.set(t, (query.get(t) ?? 0) + this.vecWeights[i]!);
      }
    }
    const terms = [...query].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, QUERY_TERMS);
    const touched = this.touched;
    let count = 0;
    for (const [t, qw] of terms) {
      const from = this.postStart[t]!;
      const end = Math.min(this.postStart[t + 1]!, from + MAX_POSTINGS);
      for (let i = from; i < end; i++) {
        const d = this.postDocs[i]!;
        if (!this.marked[d]) {
          this.marked[d] = 1;
          touched[count++] = d;
        }
        this.scores[d]! += qw * this.postWeights[i]!;
      }
    }
    const seen = new Set<string>();
    try {
      // Callers need a handful: select the best few in one pass, sort the rest only if they ask for more.
      const head: Ranked[] = [];
      for (let j = 0; j < count; j++) {
        const d = touched[j]!;
        const score = this.scores[d]!;
        const last = head.length === HEAD ? head[HEAD - 1]! : undefined;
        if (last && score < last.score) continue;
        const id = this.ids[d]!;
        if (!exclude.has(id)) pushTop(head, score, id, HEAD);
      }
      for (const r of head) {
        seen.add(r.id);
        yield r;
      }
      if (count > head.length) {
        const rest: Ranked[] = [];
        for (let j = 0; j < count; j++) {
          const d = touched[j]!;
          const id = this.ids[d]!;
          if (!seen.has(id) && !exclude.has(id)) rest.push({ id, score: this.scores[d]! });
        }
        for (const r of rest.sort(byScoreThenId)) {
          seen.add(r.id);
          yield r;
        }
      }
    } finally {
      // Also when the caller stops early: the buffers are shared by every query.
      for (let j = 0; j < count; j++) {
        const d = touched[j]!;
        this.scores[d] = 0;
        this.marked[d] = 0;
      }
    }
    for (const d of this.byId) {
      const id = this.ids[d]!;
      if (!seen.has(id) && !exclude.has(id)) yield { id, score: 0 };
    }
  }
}
