// HTTP servers the tests start on 127.0.0.1 (the fake APIs, the fake download host) are closed after
// the test that started them, passed or failed: no server outlives its test to answer the next
// one, and no test file needs an afterEach of its own for it. The afterEach below registers on the
// first import in each test file, as temp.ts's afterAll does; a server started in a beforeAll would
// therefore be closed after the first test, which is why none is.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";

const open = new Set<Server>();

// A child process a test starts may import a fake that imports this; it runs no tests.
if (process.env.VITEST) {
  afterEach(async () => {
    for (const server of [...open]) await closeServer(server);
  });
}

/** Listens on 127.0.0.1 at a port the system picks, and returns that port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  open.add(server);
  return (server.address() as AddressInfo).port;
}

/**
 * Closes the server and the connections it holds (a keep-alive socket would hold `close` open).
 * A server already closed is left as it is, so a test may close its fake and the afterEach after it.
 */
export async function closeServer(server: Server): Promise<void> {
  open.delete(server);
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
}
