// The suite's own guards: no test reaches a host but 127.0.0.1, child processes inherit nothing
// that could send them elsewhere, and no test asks for a model the SDK warns about.
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { childEnv, nodeArgs } from "./helpers/child.js";

const run = promisify(execFile);

describe("test isolation", () => {
  it("refuses a connection to any host but 127.0.0.1, in a test worker", async () => {
    const err = await fetch("http://example.com/").then(
      () => undefined,
      (e: Error) => e,
    );
    expect((err?.cause as Error | undefined)?.message).toBe("tests reach 127.0.0.1 only: refused a connection to example.com");
  });

  it("refuses it in a child process too, which inherits no proxy, key or genre-mind setting", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { HTTPS_PROXY: "http://proxy.test:3128", ANTHROPIC_API_KEY: "real-key", GENRE_MIND_LIMIT: "3" });
    let env;
    try {
      env = childEnv({ EXTRA: "1" });
    } finally {
      for (const k of ["HTTPS_PROXY", "ANTHROPIC_API_KEY", "GENRE_MIND_LIMIT"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
    expect(env).not.toHaveProperty("HTTPS_PROXY");
    expect(env).not.toHaveProperty("ANTHROPIC_API_KEY");
    expect(env).not.toHaveProperty("GENRE_MIND_LIMIT");
    expect(env).toMatchObject({ EXTRA: "1", TSX_DISABLE_CACHE: "1" });
    const code = `fetch("https://api.anthropic.com/v1/messages").then(() => console.log("reached"), (e) => console.log(e.cause.message))`;
    const { stdout } = await run(process.execPath, nodeArgs("-e", code), { env });
    expect(stdout.trim()).toBe("tests reach 127.0.0.1 only: refused a connection to api.anthropic.com");
  });


  it("names no model the SDK reports as deprecated (it would print a warning per request)", async () => {
    const sdk = dirname(createRequire(import.meta.url).resolve("@anthropic-ai/sdk"));
    const list = await readFile(join(sdk, "internal", "data", "deprecated-models.js"), "utf8");
    const deprecated = [...list.matchAll(/'([^']+)':/g)].map((m) => m[1]!);
    expect(deprecated.length).toBeGreaterThan(0);
    const files = (await readdir(import.meta.dirname, { recursive: true })).filter((f) => f.endsWith(".ts"));
    const uses: string[] = [];
    for (const file of files) {
      const text = await readFile(join(import.meta.dirname, file), "utf8");
      for (const model of deprecated) if (text.includes(`"${model}"`)) uses.push(`${file}: ${model}`);
    }
    expect(uses).toEqual([]);
  });
});
