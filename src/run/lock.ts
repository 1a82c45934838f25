// One writer per run folder and stage: `<out>/<stage>.lock` names the process that holds it. A second
// command on the same folder and stage refuses at once, naming that process; a lock whose process is
// gone (killed, crashed) is taken over. Two runs appending to one store would each pay for the other's
// items and interleave their batches files.
import { link, mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { UserError } from "../cli/command.js";

interface LockContent {
  pid: number;
  host: string;
  startedAt: string;
}

/**
 * Exit status of a command refused because another run holds the lock: neither bad data (1) nor bad
 * usage (2), and the one refusal that the same command can get past by waiting.
 */
export const LOCKED_EXIT = 4;

/** Locks this process holds: a second taker in the same process is refused like another process. */
const heldHere = new Set<string>();

export interface FileLock {
  readonly path: string;
  /** Removes the lock if it is still ours. */
  release(): Promise<void>;
}

/** Whether a process with this PID runs on this machine (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function parse(text: string): LockContent | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    return typeof v.pid === "number" && typeof v.host === "string" ? { pid: v.pid, host: v.host, startedAt: String(v.startedAt ?? "") } : undefined;
  } catch {
    return undefined;
  }
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Takes the lock at `path` for this process, or throws a UserError naming the process that holds it.
 * `what` names the guarded thing in that message (e.g. "summarize in output/small").
 */
export async function acquireLock(path: string, what: string): Promise<FileLock> {
  const mine: LockContent = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const text = JSON.stringify(mine) + "\n";
  await mkdir(dirname(path), { recursive: true });
  // A few rounds at most: each one either creates the lock, refuses, or clears a dead holder's lock.
  for (let round = 0; round < 5; round++) {
    try {
      const fh = await open(path, "wx");
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      heldHere.add(path);
      return { path, release: () => release(path, mine) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const held = await readOrUndefined(path);
    if (held === undefined) continue;
    const holder = parse(held);
    if (holder && holder.host !== mine.host) {
      throw new UserError(
        `${what} is locked by process ${holder.pid} on ${holder.host} (since ${holder.startedAt}): ${path}. If that run is over, delete the file.`,
        LOCKED_EXIT,
      );
    }
    // A lock file cut short (the holder was killed while writing it) holds no live PID either; our own
    // PID on a lock we do not hold is a dead process's whose PID came round again.
    const live = holder && (holder.pid === process.pid ? heldHere.has(path) : processAlive(holder.pid));
    if (holder && live) {
      throw new UserError(`${what} is being written by process ${holder.pid} (since ${holder.startedAt}); wait for it to finish or stop it (${path})`, LOCKED_EXIT);
    }
    await clearStale(path, held);
  }
  throw new UserError(`could not take the lock ${path}: other processes keep taking it`, LOCKED_EXIT);
}

/**
 * Removes a dead holder's lock. It is moved aside first and checked: if another process took the
 * lock over in between, the file moved is that process's live lock, and it is put back.
 */
async function clearStale(path: string, stale: string): Promise<void> {
  const aside = `${path}.${process.pid}.stale`;
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  const moved = await readOrUndefined(aside);
  if (moved !== stale) {
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

async function release(path: string, mine: LockContent): Promise<void> {
  heldHere.delete(path);
  const held = parse((await readOrUndefined(path)) ?? "");
  if (held?.pid === mine.pid && held.host === mine.host && held.startedAt === mine.startedAt) await unlink(path).catch(() => undefined);
}
