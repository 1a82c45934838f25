import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { defineCommand, envName, zInt } from "../src/cli/command.js";
import { runCli } from "../src/cli/main.js";
import { context } from "./engine-helpers.js";
import { tempDir } from "./helpers/temp.js";

const probe = defineCommand({
  name: "probe-cli-test",
  summary: "echoes its merged options",
  options: {
    limit: { type: "string", arg: "<n>", description: "a number" },
    data: { type: "string", multiple: true, arg: "<dir>", description: "folders" },
  },
  schema: z.object({ limit: zInt(1).default(10), data: z.array(z.string()).default(["x"]), positionals: z.array(z.string()) }),
  async run(config, ctx) {
    ctx.stdout.write(JSON.stringify(config));
    return 0;
  },
});

describe("option merging", () => {
  it("takes flags over environment over config file over defaults", async () => {
    const dir = await tempDir("gm-cli-");
    await writeFile(join(dir, "genre-mind.config.json"), JSON.stringify({ limit: 3, "probe-cli-test": { data: ["a", "b"] } }));
    let ctx = context({}, dir);
    expect(await probe.invoke([], ctx)).toBe(0);
    expect(JSON.parse(ctx.out.text())).toMatchObject({ limit: 3, data: ["a", "b"] });

    ctx = context({ [envName("limit")]: "7" }, dir);
    await probe.invoke([], ctx);
    expect(JSON.parse(ctx.out.text()).limit).toBe(7);

    ctx = context({ [envName("limit")]: "7" }, dir);
    await probe.invoke(["--limit", "9", "--data", "c"], ctx);
    expect(JSON.parse(ctx.out.text())).toMatchObject({ limit: 9, data: ["c"] });
  });

  it("names the option and what was expected when a value is bad", async () => {
    const dir = await tempDir("gm-cli-");
    await expect(probe.invoke(["--limit", "abc"], context({}, dir))).rejects.toThrow(/--limit: expected a whole number/);
    await expect(probe.invoke(["--limit", "0"], context({}, dir))).rejects.toThrow(/--limit/);
  });

  it("rejects an unknown flag and an unknown config key", async () => {
    const dir = await tempDir("gm-cli-");
    await expect(probe.invoke(["--limt", "3"], context({}, dir))).rejects.toThrow(/limt/);
    await writeFile(join(dir, "genre-mind.config.json"), JSON.stringify({ limt: 3 }));
    await expect(probe.invoke([], context({}, dir))).rejects.toThrow(/unknown option 'limt'/);
  });

  it("exits 2 with usage help for an unknown command", async () => {
    const ctx = context({}, process.cwd());
    expect(await runCli(["no-such-command"], ctx)).toBe(2);
    expect(ctx.err.text()).toMatch(/unknown command 'no-such-command'/);
  });

  it("suggests the command a typo meant, as it does for an option", async () => {
    for (const [typed, meant] of [["sumarize", "summarize"], ["augmnet", "augment"], ["valdiate", "validate"]]) {
      const ctx = context({}, process.cwd());
      expect(await runCli([typed!], ctx)).toBe(2);
      expect(ctx.err.text().split("\n")[0]).toBe(`genre-mind: unknown command '${typed}' (did you mean ${meant}?)`);
    }
    const ctx = context({}, process.cwd());
    await runCli(["no-such-command"], ctx);
    expect(ctx.err.text().split("\n")[0]).toBe("genre-mind: unknown command 'no-such-command'");
  });
});

describe("npm scripts", () => {
  it("run the CLI in the process npm starts (node --import tsx), so a signal reaches the command itself", async () => {
    // tsx's own CLI runs the script in a child and relays a signal to it; a child busy for 60 ms
    // (an offline stage, a catalog load) is then killed with SIGKILL: no summary, no meta, a stale lock.
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, "..", "package.json"), "utf8")) as { scripts: Record<string, string> };
    const cli = Object.entries(pkg.scripts).filter(([, line]) => line.includes("src/cli/main.ts"));
    expect(cli.length).toBeGreaterThan(15);
    for (const [name, line] of cli) expect(line, name).toMatch(/^node --import tsx src\/cli\/main\.ts( [a-z-]+)?$/);
  });
});
