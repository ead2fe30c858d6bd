/**
 * The shop's public HTTP contract, guest checkout: a visitor without an account checks out through the
 * same /api/checkout routes, an email address first, the progress kept in the session; steps in order,
 * input checked, confirm idempotent per run and placing one order however many race, the order stored
 * without a user; a login drops the guest checkout; GET /api/orders lists a visitor the orders its session
 * placed as a guest, and nobody else's. In-process shop, SQLite stores.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ShopClient, assertError, startTestShop, uniqueName } from '../helpers/shop.js';
import type { TestShop } from '../helpers/shop.js';

let t: TestShop;
before(async () => {
  t = await startTestShop({ SHOP_NEW_SESSIONS_PER_MINUTE: '100000' });
});
after(async () => {
  await t?.stop();
});


const CONTACT = { email: 'ada@example.org' };
const SHIPPING = { name: 'Ada Lovelace', address: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'United Kingdom' };
const CARD = { cardNumber: '5555 5555 5555 4444', expiry: '12/39' };

/** A guest with `items` in the cart, at the review step; returns the run's ID. */
async function guestAtReview(items: Array<[string, number]> = [['notebook', 2]], client = new ShopClient(t.url), contact = CONTACT): Promise<{ client: ShopClient; runId: string }> {
  for (const [id, n] of items) await client.add(id, n);
  await client.post('/api/checkout/contact', contact);
  await client.post('/api/checkout/shipping', SHIPPING);
  const view = (await client.post('/api/checkout/payment', CARD)).body;
  assert.equal(view.step, 'review');
  return { client, runId: view.runId };
}

