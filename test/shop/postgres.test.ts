/**
 * The shop with PostgreSQL for both its own data (SHOP_DATABASE_URL) and the sessions (TETHER_STORE):
 * accounts, cart, checkout with two concurrent confirms (a user's and a guest's), orders (a guest's listed
 * to the session that placed it), and a session that outlives the process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createDatabase, startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';
import { ShopClient, startTestShop } from '../helpers/shop.js';
import type { TestShop } from '../helpers/shop.js';

let server: PostgresServer;
let env: Record<string, string>;
let t: TestShop;

before(async () => {
  server = await startPostgres({ fast: true });
  env = { TETHER_STORE: server.url, SHOP_DATABASE_URL: await createDatabase(server.url, 'shop') };
  t = await startTestShop(env);
});
after(async () => {
  await t?.stop();
  await server?.dispose();
});

const SHIPPING = { name: 'Grace Hopper', address: '1 Navy Way', city: 'Arlington', postalCode: '22202', country: 'United States' };

describe('shop on PostgreSQL', { timeout: 120_000 }, () => {
  it('shop when backed by PostgreSQL then registers, refuses taken names in any case and checks credentials', async () => {
    const c = new ShopClient(t.url);
    assert.equal((await c.register('grace_pg')).status, 201);
    const other = new ShopClient(t.url);
    assert.equal((await other.register('GRACE_PG')).body.error.code, 'USERNAME_TAKEN');
    assert.equal((await other.login('grace_pg', 'not the password')).status, 401);
    assert.equal((await other.login('Grace_PG')).status, 200, 'usernames match case-insensitively');
  });

  it('shop when two confirms race on PostgreSQL then one order is placed and listed', async () => {
    const c = new ShopClient(t.url);
    await c.add('turntable', 1);
    await c.register('hopper_orders');
    await c.post('/api/checkout/shipping', SHIPPING);
    await c.post('/api/checkout/payment', { cardNumber: '5555 5555 5555 4444', expiry: '10/35' });
    const [a, b] = await Promise.all([c.post('/api/checkout/confirm'), c.post('/api/checkout/confirm')]);
    assert.equal([a, b].filter((r) => r.status === 201).length, 1, `${a.status} ${b.status}`);
    const orders = (await c.get('/api/orders')).body;
    assert.equal(orders.length, 1);
    assert.deepEqual(orders[0].payment, { brand: 'Mastercard', last4: '4444' });
    assert.equal(orders[0].total, 249);
  });

  it('shop when a guest\'s confirms race on PostgreSQL then one order is placed, without a user, and the session\'s cart is emptied', async () => {
    const c = new ShopClient(t.url);
    await c.add('candle', 2);
    await c.post('/api/checkout/contact', { email: 'grace@example.org' });
    await c.post('/api/checkout/shipping', SHIPPING);
    const { runId } = (await c.post('/api/checkout/payment', { cardNumber: '4242 4242 4242 4242', expiry: '10/35' })).body;
    const replies = await Promise.all([1, 2].map(() => c.post('/api/checkout/confirm', { runId })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 201]);
    assert.equal(replies[0]!.body.orderId, replies[1]!.body.orderId);
    const order = await t.shop.db.findOrderByKey(`guest-checkout:${runId}`);
    assert.equal(order?.userId, null);
    assert.equal(order?.email, 'grace@example.org');
    assert.equal((await c.get('/api/cart')).body.count, 0);
    const listed = (await c.get('/api/orders')).body;
    assert.deepEqual(listed.map((o: { id: string; email: string }) => [o.id, o.email]), [[order.id, 'grace@example.org']], 'the session lists the order it placed');
    assert.deepEqual((await new ShopClient(t.url).get('/api/orders')).body, [], 'and no other visitor does');
  });

  it('shop when a shipping field holds NUL on PostgreSQL (which JSONB refuses) then the step answers 400 VALIDATION_FAILED and the checkout goes on to an order', async () => {
    const c = new ShopClient(t.url);
    await c.add('candle', 1);
    await c.post('/api/checkout/contact', { email: 'grace@example.org' });
    const refused = await c.post('/api/checkout/shipping', { ...SHIPPING, name: 'Grace\u0000Hopper' });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.body.error.code, 'VALIDATION_FAILED');
    assert.equal((await c.get('/api/checkout')).body.step, 'shipping', 'the step stays');
    await c.post('/api/checkout/shipping', SHIPPING);
    const { runId } = (await c.post('/api/checkout/payment', { cardNumber: '4242 4242 4242 4242', expiry: '10/35' })).body;
    const placed = await c.post('/api/checkout/confirm', { runId });
    assert.equal(placed.status, 201, placed.text);
    assert.equal((await t.shop.db.findOrderByKey(`guest-checkout:${runId}`))?.shipping.name, 'Grace Hopper');
  });

  it('shop when restarted on the same PostgreSQL then the session and cart are still there', async () => {
    const c = new ShopClient(t.url);
    await c.add('candle', 2);
    await c.register('hopper_restart');
    // A new process in all but name: new data dir, same secret, same databases.
    await t.stop();
    t = await startTestShop(env);
    const again = new ShopClient(t.url);
    for (const [k, v] of c.cookies) again.cookies.set(k, v);
    const s = (await again.session()).body;
    assert.equal(s.authenticated, true);
    assert.equal(s.cart.items[0].quantity, 2);
  });
});
