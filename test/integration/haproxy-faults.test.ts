/**
 * Faults of the whole tier, on the many-machines setup of haproxy.test.ts (HAProxy by `tether
 * haproxy-config` in front of three shop nodes on a real redis-server and PostgreSQL), in a file of its
 * own so each stays well within the per-file bound: every node killed -9 at once and started again (F4),
 * redis-server hung for 60 s (F5), and the signing secret rotated by rolling restarts (F15), each under a
 * cart load whose acknowledged adds and logouts are checked afterwards.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CartLoad, assertNothingLost, failureKinds, refusedByProxy } from '../helpers/cart-load.js';
import { HA_SECRET, startHaCluster } from '../helpers/ha-cluster.js';
import type { HaCluster } from '../helpers/ha-cluster.js';
import { ShopClient } from '../helpers/shop.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('HAProxy tier faults: whole-tier kill, a hung Redis, secret rotation', { timeout: 420_000 }, () => {
  let ha: HaCluster;

  before(async () => {
    ha = await startHaCluster({ nodes: 3, checkInterMs: 1_000, checkFastInterMs: 250, fall: 3 });
  });
  after(async () => {
    await ha?.dispose();
  });

  it('haproxy when every node is killed with SIGKILL at once under load and started again then every session is still valid and no acknowledged add is lost', async (t) => {
    const load = new CartLoad({ url: ha.haproxy.url, clients: 12, opsPerClient: 400, pauseMs: 20, maxMs: 90_000, logoutEvery: 10 });
    await load.prepare();
    const running = load.run();
    await load.acked(300);
    const killAt = Date.now();
    await Promise.all(ha.nodes.map((n) => ha.killNode(n)));
    load.stop();
    const stopAt = Date.now();
    await running;
    for (const n of ha.nodes) await ha.waitState(n, (s) => s.startsWith('DOWN'));
    await Promise.all(ha.nodes.map((n) => ha.startNode(n)));
    for (const n of ha.nodes) await ha.waitState(n, (s) => s === 'UP');
    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed.filter((o) => o.endedAt < killAt), [], 'nothing failed before the kill');
    // What failed was in flight at the kill or sent while every node was down, until the load stopped
    // (how many depends on how long the exits took to be seen): HAProxy's refusal or a cut connection.
    const unexpected = failed.filter((o) => o.startedAt > stopAt || !refusedByProxy(o));
    assert.deepEqual(unexpected, [], 'only requests in flight at the kill or sent while the tier was down failed, each refused by HAProxy');
    const result = await load.check();
    assertNothingLost(result);
    t.diagnostic(`whole tier killed: ${load.count('ok')} adds acknowledged before, ${failed.length} failed at the kill (${failureKinds(failed)}), `
      + `${result.clients} sessions and ${result.logouts} logouts checked after the restart (${Date.now() - killAt} ms later)`);
    load.close();
  });

  it('haproxy when redis-server hangs for 60 s under load then every request in the outage is answered 503 within the store timeout, no node crashes, and the tier recovers within seconds with nothing lost (F5)', async (t) => {
    const load = new CartLoad({ url: ha.haproxy.url, clients: 6, opsPerClient: 5000, pauseMs: 100, maxMs: 200_000, logoutEvery: 20 });
    await load.prepare();
    const pids = ha.nodes.map((n) => n.app!.pid);
    const running = load.run();
    await load.acked(200);
    // A black-holed Redis (iptables DROP): connections stay open and nothing answers.
    const redisPid = ha.redis.pid;
    process.kill(redisPid, 'SIGSTOP');
    const down = Date.now();
    let up = 0;
    try {
      await sleep(60_000);
    } finally {
      process.kill(redisPid, 'SIGCONT');
      up = Date.now();
    }
    const recovered = async (): Promise<number | undefined> => load.ops().find((o) => o.outcome === 'ok' && o.startedAt >= up)?.endedAt;
    for (let i = 0; i < 400 && (await recovered()) === undefined; i++) await sleep(25);
    const before = load.count('ok');
    await load.acked(before + 60);
    load.stop();
    await running;

    // Requests made and answered wholly within the outage.
    const during = load.ops().filter((o) => o.startedAt >= down + 100 && o.endedAt <= up);
    // A client whose logout fell in the outage waits for a new session (unrecorded GETs, answered 503 too).
    assert.ok(during.length >= 20, `requests were made during the outage (${during.length})`);
    const not503 = during.filter((o) => o.outcome !== 'http-error' || o.status !== 503 || !/STORE_UNAVAILABLE/.test(o.error ?? ''));
    assert.deepEqual(not503, [], 'every request in the outage is answered 503 STORE_UNAVAILABLE');
    const slowest = Math.max(...during.map((o) => o.endedAt - o.startedAt));
    assert.ok(slowest < 3_000, `answered within the store timeout (2 s; slowest ${slowest} ms)`);
    const firstOk = await recovered();
    assert.ok(firstOk !== undefined && firstOk - up < 5_000, `served again ${firstOk === undefined ? 'never' : `${firstOk - up} ms`} after Redis came back`);
    assert.deepEqual(ha.nodes.map((n) => n.app!.pid), pids, 'no node restarted');
    for (const n of ha.nodes) assert.equal((await ha.haproxy.serverStates())[n.name], 'UP', `${n.name} stayed in rotation`);
    assertNothingLost(await load.check());
    t.diagnostic(`redis hung 60 s: ${during.length} requests answered 503 meanwhile (slowest ${slowest} ms), first success ${firstOk - up} ms after it came back; ${load.count('ok')} adds acknowledged in all`);
    load.close();
  });

  it('haproxy when the signing secret is rotated by three rolling restarts under load then no request fails, nothing is lost, and only a cookie unused since the old secret was dropped needs a new session', async (t) => {
    const rotated = 'ha-cluster-rotated-secret-0123456789abcdefghij';
    // Two visitors signed by the old secret: one comes back while both secrets verify, one not until after.
    const returning = new ShopClient(ha.haproxy.url);
    const away = new ShopClient(ha.haproxy.url);
    for (const c of [returning, away]) assert.equal((await c.add('camp-mug', 1)).status, 201);
    const load = new CartLoad({ url: ha.haproxy.url, clients: 12, opsPerClient: 5000, pauseMs: 20, maxMs: 300_000, logoutEvery: 50 });
    await load.prepare();
    const running = load.run();
    const started = Date.now();
    const rolling = async (secret: string): Promise<void> => {
      for (const n of ha.nodes) {
        const before = load.count('ok');
        await load.acked(before + 40);
        assert.equal((await ha.stopNode(n)).code, 0, `${n.name} exit code`);
        await ha.startNode(n, secret);
        await ha.waitState(n, (s) => s === 'UP');
      }
    };
    // docs/deploy.md: the new secret verifies everywhere, then signs everywhere, then the old one goes.
    await rolling(`${HA_SECRET},${rotated}`);
    await rolling(`${rotated},${HA_SECRET}`);
    const cart = await returning.get('/api/cart');
    assert.equal(cart.body.count, 1, 'an old cookie still opens its session while the old secret verifies');
    assert.ok(cart.headers['set-cookie'], 'and is signed again with the new secret');
    await rolling(rotated);
    const before = load.count('ok');
    await load.acked(before + 60);
    load.stop();
    await running;
    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed, [], 'no request failed during the rotation');
    assertNothingLost(await load.check());
    assert.equal((await returning.get('/api/cart')).body.count, 1, 'the cookie signed again keeps its session');
    assert.equal((await away.get('/api/cart')).body.count, 0, 'a cookie only the dropped secret signed opens nothing');
    t.diagnostic(`secret rotation (9 restarts in ${Date.now() - started} ms): ${load.count('ok')} adds acknowledged, 0 failed`);
    load.close();
  });
});
