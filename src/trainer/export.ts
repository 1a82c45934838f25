import { join } from "node:path";
import { readBehaviors, readNews } from "../mind/read.js";
import { trainerRank, type SplitDir } from "../mind/splits.js";
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

/**
 * The split whose users are numbered: the one a trainer fits on. recommenders' mind_utils notebook
 * numbers the users of train's behaviors.tsv only and its iterators read any other user as index 0,
 * so a dev-only user is the unknown user to LSTUR and NPA; numbering dev users too would give them
 * rows of their own that no training step reaches and size the user table unlike recommenders' files.
 */
function trainSplit(splits: readonly SplitDir[]): SplitDir {
  const found = splits.find((s) => trainerRank(s.name) === 0) ?? splits[0];
  if (!found) throw new Error("no split to export");
  return found;
}

/** user → index from 1, in order of first occurrence in the split's behaviors.tsv, as the notebook numbers them. */
export async function buildUserDict(split: SplitDir): Promise<Map<string, number>> {
  const dict = new Map<string, number>();
  for await (const row of readBehaviors(split.behaviorsFile)) if (!dict.has(row.userId)) dict.set(row.userId, dict.size + 1);
  return dict;
}

export interface ExportSummary {
  outDir: string;
  words: number;
  users: number;
  /** The split the users were numbered from. */
  usersFrom: string;
  wordDictFile: string;
  userDictFile: string;
  embedding?: { file: string; dim: number; found: number; missing: number };
}

/** Everything is computed before anything is written, and each file is written atomically. */
export async function exportRecommenders(splits: readonly SplitDir[], outDir: string, glove?: string): Promise<ExportSummary> {
  const words = await buildWordDict(splits);
  const usersFrom = trainSplit(splits);
  const users = await buildUserDict(usersFrom);
  const emb = glove === undefined ? undefined : await gloveMatrix(glove, words);
  const summary: ExportSummary = {
    outDir,
    words: words.size,
    users: users.size,
    usersFrom: usersFrom.name,
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