describe('shop api: guest checkout', () => {
  it('checkout when a visitor has no session then shows the guest steps, email first, and creates no session', async () => {
    const c = new ShopClient(t.url);
    const r = await c.get('/api/checkout');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { step: 'contact', steps: ['contact', 'shipping', 'payment', 'review'], data: {}, runId: null, lastOrder: null });
    assert.equal(r.headers['set-cookie'], undefined, 'viewing the checkout made no session');
  });

  it('guest checkout when steps are skipped or back is used at the start then 409 FLOW_STEP_OUT_OF_ORDER', async () => {
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 1);
    assertError(await c.post('/api/checkout/shipping', SHIPPING), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await c.post('/api/checkout/payment', CARD), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await c.post('/api/checkout/confirm'), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await c.post('/api/checkout/back'), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assert.equal((await c.post('/api/checkout/contact', CONTACT)).body.step, 'shipping');
    // Too early is what is wrong with it, whatever its input.
    assertError(await c.post('/api/checkout/payment', { cardNumber: '12ab' }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await c.post('/api/checkout/confirm'), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assert.equal((await c.post('/api/checkout/back')).body.step, 'contact');
    assert.deepEqual((await c.get('/api/checkout')).body.data, { contact: CONTACT }, 'back keeps what was entered');
  });

  it('guest checkout when the input is bad then 400 VALIDATION_FAILED and the step stays', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    for (const body of [{}, { email: '' }, { email: 'ada' }, { email: 'ada@' }, { email: '@example.org' }, { email: 'ada@localhost' },
      { email: 'ada lovelace@example.org' }, { email: 'ada@@example.org' }, { email: 'ada@exa mple.org' }, { email: 'ada@-example.org' },
      { email: `${'a'.repeat(65)}@example.org` }, { email: `ada@${'a'.repeat(250)}.org` }, { email: 42 }, { email: ['ada@example.org'] },
      { ...CONTACT, name: 'Ada' }, []]) {
      assertError(await c.post('/api/checkout/contact', body), 400, 'VALIDATION_FAILED');
    }
    assert.equal((await c.get('/api/checkout')).body.step, 'contact');
    // Trimmed, and any address of the common form is taken.
    assert.deepEqual((await c.post('/api/checkout/contact', { email: '  ada.king+shop@mail.example.co.uk ' })).body.data.contact, { email: 'ada.king+shop@mail.example.co.uk' });
    assertError(await c.post('/api/checkout/shipping', { ...SHIPPING, city: '' }), 400, 'VALIDATION_FAILED');
    await c.post('/api/checkout/shipping', SHIPPING);
    for (const card of [{ cardNumber: '4242 4242 4242 4241', expiry: '12/39' }, { cardNumber: '4242424242424242', expiry: '01/20' },
      { cardNumber: '4242424242424242', expiry: '13/30' }, { cardNumber: '4242424242424242' }]) {
      assertError(await c.post('/api/checkout/payment', card), 400, 'VALIDATION_FAILED');
    }
    assert.equal((await c.get('/api/checkout')).body.step, 'payment');
  });

  it('guest checkout when every step is taken then confirm places an order with no user and the email, empties the cart and resets the flow', async () => {
    const placedBefore = t.shop.context.counters.ordersPlaced;
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 2);
    await c.add('headphones', 1);
    assert.equal((await c.post('/api/checkout/contact', CONTACT)).body.step, 'shipping');
    assert.equal((await c.post('/api/checkout/shipping', SHIPPING)).body.step, 'payment');
    const pay = await c.post('/api/checkout/payment', CARD);
    assert.equal(pay.body.step, 'review');
    assert.deepEqual(pay.body.data, { contact: CONTACT, shipping: SHIPPING, payment: { brand: 'Mastercard', last4: '4444', expiry: '12/39' } });
    assert.ok(!pay.text.includes('5555555555554444') && !pay.text.includes('5555 5555'), 'no full card number kept');
    const confirm = await c.post('/api/checkout/confirm', { runId: pay.body.runId });
    assert.equal(confirm.status, 201);
    assert.match(confirm.body.orderId, /^ord_/);
    assert.equal(confirm.body.total, 2 * 14 + 149);
    assert.deepEqual((await c.get('/api/cart')).body, { items: [], count: 0, total: 0 });
    const next = (await c.get('/api/checkout')).body;
    assert.deepEqual(next, {
      step: 'contact', steps: ['contact', 'shipping', 'payment', 'review'], data: {}, runId: null,
      lastOrder: { orderId: confirm.body.orderId, total: 2 * 14 + 149, placedAt: next.lastOrder?.placedAt },
    }, 'a new checkout, with the order the last one placed (for a page whose answer was lost)');
    assert.equal(typeof next.lastOrder.placedAt, 'number');
    assert.equal((await new ShopClient(t.url).get('/api/checkout')).body.lastOrder, null, 'another visitor is not told of it');
    assert.equal(t.shop.context.counters.ordersPlaced, placedBefore + 1);

    const stored = await t.shop.db.findOrderByKey(`guest-checkout:${pay.body.runId}`);
    assert.equal(stored?.id, confirm.body.orderId);
    assert.equal(stored?.userId, null, 'stored without a user');
    assert.equal(stored?.email, CONTACT.email);
    assert.deepEqual(stored?.shipping, SHIPPING);
    assert.deepEqual(stored?.payment, { brand: 'Mastercard', last4: '4444', expiry: '12/39' });
    assert.deepEqual(stored?.items.map((i) => [i.productId, i.quantity]), [['camp-mug', 2], ['headphones', 1]]);
    assert.deepEqual((await c.get('/api/orders')).body.map((o: { id: string }) => o.id), [confirm.body.orderId], 'listed for the session that placed it');
  });

  it('guest checkout step when it names the run whose order was placed (in another tab, even while the step was on its way) then 409 ORDER_PLACED naming the order, and nothing starts the next checkout', async () => {
    const { client, runId } = await guestAtReview();
    const db = t.shop.db as unknown as { placeOrder: (...args: unknown[]) => Promise<unknown> };
    const placeOrder = db.placeOrder;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const placing = new Promise<void>((resolve) => (reached = resolve));
    db.placeOrder = async (...args: unknown[]) => {
      reached();
      await held;
      return placeOrder.apply(t.shop.db, args);
    };
    let confirm: Awaited<ReturnType<ShopClient['post']>>;
    let step: Awaited<ReturnType<ShopClient['post']>>;
    try {
      const confirming = client.post('/api/checkout/confirm', { runId });
      await placing;
      // The other tab changes the email of the run being placed: the first step, which would start a run.
      const stepping = client.post('/api/checkout/contact', { email: 'grace@example.org', runId });
      await new Promise((r) => setTimeout(r, 100));
      release();
      [confirm, step] = await Promise.all([confirming, stepping]);
    } finally {
      release();
      db.placeOrder = placeOrder;
    }
    assert.equal(confirm.status, 201);
    assertError(step, 409, 'ORDER_PLACED');
    assert.ok(step.body.error.message.includes(confirm.body.orderId), step.body.error.message);
    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, runId }), 409, 'ORDER_PLACED');
    assertError(await client.post('/api/checkout/back', { runId }), 409, 'ORDER_PLACED');
    const now = (await client.get('/api/checkout')).body;
    assert.deepEqual([now.step, now.data, now.runId], ['contact', {}, null], 'no next checkout was started with the step');
    assert.equal((await t.shop.db.findOrderByKey(`guest-checkout:${runId}`))?.email, CONTACT.email);

    // Another visitor naming the run is not told of that order.
    const other = new ShopClient(t.url);
    await other.session();
    assertError(await other.post('/api/checkout/contact', { ...CONTACT, runId }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    // The current run, named, takes its steps; another run or a malformed one is refused.
    const next = (await client.post('/api/checkout/contact', CONTACT)).body;
    assert.equal((await client.post('/api/checkout/shipping', { ...SHIPPING, runId: next.runId })).body.step, 'payment');
    assert.equal((await client.post('/api/checkout/back', { runId: next.runId })).body.step, 'shipping');
    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, runId: 'f'.repeat(36) }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, runId: 'no spaces' }), 400, 'VALIDATION_FAILED');
    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, runId: 42 }), 400, 'VALIDATION_FAILED');
  });

  it('guest confirm when the cart is empty then 409 CART_EMPTY and the flow waits', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    await c.post('/api/checkout/contact', CONTACT);
    await c.post('/api/checkout/shipping', SHIPPING);
    await c.post('/api/checkout/payment', CARD);
    assertError(await c.post('/api/checkout/confirm'), 409, 'CART_EMPTY');
    assert.equal((await c.get('/api/checkout')).body.step, 'review');
  });

  it('guest confirm when it names its run then repeats, concurrent or later, answer 200 with the same order; a stale run is refused', async () => {
    const { client, runId } = await guestAtReview();
    const replies = await Promise.all([1, 2, 3].map(() => client.post('/api/checkout/confirm', { runId })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 201]);
    assert.equal(new Set(replies.map((r) => r.body.orderId)).size, 1, 'every reply names the one order');
    const later = await client.post('/api/checkout/confirm', { runId });
    assert.equal(later.status, 200);
    assert.equal(later.body.orderId, replies[0]!.body.orderId);

    await client.add('candle', 1);
    await client.post('/api/checkout/contact', CONTACT);
    await client.post('/api/checkout/shipping', SHIPPING);
    const next = (await client.post('/api/checkout/payment', CARD)).body;
    assert.notEqual(next.runId, runId, 'a new run');
    assertError(await client.post('/api/checkout/confirm', { runId: 'f'.repeat(36) }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await client.post('/api/checkout/confirm', { runId: 'no spaces' }), 400, 'VALIDATION_FAILED');
    assert.equal(await t.shop.db.findOrderByKey(`guest-checkout:${next.runId}`), null, 'nothing placed by the refused confirms');
    assert.equal((await client.post('/api/checkout/confirm', { runId: next.runId })).status, 201);
    assert.equal((await client.post('/api/checkout/confirm', { runId })).body.orderId, replies[0]!.body.orderId, 'the earlier run still answers');
  });

  it('guest confirm when the cart changed since the review it names then 409 CART_CHANGED and nothing is placed; confirming the cart as it is places that', async () => {
    const { client, runId } = await guestAtReview([['camp-mug', 1]]);
    const reviewed = (await client.get('/api/cart')).body as { items: Array<{ productId: string; quantity: number }> };
    const items = reviewed.items.map((i) => ({ productId: i.productId, quantity: i.quantity }));
    // Another tab of the same browser adds to the cart after the review was shown.
    await client.add('notebook', 5);
    assertError(await client.post('/api/checkout/confirm', { runId, items }), 409, 'CART_CHANGED');
    assert.equal(await t.shop.db.findOrderByKey(`guest-checkout:${runId}`), null, 'no order for a cart nobody reviewed');
    assert.equal((await client.get('/api/checkout')).body.runId, runId, 'the run waits at the review');
    const now = (await client.get('/api/cart')).body as { items: Array<{ productId: string; quantity: number }> };
    assert.deepEqual(now.items.map((i) => [i.productId, i.quantity]), [['camp-mug', 1], ['notebook', 5]], 'the cart is left as it is');

    // A quantity changed is a change too, and the same lines in another order are not.
    await client.request('PATCH', '/api/cart/items/notebook', { json: { quantity: 4 } });
    assertError(await client.post('/api/checkout/confirm', { runId, items: [{ productId: 'camp-mug', quantity: 1 }, { productId: 'notebook', quantity: 5 }] }), 409, 'CART_CHANGED');
    const placed = await client.post('/api/checkout/confirm', { runId, items: [{ productId: 'notebook', quantity: 4 }, { productId: 'camp-mug', quantity: 1 }] });
    assert.equal(placed.status, 201, placed.text);
    assert.equal(placed.body.total, 14 + 4 * 16, 'the cart confirmed: a mug and four notebooks');
    const stored = await t.shop.db.findOrderByKey(`guest-checkout:${runId}`);
    assert.deepEqual(stored?.items.map((i) => [i.productId, i.quantity]), [['camp-mug', 1], ['notebook', 4]]);
    // The run's repeat answers with its order whatever the cart holds by then.
    await client.add('candle', 1);
    const again = await client.post('/api/checkout/confirm', { runId, items });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.orderId, placed.body.orderId);
  });

  it('guest confirm when items is not a list of {productId, quantity} then 400 VALIDATION_FAILED', async () => {
    const { client, runId } = await guestAtReview([['camp-mug', 1]]);
    for (const items of [{}, 'camp-mug', [null], [{ productId: 'camp-mug' }], [{ productId: 'camp-mug', quantity: 0 }], [{ productId: 'camp-mug', quantity: 1.5 }],
      [{ productId: 42, quantity: 1 }], [{ productId: 'camp-mug', quantity: 1, price: 1 }]]) {
      assertError(await client.post('/api/checkout/confirm', { runId, items }), 400, 'VALIDATION_FAILED');
    }
    assert.equal(await t.shop.db.findOrderByKey(`guest-checkout:${runId}`), null);
    assert.equal((await client.post('/api/checkout/confirm', { runId, items: [{ productId: 'camp-mug', quantity: 1 }] })).status, 201);
  });

  it('guest shipping when a field holds a control character (NUL, a line break, DEL) then 400 VALIDATION_FAILED and the step stays', async () => {
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 1);
    await c.post('/api/checkout/contact', CONTACT);
    for (const field of ['name', 'address', 'city', 'country'] as const) {
      for (const bad of ['Ada\u0000Lovelace', 'Ada\nLovelace', 'Ada\u007fLovelace', 'Ada\u0085Lovelace']) {
        const r = await c.post('/api/checkout/shipping', { ...SHIPPING, [field]: bad });
        assertError(r, 400, 'VALIDATION_FAILED');
        assert.match(r.body.error.message, new RegExp(`^${field} must not hold control characters`));
      }
    }
    assert.equal((await c.get('/api/checkout')).body.step, 'shipping');
    assert.equal((await c.post('/api/checkout/shipping', { ...SHIPPING, name: 'Ada Lovelace-Byron' })).body.step, 'payment');
  });

  it('guest confirm when sent twice concurrently without a runId then exactly one order is placed', async () => {
    const placedBefore = t.shop.context.counters.ordersPlaced;
    const { client, runId } = await guestAtReview([['notebook', 3]]);
    const [a, b] = await Promise.all([client.post('/api/checkout/confirm'), client.post('/api/checkout/confirm')]);
    assert.ok([a, b].every((r) => [200, 201, 409].includes(r.status)), `${a.status} ${b.status}`);
    assert.equal([a, b].filter((r) => r.status === 201).length, 1, 'one confirm created the order');
    const ok = [a, b].filter((r) => r.status < 300);
    assert.ok(ok.every((r) => r.body.orderId === ok[0]!.body.orderId), 'a second success returns the same order');
    assert.equal(t.shop.context.counters.ordersPlaced, placedBefore + 1);
    assert.equal((await t.shop.db.findOrderByKey(`guest-checkout:${runId}`))?.id, ok[0]!.body.orderId);
    assert.equal((await client.get('/api/cart')).body.count, 0);
  });

  it('guest confirm when another session or a user names the run then it is not answered with that run\'s order', async () => {
    const { client, runId } = await guestAtReview();
    assert.equal((await client.post('/api/checkout/confirm', { runId })).status, 201);
    const other = new ShopClient(t.url);
    await other.session();
    assertError(await other.post('/api/checkout/confirm', { runId }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    const user = new ShopClient(t.url);
    await user.register(uniqueName());
    assertError(await user.post('/api/checkout/confirm', { runId }), 409, 'FLOW_STEP_OUT_OF_ORDER');
  });

  it('guest checkout when a request lacks the CSRF token or comes from another origin then 403 and nothing changes', async () => {
    const c = new ShopClient(t.url);
    await c.add('candle', 1);
    assertError(await c.post('/api/checkout/contact', CONTACT, { csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    assertError(await c.post('/api/checkout/contact', CONTACT, { headers: { origin: 'https://evil.example' } }), 403, 'ORIGIN_MISMATCH');
    const stranger = new ShopClient(t.url);
    assertError(await stranger.post('/api/checkout/contact', CONTACT), 403, 'CSRF_TOKEN_INVALID');
    assert.equal((await c.get('/api/checkout')).body.step, 'contact');
  });

  it('checkout when a guest logs in mid-checkout then the guest checkout is dropped, the cart merged, and the account\'s checkout shown', async () => {
    const username = uniqueName();
    const owner = new ShopClient(t.url);
    await owner.register(username);
    await owner.post('/api/checkout/shipping', { ...SHIPPING, city: 'Cambridge' });

    const { client } = await guestAtReview([['candle', 2]]);
    const login = await client.login(username);
    assert.equal(login.status, 200);
    assert.equal(login.body.cart.count, 2, 'the cart came along');
    const view = (await client.get('/api/checkout')).body;
    assert.deepEqual(view.steps, ['shipping', 'payment', 'review']);
    assert.equal(view.step, 'payment', 'the account\'s own checkout, as its other device left it');
    assert.equal(view.data.shipping.city, 'Cambridge');
    assert.equal(view.data.contact, undefined);
    assertError(await client.post('/api/checkout/contact', CONTACT), 404, 'FLOW_STEP_UNKNOWN');

    await client.post('/api/auth/logout');
    assert.equal((await client.get('/api/checkout')).body.step, 'contact', 'logged out, a fresh guest checkout');
  });
});

/** Places a guest order in `client`'s session; returns its ID. */
async function guestOrder(client: ShopClient, items: Array<[string, number]>, contact = CONTACT): Promise<string> {
  const { runId } = await guestAtReview(items, client, contact);
  const r = await client.post('/api/checkout/confirm', { runId });
  assert.equal(r.status, 201, r.text);
  return r.body.orderId;
}

/**
 * Sets `guestOrders` in the session data of `client`'s session, through the shop's engine in this
 * process: what no request can do, standing in for data that names an order it should not.
 */
async function plantGuestOrders(client: ShopClient, ids: string[]): Promise<void> {
  const headers: Record<string, string> = { cookie: client.cookieHeader, 'user-agent': client.userAgent };
  const session = await t.shop.tether.open({ method: 'POST', header: (name) => headers[name.toLowerCase()] });
  assert.equal(session.isNew, false, 'the client\'s session was found');
  await session.update((d) => {
    d.guestOrders = ids;
  });
  await t.shop.tether.commit(session);
}

describe('shop api: a guest\'s orders', () => {
  it('orders when a guest placed two orders then lists both, newest first, with the email; another guest session gets []', async () => {
    const c = new ShopClient(t.url);
    const first = await guestOrder(c, [['candle', 1]]);
    const second = await guestOrder(c, [['camp-mug', 2]], { email: 'grace@example.org' });
    const r = await c.get('/api/orders');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.map((o: { id: string }) => o.id), [second, first]);
    assert.deepEqual(r.body.map((o: { email: string }) => o.email), ['grace@example.org', CONTACT.email]);
    const [latest] = r.body;
    assert.deepEqual(Object.keys(latest).sort(), ['createdAt', 'email', 'id', 'items', 'payment', 'shipping', 'total'], 'the shape of a user\'s order, and the email');
    assert.deepEqual(latest.items, [{ productId: 'camp-mug', name: 'Enamel Camp Mug', quantity: 2, price: 14 }]);
    assert.equal(latest.total, 28);
    assert.deepEqual(latest.shipping, SHIPPING);
    assert.deepEqual(latest.payment, { brand: 'Mastercard', last4: '4444' });

    assert.equal((await c.session()).body.guestOrders, 2, 'the session summary counts them, for the header\'s link');

    const other = new ShopClient(t.url);
    assert.equal((await other.session()).body.guestOrders, 0);
    const none = await other.get('/api/orders');
    assert.equal(none.status, 200);
    assert.deepEqual(none.body, []);
    await guestOrder(other, [['notebook', 1]]);
    assert.equal((await other.get('/api/orders')).body.length, 1, 'only its own');
    assert.deepEqual((await c.get('/api/orders')).body.map((o: { id: string }) => o.id), [second, first]);
  });

  it('orders when a visitor has no session then 200 [] and no cookie is set', async () => {
    const c = new ShopClient(t.url);
    const r = await c.get('/api/orders');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, []);
    assert.equal(r.headers['set-cookie'], undefined, 'listing made no session');
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  it('orders when a guest session\'s data names a user\'s order or an unknown ID then only its orders stored without a user are listed', async () => {
    const user = new ShopClient(t.url);
    await user.register(uniqueName());
    await user.add('planter', 1);
    await user.post('/api/checkout/shipping', SHIPPING);
    await user.post('/api/checkout/payment', CARD);
    const usersOrder = (await user.post('/api/checkout/confirm')).body.orderId as string;
    assert.match(usersOrder, /^ord_/);

    const guest = new ShopClient(t.url);
    const own = await guestOrder(guest, [['candle', 1]]);
    await plantGuestOrders(guest, [usersOrder, own, 'ord_nothing_here', 'x'.repeat(500)]);
    assert.deepEqual((await guest.get('/api/orders')).body.map((o: { id: string }) => o.id), [own], 'never the user\'s order');
    await plantGuestOrders(guest, [usersOrder]);
    assert.deepEqual((await guest.get('/api/orders')).body, []);

    // The repository method itself, on this shop's SQLite database.
    assert.deepEqual((await t.shop.db.listGuestOrders([usersOrder, own])).map((o) => o.id), [own]);
    assert.deepEqual(await t.shop.db.listGuestOrders([usersOrder]), []);
    assert.deepEqual((await user.get('/api/orders')).body.map((o: { id: string }) => o.id), [usersOrder], 'a user\'s list is as before');
  });

  it('orders when a guest who ordered logs in then lists the account\'s orders, not the guest\'s', async () => {
    const c = new ShopClient(t.url);
    await guestOrder(c, [['candle', 1]]);
    assert.equal((await c.register(uniqueName())).status, 201);
    assert.deepEqual((await c.get('/api/orders')).body, []);
  });
});
