/**
 * `npm run bench`: Tether against the stacks users would pick instead, side by side in one run.
 *
 * What it measures: the same routes (bench/lib/workload.ts) on bare node:http, Fastify and Express,
 * express-session (MemoryStore, connect-redis), @fastify/session (connect-redis) and Tether through its
 * Express and Fastify adapters over the memory, SQLite, Redis and tiered-over-Redis stores. Scenarios: a
 * GET that reads the session, a POST that changes it (both rotating over 1,000 pre-created sessions, or `--sessions N`), a
 * login that regenerates the ID, and 50 concurrent naive read-modify-writes on one session (lost updates).
 * autocannon runs in its own process, each server in another; every redis-using stack has its own
 * redis-server. Then bytes per session with 100,000 sessions (bench/lib/memory-probe.ts).
 *
 * How to read it: server CPU µs per request (server process + redis-server) is the steady figure on a
 * shared machine; requests/s and latency move with whatever else runs. "Overhead" is a stack's CPU per
 * request minus the same framework without sessions, measured in the same pass. Ratios are to bare
 * node:http in the same pass. Results go to bench/results/run.json (and --json FILE); docs/benchmarks.md
 * and docs/benchmarks.svg are regenerated from the JSON files in bench/results.
 *
 * Usage: npm run bench [-- --quick] [-- --json FILE] (see --help).
 * @module
 */
import { STACKS, stackById, storeAvailable, usesRedis } from './lib/stacks.js';
import { ensureSystemPackages } from '../scripts/system-packages.mjs';
import type { StackSpec } from './lib/stacks.js';
import { parseArgs } from './lib/args.js';
import { runHarness } from './lib/harness.js';
import type { Scenario } from './lib/harness.js';
import { summarise } from './lib/summary.js';
import { machine, versions } from './lib/machine.js';
import { writeResults } from './lib/results.js';
import { measureMemory } from './lib/memory.js';
import type { MemoryResults } from './lib/memory.js';
import { renderReport } from './report.js';
import { printRun } from './lib/print.js';
import { serverNodeArgs } from './lib/procs.js';

const args = parseArgs(process.argv.slice(2));
const started = Date.now();
const log = (line: string): void => console.log(`${String(Math.round((Date.now() - started) / 1000)).padStart(4)}s ${line}`);

const wanted: StackSpec[] = args.only
  ? [...new Set(['node-bare', ...args.only.flatMap((id) => [stackById(id).baseline, id])])].map(stackById)
  : [...STACKS];
const missing = wanted.filter((s) => !storeAvailable(s.store));
const stacks = wanted.filter((s) => storeAvailable(s.store));
for (const s of missing) log(`left out: ${s.id} (src/stores/${s.store} is not in this checkout)`);

// Redis stacks (and the tiered store's memory probe) start a real redis-server: installed when missing
// (as root with apt-get), otherwise a message naming the package, before anything is measured.
if (stacks.some(usesRedis) || args.memory) ensureSystemPackages(['redis-server'], 'The benchmarks', 'npm run bench');

const scenarios: Scenario[] = args.scenarios ?? ['read', 'write', 'login'];
const config = args.quick
  // Quick: no separate warm-up; the half-second settle before each measurement warms the JIT.
  ? { passes: args.passes ?? 1, durationS: args.durationS ?? 0.6, warmupS: 0, settleS: 0.35, connections: args.connections ?? 10, sessions: args.sessions ?? 1000, loginSessions: 200, raceWrites: 50, censusRequests: 30 }
  : { passes: args.passes ?? 5, durationS: args.durationS ?? 3, warmupS: 1.5, settleS: 0.75, connections: args.connections ?? 10, sessions: args.sessions ?? 1000, loginSessions: 1000, raceWrites: 50, censusRequests: 100 };

log(`npm run bench${args.quick ? ' --quick' : ''}: ${stacks.length} stacks × ${scenarios.join(', ')}; ${config.passes} pass(es) of ${config.durationS} s, ${config.connections} connections`);
// The memory probes measure their own processes' heaps, not time: they run once the timed passes are
// over, beside the Redis command census and the lost-update races, which count and time nothing either.
// Set by startMemory(), which the flow analysis does not follow: declared so it is not read as always null.
let measuringMemory = null as Promise<MemoryResults> | null;
const startMemory = (): void => {
  if (!args.memory || measuringMemory !== null) return;
  log('memory: bytes per session (beside the census and the races)');
  // Quick runs too hold the 100,000 sessions issue 6's memory target names: with 20,000, Tether's
  // figures came out ≈ 25–45 bytes per session higher (what does not grow with the count is shared by
  // fewer sessions), above half of express-session's, which moved less (≈ 531 against ≈ 552).
  measuringMemory = measureMemory({ count: 100_000, log });
};
const outcomes = await runHarness({ stacks, scenarios, ...config, ...(args.profileDir ? { profileDir: args.profileDir } : {}), afterPasses: startMemory, log });
const summary = summarise(outcomes, scenarios);
startMemory();
const memory = measuringMemory === null ? null : await measuringMemory;

const results = {
  bench: 'run',
  title: 'Side by side: Tether against the stacks users would pick instead',
  generatedAt: new Date().toISOString(),
  quick: args.quick,
  command: `npm run bench${args.quick ? ' -- --quick' : ''}`,
  elapsedS: Math.round((Date.now() - started) / 1000),
  machine: machine(),
  versions: versions(['express', 'fastify', 'express-session', 'connect-redis', '@fastify/session', '@fastify/cookie', 'redis', 'ioredis', 'better-sqlite3', 'autocannon'], true),
  config: { ...config, scenarios, serverNodeArgs: serverNodeArgs(), grouped: true },
  leftOut: missing.map((s) => ({ id: s.id, reason: `src/stores/${s.store} not in this checkout` })),
  stacks: summary,
  memory,
};
// A partial run (--only, --scenarios) never replaces the full results the docs are generated from.
const partial = Boolean(args.only || args.scenarios);
const paths = writeResults(partial ? null : 'run', results, args.json);
printRun(results);
if (args.quick) log(`quick run: ${config.passes} pass(es) of ${config.durationS} s per stack and scenario and no separate warm-up, so the frameworks' own warm-up shows in the figures and an overhead can even come out below zero; npm run bench gives figures to quote`);
if (partial) log(`partial run: ${paths.length ? `results in ${paths.join(', ')}` : 'results not written (add --json FILE)'}; bench/results/run.json and the docs left as they were`);
else log(`results: ${paths.join(', ')}`);
if (args.report && !partial) log(`report: ${renderReport().join(', ')}`);
log(`done in ${results.elapsedS} s`);
