/** Lifecycle events, through `tether.events` and diagnostics_channel, in order and without secrets. */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { CHANNEL_NAMES } from '../../../src/observability/channels.js';
import type { LifecycleEvent, LifecycleMessage } from '../../../src/observability/channels.js';
import { hashId } from '../../../src/core/ids.js';
import { SECRET_A, rig, trip, view } from '../support.js';
import type { Rig } from '../support.js';
import { Tether } from '../../../src/core/engine.js';
import { SqliteStore } from '../../../src/stores/sqlite/index.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import { ManualClock } from '../../../src/testing/store-suite.js';
import { tempSqliteFile } from '../../helpers/sqlite.js';

const EVENTS = Object.keys(CHANNEL_NAMES) as LifecycleEvent[];
let unsubscribe: Array<() => void> = [];

/** Collects every lifecycle message from the diagnostics channels. */
function listenChannels(): LifecycleMessage[] {
  const seen: LifecycleMessage[] = [];
  for (const event of EVENTS) {
    const fn = (msg: unknown): void => void seen.push(msg as LifecycleMessage);
    diagnostics.subscribe(CHANNEL_NAMES[event], fn);
    unsubscribe.push(() => diagnostics.unsubscribe(CHANNEL_NAMES[event], fn));
  }
  return seen;
}

function listenEmitter(...rigs: Rig[]): LifecycleMessage[] {
  const seen: LifecycleMessage[] = [];
  for (const r of rigs) for (const event of EVENTS) r.tether.events.on(event, (m: LifecycleMessage) => seen.push(m));
  return seen;
}

afterEach(() => {
  for (const u of unsubscribe) u();
  unsubscribe = [];
});

