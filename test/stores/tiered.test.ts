/** TieredStore: the conformance suite over MemoryStore and SqliteStore, two-node freshness, races, bounds, stats, and consistency (fences, feed state). */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { ChangeFeedState, Clock, SessionRecord, SessionStore } from '../../src/core/store.js';
import { GatedStore } from '../fixtures/gated-store.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';
import { alternateWrites } from '../helpers/tiered.js';
import { checkSlotReads } from '../helpers/local-slot.js';

const shared = new WeakMap<SessionStore, MemoryStore>();
runStoreSuite({
  name: 'tiered over memory',
  destroysAll: true,
  regenerates: true,
  reportsSwept: true,
  open: async (clock) => {
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const tier = new TieredStore({ shared: memory, clock });
    shared.set(tier, memory);
    return tier;
  },
  // Another node's tier over the same backend; it leaves the shared store to the first tier to close.
  connect: async (store, clock) => new TieredStore({ shared: shared.get(store)!, clock, closeShared: false }),
  // Both tiers pass their listeners to one MemoryStore object, which reports every sweep to each.
  peersShareSweeps: true,
});

const files = new WeakMap<SessionStore, TempSqliteFile>();
const sqliteTier = (path: string, clock: Clock): TieredStore =>
  new TieredStore({ shared: new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 20 }), clock });
runStoreSuite({
  name: 'tiered over sqlite',
  destroysAll: true,
  regenerates: true,
  reportsSwept: true,
  open: async (clock) => {
    const file = await tempSqliteFile();
    const tier = sqliteTier(file.path, clock);
    files.set(tier, file);
    return tier;
  },
  // A second connection to the same file behind its own tier: another process's worth.
  connect: async (store, clock) => sqliteTier(files.get(store)!.path, clock),
  dispose: async (store) => files.get(store)?.remove(),
});

const temps: TempSqliteFile[] = [];
after(async () => {
  for (const t of temps) await t.remove();
});

describe('TieredStore across nodes', () => {
  it('two nodes over one SQLite file when one acknowledges a write then the other’s next read returns it', async () => {
    const { path } = await tempSqliteFile().then((f) => (temps.push(f), f));
    const clock = new ManualClock();
    // A slow timer poll, so freshness has to come from the read barrier, not from luck with timing.
    const a = new TieredStore({ shared: new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 60_000 }), clock });
    const b = new TieredStore({ shared: new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 60_000 }), clock });
    try {
      await alternateWrites(a, b, clock, 300);
      const sa = a.stats();
      const sb = b.stats();
      assert.ok(sa.hits >= 250 && sb.hits >= 250, `copies were served locally (hits ${sa.hits}, ${sb.hits})`);
      assert.ok(sa.invalidations >= 140 && sb.invalidations >= 140, 'and dropped when the other node wrote');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two nodes over one SQLite file when another writes more changes than one poll reads before its write then the next read returns that write', async () => {
    const { path } = await tempSqliteFile().then((f) => (temps.push(f), f));
    const clock = new ManualClock();
    await using writer = new SqliteStore({ path, clock, sweepIntervalMs: 0 });
    // A slow timer poll: only the read fence can deliver the invalidation in time.
    await using node = new TieredStore({ shared: new SqliteStore({ path, clock, sweepIntervalMs: 0, changePollMs: 60_000 }), clock });
    const rec = makeRecord(clock);
    await writer.set(rec, 0);
    assert.equal((await node.get(rec.key))?.version, 1);
    assert.equal((await node.get(rec.key))?.version, 1, 'the copy is served locally');
    // 100,000 changes of other sessions, more than one poll reads, then the write the read must see.
    for (let done = 0; done < 100_000; done += 5_000) {
      await Promise.all(Array.from({ length: 5_000 }, () => writer.set(makeRecord(clock), 0)));
    }
    assert.deepEqual(await writer.set({ ...rec, version: 2, data: '"v2"' }, 1), { ok: true });
    const hits = node.stats().hits;
    assert.equal((await node.get(rec.key))?.version, 2, 'a fenced read is never older than a write acknowledged before it');
    assert.equal((await node.get(rec.key))?.version, 2);
    assert.equal(node.stats().hits, hits + 1, 'and once the feed caught up, copies are served locally again');
  });

  it('two nodes over one MemoryStore when one acknowledges a write then the other’s next read returns it', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const a = new TieredStore({ shared: memory, clock, closeShared: false });
    const b = new TieredStore({ shared: memory, clock, closeShared: false });
    try {
      await alternateWrites(a, b, clock, 300);
      assert.ok(b.stats().hits > 0);
    } finally {
      await a.close();
      await b.close();
      await memory.close();
    }
  });

  it('tiered store with closeShared false when closed then what it passes through to the shared store (count, subscribe, onSwept) refuses STORE_CLOSED too', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const tier = new TieredStore({ shared: memory, clock, closeShared: false });
    try {
      await tier.set(makeRecord(clock), 0);
      assert.equal(await tier.count!(), 1);
      await tier.close();
      await assert.rejects(tier.count!(), { code: 'STORE_CLOSED' });
      let heard = 0;
      assert.throws(() => tier.subscribe!(() => heard++), { code: 'STORE_CLOSED' });
      assert.throws(() => tier.onSwept!(() => heard++), { code: 'STORE_CLOSED' });
      await memory.set(makeRecord(clock), 0);
      assert.equal(heard, 0);
      assert.equal(await memory.count(), 2, 'the shared store, still open, still answers');
    } finally {
      await memory.close();
    }
  });
});

