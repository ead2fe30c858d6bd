/**
 * The renewal timeout over every real backend, two engines (two processes' worth) on each: the ID
 * renewed in one process, its old cookie followed in the other within the grace and dead after it,
 * the user's session list showing one session, and two processes renewing the same session at once
 * losing neither change and leaving no copy behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tether } from '../../src/core/engine.js';
import { cookiePair, SECRET_A, sleep, trip, view } from '../unit/support.js';
import { realBackends } from '../helpers/backends.js';

const RENEWAL = { intervalMs: 2_000, graceMs: 1_000 };

const backends = realBackends('renew').list;

describe('renewal over real backends', () => {
  for (const backend of backends) {
    it(`${backend.name}: renewal when one process renews the ID then the other follows the old cookie within the grace only, and racing renewals lose nothing`, async () => {
      const { a: sa, b: sb } = backend.pair();
      const a = new Tether({ secrets: [SECRET_A], store: sa, renewal: RENEWAL });
      const b = new Tether({ secrets: [SECRET_A], store: sb, renewal: RENEWAL });
      try {
        const first = (await trip(a, undefined, (s) => {
          s.set('cart', ['apple']);
          s.login('u1');
        })).cookie!;
        await sleep(RENEWAL.intervalMs + 100);
        const renewed = cookiePair((await trip(a, first, () => {}, 'GET')).setCookies);
        assert.ok(renewed !== undefined && renewed !== first, 'renewed');

        // The other process, within the grace: the old cookie opens the session, its write lands, the new cookie goes out.
        const late = await trip(b, first, (s) => s.update((d) => void (d.cart = [...(d.cart as string[]), 'pear'])));
        assert.equal(cookiePair(late.setCookies), renewed);
        await trip(a, renewed, (s) => assert.deepEqual(s.get('cart'), ['apple', 'pear']), 'GET');
        assert.equal((await b.listUserSessions('u1')).length, 1);

        // Both processes find the new ID due at once.
        await sleep(RENEWAL.intervalMs + 100);
        const ra = await a.open(view('GET', { cookie: renewed }));
        const rb = await b.open(view('GET', { cookie: renewed }));
        await ra.update((d) => void (d.a = 1));
        await rb.update((d) => void (d.b = 2));
        const [ca, cb] = (await Promise.all([a.commit(ra), b.commit(rb)])).map((c) => cookiePair(c));
        assert.ok(ca !== undefined && ca !== renewed, 'renewed again');
        assert.equal(cb, ca, 'both answered the one new cookie');
        await trip(b, ca, (s) => {
          assert.equal(s.get('a'), 1);
          assert.equal(s.get('b'), 2);
          assert.deepEqual(s.get('cart'), ['apple', 'pear']);
        }, 'GET');
        assert.equal((await a.listUserSessions('u1')).length, 1, 'the losing renewal left no copy');

        await sleep(RENEWAL.graceMs + 100);
        for (const [engine, cookie] of [[a, first], [b, first], [a, renewed], [b, renewed]] as const) {
          const dead = await trip(engine, cookie, () => {}, 'GET');
          assert.equal(dead.session.isNew, true, 'an old cookie past its grace names no session');
        }
        await trip(a, ca, (s) => assert.equal(s.get('b'), 2), 'GET');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  }
});
