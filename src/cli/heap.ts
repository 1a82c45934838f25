// V8 lets the old generation grow to up to 4× what was live at its last full collection, by a factor
// it picks from recent allocation and collection speeds. After a stage has loaded a MIND-large
// catalog (a burst of allocation) it tends to pick the top of that range, and the first full
// collection of the run comes only when the heap is ~4× its live size: generate --chain's offline
// baseline at MIND-large peaked anywhere between 816 and 1,039 MB of RSS from one run to the next
// with the same input and code, and 674–696 MB with a fixed factor of 1.5, at the same speed
// (docs/benchmarks.md). Node's heap limit is left alone; a user who sets the factor keeps theirs.
import { setFlagsFromString } from "node:v8";

const FLAG = "heap-growing-percent";
/** A factor of 1.5. */
const DEFAULT_PERCENT = 50;
/**
 * merge keeps most of what it reads live until its audit (records, users, what each split got), so
 * its peak is mostly live heap times the factor: 1.25 holds it near 900 MB instead of 960–990 MB
 * for ~5% more CPU, where generate --chain --dry-run would pay ~20% for 30 MB.
 */
const PERCENT_BY_COMMAND: Readonly<Record<string, number>> = { merge: 25 };

export function heapGrowingPercent(command: string | undefined): number {
  return (command !== undefined ? PERCENT_BY_COMMAND[command] : undefined) ?? DEFAULT_PERCENT;
}

/** Sets V8's heap growing factor for the command about to run, unless node's own options set it. */
export function tuneHeapGrowth(command: string | undefined, nodeOptions: string | undefined, execArgv: readonly string[] = process.execArgv): void {
  if ([nodeOptions ?? "", ...execArgv].some((a) => a.includes(FLAG))) return;
  setFlagsFromString(`--${FLAG}=${heapGrowingPercent(command)}`);
}
