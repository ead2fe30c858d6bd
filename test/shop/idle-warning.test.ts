/**
 * The idle timeout told ahead of time (SHOP_IDLE_WARNING, WCAG 2.2.1): every /api answer to a signed-in
 * session says how long it has left (X-Session-Expires-In), asking that again is not activity, and
 * "Stay signed in" moves the deadline. The page that uses them is tested in Chromium (test/e2e).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_PASSWORD, ShopClient, startTestShop, uniqueName } from '../helpers/shop.js';
import type { Reply, TestShop } from '../helpers/shop.js';

const IDLE_MS = 20_000;
let t: TestShop;

before(async () => {
  // A 20 s idle timeout: the touch interval is a tenth of it, 2 s.
  t = await startTestShop({ TETHER_IDLE_TIMEOUT: String(IDLE_MS / 1000), SHOP_IDLE_WARNING: '5' });
});
after(async () => {
  await t.stop();
});

function leftOf(r: Reply): number | undefined {
  const v = r.headers['x-session-expires-in'];
  return typeof v === 'string' ? Number(v) : undefined;
}

describe('shop: how long a signed-in session has left', () => {
  it('guest when asking then no answer carries the header, and the deadline route says not signed in', async () => {
    const c = new ShopClient(t.url);
    const s = await c.session();
    assert.equal(s.body.idleWarningSeconds, 5);
    assert.equal(leftOf(s), undefined);
    const add = await c.add('camp-mug');
    assert.equal(add.status, 201);
    assert.equal(leftOf(add), undefined, 'a guest is not warned');
    const d = await c.get('/api/session/deadline');
    assert.equal(d.body.authenticated, false);
    assert.ok(d.body.expiresIn > IDLE_MS - 2_000 && d.body.expiresIn <= IDLE_MS, `the guest session's own deadline: ${d.body.expiresIn}`);
  });

  it('signed-in session when it asks how long it has left then the asking moves nothing, and "stay signed in" moves the deadline', async () => {
    const c = new ShopClient(t.url);
    const reg = await c.register(uniqueName('idle'));
    assert.equal(reg.status, 201);
    const first = leftOf(reg);
    assert.ok(first !== undefined && first > IDLE_MS - 2_000 && first <= IDLE_MS, `after the login: ${first}`);
    // Past the touch interval: a request now would touch, but asking is not activity.
    await sleep(3_000);
    const asked = await c.get('/api/session/deadline');
    assert.equal(asked.body.authenticated, true);
    assert.ok(asked.body.expiresIn <= first - 2_500, `the deadline did not move: ${first} then ${asked.body.expiresIn}`);
    assert.ok(Math.abs(leftOf(asked)! - asked.body.expiresIn) < 1_000, 'the header says the same');
    const again = await c.get('/api/session/deadline');
    assert.ok(again.body.expiresIn <= asked.body.expiresIn, 'still not moved');
    const kept = await c.post('/api/session/keepalive');
    assert.equal(kept.status, 204);
    assert.ok(leftOf(kept)! > IDLE_MS - 1_000, `moved to a whole idle timeout from now: ${leftOf(kept)}`);
    // Any other request says it too, as its commit left it.
    const cart = await c.get('/api/cart');
    assert.ok(leftOf(cart)! > IDLE_MS - 2_000);
  });

  it('admin figures when the admin page asks for them again and again then the asking moves no deadline: the page left open is signed out at the idle timeout', async () => {
    const admin = new ShopClient(t.url);
    const login = await admin.login('admin', ADMIN_PASSWORD);
    assert.equal(login.status, 200);
    const first = leftOf(login)!;
    // Past the touch interval: any other request now would move the deadline.
    await sleep(3_000);
    const polled = await admin.get('/api/admin/overview');
    assert.equal(polled.status, 200);
    assert.ok(leftOf(polled)! <= first - 2_500, `the deadline did not move: ${first} then ${leftOf(polled)}`);
    const deadline = (await admin.get('/api/session/deadline')).body;
    assert.ok(deadline.expiresIn <= first - 2_500, `nor in the store: ${deadline.expiresIn}`);
    // What the admin does on the page still counts.
    const looked = await admin.get('/api/admin/users/admin');
    assert.equal(looked.status, 200);
    assert.ok(leftOf(looked)! > IDLE_MS - 1_000, `moved by a look-up: ${leftOf(looked)}`);
  });

  it('signed-in session when SHOP_IDLE_WARNING is 0 then no answer carries the header', async () => {
    const quiet = await startTestShop({ SHOP_IDLE_WARNING: '0' });
    try {
      const c = new ShopClient(quiet.url);
      const reg = await c.register(uniqueName('quiet'));
      assert.equal(reg.status, 201);
      assert.equal(reg.body.idleWarningSeconds, 0);
      assert.equal(leftOf(reg), undefined);
      assert.equal(leftOf(await c.get('/api/cart')), undefined);
    } finally {
      await quiet.stop();
    }
  });
});
