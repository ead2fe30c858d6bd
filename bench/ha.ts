/**
 * bench/ha.ts: measures what docs/ha-report.md reports, in one run: throughput of the shop with 1 worker
 * and with 2 workers, faults on one machine (SIGKILL of a worker, SIGTERM of the primary) and across
 * machines (HAProxy, kill -9 of a node, rolling restart), with every cart checked against what was
 * acknowledged. Writes bench/results/ha.json and docs/ha-report.md.
 *
 *   node --conditions=tether-source --import tsx bench/ha.ts [--rounds 3] [--clients 20] [--duration 8] [--passes 2] [--skip-haproxy]
 *
 * How to read it: throughput figures share the machine with the load generator; fault figures are
 * latencies of real recoveries (process start-up included where a process is replaced).
 * @module
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { wholeFlag } from './lib/args.js';
import { machine, versions } from './lib/machine.js';
import { measureThroughput } from './ha/throughput.js';
import type { ThroughputRow } from './ha/throughput.js';
import { clusterFaults } from './ha/cluster-faults.js';
import { haproxyFaults } from './ha/haproxy-faults.js';
import { renderReport, RESULTS_FILE, REPORT_FILE } from './ha/report.js';
import type { HaResults } from './ha/report.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' }, clients: { type: 'string', default: '20' },
    duration: { type: 'string', default: '8' }, passes: { type: 'string', default: '2' }, 'skip-haproxy': { type: 'boolean', default: false },
  },
});
const rounds = wholeFlag(values.rounds, 'rounds', 10);
const clients = wholeFlag(values.clients, 'clients', 200);
const durationS = wholeFlag(values.duration, 'duration', 120);
const passes = wholeFlag(values.passes, 'passes', 5);

const haproxyVersion = (): string => /version (\S+)/i.exec(spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'not installed';
const step = (what: string): void => console.log(`[ha] ${new Date().toISOString()} ${what}`);

const started = machine();
// Passes alternate the order (1, 2 / 2, 1 / …), so a change in the machine's background load hits both alike.
const rows: ThroughputRow[] = [];
for (let pass = 0; pass < passes; pass++) {
  for (const workers of pass % 2 === 0 ? [1, 2] : [2, 1]) {
    step(`throughput pass ${pass + 1}/${passes}, ${workers} worker(s)`);
    rows.push(...(await measureThroughput(workers, { connections: 32, durationS, warmupS: 2 })));
  }
}
step(`cluster faults: ${rounds} worker kills, then a drain`);
const cluster = await clusterFaults(rounds, clients);
let haproxy: HaResults['haproxy'] = { skipped: 'run with --skip-haproxy' };
if (!values['skip-haproxy']) {
  step('haproxy faults: kill -9 of a node, rolling restart');
  haproxy = await haproxyFaults(Math.min(clients, 15));
}

const results: HaResults = {
  generatedAt: new Date().toISOString(),
  command: 'node --conditions=tether-source --import tsx bench/ha.ts' + (values['skip-haproxy'] ? ' --skip-haproxy' : ''),
  machine: started,
  versions: { ...versions(['fastify', 'better-sqlite3', 'ioredis', 'pg'], true), haproxy: haproxyVersion() },
  throughput: { connections: 32, durationS, passes, rows },
  cluster,
  haproxy,
};
mkdirSync(dirname(RESULTS_FILE), { recursive: true });
writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(REPORT_FILE, renderReport(results));
step(`wrote ${RESULTS_FILE} and ${REPORT_FILE}`);
process.exit(0);
