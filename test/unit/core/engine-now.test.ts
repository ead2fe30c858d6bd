/**
 * openNow / commitNow: the engine answers at once when nothing has to wait (the store holds the
 * record in memory, the gate is free, there is nothing to write) and with a promise otherwise, with
 * the same outcome as open / commit either way.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tether } from '../../../src/core/engine.js';
import { MemoryStore } from '../../../src/stores/memory/index.js';
import type { Session, SessionData } from '../../../src/core/session.js';
import { FaultyStore, ManualClock, SECRET_A, cookiePair, trip, view } from '../support.js';

function local(options: { local?: boolean } = {}) {
  const clock = new ManualClock();
  const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
  const store = new FaultyStore(memory, undefined, { local: options.local ?? true });
  const tether = new Tether({ secrets: [SECRET_A], clock, store, idleTimeoutMs: 60_000, touchIntervalMs: 10_000 });
  return { tether, store, memory, clock };
}

async function seeded(t: Tether, data: SessionData = { n: 1, cart: [{ sku: 'A', qty: 1 }] }): Promise<string> {
  const first = await trip(t, undefined, (s) => Object.assign(s.data, data));
  return first.cookie!;
}

function now<V>(value: V | Promise<V>): V {
  assert.ok(!(value instanceof Promise), 'answered at once, not with a promise');
  return value;
}

describe('engine answering at once', () => {
  it('read of a session the store holds in memory then opens and commits with no promise and no store write', async () => {
    const { tether, store } = local();
    const cookie = await seeded(tether);
    store.resetCounts();
    const session = now(tether.openNow(view('GET', { cookie })));
    assert.deepEqual(session.data, { n: 1, cart: [{ sku: 'A', qty: 1 }] });
    assert.deepEqual(now(tether.commitNow(session)), []);
    assert.equal(store.calls.get, 1, 'one read, answered from memory');
    assert.equal(store.writes, 0);
  });

  it('commit when the data changed or a touch is due then returns a promise that writes it', async () => {
    const { tether, store, clock, memory } = local();
    const cookie = await seeded(tether);
    const changed = now(tether.openNow(view('POST', { cookie })));
    changed.data.n = 2;
    const pending = tether.commitNow(changed);
    assert.ok(pending instanceof Promise);
    await pending;
    const key = (await tether.open(view('GET', { cookie }))).handle;
    assert.ok(key);
    const read = now(tether.openNow(view('GET', { cookie })));
    assert.equal(read.data.n, 2, 'the write landed');
    now(tether.commitNow(read));

    store.resetCounts();
    clock.advance(10_001);
    const due = now(tether.openNow(view('GET', { cookie })));
    const touching = tether.commitNow(due);
    assert.ok(touching instanceof Promise, 'a touch is a store call');
    await touching;
    assert.equal(store.calls.touch, 1);
    assert.equal(tether.stats().touches, 1);
    assert.equal(await memory.count(), 1);
  });

  it('writer when another writer holds the session then waits for it by promise and sees its write', async () => {
    const { tether } = local();
    const cookie = await seeded(tether);
    const first = now(tether.openNow(view('POST', { cookie })));
    const second = tether.openNow(view('POST', { cookie }));
    assert.ok(second instanceof Promise, 'the gate is held');
    let opened = false;
    void second.then(() => { opened = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(opened, false, 'still waiting while the first writer runs');
    first.data.n = 5;
    await tether.commitNow(first);
    const after = await second;
    assert.equal(after.data.n, 5);
    now(tether.commitNow(after));
    assert.equal(tether.stats().gateWaiting, 0);
  });

  it('store without getLocal then opens by promise, with the same session', async () => {
    const { tether } = local({ local: false });
    const cookie = await seeded(tether);
    const opening = tether.openNow(view('GET', { cookie }));
    assert.ok(opening instanceof Promise);
    const session = await opening;
    assert.equal(session.data.n, 1);
    assert.deepEqual(now(tether.commitNow(session)), []);
  });

  it('request without a cookie or with a forged one then answers at once; the forged cookie is cleared', () => {
    const { tether } = local();
    const fresh = now(tether.openNow(view('GET')));
    assert.equal(fresh.isNew, true);
    assert.deepEqual(now(tether.commitNow(fresh)), []);
    const forged = now(tether.openNow(view('GET', { cookie: `sid=${'a'.repeat(43)}.${'b'.repeat(43)}` })));
    assert.equal(forged.isNew, true);
    const cleared = now(tether.commitNow(forged));
    assert.equal(cleared.length, 1);
    assert.equal(cookiePair(cleared), 'sid=');
  });

  it('session past its idle deadline then opening destroys it by promise and gives a new session', async () => {
    const { tether, memory, clock } = local();
    const cookie = await seeded(tether);
    clock.advance(60_001);
    const opening = tether.openNow(view('GET', { cookie }));
    assert.ok(opening instanceof Promise, 'destroying the record is a store call');
    const session: Session<SessionData> = await opening;
    assert.equal(session.isNew, true);
    assert.equal(tether.stats().expired, 1);
    assert.equal(await memory.count(), 0);
  });

  it('store whose getLocal throws then openNow throws STORE_UNAVAILABLE at once and the writer gate is free again', async () => {
    const { tether, memory } = local();
    const cookie = await seeded(tether);
    const original = memory.getLocal.bind(memory);
    let broken = true;
    memory.getLocal = (key) => {
      if (broken) throw new Error('disk on fire');
      return original(key);
    };
    assert.throws(() => tether.openNow(view('POST', { cookie })), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(tether.open(view('POST', { cookie })), { code: 'STORE_UNAVAILABLE' }, 'open rejects with the same error');
    broken = false;
    const next = now(tether.openNow(view('POST', { cookie })));
    assert.equal(next.data.n, 1);
    await tether.commitNow(next);
    assert.equal(tether.stats().storeErrors, 2);
  });

  it('commit called twice then the second answers at once with the same cookies', async () => {
    const { tether } = local();
    const session = now(tether.openNow(view('POST')));
    session.data.n = 1;
    const first = await tether.commitNow(session);
    assert.equal(first.length, 1);
    assert.equal(now(tether.commitNow(session)), first);
  });

  it('commit called again while the first one\'s write is under way then it waits for that write and gives its cookie; a write that fails fails both', async () => {
    const { tether, store } = local();
    store.fail('set', { delayMs: 50 });
    const session = now(tether.openNow(view('POST')));
    session.data.n = 1;
    const first = tether.commit(session);
    const second = tether.commitNow(session);
    assert.ok(second instanceof Promise, 'not the cookies of a write still under way: none yet');
    assert.equal((await second).length, 1);
    assert.deepEqual(await first, await second);
    assert.equal(now(tether.commitNow(session)).length, 1, 'once written, answered at once');

    store.fail('set', 'reject');
    const failing = now(tether.openNow(view('POST')));
    failing.data.n = 2;
    const failed = tether.commit(failing);
    const again = tether.commitNow(failing);
    await assert.rejects(failed, { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(Promise.resolve(again), { code: 'STORE_UNAVAILABLE' });
  });
});
