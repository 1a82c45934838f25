import { readLineBatches } from "../mind/read.js";
import { MindFormatError } from "../mind/errors.js";
import { npyFloat32Matrix, type NpyFloat32Matrix } from "./npy.js";

export interface GloveMatrix {
  matrix: NpyFloat32Matrix;
  dim: number;
  /** Words of the dictionary that GloVe has a vector for. */
  found: number;
}

/**
 * Builds the embedding matrix recommenders' `load_glove_matrix` builds: one row per dictionary index
 * plus row 0, rows of words GloVe lacks left at zero, and when GloVe lists a word twice the later
 * line wins. The file is streamed and only vectors of dictionary words are kept, so the 5.6 GB
 * 840B file costs no more memory than the 6B one. The dimension comes from the first line (a
 * word2vec-style `count dim` header line is recognised and skipped).
 */
export async function gloveMatrix(file: string, wordDict: ReadonlyMap<string, number>): Promise<GloveMatrix> {
  let dim = 0;
  let matrix: NpyFloat32Matrix | undefined;
  const seen = new Set<number>();
  for await (const batch of readLineBatches(file)) {
    for (const { text, lineNo } of batch) {
      const line = text.trimEnd();
      if (line.length === 0) continue;
      if (matrix === undefined) {
        const fields = line.split(" ");
        if (fields.length === 2 && /^\d+$/.test(fields[0]!) && /^\d+$/.test(fields[1]!)) {
          dim = Number(fields[1]);
          matrix = npyFloat32Matrix(wordDict.size + 1, dim);
          continue;
        }
        dim = fields.length - 1;
        if (dim < 1) throw new MindFormatError(file, lineNo, undefined, "expected a word followed by its vector components, separated by spaces");
        matrix = npyFloat32Matrix(wordDict.size + 1, dim);
      }
      const space = line.indexOf(" ");
      if (space <= 0) continue;
      const index = wordDict.get(line.slice(0, space));
      if (index === undefined) continue;
      const values = line.slice(space + 1).split(" ");
      // 840B has a few entries whose word contains spaces (". . ."): their first field is not the word.
      if (values.length > dim) continue;
      if (values.length < dim) {
        throw new MindFormatError(file, lineNo, undefined, `expected ${dim} vector components (as on the first line), found ${values.length}`);
      }
      const offset = index * dim;
      for (let i = 0; i < dim; i++) {
        const v = Number(values[i]);
        if (!Number.isFinite(v)) throw new MindFormatError(file, lineNo, undefined, `component ${i + 1} '${values[i]}' is not a number`);
        matrix.data[offset + i] = v;
      }
      seen.add(index);
    }
  }
  if (matrix === undefined) throw new MindFormatError(file, 1, undefined, "no vectors: the GloVe file is empty");
  return { matrix, dim, found: seen.size };
}
