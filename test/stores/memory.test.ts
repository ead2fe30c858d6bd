/** MemoryStore: the shared conformance suite (before and after its data code is trained) plus its byte bound and LRU order. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { TRAINING } from '../../src/stores/memory/layout.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { checkSlotReads } from '../helpers/local-slot.js';
import { assertSweepsOnItsOwn } from '../helpers/sweep-timer.js';
import type { Clock, SessionRecord } from '../../src/core/store.js';

/** JSON shaped like the engine's envelope, about 200 characters. */
function sessionData(i: number): string {
  return JSON.stringify({ d: { cart: [{ sku: `SKU-${10_000 + i}`, qty: 1 + (i % 3), price: 1999 }, { sku: 'SKU-10026', qty: 1, price: 4550 }],
    prefs: { theme: i % 2 ? 'dark' : 'light', lang: 'en-GB', currency: 'EUR' }, n: i, r: 0 } });
}

/**
 * A MemoryStore of 8 MiB nearly full, with no eviction: its older generation holds about the first half
 * of `held`, the younger the rest.
 */
async function nearlyFull(): Promise<{ clock: ManualClock; maxBytes: number; store: MemoryStore; held: SessionRecord[] }> {
  const clock = new ManualClock();
  const maxBytes = 8 * 1024 * 1024;
  const store = new MemoryStore({ clock, maxBytes, sweepIntervalMs: 0 });
  const held: SessionRecord[] = [];
  while (store.bytes < 0.95 * maxBytes) {
    const rec = makeRecord(clock, { data: sessionData(held.length) });
    held.push(rec);
    await store.set(rec, 0);
  }
  assert.equal(store.evictions, 0);
  return { clock, maxBytes, store, held };
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

  it('memory store when a rewrite of the first record written grows past the bound then an older one is evicted, never the write just acknowledged', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBytes: 10_000, sweepIntervalMs: 0 });
    try {
      const a = makeRecord(clock, { data: JSON.stringify('a'.repeat(3_000)) });
      const b = makeRecord(clock, { data: JSON.stringify('b'.repeat(1_500)) });
      await store.set(a, 0);
      await store.set(b, 0);
      assert.equal(store.evictions, 0);
      const grown = { ...a, version: 2, data: JSON.stringify('A'.repeat(8_600)) };
      assert.deepEqual(await store.set(grown, 1), { ok: true });
      assert.equal(store.evictions, 1);
      assert.equal((await store.get(a.key))?.version, 2, 'the write acknowledged is kept');
      assert.equal(await store.get(b.key), null, 'the least recently written goes');
    } finally {
      await store.close();
    }
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

  it('memory store count when a session is past its deadline and not yet swept then it is not counted, as by the other stores', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    try {
      await store.set(makeRecord(clock, { expiresAt: clock.now() + 1_000 }), 0);
      await store.set(makeRecord(clock, { expiresAt: clock.now() + 5_000 }), 0);
      assert.equal(await store.count(), 2);
      clock.advance(1_000);
      assert.equal(await store.count(), 1, 'the timed-out one is left out before any sweep');
      clock.advance(4_000);
      assert.equal(await store.count(), 0);
      assert.equal(await store.sweep(), 2, 'both still held until the sweep');
    } finally {
      await store.close();
    }
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

  it('memory store destroyAll when it has many sessions to remove then other work runs between its slices, each session held is removed and reported once, and those created meanwhile are kept', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    try {
      const n = 30_000;
      const held = Array.from({ length: n }, (_, i) => makeRecord(clock, { userId: i % 2 ? 'bob' : null }));
      for (const r of held) await store.set(r, 0);
      const expired = makeRecord(clock, { expiresAt: clock.now() + 10, userId: 'bob' });
      const context = makeRecord(clock, { key: `user:${makeRecord(clock).key}` });
      await store.set(expired, 0);
      await store.set(context, 0);
      clock.advance(10);
      const reported = new Map<string, number>();
      store.subscribe((key, stamp) => {
        if (stamp === undefined) reported.set(key, (reported.get(key) ?? 0) + 1);
      });
      // Other requests' work on every turn while it runs: each creates a session, and rewrites one held
      // that the walk reaches last.
      const created: SessionRecord[] = [];
      let firstAfter = -1;
      let rewrites = 0;
      let done = false;
      const work = (): void => {
        if (done) return;
        if (firstAfter < 0) firstAfter = reported.size;
        clock.advance(1);
        const rec = makeRecord(clock, { userId: 'bob' });
        created.push(rec);
        void store.set(rec, 0);
        const last = held[n - created.length]!;
        void store.set({ ...last, version: 2, data: '{"n":2}' }, 1).then((res) => { if (res.ok) rewrites++; });
        setImmediate(work);
      };
      setImmediate(work);
      const ended = await store.destroyAll().finally(() => (done = true));
      assert.equal(ended, n, 'the live sessions held, not the expired one nor the user context');
      assert.ok(firstAfter > 0 && firstAfter < n, `other work first ran after ${firstAfter} of ${n + 1} removals`);
      assert.ok(created.length >= 2, `it ran on ${created.length} turn(s) meanwhile`);
      assert.ok(rewrites >= 1, 'a session held was written while it ran');
      assert.equal(reported.size, n + 1, 'each session held reported, the expired one too');
      assert.ok([...reported.values()].every((times) => times === 1), 'each once');
      for (const r of held) assert.equal(await store.get(r.key), null, r.key);
      for (const r of created) assert.deepEqual(await store.get(r.key), r, 'created meanwhile: kept whole');
      assert.deepEqual(new Set((await store.listByUser('bob')).map((r) => r.key)), new Set(created.map((r) => r.key)));
      assert.equal(await store.count(), created.length);
      assert.deepEqual(await store.get(context.key), context, 'the user context stays');
    } finally {
      await store.close();
    }
  });

  it('memory store destroyAll when reads move records and the generations flip while it runs then it still removes every session held when it was called', async () => {
    const { clock, maxBytes, store, held } = await nearlyFull();
    try {
      const removals = { n: 0 };
      store.subscribe((_key, stamp) => { if (stamp === undefined) removals.n++; });
      // Once the walk emptied the older generation: a write that takes the younger past half the bound
      // (the generations flip), then reads of the sessions written last, which move them to the new
      // younger one before the walk reaches them.
      const big = makeRecord(clock, { data: 'x'.repeat(maxBytes / 4) });
      let readBack = -1;
      let done = false;
      const work = (): void => {
        if (done) return;
        if (readBack < 0 && removals.n >= 0.6 * held.length) {
          void store.set(big, 0);
          readBack = held.slice(-100).filter((r) => store.getLocal(r.key) !== null).length;
        }
        setImmediate(work);
      };
      setImmediate(work);
      assert.equal(await store.destroyAll().finally(() => (done = true)), held.length);
      assert.equal(readBack, 100, 'the last sessions were read while still held, after most were removed');
      const left = held.filter((r) => store.getLocal(r.key) !== null).length;
      assert.equal(left, 0, `${left} session(s) held when it was called still there`);
      assert.equal(await store.count(), 1);
      assert.ok(await store.get(big.key), 'the session created meanwhile stays');
    } finally {
      await store.close();
    }
  });

  it('memory store sweep when the generations flip while it runs then it still drops every record that was due', async () => {
    const { clock, maxBytes, store, held } = await nearlyFull();
    try {
      clock.advance(2 * 3_600_000);
      let swept = 0;
      store.onSwept((batch) => void (swept += batch.length));
      // While the sweep is within the older generation: the rest of it is destroyed (logouts), and a
      // write takes the younger past half the bound, so the generations flip.
      const big = makeRecord(clock, { data: 'x'.repeat(maxBytes / 4) });
      let flipped = false;
      let done = false;
      const work = (): void => {
        if (done) return;
        if (!flipped && swept >= 0.1 * held.length) {
          flipped = true;
          for (const r of held.slice(0, Math.floor(held.length * 0.6))) void store.destroy(r.key);
          void store.set(big, 0);
        }
        setImmediate(work);
      };
      setImmediate(work);
      await store.sweep().finally(() => (done = true));
      assert.ok(flipped, 'the destroys and the write came while the sweep ran');
      assert.equal(await store.count(), 1, 'only the record written meanwhile is left');
    } finally {
      await store.close();
    }
  });

  it('memory store when closed during destroyAll then it rejects with STORE_CLOSED, as other calls on a closed store', async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, sweepIntervalMs: 0 });
    for (let i = 0; i < 30_000; i++) await store.set(makeRecord(clock), 0);
    let closing: Promise<void> | undefined;
    // Closed by other work between two slices.
    setImmediate(() => {
      closing = store.close();
    });
    await assert.rejects(store.destroyAll(), { code: 'STORE_CLOSED' });
    assert.ok(closing, 'closed while it ran');
    await closing;
    await assert.rejects(store.destroyAll(), { code: 'STORE_CLOSED' });
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
