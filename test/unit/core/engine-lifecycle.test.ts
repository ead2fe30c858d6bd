/** The engine's session lifecycle: lazy creation, hashed store keys, signing and rotation, regenerate, destroy, limits. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Signer } from '../../../src/core/signer.js';
import { generateId, hashId } from '../../../src/core/ids.js';
import { cookiePair, rig, trip, view, valueOf, SECRET_A, SECRET_B } from '../support.js';
import { Tether } from '../../../src/core/engine.js';
import type { Rig } from '../support.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { tempSqliteFile } from '../../helpers/sqlite.js';
import { nextWarnings, warningsDuring } from '../../helpers/warnings.js';
import type { SessionRecord, SessionStore } from '../../../src/core/store.js';
import type { Session, SessionData } from '../../../src/core/session.js';
import { jsonCodec } from '../../../src/core/codec.js';
import type { Envelope, SessionCodec } from '../../../src/core/codec.js';

/** Puts a record straight into the backend and returns the cookie that names it. */
async function plant(r: Rig, data: string, userId: string | null = null): Promise<{ id: string; cookie: string }> {
  const id = generateId();
  const now = r.clock.now();
  const rec: SessionRecord = {
    key: hashId(id), data, version: 1, userId, createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, absoluteExpiresAt: now + 7_200_000,
  };
  assert.deepEqual(await r.memory.set(rec, 0), { ok: true });
  return { id, cookie: `sid=${new Signer([SECRET_A]).sign(id)}` };
}

function attributes(setCookie: string): Map<string, string> {
  const parts = setCookie.split(';').slice(1).map((p) => p.trim());
  return new Map(parts.map((p) => {
    const eq = p.indexOf('=');
    return eq === -1 ? [p.toLowerCase(), ''] : [p.slice(0, eq).toLowerCase(), p.slice(eq + 1)];
  }));
}

const post = (cookie: string | undefined) => view('POST', cookie ? { cookie } : {});

