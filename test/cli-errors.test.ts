// Every command's bad input: one line naming what to fix, exit 2 for usage and paths that do not
// exist (or are the wrong kind), 1 for bad data. Each case runs the real CLI in-process.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCliCaptured, type CliResult } from "./helpers/cli.js";
import { writeSplit } from "./helpers/split.js";
import { tempDir } from "./helpers/temp.js";

let root: string;
const NEWS = [["N1", "news", "newsus", "A title", "", "https://x/1", "[]", "[]"]];
const BEHAVIORS = [["1", "U1", "11/15/2019 10:22:32 AM", "N1", "N1-1"]];

beforeAll(async () => {
  root = await tempDir("gm-cli-errors-");
  await writeSplit(join(root, "data", "train"), NEWS, BEHAVIORS);
  await writeFile(join(root, "a-file"), "not a folder\n");
  await mkdir(join(root, "a-folder"));
  await writeFile(join(root, "pred.txt"), "1 [1]\n");
});

const cli = (argv: string[], env: NodeJS.ProcessEnv = {}) => runCliCaptured(argv, { cwd: root, env });

/** The message line, and nothing else but the pointer to --help; never a Node error code. */
function expectOneLine(r: CliResult, command: string, message: RegExp): void {
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines[0]).toMatch(new RegExp(`^genre-mind ${command}: `));
  expect(lines[0]).toMatch(message);
  expect(lines.slice(1), r.stderr).toEqual(lines.length > 1 ? [`Run 'genre-mind ${command} --help' for usage.`] : []);
  expect(r.stderr).not.toMatch(/\bE[A-Z]{3,}\b|\n\s+at /);
}

