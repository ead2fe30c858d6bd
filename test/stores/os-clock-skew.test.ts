/**
 * SECURITY.md F14 with real OS clocks: two processes whose clocks libfaketime sets five minutes ahead
 * and five minutes behind share one redis-server, or one PostgreSQL. Each store's default ServerClock
 * follows the server's time, so both agree on when a session times out: neither keeps it ten minutes
 * too long nor ends it early. (test/stores/server-clock.test.ts plays the same skew in-process through
 * `localClock`.)
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { redisAndPostgres } from '../helpers/backends.js';
import { REPO_ROOT } from '../helpers/node-process.js';
import { atExit } from '../helpers/exit.js';

const SKEW_MS = 5 * 60_000;
const children = new Set<ChildProcessWithoutNullStreams>();
atExit(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A node process whose OS clock runs `offset` ('+5m', '-5m') off, speaking the fixture's protocol. */
class SkewedProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: Interface;
  readonly #replies: Array<(line: string) => void> = [];
  #stderr = '';

  constructor(offset: string, kind: 'redis' | 'postgres', url: string, space: string) {
    const script = path.join(REPO_ROOT, 'test/fixtures/clock-skew-child.ts');
    // Only the wall clock is moved: timers run on the monotonic clock, left alone.
    this.#child = spawn('faketime', ['-f', offset, process.execPath, '--conditions=tether-source', '--import', 'tsx', script, kind, url, space], {
      cwd: REPO_ROOT, env: { ...process.env, FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    });
    children.add(this.#child);
    this.#child.stderr.on('data', (d: Buffer) => { this.#stderr += d.toString(); });
    this.#lines = createInterface({ input: this.#child.stdout });
    this.#lines.on('line', (line) => this.#replies.shift()?.(line));
  }

  ask<T>(cmd: object): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(cmd)} in 20 s; stderr: ${this.#stderr}`)), 20_000);
      this.#replies.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
      });
      this.#child.stdin.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    if (this.#child.exitCode === null) await new Promise((r) => this.#child.once('exit', r));
    children.delete(this.#child);
  }
}

const servers = redisAndPostgres();

for (const kind of ['redis', 'postgres'] as const) {
  describe(`${kind === 'redis' ? 'RedisStore' : 'PostgresStore'} between processes whose OS clocks are five minutes apart each way`, () => {
    let ahead: SkewedProcess;
    let behind: SkewedProcess;
    before(() => {
      const url = kind === 'redis' ? servers.redis.url : servers.postgres.url;
      const space = kind === 'redis' ? 'skew:' : 'skew_sessions';
      ahead = new SkewedProcess('+5m', kind, url, space);
      behind = new SkewedProcess('-5m', kind, url, space);
    });
    after(async () => {
      await Promise.all([ahead?.close(), behind?.close()]);
    });

    it('processes when their OS clocks are five minutes ahead and behind then each store clock follows the server, and a session one writes times out for both on time', async () => {
      for (const [p, skew] of [[ahead, SKEW_MS], [behind, -SKEW_MS]] as const) {
        const sent = Date.now();
        const { os, store } = await p.ask<{ os: number; store: number }>({ op: 'clock' });
        const received = Date.now();
        assert.ok(Math.abs(os - skew - (sent + received) / 2) < 5_000, `the process's OS clock is off by ${os - received} ms`);
        assert.ok(store >= sent - 1_000 && store <= received + 1_000, `its store clock is within a second of this machine's: off by ${store - received} ms`);
      }
      // Written by the process ahead with a 3 s idle timeout: by its OS clock, the process behind would
      // see it alive for ten minutes more.
      assert.deepEqual(await ahead.ask({ op: 'set', key: 'aheadsession', idleMs: 3_000 }), { ok: true });
      assert.deepEqual(await behind.ask({ op: 'get', key: 'aheadsession' }), { found: true }, 'alive for the process behind');
      assert.deepEqual(await ahead.ask({ op: 'get', key: 'aheadsession' }), { found: true }, 'and for the one ahead');
      await delay(4_000);
      assert.deepEqual(await behind.ask({ op: 'get', key: 'aheadsession' }), { found: false }, 'timed out for the process behind');
      assert.deepEqual(await ahead.ask({ op: 'get', key: 'aheadsession' }), { found: false });
      // The same the other way round: by its OS clock, the process ahead would find it over at once.
      assert.deepEqual(await behind.ask({ op: 'set', key: 'behindsession', idleMs: 3_000 }), { ok: true });
      assert.deepEqual(await ahead.ask({ op: 'get', key: 'behindsession' }), { found: true }, 'not ended early for the process ahead');
      await delay(4_000);
      assert.deepEqual(await ahead.ask({ op: 'get', key: 'behindsession' }), { found: false });
    });
  });
}
