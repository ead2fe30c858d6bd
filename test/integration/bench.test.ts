/**
 * `npm run bench` end to end on a small selection: real servers in their own processes, autocannon in
 * another, a redis-server per Redis-backed stack. Checks what the run reports, not how fast it was:
 * figures present and consistent, overhead only for session stacks, the Redis command census, the
 * lost-update check, and that a partial run never replaces the committed results.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, ServerProcess } from '../../bench/lib/procs.js';
import { buildBench } from '../../bench/lib/build.js';
import type { StackSummary } from '../../bench/lib/summary.js';
import { parseArgs } from '../../bench/lib/args.js';
import { waitFor } from '../helpers/redis.js';
import { childPids, isRunning, procStat } from '../helpers/procfs.js';

const digest = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--conditions=tether-source', '--import', 'tsx', 'bench/run.ts', ...args],
      { cwd: ROOT, timeout: 150_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
  });
}

test('bench flags are checked before anything starts', () => {
  assert.throws(() => parseArgs(['--scenarios', 'read,delete']), /--scenarios takes read, write, login/);
  assert.throws(() => parseArgs(['--passes', '0']), /--passes needs a positive number/);
  assert.throws(() => parseArgs(['--fast']), /unknown flag --fast/);
  assert.deepEqual(parseArgs(['--quick', '--only', 'a,b', '--no-memory']), { quick: true, memory: false, report: true, only: ['a', 'b'] });
});

test('a partial quick run reports every figure, the Redis census and lost updates, and leaves the committed results alone', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'run.json');
  const committed = join(ROOT, 'bench/results/run.json');
  const before = digest(committed);

  const r = await bench(['--quick', '--only', 'tether-fastify-redis,fastify-session-redis', '--scenarios', 'read,write', '--no-memory', '--json', out]);
  assert.equal(r.code, 0, r.stderr || r.stdout);
  assert.equal(digest(committed), before, 'a partial run does not replace bench/results/run.json');
  assert.match(r.stdout, /\nread:\n +req\/s +×node +p50 ms/);
  assert.match(r.stdout, /quick run: 1 pass\(es\) of 0\.6 s per stack and scenario and no separate warm-up/, 'a quick run says how rough its figures are');

  const run = JSON.parse(readFileSync(out, 'utf8')) as { quick: boolean; stacks: StackSummary[]; config: { scenarios: string[]; serverNodeArgs: string[] } };
  assert.equal(run.quick, true);
  assert.deepEqual(run.config.serverNodeArgs, process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [], 'the servers\' node flags are recorded');
  assert.deepEqual(run.stacks.map((s) => s.id), ['node-bare', 'fastify-bare', 'tether-fastify-redis', 'fastify-session-redis']);
  const by = (id: string): StackSummary => run.stacks.find((s) => s.id === id)!;
  for (const s of run.stacks) {
    assert.equal(s.error, undefined, `${s.id} ran`);
    for (const sc of ['read', 'write'] as const) {
      const x = s.results[sc]!;
      assert.ok(x, `${s.id} ${sc} measured`);
      assert.equal(x.non2xx + x.errors, 0, `${s.id} ${sc}: every response 2xx`);
      assert.ok(x.rps > 0 && x.p50Ms > 0 && x.p99Ms >= x.p50Ms, `${s.id} ${sc}: throughput and latency`);
      assert.ok(x.serverCpuUs > 0 && x.cpuUs >= x.serverCpuUs, `${s.id} ${sc}: CPU per request`);
      assert.equal(x.overheadUs === null, s.layer === 'none', `${s.id} ${sc}: overhead only for a session layer`);
      assert.ok(x.vsNode && x.vsNode.cpu > 0, `${s.id} ${sc}: compared with node:http in the same pass`);
    }
  }
  assert.equal(by('node-bare').results.read!.vsNode!.cpu, 1);
  for (const id of ['tether-fastify-redis', 'fastify-session-redis']) {
    for (const sc of ['read', 'write'] as const) {
      const x = by(id).results[sc]!;
      assert.ok(x.storeCpuUs > 0, `${id} ${sc}: redis-server CPU counted`);
      assert.ok(x.commandsPerRequest !== null && x.commandsPerRequest > 0, `${id} ${sc}: Redis commands per request`);
    }
  }
  // The census counts commands by origin: a Tether read is one GET; @fastify/session (rolling) saves on every request.
  assert.deepEqual(by('tether-fastify-redis').results.read!.census!.byCommand, { get: 1 });
  const tw = by('tether-fastify-redis').results.write!.census!;
  assert.deepEqual(tw.byCommand, { get: 1, evalsha: 1 });
  assert.ok(tw.scriptCommands > 0, 'the compare-and-set runs its commands inside Lua');
  assert.deepEqual(by('fastify-session-redis').results.read!.census!.byCommand, { get: 1, set: 1 });

  const tr = by('tether-fastify-redis').race!;
  assert.deepEqual([tr.sent, tr.ok, tr.final, tr.lost], [50, 50, 50, 0], 'Tether loses no concurrent update');
  const fr = by('fastify-session-redis').race!;
  assert.equal(fr.ok, 50);
  assert.equal(fr.lost, fr.ok - fr.final, 'lost is what was answered 200 but not counted');
});

test('a server under test runs with the node flags BENCH_SERVER_NODE_ARGS names, and collects on request when they expose gc', { timeout: 60_000 }, async () => {
  const build = await buildBench();
  const saved = process.env.BENCH_SERVER_NODE_ARGS;
  process.env.BENCH_SERVER_NODE_ARGS = '--max-old-space-size=512 --expose-gc';
  const server = new ServerProcess('node-bare', build.server);
  if (saved === undefined) delete process.env.BENCH_SERVER_NODE_ARGS;
  else process.env.BENCH_SERVER_NODE_ARGS = saved;
  try {
    await server.start({});
    const argv = readFileSync(`/proc/${server.child.pid}/cmdline`, 'utf8').split('\0');
    const script = argv.indexOf(build.server);
    assert.ok(script > 0, argv.join(' '));
    assert.deepEqual(argv.slice(1, script), ['--max-old-space-size=512', '--expose-gc'], 'node flags come before the script');
    assert.equal(await server.collect(), true, 'with --expose-gc, a full collection on request');
  } finally {
    await server.close();
  }
});

test('a run stopped midway stops its redis-servers and servers quietly, and writes nothing', { timeout: 120_000 }, async () => {
  const committed = join(ROOT, 'bench/results/run.json');
  const before = digest(committed);
  const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', 'bench/run.ts',
    '--only', 'fastify-session-redis,tether-fastify-redis', '--scenarios', 'read', '--no-memory', '--no-report'], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await waitFor('both Redis stacks to start and the measuring to begin', 90_000, async () => /warm-up/.test(stdout));
    const redis = childPids(child.pid!).filter((pid) => procStat(pid)?.comm === 'redis-server' && isRunning(pid));
    assert.equal(redis.length, 2, 'one redis-server per Redis-backed stack');
    child.kill('SIGTERM');
    assert.equal(await exited, 143);
    await waitFor('the redis-servers to stop', 5_000, async () => redis.every((pid) => !isRunning(pid)));
    assert.doesNotMatch(stderr, /Unhandled 'error' event|SocketClosedUnexpectedlyError/, 'no server crashed on its way out');
    assert.equal(digest(committed), before);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
