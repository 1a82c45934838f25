// A clean stop on Ctrl-C: the first SIGINT or SIGTERM asks the run to stop (it sends nothing more,
// waits for the answers in flight, stores them and prints its summary); a second one exits at once,
// leaving the store as consistent as after kill -9. Only the command that runs a stage listens.

/** Exit status of a run stopped by a signal: 128 + the signal's number, as shells report it. */
export const INTERRUPTED_EXIT: Record<"SIGINT" | "SIGTERM", number> = { SIGINT: 130, SIGTERM: 143 };

export interface Interrupt {
  /** Aborted at the first signal; its reason is the signal's name. */
  readonly signal: AbortSignal;
  /** Stops listening (the process's default handling comes back). */
  dispose(): void;
}

export function listenForInterrupt(stderr: NodeJS.WritableStream, waitSeconds: number): Interrupt {
  const controller = new AbortController();
  const on = (name: "SIGINT" | "SIGTERM") => {
    if (controller.signal.aborted) {
      stderr.write(`\n${name} again: exiting now; the next run resumes from what is stored\n`);
      process.exit(INTERRUPTED_EXIT[name]);
    }
    stderr.write(`\n${name}: sending nothing more; waiting up to ${waitSeconds} s for the answers in flight (${name === "SIGINT" ? "Ctrl-C" : name} again exits at once)\n`);
    controller.abort(name);
  };
  const onInt = () => on("SIGINT");
  const onTerm = () => on("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    },
  };
}
