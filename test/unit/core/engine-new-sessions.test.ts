/** newSessions: limits on creating sessions, per client address and in total, and on the sessions the store holds (SECURITY.md S47). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FaultyStore, ManualClock, rig, sleep, SECRET_A } from '../support.js';
import { Tether } from '../../../src/core/engine.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import type { Rig } from '../support.js';
import type { Session, SessionData } from '../../../src/core/session.js';
import type { TetherOptions } from '../../../src/core/options.js';
import type { SharedLimiter } from '../../../src/core/rate-limit.js';

/** One request from `address`, running `fn`; the error code it failed with, or the cookie to send next. */
async function from(r: Rig, address: string | undefined, cookie: string | undefined, fn: (s: Session<SessionData>) => unknown): Promise<{ code: string | null; retryAfterSec?: number; cookie: string | undefined }> {
  const headers: Record<string, string | undefined> = { cookie };
  const session = await r.tether.open({ method: 'POST', header: (n) => headers[n], address: () => address });
  await fn(session);
  try {
    const set = (await r.tether.commit(session)).find((c) => c.startsWith('sid='))?.split(';')[0];
    return { code: null, cookie: set ?? cookie };
  } catch (err) {
    const e = err as { code: string; retryAfterSec?: number };
    return { code: e.code, retryAfterSec: e.retryAfterSec, cookie };
  }
}

const create = (r: Rig, address: string | undefined) => from(r, address, undefined, (s) => s.set('n', 1));

describe('limits on creating sessions (newSessions)', () => {
  it('new sessions from one address when past perAddress then RATE_LIMITED with Retry-After, nothing stored; other addresses, existing sessions and logins go on', async () => {
    const r = rig({ newSessions: { perAddress: 2, windowMs: 30_000 } });
    const first = await create(r, '203.0.113.1');
    assert.equal((await create(r, '203.0.113.1')).code, null);
    const refused = await create(r, '203.0.113.1');
    assert.equal(refused.code, 'RATE_LIMITED');
    assert.equal(refused.retryAfterSec, 30);
    assert.equal(await r.memory.count(), 2, 'the refused session was not stored');
    assert.equal((await create(r, '203.0.113.2')).code, null, 'another address has its own allowance');
    assert.equal((await from(r, '203.0.113.1', undefined, () => {})).code, null, 'a request that stores nothing is not counted');
    assert.equal((await from(r, '203.0.113.1', first.cookie, (s) => s.set('n', 2))).code, null, 'a write to an existing session is not counted');
    assert.equal((await from(r, '203.0.113.1', first.cookie, (s) => s.login('alice'))).code, null, 'nor a login that regenerates one');
    assert.equal((await create(r, undefined)).code, null, 'a request without an address is not counted per address');
    // A window later the allowance is back.
    r.clock.advance(60_001);
    assert.equal((await create(r, '203.0.113.1')).code, null);
  });

  it('new sessions from IPv6 addresses when in one /64 then they share one allowance, and an IPv4-mapped address counts as its IPv4 one', async () => {
    const r = rig({ newSessions: { perAddress: 1 } });
    assert.equal((await create(r, '2001:db8:1:2::1')).code, null);
    assert.equal((await create(r, '2001:db8:1:2::ffff')).code, 'RATE_LIMITED');
    assert.equal((await create(r, '2001:db8:1:3::1')).code, null);
    assert.equal((await create(r, '198.51.100.4')).code, null);
    assert.equal((await create(r, '::ffff:198.51.100.4')).code, 'RATE_LIMITED');
  });

  it('new sessions from many addresses when past total then RATE_LIMITED, the requests without an address counted too', async () => {
    const r = rig({ newSessions: { total: 3 } });
    const codes = [];
    for (const address of ['192.0.2.1', '192.0.2.2', undefined, '192.0.2.4']) codes.push((await create(r, address)).code);
    assert.deepEqual(codes, [null, null, null, 'RATE_LIMITED']);
    assert.equal(r.tether.stats().refusedSessions, 1);
  });

  it('newSessions with its own limiter when counting then asks it, by name, per address and in total', async () => {
    const asked: string[] = [];
    const limiter = (name: string, limit: number, windowMs: number): SharedLimiter => ({
      take: (key) => { asked.push(`${name} ${limit} ${windowMs} ${key}`); return true; },
      peek: () => true,
    });
    const r = rig({ newSessions: { perAddress: 5, total: 50, windowMs: 10_000, limiter } });
    await create(r, '2001:db8::7');
    assert.deepEqual(asked, ['tether.new-sessions 5 10000 2001:db8::/64', 'tether.new-sessions-total 50 10000 *']);
  });

  it('options when newSessions is malformed then OPTIONS_INVALID; when both limits are 0 then there are none', async () => {
    for (const bad of [{ newSessions: { perAddress: -1 } }, { newSessions: { total: 1.5 } }, { newSessions: { windowMs: 0 } }, { newSessions: { limiter: 'redis' } }, { newSessions: 5 }]) {
      assert.throws(() => rig(bad as unknown as TetherOptions), (err: { code?: string }) => err.code === 'OPTIONS_INVALID', JSON.stringify(bad));
    }
    const r = rig({ newSessions: { perAddress: 0, total: 0 } });
    assert.equal(r.tether.options.newSessions, null);
    for (let i = 0; i < 5; i++) assert.equal((await create(r, '203.0.113.9')).code, null);
  });
});

