/**
 * The shop's live channel (/api/live, apps/shop/lib/live.ts) with a real WebSocket client: only a
 * signed-in session from the shop's own origin is upgraded; "log out everywhere else", a logout and a
 * logout handled by another process sharing the store close the sockets of the sessions that ended
 * (4001, with the reason); the others stay open; closing the shop closes its sockets (1001).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ShopClient, rawRequest, spawnShop, startTestShop, uniqueName } from '../helpers/shop.js';
import { removeTempDir, tempDir } from '../helpers/exit.js';
import type { TestShop } from '../helpers/shop.js';
import { connect } from '../helpers/ws.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTether, MemoryStore } from 'tether';
import { GatedStore } from '../fixtures/gated-store.js';
import { SECRET_A, cookiePair, view } from '../unit/support.js';
import { LIVE_PATH, attachLive } from '../../apps/shop/lib/live.js';

/** The live channel's URL and the headers a page of the shop sends with its handshake. */
function liveOf(shop: TestShop, client?: ShopClient): [string, Record<string, string>] {
  const headers: Record<string, string> = { origin: shop.url, 'user-agent': client?.userAgent ?? 'shop-test-client' };
  if (client && client.cookies.size > 0) headers.cookie = client.cookieHeader;
  return [shop.url.replace('http:', 'ws:') + '/api/live', headers];
}

async function signedIn(shop: TestShop, name: string, agent: string): Promise<ShopClient> {
  const client = new ShopClient(shop.url, agent);
  assert.equal((await client.login(name)).status, 200);
  return client;
}