describe('lifecycle events', () => {
  it('channels when named then follow tether:session:<event>', () => {
    assert.deepEqual(CHANNEL_NAMES, {
      created: 'tether:session:created', regenerated: 'tether:session:regenerated', destroyed: 'tether:session:destroyed',
      expired: 'tether:session:expired', conflict: 'tether:session:conflict', anomaly: 'tether:session:anomaly',
      reused: 'tether:session:reused',
    });
  });

  it('create, regenerate, conflict, destroy when they happen then both feeds report them in that order', async () => {
    const a = rig();
    const b = rig({}, a);
    const fromChannels = listenChannels();
    const fromEmitters = listenEmitter(a, b);
    const created = await trip(a.tether, undefined, (s) => s.set('n', 0));
    a.clock.advance(1_000);
    const loggedIn = await trip(a.tether, created.cookie, (s) => s.login('alice'));
    const sa = await a.tether.open(view('POST', { cookie: loggedIn.cookie! }));
    const sb = await b.tether.open(view('POST', { cookie: loggedIn.cookie! }));
    await sa.update((d) => void (d.n = Number(d.n) + 1));
    await sb.update((d) => void (d.n = Number(d.n) + 1));
    await a.tether.commit(sa);
    await b.tether.commit(sb);
    await trip(a.tether, loggedIn.cookie, (s) => s.destroy());

    for (const seen of [fromChannels, fromEmitters]) {
      assert.deepEqual(seen.map((m) => `${m.event}${m.reason ? ':' + m.reason : ''}`), ['created', 'regenerated', 'conflict:replayed', 'destroyed:logout']);
      const [c, r, x, d] = seen as [LifecycleMessage, LifecycleMessage, LifecycleMessage, LifecycleMessage];
      assert.equal(r.previousHandle, c.handle, 'regenerated names the session it replaced');
      assert.equal(x.handle, r.handle);
      assert.equal(d.handle, r.handle);
      assert.deepEqual(seen.map((m) => m.userId), [null, 'alice', 'alice', 'alice']);
      assert.equal(c.at + 1_000, r.at, 'times come from the injected clock');
    }
    const text = JSON.stringify(fromChannels);
    for (const secret of [created.session.id!, loggedIn.session.id!, hashId(created.session.id!), hashId(loggedIn.session.id!)]) {
      assert.equal(text.includes(secret), false, 'no id or store key in an event');
    }
  });

  it('reused when a signed cookie of an ended session is presented again then both feeds report it with the handle its ending had, and a forged cookie with nothing', async () => {
    const r = rig({ idleTimeoutMs: 60_000 });
    const fromChannels = listenChannels();
    const fromEmitters = listenEmitter(r);
    const first = await trip(r.tether, undefined, (s) => s.set('n', 1));
    const loggedIn = await trip(r.tether, first.cookie, (s) => s.login('alice'));
    await trip(r.tether, first.cookie, () => {}, 'GET');
    await trip(r.tether, loggedIn.cookie, (s) => s.destroy());
    await trip(r.tether, loggedIn.cookie, () => {}, 'GET');
    await trip(r.tether, `sid=${'a'.repeat(43)}.${'b'.repeat(43)}`, () => {}, 'GET');
    for (const seen of [fromChannels, fromEmitters]) {
      assert.deepEqual(seen.map((m) => `${m.event}${m.reason ? ':' + m.reason : ''}`), ['created', 'regenerated', 'reused', 'destroyed:logout', 'reused']);
      const [c, g, u1, d, u2] = seen as [LifecycleMessage, LifecycleMessage, LifecycleMessage, LifecycleMessage, LifecycleMessage];
      assert.equal(u1.handle, c.handle, 'the cookie a login replaced names the session the login ended');
      assert.equal(u1.handle, g.previousHandle);
      assert.equal(u2.handle, d.handle, 'the cookie of a logged-out session names it');
      assert.equal(u2.userId, null, 'the record is gone, and with it the owner');
    }
    const text = JSON.stringify(fromChannels);
    for (const secret of [first.session.id!, loggedIn.session.id!, hashId(first.session.id!), hashId(loggedIn.session.id!)]) {
      assert.equal(text.includes(secret), false, 'no id or store key in an event');
    }
  });

  it('conflict when a direct change cannot be replayed then is reported as rejected', async () => {
    const a = rig();
    const b = rig({}, a);
    const seen = listenEmitter(a, b);
    const { cookie } = await trip(a.tether, undefined, (s) => s.set('n', 0));
    const sa = await a.tether.open(view('POST', { cookie: cookie! }));
    const sb = await b.tether.open(view('POST', { cookie: cookie! }));
    sa.set('n', 1);
    sb.set('n', 2);
    await a.tether.commit(sa);
    await assert.rejects(b.tether.commit(sb), { code: 'SESSION_CONFLICT' });
    assert.deepEqual(seen.map((m) => `${m.event}${m.reason ? ':' + m.reason : ''}`), ['created', 'conflict:rejected']);
  });

  it('expiry when a dead session is presented then created is followed by expired, once, and presenting it again is a reuse', async () => {
    const r = rig({ idleTimeoutMs: 60_000 });
    const fromChannels = listenChannels();
    const fromEmitter = listenEmitter(r);
    const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 0));
    r.clock.advance(60_001);
    await trip(r.tether, cookie, () => {}, 'GET');
    await trip(r.tether, cookie, () => {}, 'GET');
    assert.deepEqual(fromChannels.map((m) => m.event), ['created', 'expired', 'reused']);
    assert.deepEqual(fromEmitter.map((m) => m.event), ['created', 'expired', 'reused']);
    assert.equal(fromChannels[0]!.handle, fromChannels[1]!.handle);
    assert.equal(fromChannels[2]!.handle, fromChannels[1]!.handle);
  });

  it('expiry when two processes are presented the dead session at once then it is reported once, by the one whose ending stored', async () => {
    const a = rig({ idleTimeoutMs: 60_000 });
    const b = rig({ idleTimeoutMs: 60_000 }, a);
    const fromEmitters = listenEmitter(a, b);
    const { cookie } = await trip(a.tether, undefined, (s) => s.set('n', 0));
    a.clock.advance(60_001);
    // Both read the record before either's ending reaches the store (a slow network to a shared one).
    a.store.fail('destroy', { delayMs: 30 }).fail('set', { delayMs: 30 });
    const [sa, sb] = await Promise.all([a.tether.open(view('GET', { cookie: cookie! })), b.tether.open(view('GET', { cookie: cookie! }))]);
    a.store.heal();
    assert.equal(sa.isNew, true);
    assert.equal(sb.isNew, true);
    assert.deepEqual(fromEmitters.map((m) => m.event), ['created', 'expired']);
    // Ended for both: presented again, it names no session in either.
    await trip(b.tether, cookie, () => {}, 'GET');
    assert.deepEqual(fromEmitters.map((m) => m.event), ['created', 'expired', 'reused']);
  });

  it('destroyed when ended by user management or the session limit then carries reason user or limit', async () => {
    const r = rig({ maxSessionsPerUser: 1 });
    const seen = listenEmitter(r);
    await trip(r.tether, undefined, (s) => s.login('bob'));
    // A later login (logins in the same millisecond are ordered by store key, not by arrival).
    r.clock.advance(1);
    await trip(r.tether, undefined, (s) => s.login('bob'));
    const [only] = await r.tether.listUserSessions('bob');
    assert.equal(await r.tether.destroyUserSession('bob', only!.id), true);
    await trip(r.tether, undefined, (s) => s.login('bob'));
    assert.equal(await r.tether.destroyUserSessions('bob'), 1);
    assert.deepEqual(seen.map((m) => `${m.event}${m.reason ? ':' + m.reason : ''}`),
      ['created', 'created', 'destroyed:limit', 'destroyed:user', 'created', 'destroyed:user']);
    assert.deepEqual(r.tether.stats().destroyed, 3);
  });

  it('expired when the store\'s sweep deletes sessions that timed out unseen then each is reported with reason swept, once, and counted', async () => {
    const file = await tempSqliteFile();
    const clock = new ManualClock();
    const store = new SqliteStore({ path: file.path, clock, sweepIntervalMs: 0 });
    const tether = new Tether({ secrets: [SECRET_A], clock, store, idleTimeoutMs: 60_000, expiryGraceMs: 1_000 });
    try {
      const fromChannels = listenChannels();
      const fromEmitter: LifecycleMessage[] = [];
      for (const event of EVENTS) tether.events.on(event, (m: LifecycleMessage) => fromEmitter.push(m));
      const anonymous = await trip(tether, undefined, (s) => s.set('n', 0));
      // The login ends the first record by writing it past its deadline: the sweep deletes it too, as no expiry.
      const first = await trip(tether, undefined, (s) => s.set('n', 1));
      await trip(tether, first.cookie, (s) => s.login('alice'));
      clock.advance(60_000 + 1_000 + 1);
      assert.equal(await store.sweep(), 3);
      const anonymousHandle = fromEmitter.find((m) => m.event === 'created')!.handle;
      const aliceHandle = fromEmitter.find((m) => m.event === 'regenerated')!.handle;
      for (const seen of [fromChannels, fromEmitter]) {
        const swept = seen.filter((m) => m.event === 'expired');
        assert.deepEqual(swept.map((m) => [m.reason, m.userId]).sort(), [['swept', 'alice'], ['swept', null]].sort());
        assert.deepEqual(new Set(swept.map((m) => m.handle)), new Set([anonymousHandle, aliceHandle]));
        assert.ok(swept.every((m) => m.at === clock.now()));
      }
      assert.equal(tether.stats().expired, 2);
      assert.equal(tether.stats().swept, 2);
      assert.equal(await store.sweep(), 0);
      assert.equal(tether.stats().expired, 2, 'reported once');
      // Presented afterwards, a swept session names none: nothing more to report.
      await trip(tether, anonymous.cookie, () => {}, 'GET');
      assert.equal(tether.stats().expired, 2);
    } finally {
      await tether.close();
      await file.remove();
    }
  });

  it('expired when a listener throws for swept sessions then the sweep goes on, the rest are reported, and one warning says so', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const tether = new Tether({ secrets: [SECRET_A], clock, store: memory, idleTimeoutMs: 60_000, expiryGraceMs: 0 });
    const warnings: Error[] = [];
    const onWarning = (w: Error & { code?: string }): void => {
      if (w.code === 'TETHER_SWEEP_LISTENER_THREW') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      let calls = 0;
      tether.events.on('expired', () => {
        calls++;
        throw new Error('listener failed');
      });
      for (let i = 0; i < 3; i++) await trip(tether, undefined, (s) => s.set('n', i));
      clock.advance(60_001);
      assert.equal(await memory.sweep(), 3);
      assert.equal(calls, 3, 'every swept session reached the listener');
      assert.equal(tether.stats().swept, 3);
      // process.emitWarning delivers on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /listener failed/);
    } finally {
      process.off('warning', onWarning);
      await tether.close();
    }
  });
});
