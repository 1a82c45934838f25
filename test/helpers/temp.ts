// Temp folders for tests, removed when the test file is done: a suite run leaves the temp folder as
// it found it. The afterAll below registers on the first import in each test file (vitest loads
// every file in its own module scope), so any test or fixture may call tempDir.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];

// A child process a test starts may import a fixture that imports this; it runs no tests.
if (process.env.VITEST) {
  afterAll(async () => {
    await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
}

/** A new empty folder under the temp folder, removed after the file's last test. */
export async function tempDir(prefix = "gm-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
