/**
 * Failover and drain of the shop as `npm start` runs it (a primary and two workers, sessions in the
 * default SQLite store in a temporary data dir), under a bounded load of 20 clients adding to their carts:
 * - SIGKILL one worker: no acknowledged add is lost, requests fail only with connection errors, and each
 *   affected client's next request succeeds on the live worker with its session intact;
 * - SIGTERM the primary: it exits 0 within 10 s, nothing acknowledged is lost, and a restart brings every
 *   session back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CartLoad, assertNothingLost, recoveryAfter } from '../helpers/cart-load.js';
import { startApp, probe } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';
import { freePort } from '../helpers/redis.js';
import { ADMIN_PASSWORD, ShopClient } from '../helpers/shop.js';

const NODE = 'fo';
const CLIENTS = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function pidOf(port: number, name: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const r = await probe(port).catch(() => null);
    if (r?.status === 200 && r.node === name) return JSON.parse(r.body).pid as number;
    await sleep(25);
  }
  throw new Error(`worker ${name} did not answer /healthz`);
}

describe('cluster failover and drain with the shop', { timeout: 240_000 }, () => {
  let app: AppProcess;
  let dataDir: string;
  let port: number;
  let killLoad: CartLoad | undefined;
  const start = async (): Promise<AppProcess> => startApp({
    script: 'apps/shop/main.ts', port, readyNodes: 2, readyTimeoutMs: 60_000,
    env: {
      TETHER_WORKERS: '2', TETHER_NODE_NAME: NODE, TETHER_DATA_DIR: dataDir,
      TETHER_SECRET: 'failover-test-secret-failover-test-secret-0123', SHOP_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SHOP_NEW_SESSIONS_PER_MINUTE: '100000', SHOP_REJECTED_COOKIES_PER_MINUTE: '100000',
    },
  });

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-failover-'));
    port = await freePort();
    app = await start();
  });
  after(async () => {
    killLoad?.close();
    await app?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('metrics when scraped from either worker then list every worker\'s series, each labelled with its node', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      // A fresh connection each time, so the scrapes land on both workers.
      const res = await fetch(`${app.url}/metrics`, { headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      seen.add(res.headers.get('x-tether-node') ?? '');
      const text = await res.text();
      for (const w of ['w1', 'w2']) {
        assert.match(text, new RegExp(`tether_sessions_created_total\\{[^}]*node="${NODE}:${w}"`), `${w}'s series in a scrape served by ${[...seen].at(-1)}`);
      }
    }
    assert.equal(seen.size, 2, `scrapes reached both workers (${[...seen].join(', ')})`);
  });

  it('admin overview when served by one worker then lists every worker with its live sessions, engine figures and uptime', async () => {
    const admin = new ShopClient(app.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    const r = await admin.get('/api/admin/overview');
    assert.equal(r.status, 200, r.text);
    const nodes = r.body.nodes as Array<{ node: string; pid: number | null; activeSessions: number; uptimeSeconds: number | null; engine: { created: number } }>;
    assert.deepEqual(nodes.map((n) => n.node), [`${NODE}:w1`, `${NODE}:w2`]);
    for (const n of nodes) assert.ok(Number.isInteger(n.activeSessions) && Number.isInteger(n.engine.created), JSON.stringify(n));
    // Both started with the cluster in before(), which has not been restarted yet.
    for (const n of nodes) assert.ok(Number.isInteger(n.uptimeSeconds) && n.uptimeSeconds! >= 0 && n.uptimeSeconds! < 240, `every worker's uptime: ${JSON.stringify(n)}`);
    // The admin's session was created by whichever worker its first request reached (it had no cookie yet).
    const sum = (f: (n: (typeof nodes)[number]) => number): number => nodes.reduce((a, n) => a + f(n), 0);
    assert.ok(sum((n) => n.engine.created) >= 1 && sum((n) => n.activeSessions) >= 1, JSON.stringify(nodes));
    assert.equal(typeof nodes.find((n) => n.node === r.headers['x-tether-node'])!.pid, 'number', 'the answering worker\'s own figures');
  });

  it('cluster when a worker is killed with SIGKILL under load then no acknowledged add is lost and affected clients continue on the live worker', async (t) => {
    const load = new CartLoad({ url: app.url, clients: CLIENTS, opsPerClient: 40, pauseMs: 15, logoutEvery: 10 });
    killLoad = load;
    await load.prepare();
    const running = load.run();
    await load.acked(200, 15_000);
    const victim = `${NODE}:w1`;
    const pid = await pidOf(port, victim);
    const killAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await running;

    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed.filter((o) => o.outcome !== 'conn-error'), [], 'requests fail only with connection errors');
    assert.deepEqual(failed.filter((o) => o.endedAt < killAt), [], 'nothing failed before the kill');
    for (const c of load.clients) {
      const i = c.ops.findIndex((o) => o.outcome !== 'ok');
      if (i === -1 || i === c.ops.length - 1) continue;
      // A 2xx means a live worker answered (the survivor, or the replacement if it was already up).
      assert.equal(c.ops[i + 1]!.outcome, 'ok', `client ${c.index}: the request after the failure succeeded`);
    }
    const recovery = recoveryAfter(load, killAt);
    assert.equal(recovery.recoveryMs.length, recovery.affected, 'every affected client recovered');
    assertNothingLost(await load.check());
    t.diagnostic(`kill -9 ${victim}: ${failed.length} connection errors, ${recovery.affected} clients affected, kill → first success ${recovery.recoveryMs.join(', ') || 'n/a'} ms`);
  });

  it('cluster when the primary gets SIGTERM under load then it exits 0 within 10 s and a restart brings back every session and add', async (t) => {
    const load = new CartLoad({ url: app.url, clients: CLIENTS, opsPerClient: 200, pauseMs: 15, maxMs: 30_000, logoutEvery: 5 });
    await load.prepare();
    const running = load.run();
    await load.acked(200, 15_000);
    const stopAt = Date.now();
    const exit = await app.stop('SIGTERM', 20_000);
    load.stop();
    await running;
    assert.equal(exit.code, 0, app.output().slice(-2000));
    assert.ok(exit.elapsedMs < 10_000, `exited after ${exit.elapsedMs} ms`);
    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed.filter((o) => o.outcome !== 'conn-error'), [], 'requests fail only with connection errors');
    assert.deepEqual(failed.filter((o) => o.endedAt < stopAt), [], 'nothing failed before the signal');

    app = await start();
    assertNothingLost(await load.check());
    if (killLoad) assertNothingLost(await killLoad.check());
    load.close();
    t.diagnostic(`SIGTERM: exit ${exit.code} after ${exit.elapsedMs} ms, ${load.count('ok')} acknowledged, ${failed.length} connection errors after the signal`);
  });
});
