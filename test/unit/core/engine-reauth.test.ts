/** Step-up: the authentication time `login()` and `reauthenticated()` record, and `requireRecentAuth()`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cookiePair, rig, trip, view } from '../support.js';
import type { Rig } from '../support.js';
import { ReauthRequiredError } from '../../../src/core/errors.js';

const MINUTE = 60_000;

/** Whether `requireRecentAuth(maxAgeMs)` lets the session through; the error code when it does not. */
function gate(s: { requireRecentAuth(ms: number): void }, maxAgeMs: number): string {
  try {
    s.requireRecentAuth(maxAgeMs);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

async function signedIn(r: Rig, userId = 'ada'): Promise<string> {
  const t = await trip(r.tether, undefined, (s) => s.login(userId));
  return t.cookie!;
}

describe('step-up (authenticatedAt, requireRecentAuth, reauthenticated)', () => {
  it('anonymous session when asked for a recent authentication then REAUTH_REQUIRED 401, and reauthenticated() is a TypeError', async () => {
    const { tether } = rig();
    const s = await tether.open(view('POST'));
    assert.equal(s.authenticatedAt, null);
    assert.throws(() => s.requireRecentAuth(MINUTE), (err: unknown) => err instanceof ReauthRequiredError && err.code === 'REAUTH_REQUIRED' && err.status === 401 && /sign in/.test(err.message));
    assert.throws(() => s.reauthenticated(), TypeError);
    for (const bad of [-1, Number.NaN, '60000', undefined]) assert.throws(() => s.requireRecentAuth(bad as number), TypeError, String(bad));
    tether.abandon(s);
  });

  it('login when made then authenticatedAt is its time, stored: within maxAgeMs the action passes, past it REAUTH_REQUIRED', async () => {
    const r = rig({ idleTimeoutMs: 60 * MINUTE });
    const at = r.clock.now();
    const cookie = await signedIn(r);
    r.clock.advance(10 * MINUTE);
    const later = await trip(r.tether, cookie, (s) => {
      assert.equal(s.authenticatedAt, at);
      assert.equal(gate(s, 15 * MINUTE), 'ok');
      assert.equal(gate(s, 10 * MINUTE + 1), 'ok');
      assert.equal(gate(s, 10 * MINUTE), 'REAUTH_REQUIRED', 'at exactly maxAgeMs');
    });
    r.clock.advance(6 * MINUTE);
    await trip(r.tether, later.cookie, (s) => assert.equal(gate(s, 15 * MINUTE), 'REAUTH_REQUIRED'));
  });

  it('reauthenticated() when called then authenticatedAt is now, stored under a new ID with the same data, user and CSRF token, and the old cookie opens nothing', async () => {
    const r = rig({ idleTimeoutMs: 60 * MINUTE });
    const cookie = await signedIn(r);
    await trip(r.tether, cookie, (s) => s.set('cart', ['tea']));
    r.clock.advance(30 * MINUTE);
    let token = '';
    let oldId: string | null = null;
    const confirmed = await trip(r.tether, cookie, (s) => {
      token = s.csrfToken;
      oldId = s.id;
      assert.equal(gate(s, 15 * MINUTE), 'REAUTH_REQUIRED');
      s.reauthenticated();
      assert.equal(s.authenticatedAt, r.clock.now());
      assert.equal(gate(s, 15 * MINUTE), 'ok');
      assert.equal(gate(s, 0), 'REAUTH_REQUIRED', '0 asks every time');
      assert.notEqual(s.id, oldId, 'a new ID (ASVS 5 7.2.4)');
    });
    assert.equal(confirmed.setCookies.length, 1, 'the new cookie');
    assert.notEqual(confirmed.cookie, cookie);
    const at = r.clock.now();
    const [listed] = await r.tether.listUserSessions('ada');
    assert.equal(listed!.authenticatedAt, at, 'the account page lists it');
    r.clock.advance(5 * MINUTE);
    await trip(r.tether, confirmed.cookie, (s) => {
      assert.equal(s.userId, 'ada');
      assert.deepEqual(s.get('cart'), ['tea']);
      assert.equal(s.authenticatedAt, at);
      assert.equal(s.csrfToken, token, 'the page\'s forms keep their token');
      assert.equal(gate(s, 15 * MINUTE), 'ok');
    });
    // A copy of the cookie taken before the step-up carries neither the session nor the step-up.
    await trip(r.tether, cookie, (s) => {
      assert.equal(s.userId, null);
      assert.equal(gate(s, 15 * MINUTE), 'REAUTH_REQUIRED');
    }, 'GET');
  });

  it('reauthenticated() when it renews the ID then the session keeps its handle: a session list shown before still ends it; a login in the same request begins a new session', async () => {
    for (const renewal of [undefined, { intervalMs: 60 * MINUTE, graceMs: 10_000 }]) {
      const r = rig({ idleTimeoutMs: 60 * MINUTE, renewal });
      const messages: Array<{ handle: string; previousHandle?: string }> = [];
      r.tether.events.on('regenerated', (m: { handle: string; previousHandle?: string }) => void messages.push(m));
      const cookie = await signedIn(r);
      const [before] = await r.tether.listUserSessions('ada');
      messages.length = 0;
      const confirmed = await trip(r.tether, cookie, (s) => s.reauthenticated());
      assert.notEqual(confirmed.cookie, cookie, 'a new ID');
      assert.equal(confirmed.session.handle, before!.id, 'the same handle');
      assert.deepEqual((await r.tether.listUserSessions('ada')).map((x) => x.id), [before!.id]);
      assert.deepEqual(messages.map((m) => [m.handle, m.previousHandle]), [[before!.id, undefined]]);
      // Once more, and then a login with the step-up: a new session.
      const again = await trip(r.tether, confirmed.cookie, (s) => s.reauthenticated());
      assert.equal(again.session.handle, before!.id);
      const login = await trip(r.tether, again.cookie, (s) => {
        s.reauthenticated();
        s.login('ada');
      });
      assert.notEqual(login.session.handle, before!.id, 'a login begins a new session');
      const other = await trip(r.tether, undefined, (s) => s.login('ada'));
      const stepUp = await trip(r.tether, other.cookie, (s) => s.reauthenticated());
      assert.equal(await r.tether.destroyUserSession('ada', other.session.handle!), true, 'ended by the handle listed before its step-up');
      assert.equal((await trip(r.tether, stepUp.cookie, () => {}, 'GET')).session.userId, null);
    }
  });

  it('reauthenticated({ regenerate: false }) when called then the step-up is stored under the same ID, with no new cookie; a regenerate that is not a boolean is a TypeError', async () => {
    const r = rig({ idleTimeoutMs: 60 * MINUTE });
    const cookie = await signedIn(r);
    r.clock.advance(30 * MINUTE);
    const confirmed = await trip(r.tether, cookie, (s) => {
      assert.throws(() => s.reauthenticated({ regenerate: 'no' as never }), TypeError);
      s.reauthenticated({ regenerate: false });
    });
    assert.deepEqual(confirmed.setCookies, [], 'no new cookie: the ID is the same');
    await trip(r.tether, cookie, (s) => assert.equal(gate(s, 15 * MINUTE), 'ok'));
  });

  it('setUser when it names another user or none then authenticatedAt is null; the same user keeps it', async () => {
    const r = rig();
    const at = r.clock.now();
    const cookie = await signedIn(r);
    await trip(r.tether, cookie, (s) => s.setUser('ada'));
    await trip(r.tether, cookie, (s) => assert.equal(s.authenticatedAt, at));
    await trip(r.tether, cookie, (s) => {
      s.setUser('grace');
      assert.equal(s.authenticatedAt, null);
      assert.equal(gate(s, MINUTE), 'REAUTH_REQUIRED');
      // Back to the one who signed in within the same request: still not proved again here.
      s.setUser('ada');
      assert.equal(s.authenticatedAt, null);
    });
    await trip(r.tether, cookie, (s) => assert.equal(s.authenticatedAt, null, 'stored'));
    const fresh = await signedIn(r);
    await trip(r.tether, fresh, (s) => {
      s.setUser(null);
      assert.equal(s.authenticatedAt, null);
      s.setUser('ada');
    });
    await trip(r.tether, fresh, (s) => assert.equal(s.authenticatedAt, null));
  });

  it('login as another user on a signed-in session then authenticatedAt is the new login\'s', async () => {
    const r = rig({ idleTimeoutMs: 60 * MINUTE });
    const cookie = await signedIn(r, 'ada');
    r.clock.advance(20 * MINUTE);
    const at = r.clock.now();
    const other = await trip(r.tether, cookie, (s) => s.login('grace'));
    await trip(r.tether, other.cookie, (s) => {
      assert.equal(s.userId, 'grace');
      assert.equal(s.authenticatedAt, at);
    });
  });

  it('remembered session when it comes back days later then authenticatedAt is still the login\'s, and a step-up is asked', async () => {
    const r = rig();
    const at = r.clock.now();
    const t = await trip(r.tether, undefined, (s) => {
      s.login('ada');
      s.remember();
    });
    r.clock.advance(3 * 24 * 60 * MINUTE);
    await trip(r.tether, t.cookie, (s) => {
      assert.equal(s.userId, 'ada');
      assert.equal(s.authenticatedAt, at);
      assert.equal(gate(s, 15 * MINUTE), 'REAUTH_REQUIRED');
    });
  });

  it('request that only reads authenticatedAt then writes nothing', async () => {
    const r = rig();
    const cookie = await signedIn(r);
    const writes = r.tether.stats().writes;
    await trip(r.tether, cookie, (s) => {
      assert.notEqual(s.authenticatedAt, null);
      s.requireRecentAuth(MINUTE);
    }, 'GET');
    assert.equal(r.tether.stats().writes, writes);
  });

  it('reauthenticated() when another engine changed the session meanwhile then the replayed commit keeps both, under the new ID', async () => {
    const a = rig({ idleTimeoutMs: 60 * MINUTE });
    const b = rig({ idleTimeoutMs: 60 * MINUTE }, a);
    const cookie = await signedIn(a);
    await trip(a.tether, cookie, (s) => s.set('n', 0));
    a.clock.advance(30 * MINUTE);
    const sa = await a.tether.open(view('POST', { cookie }));
    sa.reauthenticated();
    await sa.update((d) => void (d.n = Number(d.n) + 1));
    await trip(b.tether, cookie, (s) => s.update((d) => void (d.n = Number(d.n) + 10)));
    const fresh = cookiePair(await a.tether.commit(sa));
    assert.equal(a.tether.stats().replays, 1);
    assert.ok(fresh);
    await trip(b.tether, fresh, (s) => {
      assert.equal(s.get('n'), 11);
      assert.equal(s.authenticatedAt, a.clock.now());
    });
    // The other way round: a plain update replayed over a step-up that kept the ID keeps the step-up.
    a.clock.advance(MINUTE);
    const sb = await b.tether.open(view('POST', { cookie: fresh }));
    await sb.update((d) => void (d.n = Number(d.n) + 100));
    const at = a.clock.now();
    await trip(a.tether, fresh, (s) => s.reauthenticated({ regenerate: false }));
    await b.tether.commit(sb);
    await trip(a.tether, fresh, (s) => {
      assert.equal(s.get('n'), 111);
      assert.equal(s.authenticatedAt, at);
    });
    // A write racing a step-up that renewed the ID is refused, not stored under the old ID nor lost silently.
    const sc = await b.tether.open(view('POST', { cookie: fresh }));
    await sc.update((d) => void (d.n = Number(d.n) + 1000));
    const renewed = await trip(a.tether, fresh, (s) => s.reauthenticated());
    await assert.rejects(b.tether.commit(sc), { code: 'SESSION_CONFLICT' });
    await trip(a.tether, renewed.cookie, (s) => assert.equal(s.get('n'), 111));
  });
});
