/** A problem in an input file, located precisely enough for a user to open the file and fix it. */
export class MindFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string | undefined,
    readonly problem: string,
  ) {
    super(`${file}:${line}${field ? ` [${field}]` : ""}: ${problem}`);
    this.name = "MindFormatError";
  }
}

/** What a `--lenient` read skipped; the first few are kept so the user can find them. */
export class SkipLog {
  count = 0;
  readonly examples: MindFormatError[] = [];
  constructor(private readonly keep = 5) {}
  add(err: MindFormatError): void {
    this.count++;
    if (this.examples.length < this.keep) this.examples.push(err);
  }
}
