/**
 * tether.openSocket(): a WebSocket handshake's origin checked, its session read, kept alive by the
 * socket's activity, changed through the gate, and watched for its end in this process and others.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SECRET_A, rig, sleep, trip, view } from '../support.js';
import type { Rig } from '../support.js';
import type { SocketEndReason, SocketSession } from '../../../src/core/socket.js';
import { Tether } from '../../../src/core/engine.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { GatedStore } from '../../fixtures/gated-store.js';
import { FaultyStore } from '../../../src/testing/faulty-store.js';

type Data = { n: number; name: string };
const MIN = 60_000;
const HOST = { host: 'app.test', origin: 'http://app.test' };

/** A handshake from the app's own page, with `cookie`. */
function handshake(cookie: string | undefined, headers: Record<string, string> = {}) {
  return view('GET', { ...HOST, 'user-agent': 'UA', ...(cookie ? { cookie } : {}), ...headers });
}

/** A stored session of `user` (null: anonymous) holding `{ n: 1 }`, and its cookie. */
async function signedIn(r: Rig<Data>, user: string | null = 'ada'): Promise<string> {
  const t = await trip(r.tether, undefined, (s) => {
    s.set('n', 1);
    if (user !== null) s.login(user);
  }, 'POST', { 'user-agent': 'UA', ...HOST });
  return t.cookie!;
}

/** Records the reasons a socket's onEnd callbacks are given. */
function ends(socket: SocketSession<Data>): SocketEndReason[] {
  const seen: SocketEndReason[] = [];
  socket.onEnd((reason) => void seen.push(reason));
  return seen;
}

