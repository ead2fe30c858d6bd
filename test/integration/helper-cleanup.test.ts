/**
 * The throwaway servers and folders the test helpers create (the benchmarks use the same helpers) do
 * not outlive a process stopped by a signal: a real child process starts a redis-server and a SQLite
 * folder, is sent SIGTERM or SIGINT, and the redis-server and both folders must be gone afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/node-process.js';
import { waitFor } from '../helpers/redis.js';
import { isRunning } from '../helpers/procfs.js';

const FIXTURE = path.join(REPO_ROOT, 'test/fixtures/helper-servers.ts');

interface Stopped { code: number | null; signal: NodeJS.Signals | null; out: string; redisPid: number; dirs: string[] }

async function startAndStop(signal: NodeJS.Signals, args: string[] = []): Promise<Stopped> {
  const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', FIXTURE, ...args],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, sig) => resolve({ code, signal: sig })));
  try {
    await waitFor('the fixture to start its servers', 20_000, async () => out.includes('\n'));
    const started = JSON.parse(out.slice(0, out.indexOf('\n'))) as { redisPid: number; dirs: string[] };
    assert.ok(isRunning(started.redisPid), 'redis-server runs before the signal');
    for (const dir of started.dirs) assert.ok(existsSync(dir), `${dir} exists before the signal`);
    child.kill(signal);
    const exit = await exited;
    await waitFor('redis-server to stop', 5_000, async () => !isRunning(started.redisPid));
    return { ...exit, out, ...started };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

for (const [signal, status] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  test(`a process stopped by ${signal} leaves no redis-server and no folder behind`, { timeout: 60_000 }, async () => {
    const r = await startAndStop(signal);
    assert.deepEqual([r.code, r.signal], [status, null], `exit status 128 + the signal's number, after the exit hooks`);
    assert.equal(isRunning(r.redisPid), false);
    for (const dir of r.dirs) assert.equal(existsSync(dir), false, `${dir} removed`);
  });
}

test('a process with its own SIGTERM listener decides when to exit, and still cleans up', { timeout: 60_000 }, async () => {
  const r = await startAndStop('SIGTERM', ['drain']);
  assert.match(r.out, /draining\n/);
  assert.deepEqual([r.code, r.signal], [0, null], 'its own exit status, not 143');
  assert.equal(isRunning(r.redisPid), false);
  for (const dir of r.dirs) assert.equal(existsSync(dir), false, `${dir} removed`);
});
