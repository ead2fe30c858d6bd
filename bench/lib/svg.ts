/**
 * A horizontal grouped bar chart as plain SVG text (no chart library): one row per label, one bar per
 * series, each bar labelled with its value.
 * @module
 */

export interface ChartRow {
  label: string;
  /** One value per series; null leaves a gap. */
  values: Array<number | null>;
  emphasis?: boolean;
}

export interface Chart {
  title: string;
  subtitle?: string;
  unit: string;
  series: string[];
  rows: ChartRow[];
}

const COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#9d755d'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  return v >= 100 ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** A "nice" axis maximum (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k) at or above `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function barChart(c: Chart): string {
  // About 7 px per character at 12 px (bold a little wider), plus a margin.
  const labelW = Math.max(160, 24 + Math.ceil(7.4 * Math.max(0, ...c.rows.map((r) => r.label.length))));
  const plotW = 560;
  const barH = 9;
  const gap = 8;
  const top = c.subtitle ? 70 : 54;
  const rowH = c.series.length * barH + gap;
  const height = top + c.rows.length * rowH + 40;
  const width = labelW + plotW + 90;
  const all = c.rows.flatMap((r) => r.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const max = niceMax(Math.max(0, ...all));
  const x = (v: number): number => labelW + (Math.max(0, v) / max) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="600">${esc(c.title)}</text>`);
  if (c.subtitle) out.push(`<text x="12" y="40" fill="#555">${esc(c.subtitle)}</text>`);
  // Legend.
  let lx = labelW;
  const ly = top - 18;
  c.series.forEach((s, i) => {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLOURS[i % COLOURS.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${esc(s)}</text>`);
    lx += 24 + s.length * 7;
  });
  // Grid.
  for (let t = 0; t <= 5; t++) {
    const v = (max / 5) * t;
    const gx = x(v);
    out.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + c.rows.length * rowH}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${gx}" y="${top + c.rows.length * rowH + 16}" text-anchor="middle" fill="#555">${fmt(v)}</text>`);
  }
  out.push(`<text x="${labelW + plotW / 2}" y="${top + c.rows.length * rowH + 32}" text-anchor="middle" fill="#555">${esc(c.unit)}</text>`);
  c.rows.forEach((r, ri) => {
    const y0 = top + ri * rowH;
    out.push(`<text x="${labelW - 8}" y="${y0 + (c.series.length * barH) / 2 + 4}" text-anchor="end"${r.emphasis ? ' font-weight="600"' : ''}>${esc(r.label)}</text>`);
    r.values.forEach((v, si) => {
      if (v === null || !Number.isFinite(v)) return;
      const y = y0 + si * barH;
      out.push(`<rect x="${labelW}" y="${y}" width="${Math.max(0.5, x(v) - labelW).toFixed(1)}" height="${barH - 1}" fill="${COLOURS[si % COLOURS.length]}"/>`);
      out.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + barH - 1.5}" font-size="9" fill="#333">${fmt(v)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
