/** Medians and per-pass ratios for benchmark figures. @module */

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Rounds for display and JSON: keeps 3 significant digits below 100, whole numbers above. */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x);
  if (a >= 10) return Math.round(x * 10) / 10;
  if (a >= 1) return Math.round(x * 100) / 100;
  return Math.round(x * 1000) / 1000;
}

/** Two builds measured in the same rounds: their medians, and the median of the round-by-round differences. */
export interface PairedChange {
  base: number;
  current: number;
  /** Median of current − base, round by round. */
  change: number;
  /** Rounds in which current was below base. */
  lower: number;
  rounds: number;
}

export function pairedChange(base: readonly number[], current: readonly number[]): PairedChange {
  const n = Math.min(base.length, current.length);
  const diffs = Array.from({ length: n }, (_, i) => current[i]! - base[i]!);
  return { base: median(base), current: median(current), change: median(diffs), lower: diffs.filter((d) => d < 0).length, rounds: n };
}
