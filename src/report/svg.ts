// Charts as plain SVG strings: no chart library to install or load, nothing fetched when the
// report is opened offline, and the numbers are fixed when the report is written.

/** Escapes text for HTML and SVG (element content and quoted attributes). */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export interface Series {
  name: string;
  color: string;
  values: number[];
}

export interface ChartSpec {
  /** Names the chart for screen readers and tests. */
  id: string;
  labels: string[];
  series: Series[];
  /** Formats a value for axis ticks and tooltips (e.g. percentages). */
  format?: (v: number) => string;
  xTitle?: string;
  yTitle?: string;
}

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', sans-serif"`;

/** Round tick steps (1, 2, 5 × 10^n) so axes read naturally. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const defaultFormat = (v: number) => (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(1));

function legend(series: Series[], x: number, y: number): string {
  let at = x;
  return series
    .map((s) => {
      const item = `<rect x="${at}" y="${y - 9}" width="10" height="10" rx="2" fill="${s.color}"/><text x="${at + 14}" y="${y}" font-size="12" ${FONT} fill="#334155">${esc(s.name)}</text>`;
      at += 24 + s.name.length * 7;
      return item;
    })
    .join("");
}

/** Grouped vertical columns: histograms (title length, history length). */
export function columnChart(spec: ChartSpec): string {
  const fmt = spec.format ?? defaultFormat;
  const width = 600;
  const height = 280;
  const m = { top: 34, right: 12, bottom: 44, left: 52 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const max = Math.max(0, ...spec.series.flatMap((s) => s.values));
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1]!;
  const y = (v: number) => m.top + plotH - (top > 0 ? (v / top) * plotH : 0);
  const group = plotW / Math.max(1, spec.labels.length);
  const barW = Math.max(1, (group * 0.8) / spec.series.length);
  const parts: string[] = [];
  for (const t of ticks) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${y(t)}" y2="${y(t)}" stroke="#e2e8f0"/>`);
    parts.push(`<text x="${m.left - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11" ${FONT} fill="#64748b">${esc(fmt(t))}</text>`);
  }
  // Thin the x labels so they never overlap.
  const every = Math.max(1, Math.ceil(spec.labels.length / Math.floor(plotW / 28)));
  spec.labels.forEach((label, i) => {
    const gx = m.left + i * group + group * 0.1;
    spec.series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      const h = m.top + plotH - y(v);
      parts.push(
        `<rect class="bar" x="${(gx + j * barW).toFixed(2)}" y="${y(v).toFixed(2)}" width="${(barW - 0.5).toFixed(2)}" height="${h.toFixed(2)}" fill="${s.color}"><title>${esc(`${s.name} · ${label}: ${fmt(v)}`)}</title></rect>`,
      );
    });
    if (i % every === 0) {
      parts.push(`<text x="${(m.left + i * group + group / 2).toFixed(2)}" y="${m.top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT} fill="#64748b">${esc(label)}</text>`);
    }
  });
  parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${m.top + plotH}" y2="${m.top + plotH}" stroke="#94a3b8"/>`);
  if (spec.xTitle) parts.push(`<text x="${m.left + plotW / 2}" y="${height - 6}" text-anchor="middle" font-size="12" ${FONT} fill="#334155">${esc(spec.xTitle)}</text>`);
  if (spec.yTitle) parts.push(`<text transform="translate(13 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" ${FONT} fill="#334155">${esc(spec.yTitle)}</text>`);
  parts.push(legend(spec.series, m.left, 16));
  return `<svg class="chart" data-chart="${esc(spec.id)}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(spec.id)}" xmlns="http://www.w3.org/2000/svg">${parts.join("")}</svg>`;
}

/** Grouped horizontal bars: categorical distributions with long labels (topics, states, categories). */
export function barChart(spec: ChartSpec): string {
  const fmt = spec.format ?? defaultFormat;
  const width = 600;
  const labelW = Math.min(170, 12 + 6.6 * Math.max(4, ...spec.labels.map((l) => l.length)));
  const rowH = 8 + 10 * spec.series.length;
  const m = { top: 30, right: 56, bottom: 26, left: labelW };
  const plotW = width - m.left - m.right;
  const height = m.top + m.bottom + rowH * Math.max(1, spec.labels.length);
  const max = Math.max(0, ...spec.series.flatMap((s) => s.values));
  const ticks = niceTicks(max, 4);
  const top = ticks[ticks.length - 1]!;
  const x = (v: number) => m.left + (top > 0 ? (v / top) * plotW : 0);
  const parts: string[] = [];
  for (const t of ticks) {
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${m.top}" y2="${height - m.bottom}" stroke="#e2e8f0"/>`);
    parts.push(`<text x="${x(t)}" y="${height - m.bottom + 14}" text-anchor="middle" font-size="11" ${FONT} fill="#64748b">${esc(fmt(t))}</text>`);
  }
  spec.labels.forEach((label, i) => {
    const ry = m.top + i * rowH;
    parts.push(`<text x="${m.left - 6}" y="${ry + rowH / 2 + 4}" text-anchor="end" font-size="11.5" ${FONT} fill="#334155">${esc(label)}</text>`);
    spec.series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      const by = ry + 4 + j * 10;
      parts.push(
        `<rect class="bar" x="${m.left}" y="${by}" width="${Math.max(0, x(v) - m.left).toFixed(2)}" height="9" rx="1.5" fill="${s.color}"><title>${esc(`${s.name} · ${label}: ${fmt(v)}`)}</title></rect>`,
      );
      if (spec.series.length === 1) parts.push(`<text x="${x(v) + 4}" y="${by + 8}" font-size="10.5" ${FONT} fill="#64748b">${esc(fmt(v))}</text>`);
    });
  });
  parts.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#94a3b8"/>`);
  if (spec.xTitle) parts.push(`<text x="${width - m.right}" y="${height - 4}" text-anchor="end" font-size="12" ${FONT} fill="#334155">${esc(spec.xTitle)}</text>`);
  parts.push(legend(spec.series, m.left, 16));
  return `<svg class="chart" data-chart="${esc(spec.id)}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(spec.id)}" xmlns="http://www.w3.org/2000/svg">${parts.join("")}</svg>`;
}
