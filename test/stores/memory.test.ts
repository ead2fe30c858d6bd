/** MemoryStore: the shared conformance suite (before and after its data code is trained) plus its byte bound and LRU order. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { TRAINING } from '../../src/stores/memory/layout.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { checkSlotReads } from '../helpers/local-slot.js';
import { assertSweepsOnItsOwn } from '../helpers/sweep-timer.js';
import type { Clock } from '../../src/core/store.js';

/** JSON shaped like the engine's envelope, about 200 characters. */
function sessionData(i: number): string {
  return JSON.stringify({ d: { cart: [{ sku: `SKU-${10_000 + i}`, qty: 1 + (i % 3), price: 1999 }, { sku: 'SKU-10026', qty: 1, price: 4550 }],
    prefs: { theme: i % 2 ? 'dark' : 'light', lang: 'en-GB', currency: 'EUR' }, n: i, r: 0 } });
}

/** A store whose data code is trained: the records it packs from now on are coded. */
async function trainedStore(clock: Clock, maxBytes?: number): Promise<MemoryStore> {
  const store = new MemoryStore({ clock, sweepIntervalMs: 0, ...(maxBytes ? { maxBytes } : {}) });
  for (let i = 0; i < TRAINING.records; i++) {
    const rec = makeRecord(clock, { data: sessionData(i) });
    await store.set(rec, 0);
    await store.destroy(rec.key);
  }
  return store;
}

runStoreSuite({
  name: 'memory',
  regenerates: true,
  reportsSwept: true,
  destroysAll: true,
  open: async (clock) => new MemoryStore({ clock, sweepIntervalMs: 0 }),
});

runStoreSuite({
  name: 'memory (trained data code)',
  regenerates: true,
  reportsSwept: true,
  destroysAll: true,
  open: (clock) => trainedStore(clock),
});

