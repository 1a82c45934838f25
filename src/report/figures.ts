// What a chart of the report is, and the small helpers the stages' charts share (report/svg.ts draws).
export interface Figure {
  id: string;
  title: string;
  note: string;
  svg: string;
}

export const COLORS = { before: "#94a3b8", after: "#2563eb", pseudo: "#ea580c", clicks: "#64748b", topic: "#0d9488", region: "#7c3aed" };

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