describe('TieredStore races', () => {
  it('tiered store when a change is reported while a miss is being fetched then the fetched value is not cached', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const gated = new GatedStore(memory);
    const node = new TieredStore({ shared: gated, clock, closeShared: false });
    const other = new TieredStore({ shared: memory, clock, closeShared: false });
    try {
      const rec = makeRecord(clock);
      await other.set(rec, 0);
      const reached = gated.hold();
      const stale = node.get(rec.key);
      await reached; // the fetch has read version 1 and is on its way back
      await other.set({ ...rec, version: 2, data: '"v2"' }, 1);
      gated.release();
      assert.equal((await stale)?.version, 1, 'a read that began before the write may return the old version');
      assert.equal((await node.get(rec.key))?.version, 2, 'but the old version was not cached');
      assert.equal(node.stats().misses, 2);
    } finally {
      await node.close();
      await other.close();
      await memory.close();
    }
  });

  it('tiered store when a fetch started before its own write returns late then the old version is not cached', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const gated = new GatedStore(memory);
    await using node = new TieredStore({ shared: gated, clock, closeShared: false });
    const rec = makeRecord(clock);
    await memory.set(rec, 0);
    const reached = gated.hold();
    const stale = node.get(rec.key);
    await reached;
    assert.deepEqual(await node.set({ ...rec, version: 2, data: '"v2"' }, 1), { ok: true });
    gated.release();
    assert.equal((await stale)?.version, 1);
    assert.equal((await node.get(rec.key))?.version, 2);
    assert.equal((await node.get(rec.key))?.version, 2);
  });
});

