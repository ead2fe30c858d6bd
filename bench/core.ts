/**
 * `npm run bench:core`: what the session engine costs on node:http (issue 2).
 *
 * What it measures: a read route (GET, session read, not changed) and a write route (POST, session
 * changed) through Tether's `withSessions` with the default MemoryStore, against the same handler on
 * bare node:http, rotating over 1,000 pre-created sessions. autocannon in its own process, several
 * passes in alternating order, medians.
 *
 * How to read it: "overhead (req/s)" is bare requests/s ÷ Tether requests/s − 1 (the aim: under 15 %
 * on reads); "overhead (CPU)" is Tether's server CPU per request ÷ bare's − 1, the steadier figure on
 * a busy machine. Results go to bench/results/core.json (and --json FILE); docs/benchmarks.md is
 * regenerated. `--profile DIR` writes each server's --cpu-prof profile.
 * @module
 */
import { stackById } from './lib/stacks.js';
import { parseArgs } from './lib/args.js';
import { runHarness } from './lib/harness.js';
import type { Scenario } from './lib/harness.js';
import { summarise } from './lib/summary.js';
import { machine, versions } from './lib/machine.js';
import { writeResults } from './lib/results.js';
import { renderReport } from './report.js';
import { round } from './lib/stats.js';

const AIM_PCT = 15;
const args = parseArgs(process.argv.slice(2));
const started = Date.now();
const log = (line: string): void => console.log(`${String(Math.round((Date.now() - started) / 1000)).padStart(4)}s ${line}`);
const scenarios: Scenario[] = args.scenarios ?? ['read', 'write'];
const config = args.quick
  ? { passes: args.passes ?? 2, durationS: args.durationS ?? 2, warmupS: 1, settleS: 0.5, connections: args.connections ?? 10, sessions: 1000, loginSessions: 0, raceWrites: 0, censusRequests: 0 }
  : { passes: args.passes ?? 5, durationS: args.durationS ?? 5, warmupS: 2, settleS: 1, connections: args.connections ?? 10, sessions: 1000, loginSessions: 0, raceWrites: 0, censusRequests: 0 };
const stacks = ['node-bare', 'tether-node-memory'].map(stackById);

log(`npm run bench:core${args.quick ? ' --quick' : ''}: ${config.passes} pass(es) of ${config.durationS} s, ${config.connections} connections`);
const outcomes = await runHarness({ stacks, scenarios, ...config, ...(args.profileDir ? { profileDir: args.profileDir } : {}), log });
const failed = outcomes.find((o) => o.error);
if (failed) throw new Error(`${failed.stack.id}: ${failed.error}`);
const [bare, tether] = summarise(outcomes, scenarios);

const routes = scenarios.map((sc) => {
  const b = bare!.results[sc]!;
  const t = tether!.results[sc]!;
  const rpsRatio = t.vsNode!.rps;
  return {
    route: sc === 'read' ? 'GET /read (reads the session)' : sc === 'write' ? 'POST /write (changes the session)' : 'POST /login (regenerates)',
    bare: b, tether: t, rpsRatio,
    rpsOverheadPct: round((1 / rpsRatio - 1) * 100),
    cpuOverheadPct: round((t.vsNode!.cpu - 1) * 100),
  };
});

const results = {
  bench: 'core',
  title: 'The engine alone: Tether on node:http against the bare route',
  generatedAt: new Date().toISOString(),
  quick: args.quick,
  command: `npm run bench:core${args.quick ? ' -- --quick' : ''}`,
  elapsedS: Math.round((Date.now() - started) / 1000),
  machine: machine(),
  versions: versions(['autocannon']),
  config,
  aimPct: AIM_PCT,
  routes,
};
// A partial run (--scenarios) never replaces the full results the docs are generated from.
const partial = Boolean(args.scenarios || args.only);
const paths = writeResults(partial ? null : 'core', results, args.json);
for (const r of routes) {
  log(`${r.route.padEnd(36)} bare ${Math.round(r.bare.rps)} req/s, ${r.bare.cpuUs} µs CPU; Tether ${Math.round(r.tether.rps)} req/s, ${r.tether.cpuUs} µs CPU` +
    ` → overhead ${r.rpsOverheadPct} % (req/s), ${r.cpuOverheadPct} % (CPU)`);
}
log(partial ? `partial run: ${paths.length ? `results in ${paths.join(', ')}` : 'results not written (add --json FILE)'}; bench/results/core.json and the docs left as they were` : `results: ${paths.join(', ')}`);
if (args.report && !partial) log(`report: ${renderReport().join(', ')}`);
