import { stat, readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";

export interface SplitDir {
  /** Folder name, e.g. `MINDsmall_train`; also the name of the split's folder in merge output. */
  name: string;
  dir: string;
  newsFile: string;
  behaviorsFile: string;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export class SplitNotFoundError extends Error {}

/**
 * The split in `dir`; undefined when it holds neither file. A folder with one of the two is an error:
 * skipped, it would leave a split out of the run without a word (a download unpacked half-way).
 */
async function asSplit(dir: string, shown: string): Promise<SplitDir | undefined> {
  const newsFile = join(dir, "news.tsv");
  const behaviorsFile = join(dir, "behaviors.tsv");
  const [news, behaviors] = [await isFile(newsFile), await isFile(behaviorsFile)];
  if (news && behaviors) return { name: basename(dir), dir, newsFile, behaviorsFile };
  if (news || behaviors) throw new SplitNotFoundError(`${shown}: has ${news ? "news.tsv" : "behaviors.tsv"} but no ${news ? "behaviors.tsv" : "news.tsv"} (a split folder needs both)`);
  return undefined;
}

/** train before dev before the rest: the order a trainer sees them (numbering words and users in it). */
export function trainerRank(name: string): number {
  return /train/i.test(name) ? 0 : /dev|valid/i.test(name) ? 1 : 2;
}

/** Sub-folders of a folder of splits: a train split first, then dev (or valid), then the others by name. */
function compareSplitNames(a: string, b: string): number {
  return trainerRank(a) - trainerRank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * `--data` takes a split folder (news.tsv + behaviors.tsv) or a folder of split folders; several
 * `--data` values may be given. Splits come back in the order given, the sub-folders of a folder
 * in compareSplitNames order, so every command sees the same order.
 */
export async function resolveSplits(dirs: readonly string[]): Promise<SplitDir[]> {
  const splits: SplitDir[] = [];
  for (const given of dirs) {
    const dir = resolve(given);
    let info;
    try {
      info = await stat(dir);
    } catch {
      throw new SplitNotFoundError(`${given}: no such folder`);
    }
    if (!info.isDirectory()) throw new SplitNotFoundError(`${given}: not a folder`);
    const direct = await asSplit(dir, given);
    if (direct) {
      splits.push(direct);
      continue;
    }
    const children = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort(compareSplitNames);
    const found: SplitDir[] = [];
    for (const child of children) {
      const split = await asSplit(join(dir, child), join(given, child));
      if (split) found.push(split);
    }
    if (found.length === 0) {
      throw new SplitNotFoundError(`${given}: neither a split folder (news.tsv and behaviors.tsv) nor a folder of split folders`);
    }
    splits.push(...found);
  }
  const seen = new Set<string>();
  for (const s of splits) {
    if (seen.has(s.name)) throw new SplitNotFoundError(`two splits are named '${s.name}': split folder names must differ`);
    seen.add(s.name);
  }
  return splits;
}
