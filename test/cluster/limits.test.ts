/**
 * Limits counted once per cluster (src/cluster/limits.ts), against the shop run as a real primary
 * with two real workers: new sessions from one address are admitted up to the limit for the whole
 * cluster, however the primary spreads the connections over the workers; so are failed logins.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { probe, startApp } from '../helpers/node-process.js';
import { freePort } from '../helpers/net.js';
import { clearOfMinuteBoundary } from '../helpers/time.js';
import { ShopClient, uniqueName } from '../helpers/shop.js';

const LIMIT = 4;

/** The shop as `npm start` runs it, a primary and two workers, with `env` on top; stopped after the test. */
async function startShop(t: TestContext, env: Record<string, string>): Promise<Awaited<ReturnType<typeof startApp>>> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-limits-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const app = await startApp({
    script: 'apps/shop/main.ts', port: await freePort(), readyNodes: 2, readyTimeoutMs: 60_000,
    env: {
      TETHER_WORKERS: '2', TETHER_DATA_DIR: dataDir, SHOP_ADMIN_PASSWORD: 'admin-password-for-tests',
      TETHER_SECRET: 'limits-test-secret-limits-test-secret-0123456', ...env,
    },
  });
  t.after(() => app.stop());
  return app;
}

function assertRefused(r: { status: number; text: string }): void {
  assert.equal(r.status, 429, r.text);
}

describe('cluster-wide limits', { timeout: 120_000 }, () => {
  it('new sessions from one address when spread over both workers then the limit holds once for the cluster, not once per worker', async (t) => {
    const app = await startShop(t, { SHOP_NEW_SESSIONS_PER_MINUTE: String(LIMIT) });
    await clearOfMinuteBoundary();

    const statuses: number[] = [];
    const nodes = new Set<string>();
    for (let i = 0; i < 2 * LIMIT; i++) {
      // A new connection each time, with no cookie: the primary deals them out to the workers in turn.
      const r = await probe(app.port, '/api/session');
      statuses.push(r.status);
      if (r.node) nodes.add(r.node);
    }
    assert.equal(nodes.size, 2, `both workers answered (${[...nodes].join(', ')})`);
    assert.deepEqual(statuses, [...Array(LIMIT).fill(200), ...Array(LIMIT).fill(429)]);
  });

  it('failed logins of one account when they reach both workers then the limit holds once for the cluster', async (t) => {
    const app = await startShop(t, { SHOP_LOGIN_FAILURES_PER_ACCOUNT: String(LIMIT) });
    const url = `http://127.0.0.1:${app.port}`;
    const username = uniqueName('limited');
    assert.equal((await new ShopClient(url).register(username)).status, 201);

    // Browsers whose sessions the primary routes to one worker or the other. A first request has no
    // cookie and goes to the next worker in turn; the second is routed by the session cookie, as the
    // login will be, so it tells which worker the login reaches.
    const byNode = new Map<string, ShopClient[]>();
    for (let i = 0; i < 40 && [...byNode.values()].filter((l) => l.length >= LIMIT).length < 2; i++) {
      const c = new ShopClient(url);
      await c.session();
      const node = String((await c.session()).headers['x-tether-node']);
      byNode.set(node, [...(byNode.get(node) ?? []), c]);
    }
    const lists = [...byNode.values()];
    assert.ok(lists.length === 2 && lists.every((l) => l.length >= LIMIT), `sessions landed on both workers (${[...byNode.keys()].join(', ')})`);
    const [one, two] = lists as [ShopClient[], ShopClient[]];
    const nodes = new Set<string>();
    for (let i = 0; i < LIMIT; i++) {
      const client = (i % 2 ? two : one)[i]!;
      const r = await client.login(username, 'a wrong password');
      assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
      nodes.add(String(r.headers['x-tether-node']));
    }
    assert.equal(nodes.size, 2, `the failures were counted on both workers (${[...nodes].join(', ')})`);
    for (const c of [one[LIMIT - 1]!, two[LIMIT - 1]!]) assertRefused(await c.login(username, 'another wrong one'));
    // Past the limit even the right password is refused, on either worker.
    for (const c of [one[0]!, two[0]!]) assertRefused(await c.login(username));
  });
});
