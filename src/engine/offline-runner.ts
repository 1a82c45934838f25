// The offline runner: each request's own deterministic answer (LlmRequest.offline), with nothing to
// limit or retry; still validated and stored through the session like a model's answer.
import { zeroUsage } from "./cost.js";
import type { PendingItem } from "./plan.js";
import type { StageSession } from "./session.js";

/**
 * Answers accepted before their lines are waited for: the appender coalesces them into few writes.
 * Few, so an item's request and answer die young: held across two scavenges they are promoted, and
 * at MIND-large the old space then grows by a few KB per item until a full GC.
 */
const IN_FLIGHT = 32;

export async function runOffline(session: StageSession, items: AsyncIterable<PendingItem>, interrupt?: AbortSignal): Promise<void> {
  let inFlight: Promise<unknown>[] = [];
  // Pulled one at a time (no for-await, whose exit would close the stream): on Ctrl-C the items
  // not pulled yet are the engine's to count as left, as after a live run.
  const pending = items[Symbol.asyncIterator]();
  for (;;) {
    // An offline answer takes no time to wait for: stop at once, before the next item.
    if (interrupt?.aborted) break;
    const next = await pending.next();
    if (next.done) break;
    const item = next.value;
    let text: string;
    try {
      text = item.req.offline();
    } catch (e) {
      item.answers = 1;
      await session.fail(item, "invalid", `offline answer failed: ${(e as Error).message}`);
      continue;
    }
    // Every one is awaited in the end, so the counts are final and a failed write is not lost.
    inFlight.push(session.accept(item, { text, stop: "end", usage: zeroUsage() }));
    if (inFlight.length >= IN_FLIGHT) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
}
