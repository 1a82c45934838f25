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
  private readonly postings: { docs: Int32Array; weights: Float64Array }[] = [];
  private readonly vectors: { terms: Int32Array; weights: Float64Array }[] = [];
  private readonly termIds = new Map<string, number>();
  private readonly df: number[] = [];
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
        let t = this.termIds.get(token);
        if (t === undefined) {
          t = this.df.length;
          this.termIds.set(token, t);
          this.df.push(0);
        }
        tf.set(t, (tf.get(t) ?? 0) + 1);
      }
      if (used + tf.size > termsSeen.length) {
        const size = Math.max(termsSeen.length * 2, used + tf.size);
        const terms = new Int32Array(size);
        const counts = new Int32Array(size);
        terms.set(termsSeen.subarray(0, used));
        counts.set(countsSeen.subarray(0, used));
        termsSeen = terms;
        countsSeen = counts;
      }
      for (const [t, c] of tf) {
        this.df[t]!++;
        termsSeen[used] = t;
        countsSeen[used++] = c;
      }
      starts.push(used);
    }
    const n = this.ids.length;
    const postingSize = new Int32Array(this.df.length);
    // Vectors and postings are views into one buffer each: a typed array of its own per news and
    // per term would cost each an ArrayBuffer and an allocation beside its few numbers.
    const allTerms = termsSeen.slice(0, used);
    const allWeights = new Float64Array(used);
    for (let d = 0; d < n; d++) {
      let norm = 0;
      const from = starts[d]!;
      const terms = allTerms.subarray(from, starts[d + 1]!);
      const weights = allWeights.subarray(from, starts[d + 1]!);
      terms.forEach((t, i) => {
        const w = countsSeen[from + i]! * Math.log((1 + n) / (1 + this.df[t]!));
        weights[i] = w;
        norm += w * w;
        postingSize[t]!++;
      });
      norm = Math.sqrt(norm) || 1;
      for (let i = 0; i < weights.length; i++) weights[i]! /= norm;
      this.vectors.push({ terms, weights });
    }
    const postingDocs = new Int32Array(used);
    const postingWeights = new Float64Array(used);
    for (let t = 0, at = 0; t < this.df.length; at += postingSize[t]!, t++) {
      this.postings.push({ docs: postingDocs.subarray(at, at + postingSize[t]!), weights: postingWeights.subarray(at, at + postingSize[t]!) });
    }
    const fill = new Int32Array(this.df.length);
    this.vectors.forEach((v, d) => {
      v.terms.forEach((t, i) => {
        const p = this.postings[t]!;
        p.docs[fill[t]!] = d;
        p.weights[fill[t]!] = v.weights[i]!;
        fill[t]!++;
      });
    });
    // Impact order: a query scans the docs where a term weighs most first and stops at MAX_POSTINGS,
    // so a common term costs the same as a rare one (an approximation only for very common terms).
    for (const p of this.postings) {
      if (p.docs.length <= MAX_POSTINGS) continue;
      const order = [...p.docs.keys()].sort((a, b) => p.weights[b]! - p.weights[a]! || p.docs[a]! - p.docs[b]!);
      const docs = Int32Array.from(order, (i) => p.docs[i]!);
      const weights = Float64Array.from(order, (i) => p.weights[i]!);
      p.docs.set(docs);
      p.weights.set(weights);
    }
    this.byId = [...this.ids.keys()].sort((a, b) => (this.ids[a]! < this.ids[b]! ? -1 : this.ids[a]! > this.ids[b]! ? 1 : 0));
    this.scores = new Float64Array(n);
    this.marked = new Uint8Array(n);
    this.touched = new Int32Array(n);
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
      const v = this.vectors[d]!;
      v.terms.forEach((t, i) => query.set(t, (query.get(t) ?? 0) + v.weights[i]!));
    }
    const terms = [...query].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, QUERY_TERMS);
    const touched = this.touched;
    let count = 0;
    for (const [t, qw] of terms) {
      const p = this.postings[t]!;
      const end = Math.min(p.docs.length, MAX_POSTINGS);
      for (let i = 0; i < end; i++) {
        const d = p.docs[i]!;
        if (!this.marked[d]) {
          this.marked[d] = 1;
          touched[count++] = d;
        }
        this.scores[d]! += qw * p.weights[i]!;
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
