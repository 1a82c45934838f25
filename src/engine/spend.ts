// What the answers stored in a run folder were billed, priced per answerer: the provider and model
// each record or failure line names (a folder may hold several), at that provider's prices and in
// its mode (a batch provider gets its family's discount). One place for it: --max-cost counts the
// spend before it sends (budget.ts), and merge and report show it as a stage's cost.
import { providerSpec } from "../providers/registry.js";
import { billed, priceUsd, type ModelInfo } from "./cost.js";
import { IMPORTED, type Usage } from "./types.js";

type Price = { info?: ModelInfo; mode: "live" | "batch"; free: boolean };

export class Spend {
  /** Dollars of the lines whose model has a price. */
  usd = 0;
  /** `provider / model` of billed lines with no price: their dollars are unknown, not 0. */
  readonly unpriced = new Set<string>();
  /** One price lookup per answerer: a MIND-large profile.jsonl has ~700k lines from one or two. */
  private readonly prices = new Map<string, Price>();

  private priceOf(provider: string, model: string): Price {
    const key = `${provider}\t${model}`;
    let p = this.prices.get(key);
    if (!p) {
      // An imported answer was billed elsewhere, an offline one never: both cost nothing here.
      const spec = provider === IMPORTED ? undefined : providerSpec(provider);
      const free = !spec || spec.mode === "offline";
      this.prices.set(key, (p = { info: free ? undefined : spec.price?.(model), mode: spec?.mode === "batch" ? "batch" : "live", free }));
    }
    return p;
  }

  /** A record or failure line: what its answerer billed for it. */
  add(provider: string, model: string, usage: Usage): void {
    const p = this.priceOf(provider, model);
    if (p.free) return;
    const usd = priceUsd(usage, p.info, p.mode);
    if (usd !== undefined) this.usd += usd;
    else if (billed(usage)) this.unpriced.add(`${provider} / ${model}`);
  }

  /** The dollars, or null when a billed line's model has no price (a sum without it would understate). */
  total(): number | null {
    return this.unpriced.size > 0 ? null : this.usd;
  }
}