describe('MemoryStore bounds', () => {
  it('memory store sweep timer when sweepIntervalMs passes then a timed-out session is deleted and reported without a call to sweep()', async () => {
    await assertSweepsOnItsOwn((clock, sweepIntervalMs) => new MemoryStore({ clock, sweepIntervalMs }));
  });

  it('memory store when over maxBytes then evicts least recently used first and never exceeds the bound', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBytes: 20_000, sweepIntervalMs: 0 });
    const recs = Array.from({ length: 100 }, () => makeRecord(clock, { data: 'x'.repeat(500) }));
    await store.set(recs[0]!, 0);
    for (const r of recs.slice(1)) {
      await store.get(recs[0]!.key); // keep the first one hot
      await store.set(r, 0);
      assert.ok(store.bytes <= 20_000);
    }
    assert.ok(await store.get(recs[0]!.key), 'the hot record survives');
    assert.equal(await store.get(recs[1]!.key), null, 'a cold record was evicted');
    assert.ok(store.evictions > 0);
    await store.close();
  });

  it('memory store when a regeneration\'s new record is larger than maxBytes then it throws OPTIONS_INVALID and the old record stays', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBytes: 2_000, sweepIntervalMs: 0 });
    const old = makeRecord(clock, { userId: 'u1' });
    await store.set(old, 0);
    const ended = { ...old, version: 2, expiresAt: clock.now() - 1 };
    const created = makeRecord(clock, { userId: 'u1', data: 'x'.repeat(5_000) });
    await assert.rejects(store.regenerate(ended, 1, created), { code: 'OPTIONS_INVALID' });
    assert.equal((await store.get(old.key))?.version, 1, 'the old record is not ended');
    assert.equal(await store.get(created.key), null);
    assert.deepEqual((await store.listByUser('u1')).map((r) => r.key), [old.key]);
    await store.close();
  });

  it('memory store when a record fits maxBytes only coded then it is stored coded at once', async () => {
    const clock = new ManualClock();
    const data = JSON.stringify({ d: { text: 'lorem ipsum dolor sit amet '.repeat(40) } });
    const probe = await trainedStore(clock);
    const rec = makeRecord(clock, { data });
    await probe.set(rec, 0);
    const uncoded = probe.bytes; // written for later coding: the data as it is
    await probe.close();
    // A bound below the uncoded entry: the coded form is what fits.
    const store = await trainedStore(clock, uncoded - 1);
    await store.set(rec, 0);
    assert.ok(store.bytes < uncoded, `${store.bytes} bytes held, the uncoded entry took ${uncoded}`);
    assert.equal((await store.get(rec.key))?.data, data);
    await store.close();
  });

  it('memory store when a record is touched then it counts as recently used', async () => {
    const clock = new ManualClock();
    const store = await trainedStore(clock, 4_000);
    const recs = Array.from({ length: 40 }, (_, i) => makeRecord(clock, { data: sessionData(i) }));
    await store.set(recs[0]!, 0);
    for (const r of recs.slice(1)) {
      assert.equal(await store.touch(recs[0]!.key, clock.now() + 60_000, clock.now()), true);
      await store.set(r, 0);
    }
    assert.ok(store.evictions > 0);
    assert.ok(await store.get(recs[0]!.key), 'the touched record survives');
    assert.equal(await store.get(recs[1]!.key), null);
    await store.close();
  });

  it('memory store when a record is evicted then subscribers hear its key without a stamp and its owner no longer lists it', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBytes: 2_000, sweepIntervalMs: 0 });
    const heard: Array<[string, string | undefined]> = [];
    store.subscribe((key, stamp) => heard.push([key, stamp]));
    const owned = makeRecord(clock, { key: randomBytes(32).toString('base64url'), userId: 'alice', data: sessionData(1) });
    await store.set(owned, 0);
    assert.deepEqual(heard, [[owned.key, `1:${owned.expiresAt}`]]);
    for (let i = 0; i < 20 && store.evictions === 0; i++) await store.set(makeRecord(clock, { data: sessionData(i) }), 0);
    assert.ok(store.evictions > 0);
    assert.ok(heard.some(([key, stamp]) => key === owned.key && stamp === undefined), 'eviction reported under the original key');
    assert.deepEqual(await store.listByUser('alice'), []);
    await store.close();
  });

  it('memory store when every record is removed again then accounts zero bytes', async () => {
    const clock = new ManualClock();
    const store = await trainedStore(clock);
    const keys = ['user:' + randomBytes(32).toString('base64url'), 'ключ', randomBytes(32).toString('base64url')];
    for (const [i, key] of keys.entries()) {
      const rec = makeRecord(clock, { key, data: sessionData(i), userId: i === 1 ? 'ユーザー' : 'bob' });
      await store.set(rec, 0);
      await store.set({ ...rec, version: 2, data: sessionData(i + 100) }, 1);
      await store.touch(key, clock.now() + 120_000, clock.now());
      assert.ok(store.bytes > 0);
    }
    await store.destroy(keys[0]!);
    assert.equal(await store.destroyByUser('bob'), 1);
    assert.ok(store.bytes > 0);
    clock.advance(10 * 3_600_000);
    assert.equal(await store.sweep(), 1);
    assert.equal(store.bytes, 0);
    assert.equal(await store.count(), 0);
    await store.close();
  });

  it('memory store sweep when it has many records to drop then other work runs between its slices, and every session is reported once', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    try {
      const n = 30_000;
      for (let i = 0; i < n; i++) await store.set(makeRecord(clock, { expiresAt: clock.now() + 10, userId: i % 2 ? 'bob' : null }), 0);
      const live = makeRecord(clock);
      await store.set(live, 0);
      clock.advance(10);
      const reported: string[][] = [];
      store.onSwept((batch) => reported.push(batch.map((s) => s.key)));
      // Another request's work, queued as the sweep starts: it runs after the first slice, not after the last.
      let slicesBeforeIt = -1;
      setImmediate(() => { slicesBeforeIt = reported.length; });
      assert.equal(await store.sweep(), n);
      assert.ok(reported.length >= 2, `${reported.length} slice(s)`);
      assert.ok(slicesBeforeIt >= 1 && slicesBeforeIt < reported.length, `ran after ${slicesBeforeIt} of ${reported.length} slices`);
      assert.equal(new Set(reported.flat()).size, n);
      assert.equal(await store.count(), 1);
      assert.ok(await store.get(live.key));
      assert.deepEqual(await store.listByUser('bob'), []);
    } finally {
      await store.close();
    }
  });

  it('memory store when holding typical sessions then accounts well under 300 bytes for each', async () => {
    const clock = new ManualClock();
    const store = await trainedStore(clock);
    const n = 200;
    for (let i = 0; i < n; i++) await store.set(makeRecord(clock, { key: randomBytes(32).toString('base64url'), data: sessionData(i) }), 0);
    assert.ok(store.bytes / n < 300, `${store.bytes / n} bytes per session`);
    await store.close();
  });

  it('memory store getLocal when asked for a key then answers exactly as get, with no promise', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    try {
      const rec = makeRecord(clock, { userId: 'ann', data: sessionData(1) });
      assert.equal(store.getLocal(rec.key), null);
      await store.set(rec, 0);
      assert.deepEqual(store.getLocal(rec.key), await store.get(rec.key));
      assert.deepEqual(store.getLocal(rec.key), rec);
      clock.advance(rec.expiresAt - clock.now());
      assert.equal(store.getLocal(rec.key), null, 'past its deadline');
      await store.close();
      assert.throws(() => store.getLocal(rec.key), { code: 'STORE_CLOSED' });
    } finally {
      await store.close();
    }
  });

  it('memory store getLocal when given a slot then answers a key read again with the one record its state unpacked to, and every other caller with its own', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    try {
      const rec = makeRecord(clock, { userId: 'ann', data: sessionData(1) });
      await store.set(rec, 0);
      await checkSlotReads(store, clock, rec);
    } finally {
      await store.close();
    }
  });

  it('memory store when given an unknown option then throws OPTIONS_INVALID', () => {
    assert.throws(() => new MemoryStore({ maxByte: 1 } as never), { code: 'OPTIONS_INVALID', message: /options\.maxByte is not an option/ });
    assert.throws(() => new MemoryStore({ maxBytes: -1 }), { code: 'OPTIONS_INVALID', message: /maxBytes must be a positive integer/ });
  });

  it('memory store when sweepIntervalMs is over 2^31 - 1 ms then throws OPTIONS_INVALID, and at the bound it is accepted', async () => {
    assert.throws(() => new MemoryStore({ sweepIntervalMs: 2_147_483_648 }), { code: 'OPTIONS_INVALID', message: /sweepIntervalMs must be 0 or a positive integer of milliseconds, at most 2147483647/ });
    await new MemoryStore({ sweepIntervalMs: 2_147_483_647 }).close();
    await new MemoryStore({ sweepIntervalMs: 0 }).close();
  });
});