describe('TieredStore write-through', () => {
  for (const backend of ['memory', 'sqlite'] as const) {
    it(`tiered store over ${backend} when its write succeeds then the next read is served from the written copy`, async () => {
      const clock = new ManualClock();
      const file = await tempSqliteFile();
      temps.push(file);
      const store = backend === 'memory' ? new MemoryStore({ clock, sweepIntervalMs: 0 }) : new SqliteStore({ path: file.path, clock, sweepIntervalMs: 0 });
      await using node = new TieredStore({ shared: store, clock });
      const rec = makeRecord(clock);
      await node.set(rec, 0);
      await node.set({ ...rec, version: 2, data: '"v2"' }, 1);
      assert.deepEqual(await node.get(rec.key), { ...rec, version: 2, data: '"v2"' });
      assert.deepEqual({ hits: node.stats().hits, misses: node.stats().misses }, { hits: 1, misses: 0 });
      assert.equal(await node.touch(rec.key, clock.now() + 5_000, clock.now() + 1), true);
      assert.equal((await node.get(rec.key))?.expiresAt, clock.now() + 5_000, 'touch updated the local copy');
      assert.equal(node.stats().hits, 2);
    });
  }

  it('tiered store when a write ends a record (deadlines already passed, as for a regenerated session’s old ID) then no local copy of it is kept', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    await using node = new TieredStore({ shared: memory, clock });
    const rec = makeRecord(clock);
    await node.set(rec, 0);
    assert.equal(node.stats().entries, 1);
    const now = clock.now();
    const ended = { ...rec, version: 2, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: now - 1 };
    assert.equal((await node.set(ended, 1)).ok, true);
    assert.deepEqual({ entries: node.stats().entries, bytes: node.stats().bytes }, { entries: 0, bytes: 0 });
    assert.equal(await node.get(rec.key), null);
  });

  it('tiered store over sqlite when a regeneration succeeds then the new record is served from its copy and the old one has none', async () => {
    const clock = new ManualClock();
    const file = await tempSqliteFile();
    temps.push(file);
    await using node = new TieredStore({ shared: new SqliteStore({ path: file.path, clock, sweepIntervalMs: 0 }), clock });
    assert.equal(typeof node.regenerate, 'function', 'passed through from the shared store');
    const old = makeRecord(clock, { userId: 'regen' });
    await node.set(old, 0);
    const now = clock.now();
    const ended = { ...old, version: 2, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: now - 1 };
    const created = makeRecord(clock, { userId: 'regen', data: '"new"' });
    assert.deepEqual(await node.regenerate!(ended, 1, created), { ok: true });
    assert.equal(node.stats().entries, 1, 'one copy: the new record');
    const misses = node.stats().misses;
    assert.deepEqual(await node.get(created.key), created);
    assert.equal(node.stats().misses, misses, 'served from the copy');
    assert.equal(await node.get(old.key), null);
    // A conflict keeps no copy of either record.
    const stale = { ...created, version: 5, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: now - 1 };
    const next = makeRecord(clock, { userId: 'regen' });
    assert.deepEqual(await node.regenerate!(stale, 4, next), { ok: false, current: 1 });
    assert.equal(node.stats().entries, 0);
    assert.equal(await node.get(next.key), null);
    assert.deepEqual(await node.get(created.key), created);
  });

  it('tiered store when the shared store fails a write then the write rejects and no local copy is left', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const gated = new GatedStore(memory);
    await using node = new TieredStore({ shared: gated, clock, closeShared: false });
    const rec = makeRecord(clock);
    await node.set(rec, 0);
    assert.ok(await node.get(rec.key));
    gated.fail('set', 'reject');
    await assert.rejects(node.set({ ...rec, version: 2, data: '"lost"' }, 1));
    gated.heal();
    const misses = node.stats().misses;
    assert.equal((await node.get(rec.key))?.data, rec.data, 'the store still holds version 1');
    assert.equal(node.stats().misses, misses + 1, 'and it was read from the store, not a local copy');
  });

  it('tiered store when a write conflicts then the local copy is dropped and the next read fetches', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    // No feed, so the tier cannot hear the write made behind its back; only the conflict tells it.
    await using node = new TieredStore({ shared: new GatedStore(memory, { feed: false }), clock, singleProcess: true, closeShared: false });
    const rec = makeRecord(clock);
    await node.set(rec, 0);
    await memory.set({ ...rec, version: 2, data: '"elsewhere"' }, 1);
    assert.equal((await node.get(rec.key))?.version, 1, 'stale, as documented for singleProcess misuse');
    assert.deepEqual(await node.set({ ...rec, version: 2, data: '"mine"' }, 1), { ok: false, current: 2 });
    assert.equal((await node.get(rec.key))?.data, '"elsewhere"');
  });

  it('tiered store when the feed reports it may have lost changes then every local copy is dropped', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const gated = new GatedStore(memory);
    await using node = new TieredStore({ shared: gated, clock, closeShared: false });
    const recs = [makeRecord(clock), makeRecord(clock)];
    for (const r of recs) await memory.set(r, 0);
    for (const r of recs) await node.get(r.key);
    assert.equal(node.stats().entries, 2);
    gated.resync();
    assert.equal(node.stats().entries, 0);
    assert.ok(await node.get(recs[0]!.key));
  });

  it('tiered store when destroyByUser runs then that user’s local copies are gone, except the kept one', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    await using node = new TieredStore({ shared: new GatedStore(memory, { feed: false }), clock, singleProcess: true, closeShared: false });
    const [keep, gone] = [makeRecord(clock, { userId: 'dora' }), makeRecord(clock, { userId: 'dora' })];
    for (const r of [keep, gone]) await node.set(r, 0);
    assert.equal(await node.destroyByUser('dora', { except: [keep.key] }), 1);
    assert.equal(await node.get(gone.key), null);
    assert.ok(await node.get(keep.key));
  });
});

