/**
 * The renewal timeout (`renewal`): an ID past the interval is replaced at the next request that can
 * deliver a cookie, the old ID names the session for the grace only, and requests racing the renewal
 * lose nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateId, handleOf, hashId } from '../../../src/core/ids.js';
import { isMoved, movedId } from '../../../src/core/renewal.js';
import { Tether } from '../../../src/core/engine.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { cookiePair, holdAtPointer, ManualClock, rig, sleep, trip, view, SECRET_A } from '../support.js';
import type { Rig } from '../support.js';
import type { SocketEndReason } from '../../../src/core/socket.js';
import type { SessionStore } from '../../../src/core/store.js';

const RENEWAL = { intervalMs: 60_000, graceMs: 10_000 };
const get = (cookie: string) => view('GET', { cookie });
const post = (cookie: string) => view('POST', { cookie });

/** A signed-in session with data and a CSRF token, and its cookie. */
async function signedIn(r: Rig): Promise<{ cookie: string; id: string; token: string; createdAt: number }> {
  const t = await trip(r.tether, undefined, (s) => {
    s.set('cart', ['apple']);
    s.login('u1');
  });
  const token = (await trip(r.tether, t.cookie, (s) => s.csrfToken, 'GET')).session.csrfToken;
  return { cookie: t.cookie!, id: t.session.id!, token, createdAt: t.session.createdAt! };
}


