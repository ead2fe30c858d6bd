/**
 * The shop as `npm start` runs it: a logged-in shopper with a cart survives SIGTERM and a new start on
 * the same data dir (same cookie, same cart), the development secret is generated once and kept, and
 * production refuses to start without TETHER_SECRET.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShopClient, runShopToExit, spawnShop } from '../helpers/shop.js';
import type { SpawnedShop } from '../helpers/shop.js';

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

    assert.equal(await first.stop('SIGTERM'), 0, 'a graceful stop exits 0');
    assert.match(first.output(), /SIGTERM/);

    const second = await spawnShop(env);
    running.push(second);
    assert.doesNotMatch(second.output(), /created the admin user/, 'the admin password is printed once only');
    const again = new ShopClient(second.url);
    for (const [k, v] of c.cookies) again.cookies.set(k, v);
    const after = await again.session();
    assert.equal(after.body.authenticated, true, 'still logged in');
    assert.deepEqual(after.body.user, { username: 'restart_user' });
    assert.deepEqual(after.body.cart, before.cart, 'the same cart');
    assert.equal(after.body.csrfToken, before.csrfToken, 'the same session, so the same CSRF token');
    assert.equal((await again.add('camp-mug', 1)).body.count, 4, 'and it keeps working');
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  it('shop when NODE_ENV=production and TETHER_SECRET is unset then refuses to start, naming the variable', async () => {
    const { code, output } = await runShopToExit({ NODE_ENV: 'production', TETHER_DATA_DIR: await tempDir(), TETHER_SECRET: '' });
    assert.notEqual(code, 0);
    assert.match(output, /TETHER_SECRET/);
  });
});