describe('engine lifecycle', () => {
  it('request when it stores nothing then gets no cookie and causes no store call', async () => {
    const r = rig();
    const t = await trip(r.tether, undefined, (s) => {
      assert.equal(s.get('cart'), undefined);
      assert.equal(s.isNew, true);
    });
    assert.deepEqual(t.setCookies, []);
    assert.equal(r.store.log.length, 0);
  });

  it('request when it sets only values JSON drops (undefined, a function) then gets no cookie and causes no store call; one kept value stores the session', async () => {
    const r = rig();
    const t = await trip(r.tether, undefined, (s) => {
      // An app that copies an absent query parameter on every page: `returnTo` is undefined.
      s.set('returnTo', undefined);
      s.set('format', () => 'x');
      void s.update((d) => void (d.flash = undefined));
    });
    assert.deepEqual(t.setCookies, []);
    assert.equal(r.store.log.length, 0);
    const kept = await trip(r.tether, undefined, (s) => {
      s.set('returnTo', undefined);
      s.set('theme', null);
    });
    assert.equal(kept.setCookies.length, 1);
    assert.deepEqual((await trip(r.tether, kept.cookie, () => {}, 'GET')).session.snapshot(), { theme: null });
  });

  it('request when it reads a live session and changes nothing then writes nothing and sets no cookie', async () => {
    const r = rig();
    const { cookie } = await trip(r.tether, undefined, (s) => s.set('cart', ['apple']));
    r.store.resetCounts();
    r.clock.advance(1_000);
    for (const method of ['GET', 'POST']) {
      const t = await trip(r.tether, cookie, (s) => {
        assert.deepEqual(s.get('cart'), ['apple']);
        s.set('cart', ['apple']);
      }, method);
      assert.deepEqual(t.setCookies, []);
    }
    // update() that ends where it started: the encoded text decides, and it is what was loaded.
    await trip(r.tether, cookie, (s) => s.update((d) => {
      d.cart = ['pear'];
      d.cart = ['apple'];
    }));
    assert.equal(r.store.writes, 0);
    assert.equal(r.store.calls.get, 3);
  });

  it('store when sessions are created, changed, regenerated and destroyed then holds only SHA-256 keys, never an id or cookie', async () => {
    const r = rig();
    const secrets: string[] = [];
    let t = await trip(r.tether, undefined, (s) => s.set('cart', ['pear']));
    secrets.push(valueOf(t.cookie!), t.session.id!);
    assert.equal(t.session.isNew, false);
    const firstKey = hashId(t.session.id!);
    assert.ok(await r.memory.get(firstKey), 'the record lives under the hash of the id');
    t = await trip(r.tether, t.cookie, (s) => s.set('n', 1));
    t = await trip(r.tether, t.cookie, (s) => s.login('alice'));
    secrets.push(valueOf(t.cookie!), t.session.id!);
    t = await trip(r.tether, t.cookie, (s) => s.update((d) => void (d.n = 2)));
    await r.tether.listUserSessions('alice');
    await trip(r.tether, t.cookie, (s) => s.destroy());
    const dump = r.store.dump();
    for (const secret of secrets.filter(Boolean)) {
      assert.equal(dump.includes(secret), false, 'a raw id or cookie value reached the store');
      assert.equal(dump.includes(secret.split('.')[0]!), false, 'a raw id reached the store');
    }
    for (const call of r.store.log) {
      const key = call.method === 'set' ? (call.args[0] as SessionRecord).key : call.args[0];
      if (call.method !== 'listByUser' && call.method !== 'destroyByUser') assert.match(String(key), /^[A-Za-z0-9_-]{43}$/);
    }
  });

  it('cookie when signed with an old secret still listed then loads and is re-signed with the first secret', async () => {
    const old = rig({ secrets: [SECRET_B] });
    const { cookie, session } = await trip(old.tether, undefined, (s) => s.set('cart', ['fig']));
    const rotated = rig({ secrets: [SECRET_A, SECRET_B] }, old);
    const t = await trip(rotated.tether, cookie, (s) => assert.deepEqual(s.get('cart'), ['fig']), 'GET');
    assert.equal(t.setCookies.length, 1, 'the stale cookie is sent again');
    assert.deepEqual(new Signer([SECRET_A]).unsign(valueOf(t.cookie!)), { id: session.id, stale: false, signature: new Signer([SECRET_A]).signature(session.id!) });
    const dropped = rig({ secrets: [SECRET_A] }, old);
    const d = await trip(dropped.tether, cookie, (s) => {
      assert.equal(s.isNew, true);
      assert.equal(s.get('cart'), undefined);
    }, 'GET');
    assert.equal(d.cookie, '', 'a cookie no secret verifies is cleared');
  });

  it('secrets when rotated across nodes in two steps (add the new one last everywhere, then move it first) then no node ever refuses a cookie another signed', async () => {
    const OLD = SECRET_B;
    const NEW = SECRET_A;
    const base = rig({ secrets: [OLD] });
    let cookie = (await trip(base.tether, undefined, (s) => s.set('cart', ['fig']))).cookie;
    // A user whose requests alternate between two nodes while the rollout reaches one node at a time.
    const alternate = async (label: string, ...lists: string[][]) => {
      const nodes = lists.map((secrets) => rig({ secrets }, base).tether);
      for (let i = 0; i < 6; i++) {
        const t = await trip(nodes[i % nodes.length]!, cookie, (s) => {
          assert.equal(s.isNew, false, `${label}, request ${i}`);
          assert.deepEqual(s.get('cart'), ['fig']);
        }, 'GET');
        cookie = t.cookie;
      }
    };
    await alternate('step 1 reaching the first node', [OLD, NEW], [OLD]);
    await alternate('step 1 done', [OLD, NEW], [OLD, NEW]);
    await alternate('step 2 reaching the first node', [NEW, OLD], [OLD, NEW]);
    await alternate('step 2 done', [NEW, OLD], [NEW, OLD]);
    assert.deepEqual(new Signer([NEW]).unsign(valueOf(cookie!))?.stale, false, 'after step 2 the cookie is signed with the new secret');
    await alternate('old secret dropped', [NEW]);

    // The one-step way (the new secret first on one node while another does not know it yet) logs the user out.
    let early = (await trip(base.tether, undefined, (s) => s.set('cart', ['fig']))).cookie;
    early = (await trip(rig({ secrets: [NEW, OLD] }, base).tether, early, () => {}, 'GET')).cookie;
    assert.equal((await trip(rig({ secrets: [OLD] }, base).tether, early, () => {}, 'GET')).session.isNew, true);
  });

  it('cookie when forged, naming no session, ended, expired or live then rejectedCookie tells forged and unknown apart and counts them', async () => {
    const r = rig({ idleTimeoutMs: 60_000 });
    const rejectedBy = async (cookie: string | undefined): Promise<string | null> => (await trip(r.tether, cookie, () => {}, 'GET')).session.rejectedCookie;
    assert.equal(await rejectedBy(undefined), null, 'no cookie');
    assert.equal(await rejectedBy(`sid=${'a'.repeat(43)}.${'b'.repeat(43)}`), 'forged', 'a signature no secret made');
    assert.equal(await rejectedBy('sid=not-even-a-cookie'), 'forged', 'malformed');
    assert.equal(await rejectedBy(`sid=${new Signer([SECRET_A]).sign(generateId())}`), 'unknown', 'signed, never stored');
    const live = await trip(r.tether, undefined, (s) => s.set('n', 1));
    assert.equal(await rejectedBy(live.cookie), null, 'a live session');
    await trip(r.tether, live.cookie, (s) => s.destroy());
    assert.equal(await rejectedBy(live.cookie), 'unknown', 'its session was destroyed');
    const idle = await trip(r.tether, undefined, (s) => s.set('n', 2));
    r.clock.advance(60_001);
    assert.equal(await rejectedBy(idle.cookie), null, 'a session that timed out is expired, not rejected');
    assert.equal(r.tether.stats().rejectedCookies, 4);
    assert.equal(r.tether.stats().forgedCookies, 2);
    assert.equal(r.tether.stats().expired, 1);
  });

  it('cookie of a session a login replaced when a request that raced the login presents it then the request goes on without a session and leaves the cookie alone', async () => {
    const r = rig();
    const before = await trip(r.tether, undefined, (s) => s.set('cart', ['book']));
    const racer = await r.tether.open(view('GET', { cookie: before.cookie! }));
    // The racing request is queued behind the login (as a writer would be) and loads after it.
    const login = await trip(r.tether, before.cookie, (s) => s.login('alice'));
    r.tether.abandon(racer);
    const late = await r.tether.open(view('GET', { cookie: before.cookie! }));
    assert.equal(late.rejectedCookie, 'unknown');
    assert.equal(late.isNew, true);
    assert.deepEqual(await r.tether.commit(late), [], 'no clearing Set-Cookie: the login response carries the new cookie');
    const after = await trip(r.tether, login.cookie, () => {}, 'GET');
    assert.equal(after.session.userId, 'alice');
    // The destroying request clears the cookie; a forged one is cleared on every request.
    const logout = await trip(r.tether, login.cookie, (s) => s.destroy());
    assert.equal(logout.cookie, '');
    const forged = await r.tether.open(view('GET', { cookie: `sid=${'a'.repeat(43)}.${'b'.repeat(43)}` }));
    assert.match((await r.tether.commit(forged)).join(), /^sid=;/);
  });

  it('session when presented by another browser (User-Agent) then an anomaly is reported, and with userAgentChange end the session ends', async () => {
    for (const policy of ['report', 'end'] as const) {
      const r = rig({ userAgentChange: policy });
      const seen: Array<{ event: string; reason?: string }> = [];
      for (const e of ['anomaly', 'destroyed'] as const) r.tether.events.on(e, (m: { event: string; reason?: string }) => void seen.push({ event: m.event, reason: m.reason }));
      const created = await trip(r.tether, undefined, (s) => s.set('n', 1), 'POST', { 'user-agent': 'Browser A' });
      await trip(r.tether, created.cookie, (s) => assert.equal(s.get('n'), 1), 'GET', { 'user-agent': 'Browser A' });
      assert.deepEqual(seen, [], 'the same browser is no anomaly');
      const other = await trip(r.tether, created.cookie, (s) => {
        assert.equal(s.isNew, policy === 'end');
        assert.equal(s.get('n'), policy === 'end' ? undefined : 1);
      }, 'GET', { 'user-agent': 'Browser B' });
      assert.equal(r.tether.stats().anomalies, 1);
      if (policy === 'report') {
        assert.deepEqual(seen, [{ event: 'anomaly', reason: 'user-agent' }]);
        assert.deepEqual(other.setCookies, []);
        assert.equal(await r.memory.count(), 1);
      } else {
        assert.deepEqual(seen, [{ event: 'anomaly', reason: 'user-agent' }, { event: 'destroyed', reason: 'anomaly' }]);
        assert.equal(other.cookie, '', 'the cookie is cleared');
        assert.equal(await r.memory.count(), 0, 'the session is gone for every browser');
      }
    }
  });

  it('session under userAgentChange report when presented by another browser then one anomaly per change, the new User-Agent stored by that request alone', async () => {
    const r = rig();
    const seen: Array<string | undefined> = [];
    r.tether.events.on('anomaly', (m: { reason?: string }) => void seen.push(m.reason));
    const sets = (): number => r.store.log.filter((c) => c.method === 'set').length;
    const login = await trip(r.tether, undefined, (s) => s.login('alice'), 'POST', { 'user-agent': 'Browser/1' });
    const from = (ua: string, method = 'GET') => trip(r.tether, login.cookie, () => {}, method, { 'user-agent': ua });
    const stored = async (): Promise<Array<string | null>> => (await r.tether.listUserSessions('alice')).map((s) => s.userAgent);
    const before = sets();
    await from('Browser/1');
    assert.deepEqual(seen, []);
    assert.equal(sets(), before, 'the same browser costs no write');
    const updated = await from('Browser/2');
    assert.equal(updated.session.userId, 'alice', 'the request goes on');
    assert.deepEqual(seen, ['user-agent']);
    assert.equal(sets(), before + 1, 'the change is written by the read that saw it');
    assert.deepEqual(await stored(), ['Browser/2']);
    for (let i = 0; i < 3; i++) await from('Browser/2');
    await from('Browser/2', 'POST');
    assert.deepEqual(seen, ['user-agent'], 'reported once per change, not per request');
    assert.equal(sets(), before + 1, 'and the requests after it write nothing more');
    // A change back is a change: the cookie in two browsers is reported at each switch between them.
    await from('Browser/1');
    assert.deepEqual(seen, ['user-agent', 'user-agent']);
    assert.deepEqual(await stored(), ['Browser/1']);
    assert.equal(r.tether.stats().anomalies, 2);
  });

  it('signed, well-formed, never-issued id when presented then is not adopted (strict mode)', async () => {
    const r = rig();
    const forged = generateId();
    const t = await trip(r.tether, `sid=${new Signer([SECRET_A]).sign(forged)}`, (s) => {
      assert.equal(s.isNew, true);
      s.set('cart', ['kiwi']);
    });
    assert.notEqual(t.session.id, forged);
    assert.equal(await r.memory.get(hashId(forged)), null);
    assert.equal(r.store.log.some((c) => c.method === 'set' && (c.args[0] as SessionRecord).key === hashId(forged)), false, 'nothing written under the sent id');
  });

  it('destroyAllSessions when the store fails then STORE_UNAVAILABLE, counted, every session kept; a store without destroyAll() then OPTIONS_INVALID', async () => {
    const r = rig();
    const t = await trip(r.tether, undefined, (s) => s.login('ada'));
    r.store.fail('destroyAll', 'reject');
    await assert.rejects(r.tether.destroyAllSessions(), (err: { code?: string }) => err.code === 'STORE_UNAVAILABLE');
    assert.equal(r.tether.stats().storeErrors, 1);
    r.store.heal();
    assert.equal((await trip(r.tether, t.cookie, () => {}, 'GET')).session.userId, 'ada');
    const m = r.memory;
    const unable: SessionStore = {
      name: 'plain', get: (k) => m.get(k), set: (rec, v) => m.set(rec, v), touch: (k, e, l, v) => m.touch(k, e, l, v), destroy: (k) => m.destroy(k),
      listByUser: (u) => m.listByUser(u), destroyByUser: (u, o) => m.destroyByUser(u, o), close: async () => {},
    };
    await assert.rejects(new Tether({ secrets: [SECRET_A], store: unable }).destroyAllSessions(),
      (err: { code?: string; message?: string }) => err.code === 'OPTIONS_INVALID' && /destroyAll/.test(err.message ?? ''));
    assert.equal((await trip(r.tether, t.cookie, () => {}, 'GET')).session.userId, 'ada');
  });

  it('regenerate when called then gives a new id, keeps the data, deletes the old record and rotates the CSRF token', async () => {
    const r = rig();
    let oldToken = '';
    const first = await trip(r.tether, undefined, (s) => {
      s.set('cart', ['plum']);
      oldToken = s.csrfToken;
    });
    const oldId = first.session.id!;
    let newToken = '';
    const t = await trip(r.tether, first.cookie, (s) => {
      s.regenerate();
      newToken = s.csrfToken;
    });
    assert.notEqual(t.session.id, oldId);
    assert.notEqual(t.cookie, first.cookie);
    assert.notEqual(newToken, oldToken);
    assert.equal(await r.memory.get(hashId(oldId)), null, 'old record gone');
    const again = await trip(r.tether, t.cookie, (s) => {
      assert.deepEqual(s.get('cart'), ['plum']);
      assert.equal(s.csrfToken, newToken);
    }, 'GET');
    assert.equal(again.session.isNew, false);
    const replay = await trip(r.tether, first.cookie, (s) => assert.equal(s.isNew, true), 'GET');
    assert.deepEqual(replay.setCookies, [], 'the old cookie is left alone: the login’s response carries the new one');
    assert.equal(replay.session.rejectedCookie, 'unknown');
  });

  it('login with keep when called then the signed-in session carries only the keys named; without keep all of them; a bad keep or user ID changes nothing', async () => {
    const r = rig();
    const visitor = async () => (await trip(r.tether, undefined, (s) => {
      s.set('cart', ['plum']);
      s.set('flows', { checkout: { step: 'shipping', address: 'planted' } });
      s.set('n', 3);
    })).cookie!;
    const loggedIn = async (cookie: string, fn: (s: Session<SessionData>) => void) => {
      const t = await trip(r.tether, cookie, fn);
      return (await trip(r.tether, t.cookie, () => {}, 'GET')).session.snapshot();
    };
    assert.deepEqual(await loggedIn(await visitor(), (s) => s.login('ada', { keep: ['cart'] })), { cart: ['plum'] });
    assert.deepEqual(await loggedIn(await visitor(), (s) => s.login('ada', { keep: [] })), {});
    assert.deepEqual(await loggedIn(await visitor(), (s) => s.login('ada')), { cart: ['plum'], flows: { checkout: { step: 'shipping', address: 'planted' } }, n: 3 });
    const cookie = await visitor();
    for (const [userId, keep, code] of [['ada', 'cart', undefined], ['ada', [1], undefined], ['', ['cart'], 'USER_ID_INVALID']] as const) {
      await trip(r.tether, cookie, (s) => {
        assert.throws(() => s.login(userId, { keep: keep as unknown as string[] }), code ? { code } : TypeError);
        assert.equal(s.userId, null);
        assert.deepEqual(s.snapshot(), { cart: ['plum'], flows: { checkout: { step: 'shipping', address: 'planted' } }, n: 3 });
      });
    }
  });

  it('destroy when called then deletes the record and expires the cookie with the same attributes it was set with', async () => {
    const r = rig({ cookie: { name: 'app', domain: 'shop.example', path: '/app', sameSite: 'strict', secure: true } });
    const first = await trip(r.tether, undefined, (s) => s.set('cart', ['lime']));
    const set = first.setCookies[0]!;
    const t = await trip(r.tether, first.cookie, (s) => s.destroy());
    assert.equal(t.setCookies.length, 1);
    const cleared = t.setCookies[0]!;
    assert.match(cleared, /^app=;/);
    const a = attributes(set);
    const b = attributes(cleared);
    for (const name of ['path', 'domain', 'samesite', 'secure', 'httponly']) assert.equal(b.get(name), a.get(name), name);
    assert.equal(b.get('max-age'), '0');
    assert.equal(await r.memory.get(hashId(first.session.id!)), null);
    const replay = await trip(r.tether, first.cookie, (s) => assert.equal(s.isNew, true), 'GET');
    assert.equal(replay.session.get('cart' as never), undefined);
    assert.throws(() => t.session.set('cart', []), { code: 'SESSION_ENDED' });
  });

  it('endNow when a login was already committed then the record is gone and the response expires the cookie instead of carrying it', async () => {
    const r = rig();
    const first = await trip(r.tether, undefined, (s) => s.set('cart', ['lime']));
    const session = await r.tether.open(view('POST', { cookie: first.cookie! }));
    session.login('u1');
    const committed = await r.tether.commit(session);
    const newCookie = cookiePair(committed)!;
    assert.notEqual(newCookie, first.cookie);
    await r.tether.endNow(session);
    const sent = await r.tether.commit(session);
    assert.equal(sent.length, 1);
    assert.match(sent[0]!, /^sid=;.*Max-Age=0/);
    assert.equal(await r.memory.get(hashId(session.id!)), null);
    assert.deepEqual(await r.memory.listByUser('u1'), []);
    const replay = await trip(r.tether, newCookie, (s) => assert.equal(s.rejectedCookie, 'unknown'), 'GET');
    assert.equal(replay.session.userId, null);
  });

  it('endNow when the session is not committed yet then it is destroyed at once, as destroy() and a commit would', async () => {
    const r = rig();
    const first = await trip(r.tether, undefined, (s) => s.set('cart', ['lime']));
    const session = await r.tether.open(view('POST', { cookie: first.cookie! }));
    await r.tether.endNow(session);
    assert.equal(await r.memory.get(hashId(session.id!)), null);
    assert.match((await r.tether.commit(session))[0]!, /^sid=;/);
  });

  it('endNow when the logout was already committed then the response expires the cookie again, and the session is neither deleted nor reported again', async () => {
    const r = rig();
    const heard: string[] = [];
    r.tether.events.on('destroyed', (m) => heard.push(m.reason ?? ''));
    const first = await trip(r.tether, undefined, (s) => s.login('u1'));
    const session = await r.tether.open(view('POST', { cookie: first.cookie! }));
    session.destroy();
    assert.match((await r.tether.commit(session))[0]!, /^sid=;/);
    const destroys = r.store.calls.destroy;
    await r.tether.endNow(session);
    await r.tether.endNow(session);
    assert.match((await r.tether.commit(session))[0]!, /^sid=;.*Max-Age=0/);
    assert.deepEqual(heard, ['logout']);
    assert.equal(r.tether.stats().destroyed, 1);
    assert.equal(r.store.calls.destroy, destroys, 'no second deletion');
  });

  it('destroyUserSession when the session is past its idle timeout but still in the store (expiryGraceMs) then false, and nothing is reported', async () => {
    const r = rig();
    const heard: string[] = [];
    r.tether.events.on('destroyed', (m) => heard.push(m.handle));
    const a = await trip(r.tether, undefined, (s) => s.login('u1'));
    r.clock.advance(r.tether.options.idleTimeoutMs + 1);
    assert.ok(await r.memory.get(hashId(a.session.id!)), 'kept by the store for the grace');
    assert.deepEqual(await r.tether.listUserSessions('u1'), []);
    assert.equal(await r.tether.destroyUserSession('u1', a.session.handle!), false);
    assert.deepEqual(heard, []);
    assert.equal(r.tether.stats().destroyed, 0);
  });

  it('destroyUserSessions when one of the user\'s sessions is past its idle timeout but still in the store (expiryGraceMs) then its record goes too, not counted, nor in stats().destroyed', async () => {
    const r = rig();
    const heard: string[] = [];
    r.tether.events.on('destroyed', (m) => heard.push(`${m.reason}:${m.handle}`));
    const stale = await trip(r.tether, undefined, (s) => s.login('u1'));
    const alone = await trip(r.tether, undefined, (s) => s.login('u2'));
    r.clock.advance(r.tether.options.idleTimeoutMs - 1_000);
    const other = await trip(r.tether, undefined, (s) => s.login('u1'));
    const asking = await trip(r.tether, undefined, (s) => s.login('u1'));
    r.clock.advance(2_000);
    for (const t of [stale, alone]) assert.ok(await r.memory.get(hashId(t.session.id!)), 'timed out 1 s ago, kept by the store for the grace');
    const session = await r.tether.open(post(asking.cookie));
    assert.equal(await r.tether.destroyUserSessions('u1', { except: session }), 1, 'the other device only');
    r.tether.abandon(session);
    for (const t of [stale, other]) assert.equal(await r.memory.get(hashId(t.session.id!)), null, 'removed, counted or not');
    assert.equal((await trip(r.tether, asking.cookie, () => {}, 'GET')).session.userId, 'u1', 'the device that asked stays');
    assert.equal(await r.tether.destroyUserSessions('u2'), 0, 'nothing live to end');
    assert.equal(await r.memory.get(hashId(alone.session.id!)), null);
    assert.equal(r.tether.stats().destroyed, 1);
    assert.deepEqual(heard, ['user:*', 'user:*']);
  });

  it('destroyAllSessions when sessions are past their idle timeout but still in the store (expiryGraceMs) then they go too, not counted, nor in stats().destroyed; under renewal as well', async () => {
    for (const renewal of [undefined, { intervalMs: 60_000, graceMs: 10_000 }]) {
      const r = rig(renewal ? { renewal } : {});
      const stale = [await trip(r.tether, undefined, (s) => s.login('u1')), await trip(r.tether, undefined, (s) => s.set('n', 1))];
      r.clock.advance(r.tether.options.idleTimeoutMs - 1_000);
      const live = [await trip(r.tether, undefined, (s) => s.login('u2')), await trip(r.tether, undefined, (s) => s.set('n', 1))];
      r.clock.advance(2_000);
      assert.equal(await r.memory.count(), 4, 'the store keeps the two timed out for the grace');
      assert.equal(await r.tether.destroyAllSessions(), 2, `renewal ${renewal ? 'on' : 'off'}: the live ones`);
      for (const t of [...stale, ...live]) assert.equal(await r.memory.get(hashId(t.session.id!)), null, 'removed, counted or not');
      assert.equal(r.tether.stats().destroyed, 2);
      assert.equal(await r.tether.destroyAllSessions(), 0);
    }
  });

  it('destroyUserSession called twice at once, and logins racing over maxSessionsPerUser, then each session is deleted and reported once', async () => {
    const r = rig({ maxSessionsPerUser: 2 });
    const heard: string[] = [];
    r.tether.events.on('destroyed', (m) => heard.push(`${m.reason}:${m.handle}`));
    const a = await trip(r.tether, undefined, (s) => s.login('u1'));
    assert.deepEqual(await Promise.all([1, 2].map(() => r.tether.destroyUserSession('u1', a.session.handle!))), [true, false]);
    assert.deepEqual(heard, [`user:${a.session.handle}`]);

    const old = await trip(r.tether, undefined, (s) => s.login('u2'));
    r.clock.advance(1_000);
    const [x, y] = [await trip(r.tether, undefined, (s) => s.set('n', 1)), await trip(r.tether, undefined, (s) => s.set('n', 1))];
    r.clock.advance(1_000);
    const sx = await r.tether.open(view('POST', { cookie: x.cookie! }));
    const sy = await r.tether.open(view('POST', { cookie: y.cookie! }));
    sx.login('u2');
    sy.login('u2');
    await Promise.all([r.tether.commit(sx), r.tether.commit(sy)]);
    assert.equal((await r.tether.listUserSessions('u2')).length, 2);
    assert.deepEqual(heard.slice(1), [`limit:${old.session.handle}`], 'the oldest, once');
    assert.equal(r.tether.stats().destroyed, 2);
  });

  it('session when it grows past maxSessionBytes (64 KiB by default) then commit fails SESSION_TOO_LARGE 413 and the stored value is unchanged', async () => {
    const r = rig();
    assert.equal(r.tether.options.maxSessionBytes, 64 * 1024);
    const first = await trip(r.tether, undefined, (s) => s.set('blob', 'x'.repeat(60_000)));
    const before = await r.memory.get(hashId(first.session.id!));
    await assert.rejects(trip(r.tether, first.cookie, (s) => s.set('blob', 'x'.repeat(66_000))), { code: 'SESSION_TOO_LARGE', status: 413 });
    assert.deepEqual(await r.memory.get(hashId(first.session.id!)), before);
    await assert.rejects(trip(r.tether, undefined, (s) => s.set('blob', 'y'.repeat(70_000))), { code: 'SESSION_TOO_LARGE' });
    const small = rig({ maxSessionBytes: 100 });
    await assert.rejects(trip(small.tether, undefined, (s) => s.set('blob', 'z'.repeat(100))), { code: 'SESSION_TOO_LARGE' });
    assert.equal(small.store.calls.set, 0);
  });

  it('session of multi-byte characters then maxSessionBytes counts its UTF-8 bytes, to the byte', async () => {
    const limit = 400;
    const outcomes: Array<{ k: number; bytes: number; ok: boolean }> = [];
    // '€' is one UTF-16 code unit and 3 bytes of UTF-8; '😀' two units and 4 bytes.
    for (const char of ['€', '😀', 'é']) {
      for (let k = 1; k <= 400; k++) {
        const r = rig({ maxSessionBytes: limit });
        try {
          const t = await trip(r.tether, undefined, (s) => s.set('blob', char.repeat(k)));
          const bytes = Buffer.byteLength((await r.memory.get(hashId(t.session.id!)))!.data);
          outcomes.push({ k, bytes, ok: true });
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'SESSION_TOO_LARGE');
          const bytes = Number(/take (\d+) bytes/.exec((err as Error).message)![1]);
          outcomes.push({ k, bytes, ok: false });
          break;
        }
      }
    }
    for (const o of outcomes) assert.equal(o.ok, o.bytes <= limit, `${o.k} characters, ${o.bytes} bytes`);
    // Each character ended on a refusal, and the last accepted session was within a character of the limit.
    assert.equal(outcomes.filter((o) => !o.ok).length, 3);
    assert.ok(outcomes.some((o) => o.ok && o.bytes > limit - 4));
  });

  it('stored data when it holds __proto__ and constructor.prototype then loading pollutes nothing', async () => {
    const r = rig();
    const raw = '{"d":{"a":1,"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"nested":{"__proto__":{"polluted":"yes"}}}}';
    const { cookie } = await plant(r, raw);
    const t = await trip(r.tether, cookie, (s) => {
      assert.equal(s.get('a'), 1);
      assert.equal(Object.getPrototypeOf(s.data), Object.prototype);
      assert.equal((s.data as Record<string, unknown>).polluted, undefined);
      assert.equal(Object.hasOwn(s.data, '__proto__'), false);
      assert.equal((s.data.nested as Record<string, unknown> | undefined)?.polluted, undefined);
    }, 'GET');
    assert.equal(t.session.isNew, false);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
  });

  it('stored record when the codec cannot read it or it was ended by a regeneration then the session is treated as absent, with one warning', async (t) => {
    const r = rig();
    const warnings = warningsDuring(t);
    for (const data of ['not json at all', '{"d":', '"tether:ended"']) {
      const { cookie, id } = await plant(r, data);
      const answered = await trip(r.tether, cookie, (s) => {
        assert.equal(s.isNew, true, data);
        s.set('cart', ['fresh']);
      });
      assert.notEqual(answered.session.id, id, 'a new ID, never the unreadable one');
      assert.equal((await r.memory.get(hashId(id)))?.data, data, 'the unreadable record is left alone');
    }
    await nextWarnings();
    assert.deepEqual(warnings.filter((w) => w.code === 'TETHER_RECORD_UNDECODABLE').length, 1);
    assert.equal(warnings.some((w) => w.message.includes('not json')), false, 'the record is not quoted');
  });

  it('session data that JSON cannot encode (a BigInt, a cycle, a throwing toJSON) when committed then the commit fails, nothing is stored, and one warning names the rule', async (t) => {
    const r = rig();
    const warnings = warningsDuring(t);
    const { cookie } = await trip(r.tether, undefined, (s) => s.set('cart', ['a']));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const value of [10n, cyclic, { toJSON: () => { throw new Error('secret-ish detail'); } }]) {
      const s = await r.tether.open(post(cookie));
      s.set('bad', value);
      const writes = r.store.calls.set;
      await assert.rejects(async () => r.tether.commit(s));
      assert.equal(r.store.calls.set, writes, 'nothing was written');
    }
    const read = await trip(r.tether, cookie, (s) => assert.deepEqual(s.get('cart'), ['a']), 'GET');
    assert.equal(read.session.isNew, false, 'the session is as it was');
    await nextWarnings();
    const mine = warnings.filter((w) => w.code === 'TETHER_SESSION_UNENCODABLE');
    assert.equal(mine.length, 1);
    assert.match(mine[0]!.message, /JSON/);
    assert.equal(mine[0]!.message.includes('secret-ish'), false, 'the error\'s own message is not quoted');
  });

  it('a codec written as a class when its methods use this then every read and write calls them on the codec', async () => {
    class Tagged implements SessionCodec {
      readonly #tag = 'v7:';
      encode(env: Envelope): string {
        return this.#tag + jsonCodec.encode(env);
      }
      decode(text: string): Envelope {
        if (!text.startsWith(this.#tag)) throw new Error('not tagged');
        return jsonCodec.decode(text.slice(this.#tag.length));
      }
    }
    const r = rig({ codec: new Tagged() });
    const first = await trip(r.tether, undefined, (s) => s.set('cart', ['a']));
    const stored = await r.memory.get(hashId(first.session.id!));
    assert.match(stored!.data, /^v7:/);
    const second = await trip(r.tether, first.cookie, (s) => {
      assert.equal(s.isNew, false, 'the stored record was read back through the codec');
      assert.deepEqual(s.get('cart'), ['a']);
      s.set('cart', ['a', 'b']);
    });
    assert.equal(second.session.id, first.session.id);
    const read = await trip(r.tether, second.cookie, (s) => assert.deepEqual(s.get('cart'), ['a', 'b']), 'GET');
    assert.equal(read.session.isNew, false);
  });

  it('session.set when the key is __proto__, constructor or prototype then throws SESSION_KEY_INVALID', async () => {
    const r = rig();
    const s = await r.tether.open(view('POST'));
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      assert.throws(() => s.set(key as never, { polluted: true }), { code: 'SESSION_KEY_INVALID', status: 400 });
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(await r.tether.commit(s), []);
  });

  it('session.data when given __proto__, constructor or prototype at any depth, in a new or a stored session, then throws SESSION_KEY_INVALID and nothing changes', async () => {
    const r = rig();
    const { cookie } = await trip(r.tether, undefined, (s) => s.set('prefs', { theme: 'light' }));
    const hostile = JSON.parse('{"theme":"dark","__proto__":{"isAdmin":true}}') as Record<string, unknown>;
    for (const c of [undefined, cookie]) {
      const s = await r.tether.open(post(c));
      const data = s.data as Record<string, unknown>;
      assert.throws(() => Object.assign(data, hostile), { code: 'SESSION_KEY_INVALID', status: 400 });
      assert.throws(() => { data['__proto__'] = { isAdmin: true }; }, { code: 'SESSION_KEY_INVALID' });
      assert.throws(() => Object.defineProperty(data, 'constructor', { value: 1 }), { code: 'SESSION_KEY_INVALID' });
      // Stored objects are drafts at every depth (an object the request assigns is its own plain object).
      const prefs = (c === undefined ? s.data : s.data.prefs) as Record<string, unknown>;
      for (const key of ['__proto__', 'constructor', 'prototype']) {
        assert.throws(() => { prefs[key] = { isAdmin: true }; }, { code: 'SESSION_KEY_INVALID' }, key);
      }
      assert.equal(Object.getPrototypeOf(s.data), Object.prototype);
      assert.equal(data.isAdmin, undefined);
      assert.equal(s.get('isAdmin' as never), undefined);
      r.tether.abandon(s);
    }
    // What Object.assign wrote before the refused key stays a change like any other: nothing else does.
    const t = await trip(r.tether, cookie, (s) => { s.data.theme = 'dark'; });
    assert.equal(JSON.stringify(t.session.data), '{"prefs":{"theme":"light"},"theme":"dark"}');
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
  });

  it('session.get when the key is only inherited (constructor, toString) then answers undefined, whether or not the data was read before', async () => {
    const r = rig();
    const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 1));
    for (const touch of [false, true]) {
      await trip(r.tether, cookie, (s) => {
        if (touch) void s.data.n;
        assert.equal(s.get('constructor' as never), undefined, `touched: ${touch}`);
        assert.equal(s.get('toString' as never), undefined, `touched: ${touch}`);
        assert.equal(s.get('hasOwnProperty' as never), undefined, `touched: ${touch}`);
        assert.equal(s.get('n'), 1);
      }, 'GET');
    }
    const fresh = await r.tether.open(post(undefined));
    assert.equal(fresh.get('constructor' as never), undefined);
    fresh.set('n', 2);
    assert.equal(fresh.get('toString' as never), undefined);
    r.tether.abandon(fresh);
  });

  it('user ID when not a string, empty, over 1,024 bytes in UTF-8, holding U+0000 or a lone surrogate then login, setUser and the user calls throw USER_ID_INVALID 400', async () => {
    const r = rig();
    const bad: unknown[] = ['user\ud800', 'user\udc00', 'a\udc00\ud800b', 'nul\u0000', '', 'x'.repeat(1025), 'ユ'.repeat(342), '😀'.repeat(257), 42, undefined];
    for (const userId of bad) {
      const s = await r.tether.open(post(undefined));
      assert.throws(() => s.login(userId as string), { code: 'USER_ID_INVALID', status: 400 }, JSON.stringify(userId));
      assert.throws(() => s.setUser(userId as string), { code: 'USER_ID_INVALID' });
      assert.equal(s.userId, null, 'nothing was set');
      r.tether.abandon(s);
      await assert.rejects(r.tether.listUserSessions(userId as string), { code: 'USER_ID_INVALID' });
      await assert.rejects(r.tether.destroyUserSessions(userId as string), { code: 'USER_ID_INVALID' });
      await assert.rejects(r.tether.destroyUserSession(userId as string, 'handle'), { code: 'USER_ID_INVALID' });
      await assert.rejects(r.tether.users.get(userId as string), { code: 'USER_ID_INVALID' });
      await assert.rejects(r.tether.users.update(userId as string, () => ({ x: 1 })), { code: 'USER_ID_INVALID' });
      await assert.rejects(r.tether.users.clear(userId as string), { code: 'USER_ID_INVALID' });
    }
    // Characters outside the BMP (a well-formed surrogate pair), other scripts and the longest ID are accepted.
    for (const userId of ['ana😀', 'ユーザー', 'x'.repeat(1024), 'ユ'.repeat(341), '😀'.repeat(256)]) {
      const t = await trip(r.tether, undefined, (s) => s.login(userId));
      assert.equal(t.session.userId, userId);
      assert.equal((await r.tether.listUserSessions(userId)).length, 1);
    }
    const t = await trip(r.tether, undefined, (s) => { s.login('ana😀'); s.setUser(null); });
    assert.equal(t.session.userId, null);
  });
  it('cookie when the session is full, logged in, remembered, with the longest ID and attributes then every Set-Cookie stays under 4096 bytes', async () => {
    const longestId = () => randomBytes(96).toString('base64url');
    const r = rig({ production: true, generateId: longestId, cookie: { name: `s${'x'.repeat(200)}`, domain: `${'d'.repeat(60)}.example.com`, path: `/${'p'.repeat(200)}` } });
    const max = r.tether.options.maxSessionBytes;
    const full = await trip(r.tether, undefined, (s) => {
      s.set('blob', 'x'.repeat(max - 1_000));
      s.login('u'.repeat(1_024));
      s.remember();
    });
    assert.equal(valueOf(full.cookie!).length, 128 + 1 + 43, 'the longest ID and its signature');
    const out = await trip(r.tether, full.cookie, (s) => s.destroy());
    const all = [...full.setCookies, ...out.setCookies];
    assert.ok(all.some((c) => /Max-Age=\d{6,}/.test(c)), 'a persistent cookie among them');
    for (const c of all) assert.ok(Buffer.byteLength(c) < 4096, `${Buffer.byteLength(c)} bytes: ${c.slice(0, 80)}…`);
  });

  it('engine when its await using block ends then it and its store are closed, and what it committed reads back from the file', async () => {
    const file = await tempSqliteFile();
    try {
      let cookie: string | undefined;
      let store: SqliteStore;
      {
        await using tether = new Tether({ secrets: [SECRET_A], store: (store = new SqliteStore({ path: file.path, sweepIntervalMs: 0 })) });
        cookie = (await trip(tether, undefined, (s) => s.set('cart', ['tea']))).cookie;
      }
      await assert.rejects(store.get('any'), (err: { code?: string }) => err.code === 'STORE_CLOSED');
      await using again = new Tether({ secrets: [SECRET_A], store: new SqliteStore({ path: file.path, sweepIntervalMs: 0 }) });
      await trip(again, cookie, (s) => void assert.deepEqual(s.get('cart'), ['tea']), 'GET');
    } finally {
      await file.remove();
    }
  });
});
