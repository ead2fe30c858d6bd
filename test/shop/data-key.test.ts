/**
 * TETHER_DATA_KEY: the shop's session data (an anonymous visitor's cart) and user contexts (a signed-in
 * user's saved cart) encrypted in its SQLite session store, readable again after a restart with the
 * key; the same shop without the key stores them readable, which shows what the test looks for is
 * there to find.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../apps/shop/config.js';
import { startShop } from '../../apps/shop/server.js';
import { ADMIN_PASSWORD, ShopClient, TEST_SECRET, uniqueName } from '../helpers/shop.js';
import { removeTempDir, tempDir } from '../helpers/exit.js';

/** The bytes of the session store's files (the database, its WAL and shared memory), as one string. */
function sessionFiles(dir: string): string {
  return readdirSync(dir).filter((f) => f.startsWith('sessions.db')).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('');
}

/** Runs `fn` against the shop on `dir`, with `env` added, then stops it. */
async function withShop<T>(dir: string, env: Record<string, string>, fn: (url: string) => Promise<T>): Promise<T> {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', TETHER_DATA_DIR: dir, TETHER_SECRET: TEST_SECRET, SHOP_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env }, () => {});
  const shop = await startShop(config);
  try {
    return await fn(shop.url);
  } finally {
    await shop.close();
  }
}

/**
 * A visitor puts 3 of one product in the cart (kept in the session), and `username` registers and puts 2
 * of another in theirs (kept in their user context). Returns the visitor's cookies and both products.
 */
async function fillCarts(url: string, username: string): Promise<{ cookies: Array<[string, string]>; productId: string; savedId: string }> {
  const c = new ShopClient(url);
  const products = (await c.get('/api/products')).body as Array<{ id: string }>;
  assert.equal((await c.add(products[2]!.id, 3)).status, 201);
  const u = new ShopClient(url);
  assert.equal((await u.register(username)).status, 201);
  assert.equal((await u.add(products[4]!.id, 2)).status, 201);
  return { cookies: [...c.cookies], productId: products[2]!.id, savedId: products[4]!.id };
}

describe('shop with TETHER_DATA_KEY', () => {
  it('carts when stored, a visitor\'s and a signed-in user\'s, then the session store holds them encrypted, and a restart with the key reads them back', async () => {
    const key = randomBytes(32).toString('base64url');
    const username = uniqueName('sealed');
    const encrypted = await tempDir('tether-shop-key-');
    const plain = await tempDir('tether-shop-plain-');
    try {
      const shopper = await withShop(encrypted, { TETHER_DATA_KEY: key }, (url) => fillCarts(url, username));
      const bytes = sessionFiles(encrypted);
      assert.ok(bytes.includes('tether:enc:1:'), 'encrypted records are in the store');
      assert.equal(bytes.includes(shopper.productId), false, 'the cart is not readable in the store');
      assert.equal(bytes.includes(shopper.savedId), false, 'the user\'s saved cart is not readable in the store');

      await withShop(encrypted, { TETHER_DATA_KEY: key }, async (url) => {
        const c = new ShopClient(url);
        for (const [name, value] of shopper.cookies) c.cookies.set(name, value);
        const cart = (await c.session()).body.cart as { items: Array<{ productId: string; quantity: number }> };
        assert.deepEqual(cart.items.map((i) => [i.productId, i.quantity]), [[shopper.productId, 3]], 'the same cart after a restart');
        const u = new ShopClient(url);
        assert.equal((await u.login(username)).status, 200);
        const saved = (await u.session()).body.cart as { items: Array<{ productId: string; quantity: number }> };
        assert.deepEqual(saved.items.map((i) => [i.productId, i.quantity]), [[shopper.savedId, 2]], 'the user\'s saved cart after a restart');
      });

      const { productId } = await withShop(plain, {}, (url) => fillCarts(url, username));
      assert.ok(sessionFiles(plain).includes(productId), 'without the key the same cart is readable in the store');
      assert.ok(sessionFiles(plain).includes(shopper.savedId), 'without the key the user\'s saved cart is readable in the store');
    } finally {
      await removeTempDir(encrypted);
      await removeTempDir(plain);
    }
  });
});
