// Which MIND archives exist and where they land. File names follow microsoft/recommenders
// (recommenders/datasets/mind.py): MIND<size>_<split>.zip on its newsrec mirror.
import { existsSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { DownloadError, downloadFile } from "./fetch.js";
import { Progress, formatBytes, type ProgressStream } from "./progress.js";
import { extractZipAtomic, fileSize } from "./zip.js";

export const MIND_SIZES = ["demo", "small", "large"] as const;
export type MindSize = (typeof MIND_SIZES)[number];

export const DEFAULT_BASE_URL = "https://recodatasets.z20.web.core.windows.net/newsrec/";

/** Splits published per size: only MIND-large has a (label-free) test split. */
export const MIND_SPLITS: Record<MindSize, readonly string[]> = {
  demo: ["train", "dev"],
  small: ["train", "dev"],
  large: ["train", "dev", "test"],
};

export interface MindArchive {
  /** `MINDsmall_train`: the zip's base name and the split folder's name. */
  name: string;
  url: string;
  zipPath: string;
  dir: string;
}

export function mindArchives(size: MindSize, baseUrl: string, dest: string): MindArchive[] {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  return MIND_SPLITS[size].map((split) => {
    const name = `MIND${size}_${split}`;
    return { name, url: new URL(`${name}.zip`, base).href, zipPath: join(dest, `${name}.zip`), dir: join(dest, name) };
  });
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** What to do by hand when the download cannot be done here. */
export function manualFetchHint(archive: MindArchive): string {
  return [
    `Fetch it by hand, then run this command again (it unpacks a zip it finds in place):`,
    `  curl -fL -C - -o ${archive.zipPath} ${archive.url}`,
    `  # or: wget -c -O ${archive.zipPath} ${archive.url}`,
    `or unpack it yourself: unzip ${archive.zipPath} -d ${archive.dir}`,
  ].join("\n");
}

export interface MindDownloadOptions {
  size: MindSize;
  baseUrl: string;
  dest: string;
  keepZip: boolean;
  retries?: number;
  retryDelayMs?: number;
  /** Progress and notices (stderr): a bar on a terminal, plain lines otherwise. */
  progress: ProgressStream;
  /** One line per archive when it is ready (stdout). */
  log: (line: string) => void;
}

export interface ArchiveResult extends MindArchive {
  status: "present" | "extracted" | "downloaded";
  bytes?: number;
}

export class MindDownloadError extends Error {
  constructor(
    readonly archive: MindArchive,
    cause: Error,
  ) {
    super(`${cause.message}\n${manualFetchHint(archive)}`);
  }
}

/**
 * Brings every archive of a size into `<dest>/MIND<size>_<split>/`. A split folder that exists is
 * left alone; a complete zip is unpacked without fetching; a `.part` is resumed.
 */
export async function downloadMind(opts: MindDownloadOptions): Promise<ArchiveResult[]> {
  const results: ArchiveResult[] = [];
  for (const archive of mindArchives(opts.size, opts.baseUrl, opts.dest)) {
    if (await isDir(archive.dir)) {
      opts.log(`${archive.dir}: already there, not fetched`);
      results.push({ ...archive, status: "present" });
      continue;
    }
    let status: ArchiveResult["status"] = "extracted";
    let bytes = await fileSize(archive.zipPath);
    if (bytes === undefined) {
      const bar = new Progress(opts.progress, `${archive.name}.zip`);
      try {
        bytes = await downloadFile(archive.url, archive.zipPath, {
          retries: opts.retries,
          retryDelayMs: opts.retryDelayMs,
          onProgress: (done, total) => bar.update(done, total),
          onNotice: (message) => {
            bar.finish();
            opts.progress.write(`  ${archive.name}.zip: ${message}\n`);
          },
        });
      } catch (e) {
        bar.finish();
        if (e instanceof DownloadError) throw new MindDownloadError(archive, e);
        throw e;
      }
      bar.finish();
      status = "downloaded";
    }
    try {
      await extractZipAtomic(archive.zipPath, archive.dir);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nDelete ${archive.zipPath} and run this command again to fetch it anew.`);
    }
    const missing = ["news.tsv", "behaviors.tsv"].filter((f) => !existsSync(join(archive.dir, f)));
    // A mirror could repackage the files under a sub-folder; say so rather than let --data fail later.
    if (missing.length > 0) opts.log(`warning: ${archive.dir} has no ${missing.join(" or ")} at its top level; look inside before using it as --data`);
    if (!opts.keepZip) await rm(archive.zipPath, { force: true });
    opts.log(`${archive.dir}: ${status === "downloaded" ? `downloaded ${formatBytes(bytes)} and ` : ""}unpacked`);
    results.push({ ...archive, status, bytes });
  }
  return results;
}