describe('TieredStore bounds, stats and options', () => {
  it('tiered store when local copies exceed maxBytes then evicts the coldest and stays under the bound', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    await using node = new TieredStore({ shared: memory, clock, maxBytes: 20_000, closeShared: false });
    const recs = Array.from({ length: 60 }, () => makeRecord(clock, { data: 'x'.repeat(500) }));
    await node.set(recs[0]!, 0);
    for (const r of recs.slice(1)) {
      await node.get(recs[0]!.key);
      await node.set(r, 0);
      assert.ok(node.stats().bytes <= 20_000);
    }
    const s = node.stats();
    assert.ok(s.evictions > 0);
    assert.ok(s.entries < 60);
    const hits = s.hits;
    await node.get(recs[0]!.key);
    assert.equal(node.stats().hits, hits + 1, 'the hot record is still local');
    assert.ok(await node.get(recs[1]!.key), 'an evicted record is still in the shared store');
  });

  it('tiered store stats count hits, misses and the hit ratio, and expiry follows the clock', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    await using node = new TieredStore({ shared: memory, clock, closeShared: false });
    assert.equal(node.stats().hitRatio, 0);
    const rec = makeRecord(clock, { expiresAt: clock.now() + 1_000 });
    await memory.set(rec, 0);
    await node.get(rec.key);
    await node.get(rec.key);
    await node.get(rec.key);
    assert.deepEqual({ ...node.stats(), bytes: 0 }, { hits: 2, misses: 1, invalidations: 0, evictions: 0, bytes: 0, entries: 1, hitRatio: 2 / 3, fences: 0 });
    clock.advance(1_000);
    assert.equal(await node.get(rec.key), null, 'an expired local copy is never served');
  });

  it('tiered store when the shared store has no change feed then throws OPTIONS_INVALID unless singleProcess', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const noFeed = new GatedStore(memory, { feed: false });
    assert.throws(() => new TieredStore({ shared: noFeed }), { code: 'OPTIONS_INVALID', message: /no change feed.*singleProcess/ });
    const ok = new TieredStore({ shared: noFeed, singleProcess: true });
    assert.equal(ok.subscribe, undefined);
    await ok.close();
    assert.throws(() => new TieredStore({} as never), { code: 'OPTIONS_INVALID', message: /shared is required/ });
    assert.throws(() => new TieredStore({ shared: {} as never }), { code: 'OPTIONS_INVALID', message: /shared must be a SessionStore/ });
    assert.throws(() => new TieredStore({ shared: memory, maxByte: 1 } as never), { code: 'OPTIONS_INVALID', message: /maxByte is not an option/ });
    await memory.close();
  });
});

/** A MemoryStore behind a fence the test answers by hand, and a feed state it sets. */
class HandFencedStore extends GatedStore {
  feedState: ChangeFeedState = 'listening';
  /** Answers the fences in order: true, false, or an Error to reject with. */
  readonly pending: Array<(answer: boolean | Error) => void> = [];
  fence(): Promise<boolean> {
    return new Promise((resolve, reject) => this.pending.push((a) => (a instanceof Error ? reject(a) : resolve(a))));
  }
}

/** A fenced tier over a HandFencedStore, holding one record it has read once (cached); closed after `run`. */
async function withCachedRecord(run: (t: { node: TieredStore; shared: HandFencedStore; rec: SessionRecord }) => Promise<void>): Promise<void> {
  const clock = new ManualClock();
  await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
  const shared = new HandFencedStore(memory);
  await using node = new TieredStore({ shared, clock, closeShared: false });
  const rec = makeRecord(clock);
  await memory.set(rec, 0);
  await node.get(rec.key);
  await run({ node, shared, rec });
}

/** An eventual and a fenced tier over one shared store, which they leave open. */
function bothConsistencies(shared: SessionStore, clock: Clock): { eventual: TieredStore; fenced: TieredStore } {
  return {
    eventual: new TieredStore({ shared, clock, consistency: 'eventual', closeShared: false }),
    fenced: new TieredStore({ shared, clock, consistency: 'fenced', closeShared: false }),
  };
}