// [argv, env, exit code, what the line says]
const CASES: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
  // paths that do not exist, or are the wrong kind
  [["summarize", "--data", "/nonexistent"], {}, 2, /\/nonexistent: no such folder/],
  [["validate", "/nonexistent"], {}, 2, /\/nonexistent: no such folder/],
  [["validate", "a-file"], {}, 2, /a-file: not a folder/],
  [["merge", "--data", "a-folder", "--out", "run"], {}, 2, /a-folder: neither a split folder/],
  [["score", "--truth", "/nonexistent", "--pred", "pred.txt"], {}, 2, /--truth \/nonexistent: no such file$/],
  [["score", "--truth", "a-folder", "--pred", "pred.txt"], {}, 2, /--truth a-folder: a folder, expected a file$/],
  [["score", "--truth", "data/train/behaviors.tsv", "--pred", "nope.txt"], {}, 2, /--pred nope\.txt: no such file$/],
  [["export", "recommenders", "data", "--glove", "/nonexistent", "--out", "exported"], {}, 2, /--glove \/nonexistent: no such file$/],
  [["export", "recommenders", "data", "--out", "a-file"], {}, 2, /--out a-file: a file, expected a folder$/],
  [["summarize", "--data", "data", "--out", "a-file"], {}, 2, /--out a-file: a file, expected a folder$/],
  [["profile", "--data", "data", "--out", "a-file/run"], {}, 2, /--out a-file\/run: .*a-file is a file/],
  [["merge", "--data", "data", "--out", "a-file"], {}, 2, /--out a-file: a file, expected a folder$/],
  [["download", "demo", "--dest", "a-file"], {}, 2, /--dest a-file: a file, expected a folder$/],
  [["summarize", "--data", "data", "--prompts", "/nonexistent"], {}, 2, /--prompts \/nonexistent: no such folder$/],
  [["summarize", "--data", "data", "--config", "/nonexistent"], {}, 2, /--config \/nonexistent: no such file$/],
  [["report", "/nonexistent"], {}, 2, /\/nonexistent: no such run folder$/],
  [["split", "data/train", "--list", "/nonexistent.json"], {}, 2, /--list \/nonexistent\.json: no such file$/],
  [["split", "data/train", "--by-time", "--out", "a-file"], {}, 2, /--out a-file: a file, expected a folder$/],
  [["import", "once", "/nonexistent", "--data", "data", "--out", "run"], {}, 2, /<folder> \/nonexistent: no such folder$/],
  [["import", "once", "a-folder", "--data", "data", "--out", "run"], {}, 2, /a-folder\/user\/tok\.uid\.dat: no such file \(ONCE's user vocabulary\)$/],
  [["import", "once", "a-folder", "--data", "data", "--out", "a-file"], {}, 2, /--out a-file: a file, expected a folder$/],
  // values: the whole accepted range, once, in one line
  [["summarize", "--limit", "0"], {}, 2, /--limit: expected a whole number, at least 1 \(got '0'\)$/],
  [["generate", "--k", "0"], {}, 2, /--k: expected a whole number between 1 and 20 \(got '0'\)$/],
  [["profile", "--recent", "0"], {}, 2, /--recent: expected a whole number between 1 and 1000 \(got '0'\)$/],
  [["summarize", "--concurrency", "0"], {}, 2, /--concurrency: expected a whole number between 1 and 1000 \(got '0'\)$/],
  [["summarize", "--max-failure-share", "2"], {}, 2, /--max-failure-share: expected a number between 0 and 1 \(got '2'\)$/],
  [["summarize", "--limit", "99999999999999999999"], {}, 2, /^genre-mind summarize: --limit: expected a whole number, at least 1 \(got '9+'\)$/],
  [["summarize", "--limit", "-3"], {}, 2, /--limit: expected a whole number, at least 1 \(got '-3'\)$/],
  [["summarize", "--limit", "2.5"], {}, 2, /--limit: expected a whole number/],
  [["summarize", "--limit"], {}, 2, /--limit: missing its value <n>$/],
  [["summarize", "--lenient=yes"], {}, 2, /--lenient takes no value$/],
  [["summarize", "--limt", "3"], {}, 2, /unknown option '--limt' \(did you mean --limit\?\)$/],
  [["summarize", "--provider", "gpt"], {}, 2, /--provider: expected one of anthropic, anthropic-batch, openai, openai-batch, openai-compatible, offline \(got 'gpt'\)$/],
  [["validate", "data", "--cold-max", "0"], {}, 2, /--cold-max: expected a whole number, at least 1/],
  [["report", "run", "--sample", "0"], {}, 2, /--sample: expected a whole number between 1 and 100000/],
  [["download", "small", "--retries", "-1"], {}, 2, /--retries: expected a whole number between 0 and 100 \(got '-1'\)$/],
  [["download", "huge"], {}, 2, /<size>: expected one of demo, small, large \(got 'huge'\)$/],
  [["score"], {}, 2, /--truth: required: the labeled behaviors\.tsv; --pred: required$/],
  [["merge"], {}, 2, /--data: required.*; --out: required/],
  [["prompt", "merge", "N1", "--data", "data"], {}, 2, /unknown stage 'merge'/],
  [["prompt", "sumarize", "N1", "--data", "data"], {}, 2, /unknown stage 'sumarize' \(did you mean summarize\?\)/],
  [["prompt", "summarize", "N404", "--data", "data"], {}, 2, /no news N404 in the given splits$/],
  [["summarize", "--data", "data", "--provider", "openai-compatible"], {}, 2, /needs --base-url/],
  [["summarize", "--data", "data", "--out", "run", "--provider", "anthropic"], {}, 2, /no API key: set the environment variable ANTHROPIC_API_KEY/],
  // flags that cannot work together
  [["augment", "--data", "data", "--out", "run", "--records", "other"], {}, 2, /--records: augment writes its records to --out; include --out among --records/],
  [["summarize", "--data", "data", "--out", "run", "--provider", "openai-compatible", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--dry-run", "--count-tokens", "api"], {}, 2, /--count-tokens api needs --provider anthropic or anthropic-batch$/],
  [["summarize", "--data", "data", "--out", "run", "--provider", "openai-compatible", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--max-cost", "1"], {}, 2, /--max-cost needs the price of model m, and data\/pricing\.json has none/],
  // values from the environment name the variable
  [["summarize"], { GENRE_MIND_LIMIT: "abc" }, 2, /GENRE_MIND_LIMIT \(environment variable for --limit\): expected a whole number, at least 1 \(got 'abc'\)$/],
  [["summarize"], { GENRE_MIND_MAX_FAILURE_SHARE: "5%" }, 2, /GENRE_MIND_MAX_FAILURE_SHARE .*: expected a number between 0 and 1/],
  [["validate", "data"], { GENRE_MIND_LENIENT: "yes" }, 2, /GENRE_MIND_LENIENT \(environment variable for --lenient\): expected true or false \(got 'yes'\)$/],
  [["augment", "--chain", "maybe"], {}, 2, /--chain: expected true or false \(got 'maybe'\)$/],
  // a variable that names no option of any command would be ignored: refused, with the one meant
  [["summarize", "--data", "data"], { GENRE_MIND_DRYRUN: "true" }, 2, /^genre-mind summarize: environment variable GENRE_MIND_DRYRUN names no option of any command \(did you mean GENRE_MIND_DRY_RUN\?\)$/],
  [["validate", "data"], { GENRE_MIND_COLDMAX: "3" }, 2, /environment variable GENRE_MIND_COLDMAX names no option of any command \(did you mean GENRE_MIND_COLD_MAX\?\)$/],
  [["merge", "--data", "data", "--out", "run"], { GENRE_MIND_Force: "1" }, 2, /environment variable GENRE_MIND_Force names no option of any command \(did you mean GENRE_MIND_FORCE\?\)$/],
  [["summarize", "--data", "data"], { GENRE_MIND_CONFIG: "/nonexistent" }, 2, /GENRE_MIND_CONFIG \/nonexistent: no such file$/],
];

describe("bad input: one line, the documented exit code", () => {
  for (const [argv, env, code, message] of CASES) {
    const label = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv].join(" ");
    it(label, async () => {
      const r = await cli(argv, env);
      expect(r.code, r.stderr).toBe(code);
      expectOneLine(r, argv[0]!, message);
    });
  }

  it("names the config file and key of a bad value, top level or in a command's section", async () => {
    const dir = await mkdtemp(join(root, "config-"));
    await writeFile(join(dir, "genre-mind.config.json"), JSON.stringify({ limit: 0 }));
    let r = await runCliCaptured(["summarize"], { cwd: dir });
    expect(r.code).toBe(2);
    expectOneLine(r, "summarize", /genre-mind\.config\.json, key "limit": expected a whole number, at least 1 \(got '0'\)$/);

    await writeFile(join(dir, "other.json"), JSON.stringify({ profile: { recent: "many" } }));
    r = await runCliCaptured(["profile", "--config", "other.json"], { cwd: dir });
    expect(r.code).toBe(2);
    expectOneLine(r, "profile", /other\.json, key "profile\.recent": expected a whole number between 1 and 1000 \(got 'many'\)$/);

    await writeFile(join(dir, "typo.json"), JSON.stringify({ limt: 3 }));
    r = await runCliCaptured(["summarize", "--config", "typo.json"], { cwd: dir });
    expect(r.code).toBe(2);
    expectOneLine(r, "summarize", /config file typo\.json: unknown option 'limt' \(did you mean 'limit'\?\)$/);
  });

  it("exits 1 for bad data, naming file and line", async () => {
    const dir = await mkdtemp(join(root, "bad-"));
    await writeSplit(join(dir, "s"), NEWS, [["1", "U1", "11/15/2019 10:22:32 AM", "N1", "N1-7"]]);
    const r = await runCliCaptured(["profile", "--data", dir, "--out", join(dir, "run")], { cwd: root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/behaviors\.tsv:1 \[Impressions\]: 'N1-7'/);
  });

  it("lets be a variable of another command's option, and GENRE_MIND_DEBUG, as a config file's keys are", async () => {
    const r = await cli(["validate", "data"], { GENRE_MIND_PROVIDER: "anthropic", GENRE_MIND_DEBUG: "1", GENRE_MIND_LIMIT: "3" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
  });
});

describe("a left-out --data", () => {
  const repo = process.cwd();
  const DATA_COMMANDS = ["summarize", "profile", "generate", "describe", "pick", "factors-users", "factors-news", "augment"];

  for (const command of DATA_COMMANDS) {
    it(`${command}: refused with any provider but offline, --dry-run too, before anything is written`, async () => {
      const out = join(root, `no-data-${command}`);
      for (const provider of ["anthropic", "openai-compatible"]) {
        const r = await runCliCaptured([command, "--provider", provider, "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--out", out, "--dry-run"], { cwd: repo });
        expect(r.code, r.stderr).toBe(2);
        expectOneLine(r, command, new RegExp(`--data is required with --provider ${provider}: name the input splits .*; only --provider offline falls back to the bundled sample mind-data/sample$`));
      }
      expect(existsSync(out)).toBe(false);
    });
  }

  it("offline, a stage reads the bundled sample and says so on stderr; --data from the environment or the config file says nothing", async () => {
    const note = "note: no --data given: reading the bundled sample mind-data/sample (only --provider offline falls back to it)\n";
    const out = join(root, "sample-run");
    const r = await runCliCaptured(["summarize", "--out", out, "--limit", "1"], { cwd: repo });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(note);
    expect(r.stdout).toMatch(/summarize \(offline, offline\): 1 items, 1 done/);
    const dry = await runCliCaptured(["augment", "--out", out, "--dry-run"], { cwd: repo });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr.startsWith(note)).toBe(true);
    const prompt = await runCliCaptured(["prompt", "summarize", "N57041"], { cwd: repo });
    expect(prompt.code, prompt.stderr).toBe(0);
    expect(prompt.stderr).toBe(note);

    const fromEnv = await runCliCaptured(["summarize", "--out", out, "--limit", "1", "--provider", "anthropic", "--dry-run"], { cwd: repo, env: { GENRE_MIND_DATA: "mind-data/sample" } });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stderr).not.toMatch(/--data/);
    const dir = await mkdtemp(join(root, "data-config-"));
    await writeFile(join(dir, "genre-mind.config.json"), JSON.stringify({ data: join(repo, "mind-data/sample") }));
    const fromFile = await runCliCaptured(["summarize", "--out", out, "--limit", "1"], { cwd: dir });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stderr).toBe("");
  });
});
