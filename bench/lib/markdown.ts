/** Markdown helpers for the generated report. @module */

export function table(columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>, align?: string): string {
  const cell = (v: string | number | null | undefined): string => (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? '–' : String(v).replace(/\|/g, '\\|'));
  const a = align ?? 'l' + 'r'.repeat(columns.length - 1);
  const sep = columns.map((_, i) => (a[i] === 'r' ? '---:' : '---'));
  return [`| ${columns.join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function num(v: number | null | undefined, digits?: number): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toLocaleString('en-US') : a >= 100 ? String(Math.round(v)) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function ratio(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}×`;
}
