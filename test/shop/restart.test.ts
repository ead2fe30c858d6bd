/**
 * The shop as `npm start` runs it: a logged-in shopper with a cart survives SIGTERM and a new start on
 * the same data dir (same cookie, same cart), the development secret is generated once and kept, and
 * production refuses to start without TETHER_SECRET.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShopClient, TEST_SECRET, rawRequest, runShopToExit, spawnShop } from '../helpers/shop.js';
import { loadConfig } from '../../apps/shop/config.js';
import { startShop } from '../../apps/shop/server.js';
import type { SpawnedShop } from '../helpers/shop.js';

/**
 * A cart add whose body is sent in two parts, so the test decides when the request completes.
 * `started` resolves once a worker has begun the request: it answered `Expect: 100-continue`, which
 * Node's server does when it has parsed the headers (bytes merely written by the client may still sit
 * in the listen queue, where a stop would rightly refuse them).
 */
function slowAdd(url: string, c: ShopClient, productId: string): { started: Promise<void>; finish(): void; reply: Promise<{ status: number; body: any }> } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const body = JSON.stringify({ productId, quantity: 1 });
  let finish!: () => void;
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const reply = new Promise<{ status: number; body: any }>((resolve, reject) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const req = http.request(url + '/api/cart/items', {
      method: 'POST', agent: false,
      headers: { origin: new URL(url).origin, cookie: c.cookieHeader, 'x-csrf-token': c.csrf!, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), expect: '100-continue' },
    }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.on('continue', () => req.write(body.slice(0, 5), () => started()));
    req.flushHeaders();
    finish = () => req.end(body.slice(5));
  });
  return { started: startedP, finish: () => finish(), reply };
}

const dirs: string[] = [];
const running: SpawnedShop[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tether-shop-restart-'));
  dirs.push(d);
  return d;
}

after(async () => {
  for (const s of running) await s.stop('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('shop restart', { timeout: 120_000 }, () => {
  it('shop when stopped with SIGTERM and started again then the same cookie is still logged in with the same cart', async () => {
    const dataDir = await tempDir();
    const env = { TETHER_DATA_DIR: dataDir, TETHER_NODE_NAME: 'restart-node' };
    const first = await spawnShop(env);
    running.push(first);
    assert.match(first.output(), /TETHER_SECRET is not set; generated a secret/);
    assert.equal(first.output().match(/TETHER_SECRET is not set/g)!.length, 1, 'said once, by the primary, not again by each worker');
    assert.match(first.output(), /created the admin user: username "admin", password "[^"]{8,}"/);
    const secretFile = await stat(join(dataDir, 'secret'));
    assert.equal(secretFile.mode & 0o777, 0o600, 'the generated secret is readable by its owner only');

    const c = new ShopClient(first.url);
    await c.add('camp-mug', 2);
    assert.equal((await c.register('restart_user')).status, 201);
    await c.add('notebook', 1);
    const before = (await c.session()).body;
    assert.equal(before.authenticated, true);
    assert.equal(before.cart.count, 3);

    // A request in flight when SIGTERM arrives is finished before the process exits.
    const inFlight = slowAdd(first.url, c, 'notebook');
    await inFlight.started;
    const exit = first.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    inFlight.finish();
    const reply = await inFlight.reply;
    assert.equal(reply.status, 201, 'the in-flight request was answered');
    assert.equal(await exit, 0, 'a graceful stop exits 0');
    assert.match(first.output(), /SIGTERM/);
    before.cart = reply.body;

    const second = await spawnShop(env);
    running.push(second);
    assert.doesNotMatch(second.output(), /created the admin user/, 'the admin password is printed once only');
    const again = new ShopClient(second.url);
    for (const [k, v] of c.cookies) again.cookies.set(k, v);
    const resumed = await again.session();
    assert.equal(resumed.body.authenticated, true, 'still logged in');
    assert.deepEqual(resumed.body.user, { username: 'restart_user' });
    assert.deepEqual(resumed.body.cart, before.cart, 'the same cart');
    assert.equal(resumed.body.csrfToken, before.csrfToken, 'the same session, so the same CSRF token');
    assert.equal(resumed.body.cart.count, 4, 'including the add that was in flight at SIGTERM');
    assert.equal((await again.add('camp-mug', 1)).body.count, 5, 'and it keeps working');
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  it('shop when started again with another SHOP_ADMIN_PASSWORD then the admin\'s sessions signed in with the old one are ended, other users\' stay', async () => {
    const dataDir = await tempDir();
    const logs: string[] = [];
    const start = (password: string) => startShop(loadConfig({
      PORT: '0', HOST: '127.0.0.1', TETHER_DATA_DIR: dataDir, TETHER_SECRET: TEST_SECRET, SHOP_ADMIN_PASSWORD: password, TETHER_NODE_NAME: 'restart-test',
    }, (line) => logs.push(line)));
    let shop = await start('old admin password');
    const admin = new ShopClient(shop.url);
    assert.equal((await admin.login('admin', 'old admin password')).status, 200);
    const shopper = new ShopClient(shop.url);
    assert.equal((await shopper.register('restart_shopper')).status, 201);
    await shop.close();
    shop = await start('new admin password');
    try {
      const old = await rawRequest(`${shop.url}/api/admin/overview`, 'GET', { cookie: admin.cookieHeader, 'user-agent': admin.userAgent });
      assert.equal(old.status, 401, `the session signed in with the replaced password: ${old.status} ${old.text}`);
      assert.match(logs.join('\n'), /admin password updated from SHOP_ADMIN_PASSWORD; ended the 1 session\(s\) signed in with the old one/);
      const other = await rawRequest(`${shop.url}/api/session`, 'GET', { cookie: shopper.cookieHeader, 'user-agent': shopper.userAgent });
      assert.equal(other.body?.authenticated, true, 'another user stays signed in');
      assert.equal((await new ShopClient(shop.url).login('admin', 'new admin password')).status, 200);
    } finally {
      await shop.close();
    }
  });

  it('shop when TETHER_STORE=memory and TETHER_WORKERS is unset then it runs one worker, so every connection finds the session', async () => {
    const shop = await spawnShop({ TETHER_DATA_DIR: await tempDir(), TETHER_STORE: 'memory' });
    running.push(shop);
    assert.match(shop.output(), /\(1 worker\(s\)/);
    // Each ShopClient request opens a new connection: with two workers, about half of these carts
    // would be created on one worker and looked for on the other.
    for (let n = 0; n < 8; n++) {
      const c = new ShopClient(shop.url);
      await c.add('camp-mug', 1);
      for (let i = 0; i < 3; i++) assert.equal((await c.get('/api/cart')).body.count, 1, `client ${n}, request ${i}`);
    }
    assert.equal(await shop.stop('SIGTERM'), 0);
  });

  it('shop when NODE_ENV=production and TETHER_SECRET is unset then refuses to start, naming the variable', async () => {
    const { code, output } = await runShopToExit({ NODE_ENV: 'production', TETHER_DATA_DIR: await tempDir(), TETHER_SECRET: '' });
    assert.notEqual(code, 0);
    assert.match(output, /TETHER_SECRET/);
  });
});
