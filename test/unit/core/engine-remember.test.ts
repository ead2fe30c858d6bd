/** "Keep me signed in": `session.remember()` gives a session the longer timeouts of `options.remember` and a persistent cookie. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashId } from '../../../src/core/ids.js';
import { Tether } from '../../../src/core/engine.js';
import { OptionsInvalidError } from '../../../src/core/errors.js';
import { SECRET_A, rig, trip, view } from '../support.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

function maxAge(setCookie: string | undefined): number | undefined {
  const m = /; Max-Age=(\d+)/.exec(setCookie ?? '');
  return m ? Number(m[1]) : undefined;
}

describe('remembered sessions', () => {
  it('login with remember() when idle past the engine timeout then still loads, and past the remembered one then expires', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN, absoluteTimeoutMs: 12 * 60 * MIN });
    const login = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    assert.equal(login.session.remembered, true);
    assert.equal(maxAge(login.setCookies[0]), 14 * DAY / 1000, 'persistent for the remembered idle timeout');
    const rec = await r.memory.get(hashId(login.session.id!));
    assert.equal(rec!.expiresAt, r.clock.now() + 14 * DAY + 60_000, 'the store keeps it as long');
    assert.equal(rec!.absoluteExpiresAt, r.clock.now() + 30 * DAY + 60_000);

    r.clock.advance(3 * DAY);
    const back = await trip(r.tether, login.cookie, (s) => {
      assert.equal(s.isNew, false, 'three days idle, still signed in');
      assert.equal(s.userId, 'ada');
      assert.equal(s.remembered, true);
    }, 'GET');
    assert.equal(maxAge(back.setCookies[0]), 14 * DAY / 1000, 'the touch sends the cookie again, for another 14 days');

    r.clock.advance(14 * DAY);
    const late = await trip(r.tether, login.cookie, (s) => assert.equal(s.isNew, true), 'GET');
    assert.equal(late.cookie, '', 'past the remembered idle timeout the cookie is cleared');
    assert.equal(await r.memory.get(hashId(login.session.id!)), null);
  });

  it('session not remembered when idle past the engine timeout then expires as before, with a browser-session cookie', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    const login = await trip(r.tether, undefined, (s) => s.login('ada'));
    assert.equal(login.session.remembered, false);
    assert.equal(maxAge(login.setCookies[0]), undefined);
    r.clock.advance(30 * MIN);
    await trip(r.tether, login.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('login when another user signs in on a remembered session then it is no longer remembered; the same user again, or a remembered guest, keeps it', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    const ada = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    const again = await trip(r.tether, ada.cookie, (s) => s.login('ada'));
    assert.equal(again.session.remembered, true, 'the same user signing in again keeps it');
    assert.equal(maxAge(again.setCookies[0]), 14 * DAY / 1000);
    const bob = await trip(r.tether, again.cookie, (s) => s.login('bob'));
    assert.equal(bob.session.remembered, false, 'another user does not inherit it');
    assert.equal(maxAge(bob.setCookies[0]), undefined, 'a browser-session cookie');
    const rec = await r.memory.get(hashId(bob.session.id!));
    assert.ok(rec && rec.expiresAt <= r.clock.now() + 30 * MIN + r.tether.options.expiryGraceMs, 'stored with the ordinary deadline');
    r.clock.advance(30 * MIN);
    assert.equal((await trip(r.tether, bob.cookie, () => {}, 'GET')).session.isNew, true, 'ends at the ordinary idle timeout');
    const chosen = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
      s.login('bob');
      s.remember();
    });
    assert.equal(chosen.session.remembered, true, 'remember() after the login still sets it');
    const guest = await trip(r.tether, undefined, (s) => {
      s.set('cart', ['x']);
      s.remember();
    });
    assert.equal((await trip(r.tether, guest.cookie, (s) => s.login('cy'))).session.remembered, true, 'a guest session keeps its own');
  });

  it('remembered session when active then ends at the remembered absolute timeout, its cookie cut to what is left', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN, remember: { idleTimeoutMs: 2 * DAY, absoluteTimeoutMs: 5 * DAY } });
    const login = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    let cookie = login.cookie;
    let last: string[] = [];
    for (let day = 1; day < 5; day++) {
      r.clock.advance(DAY);
      const t = await trip(r.tether, cookie, (s) => assert.equal(s.isNew, false, `day ${day}`), 'GET');
      cookie = t.cookie;
      last = t.setCookies;
    }
    assert.equal(maxAge(last[0]), DAY / 1000, 'on day 4 of 5 the cookie lasts one more day, not two');
    r.clock.advance(DAY);
    await trip(r.tether, cookie, (s) => assert.equal(s.isNew, true, 'ended at 5 days despite activity'), 'GET');
  });

  it('remember(false) when the session was remembered then its ordinary timeouts and a browser-session cookie come back', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    const login = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    const off = await trip(r.tether, login.cookie, (s) => s.remember(false));
    assert.equal(off.setCookies.length, 1, 'the cookie is sent again');
    assert.equal(maxAge(off.setCookies[0]), undefined, 'as a browser-session cookie');
    const rec = await r.memory.get(hashId(login.session.id!));
    assert.equal(rec!.expiresAt, r.clock.now() + 30 * MIN + 60_000);
    r.clock.advance(30 * MIN);
    await trip(r.tether, login.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('remember() on a stored session without a login then moves both deadlines at once', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN, absoluteTimeoutMs: 60 * MIN });
    const a = await trip(r.tether, undefined, (s) => s.set('cart', [1]));
    const created = r.clock.now();
    r.clock.advance(10 * MIN);
    const t = await trip(r.tether, a.cookie, (s) => s.remember());
    assert.equal(maxAge(t.setCookies[0]), 14 * DAY / 1000);
    const rec = await r.memory.get(hashId(a.session.id!));
    assert.equal(rec!.absoluteExpiresAt, created + 30 * DAY + 60_000, 'counted from creation');
    r.clock.advance(2 * 60 * MIN);
    await trip(r.tether, a.cookie, (s) => assert.deepEqual(s.get('cart'), [1]), 'GET');
  });

  it('remember() on a new session that holds nothing else then stores nothing', async () => {
    const r = rig();
    const t = await trip(r.tether, undefined, (s) => s.remember());
    assert.deepEqual(t.setCookies, []);
    assert.equal(r.store.writes, 0);
  });

  it('a conflicting write when the request called remember() then the replay keeps it, and one that did not keeps the other request\'s', async () => {
    const r = rig();
    const a = await trip(r.tether, undefined, (s) => s.set('n', 0));
    // Two requests load the same version; the first to commit remembers the session.
    const open = (): ReturnType<Tether['open']> => r.tether.open({ method: 'POST', header: (n) => (n === 'cookie' ? a.cookie : undefined) }, { write: false });
    const first = await open();
    const second = await open();
    first.remember();
    await r.tether.commit(first);
    await second.update((d) => void (d.n = 1));
    await r.tether.commit(second);
    assert.equal(r.tether.stats().replays, 1, 'the second write met a conflict and was replayed');
    const env = JSON.parse((await r.memory.get(hashId(a.session.id!)))!.data) as { d: unknown; r?: number };
    assert.deepEqual(env.d, { n: 1 });
    assert.equal(env.r, 1, 'the replay kept what the first request remembered');
  });

  it('listUserSessions when one session is remembered then says which, and lists it past the engine idle timeout', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    const kept = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    await trip(r.tether, undefined, (s) => s.login('ada'));
    const now = await r.tether.listUserSessions('ada');
    assert.deepEqual(now.map((x) => x.remembered).sort(), [false, true]);
    r.clock.advance(31 * MIN);
    const later = await r.tether.listUserSessions('ada');
    assert.equal(later.length, 1);
    assert.equal(later[0]!.id, kept.session.handle);
    assert.equal(later[0]!.remembered, true);
  });

  it('maxSessionsPerUser when a remembered session is idle past the engine timeout then still counts it', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN, maxSessionsPerUser: 1 });
    const kept = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    r.clock.advance(2 * 60 * MIN);
    await trip(r.tether, undefined, (s) => s.login('ada'));
    assert.equal(await r.memory.get(hashId(kept.session.id!)), null, 'the older remembered session was ended by the limit');
  });

  it('global cookie.maxAgeMs when a session is remembered then the remembered lifetime decides its cookie', async () => {
    const r = rig({ cookie: { maxAgeMs: 60 * MIN } });
    const plain = await trip(r.tether, undefined, (s) => s.set('n', 1));
    assert.equal(maxAge(plain.setCookies[0]), 3600);
    const kept = await trip(r.tether, undefined, (s) => {
      s.set('n', 1);
      s.remember();
    });
    assert.equal(maxAge(kept.setCookies[0]), 14 * DAY / 1000);
    assert.match(kept.setCookies[0]!, /^sid=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax$/);
  });

  it('remember() when another request reading the session commits an expiry touch after it then the remembered deadline stays', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    const login = await trip(r.tether, undefined, (s) => s.login('ada'));
    r.clock.advance(10 * MIN);
    // A reader loads the session (its touch is due), a settings toggle remembers it and commits, then
    // the reader commits its touch.
    const reader = await r.tether.open(view('GET', { cookie: login.cookie! }));
    assert.equal(reader.userId, 'ada');
    await trip(r.tether, login.cookie, (s) => s.remember());
    await r.tether.commit(reader);
    const rec = await r.memory.get(hashId(login.session.id!));
    assert.equal(rec!.expiresAt, r.clock.now() + 14 * DAY + 60_000, 'the touch of the older version left it alone');
    r.clock.advance(DAY);
    await trip(r.tether, login.cookie, (s) => {
      assert.equal(s.isNew, false, 'a day idle, still signed in');
      assert.equal(s.remembered, true);
    }, 'GET');
  });

  it('options.remember when shorter than the engine timeouts or mistyped then construction fails with OPTIONS_INVALID', () => {
    const make = (o: object): unknown => new Tether({ secrets: [SECRET_A], ...o });
    assert.throws(() => make({ idleTimeoutMs: 60 * MIN, remember: { idleTimeoutMs: 30 * MIN } }), OptionsInvalidError);
    assert.throws(() => make({ remember: { absoluteTimeoutMs: 60 * MIN } }), /absoluteTimeoutMs .* shorter than options.absoluteTimeoutMs/);
    assert.throws(() => make({ remember: { idle: 1 } }), /options.remember.idle is not an option/);
    assert.throws(() => make({ remember: { idleTimeoutMs: -1 } }), OptionsInvalidError);
    const t = new Tether({ secrets: [SECRET_A], absoluteTimeoutMs: 40 * DAY, idleTimeoutMs: 20 * DAY });
    assert.deepEqual({ ...t.options.remember }, { idleTimeoutMs: 20 * DAY, absoluteTimeoutMs: 40 * DAY }, 'defaults never shorten');
    const u = new Tether({ secrets: [SECRET_A], remember: { absoluteTimeoutMs: 7 * DAY } });
    assert.equal(u.options.remember.idleTimeoutMs, 7 * DAY, 'the default idle timeout is cut to the absolute one');
  });

  it('remember() when the session was destroyed or committed then it throws', async () => {
    const r = rig();
    await trip(r.tether, undefined, (s) => {
      s.set('n', 1);
      s.destroy();
      assert.throws(() => s.remember(), { code: 'SESSION_ENDED' });
    });
    const t = await trip(r.tether, undefined, (s) => s.set('n', 1));
    assert.throws(() => t.session.remember(), { code: 'SESSION_COMMITTED' });
    assert.equal(t.session.remembered, false);
  });
});