describe('engine renewal', () => {
  it('renewal when the ID is older than the interval then the next request answers a new cookie and keeps data, owner, token and age', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(59_000);
    const early = await trip(r.tether, first.cookie, () => {}, 'GET');
    assert.equal(cookiePair(early.setCookies), undefined, 'not due before the interval');
    r.clock.advance(1_000);
    const renewed = await trip(r.tether, first.cookie, (s) => assert.equal(s.id, first.id, 'the handler sees the ID it was sent'), 'GET');
    const next = cookiePair(renewed.setCookies);
    assert.ok(next !== undefined && next !== first.cookie, 'a new cookie');
    assert.notEqual(renewed.session.id, first.id);
    const after = await trip(r.tether, next, (s) => {
      assert.deepEqual(s.get('cart'), ['apple']);
      assert.equal(s.userId, 'u1');
      assert.equal(s.csrfToken, first.token);
      assert.equal(s.createdAt, first.createdAt);
    }, 'GET');
    assert.equal(cookiePair(after.setCookies), undefined, 'the new ID is not due again');
    assert.deepEqual([r.tether.stats().renewed, r.tether.stats().regenerated], [1, 1], 'one renewal, counted as a regeneration too');
    const sessions = await r.tether.listUserSessions('u1');
    assert.equal(sessions.length, 1, 'the old ID is not listed as a session of its user');
    assert.equal(sessions[0]!.id, renewed.session.handle);
  });

  it('renewal when the request due for it is not the user’s activity (session.touch(false)) then it keeps the ID, and the next request renews it', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const poll = await trip(r.tether, first.cookie, (s) => s.touch(false), 'GET');
    assert.equal(cookiePair(poll.setCookies), undefined, 'no new cookie');
    assert.equal(r.tether.stats().renewed, 0);
    const renewed = await trip(r.tether, first.cookie, () => {}, 'GET');
    assert.ok(cookiePair(renewed.setCookies) !== undefined && renewed.session.id !== first.id, 'renewed by the next request');
  });

  it('renewal when the old cookie comes back within the grace then it opens the session and is answered the new cookie; after the grace it names none', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const renewed = await trip(r.tether, first.cookie, () => {}, 'GET');
    const next = cookiePair(renewed.setCookies)!;
    r.clock.advance(9_000);
    // A request the browser sent before the new cookie arrived, or whose answer was lost: it writes to the session.
    const late = await trip(r.tether, first.cookie, (s) => s.update((d) => void (d.cart = [...(d.cart as string[]), 'pear'])));
    assert.equal(cookiePair(late.setCookies), next, 'the new cookie again');
    assert.equal(late.session.handle, renewed.session.handle);
    await trip(r.tether, next, (s) => assert.deepEqual(s.get('cart'), ['apple', 'pear']), 'GET');
    r.clock.advance(1_000);
    const dead = await trip(r.tether, first.cookie, (s) => {
      assert.equal(s.isNew, true);
      assert.equal(s.rejectedCookie, 'unknown');
    }, 'GET');
    assert.equal(cookiePair(dead.setCookies), undefined);
    await trip(r.tether, next, (s) => assert.deepEqual(s.get('cart'), ['apple', 'pear']), 'GET');
  });

  it('renewal when the store holds the old record then it is a pointer sealed with the old ID: no new ID in clear, no owner', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const renewed = await trip(r.tether, first.cookie, () => {}, 'GET');
    const pointer = (await r.memory.get(hashId(first.id)))!;
    assert.ok(isMoved(pointer.data));
    assert.equal(pointer.userId, null);
    assert.equal(pointer.data.includes(renewed.session.id!), false);
    assert.equal(pointer.expiresAt, r.clock.now() + RENEWAL.graceMs);
    assert.equal(movedId(pointer.data, first.id), renewed.session.id);
    assert.equal(movedId(pointer.data, renewed.session.id!), null, 'another ID does not open it');
    assert.equal(movedId(pointer.data.slice(0, -3) + 'AA"', first.id), null, 'nor does a changed pointer');
  });

  it('renewal when a write finds that another request only renewed the ID then it follows without a conflict: the counts agree with the conflict events', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const conflicts: Array<string | undefined> = [];
    r.tether.events.on('conflict', (m: { reason?: string }) => void conflicts.push(m.reason));
    r.clock.advance(61_000);
    const a = await r.tether.open(get(first.cookie));
    const b = await r.tether.open(post(first.cookie));
    b.set('note', 'typed');
    await r.tether.commit(a);
    await r.tether.commit(b);
    assert.deepEqual(conflicts, [], 'nothing to replay or reject: the other request stored only a new ID');
    const { conflicts: counted, replays } = r.tether.stats();
    assert.deepEqual([counted, replays], [0, 0], 'tether_cas_conflicts_total counts the conflict events');
  });

  it('renewal when two requests of the session find the ID due at once then one renews, the other follows, and neither change is lost', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    // Read-only requests take no turn at the gate: both load the old record.
    const a = await r.tether.open(get(first.cookie));
    const b = await r.tether.open(get(first.cookie));
    await a.update((d) => void (d.a = 1));
    await b.update((d) => void (d.b = 2));
    const ca = cookiePair(await r.tether.commit(a));
    const cb = cookiePair(await r.tether.commit(b));
    assert.ok(ca !== undefined && ca !== first.cookie);
    assert.equal(cb, ca, 'both answered the one new cookie');
    await trip(r.tether, ca, (s) => {
      assert.equal(s.get('a'), 1);
      assert.equal(s.get('b'), 2);
      assert.deepEqual(s.get('cart'), ['apple']);
    }, 'GET');
    assert.equal((await r.tether.listUserSessions('u1')).length, 1, 'the losing renewal left no copy behind');
  });

  it('renewal when the request that lost the race changed data outside update() then it still lands on the new ID, since the winner only renewed', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const a = await r.tether.open(get(first.cookie));
    const b = await r.tether.open(post(first.cookie));
    b.set('note', 'typed');
    const ca = cookiePair(await r.tether.commit(a));
    const cb = cookiePair(await r.tether.commit(b));
    assert.equal(cb, ca);
    await trip(r.tether, ca, (s) => assert.equal(s.get('note'), 'typed'), 'GET');
  });

  it('renewal when writers present the old cookie (in the grace) and the new one at once then they take one gate in turn, and both writes land', async () => {
    for (const oldFirst of [true, false]) {
      const r = rig({ renewal: RENEWAL });
      const first = await signedIn(r);
      r.clock.advance(61_000);
      const next = cookiePair((await trip(r.tether, first.cookie, (s) => s.set('n', 0), 'POST')).setCookies)!;
      const [cookieA, cookieB] = oldFirst ? [first.cookie, next] : [next, first.cookie];
      const a = await r.tether.open(post(cookieA));
      let bOpened = false;
      const b = Promise.resolve(r.tether.open(post(cookieB))).then((s) => {
        bOpened = true;
        return s;
      });
      await sleep(20);
      assert.equal(bOpened, false, `${oldFirst ? 'new' : 'old'} cookie's writer waits for the one before it`);
      assert.equal(r.tether.stats().gateHolding, 1, 'one holder for the one session');
      a.set('n', (a.get('n') as number) + 1);
      await r.tether.commit(a);
      const sb = await b;
      sb.set('n', (sb.get('n') as number) + 1);
      assert.equal(cookiePair(await r.tether.commit(sb)) ?? next, next, 'the new cookie, or none to send');
      await trip(r.tether, next, (s) => assert.equal(s.get('n'), 2, 'neither increment lost'), 'GET');
      assert.equal(r.tether.stats().gateHolding, 0);
    }
  });

  it('renewal when the session is logged out, or its user everywhere, within the grace then the old cookie names no session', async () => {
    for (const end of ['logout', 'everywhere'] as const) {
      const r = rig({ renewal: RENEWAL });
      const first = await signedIn(r);
      r.clock.advance(61_000);
      const next = cookiePair((await trip(r.tether, first.cookie, () => {}, 'GET')).setCookies)!;
      if (end === 'logout') await trip(r.tether, next, (s) => s.destroy());
      else assert.equal(await r.tether.destroyUserSessions('u1'), 1);
      const old = await trip(r.tether, first.cookie, () => {}, 'GET');
      assert.equal(old.session.isNew, true, end);
      assert.equal(old.session.rejectedCookie, 'unknown', end);
    }
  });

  it('renewal when another request of the session renews its ID while this one logs out (destroy, endNow) then the session ends under the new ID too', async () => {
    for (const end of ['destroy', 'endNow', 'login then destroy'] as const) {
      const r = rig({ renewal: RENEWAL });
      const first = await signedIn(r);
      r.clock.advance(61_000);
      const logout = await r.tether.open(post(first.cookie));
      // A page's parallel request renews the ID while the logout runs; its answer carries the new cookie.
      const renewed = cookiePair((await trip(r.tether, first.cookie, () => {}, 'GET')).setCookies)!;
      assert.notEqual(renewed, first.cookie);
      // The page's live channel, opened again under the new ID, hears the logout.
      const HOST = { host: 'app.test', origin: 'http://app.test' };
      const socket = await r.tether.openSocket(view('GET', { ...HOST, cookie: renewed }), { checkIntervalMs: 0 });
      const heard: SocketEndReason[] = [];
      socket.onEnd((reason) => void heard.push(reason));
      if (end === 'endNow') {
        await r.tether.endNow(logout);
      } else {
        if (end === 'login then destroy') logout.login('u1');
        logout.destroy();
        await r.tether.commit(logout);
      }
      for (const cookie of [renewed, first.cookie]) {
        const after = await trip(r.tether, cookie, () => {}, 'GET');
        assert.equal(after.session.userId, null, `${end}: signed out`);
        assert.equal(after.session.isNew, true, end);
      }
      assert.deepEqual(await r.tether.listUserSessions('u1'), [], end);
      assert.deepEqual(heard, ['destroyed'], end);
      socket.close();
    }
  });

  it('renewal when another request of the session renews its ID while this one lists the sessions and logs out everywhere else then it is listed as current, stays, under either ID, and the others end', async () => {
    for (const regenerate of [false, true]) {
      const r = rig({ renewal: RENEWAL });
      const first = await signedIn(r);
      const other = await trip(r.tether, undefined, (s) => s.login('u1'));
      r.clock.advance(61_000);
      // "Log out everywhere else" loads the session; a page's parallel request renews its ID meanwhile.
      const asking = await r.tether.open(post(first.cookie));
      const renewed = cookiePair((await trip(r.tether, first.cookie, () => {}, 'GET')).setCookies)!;
      assert.notEqual(renewed, first.cookie);
      assert.deepEqual((await r.tether.listUserSessions('u1', asking)).map((l) => l.current).sort(), [false, true], 'listed as the current one under its new ID');
      // A step-up before it gives the asking request's session a new ID of its own at its commit.
      if (regenerate) asking.reauthenticated();
      assert.equal(await r.tether.destroyUserSessions('u1', { except: asking }), 1, 'only the other device');
      const answered = cookiePair(await r.tether.commit(asking));
      // Without a step-up the asking request stores nothing and answers the renewed cookie. With one,
      // its new ID replaces the renewed one, as a regeneration replaces the ID it follows.
      assert.equal(answered === renewed, !regenerate);
      const cookie = answered!;
      assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.userId, 'u1', `regenerate: ${regenerate}, still signed in`);
      assert.equal((await trip(r.tether, other.cookie, () => {}, 'GET')).session.userId, null, 'the other device is signed out');
      assert.equal((await r.tether.listUserSessions('u1')).length, 1);
    }
  });

  it('renewal when a request cannot deliver a cookie (renew: false) then the ID stays as it is', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const s = await r.tether.open(get(first.cookie), { renew: false });
    assert.deepEqual(await r.tether.commit(s), []);
    assert.equal(isMoved((await r.memory.get(hashId(first.id)))!.data), false);
    const later = await trip(r.tether, first.cookie, () => {}, 'GET');
    assert.ok(cookiePair(later.setCookies) !== undefined, 'the next request that can renews');
  });

  it('renewal when a login gives the session a new ID then that ID is dated from the login, and so is a new session', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(50_000);
    const relogged = await trip(r.tether, first.cookie, (s) => s.login('u1'));
    r.clock.advance(20_000);
    // 70 s after the session began, 20 s after the login's ID.
    const t = await trip(r.tether, relogged.cookie, () => {}, 'GET');
    assert.equal(cookiePair(t.setCookies), undefined);
  });

  it('renewal when a session stored before renewal was configured has no issue time then its age decides', async () => {
    const plain = rig();
    const first = await signedIn(plain);
    plain.clock.advance(61_000);
    const renewing = rig({ renewal: RENEWAL }, plain);
    const t = await trip(renewing.tether, first.cookie, () => {}, 'GET');
    assert.ok(cookiePair(t.setCookies) !== undefined);
  });

  it('renewal when the engine has no renewal then nothing stores an issue time', async () => {
    const r = rig();
    const first = await signedIn(r);
    assert.equal('i' in JSON.parse((await r.memory.get(hashId(first.id)))!.data), false);
  });

  it('renewal when sockets watch the session then their reads never renew it, and a renewal here or in another process ends them as regenerated', async () => {
    // Two processes over one store with a change feed.
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const a = { tether: new Tether({ secrets: [SECRET_A], clock, store: memory, renewal: RENEWAL }), clock, memory };
    const b = { tether: new Tether({ secrets: [SECRET_A], clock, store: memory, renewal: RENEWAL }) };
    const HOST = { host: 'app.test', origin: 'http://app.test' };
    const t = await trip(a.tether, undefined, (s) => s.login('u1'), 'POST', HOST);
    const first = t.cookie!;
    const here = await a.tether.openSocket(view('GET', { ...HOST, cookie: first }), { checkIntervalMs: 0 });
    const there = await b.tether.openSocket(view('GET', { ...HOST, cookie: first }), { checkIntervalMs: 0 });
    const seen: Array<[string, SocketEndReason]> = [];
    here.onEnd((reason) => void seen.push(['here', reason]));
    there.onEnd((reason) => void seen.push(['there', reason]));
    a.clock.advance(61_000);
    assert.equal(await here.refresh(), true);
    await here.touch();
    assert.equal(isMoved((await a.memory.get(hashId(t.session.id!)))!.data), false, 'a socket cannot deliver a cookie');
    const renewed = await trip(a.tether, first, () => {}, 'GET', HOST);
    assert.ok(cookiePair(renewed.setCookies) !== undefined);
    // The other process hears it through the store's change feed: waited for, within a bound, as a
    // loaded machine may take longer than a few milliseconds to deliver it.
    for (let waited = 0; seen.length < 2 && waited < 2_000; waited += 10) await sleep(10);
    assert.deepEqual(seen.sort(), [['here', 'regenerated'], ['there', 'regenerated']]);
  });

  it('renewal when a socket opens with the old cookie within the grace then it follows the session under its new ID past the grace', async () => {
    const r = rig({ renewal: RENEWAL });
    const HOST = { host: 'app.test', origin: 'http://app.test' };
    const t = await trip(r.tether, undefined, (s) => s.login('u1'), 'POST', HOST);
    r.clock.advance(61_000);
    const renewed = await trip(r.tether, t.cookie, () => {}, 'GET', HOST);
    const socket = await r.tether.openSocket(view('GET', { ...HOST, cookie: t.cookie! }), { checkIntervalMs: 0 });
    assert.equal(socket.userId, 'u1');
    assert.deepEqual(socket.cookies.map((c) => c.split(';')[0]), [cookiePair(renewed.setCookies)], 'the handshake may carry the new cookie');
    r.clock.advance(RENEWAL.graceMs + 1_000);
    assert.equal(await socket.refresh(), true, 'still the session, past the grace');
    socket.close();
  });

  it('renewal when the renewing request also gives the session its owner then maxSessionsPerUser holds as on any write', async () => {
    const r = rig({ renewal: RENEWAL, maxSessionsPerUser: 1 });
    const guest = await trip(r.tether, undefined, (s) => s.set('cart', ['tea']));
    r.clock.advance(1_000);
    const other = await signedIn(r);
    r.clock.advance(60_000);
    const owned = await trip(r.tether, guest.cookie, (s) => s.setUser('u1'));
    assert.ok(cookiePair(owned.setCookies) !== guest.cookie, 'renewed');
    const sessions = await r.tether.listUserSessions('u1');
    assert.deepEqual(sessions.map((x) => x.id), [owned.session.handle], 'the older session of u1 ended');
    assert.equal((await trip(r.tether, other.cookie, () => {}, 'GET')).session.isNew, true);
  });

  it('renewal when a session renews its ID while a login of its user enforces maxSessionsPerUser, or an account page ends it by its handle, then it counts once and ends under both IDs', async () => {
    for (const during of ['login', 'end'] as const) {
      const r = rig({ renewal: RENEWAL, maxSessionsPerUser: 2 });
      const first = await signedIn(r);
      const handle = (await r.tether.listUserSessions('u1'))[0]!.id;
      r.clock.advance(61_000);
      // The renewal is held between its two writes: the copy under the new ID stored, the pointer not yet.
      const { atPointer, release } = holdAtPointer(r.store);
      const renewing = trip(r.tether, first.cookie, () => {}, 'GET');
      await atPointer;
      if (during === 'login') {
        // A second device: two sessions, the limit, though the first is stored twice for the moment.
        const second = await trip(r.tether, undefined, (s) => s.login('u1'));
        release();
        const next = cookiePair((await renewing).setCookies)!;
        assert.equal((await trip(r.tether, next, () => {}, 'GET')).session.userId, 'u1', 'the renewed device is still signed in');
        assert.equal((await trip(r.tether, second.cookie, () => {}, 'GET')).session.userId, 'u1');
      } else {
        // "End this device": its deletion reaches the old record once the pointer has replaced it.
        r.store.fail('destroy', { delayMs: 20 });
        const ending = r.tether.destroyUserSession('u1', handle);
        await sleep(5);
        release();
        assert.equal(await ending, true);
        r.store.heal();
        const next = cookiePair((await renewing).setCookies) ?? first.cookie;
        assert.equal((await trip(r.tether, next, () => {}, 'GET')).session.userId, null, 'the device is signed out');
        assert.deepEqual(await r.tether.listUserSessions('u1'), []);
      }
    }
  });

  it('renewal when two processes find the ID due at once and the loser stores nothing then its answer carries the new cookie too, so a lost winner’s answer signs no one out', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const a = new Tether({ secrets: [SECRET_A], clock, store: memory, renewal: RENEWAL });
    const b = new Tether({ secrets: [SECRET_A], clock, store: memory, renewal: RENEWAL });
    const first = (await trip(a, undefined, (s) => s.login('u1'))).cookie!;
    clock.advance(61_000);
    const ra = await a.open(get(first));
    const rb = await b.open(get(first));
    const won = cookiePair(await a.commit(ra));
    assert.ok(won !== undefined && won !== first, 'renewed');
    const lost = await b.commit(rb);
    assert.deepEqual(lost.map((c) => c.split(';')[0]), [won], 'the winner’s cookie, once');
    // The winner's answer never reached the browser (a cancelled navigation): the loser's did.
    clock.advance(RENEWAL.graceMs + 1_000);
    assert.equal((await trip(a, cookiePair(lost), () => {}, 'GET')).session.userId, 'u1');
  });

  it('renewal when the store fails the pointer write then the copy under the new ID is removed, and the session goes on under its old ID, listed once', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const handle = (await r.tether.listUserSessions('u1'))[0]!.id;
    r.clock.advance(61_000);
    r.store.beforeSet = (rec) => {
      if (isMoved(rec.data)) throw new Error('ECONNRESET');
    };
    await assert.rejects(trip(r.tether, first.cookie, () => {}, 'GET'), { code: 'STORE_UNAVAILABLE' });
    r.store.beforeSet = undefined;
    // Removed behind the failure's answer.
    await sleep(20);
    assert.deepEqual((await r.memory.listByUser('u1')).map((x) => x.key), [hashId(first.id)], 'no copy nobody holds the cookie of');
    const asking = await r.tether.open(get(first.cookie));
    const listed = await r.tether.listUserSessions('u1', asking);
    assert.deepEqual(listed.map((l) => [l.id, l.current]), [[handle, true]], 'one device, the current one');
    r.tether.abandon(asking);
    // Logged out, it leaves nothing listed as a device of its user.
    await trip(r.tether, first.cookie, (s) => s.destroy());
    assert.deepEqual(await r.tether.listUserSessions('u1'), []);
    assert.equal(await r.memory.count(), 0);
  });

  it('renewal when the store fails the pointer write and then the copy\'s removal then a logout ends the copy too: nothing is left listed under its handle', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const other = await trip(r.tether, undefined, (s) => s.login('u1'));
    const otherHandle = (await r.tether.listUserSessions('u1')).find((l) => l.id !== handleOf(hashId(first.id)))!.id;
    r.clock.advance(61_000);
    // Every write to the old record fails (the pointer, then the cleanup's), and so does the copy's removal.
    r.store.beforeSet = (rec) => {
      if (rec.key === hashId(first.id)) throw new Error('ECONNRESET');
    };
    r.store.fail('destroy', 'throw');
    await assert.rejects(trip(r.tether, first.cookie, () => {}, 'GET'), { code: 'STORE_UNAVAILABLE' });
    await sleep(20);
    r.store.beforeSet = undefined;
    r.store.heal();
    assert.equal((await r.memory.listByUser('u1')).length, 3, 'the copy lingers beside its session');
    await trip(r.tether, first.cookie, (s) => s.destroy());
    assert.deepEqual((await r.tether.listUserSessions('u1')).map((l) => l.id), [otherHandle], 'only the other device');
    assert.equal((await trip(r.tether, other.cookie, () => {}, 'GET')).session.userId, 'u1', 'the other device stays signed in');
  });

  it('renewal when the pointer write is stored but its answer is lost then the copy is kept: the old cookie follows the pointer to it', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    r.store.beforeSet = async (rec) => {
      if (!isMoved(rec.data)) return;
      assert.equal((await r.memory.set(rec, rec.version - 1)).ok, true);
      throw new Error('ECONNRESET');
    };
    await assert.rejects(trip(r.tether, first.cookie, () => {}, 'GET'), { code: 'STORE_UNAVAILABLE' });
    r.store.beforeSet = undefined;
    await sleep(20);
    const again = await trip(r.tether, first.cookie, () => {}, 'GET');
    assert.equal(again.session.userId, 'u1', 'the session lives under the new ID');
    assert.ok(cookiePair(again.setCookies) !== undefined && cookiePair(again.setCookies) !== first.cookie, 'answered the new cookie');
    assert.deepEqual(again.session.get('cart'), ['apple']);
  });

  it('renewal when the pointer write answers after the store deadline then the copy is removed and the late pointer names nothing: the session goes on under its old ID', async () => {
    const r = rig({ renewal: RENEWAL, storeTimeoutMs: 50 });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    let landed!: () => void;
    const late = new Promise<void>((resolve) => void (landed = resolve));
    r.store.beforeSet = async (rec) => {
      if (!isMoved(rec.data)) return;
      await sleep(150);
      setImmediate(landed);
    };
    await assert.rejects(trip(r.tether, first.cookie, () => {}, 'GET'), { code: 'STORE_UNAVAILABLE' });
    await late;
    await sleep(10);
    r.store.beforeSet = undefined;
    assert.deepEqual((await r.memory.listByUser('u1')).map((x) => x.key), [hashId(first.id)], 'the copy is gone, the old record is no pointer');
    const again = await trip(r.tether, first.cookie, () => {}, 'GET');
    assert.equal(again.session.userId, 'u1', 'still signed in');
    assert.deepEqual(again.session.get('cart'), ['apple']);
  });

  it('renewal when a session renews its ID while destroyAllSessions walks the store then it ends too', async () => {
    const r = rig({ renewal: RENEWAL });
    const now = r.clock.now();
    // Enough sessions that the walk gives the event loop turns, in which the session's request runs.
    for (let i = 0; i < 30_000; i++) {
      await r.memory.set({ key: hashId(`another-visitor-session-${String(i).padStart(20, '0')}`), data: '{"d":{}}', version: 1, userId: null,
        createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, absoluteExpiresAt: now + 3_600_000 }, 0);
    }
    const first = await signedIn(r);
    r.clock.advance(61_000);
    let walked = false;
    const ending = r.tether.destroyAllSessions().then((n) => {
      walked = true;
      return n;
    });
    const renewed = cookiePair((await trip(r.tether, first.cookie, () => {}, 'GET')).setCookies);
    assert.ok(renewed !== undefined && !walked, 'renewed while the walk ran');
    assert.ok(await ending >= 30_001);
    for (const cookie of [renewed, first.cookie]) {
      assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
    }
    assert.equal(await r.memory.count(), 0);
  });

  it('renewal when a parallel request is between the two writes of its renewal while this one logs out everywhere else then the session stays under its new ID', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const other = await trip(r.tether, undefined, (s) => s.login('u1'));
    r.clock.advance(61_000);
    const asking = await r.tether.open(post(first.cookie), { renew: false });
    const { atPointer, release } = holdAtPointer(r.store);
    const renewing = trip(r.tether, first.cookie, () => {}, 'GET');
    await atPointer;
    assert.equal(await r.tether.destroyUserSessions('u1', { except: asking }), 1, 'only the other device');
    release();
    const next = cookiePair((await renewing).setCookies)!;
    await r.tether.commit(asking);
    assert.equal((await trip(r.tether, next, () => {}, 'GET')).session.userId, 'u1', 'still signed in under the new ID');
    assert.equal((await trip(r.tether, other.cookie, () => {}, 'GET')).session.userId, null);
  });

  it('renewal when a device renews its ID after its user\u2019s session list was shown then the handle from that list still names it: session.handle, events and destroyUserSession agree', async () => {
    const r = rig({ renewal: RENEWAL });
    const messages: Array<{ event: string; handle: string; previousHandle?: string; reason?: string }> = [];
    for (const event of ['regenerated', 'destroyed'] as const) r.tether.events.on(event, (m: { event: string; handle: string; previousHandle?: string; reason?: string }) => void messages.push(m));
    const first = await signedIn(r);
    const [listed] = await r.tether.listUserSessions('u1');
    messages.length = 0;
    let cookie = first.cookie;
    for (let i = 0; i < 3; i++) {
      r.clock.advance(61_000);
      const renewed = await trip(r.tether, cookie, () => {}, 'GET');
      assert.ok(cookiePair(renewed.setCookies) !== cookie, 'renewed');
      cookie = cookiePair(renewed.setCookies)!;
      assert.equal(renewed.session.handle, listed!.id, 'the session keeps its handle');
      const again = await trip(r.tether, cookie, () => {}, 'GET');
      assert.equal(again.session.handle, listed!.id);
    }
    assert.deepEqual((await r.tether.listUserSessions('u1')).map((x) => x.id), [listed!.id]);
    assert.deepEqual(messages.map((m) => [m.event, m.handle, m.previousHandle, m.reason]), Array(3).fill(['regenerated', listed!.id, undefined, 'renewal']),
      'a renewal names the session by its handle, and no other session it replaced');
    messages.length = 0;
    assert.equal(await r.tether.destroyUserSession('u1', listed!.id), true, 'the list shown before the renewals ends the device');
    assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
    assert.deepEqual(messages.map((m) => [m.event, m.handle, m.reason]), [['destroyed', listed!.id, 'user']]);
    assert.deepEqual(await r.tether.listUserSessions('u1'), []);
  });

  it('renewal when a renewed session is logged out and its cookie presented again then the reuse carries the idHandle its ending reported', async () => {
    const r = rig({ renewal: RENEWAL });
    const ended: Array<{ handle: string; idHandle?: string }> = [];
    const reused: Array<{ handle: string }> = [];
    r.tether.events.on('destroyed', (m: { handle: string; idHandle?: string }) => void ended.push(m));
    r.tether.events.on('reused', (m: { handle: string }) => void reused.push(m));
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const renewed = await trip(r.tether, first.cookie, () => {}, 'GET');
    const handle = renewed.session.handle!;
    const cookie = cookiePair(renewed.setCookies)!;
    await trip(r.tether, cookie, (s) => s.destroy());
    assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.rejectedCookie, 'unknown');
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!.handle, handle, 'the session by its handle');
    assert.ok(ended[0]!.idHandle !== undefined && ended[0]!.idHandle !== handle, 'and the ID it ended under');
    assert.deepEqual(reused.map((m) => m.handle), [ended[0]!.idHandle]);
  });

  it('renewal when a renewed session signs in again or regenerates then it is a new session with a handle of its own, and the old one is its previousHandle', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    r.clock.advance(61_000);
    const renewed = await trip(r.tether, first.cookie, () => {}, 'GET');
    const handle = renewed.session.handle!;
    const messages: Array<{ handle: string; previousHandle?: string }> = [];
    r.tether.events.on('regenerated', (m: { handle: string; previousHandle?: string }) => void messages.push(m));
    const again = await trip(r.tether, renewed.cookie, (s) => s.login('u1'));
    assert.notEqual(again.session.handle, handle);
    assert.deepEqual(messages.map((m) => [m.handle, m.previousHandle]), [[again.session.handle, handle]]);
    assert.deepEqual((await r.tether.listUserSessions('u1')).map((x) => x.id), [again.session.handle]);
    const stored = JSON.parse((await r.memory.get(hashId(again.session.id!)))!.data) as { h?: string };
    assert.equal(stored.h, undefined, 'a new ID begins the session again: no handle is carried');
  });

  it('renewal when two requests race the renewal and the loser follows it then the session under the new ID keeps its handle', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const handle = (await r.tether.listUserSessions('u1'))[0]!.id;
    r.clock.advance(61_000);
    const a = await r.tether.open(get(first.cookie));
    const b = await r.tether.open(get(first.cookie));
    await a.update((d) => void (d.x = 1));
    await b.update((d) => void (d.y = 2));
    await r.tether.commit(a);
    const next = cookiePair(await r.tether.commit(b))!;
    assert.equal(b.handle, handle);
    const after = await trip(r.tether, next, (s) => assert.deepEqual([s.get('x'), s.get('y')], [1, 2]), 'GET');
    assert.equal(after.session.handle, handle);
    assert.deepEqual((await r.tether.listUserSessions('u1')).map((x) => x.id), [handle]);
  });

  it('renewal when a parallel request renews the session\u2019s ID after log out everywhere else has listed the user\u2019s sessions then the session stays under its new ID, and the others end', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const other = await trip(r.tether, undefined, (s) => s.login('u1'));
    r.clock.advance(61_000);
    const asking = await r.tether.open(post(first.cookie), { renew: false });
    // The deletions reach the store late: the renewal's two writes land after the listing, before them.
    r.store.fail('destroy', { delayMs: 30 }).fail('destroyByUser', { delayMs: 30 });
    const ending = r.tether.destroyUserSessions('u1', { except: asking });
    await sleep(5);
    const next = cookiePair((await trip(r.tether, first.cookie, () => {}, 'GET')).setCookies)!;
    assert.ok(next !== first.cookie, 'renewed meanwhile');
    assert.equal(await ending, 1, 'only the other device');
    r.store.heal();
    await r.tether.commit(asking);
    assert.equal((await trip(r.tether, next, () => {}, 'GET')).session.userId, 'u1', 'still signed in under the new ID');
    assert.equal((await trip(r.tether, other.cookie, () => {}, 'GET')).session.userId, null);
    assert.equal((await r.tether.listUserSessions('u1')).length, 1);
  });

  it('renewal when a session is between the two writes of its renewal while its user is logged out everywhere then it ends under both IDs and is counted once', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const other = await trip(r.tether, undefined, (s) => s.login('u1'));
    r.clock.advance(61_000);
    const { atPointer, release } = holdAtPointer(r.store);
    const renewing = trip(r.tether, first.cookie, () => {}, 'GET').catch((err: unknown) => err);
    await atPointer;
    assert.equal((await r.memory.listByUser('u1')).length, 3, 'the session under two IDs, and the other device');
    assert.equal(await r.tether.destroyUserSessions('u1'), 2, 'two sessions, each counted once');
    release();
    const renewed = await renewing;
    const next = renewed instanceof Error ? undefined : cookiePair((renewed as { setCookies: string[] }).setCookies);
    for (const cookie of [first.cookie, other.cookie, ...(next ? [next] : [])]) {
      assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
    }
    assert.deepEqual(await r.memory.listByUser('u1'), []);
    assert.equal(await r.memory.count(), 0);
  });

  it('renewal when logins keep coming while log out everywhere lists the user\u2019s sessions then what the last listing missed goes at once, a session there past its timeout (expiryGraceMs) not counted', async () => {
    const r = rig({ renewal: RENEWAL });
    await signedIn(r);
    const m = r.memory;
    const idle = r.tether.options.idleTimeoutMs;
    const plant = async (timedOut: boolean): Promise<void> => {
      const now = r.clock.now();
      // Timed out for the app 30 s ago, kept by the store for the 60 s of expiryGraceMs; or seen just now.
      const lastSeenAt = timedOut ? now - idle - 30_000 : now;
      assert.deepEqual(await m.set({ key: hashId(generateId()), data: '{"d":{}}', version: 1, userId: 'u1', createdAt: lastSeenAt, lastSeenAt,
        expiresAt: lastSeenAt + idle + r.tether.options.expiryGraceMs, absoluteExpiresAt: now + 3_600_000 }, 0), { ok: true });
    };
    let listings = 0;
    // After each listing, a login of the user, and a session of theirs that timed out: every listing holds
    // something new to end, until the engine stops listing and removes what is left in one call.
    const racing: SessionStore = {
      name: 'racing', get: (k) => m.get(k), set: (rec, v) => m.set(rec, v), touch: (k, e, l, v) => m.touch(k, e, l, v), destroy: (k) => m.destroy(k),
      destroyByUser: (u, o) => m.destroyByUser(u, o), close: async () => {},
      listByUser: async (u) => {
        const listed = await m.listByUser(u);
        listings++;
        await plant(false);
        await plant(true);
        return listed;
      },
    };
    const tether = new Tether({ secrets: [SECRET_A], clock: r.clock, store: racing, renewal: RENEWAL });
    const ended = await tether.destroyUserSessions('u1');
    assert.ok(listings > 1);
    assert.equal(ended, 1 + listings, 'the first session and one login per listing, none of those that timed out');
    assert.deepEqual(await m.listByUser('u1'), [], 'every record removed, counted or not');
    assert.equal(tether.stats().destroyed, ended);
  });

  it('renewal when a device renews its ID while log out everywhere runs then it ends under its new ID too, counted once', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const other = await trip(r.tether, undefined, (s) => s.login('u1'));
    r.clock.advance(61_000);
    r.store.fail('destroy', { delayMs: 30 });
    const ending = r.tether.destroyUserSessions('u1');
    await sleep(5);
    // The device renews its ID after the listing.
    const renewedOther = cookiePair((await trip(r.tether, other.cookie, () => {}, 'GET')).setCookies)!;
    assert.ok(renewedOther !== other.cookie, 'renewed meanwhile');
    assert.equal(await ending, 2);
    r.store.heal();
    for (const cookie of [renewedOther, other.cookie, first.cookie]) {
      assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
    }
    assert.equal(await r.memory.count(), 0);
  });

  it('renewal when another device renews its ID while log out everywhere else runs then it ends under its new ID too', async () => {
    const r = rig({ renewal: RENEWAL });
    const first = await signedIn(r);
    const other = await signedIn(r);
    r.clock.advance(61_000);
    const asking = await r.tether.open(post(first.cookie), { renew: false });
    r.store.fail('destroy', { delayMs: 30 });
    const ending = r.tether.destroyUserSessions('u1', { except: asking });
    await sleep(5);
    // The other device renews its ID after the listing.
    const renewedOther = cookiePair((await trip(r.tether, other.cookie, () => {}, 'GET')).setCookies)!;
    assert.ok(renewedOther !== other.cookie, 'renewed meanwhile');
    assert.equal(await ending, 1);
    r.store.heal();
    r.tether.abandon(asking);
    for (const cookie of [renewedOther, other.cookie]) {
      assert.equal((await trip(r.tether, cookie, () => {}, 'GET')).session.userId, null, 'signed out');
    }
    assert.equal((await trip(r.tether, first.cookie, () => {}, 'GET')).session.userId, 'u1');
  });

  it('renewal options when the grace is over a minute, not under the interval, or the interval is missing then OPTIONS_INVALID', () => {
    const make = (renewal: unknown) => new Tether({ secrets: [SECRET_A], renewal: renewal as never });
    assert.throws(() => make({ intervalMs: 600_000, graceMs: 60_001 }), { code: 'OPTIONS_INVALID', message: /graceMs/ });
    assert.throws(() => make({ intervalMs: 10_000, graceMs: 10_000 }), { code: 'OPTIONS_INVALID', message: /shorter than renewal.intervalMs/ });
    assert.throws(() => make({ graceMs: 1_000 }), { code: 'OPTIONS_INVALID', message: /intervalMs/ });
    assert.throws(() => make('15m'), { code: 'OPTIONS_INVALID' });
    assert.deepEqual(make({ intervalMs: 900_000 }).options.renewal, { intervalMs: 900_000, graceMs: 30_000 });
    assert.deepEqual(make({ intervalMs: 20_000 }).options.renewal, { intervalMs: 20_000, graceMs: 10_000 });
    assert.equal(make(false).options.renewal, null);
  });
});
