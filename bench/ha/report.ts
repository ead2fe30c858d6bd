/**
 * Renders docs/ha-report.md from bench/results/ha.json (the numbers bench/ha.ts measured). Run alone to
 * re-render without measuring: `node --conditions=tether-source --import tsx bench/ha/report.ts`.
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../lib/procs.js';
import { table, num, ratio } from '../lib/markdown.js';
import type { Machine } from '../lib/machine.js';
import type { ThroughputRow } from './throughput.js';
import type { ClusterFaultResults, CheckSummary } from './cluster-faults.js';
import type { HaproxyFaultResults } from './haproxy-faults.js';

export interface HaResults {
  generatedAt: string;
  command: string;
  machine: Machine;
  versions: Record<string, string>;
  throughput: { connections: number; durationS: number; passes: number; rows: ThroughputRow[] };
  cluster: ClusterFaultResults;
  haproxy: HaproxyFaultResults | { skipped: string };
}

export const RESULTS_FILE = `${ROOT}bench/results/ha.json`;
export const REPORT_FILE = `${ROOT}docs/ha-report.md`;

const ms = (v: number[]): string => (v.length === 0 ? '–' : v.length === 1 ? `${v[0]}` : `${v[0]} / ${v[Math.floor(v.length / 2)]} / ${v[v.length - 1]}`);
const verdict = (c: CheckSummary): string =>
  `${c.acknowledged} acknowledged adds checked: **${c.lost} lost**, ${c.phantom} phantom, ${c.unreadable} sessions unreadable (${c.indeterminate} indeterminate requests)`;

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

function throughputSection(r: HaResults): string {
  const t = r.throughput;
  const groups = new Map<string, ThroughputRow[]>();
  for (const x of t.rows) {
    const k = `${x.workers} ${x.scenario}`;
    groups.set(k, [...(groups.get(k) ?? []), x]);
  }
  const rpsOf = (w: number, s: string): number => mean((groups.get(`${w} ${s}`) ?? []).map((x) => x.rps));
  const rows = [...groups.values()].sort((a, b) => a[0]!.workers - b[0]!.workers || a[0]!.scenario.localeCompare(b[0]!.scenario)).map((g) => {
    const x = g[0]!;
    const rps = g.map((y) => y.rps);
    return [x.workers, x.scenario === 'read' ? 'GET /api/cart' : 'POST /api/cart/items', num(mean(rps)), `${num(Math.min(...rps))}–${num(Math.max(...rps))}`,
      num(mean(g.map((y) => y.p50Ms))), num(mean(g.map((y) => y.p99Ms))), num(mean(g.map((y) => y.cpuUsPerRequest))),
      num(mean(g.map((y) => y.primaryCpuUsPerRequest))), g.reduce((a, y) => a + y.non2xx, 0), g.reduce((a, y) => a + y.errors, 0)];
  });
  return [
    '## Throughput: 1 worker vs 2 workers',
    '',
    `The shop as \`npm start\` runs it (primary + workers, SQLite store), ${t.connections} keep-alive connections, one session each, ${t.durationS} s per figure after a 2 s warm-up, ${t.passes} passes in alternating order (means; the range is over passes). The load generator (autocannon) runs on the same ${r.machine.cores} cores, so 2 workers compete with it and with anything else running: read the ratio as what this machine gave at this load average, not as the scaling limit.`,
    '',
    table(['workers', 'request', 'req/s', 'range', 'p50 ms', 'p99 ms', 'CPU µs/req (all processes)', 'of which primary', 'non-2xx', 'errors'], rows),
    '',
    `2 workers / 1 worker: reads ${ratio(rpsOf(2, 'read') / rpsOf(1, 'read'))}, writes ${ratio(rpsOf(2, 'write') / rpsOf(1, 'write'))}. SQLite lets one process write a file at a time, so a second worker adds lock waits to writes; reads run in parallel.`,
  ].join('\n');
}

function clusterSection(c: ClusterFaultResults): string {
  const d = c.drain;
  return [
    '## Faults on one machine (cluster of 2 workers, SQLite)',
    '',
    `${c.clients} clients each add one item at a time to their cart (15 ms between requests), one keep-alive connection each.`,
    '',
    '### SIGKILL of a worker',
    '',
    table(['fault', 'connection errors', 'other errors', 'clients affected', 'kill → first success, ms (min / median / max)', 'replacement answering after, ms'],
      c.kills.map((k, i) => [`${i + 1}: kill -9 ${k.victim}`, k.connectionErrors, k.otherErrors, k.affected, ms(k.recoveryMs), k.replacedMs])),
    '',
    'Clients keep the connection they moved to: after a kill, every reconnected client stays on the surviving worker until its connection closes (new connections are routed by session again), so the next kill of that worker affects every client.',
    '',
    `After all kills: ${verdict(c.killCheck)}.`,
    '',
    '### SIGTERM of the primary (drain), then a restart',
    '',
    table(['exit code', 'signal → exit, ms', 'acknowledged before exit', 'connection errors', 'other errors'],
      [[d.exitCode, d.stopMs, d.acknowledged, d.connectionErrors, d.otherErrors]]),
    '',
    `After the restart: ${verdict(d.check)}. The load of the kill rounds, read again after the restart: ${verdict(d.earlierLoadCheck)}.`,
  ].join('\n');
}

function haproxySection(h: HaResults['haproxy']): string {
  if ('skipped' in h) return `## Faults across machines (HAProxy)\n\nSkipped: ${h.skipped}.`;
  const k = h.kill;
  const counts = new Map<string, number>();
  for (const f of k.failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [
    '## Faults across machines (HAProxy, 3 nodes, Redis sessions, PostgreSQL data)',
    '',
    `HAProxy with the configuration \`tether haproxy-config\` generates (inter ${h.checks.interMs} ms, fastinter ${h.checks.fastinterMs} ms, fall ${h.checks.fall}, rise ${h.checks.rise}); each node is \`npm start\` with TETHER_WORKERS=1 and TETHER_DRAIN_DELAY_MS=${h.checks.drainDelayMs}.`,
    '',
    '### kill -9 of a node',
    '',
    table(['failed requests', 'of which', 'clients pinned to the node', 'kill → first success elsewhere, ms (min / median / max)', 'marked down after, ms', 'back in rotation after, ms'],
      [[k.failed, [...counts].map(([s, n]) => `${n}× ${s}`).join(', ') || '–', k.pinnedClients, ms(k.redispatchMs), k.markedDownMs, k.backInRotationMs]]),
    '',
    `${verdict(k.check)}.`,
    '',
    '### Rolling restart (SIGTERM, drain, start, wait until UP; one node at a time)',
    '',
    table(['acknowledged', 'failed requests', 'signal → exit per node, ms'], [[h.rolling.acknowledged, h.rolling.failed, h.rolling.stopMs.join(', ')]]),
    '',
    `${verdict(h.rolling.check)}.`,
  ].join('\n');
}

export function renderReport(r: HaResults): string {
  const m = r.machine;
  return [
    '# High-availability report',
    '',
    `Generated by \`${r.command}\` at ${r.generatedAt}; do not edit by hand (rerun the command, or re-render with \`node --conditions=tether-source --import tsx bench/ha/report.ts\`). Numbers come from bench/results/ha.json.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; load average at start ${m.load.join(' / ')}. Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    '',
    'An *acknowledged* add is a POST whose 2xx reached the client; *lost* means a cart holds fewer units than were acknowledged; *phantom* means more than acknowledged plus indeterminate (requests that failed without an answer). The checker is test/helpers/cart-load.ts, the same one the tests use.',
    '',
    throughputSection(r),
    '',
    clusterSection(r.cluster),
    '',
    haproxySection(r.haproxy),
    '',
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as HaResults;
  writeFileSync(REPORT_FILE, renderReport(results));
  console.log(`wrote ${REPORT_FILE}`);
}
