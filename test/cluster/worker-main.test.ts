/**
 * runCluster with `workerMain`: the workers run a module of their own that calls acceptHandoff, are named
 * after the node, report 503 on the health path while draining, and the primary exits 0 on SIGTERM.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, probe } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';
import { freePort } from '../helpers/redis.js';
import { childPids } from '../helpers/procfs.js';

describe('cluster with a worker module', { timeout: 60_000 }, () => {
  let app: AppProcess | undefined;

  /** One worker and a drain delay of `delayMs`: SIGTERM sent, once its health path answers 503. */
  async function drainingAfterSigterm(node: string, delayMs: number): Promise<{ port: number; exit: ReturnType<AppProcess['stop']>; health: Awaited<ReturnType<typeof probe>> }> {
    app = await startApp({ script: 'test/cluster/fixtures/primary-main.ts', port: await freePort(), readyNodes: 1, env: { TETHER_WORKERS: '1', TETHER_NODE_NAME: node, TETHER_DRAIN_DELAY_MS: String(delayMs) } });
    const port = app.port;
    const exit = app.stop('SIGTERM');
    let health = await probe(port);
    for (let i = 0; i < 40 && health.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 25));
      health = await probe(port);
    }
    assert.equal(health.status, 503);
    return { port, exit, health };
  }
  after(async () => {
    await app?.stop();
  });

  it('runCluster when given workerMain then its workers serve under the node name and the primary drains on SIGTERM', async () => {
    app = await startApp({ script: 'test/cluster/fixtures/primary-main.ts', port: await freePort(), readyNodes: 2, env: { TETHER_WORKERS: '2', TETHER_NODE_NAME: 'wm' } });
    const r = await probe(app.port, '/healthz?x=1');
    assert.equal(r.status, 200);
    assert.match(r.node ?? '', /^wm:w[12]$/);
    assert.equal(JSON.parse(r.body).url, '/healthz?x=1', 'the request line reached the worker intact');
    const exit = await app.stop('SIGTERM');
    assert.equal(exit.code, 0);
    assert.ok(exit.elapsedMs < 10_000);
    app = undefined;
  });

  it('primary when SIGTERM arrives with a drain delay then the health path answers 503 while other requests are still served, then it exits 0', async () => {
    const { port, exit, health } = await drainingAfterSigterm('dd', 1_500);
    assert.equal(JSON.parse(health.body).status, 'draining');
    const other = await probe(port, '/anything');
    assert.equal(other.status, 200, 'the app still answers while the balancer notices');
    const e = await exit;
    assert.equal(e.code, 0);
    assert.ok(e.elapsedMs >= 1_000 && e.elapsedMs < 10_000, `exited after ${e.elapsedMs} ms`);
    await assert.rejects(probe(port), 'no longer accepting');
    app = undefined;
  });

  it('primary when its only worker dies during the drain delay then a replacement serves the rest of the delay, then it exits 0', async () => {
    // A delay long enough for a replacement to start on a loaded machine (a worker compiles its module
    // first): within it, the replacement must answer.
    const delayMs = 8_000;
    const { port, exit } = await drainingAfterSigterm('dk', delayMs);
    const killedAt = Date.now();
    const [worker] = childPids(app!.pid);
    assert.ok(worker !== undefined, 'the worker process');
    process.kill(worker, 'SIGKILL');
    let other: number | string = 'none';
    while (other !== 200 && Date.now() - killedAt < delayMs - 1_000) {
      await new Promise((r) => setTimeout(r, 50));
      other = await probe(port, '/anything').then((r) => r.status, (err: Error) => err.message);
    }
    assert.equal(other, 200, 'served again within the delay');
    assert.equal((await probe(port)).status, 503, 'the replacement drains too: the balancer keeps it out');
    const e = await exit;
    assert.equal(e.code, 0);
    assert.ok(e.elapsedMs < delayMs + 10_000, `exited after ${e.elapsedMs} ms`);
    app = undefined;
  });
});
