// Opens report.html in headless Chromium (Debian's `chromium`; .ci/run installs it) and reads the
// DOM after the page's script ran: charts drawn, examples paged, hostile LLM text inert.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeReport } from "../src/report/report.js";
import { makeReportFixture, type ReportFixture } from "./report.fixture.js";

const CHROMIUM = process.env.CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const run = promisify(execFile);

let f: ReportFixture;
let url: string;
const profiles: string[] = [];

/** The DOM after load, scripts run, as Chromium serializes it. No network: the page is a local file. */
async function dumpDom(pageUrl: string): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), "gm-chromium-"));
  profiles.push(profile);
  const { stdout } = await run(
    CHROMIUM!,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--dump-dom",
      pageUrl,
    ],
    { timeout: SLOW, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

const count = (html: string, re: RegExp) => html.match(re)?.length ?? 0;
/** What the hostile fixture text would do to the page if any of it ran. */
const PWNED = /<body[^>]*data-pwned/;
// Chromium takes seconds to start, many more on a loaded machine.
const SLOW = 120_000;

describe.skipIf(!CHROMIUM)("report in headless Chromium", () => {
  beforeAll(async () => {
    f = await makeReportFixture({ hostile: true });
    const { path } = await writeReport(f.runDir, { data: [f.data], sample: 40 });
    url = pathToFileURL(path).href;
  }, 60_000);

  afterAll(async () => {
    if (f) await rm(f.root, { recursive: true, force: true });
    for (const p of profiles) await rm(p, { recursive: true, force: true });
  });

  it("shows the charts and the first page of news examples, and runs none of the LLM text", { timeout: SLOW }, async () => {
    const dom = await dumpDom(url);
    expect(count(dom, /<svg class="chart"/g)).toBe(5);
    expect(count(dom, /<rect class="bar"/g)).toBeGreaterThan(50);
    // the page script rendered 10 news examples with both titles
    expect(count(dom, /<div class="ex" data-kind="news">/g)).toBe(10);
    expect(dom).toMatch(/<div class="l">original<\/div>/);
    expect(dom).toContain("page 1 of 4");
    // hostile text is shown as text, never parsed into elements or run
    expect(dom).not.toMatch(PWNED);
    expect(dom).not.toMatch(/<img[^>]*src="x"/);
  });

  it("pages through users with history, profile and pseudo-news side by side", { timeout: 2 * SLOW }, async () => {
    const page1 = await dumpDom(`${url}#tab=users&page=1`);
    const page2 = await dumpDom(`${url}#tab=users&page=2`);
    expect(page2).toContain("page 2 of 4");
    const ids = (dom: string) => [...dom.matchAll(/<div class="ex" data-kind="user"><div class="id">(U\d+)/g)].map((m) => m[1]);
    expect(ids(page1)).toHaveLength(10);
    expect(ids(page2)).toHaveLength(10);
    expect(ids(page2).filter((id) => ids(page1).includes(id))).toEqual([]);
    expect(page1).toContain("recent clicks (latest first)");
    expect(page1).toMatch(/<h4>pseudo-news<\/h4><ul><li>/);
    expect(page1).toMatch(/<span class="pill t">/);
    expect(page1).not.toMatch(PWNED);
  });

  it("says \"1 click\", not \"1 clicks\"", { timeout: SLOW }, async () => {
    const dom = await dumpDom(`${url}#tab=users&q=${encodeURIComponent('"historylength":1,')}`);
    expect(dom).toContain("· 1 click in history");
    expect(dom).not.toContain("· 1 clicks");
  });

  it("still draws the examples when the filter in the address is not valid percent-encoding", { timeout: SLOW }, async () => {
    const dom = await dumpDom(`${url}#tab=news&q=100%`);
    expect(dom).toContain("page 1 of 1");
    expect(dom).toMatch(/<span id="count" class="muted">\d+ shown of 40 sampled/);
  });

  it("lists failures with their reasons, including a hostile last answer as plain text", { timeout: SLOW }, async () => {
    const dom = await dumpDom(`${url}#tab=failures`);
    expect(count(dom, /<div class="ex" data-kind="failure">/g)).toBe(2);
    expect(dom).toMatch(/<div class="l">reason<\/div><div>invalid<\/div>/);
    expect(dom).toContain("&lt;img src=x onerror=");
    expect(dom).not.toMatch(PWNED);
  });
});