describe('a cap on live sessions (newSessions.maxActive)', () => {
  it('new sessions when the store holds maxActive then TOO_MANY_SESSIONS with Retry-After, nothing stored; existing sessions, their writes and logins go on', async () => {
    const r = rig({ newSessions: { maxActive: 3, recountMs: 4_000 } });
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await create(r, `203.0.113.${i}`));
    assert.deepEqual(made.map((m) => m.code), [null, null, null]);
    assert.equal(r.tether.stats().activeSessions, 3, 'counted 0 when the engine started, and stored 3 since');
    assert.equal(rig().tether.stats().activeSessions, null, 'no cap, no count');
    const refused = await create(r, '203.0.113.9');
    assert.equal(refused.code, 'TOO_MANY_SESSIONS');
    assert.equal(refused.retryAfterSec, 4, 'when the store is counted again');
    assert.equal(await r.memory.count(), 3, 'the refused session was not stored');
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS', 'whatever the address');
    assert.equal(r.tether.stats().refusedSessions, 2);
    assert.equal((await from(r, '203.0.113.9', undefined, () => {})).code, null, 'a request that stores nothing is not refused');
    assert.equal((await from(r, '203.0.113.0', made[0]!.cookie, (s) => s.set('n', 2))).code, null, 'a write to a stored session goes on');
    const login = await from(r, '203.0.113.0', made[0]!.cookie, (s) => s.login('alice'));
    assert.equal(login.code, null, 'a login over a stored session is not a new one');
    assert.equal(await r.memory.count(), 3);
  });

  it('the store when sessions end then new ones are admitted once it is counted again, the count asked when the engine starts and once per recountMs', async () => {
    const r = rig({ newSessions: { maxActive: 2, recountMs: 5_000 } });
    assert.equal(r.store.calls.count, 1, 'counted when the engine started');
    const a = await create(r, undefined);
    await create(r, undefined);
    assert.equal(r.store.calls.count, 1);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS');
    assert.equal(r.store.calls.count, 1, 'a refusal within recountMs asks nothing');
    assert.equal((await from(r, undefined, a.cookie, (s) => s.destroy())).code, null);
    assert.equal(await r.memory.count(), 1);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS', 'until the store is counted again, the ended session is not seen');
    r.clock.advance(5_000);
    assert.equal((await create(r, undefined)).code, null, 'the last count would refuse it, so the request waited for a new one');
    assert.equal(r.store.calls.count, 2);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS', 'the session just stored counts at once');
    assert.equal(await r.memory.count(), 2);
  });

  it('maxActive when every session was ended then the next new session counts the store again at once, within recountMs', async () => {
    const r = rig({ newSessions: { maxActive: 2, recountMs: 60_000 } });
    await create(r, undefined);
    await create(r, undefined);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS');
    assert.equal(await r.tether.destroyAllSessions(), 2);
    assert.equal(r.store.calls.count, 1, 'nothing counted yet');
    assert.equal((await create(r, undefined)).code, null, 'counted again, 0 found');
    assert.equal(r.store.calls.count, 2);
    assert.equal(r.tether.stats().activeSessions, 1);
  });

  it('maxActive when sessions timed out but the store keeps them for expiryGraceMs then they are not counted; a store whose count() takes no options still caps', async () => {
    const r = rig({ idleTimeoutMs: 600_000, newSessions: { maxActive: 2, recountMs: 1_000 } });
    await create(r, undefined);
    await create(r, undefined);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS');
    r.clock.advance(600_001);
    assert.equal(await r.memory.count(), 2, 'the store keeps both for the 60 s of expiryGraceMs');
    assert.equal((await create(r, undefined)).code, null, 'timed out for the engine: counted 0');
    assert.deepEqual(r.store.log.filter((c) => c.method === 'count').at(-1)?.args, [{ marginMs: 60_000 }], 'counted with the grace as margin');
    assert.equal(r.tether.stats().activeSessions, 1);

    /** A store written before count() took options. */
    class OldCount extends MemoryStore {
      override async count(): Promise<number> {
        return super.count();
      }
    }
    const clock = new ManualClock();
    const memory = new OldCount({ clock, sweepIntervalMs: 0 });
    const old = rig({ newSessions: { maxActive: 2, recountMs: 1_000 } }, { store: new FaultyStore(memory), memory, clock });
    await create(old, undefined);
    await create(old, undefined);
    assert.equal((await create(old, undefined)).code, 'TOO_MANY_SESSIONS');
  });

it('two engines on one store when both create sessions then each sees the others\' only at its next count, which runs behind a request its last count admits', async () => {
    const one = rig({ newSessions: { maxActive: 4, recountMs: 1_000 } });
    const two = rig({ newSessions: { maxActive: 4, recountMs: 1_000 } }, one);
    const codes = [];
    for (const r of [one, one, two, two, one]) codes.push((await create(r, undefined)).code);
    assert.deepEqual(codes, [null, null, null, null, null], 'each counted 0 when it started and adds only its own: the cap passed by one');
    one.clock.advance(1_000);
    const before = one.store.calls.count;
    assert.equal((await create(one, undefined)).code, null, 'its last count (0 and its own 3) admits it: the due count ran behind the request');
    assert.equal(one.store.calls.count, before + 1);
    assert.equal((await create(one, undefined)).code, 'TOO_MANY_SESSIONS', 'the count saw 5, and its own one since: 6');
    assert.equal((await create(two, undefined)).code, null, 'two, the same: its last count (0 and its own 2) admits it');
    assert.equal((await create(two, undefined)).code, 'TOO_MANY_SESSIONS');
    assert.equal(await one.memory.count(), 7);
  });

  it('new sessions when their writes fail then they are not counted as stored: the reckoning stays, and none is refused once the store is back', async () => {
    const r = rig({ newSessions: { maxActive: 3, recountMs: 60_000 } });
    assert.equal((await create(r, undefined)).code, null);
    r.store.fail('set', 'reject');
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await create(r, undefined)).code);
    assert.deepEqual(codes, Array(5).fill('STORE_UNAVAILABLE'), 'an outage is an outage, not a full store');
    assert.equal(r.tether.stats().activeSessions, 1, 'nothing was stored by the failed writes');
    assert.equal(r.tether.stats().refusedSessions, 0);
    r.store.heal();
    assert.equal((await create(r, undefined)).code, null, 'within recountMs of the last count');
    assert.equal((await create(r, undefined)).code, null);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS', 'the stored ones count');
    assert.equal(await r.memory.count(), 3);
    assert.equal(r.tether.stats().activeSessions, 3);
  });

  it('the store when it cannot be counted then nothing is refused until a count succeeds; after one, the last count holds while counting fails', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const store = new FaultyStore(memory).fail('count', 'reject');
    const r = rig({ newSessions: { maxActive: 2, recountMs: 1_000 } }, { store, memory, clock });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await create(r, undefined)).code);
    assert.deepEqual(codes, [null, null, null], 'no count, no cap: the store holds 3');
    assert.equal(store.calls.count, 1, 'a failed count is tried again recountMs later, not by every request');
    store.heal();
    clock.advance(1_000);
    assert.equal((await create(r, undefined)).code, null, 'still no count to go by: the due one runs behind the request');
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS', 'counted: 3, and 1 since');
    store.fail('count', 'reject');
    clock.advance(1_000);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS', 'the count failed: the last one holds');
    assert.equal(await memory.count(), 4);
    const throwing = new FaultyStore(new MemoryStore({ clock, sweepIntervalMs: 0 })).fail('count', 'throw');
    const t = rig({ newSessions: { maxActive: 1 } }, { store: throwing, memory: throwing.inner as MemoryStore, clock });
    assert.equal((await create(t, undefined)).code, null, 'a store whose count() throws fails the count, not the engine');
  });

  it('the store when counting it is slow then counts are spaced so that counting takes at most 1 % of the time, and Retry-After says when the next is due', async () => {
    const clock = new ManualClock();
    /** A store whose count takes 60 ms by the engine's clock. */
    class SlowCount extends MemoryStore {
      counts = 0;
      override async count(): Promise<number> {
        this.counts++;
        clock.advance(60);
        return super.count();
      }
    }
    const memory = new SlowCount({ clock, sweepIntervalMs: 0 });
    const r = rig({ newSessions: { maxActive: 1, recountMs: 1_000 } }, { store: new FaultyStore(memory), memory, clock });
    await sleep(10);
    assert.equal((await create(r, undefined)).code, null, 'counted 0 when the engine started');
    clock.advance(1_500);
    const refused = await create(r, undefined);
    assert.equal(refused.code, 'TOO_MANY_SESSIONS');
    assert.equal(memory.counts, 1, 'a count that took 60 ms is not repeated within 6 s, recountMs or not');
    assert.equal(refused.retryAfterSec, 5, 'due 6 s after the count began, 1.56 s ago');
    clock.advance(5_000);
    assert.equal((await create(r, undefined)).code, 'TOO_MANY_SESSIONS');
    assert.equal(memory.counts, 2, 'due again: the request the last count refuses waited for it');
  });

  it('options when maxActive is malformed or the store cannot count then OPTIONS_INVALID; maxActive alone turns newSessions on', async () => {
    for (const bad of [{ newSessions: { maxActive: -1 } }, { newSessions: { maxActive: 2.5 } }, { newSessions: { maxActive: 2, recountMs: 0 } }]) {
      assert.throws(() => rig(bad as unknown as TetherOptions), (err: { code?: string }) => err.code === 'OPTIONS_INVALID', JSON.stringify(bad));
    }
    const memory = new MemoryStore();
    const uncounted = Object.assign(Object.create(memory) as MemoryStore, { count: undefined });
    assert.throws(() => new Tether({ secrets: [SECRET_A], store: uncounted, newSessions: { maxActive: 10 } }),
      (err: { code?: string; message?: string }) => err.code === 'OPTIONS_INVALID' && /count/.test(err.message ?? ''));
    assert.deepEqual(rig({ newSessions: { maxActive: 7 } }).tether.options.newSessions, { perAddress: 0, total: 0, windowMs: 60_000, maxActive: 7, recountMs: 5_000, limiter: undefined });
    await memory.close();
  });
});