describe('shop live channel', () => {
  it('live when the handshake has no signed-in session, another origin or another path then 401, 403, 404; signed in, hello', async (t) => {
    const shop = await startTestShop();
    t.after(() => shop.stop());
    const [url, headers] = liveOf(shop);
    await assert.rejects(connect(url, headers), { status: 401, body: { error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } } });
    const guest = new ShopClient(shop.url);
    await guest.add('p1');
    await assert.rejects(connect(...liveOf(shop, guest)), { status: 401 }, 'a guest session is not signed in');

    const name = uniqueName('live');
    const user = new ShopClient(shop.url);
    assert.equal((await user.register(name)).status, 201);
    const [u, h] = liveOf(shop, user);
    await assert.rejects(connect(u, { ...h, origin: 'http://evil.test' }), { status: 403, body: { error: { code: 'ORIGIN_MISMATCH', message: 'the request comes from another origin' } } });
    await assert.rejects(connect(u.replace('/api/live', '/api/other'), h), { status: 404 });
    const live = await connect(u, h);
    await live.received(1);
    assert.deepEqual(live.messages, [{ type: 'hello' }]);
    assert.ok(shop.logs.some((l) => l.includes('"live.refused"') && l.includes('ORIGIN_MISMATCH')), 'the foreign handshake is logged');
    assert.ok(!shop.logs.some((l) => l.includes(user.cookieHeader.split('=')[1]!)), 'never the cookie');
    live.ws.close();
  });

  it('live when a handshake is refused (not signed in, another origin, another path) then the answer carries X-Tether-Node and nosniff like every other answer', async (t) => {
    const shop = await startTestShop();
    t.after(() => shop.stop());
    const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const cases: Array<[string, Record<string, string>, number, string]> = [
      ['/api/live', { origin: shop.url }, 401, 'UNAUTHORIZED'],
      ['/api/live', { origin: 'http://evil.test' }, 403, 'ORIGIN_MISMATCH'],
      ['/api/other', { origin: shop.url }, 404, 'NOT_FOUND'],
    ];
    for (const [path, headers, status, code] of cases) {
      const r = await rawRequest(shop.url + path, 'GET', { ...upgrade, ...headers });
      assert.equal(r.status, status, `${path} ${JSON.stringify(headers)}: ${r.text}`);
      assert.equal(r.body?.error?.code, code);
      assert.equal(r.headers['x-tether-node'], 'test-node', `${status}: the node that refused it`);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['referrer-policy'], 'same-origin');
      assert.equal(r.headers['cache-control'], 'no-store');
    }
  });

  it('live when the user logs out everywhere else, then out, then the sockets of the ended sessions close at once with the reason, and no others', async (t) => {
    const shop = await startTestShop();
    t.after(() => shop.stop());
    const name = uniqueName('live');
    const laptop = new ShopClient(shop.url, 'laptop');
    assert.equal((await laptop.register(name)).status, 201);
    const phone = await signedIn(shop, name, 'phone');
    const tablet = await signedIn(shop, name, 'tablet');
    const other = await signedIn(shop, name, 'other-tab');
    const [onLaptop, onPhone, onTablet, onOther] = await Promise.all([laptop, phone, tablet, other].map((c) => connect(...liveOf(shop, c))));

    const out = await laptop.request('DELETE', '/api/me/sessions/others');
    assert.equal(out.status, 200);
    for (const socket of [onPhone!, onTablet!, onOther!]) {
      assert.deepEqual(await socket.closed, { code: 4001, reason: 'destroyed' });
      assert.deepEqual(socket.messages.at(-1), { type: 'ended', reason: 'destroyed' });
    }
    assert.equal(onLaptop!.ws.readyState, onLaptop!.ws.OPEN, 'the session that asked stays');

    assert.equal((await laptop.post('/api/auth/logout')).status, 200);
    assert.deepEqual(await onLaptop!.closed, { code: 4001, reason: 'destroyed' });
  });

  it('live when another process sharing the store logs the session out then the socket closes at once, through the store\'s change feed, long before its check (gone)', async (t) => {
    const a = await startTestShop({ SHOP_LIVE_CHECK_INTERVAL: '3600' });
    t.after(() => a.stop());
    const b = await startTestShop({
      SHOP_LIVE_CHECK_INTERVAL: '3600',
      TETHER_STORE: `sqlite:${join(a.dataDir, 'sessions.db')}`,
      SHOP_DATABASE_URL: `sqlite:${join(a.dataDir, 'shop.db')}`,
    });
    t.after(() => b.stop());
    const name = uniqueName('live');
    const user = new ShopClient(a.url, 'browser');
    assert.equal((await user.register(name)).status, 201);
    const onB = await connect(...liveOf(b, user));
    await onB.received(1);
    const started = Date.now();
    assert.equal((await user.post('/api/auth/logout')).status, 200, 'handled by a');
    assert.deepEqual(await onB.closed, { code: 4001, reason: 'gone' });
    assert.ok(Date.now() - started < 5_000, `closed after ${Date.now() - started} ms`);
  });

  it('live when the shop closes then its sockets close with 1001 and the close completes; past SHOP_LIVE_MAX_SOCKETS a handshake is 503; at 0 there is no channel', async (t) => {
    const shop = await startTestShop({ SHOP_LIVE_MAX_SOCKETS: '1' });
    let stopped = false;
    t.after(() => (stopped ? undefined : shop.stop()));
    const user = new ShopClient(shop.url);
    assert.equal((await user.register(uniqueName('live'))).status, 201);
    const first = await connect(...liveOf(shop, user));
    await assert.rejects(connect(...liveOf(shop, user)), { status: 503 });
    const started = Date.now();
    await shop.stop();
    stopped = true;
    assert.deepEqual(await first.closed, { code: 1001, reason: 'server shutting down' });
    assert.ok(Date.now() - started < 5_000, `closed in ${Date.now() - started} ms`);

    const off = await startTestShop({ SHOP_LIVE_MAX_SOCKETS: '0' });
    t.after(() => off.stop());
    const visitor = new ShopClient(off.url);
    assert.equal((await visitor.register(uniqueName('live'))).status, 201);
    await assert.rejects(connect(...liveOf(off, visitor)), { status: 404 });
  });

  it('live when the cluster (npm start) gets SIGTERM with a socket open then the drain closes it with 1001 at once and the primary exits 0, not held to the drain deadline', { timeout: 60_000 }, async (t) => {
    const dataDir = await tempDir('tether-shop-');
    const shop = await spawnShop({ TETHER_DATA_DIR: dataDir, TETHER_WORKERS: '1' });
    t.after(async () => {
      await shop.stop('SIGKILL');
      await removeTempDir(dataDir);
    });
    const user = new ShopClient(shop.url);
    assert.equal((await user.register(uniqueName('live'))).status, 201);
    const headers = { origin: shop.url, 'user-agent': user.userAgent, cookie: user.cookieHeader };
    const socket = await connect(shop.url.replace('http:', 'ws:') + '/api/live', headers);
    await socket.received(1);
    const started = Date.now();
    const exit = shop.stop('SIGTERM');
    assert.deepEqual(await socket.closed, { code: 1001, reason: 'server shutting down' });
    assert.equal(await exit, 0);
    // The drain deadline is 8 s: a socket left open held every drain to it, and was then cut (1006).
    assert.ok(Date.now() - started < 4_000, `exited ${Date.now() - started} ms after SIGTERM`);
  });
});

describe('shop live channel: the cap on sockets', () => {
  it('live when handshakes past SHOP_LIVE_MAX_SOCKETS read their sessions at the same time then only the cap is upgraded, the others 503', async (t) => {
    const store = new GatedStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const tether = createTether({ secrets: [SECRET_A], store });
    const server = http.createServer((_req, res) => res.end());
    const live = attachLive(server, tether, { maxSockets: 1, checkIntervalMs: 60_000, heartbeatMs: 60_000, forgedAllowed: async () => true, warn: () => {} });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t.after(async () => {
      await live.close();
      await new Promise((done) => server.close(done));
      await tether.close();
    });
    const cookies: string[] = [];
    for (const user of ['ada', 'bob', 'cy']) {
      const s = await tether.open(view('POST'));
      s.login(user);
      cookies.push(cookiePair(await tether.commit(s))!);
    }
    // Every handshake's read of its session waits until all three have passed the cap's check.
    const reached = store.hold();
    const attempts = cookies.map((cookie) => connect(origin.replace('http:', 'ws:') + LIVE_PATH, { origin, cookie }).then(
      (opened) => ({ opened, status: 101 }),
      (err: { status?: number }) => ({ opened: null, status: err.status ?? 0 }),
    ));
    await reached;
    await new Promise((done) => setTimeout(done, 200));
    store.release();
    const results = await Promise.all(attempts);
    for (const r of results) r.opened?.ws.close();
    assert.deepEqual(results.map((r) => r.status).sort(), [101, 503, 503]);
  });
});
