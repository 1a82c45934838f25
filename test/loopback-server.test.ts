// The suite's server lifecycle (test/helpers/loopback-server.ts): the fake APIs rely on it to be
// closed after each test, since no test file closes them itself any more. The tests run in order,
// and the second checks what the afterEach did to the first's servers.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createFakeAnthropic } from "./fakes/anthropic-api.js";
import { startOpenAiFake } from "./fakes/openai-api.js";
import { closeServer, listenOnLoopback } from "./helpers/loopback-server.js";

const started: { plain?: Server; anthropic?: string; openai?: string } = {};

const reaches = (url: string) =>
  fetch(url).then(
    () => true,
    () => false,
  );

describe("servers on 127.0.0.1", () => {
  it("listen on 127.0.0.1 at the port returned, and close twice without an error", async () => {
    const plain = createServer((_req, res) => res.end("ok"));
    const port = await listenOnLoopback(plain);
    expect(plain.address()).toMatchObject({ address: "127.0.0.1", port } satisfies Partial<AddressInfo>);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("ok");
    const anthropic = await createFakeAnthropic();
    const openai = await startOpenAiFake();
    expect(await reaches(`${anthropic.url}/_fake/stats`)).toBe(true);
    Object.assign(started, { plain, anthropic: anthropic.url, openai: openai.baseUrl });
    // A test may close its fake before the end; closing what is already closed must not throw.
    await openai.close();
    await closeServer(plain);
    await closeServer(plain);
  });

  it("are closed after the test that started them", async () => {
    expect(started.plain?.listening).toBe(false);
    expect(await reaches(`${started.anthropic}/_fake/stats`)).toBe(false);
    expect(await reaches(`${started.openai}/models`)).toBe(false);
  });
});
