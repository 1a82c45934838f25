// One writer per run folder and stage: the lock module, and two CLI processes on one folder.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../src/cli/command.js";
import { acquireLock } from "../src/run/lock.js";
import { tempDir } from "./engine-helpers.js";
import { startOpenAiFake } from "./fakes/openai-api.js";
import { installOpenAiBatches } from "./fakes/openai-batches.js";
import { nodeArgs, childEnv } from "./helpers/child.js";
import { runCliCaptured } from "./helpers/cli.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function lockPath(): Promise<string> {
  const dir = await tempDir();
  dirs.push(dir);
  return join(dir, "out", "summarize.lock");
}

/** The PID of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("acquireLock", () => {
  it("holds the lock until released; a second taker is refused with the holder's PID", async () => {
    const path = await lockPath();
    const lock = await acquireLock(path, "summarize in out");
    expect(existsSync(path)).toBe(true);
    const err = await acquireLock(path, "summarize in out").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`summarize in out is being written by process ${process.pid} `));
    await lock.release();
    expect(existsSync(path)).toBe(false);
    await (await acquireLock(path, "summarize in out")).release();
  });

  it("takes over a lock left by a process that is gone, and one cut short mid-write", async () => {
    const path = await lockPath();
    await mkdir(join(path, ".."), { recursive: true });
    const pid = deadPid();
    await writeFile(path, JSON.stringify({ pid, host: (await import("node:os")).hostname(), startedAt: "2026-01-01T00:00:00Z" }) + "\n");
    const lock = await acquireLock(path, "x");
    await lock.release();
    await writeFile(path, '{"pid":12');
    await (await acquireLock(path, "x")).release();
    // Nothing is left beside the lock.
    expect(await readdir(join(path, ".."))).toEqual([]);
  });

  it("refuses a lock held on another machine, naming it: its process cannot be checked from here", async () => {
    const path = await lockPath();
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, JSON.stringify({ pid: 4242, host: "other-box", startedAt: "2026-01-01T00:00:00Z" }));
    await expect(acquireLock(path, "profile in out")).rejects.toThrow(/profile in out is locked by process 4242 on other-box .*delete the file/);
    await expect(acquireLock(path, "profile in out")).rejects.toMatchObject({ exitCode: 4 });
  });

  it("does not remove a lock another run holds when releasing its own", async () => {
    const path = await lockPath();
    const lock = await acquireLock(path, "x");
    await rm(path);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, JSON.stringify({ pid: 1, host: "other-box", startedAt: "t" }));
    await lock.release();
    expect(existsSync(path)).toBe(true);
  });
});

describe("two commands on one folder", () => {
  it("the second refuses at once naming the first's PID; after the first is killed, the next run takes over", async () => {
    // A plain title: summarize refuses JSON-looking answers such as the fake's default echo.
    const fake = await startOpenAiFake({ requireKey: "k", answer: () => "Council approves the new city budget after a long debate" });
    const batches = installOpenAiBatches(fake, { hold: true });
    const dir = await tempDir();
    dirs.push(dir);
    const argv = ["summarize", "--data", "mind-data/sample", "--limit", "3", "--out", dir, "--provider", "openai-batch"];
    const env = { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.baseUrl, GENRE_MIND_POLL_INTERVAL: "0.01" };
    const first = spawn(process.execPath, nodeArgs("src/cli/main.ts", ...argv), { cwd: process.cwd(), env: childEnv(env), stdio: "ignore" });
    const exited = once(first, "exit");
    await once(batches, "retrieve");

    const second = await runCliCaptured(argv, { cwd: process.cwd(), env });
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(new RegExp(`summarize in .* is being written by process ${first.pid} `));
    expect(batches.creates).toBe(1);

    first.kill("SIGKILL");
    await exited;
    batches.release();
    const third = await runCliCaptured(argv, { cwd: process.cwd(), env });
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toMatch(/resumed polling \(3 requests\)/);
    expect(existsSync(join(dir, "summarize.lock"))).toBe(false);
  });
});
