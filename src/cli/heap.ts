// V8 lets the old generation grow to up to 4× what was live at its last full collection, by a factor
// it picks from recent allocation and collection speeds. After a stage has loaded a MIND-large
// catalog (a burst of allocation) it tends to pick the top of that range, and the first full
// collection of the run comes only when the heap is ~4× its live size: generate --chain's offline
// baseline at MIND-large peaked anywhere between 816 and 1,039 MB of RSS from one run to the next
// with the same input and code. A fixed factor of 1.5 made it 691 MB at the same speed
// (docs/benchmarks.md). Node's heap limit is left alone; a user who sets the factor keeps theirs.
import { setFlagsFromString } from "node:v8";

export const HEAP_GROWING_PERCENT = 50;
const FLAG = "heap-growing-percent";

let tuned = false;

/** Sets V8's heap growing factor once per process, unless node's own options already set it. */
export function tuneHeapGrowth(nodeOptions: string | undefined, execArgv: readonly string[] = process.execArgv): void {
  if (tuned) return;
  tuned = true;
  if ([nodeOptions ?? "", ...execArgv].some((a) => a.includes(FLAG))) return;
  setFlagsFromString(`--${FLAG}=${HEAP_GROWING_PERCENT}`);
}
