// Bounded concurrency over a stream: an item is pulled only once a slot is free, so a lazily built
// stream of requests is never read far ahead of what is in flight.

/** At most n holders at once; waiters are served first come, first served. */
export class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Runs `work` on each item, each holding one of the slots from start to end (it may give its slot
 * back and take one again in between). The first error thrown by `work` stops the pulling and is
 * thrown once every started item has ended; `stopped()` turning true stops the pulling too.
 */
export async function forEachConcurrently<T>(
  items: AsyncIterable<T>,
  slots: Slots,
  work: (item: T) => Promise<void>,
  stopped: () => boolean = () => false,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const iterator = items[Symbol.asyncIterator]();
  try {
    for (;;) {
      // A slot first, then the item: a run that stops pulling leaves no item taken and dropped.
      await slots.acquire();
      if (failure || stopped()) {
        slots.release();
        await iterator.return?.();
        break;
      }
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (e) {
        slots.release();
        throw e;
      }
      if (next.done) {
        slots.release();
        break;
      }
      const item = next.value;
      const done: Promise<void> = work(item)
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          slots.release();
          running.delete(done);
        });
      running.add(done);
    }
  } finally {
    // Items already started finish (their answers are paid for), even when the stream failed.
    await Promise.all(running);
  }
  if (failure) throw failure.error;
}