describe('tether.openSocket', () => {
  it('openSocket when the handshake comes from another origin, another site or a bad Origin then ORIGIN_MISMATCH; from its own, or without Origin, it opens', async () => {
    const r = rig<Data>();
    const cookie = await signedIn(r);
    for (const headers of [
      { origin: 'http://evil.test' } as Record<string, string>,
      { origin: 'http://app.test.evil.test' },
      { origin: 'null' },
      { origin: 'https://app.test:8443' },
      { 'sec-fetch-site': 'cross-site' },
    ]) {
      await assert.rejects(r.tether.openSocket(handshake(cookie, headers)), { code: 'ORIGIN_MISMATCH', status: 403 }, JSON.stringify(headers));
    }
    const own = await r.tether.openSocket(handshake(cookie));
    assert.equal(own.userId, 'ada');
    const noOrigin = await r.tether.openSocket(view('GET', { host: 'app.test', 'user-agent': 'UA', cookie }));
    assert.equal(noOrigin.userId, 'ada', 'a client that is no browser sends no Origin, and no cookie of a browser');
    own.close();
    noOrigin.close();
    assert.equal(r.tether.stats().sockets, 0);

    const strict = rig<Data>({ csrf: { origins: ['https://shop.test'], requireOrigin: true } });
    const c2 = await trip(strict.tether, undefined, (s) => s.login('bo'), 'POST', { 'user-agent': 'UA', origin: 'https://shop.test' });
    await assert.rejects(strict.tether.openSocket(view('GET', { host: 'shop.test', cookie: c2.cookie! })), { code: 'ORIGIN_MISMATCH', message: /must carry Origin/ });
    await assert.rejects(strict.tether.openSocket(handshake(c2.cookie, { host: 'shop.test', origin: 'http://shop.test' })), { code: 'ORIGIN_MISMATCH' });
    const listed = await strict.tether.openSocket(handshake(c2.cookie, { origin: 'https://shop.test' }));
    assert.equal(listed.userId, 'bo');
    listed.close();

    // Without CSRF checks for requests, a handshake is still held to the Host's origin.
    const off = rig<Data>({ csrf: false });
    await assert.rejects(off.tether.openSocket(handshake(undefined, { origin: 'http://evil.test' })), { code: 'ORIGIN_MISMATCH' });
  });

  it('openSocket when the handshake carries no session then it is new, watches nothing and refuses update', async () => {
    const r = rig<Data>();
    const none = await r.tether.openSocket(handshake(undefined));
    assert.equal(none.isNew, true);
    assert.equal(none.userId, null);
    assert.equal(none.handle, null);
    assert.equal(await none.touch(), false);
    assert.equal(await none.refresh(), false);
    await assert.rejects(none.update((d) => void (d.n = 2)), { code: 'SESSION_ENDED' });
    assert.equal(none.rejectedCookie, null);
    const forged = await r.tether.openSocket(handshake('sid=' + 'A'.repeat(43) + '.' + 'B'.repeat(43)));
    assert.equal(forged.rejectedCookie, 'forged', 'counted per client by the app, as for requests');
    assert.equal(forged.isNew, true);
    assert.ok(forged.cookies.some((c) => c.startsWith('sid=;')), 'the handshake\'s answer may expire the forged cookie');
    assert.equal(r.tether.stats().sockets, 0);
    assert.equal(r.store.writes, 0, 'a handshake stores no session');
  });

  it('openSocket when the socket is used then touch() reads the store at most once per touchIntervalMs and keeps the session alive past its idle timeout', async () => {
    const r = rig<Data>({ idleTimeoutMs: 30 * MIN, touchIntervalMs: MIN });
    const cookie = await signedIn(r);
    const socket = await r.tether.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    assert.deepEqual({ ...socket.data }, { n: 1 });
    assert.equal(socket.get('n'), 1);
    const seen = ends(socket);
    r.store.resetCounts();
    for (let i = 0; i < 5; i++) assert.equal(await socket.touch(), true);
    assert.equal(r.store.calls.get, 0, 'within the interval, touch() answers from what it knows');
    // A message every 10 minutes for two hours: the session outlives its 30-minute idle timeout.
    for (let minutes = 0; minutes < 120; minutes += 10) {
      r.clock.advance(10 * MIN);
      assert.equal(await socket.touch(), true, `after ${minutes + 10} min`);
    }
    assert.equal(r.store.calls.get, 12, 'one read per touch() past the interval');
    assert.ok(r.store.calls.touch >= 12, 'each due touch moved the idle deadline');
    assert.deepEqual(seen, []);
    assert.equal((await trip(r.tether, cookie, () => {}, 'GET', { 'user-agent': 'UA' })).session.userId, 'ada', 'the browser is still signed in');
    socket.close();
  });

  it('openSocket when the socket is idle past the idle timeout then refresh() finds the session expired and onEnd says so', async () => {
    const r = rig<Data>({ idleTimeoutMs: 30 * MIN });
    const socket = await r.tether.openSocket(handshake(await signedIn(r)), { checkIntervalMs: 0 });
    const seen = ends(socket);
    // Past the timeout, within expiryGraceMs: the store still holds the record, and the engine ends it.
    r.clock.advance(30 * MIN + 1_000);
    assert.equal(await socket.refresh(), false);
    assert.deepEqual(seen, ['expired']);
    assert.equal(socket.ended, 'expired');
    assert.equal(await socket.touch(), false);
  });

  it('openSocket when this process logs the session out, logs it in again or ends the user\'s sessions then the sockets of those sessions end at once, and no others', async () => {
    const r = rig<Data>();
    const [a, b, c, d] = [await signedIn(r), await signedIn(r), await signedIn(r, 'bo'), await signedIn(r)];
    const open = async (cookie: string) => r.tether.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const sa = await open(a);
    const sa2 = await open(a);
    const sb = await open(b);
    const sc = await open(c);
    const sd = await open(d);
    const [ea, ea2, eb, ec, ed] = [sa, sa2, sb, sc, sd].map(ends);
    assert.equal(r.tether.stats().sockets, 5);

    await trip(r.tether, a, (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
    assert.deepEqual([ea, ea2], [['destroyed'], ['destroyed']], 'both sockets of the session');
    assert.equal(sa.userId, 'ada', 'the last owner is still known');

    await trip(r.tether, b, (s) => s.login('ada'), 'POST', { 'user-agent': 'UA', ...HOST });
    assert.deepEqual(eb, ['regenerated'], 'the browser now holds another cookie');

    const dSession = (await trip(r.tether, d, () => {}, 'GET', { 'user-agent': 'UA' })).session;
    const third = await signedIn(r);
    const s3 = await open(third);
    const e3 = ends(s3);
    // Ada's: the third, d (kept) and the one b's login made.
    assert.equal(await r.tether.destroyUserSessions('ada', { except: dSession }), 2);
    assert.deepEqual(e3, ['destroyed']);
    assert.deepEqual(ed, [], 'the session kept by except');
    assert.deepEqual(ec, [], 'another user');
    assert.equal(r.tether.stats().sockets, 2);
    assert.deepEqual(r.tether.stats().socketEnds, { destroyed: 3, expired: 0, regenerated: 1, gone: 0 });
    sc.close();
    sd.close();
    assert.equal(r.tether.stats().sockets, 0);
    assert.deepEqual(r.tether.stats().socketEnds, { destroyed: 3, expired: 0, regenerated: 1, gone: 0 }, 'closed ones are not ends');
  });

  it('openSocket when every session is ended in this process then every socket ends at once; in another, at its next read', async () => {
    const a = rig<Data>();
    const b = rig<Data>({}, a);
    const cookies = [await signedIn(a), await signedIn(a, 'bo'), await signedIn(a, null)];
    const here = await Promise.all(cookies.map((c) => a.tether.openSocket(handshake(c), { checkIntervalMs: 0 })));
    const there = await Promise.all(cookies.map((c) => b.tether.openSocket(handshake(c), { checkIntervalMs: 0 })));
    const [eh, et] = [here.map(ends), there.map(ends)];
    assert.equal(await a.tether.destroyAllSessions(), 3);
    assert.deepEqual(eh, [['destroyed'], ['destroyed'], ['destroyed']]);
    assert.deepEqual(et, [[], [], []], 'another process learns of it at its next read');
    assert.deepEqual(await Promise.all(there.map((s) => s.refresh())), [false, false, false]);
    assert.deepEqual(et, [['gone'], ['gone'], ['gone']]);
    assert.equal(a.tether.stats().socketEnds.destroyed, 3);
  });

  it('openSocket when another process logs the session out then refresh() finds it gone, and the check timer finds it without a call', async () => {
    const a = rig<Data>();
    const b = rig<Data>({}, a);
    const cookie = await signedIn(a);
    const polled = await a.tether.openSocket(handshake(cookie), { checkIntervalMs: 15 });
    const asked = await a.tether.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const [ep, ea] = [ends(polled), ends(asked)];
    await trip(b.tether, cookie, (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
    assert.deepEqual(ea, [], 'this process did not see the logout');
    assert.equal(await asked.refresh(), false);
    assert.deepEqual(ea, ['gone']);
    for (let i = 0; i < 200 && ep.length === 0; i++) await sleep(5);
    assert.deepEqual(ep, ['gone'], 'the timer read it again');
    assert.equal(a.tether.stats().sockets, 0);
  });

  it('openSocket when the store fails then refresh() rejects STORE_UNAVAILABLE, the session is not taken for ended, and a later refresh succeeds', async () => {
    const r = rig<Data>({ storeTimeoutMs: 50 });
    const socket = await r.tether.openSocket(handshake(await signedIn(r)), { checkIntervalMs: 0 });
    const seen = ends(socket);
    r.store.fail('get', 'reject');
    await assert.rejects(socket.refresh(), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(socket.update((d) => void (d.n = 5)), { code: 'STORE_UNAVAILABLE' });
    assert.equal(socket.ended, null);
    r.store.heal();
    assert.equal(await socket.refresh(), true);
    assert.deepEqual(seen, []);
    assert.equal(r.tether.stats().gateHolding, 0, 'the failed update gave the gate back');
    socket.close();
  });

  it('openSocket update when socket messages and requests change the session at once then nothing is lost; a failing function stores nothing; after the end SESSION_ENDED', async () => {
    const r = rig<Data>();
    const cookie = await signedIn(r);
    const socket = await r.tether.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const bump = (d: Partial<Data>) => void (d.n = (d.n ?? 0) + 1);
    await Promise.all(Array.from({ length: 20 }, (_, i) => i % 2 === 0
      ? socket.update(async (d) => {
        const n = d.n ?? 0;
        await sleep(1);
        d.n = n + 1;
      })
      : trip(r.tether, cookie, (s) => s.update(bump), 'POST', { 'user-agent': 'UA', ...HOST })));
    assert.equal((await trip(r.tether, cookie, () => {}, 'GET', { 'user-agent': 'UA' })).session.get('n'), 21);
    const last = socket.get('n')!;
    assert.ok(last >= 2 && last <= 21, 'the socket holds what its last update stored');
    assert.equal(await socket.refresh(), true);
    assert.equal(socket.get('n'), 21, 'and reads the rest again on refresh()');

    const writes = r.store.calls.set;
    await assert.rejects(socket.update(() => {
      throw new Error('refused');
    }), /refused/);
    assert.equal(r.store.calls.set, writes, 'nothing stored');
    assert.equal(r.tether.stats().gateHolding, 0);

    await trip(r.tether, cookie, (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
    await assert.rejects(socket.update(bump), { code: 'SESSION_ENDED' });
  });

  it('openSocket onEnd when a callback throws then the others run and the error is thrown again on the next tick; one registered after the end runs; close() silences them', async () => {
    const r = rig<Data>();
    const cookie = await signedIn(r);
    const socket = await r.tether.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const closed = await r.tether.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const silenced = ends(closed);
    closed.close();
    const boom = new Error('listener failed');
    const ran: string[] = [];
    socket.onEnd(() => {
      throw boom;
    });
    socket.onEnd((reason) => void ran.push(reason));
    assert.throws(() => socket.onEnd('x' as unknown as () => void), TypeError);
    const caught: unknown[] = [];
    const saved = process.rawListeners('uncaughtException') as Array<(err: unknown) => void>;
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', (err) => void caught.push(err));
    try {
      await trip(r.tether, cookie, (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
      assert.deepEqual(ran, ['destroyed']);
      await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
    }
    assert.deepEqual(caught, [boom]);
    const late: SocketEndReason[] = [];
    socket.onEnd((reason) => void late.push(reason));
    await Promise.resolve();
    assert.deepEqual(late, ['destroyed']);
    assert.deepEqual(silenced, [], 'a closed socket hears nothing');
  });

  it('openSocket with a store that has a change feed then the first socket that wants it subscribes the engine once, until close; endings here keep their own reason; an eviction ends the socket', async () => {
    const clock = new ManualClock();
    const store = new GatedStore(new MemoryStore({ clock, sweepIntervalMs: 0, maxBytes: 64 * 1024 }));
    const tether = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const r = { tether } as Rig<Data>;
    const [a, b, c] = [await signedIn(r), await signedIn(r), await signedIn(r)];
    const unfed = await tether.openSocket(handshake(a), { checkIntervalMs: 0, changeFeed: false });
    assert.equal(store.subscribers, 0, 'a socket that does not want the feed subscribes nothing');
    const sa = await tether.openSocket(handshake(a), { checkIntervalMs: 0 });
    const sb = await tether.openSocket(handshake(b), { checkIntervalMs: 0 });
    const sc = await tether.openSocket(handshake(c), { checkIntervalMs: 0 });
    assert.equal(store.subscribers, 1, 'one subscription for the engine');
    const [eu, ea, eb, ec] = [ends(unfed), ends(sa), ends(sb), ends(sc)];

    // Ended in this process: the engine tells its reason; the feed's report of the removal changes nothing.
    await trip(tether, a, (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
    await trip(tether, b, (s) => s.login('ada'), 'POST', { 'user-agent': 'UA', ...HOST });
    await sleep(20);
    assert.deepEqual([eu, ea, eb], [['destroyed'], ['destroyed'], ['regenerated']]);

    // A bounded store drops its oldest sessions when full: the socket of one it dropped reads it again and ends.
    for (let i = 0; i < 400 && ec.length === 0; i++) {
      await trip(tether, undefined, (s) => s.set('name', 'x'.repeat(200)), 'POST', { 'user-agent': 'UA', ...HOST });
      await sleep(0);
    }
    await sleep(20);
    assert.deepEqual(ec, ['gone']);
    assert.equal(store.subscribers, 1);
    await tether.close();
    assert.equal(store.subscribers, 0, 'the engine left the feed as it closed');
  });

  it('openSocket when its options are not options then OPTIONS_INVALID before any read', async () => {
    const r = rig<Data>();
    const cookie = await signedIn(r);
    r.store.resetCounts();
    for (const options of [{ checkIntervalMs: -1 }, { checkIntervalMs: Number.NaN }, { checkIntervalMs: 2 ** 31 }, { changeFeed: 'yes' }, { every: 5 }]) {
      await assert.rejects(r.tether.openSocket(handshake(cookie), options as never), { code: 'OPTIONS_INVALID' }, JSON.stringify(options));
    }
    assert.equal(r.store.calls.get, 0);
    assert.equal(r.tether.stats().sockets, 0);
  });

  it('openSocket when nothing happens on the socket then its checks and refresh() keep nothing alive: it ends expired at the idle timeout, on time without a check; touch() moves that', async () => {
    // The system clock: the timer at the session's deadline is a real one.
    const tether = new Tether<Data>({ secrets: [SECRET_A], store: new MemoryStore({ sweepIntervalMs: 0 }), idleTimeoutMs: 3_000, touchIntervalMs: 100 });
    const r = { tether } as Rig<Data>;
    // Before the sessions are made: neither can time out earlier than 3 s after this.
    const started = Date.now();
    const [quiet, active] = [await signedIn(r), await signedIn(r)];
    const checked = await tether.openSocket(handshake(quiet), { checkIntervalMs: 150, changeFeed: false });
    const used = await tether.openSocket(handshake(active), { checkIntervalMs: 0, changeFeed: false });
    const [ec, eu] = [ends(checked), ends(used)];
    const touchesBefore = tether.stats().touches;
    await sleep(1_000);
    assert.equal(await checked.refresh(), true);
    assert.equal(await used.touch(), true, 'activity at 1 s or later: the deadline moves to 4 s or later');
    assert.equal(tether.stats().touches, touchesBefore + 1, 'only touch() wrote; the checks and refresh() read');
    for (let i = 0; i < 600 && ec.length === 0; i++) await sleep(10);
    assert.deepEqual(ec, ['expired'], 'the checks did not keep it alive');
    assert.ok(Date.now() - started >= 2_900, `ended after ${Date.now() - started} ms, not before its timeout`);
    await sleep(Math.max(0, started + 3_600 - Date.now()));
    assert.deepEqual(eu, [], 'still alive at 3.6 s: touched at 1 s or later');
    for (let i = 0; i < 600 && eu.length === 0; i++) await sleep(10);
    assert.deepEqual(eu, ['expired'], 'its own timer read it at the moved deadline, with no check timer');
    assert.equal(tether.stats().sockets, 0);
    await tether.close();
  });

  it('openSocket when the change feed may have lost reports (onResync) then every socket it watches reads its session again, and the ended ones end', async () => {
    const clock = new ManualClock();
    const store = new GatedStore(new MemoryStore({ clock, sweepIntervalMs: 0 }));
    store.losing = true;
    const here = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const there = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const r = { tether: here } as Rig<Data>;
    const cookies = [await signedIn(r), await signedIn(r), await signedIn(r)];
    const sockets = await Promise.all(cookies.map((c) => here.openSocket(handshake(c), { checkIntervalMs: 0 })));
    const unfed = await here.openSocket(handshake(cookies[0]), { checkIntervalMs: 0, changeFeed: false });
    const seen = [...sockets, unfed].map(ends);
    await trip(there, cookies[0], (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
    await trip(there, cookies[1], (s) => s.destroy(), 'POST', { 'user-agent': 'UA', ...HOST });
    await sleep(50);
    assert.deepEqual(seen, [[], [], [], []], 'the feed lost the reports');
    store.resync();
    for (let i = 0; i < 100 && (seen[0]!.length === 0 || seen[1]!.length === 0); i++) await sleep(20);
    assert.deepEqual(seen, [['gone'], ['gone'], [], []], 'the live one stays; the one without the feed waits for its own read');
    assert.equal(here.stats().sockets, 2);
    await here.close();
  });

  it('openSocket when the feed reports an end while a read of the socket is under way, one that read the store before it, then a read after it finds the end', async () => {
    const clock = new ManualClock();
    const store = new GatedStore(new MemoryStore({ clock, sweepIntervalMs: 0 }));
    const here = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const there = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const cookie = await signedIn({ tether: here } as Rig<Data>);
    const socket = await here.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const seen = ends(socket);
    const read = store.hold();
    const reading = socket.refresh();
    await read;
    // Logged out everywhere in the other process (no read of the store, which holds the next one).
    assert.equal(await there.destroyUserSessions('ada'), 1);
    await sleep(10);
    store.release();
    assert.equal(await reading, true, 'the read under way found the session, as it was before the logout');
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(10);
    assert.deepEqual(seen, ['gone']);
    await here.close();
  });
  it('openSocket when the session ends while the handshake reads it (a logout here or in another process, log out everywhere, every session) then the socket ends once opened', async () => {
    for (const how of ['logout', 'elsewhere', 'user', 'all'] as const) {
      const clock = new ManualClock();
      const store = new GatedStore(new MemoryStore({ clock, sweepIntervalMs: 0 }));
      const here = new Tether<Data>({ secrets: [SECRET_A], clock, store });
      const there = new Tether<Data>({ secrets: [SECRET_A], clock, store });
      const cookie = await signedIn({ tether: here } as Rig<Data>);
      // The logout's request has read the session already: the store holds the next read.
      const request = await here.open(view('POST', { ...HOST, 'user-agent': 'UA', cookie }));
      const read = store.hold();
      const opening = here.openSocket(handshake(cookie), { checkIntervalMs: 0 });
      await read;
      // The handshake has read the session, live; it ends before the socket is registered.
      if (how === 'logout') {
        request.destroy();
        await here.commit(request);
      } else here.abandon(request);
      if (how === 'elsewhere') await there.destroyUserSessions('ada');
      else if (how === 'user') await here.destroyUserSessions('ada');
      else await here.destroyAllSessions();
      store.release();
      const socket = await opening;
      assert.equal(socket.userId, 'ada', how);
      const seen = ends(socket);
      for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(10);
      assert.deepEqual(seen, [how === 'elsewhere' ? 'gone' : 'destroyed'], how);
      assert.equal(here.stats().sockets, 0, how);
      await here.close();
      await there.close();
    }
  });

  it('openSocket when the socket closes while a read of it is under way, one that finds the session gone, then it is not counted as ended and its onEnd callbacks do not run', async () => {
    const clock = new ManualClock();
    const store = new GatedStore(new MemoryStore({ clock, sweepIntervalMs: 0 }));
    const here = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const there = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const cookie = await signedIn({ tether: here } as Rig<Data>);
    const socket = await here.openSocket(handshake(cookie), { checkIntervalMs: 0, changeFeed: false });
    const seen = ends(socket);
    assert.equal(await there.destroyUserSessions('ada'), 1);
    const read = store.hold();
    const reading = socket.refresh();
    await read;
    socket.close();
    store.release();
    assert.equal(await reading, false);
    assert.deepEqual(seen, []);
    assert.equal(socket.ended, null, 'a closed socket watches nothing');
    assert.deepEqual(here.stats().socketEnds, { destroyed: 0, expired: 0, regenerated: 0, gone: 0 }, 'closed ones are not ends');
    assert.equal(here.stats().sockets, 0);
    await here.close();
    await there.close();
  });

  it('openSocket when the store fails at the session\'s deadline then the socket reads it again until the store answers, and ends expired', async () => {
    // The system clock: the timer at the session's deadline is a real one.
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const store = new FaultyStore(memory);
    const tether = new Tether<Data>({ secrets: [SECRET_A], store, idleTimeoutMs: 2_000, storeTimeoutMs: 100 });
    const started = Date.now();
    const socket = await tether.openSocket(handshake(await signedIn({ tether } as Rig<Data>)), { checkIntervalMs: 0, changeFeed: false });
    const seen = ends(socket);
    await sleep(Math.max(0, started + 1_500 - Date.now()));
    store.fail('get', 'reject');
    await sleep(Math.max(0, started + 3_200 - Date.now()));
    assert.deepEqual(seen, [], 'the store could not say');
    store.heal();
    for (let i = 0; i < 300 && seen.length === 0; i++) await sleep(10);
    assert.deepEqual(seen, ['expired'], 'read again once the store answered');
    assert.equal(tether.stats().sockets, 0);
    await tether.close();
  });

  it('openSocket when another process whose clock trails writes the data then the socket does not read it; a login there with its clock ahead still ends it', async () => {
    const clock = new ManualClock();
    const store = new GatedStore(new MemoryStore({ clock, sweepIntervalMs: 0 }));
    const here = new Tether<Data>({ secrets: [SECRET_A], clock, store });
    const behind = new Tether<Data>({ secrets: [SECRET_A], clock: { now: () => clock.now() - 40 }, store });
    const ahead = new Tether<Data>({ secrets: [SECRET_A], clock: { now: () => clock.now() + 5_000 }, store });
    const cookie = await signedIn({ tether: here } as Rig<Data>);
    const socket = await here.openSocket(handshake(cookie), { checkIntervalMs: 0 });
    const seen = ends(socket);
    const reads = store.calls.get;
    clock.advance(10);
    await trip(behind, cookie, (s) => s.set('n', 2), 'POST', { 'user-agent': 'UA', ...HOST });
    await sleep(20);
    assert.equal(store.calls.get - reads, 1, 'only the write\'s own read: its deadline, 30 ms before the one the socket read, is a live one');
    assert.equal(socket.get('n'), 1);
    await trip(ahead, cookie, (s) => s.login('ada'), 'POST', { 'user-agent': 'UA', ...HOST });
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(10);
    assert.deepEqual(seen, ['gone'], 'the old ID\'s ending deadline is 5 s ahead of this clock, far before the latest live one');
    await here.close();
  });
});
