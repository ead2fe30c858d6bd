/**
 * Where benchmark results go: each bench writes bench/results/<name>.json, and bench/report.ts renders
 * docs/benchmarks.md with one section per file that exists. A file any bench may write:
 * `{ bench, title, generatedAt, quick, machine, versions, … }`; files report.ts has no renderer for are
 * shown through their optional `summary` (markdown) and `tables: [{ title, columns, rows, note }]`.
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ROOT } from './procs.js';

export const RESULTS_DIR = `${ROOT}bench/results`;

export interface GenericTable {
  title?: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
  note?: string;
}

export interface ResultsFile {
  bench: string;
  title: string;
  generatedAt: string;
  quick?: boolean;
  summary?: string;
  tables?: GenericTable[];
  [key: string]: unknown;
}

/**
 * Writes bench/results/<name>.json (unless `name` is null: a partial run must not replace the results
 * the docs come from) and `extra`, when given; returns the paths written.
 */
export function writeResults(name: string | null, data: ResultsFile, extra?: string): string[] {
  const text = JSON.stringify(data, null, 2) + '\n';
  const paths = name === null ? [] : [`${RESULTS_DIR}/${name}.json`];
  if (extra) paths.push(resolve(extra));
  for (const p of paths) {
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return paths;
}
