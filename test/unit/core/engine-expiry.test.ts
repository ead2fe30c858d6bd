/** Idle (rolling) and absolute timeouts, decided on load by the injected clock; throttled expiry touches. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashId } from '../../../src/core/ids.js';
import { rig, trip, view } from '../support.js';

const MIN = 60_000;

describe('engine expiry', () => {
  it('session when idle for just under the idle timeout then loads, and when idle just over it then is rejected and deleted', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN });
    const expired: unknown[] = [];
    r.tether.events.on('expired', (m) => expired.push(m));
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(10 * MIN - 1);
    await trip(r.tether, a.cookie, (s) => assert.equal(s.get('n'), 1), 'GET');
    // Rolling: that read moved the idle deadline.
    r.clock.advance(10 * MIN - 1);
    await trip(r.tether, a.cookie, (s) => assert.equal(s.get('n'), 1), 'GET');
    r.clock.advance(10 * MIN + 1);
    const late = await trip(r.tether, a.cookie, (s) => {
      assert.equal(s.isNew, true);
      assert.equal(s.get('n'), undefined);
    }, 'GET');
    assert.equal(late.cookie, '', 'the dead cookie is cleared');
    assert.equal(await r.memory.get(hashId(a.session.id!)), null);
    assert.equal(expired.length, 1);
    // The same cookie stays dead.
    await trip(r.tether, a.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('session when several requests present it at once past its timeout, or from another browser under userAgentChange end, then it is ended and reported once', async () => {
    for (const [options, event, ua] of [[{ idleTimeoutMs: MIN }, 'expired', 'A'], [{ userAgentChange: 'end' as const }, 'destroyed', 'B']] as const) {
      const r = rig(options);
      const heard: unknown[] = [];
      r.tether.events.on(event, (m) => heard.push(m));
      const { cookie } = await trip(r.tether, undefined, (s) => s.set('n', 1), 'POST', { 'user-agent': 'A' });
      r.clock.advance(MIN + 1_000);
      const setsBefore = r.store.calls.set;
      const headers = { cookie: cookie!, 'user-agent': ua };
      const sessions = await Promise.all([1, 2, 3].map(() => r.tether.open({ method: 'GET', header: (n: string) => headers[n as keyof typeof headers] })));
      for (const s of sessions) {
        assert.equal(s.isNew, true, event);
        await r.tether.commit(s);
      }
      assert.equal(heard.length, 1, `one ${event} event`);
      assert.equal(r.tether.stats()[event], 1);
      // A timeout ends the record by one compare-and-set over it (ENDED), an anomaly by one destroy.
      assert.deepEqual([r.store.calls.set - setsBefore, r.store.calls.destroy], event === 'expired' ? [1, 0] : [0, 1], 'one ending write');
    }
  });

  it('session when its record still lives in the store but the engine clock says idle then it is rejected anyway', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, expiryGraceMs: 60 * MIN });
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(10 * MIN);
    assert.ok(await r.memory.get(hashId(a.session.id!)), 'the store alone would still serve it');
    await trip(r.tether, a.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('session when active every few minutes then still ends at the absolute timeout', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, absoluteTimeoutMs: 60 * MIN });
    const a = await trip(r.tether, undefined, (s) => s.set('n', 0));
    let cookie = a.cookie;
    for (let t = 5; t < 60; t += 5) {
      r.clock.advance(5 * MIN);
      const step = await trip(r.tether, cookie, async (s) => {
        assert.equal(s.isNew, false, `alive at ${t} min`);
        await s.update((d) => void (d.n = Number(d.n) + 1));
      });
      cookie = step.cookie;
    }
    r.clock.advance(5 * MIN - 1);
    await trip(r.tether, cookie, (s) => assert.equal(s.isNew, false, 'alive just before the absolute deadline'), 'GET');
    r.clock.advance(2);
    const end = await trip(r.tether, cookie, (s) => assert.equal(s.isNew, true, 'dead at the absolute deadline despite activity'), 'GET');
    assert.equal(end.cookie, '');
  });

  it('regenerate when called mid-life then the session keeps its age and ends at the first absolute deadline; a login starts it again', async () => {
    const r = rig({ idleTimeoutMs: 40 * MIN, absoluteTimeoutMs: 60 * MIN });
    const start = r.clock.now();
    const a = await trip(r.tether, undefined, (s) => s.login('ada'));
    r.clock.advance(30 * MIN);
    const renewed = await trip(r.tether, a.cookie, (s) => s.regenerate());
    assert.notEqual(renewed.cookie, a.cookie, 'a new ID');
    const [listed] = await r.tether.listUserSessions('ada');
    assert.equal(listed!.createdAt, start, 'listed with the age it had');
    r.clock.advance(30 * MIN - 1);
    await trip(r.tether, renewed.cookie, (s) => assert.equal(s.userId, 'ada', 'alive just before the first deadline'), 'GET');
    r.clock.advance(1);
    await trip(r.tether, renewed.cookie, (s) => assert.equal(s.isNew, true, 'ended 60 min after its creation, not after the regeneration'), 'GET');

    const b = await trip(r.tether, undefined, (s) => s.set('cart', ['mug']));
    r.clock.advance(30 * MIN);
    const signedIn = await trip(r.tether, b.cookie, (s) => s.login('ada'));
    r.clock.advance(30 * MIN);
    await trip(r.tether, signedIn.cookie, (s) => assert.equal(s.userId, 'ada'), 'GET');
    r.clock.advance(29 * MIN);
    await trip(r.tether, signedIn.cookie, (s) => assert.deepEqual([s.userId, s.get('cart')], ['ada', ['mug']], 'a login starts the lifetime again'));
    r.clock.advance(MIN);
    await trip(r.tether, signedIn.cookie, (s) => assert.equal(s.isNew, true), 'GET');
  });

  it('a touch when another request changed or ended the session meanwhile then it refreshes nothing, and is not counted as a refresh', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(2 * MIN);
    const reader = await r.tether.open(view('GET', { cookie: a.cookie! }));
    await trip(r.tether, a.cookie, (s) => s.set('n', 2));
    const before = r.tether.stats().touches;
    await r.tether.commit(reader);
    assert.equal(r.store.calls.touch, 1, 'the reader asked for its touch');
    assert.equal(r.tether.stats().touches, before, 'the store refreshed nothing: the version had moved on');
  });

  it('read-only traffic when within touchIntervalMs then writes nothing, and after it then touches exactly once', async () => {
    const r = rig({ idleTimeoutMs: 30 * MIN });
    assert.equal(r.tether.options.touchIntervalMs, MIN, 'default: min(60 s, idle / 10)');
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.store.resetCounts();
    for (let i = 0; i < 5; i++) {
      r.clock.advance(10_000);
      const t = await trip(r.tether, a.cookie, () => {}, 'GET');
      assert.deepEqual(t.setCookies, []);
    }
    assert.equal(r.store.writes, 0, 'no write within the touch interval');
    r.clock.advance(10_001);
    await trip(r.tether, a.cookie, () => {}, 'GET');
    assert.equal(r.store.calls.touch, 1);
    for (let i = 0; i < 5; i++) {
      r.clock.advance(1_000);
      await trip(r.tether, a.cookie, () => {}, 'GET');
    }
    assert.equal(r.store.writes, 1, 'the touch restarted the interval');
    const rec = await r.memory.get(hashId(a.session.id!));
    assert.equal(rec?.version, 1, 'a touch does not rewrite the data');
  });

  it('session.touch when called then refreshes expiry before the interval is due', async () => {
    const r = rig();
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.store.resetCounts();
    await trip(r.tether, a.cookie, (s) => s.touch(), 'GET');
    assert.equal(r.store.calls.touch, 1);
  });

  it('session.expiresAt and absoluteExpiresAt when read before and after each commit then give the deadlines the engine ends the session at', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, absoluteTimeoutMs: 60 * MIN, touchIntervalMs: MIN, expiryGraceMs: 5 * MIN });
    const t0 = r.clock.now();
    const a = await trip(r.tether, undefined, (s) => {
      assert.deepEqual([s.expiresAt, s.absoluteExpiresAt], [null, null], 'not stored yet');
      s.set('n', 1);
    });
    assert.equal(a.session.expiresAt, t0 + 10 * MIN, 'the idle deadline, without the store’s grace');
    assert.equal(a.session.absoluteExpiresAt, t0 + 60 * MIN);

    // Within the touch interval a read writes nothing, and the deadline stands.
    r.clock.advance(30_000);
    const b = await trip(r.tether, a.cookie, (s) => assert.equal(s.expiresAt, t0 + 10 * MIN), 'GET');
    assert.equal(b.session.expiresAt, t0 + 10 * MIN);
    // Past it, the read touches: before its commit the deadline is the stored one, after it a whole idle timeout from now.
    r.clock.advance(2 * MIN);
    const t1 = r.clock.now();
    const c = await trip(r.tether, a.cookie, (s) => assert.equal(s.expiresAt, t0 + 10 * MIN), 'GET');
    assert.deepEqual([c.session.expiresAt, c.session.lastSeenAt, c.session.absoluteExpiresAt], [t1 + 10 * MIN, t1, t0 + 60 * MIN]);
    // Near the end of its life the absolute deadline comes first.
    r.clock.advance(7.5 * MIN);
    const writes = async (): Promise<number | null> => (await trip(r.tether, a.cookie, (s) => s.set('n', Number(s.get('n')) + 1))).session.expiresAt;
    for (let t = 10; t < 55; t += 9) {
      assert.equal(await writes(), r.clock.now() + 10 * MIN, `at ${t} min`);
      r.clock.advance(9 * MIN);
    }
    assert.equal(r.clock.now(), t0 + 55 * MIN);
    assert.equal(await writes(), t0 + 60 * MIN, 'the absolute deadline');
    // And the session ends there: alive a millisecond before, gone at it.
    r.clock.advance(5 * MIN - 1);
    await trip(r.tether, a.cookie, (s) => assert.equal(s.isNew, false), 'GET');
    r.clock.advance(1);
    await trip(r.tether, a.cookie, (s) => assert.deepEqual([s.isNew, s.expiresAt], [true, null]), 'GET');
  });

  it('session.expiresAt when the session is remembered or destroyed then follows: the longer timeouts, then null', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, absoluteTimeoutMs: 60 * MIN, remember: { idleTimeoutMs: 24 * 60 * MIN, absoluteTimeoutMs: 7 * 24 * 60 * MIN } });
    const t0 = r.clock.now();
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(MIN);
    const kept = await trip(r.tether, a.cookie, (s) => s.remember());
    assert.equal(kept.session.expiresAt, t0 + MIN + 24 * 60 * MIN);
    assert.equal(kept.session.absoluteExpiresAt, t0 + 7 * 24 * 60 * MIN, 'counted from the session’s creation');
    // Idle past the plain timeout, within the remembered one: alive, with the same deadlines as stored.
    r.clock.advance(12 * 60 * MIN);
    await trip(r.tether, a.cookie, (s) => {
      assert.equal(s.isNew, false);
      assert.equal(s.expiresAt, t0 + MIN + 24 * 60 * MIN);
    }, 'GET');
    const out = await trip(r.tether, a.cookie, (s) => s.destroy());
    assert.deepEqual([out.session.expiresAt, out.session.absoluteExpiresAt], [null, null]);
  });

  it('session.touch(false) when a request past the touch interval is not the user’s activity then it moves no deadline, and the session times out as if it had not come', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, touchIntervalMs: MIN });
    const t0 = r.clock.now();
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(9 * MIN);
    const touches = r.tether.stats().touches;
    const poll = await trip(r.tether, a.cookie, (s) => {
      s.touch(false);
      assert.equal(s.get('n'), 1);
    }, 'GET');
    assert.equal(r.tether.stats().touches, touches, 'no touch stored');
    assert.equal(poll.session.expiresAt, t0 + 10 * MIN);
    assert.equal((await r.memory.get(hashId(a.session.id!)))?.lastSeenAt, t0);
    // A later touch() in the same request wins, as the last word does.
    const b = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(1.5 * MIN);
    const kept = await trip(r.tether, b.cookie, (s) => {
      s.touch(false);
      s.touch();
    }, 'GET');
    assert.equal(kept.session.expiresAt, r.clock.now() + 10 * MIN);
    assert.throws(() => kept.session.touch('no' as unknown as boolean), TypeError);
    // The first session has ended at its deadline (half a minute ago): the poll did not count.
    const late = await trip(r.tether, a.cookie, (s) => assert.equal(s.isNew, true), 'GET');
    assert.equal(late.cookie, '');
  });

  it('session.touch(false) when the request changes the data then the change is stored with new deadlines, as every write', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, touchIntervalMs: MIN });
    const a = await trip(r.tether, undefined, (s) => s.set('n', 1));
    r.clock.advance(5 * MIN);
    const w = await trip(r.tether, a.cookie, (s) => {
      s.touch(false);
      s.set('n', 2);
    });
    assert.equal(w.session.expiresAt, r.clock.now() + 10 * MIN);
    r.clock.advance(9 * MIN);
    await trip(r.tether, a.cookie, (s) => assert.deepEqual([s.isNew, s.get('n')], [false, 2]), 'GET');
  });

  it('listUserSessions when listing then each session’s expiresAt is the one its own requests see', async () => {
    const r = rig({ idleTimeoutMs: 10 * MIN, touchIntervalMs: MIN, remember: { idleTimeoutMs: 24 * 60 * MIN, absoluteTimeoutMs: 7 * 24 * 60 * MIN } });
    const plain = await trip(r.tether, undefined, (s) => s.login('u1'));
    const kept = await trip(r.tether, undefined, (s) => {
      s.login('u1');
      s.remember();
    });
    r.clock.advance(3 * MIN);
    const touched = await trip(r.tether, plain.cookie, () => {}, 'GET');
    const listed = await r.tether.listUserSessions('u1');
    const byHandle = new Map(listed.map((x) => [x.id, x.expiresAt]));
    assert.equal(byHandle.get(touched.session.handle!), touched.session.expiresAt);
    assert.equal(byHandle.get(kept.session.handle!), kept.session.expiresAt);
    assert.equal(touched.session.expiresAt, r.clock.now() + 10 * MIN);
  });
});
