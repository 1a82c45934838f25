// What a chart of the report is, and the small helpers the stages' charts share (report/svg.ts draws).
import type { Catalog } from "../mind/catalog.js";
import { MIND_CATEGORIES } from "../stages/vocab.js";
import { barChart } from "./svg.js";
export interface Figure {
  id: string;
  title: string;
  note: string;
  svg: string;
}

export const COLORS = { before: "#94a3b8", after: "#2563eb", pseudo: "#ea580c", pick: "#16a34a", clicks: "#64748b", topic: "#0d9488", region: "#7c3aed" };

export const int = (n: number) => n.toLocaleString("en-US");
export const pct = (v: number) => `${v.toFixed(v >= 10 ? 0 : 1)}%`;
export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
// Loops, not Math.max(...xs): a spread of MIND-large's 100k+ values overflows the argument limit.
export const maxOf = (xs: number[]) => xs.reduce((m, x) => (x > m ? x : m), -Infinity);
export const minOf = (xs: number[]) => xs.reduce((m, x) => (x < m ? x : m), Infinity);

export function histogram(values: number[], cap: number, min = 0): number[] {
  const bins = new Array<number>(cap - min + 1).fill(0);
  for (const v of values) bins[Math.min(cap, Math.max(min, v)) - min]!++;
  return bins;
}

export function shares(counts: Map<string, number>, labels: string[]): number[] {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return labels.map((l) => (total ? ((counts.get(l) ?? 0) / total) * 100 : 0));
}

const MAX_TEXT = 600;

/** Long text in the example browser is cut: the page stays small at MIND scale. */
export function clip(text: string | undefined, max = MAX_TEXT): string | undefined {
  if (text === undefined) return undefined;
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Categories of the news the given users clicked (their catalog history). */
export function clickCategories(catalog: Catalog | undefined, userIds: Iterable<string>): Map<string, number> | undefined {
  if (!catalog) return undefined;
  const clicks = new Map<string, number>();
  for (const userId of userIds) {
    for (const id of catalog.users.get(userId)?.history ?? []) {
      const category = catalog.news.get(id)?.category;
      if (category) clicks.set(category, (clicks.get(category) ?? 0) + 1);
    }
  }
  return clicks.size > 0 ? clicks : undefined;
}

/** What a stage added to cold users (pseudo-news, picks), per category, against the same users' real clicks. */
export function categoryMixFigure(spec: { id: string; title: string; note: string; added: Map<string, number>; addedName: string; color: string; clicks?: Map<string, number> }): Figure {
  const { added, clicks } = spec;
  const used = MIND_CATEGORIES.filter((c) => (added.get(c) ?? 0) > 0 || (clicks?.get(c) ?? 0) > 0);
  const labels = used.sort((a, b) => (added.get(b) ?? 0) + (clicks?.get(b) ?? 0) - ((added.get(a) ?? 0) + (clicks?.get(a) ?? 0)));
  const series = [{ name: spec.addedName, color: spec.color, values: shares(added, labels) }];
  if (clicks) series.push({ name: "real clicks of the same users", color: COLORS.clicks, values: shares(clicks, labels) });
  return { id: spec.id, title: spec.title, note: spec.note, svg: barChart({ id: spec.id, labels, series, format: pct }) };
}
