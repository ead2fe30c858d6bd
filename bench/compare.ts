/**
 * `npm run bench:compare`: this checkout against an earlier commit, on the same stacks, in alternating
 * rounds. A change worth a few microseconds per request is smaller than what a shared machine's load
 * does to a figure between two runs of `npm run bench`; measured in turns with the same load, round
 * by round, it shows.
 *
 * The earlier commit (`--base`, HEAD by default, so uncommitted changes are what is compared) is checked
 * out in a temporary git worktree and its bench server compiled from there (bench/lib/build.ts
 * `buildServerFrom`); this checkout's server is compiled as `npm run bench` compiles it. Each stack runs
 * twice, one server per build, each with its own redis-server (or SQLite file) and 1,000 sessions (`--sessions`).
 * Every round measures both servers in each scenario, the order alternating from round to round, and
 * reports the server process's CPU per handled request (redis-server's beside it).
 *
 * Usage: npm run bench:compare [-- --base REF] [-- --only a,b] [-- --scenarios read,write]
 *        [-- --rounds N] [-- --duration S] (see --help).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSystemPackages } from '../scripts/system-packages.mjs';
import { BUILD_DIR, buildBench, buildServerFrom } from './lib/build.js';
import { measure, startStack, stopStack } from './lib/harness.js';
import type { HarnessOptions, Live, PassFigures } from './lib/harness.js';
import { LoadProcess, ROOT } from './lib/procs.js';
import { ID_WIDTH, stackById, usesRedis } from './lib/stacks.js';
import { parseCompareArgs } from './lib/args.js';
import { pairedChange } from './lib/stats.js';

/** The base commit's bench server, compiled from a worktree that is removed again. Returns its path and commit. */
async function buildBase(ref: string): Promise<{ server: string; commit: string }> {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  let commit: string;
  try {
    commit = git('rev-parse', '--verify', '--quiet', `${ref}^{commit}`);
  } catch {
    throw new Error(`--base ${ref}: no such commit in ${ROOT}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tether-compare-'));
  const server = `${BUILD_DIR}/compare-${commit.slice(0, 12)}.mjs`;
  git('worktree', 'add', '--detach', dir, commit);
  try {
    await buildServerFrom(`${dir}/`, server);
  } finally {
    git('worktree', 'remove', '--force', dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return { server, commit };
}

/** Ends the run with the message alone: a flag or a commit the user named was wrong. */
function refuse(err: unknown): never {
  console.error((err as Error).message);
  process.exit(2);
}

const { args, specs } = (() => {
  try {
    const parsed = parseCompareArgs(process.argv.slice(2));
    return { args: parsed, specs: parsed.only.map(stackById) };
  } catch (err) {
    return refuse(err);
  }
})();
if (specs.some(usesRedis)) ensureSystemPackages(['redis-server'], 'The benchmarks', 'npm run bench:compare');
const started = Date.now();
const log = (line: string): void => console.log(`${String(Math.round((Date.now() - started) / 1000)).padStart(4)}s ${line}`);
const base = await buildBase(args.base).catch(refuse);
const compiled = await buildBench();
const builds = [{ label: `base ${base.commit.slice(0, 9)}`, server: base.server }, { label: 'this checkout', server: compiled.server }];
log(`npm run bench:compare: ${builds[0]!.label} against ${builds[1]!.label}; ${specs.length} stack(s) × ${args.scenarios.join(', ')}; ${args.rounds} rounds of ${args.durationS} s`);

const o: HarnessOptions = {
  stacks: specs, scenarios: args.scenarios, passes: args.rounds, durationS: args.durationS, warmupS: 1.5, settleS: 0.75,
  connections: 10, sessions: args.sessions, loginSessions: 1000, raceWrites: 0, censusRequests: 0, log,
};
const load = new LoadProcess(compiled.load);
const live: Live[][] = [];
const figures = new Map<string, PassFigures[][]>();
try {
  for (const spec of specs) {
    const pair: Live[] = [];
    live.push(pair);
    for (const b of builds) pair.push(await startStack(spec, o, b.server));
    for (const l of pair) for (const sc of args.scenarios) await measure(load, l, sc, 0, { ...o, durationS: o.warmupS, settleS: 0 });
  }
  for (let r = 0; r < args.rounds; r++) {
    for (const sc of args.scenarios) {
      for (const pair of live) {
        const order = r % 2 === 0 ? [0, 1] : [1, 0];
        for (const b of order) {
          const l = pair[b]!;
          const f = await measure(load, l, sc, r, o);
          const key = `${sc} ${l.spec.id}`;
          if (!figures.has(key)) figures.set(key, [[], []]);
          figures.get(key)![b]!.push(f);
          log(`  round ${r + 1}/${args.rounds} ${sc.padEnd(5)} ${l.spec.id.padEnd(ID_WIDTH)} ${builds[b]!.label.padEnd(15)} ${f.serverCpuUs.toFixed(1).padStart(6)} µs CPU/req` +
            `${f.storeCpuUs ? ` + ${f.storeCpuUs.toFixed(1)} redis` : ''}${f.non2xx || f.errors ? `  (${f.non2xx} non-2xx, ${f.errors} errors)` : ''}`);
        }
      }
    }
  }
} finally {
  load.close();
  await Promise.all(live.flat().map(stopStack));
}

console.log(`\nserver CPU µs per request: ${builds[0]!.label} → ${builds[1]!.label} (medians; the change is the median of the round-by-round differences)`);
for (const [key, [a, b]] of figures) {
  const cpu = pairedChange(a!.map((f) => f.serverCpuUs), b!.map((f) => f.serverCpuUs));
  const store = a!.some((f) => f.storeCpuUs > 0) ? pairedChange(a!.map((f) => f.storeCpuUs), b!.map((f) => f.storeCpuUs)) : null;
  const fmt = (x: number): string => x.toFixed(1);
  console.log(`  ${key.padEnd(40)} ${fmt(cpu.base).padStart(6)} → ${fmt(cpu.current).padStart(6)}  change ${cpu.change >= 0 ? '+' : ''}${fmt(cpu.change)}` +
    `  (lower in ${cpu.lower} of ${cpu.rounds} rounds)${store ? `  redis-server ${fmt(store.base)} → ${fmt(store.current)}` : ''}`);
}
