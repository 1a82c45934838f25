// Download progress: a redrawn bar on a terminal, a few plain lines in logs and CI.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export class Progress {
  private readonly started: number;
  private lastDraw = 0;
  private lastStep = -1;
  private startBytes: number | undefined;

  constructor(
    private readonly out: ProgressStream,
    private readonly label: string,
    private readonly now: () => number = Date.now,
  ) {
    // From the clock the rate is measured with (a field initializer would run before `now` is set).
    this.started = now();
  }

  /** `done` counts bytes already on disk, so a resumed download starts part-way along the bar. */
  update(done: number, total: number | undefined): void {
    this.startBytes ??= done;
    if (this.out.isTTY) {
      const t = this.now();
      if (t - this.lastDraw < 100 && done !== total) return;
      this.lastDraw = t;
      this.out.write(`\r${this.line(done, total, true)}\u001b[K`);
      return;
    }
    // Not a terminal: one line per tenth, so a log shows it is moving without thousands of lines.
    const step = total ? Math.floor((done / total) * 10) : Math.floor(done / (100 * 1024 * 1024));
    if (step === this.lastStep) return;
    this.lastStep = step;
    this.out.write(`${this.line(done, total, false)}\n`);
  }

  /** Ends the bar's line on a terminal (plain mode has already ended its lines). */
  finish(): void {
    if (this.out.isTTY && this.lastDraw > 0) this.out.write("\n");
  }

  private line(done: number, total: number | undefined, bar: boolean): string {
    const seconds = Math.max(0.001, (this.now() - this.started) / 1000);
    const rate = `${formatBytes(Math.max(0, done - (this.startBytes ?? 0)) / seconds)}/s`;
    if (!total) return `  ${this.label}  ${formatBytes(done)}  ${rate}`;
    const share = Math.min(1, done / total);
    const pct = `${Math.floor(share * 100)}%`.padStart(4);
    const sizes = `${formatBytes(done)} / ${formatBytes(total)}`;
    if (!bar) return `  ${this.label}  ${pct}  ${sizes}`;
    const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - this.label.length - 50));
    const filled = Math.round(share * width);
    return `  ${this.label}  [${"#".repeat(filled)}${".".repeat(width - filled)}] ${pct}  ${sizes}  ${rate}`;
  }
}
