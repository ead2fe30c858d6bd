/**
 * Limits counted once per cluster (src/cluster/limits.ts), against the shop run as a real primary
 * with two real workers: new sessions from one address are admitted up to the limit for the whole
 * cluster, however the primary spreads the connections over the workers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { probe, startApp } from '../helpers/node-process.js';
import { freePort } from '../helpers/net.js';
import { clearOfMinuteBoundary } from '../helpers/time.js';

const LIMIT = 4;

describe('cluster-wide limits', { timeout: 120_000 }, () => {
  it('new sessions from one address when spread over both workers then the limit holds once for the cluster, not once per worker', async (t) => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-limits-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const app = await startApp({
      script: 'apps/shop/main.ts', port: await freePort(), readyNodes: 2, readyTimeoutMs: 60_000,
      env: {
        TETHER_WORKERS: '2', TETHER_DATA_DIR: dataDir, SHOP_ADMIN_PASSWORD: 'admin-password-for-tests',
        TETHER_SECRET: 'limits-test-secret-limits-test-secret-0123456', SHOP_NEW_SESSIONS_PER_MINUTE: String(LIMIT),
      },
    });
    t.after(() => app.stop());
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
});
