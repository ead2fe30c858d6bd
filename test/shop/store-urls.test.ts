/**
 * The shop on stores chosen by TETHER_STORE's URL alone: the tiered near-cache over Redis
 * (`redis://…?cache=fenced`), two nodes sharing one redis-server and one shop database, each reading
 * sessions from its own local copies, and neither ever answering from a copy older than what the other
 * acknowledged; and Redis found through a Sentinel (`redis+sentinel://…/name`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, startRedisSentinel } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { ADMIN_PASSWORD, ShopClient, startTestShop, uniqueName } from '../helpers/shop.js';
import type { TestShop } from '../helpers/shop.js';
import { removeTempDir, tempDir } from '../helpers/exit.js';

let redis: RedisServer;
let shared: string;
let a: TestShop;
let b: TestShop;

before(async () => {
  [redis, shared] = await Promise.all([startRedis(), tempDir('tether-shop-tiered-')]);
  const env = { TETHER_STORE: `${redis.url}?keyPrefix=shop-tiered:&cache=fenced`, SHOP_DATABASE_URL: `sqlite:${join(shared, 'shop.db')}` };
  a = await startTestShop({ ...env, TETHER_NODE_NAME: 'node-a' });
  b = await startTestShop({ ...env, TETHER_NODE_NAME: 'node-b' });
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.dispose();
  if (shared) await removeTempDir(shared);
});

/** The same browser (its cookies) talking to another node. */
function on(node: TestShop, from: ShopClient): ShopClient {
  const c = new ShopClient(node.url);
  for (const [k, v] of from.cookies) c.cookies.set(k, v);
  return c;
}

describe('shop on the tiered store over Redis (cache=fenced in TETHER_STORE)', { timeout: 120_000 }, () => {
  it('shop when one browser alternates between two nodes then each node reads the other\'s last change, and a logout on one ends the session on both', async () => {
    const atA = new ShopClient(a.url);
    assert.equal((await atA.register(uniqueName('tier'))).status, 201);
    assert.equal((await atA.add('candle', 1)).status, 201);
    for (let round = 0; round < 5; round++) {
      const atB = on(b, atA);
      // Both nodes hold a local copy by now; the other node's write must still be seen at once.
      assert.equal((await atB.session()).body.cart.count, 1 + 2 * round, `round ${round}: node B reads node A's cart`);
      assert.equal((await atB.add('candle', 1)).status, 201);
      for (const [k, v] of atB.cookies) atA.cookies.set(k, v);
      assert.equal((await atA.session()).body.cart.count, 2 + 2 * round, `round ${round}: node A reads node B's cart`);
      assert.equal((await atA.add('candle', 1)).status, 201);
    }
    const atB = on(b, atA);
    assert.equal((await atB.session()).body.authenticated, true);
    assert.equal((await atA.post('/api/auth/logout')).status, 200);
    const after = (await atB.session()).body;
    assert.equal(after.authenticated, false, 'node B no longer answers from its copy of the ended session');
    assert.equal(after.cart.count, 0);
  });

  it('shop when the admin asks for the overview then it names the tiered store and its local copies answered reads', async () => {
    const admin = new ShopClient(a.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    for (let i = 0; i < 3; i++) await admin.session();
    const overview = await admin.get('/api/admin/overview');
    assert.equal(overview.status, 200);
    assert.equal(overview.body.store.name, 'tiered');
    assert.ok(overview.body.store.stats.hits > 0, JSON.stringify(overview.body.store.stats));
    assert.ok(overview.body.store.stats.fences > 0, 'fenced reads asked the shared store for a fence');
    assert.ok(overview.body.store.sessions >= 1, 'the shared store counts the sessions');
  });
});

describe('shop on Redis found through a Sentinel (redis+sentinel:// in TETHER_STORE)', { timeout: 120_000 }, () => {
  let primary: RedisServer;
  let sentinel: RedisServer;
  let shop: TestShop;
  before(async () => {
    primary = await startRedis();
    sentinel = await startRedisSentinel(primary.port, 'shopmaster');
    shop = await startTestShop({ TETHER_STORE: `redis+sentinel://127.0.0.1:${sentinel.port}/shopmaster?keyPrefix=shop-sentinel:` });
  });
  after(async () => {
    await shop?.stop();
    await sentinel?.dispose();
    await primary?.dispose();
  });

  it('shop when its store is named by a Sentinel URL then a shopper signs in, fills a cart stored on the master under the prefix of the URL, and signs out', async () => {
    const c = new ShopClient(shop.url);
    assert.equal((await c.register(uniqueName('sen'))).status, 201);
    assert.equal((await c.add('candle', 2)).status, 201);
    const raw = new Redis(primary.url);
    try {
      assert.ok((await raw.keys('shop-sentinel:s:*')).length >= 1, 'the session is on the master, under the URL\'s prefix');
    } finally {
      raw.disconnect();
    }
    assert.equal((await c.session()).body.cart.count, 2);
    assert.equal((await c.post('/api/auth/logout')).status, 200);
    assert.equal((await c.session()).body.authenticated, false);
  });
});