/** Lets every promise callback queued so far run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('TieredStore consistency', () => {
  it('tiered store consistency defaults to fenced when the shared store has fence() and to eventual without; fenced without fence() throws', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 });
    const fenced = new TieredStore({ shared: new HandFencedStore(memory), closeShared: false });
    const plain = new TieredStore({ shared: memory, closeShared: false });
    assert.equal(fenced.consistency, 'fenced');
    assert.equal(plain.consistency, 'eventual');
    assert.throws(() => new TieredStore({ shared: memory, consistency: 'fenced' }), { code: 'OPTIONS_INVALID', message: /fenced.*fence\(\)/ });
    assert.throws(() => new TieredStore({ shared: memory, consistency: 'strong' as never }), { code: 'OPTIONS_INVALID', message: /consistency must be one of/ });
    await fenced.close();
    await plain.close();
    await memory.close();
  });

  it('tiered store when reads arrive while a fence is in flight then they share the next fence, never the earlier one', () => withCachedRecord(async ({ node, shared, rec }) => {
    const first = node.get(rec.key);
    await settle();
    assert.equal(shared.pending.length, 1, 'a hit waits for a fence');
    const later = [node.get(rec.key), node.get(rec.key), node.get(rec.key)];
    await settle();
    assert.equal(shared.pending.length, 1, 'reads that began after the first fence was sent do not send their own yet');
    let laterDone = false;
    void Promise.all(later).then(() => { laterDone = true; });
    shared.pending[0]!(true);
    assert.equal((await first)?.version, 1);
    await settle();
    assert.equal(laterDone, false, 'and they do not take the answer of the fence sent before them');
    assert.equal(shared.pending.length, 2, 'one fence is sent for all three');
    shared.pending[1]!(true);
    assert.deepEqual((await Promise.all(later)).map((r) => r?.version), [1, 1, 1]);
    assert.deepEqual({ hits: node.stats().hits, misses: node.stats().misses, fences: node.stats().fences }, { hits: 4, misses: 1, fences: 2 });
  }));

  it('tiered store when reads arrive in one turn before their fence is sent then they all share it', () => withCachedRecord(async ({ node, shared, rec }) => {
    const sameTurn = [node.get(rec.key), node.get(rec.key), node.get(rec.key)];
    await settle();
    assert.equal(shared.pending.length, 1, 'one fence for the reads of one turn, sent after all of them began');
    shared.pending[0]!(true);
    assert.deepEqual((await Promise.all(sameTurn)).map((r) => r?.version), [1, 1, 1]);
    assert.equal(shared.pending.length, 1, 'none of them waited for a second fence');
    assert.equal(node.stats().fences, 1);
  }));

  it('tiered store when a fence resolves false or rejects then the read goes to the shared store', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    // No feed, so the write below stays unreported and the local copy stale: only the fence decides.
    const shared = new HandFencedStore(memory, { feed: false });
    await using node = new TieredStore({ shared, clock, singleProcess: true, closeShared: false });
    const rec = makeRecord(clock);
    await node.set(rec, 0);
    await memory.set({ ...rec, version: 2, data: '"v2"' }, 1);
    const served = async (answer: boolean | Error): Promise<number | undefined> => {
      const read = node.get(rec.key);
      await settle();
      shared.pending.shift()!(answer);
      return (await read)?.version;
    };
    assert.equal(await served(true), 1, 'a true fence lets the copy be served (stale here only because the feed is hidden)');
    assert.equal(await served(false), 2, 'false: read through');
    await memory.set({ ...rec, version: 3, data: '"v3"' }, 2);
    assert.equal(await served(new Error('fence failed')), 3, 'rejected: read through');
    assert.equal(node.stats().hits, 1);
  });

  for (const consistency of ['fenced', 'eventual'] as const) {
    it(`tiered store (${consistency}) when the feed is not listening then no local copy is served until it is`, async () => {
      const clock = new ManualClock();
      await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
      const shared = new HandFencedStore(memory);
      await using node = new TieredStore({ shared, clock, consistency, closeShared: false });
      const rec = makeRecord(clock);
      await memory.set(rec, 0);
      await node.get(rec.key);
      assert.equal(node.stats().entries, 1, 'a local copy is there');
      shared.feedState = 'connecting';
      assert.equal((await node.get(rec.key))?.version, 1);
      assert.equal((await node.get(rec.key))?.version, 1);
      assert.deepEqual({ hits: node.stats().hits, misses: node.stats().misses, fences: node.stats().fences }, { hits: 0, misses: 3, fences: 0 });
      shared.feedState = 'listening';
      shared.resync();
      await node.get(rec.key);
      const hit = node.get(rec.key);
      await settle();
      shared.pending.shift()?.(true);
      assert.equal((await hit)?.version, 1);
      assert.equal(node.stats().hits, 1, 'served locally again once the feed is back');
    });
  }

  it('tiered store when its own write is in flight then eventual reads are served the copy held before, fenced reads none; the answer decides what is kept', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    /** Holds each set until `answer()`, then writes it through. */
    class HeldSets extends HandFencedStore {
      answer: () => void = () => {};
      override async set(rec: SessionRecord, expected: number) {
        await new Promise<void>((resolve) => (this.answer = resolve));
        return super.set(rec, expected);
      }
    }
    const shared = new HeldSets(memory);
    const { eventual, fenced } = bothConsistencies(shared, clock);
    try {
      const rec = makeRecord(clock);
      await memory.set(rec, 0);
      await eventual.get(rec.key);
      assert.equal(eventual.getLocal(rec.key)?.version, 1);
      const written = eventual.set({ ...rec, version: 2, data: '"v2"' }, 1);
      await settle();
      assert.equal(eventual.getLocal(rec.key)?.version, 1, 'the copy held before the write, while it is in flight');
      shared.answer();
      assert.deepEqual(await written, { ok: true });
      assert.deepEqual(eventual.getLocal(rec.key), { ...rec, version: 2, data: '"v2"' }, 'the written copy once acknowledged');
      // A conflict, then a failure: no copy is left either time.
      const conflicting = eventual.set({ ...rec, version: 2, data: '"other"' }, 1);
      await settle();
      assert.equal(eventual.getLocal(rec.key)?.version, 2);
      shared.answer();
      assert.deepEqual(await conflicting, { ok: false, current: 2 });
      assert.equal(eventual.getLocal(rec.key), undefined, 'dropped on a conflict');
      await eventual.get(rec.key);
      shared.fail('set', 'reject');
      const failing = eventual.set({ ...rec, version: 3, data: '"v3"' }, 2);
      await settle();
      shared.answer();
      await assert.rejects(failing);
      shared.heal();
      assert.equal(eventual.getLocal(rec.key), undefined, 'dropped on a failure');
      // Fenced: a read while the write is in flight goes to the shared store.
      assert.equal((await fenced.get(rec.key))?.version, 2, 'fetched and kept');
      const fencedWrite = fenced.set({ ...rec, version: 3, data: '"v3"' }, 2);
      await settle();
      const misses = fenced.stats().misses;
      const during = fenced.get(rec.key);
      await settle();
      // Had the copy stayed, the read would wait for a fence: answered here so that shows as a hit.
      while (shared.pending.length > 0) shared.pending.shift()!(true);
      assert.equal((await during)?.version, 2, 'the version the shared store holds while the write is held');
      assert.equal(fenced.stats().misses, misses + 1, 'read from the shared store, not from a copy');
      shared.answer();
      assert.deepEqual(await fencedWrite, { ok: true });
    } finally {
      await eventual.close();
      await fenced.close();
      await memory.close();
    }
  });

  it('tiered store getLocal when a copy may be served at once then returns it with no promise, and otherwise leaves the read to get', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const shared = new HandFencedStore(memory);
    const { eventual, fenced } = bothConsistencies(shared, clock);
    try {
      const rec = makeRecord(clock);
      await memory.set(rec, 0);
      assert.equal(eventual.getLocal(rec.key), undefined, 'a miss is left to get');
      await eventual.get(rec.key);
      assert.deepEqual(eventual.getLocal(rec.key), rec, 'a copy is served at once');
      assert.equal(eventual.stats().hits, 1);
      shared.feedState = 'connecting';
      assert.equal(eventual.getLocal(rec.key), undefined, 'not while the feed is down');
      shared.feedState = 'listening';
      const fencedRead = fenced.get(rec.key);
      await settle();
      shared.pending.shift()?.(true);
      await fencedRead;
      assert.equal(fenced.getLocal(rec.key), undefined, 'a fenced tier always waits for its fence');
      assert.equal(shared.pending.length, 0, 'and getLocal starts none');
      clock.advance(rec.expiresAt - clock.now());
      assert.equal(eventual.getLocal(rec.key), undefined, 'a copy past its deadline is left to get');
    } finally {
      await eventual.close();
      await fenced.close();
      await memory.close();
    }
  });

  it('tiered store getLocal when given a slot then answers a key read again with the one record its copy unpacked to, and every other caller with its own', async () => {
    const clock = new ManualClock();
    await using memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    await using tier = new TieredStore({ shared: new HandFencedStore(memory), clock, consistency: 'eventual', closeShared: false });
    const rec = makeRecord(clock);
    await tier.set(rec, 0);
    await checkSlotReads(tier, clock, rec);
  });
});
