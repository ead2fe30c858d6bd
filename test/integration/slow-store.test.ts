/**
 * A slow store under load (SECURITY.md F10): the shop reaches a real redis-server through a TCP proxy
 * that holds every byte it sends for 5 s (a slow network, as `tc netem delay` would make), for 15 s,
 * while a cart load runs. Requests in that time are answered 503 at the store timeout, not left hanging;
 * the held commands reach Redis late, after their callers gave up; once the delay ends the shop serves
 * again, and the cart checker finds nothing acknowledged lost, nothing applied twice, no logout undone.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CartLoad, assertNothingLost } from '../helpers/cart-load.js';
import { delayingProxy } from '../helpers/net.js';
import type { DelayingProxy } from '../helpers/net.js';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { startTestShop } from '../helpers/shop.js';
import type { TestShop } from '../helpers/shop.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HOLD_MS = 5_000;
const SLOW_FOR_MS = 15_000;

describe('shop on a slow Redis (F10)', { timeout: 180_000 }, () => {
  let redis: RedisServer;
  let proxy: DelayingProxy;
  let shop: TestShop;
  before(async () => {
    redis = await startRedis();
    proxy = await delayingProxy(redis.port);
    shop = await startTestShop({ TETHER_STORE: `redis://127.0.0.1:${proxy.port}` });
  });
  after(async () => {
    await shop?.stop();
    await proxy?.close();
    await redis?.dispose();
  });

  it('shop when its Redis answers 5 s late for 15 s under load then requests fail 503 at the store timeout, service returns, and nothing acknowledged is lost or applied twice', async (t) => {
    const load = new CartLoad({ url: shop.url, clients: 6, opsPerClient: 5000, pauseMs: 50, maxMs: 120_000, logoutEvery: 15 });
    await load.prepare();
    const running = load.run();
    await load.acked(150);
    proxy.setDelay(HOLD_MS);
    const slowFrom = Date.now();
    await sleep(SLOW_FOR_MS);
    proxy.setDelay(0);
    const slowTo = Date.now();
    // What was sent during the slow time is still held up to HOLD_MS; service returns after that.
    const firstOk = (): number | undefined => load.ops().find((o) => o.outcome === 'ok' && o.startedAt >= slowTo)?.endedAt;
    for (let i = 0; i < 800 && firstOk() === undefined; i++) await sleep(25);
    const before = load.count('ok');
    await load.acked(before + 60);
    load.stop();
    await running;

    // Sent after the first held bytes were due, answered before the delay ended: Redis could not answer in time.
    const during = load.ops().filter((o) => o.startedAt >= slowFrom + 100 && o.endedAt <= slowTo);
    assert.ok(during.length >= 10, `requests were made in the slow time (${during.length})`);
    const not503 = during.filter((o) => o.outcome !== 'http-error' || o.status !== 503);
    assert.deepEqual(not503, [], 'every request in the slow time is answered 503');
    const slowest = Math.max(...during.map((o) => o.endedAt - o.startedAt));
    assert.ok(slowest < 3_000, `answered at the store timeout (2 s), not after the delay (slowest ${slowest} ms)`);
    const back = firstOk();
    assert.ok(back !== undefined && back - slowTo < HOLD_MS + 5_000, `served again ${back === undefined ? 'never' : `${back - slowTo} ms`} after the delay ended`);
    assertNothingLost(await load.check());
    t.diagnostic(`5 s late for 15 s: ${during.length} requests answered 503 meanwhile (slowest ${slowest} ms), served again ${back - slowTo} ms after; ${load.count('ok')} adds acknowledged`);
    load.close();
  });
});
