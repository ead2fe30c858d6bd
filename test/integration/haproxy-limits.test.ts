/**
 * Rate limits behind HAProxy: two shop nodes (separate machines' worth: each its own primary) sharing a
 * real redis-server. The shop gives its limiters the session store, so the counts live in Redis and a
 * limit holds once for the tier, however HAProxy spreads the requests (SECURITY.md S34, S47).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startHaCluster } from '../helpers/ha-cluster.js';
import { TestClient } from '../helpers/http-client.js';
import { clearOfMinuteBoundary } from '../helpers/time.js';
import { TETHER_DEFAULTS } from '../../src/core/options.js';
import type { HaCluster } from '../helpers/ha-cluster.js';

const LIMIT = 6;
const nodeOf = (worker: string | undefined): string | undefined => worker?.split(':')[0];

describe('HAProxy in front of two shop nodes with the shop\'s rate limits', { timeout: 300_000 }, () => {
  let ha: HaCluster;

  before(async () => {
    ha = await startHaCluster({
      nodes: 2,
      env: { SHOP_NEW_SESSIONS_PER_MINUTE: String(LIMIT), SHOP_REJECTED_COOKIES_PER_MINUTE: String(LIMIT) },
    });
  });
  after(async () => {
    await ha?.dispose();
  });

  it('new sessions from one address when HAProxy spreads them over both nodes then the limit holds once for the tier, not once per node', async () => {
    await clearOfMinuteBoundary();
    const statuses: number[] = [];
    const nodes = new Set<string | undefined>();
    for (let i = 0; i < 2 * LIMIT; i++) {
      // A browser with no cookie each time: HAProxy picks a node for it.
      const client = new TestClient(ha.haproxy.url);
      const r = await client.request('GET', '/api/session');
      client.close();
      statuses.push(r.status);
      nodes.add(nodeOf(r.node));
      if (r.status === 429) assert.equal((r.body as { error: { code: string } }).error.code, 'RATE_LIMITED');
    }
    assert.equal(nodes.size, 2, `both nodes answered (${[...nodes].join(', ')})`);
    assert.deepEqual(statuses, [...Array(LIMIT).fill(200), ...Array(LIMIT).fill(429)]);
  });

  it('forged session cookies from one address when they reach both nodes then the limit holds once for the tier', async () => {
    await clearOfMinuteBoundary();
    // The shop keeps the default cookie name (no Secure over plain http, so no __Host- prefix).
    const name = TETHER_DEFAULTS.cookieName;
    const statuses: number[] = [];
    const nodes = new Set<string | undefined>();
    for (let i = 0; i < 2 * LIMIT; i++) {
      const client = new TestClient(ha.haproxy.url);
      client.cookies.set(name, `${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`);
      const r = await client.request('GET', '/api/cart');
      client.close();
      statuses.push(r.status);
      nodes.add(nodeOf(r.node));
    }
    assert.equal(nodes.size, 2, `both nodes answered (${[...nodes].join(', ')})`);
    assert.deepEqual(statuses, [...Array(LIMIT).fill(200), ...Array(LIMIT).fill(429)]);
  });
});
