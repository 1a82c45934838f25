import { join } from "node:path";
import { readBehaviors, readNews } from "../mind/read.js";
import type { SplitDir } from "../mind/splits.js";
import { writeFileAtomic } from "../util/atomic.js";
import { gloveMatrix } from "./glove.js";
import { pickleStrIntDict } from "./pickle.js";
import { wordTokenize } from "./tokenize.js";

/** File names recommenders' MIND utils use; NRMS's hparams point at them. */
export const WORD_DICT_FILE = "word_dict.pkl";
export const USER_DICT_FILE = "uid2index.pkl";
export const EMBEDDING_FILE = "embedding.npy";

/**
 * word → index from 1, in order of first occurrence over the titles of the splits in the order
 * given, news.tsv line by line: the order recommenders' mind_utils notebook produces (it counts
 * words with a Counter, which keeps first-insertion order, and numbers them in that order).
 */
export async function buildWordDict(splits: readonly SplitDir[]): Promise<Map<string, number>> {
  const dict = new Map<string, number>();
  for (const split of splits) {
    for await (const row of readNews(split.newsFile)) {
      for (const word of wordTokenize(row.title)) if (!dict.has(word)) dict.set(word, dict.size + 1);
    }
  }
  return dict;
}

/** user → index from 1, in order of first occurrence in behaviors.tsv (as the notebook does). */
export async function buildUserDict(splits: readonly SplitDir[]): Promise<Map<string, number>> {
  const dict = new Map<string, number>();
  for (const split of splits) {
    for await (const row of readBehaviors(split.behaviorsFile)) if (!dict.has(row.userId)) dict.set(row.userId, dict.size + 1);
  }
  return dict;
}

export interface ExportSummary {
  outDir: string;
  words: number;
  users: number;
  wordDictFile: string;
  userDictFile: string;
  embedding?: { file: string; dim: number; found: number; missing: number };
}

/** Everything is computed before anything is written, and each file is written atomically. */
export async function exportRecommenders(splits: readonly SplitDir[], outDir: string, glove?: string): Promise<ExportSummary> {
  const words = await buildWordDict(splits);
  const users = await buildUserDict(splits);
  const emb = glove === undefined ? undefined : await gloveMatrix(glove, words);
  const summary: ExportSummary = {
    outDir,
    words: words.size,
    users: users.size,
    wordDictFile: join(outDir, WORD_DICT_FILE),
    userDictFile: join(outDir, USER_DICT_FILE),
  };
  await writeFileAtomic(summary.wordDictFile, pickleStrIntDict(words));
  await writeFileAtomic(summary.userDictFile, pickleStrIntDict(users));
  if (emb) {
    const file = join(outDir, EMBEDDING_FILE);
    await writeFileAtomic(file, emb.matrix.bytes());
    summary.embedding = { file, dim: emb.dim, found: emb.found, missing: words.size - emb.found };
  }
  return summary;
}
