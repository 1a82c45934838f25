// The live progress line: redrawn in place on a terminal, a plain periodic line in logs and CI.
export interface ProgressSnapshot {
  done: number;
  failed: number;
  /** Items this run must answer (cached ones excluded): an upper bound while `checking`. */
  total: number;
  /** Items found answered in the store so far. */
  stored?: number;
  /** The items are still being checked against the store (a resumed run finds them as it goes). */
  checking?: boolean;
  costUsd: number;
  /** Set when rate limits are slowing the run (retry-after, low remaining). */
  throttled?: boolean;
}

export interface ProgressOptions {
  /** Plain-line interval on a non-TTY (default 10 s). */
  plainIntervalMs?: number;
  /** Redraw interval on a TTY (default 250 ms). */
  ttyIntervalMs?: number;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  private lastPlainDone = -1;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
    private readonly snapshot: () => ProgressSnapshot,
    private readonly options: ProgressOptions = {},
  ) {
    this.tty = out.isTTY === true;
  }

  start(): void {
    const every = this.tty ? (this.options.ttyIntervalMs ?? 250) : (this.options.plainIntervalMs ?? 10_000);
    this.timer = setInterval(() => this.render(), every);
    this.timer.unref();
  }

  line(): string {
    const s = this.snapshot();
    const elapsed = performance.now() - this.started;
    const finished = s.done + s.failed;
    const rate = elapsed > 0 ? (finished * 1000) / elapsed : 0;
    const eta = rate > 0 ? ((s.total - finished) / rate) * 1000 : Infinity;
    const parts = [
      `${this.label} ${finished.toLocaleString("en-US")}/${s.total.toLocaleString("en-US")}`,
      `${rate.toFixed(1)}/s`,
      `ETA ${finished >= s.total ? "0s" : duration(eta)}`,
      `failed ${s.failed}`,
      `$${s.costUsd.toFixed(4)}`,
    ];
    // Without this a resumed run whose items are all stored shows "0/176,531 · ETA ?" until it ends.
    if (s.checking && s.stored) parts.push(`${s.stored.toLocaleString("en-US")} already stored (still checking)`);
    if (s.throttled) parts.push("throttled by rate limits");
    return parts.join(" · ");
  }

  private render(): void {
    if (this.tty) {
      this.out.write(`\r\x1b[2K${this.line()}`);
      return;
    }
    const s = this.snapshot();
    if (s.done + s.failed === this.lastPlainDone) return;
    this.lastPlainDone = s.done + s.failed;
    this.out.write(`${this.line()}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) this.out.write(`\r\x1b[2K`);
  }
}
