// What the answers stored in a run folder were billed, priced per answerer: the provider and model
// each record or failure line names (a folder may hold several), at that provider's prices and in
// its mode (a batch provider gets its family's discount). One place for it: --max-cost counts the
// spend before it sends (budget.ts), and merge and report show it as a stage's cost.
import { providerSpec } from "../providers/registry.js";
import { addUsage, billed, priceUsd, zeroUsage, type ModelInfo } from "./cost.js";
import { IMPORTED, type Usage } from "./types.js";

interface Answerer {
  /** `provider / model`, as an unpriced answerer is named. */
  name: string;
  info?: ModelInfo;
  mode: "live" | "batch";
  /** Imported (billed elsewhere) or offline (never billed): its lines cost nothing here. */
  free: boolean;
  /** Its lines' tokens, summed. */
  usage: Usage;
}

export class Spend {
  /**
   * By provider, then model: a MIND-large profile.jsonl has ~700k lines from one or two answerers,
   * so its tokens are summed and priced once, not per line. A price is linear in the token counts
   * and integer sums are exact, so this is the per-line sum's figure without the rounding error a
   * float sum of 700k prices piles up (the two can differ in the last digits; this one is exact
   * to a rounding or two).
   */
  private readonly answerers = new Map<string, Map<string, Answerer>>();

  /** A record or failure line: what its answerer billed for it. */
  add(provider: string, model: string, usage: Usage): void {
    let models = this.answerers.get(provider);
    if (!models) this.answerers.set(provider, (models = new Map()));
    let a = models.get(model);
    if (!a) {
      const spec = provider === IMPORTED ? undefined : providerSpec(provider);
      const free = !spec || spec.mode === "offline";
      a = { name: `${provider} / ${model}`, info: free ? undefined : spec.price?.(model), mode: spec?.mode === "batch" ? "batch" : "live", free, usage: zeroUsage() };
      models.set(model, a);
    }
    if (!a.free) addUsage(a.usage, usage);
  }

  private *billedAnswerers(): Generator<Answerer> {
    for (const models of this.answerers.values()) for (const a of models.values()) if (!a.free && billed(a.usage)) yield a;
  }

  /** Dollars of the answerers that have a price. */
  get usd(): number {
    let usd = 0;
    for (const a of this.billedAnswerers()) usd += priceUsd(a.usage, a.info, a.mode) ?? 0;
    return usd;
  }

  /** `provider / model` of billed answerers with no price: their dollars are unknown, not 0. */
  get unpriced(): ReadonlySet<string> {
    return new Set([...this.billedAnswerers()].filter((a) => !a.info).map((a) => a.name));
  }

  /** The dollars, or null when a billed line's model has no price (a sum without it would understate). */
  total(): number | null {
    return this.unpriced.size > 0 ? null : this.usd;
  }
}
