/**
 * Two-node checks for TieredStore shared by the per-backend test files: alternating writers, concurrent
 * readers sharing fences, a feed outage during which no tier may serve a superseded version, and the
 * stamped reports that let a node keep its own writes while others' still invalidate.
 * @module
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { stampOf } from '../../src/core/store.js';
import type { ChangeFeedState, Clock, SessionRecord, SessionStore } from '../../src/core/store.js';
import type { TieredStore } from '../../src/stores/tiered/index.js';

/** Each iteration one node writes and the other must read that version next, never an older one. */
export async function alternateWrites(a: TieredStore, b: TieredStore, clock: Clock, iterations: number): Promise<void> {
  const first = makeRecord(clock, { data: JSON.stringify({ n: 0 }) });
  assert.deepEqual(await a.set(first, 0), { ok: true });
  let version = 1;
  for (let i = 1; i <= iterations; i++) {
    const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
    // Both nodes hold a copy before the write, so a fresh read has to come from invalidation.
    assert.equal((await reader.get(first.key))?.version, version);
    const cur = await writer.get(first.key);
    assert.ok(cur);
    assert.equal(cur.version, version, `iteration ${i}: the writer saw the latest version`);
    const res = await writer.set({ ...cur, version: version + 1, data: JSON.stringify({ n: i }) }, version);
    assert.deepEqual(res, { ok: true }, `iteration ${i}`);
    version++;
    const got = await reader.get(first.key);
    assert.equal(got?.version, version, `iteration ${i}: the other node read version ${got?.version}, not ${version}`);
    assert.equal(got?.data, JSON.stringify({ n: i }));
  }
}

/**
 * `readers` cached records read all at once, twice over: the tier sends one fence for the first read
 * and one for all the others (they began after the first was sent), so a round trip serves them all.
 */
export async function concurrentHits(tier: TieredStore, clock: Clock, readers: number): Promise<{ hits: number; fences: number }> {
  const recs = Array.from({ length: 8 }, () => makeRecord(clock));
  for (const r of recs) assert.deepEqual(await tier.set(r, 0), { ok: true });
  for (const r of recs) assert.ok(await tier.get(r.key));
  const before = tier.stats();
  const got = await Promise.all(Array.from({ length: readers }, (_, i) => tier.get(recs[i % recs.length]!.key)));
  got.forEach((rec, i) => assert.equal(rec?.key, recs[i % recs.length]!.key));
  const after = tier.stats();
  return { hits: after.hits - before.hits, fences: after.fences - before.fences };
}

export interface OutageOptions {
  /** Writes through `writer`; `reader` must return each write's version on its next read. */
  writer: TieredStore;
  reader: TieredStore;
  /** The reader's shared store, whose feed is interrupted. */
  readerShared: { readonly feedState?: ChangeFeedState };
  clock: Clock;
  /** Cuts the feed connection(s) on the server side; resolves once the server did it. */
  interrupt(): Promise<void>;
  /**
   * Ends the outage, for an `interrupt` that keeps the feed down (cutting it again as it comes back,
   * so that a feed that reconnects before the loop starts is still seen down): called once the
   * reader's feed was seen down on `restoreAfter` iterations (default 5); the feed counts as back
   * only after it.
   */
  restore?(): Promise<void>;
  restoreAfter?: number;
  /** Iterations to run after the feed is seen listening again. */
  afterRecovery: number;
  /** Bounds on the whole loop. */
  maxIterations: number;
  maxMs: number;
}

export interface OutageResult {
  iterations: number;
  /** Iterations during which the reader's feed was seen down. */
  downIterations: number;
  /** Reader hits after the feed came back (the cache is in use again). */
  hitsAfterRecovery: number;
}

/**
 * Cuts the feed, then writes through `writer` and reads twice through `reader` on every iteration,
 * from the cut until `afterRecovery` iterations after the feed is back: every read must return the
 * version just acknowledged, never the one before, whatever state the feed is in.
 */
export async function writesAcrossFeedOutage(o: OutageOptions): Promise<OutageResult> {
  let cur: SessionRecord = makeRecord(o.clock, { data: '0' });
  assert.deepEqual(await o.writer.set(cur, 0), { ok: true });
  assert.equal((await o.reader.get(cur.key))?.version, 1);
  assert.equal((await o.reader.get(cur.key))?.version, 1, 'cached before the cut');
  await o.interrupt();
  const deadline = Date.now() + o.maxMs;
  let downIterations = 0;
  let backAt = -1;
  let hitsAtRecovery = 0;
  // Without a restore the outage ends by itself: the first iteration that finds the feed back counts.
  let restored = o.restore === undefined;
  let i = 0;
  for (; i < o.maxIterations && Date.now() < deadline; i++) {
    const next = { ...cur, version: cur.version + 1, data: String(i + 1) };
    assert.deepEqual(await o.writer.set(next, cur.version), { ok: true }, `write ${next.version}`);
    cur = next;
    for (let r = 0; r < 2; r++) {
      const got = await o.reader.get(cur.key);
      assert.equal(got?.version, cur.version, `iteration ${i}, read ${r}: version ${got?.version} after ${cur.version} was acknowledged (feed ${o.readerShared.feedState})`);
    }
    if (o.readerShared.feedState !== 'listening') {
      downIterations++;
      if (!restored && downIterations >= (o.restoreAfter ?? 5)) {
        restored = true;
        await o.restore!();
      }
    } else if (downIterations > 0 && backAt < 0 && restored) {
      backAt = i;
      hitsAtRecovery = o.reader.stats().hits;
    }
    if (backAt >= 0 && i - backAt >= o.afterRecovery) break;
  }
  assert.ok(downIterations > 0, 'the reader saw its feed down');
  assert.ok(backAt >= 0, `the feed came back within ${o.maxMs} ms`);
  return { iterations: i, downIterations, hitsAfterRecovery: o.reader.stats().hits - hitsAtRecovery };
}

/** A node for the stamp checks: a tier and the shared store behind it (this node's own client). */
export interface StampNode {
  tier: TieredStore;
  shared: SessionStore;
}

/**
 * Resolves once `shared`'s feed delivered `key` with `stamp` (undefined: a removal). Its listener is
 * added after the tier's, so by then the tier has handled that report too. Bounded by `timeoutMs`.
 */
export function feedDelivers(shared: SessionStore, key: string, stamp: string | undefined, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no report of ${stamp ?? 'a removal'} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = shared.subscribe!((k, s) => {
      if (k !== key || s !== stamp) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

const counts = (t: TieredStore): { hits: number; misses: number; invalidations: number } => {
  const { hits, misses, invalidations } = t.stats();
  return { hits, misses, invalidations };
};

/**
 * After its own acknowledged set, and then touch, the node's next read is a local hit returning what
 * it wrote, even once the feed has delivered the write's own report (awaited here, so an 'eventual'
 * tier is checked as strictly as a fenced one, whose read waits for it anyway).
 */
export async function ownWritesStayLocal(a: StampNode, clock: Clock): Promise<void> {
  const rec = makeRecord(clock);
  assert.deepEqual(await a.tier.set(rec, 0), { ok: true });
  const v2 = { ...rec, version: 2, data: '"v2"' };
  const echo = feedDelivers(a.shared, rec.key, stampOf(v2));
  assert.deepEqual(await a.tier.set(v2, 1), { ok: true });
  await echo;
  let before = counts(a.tier);
  assert.deepEqual(await a.tier.get(rec.key), v2);
  assert.deepEqual(counts(a.tier), { ...before, hits: before.hits + 1 }, 'a hit, and the report of the write dropped nothing');

  const expiresAt = rec.expiresAt + 5_000;
  const touched = feedDelivers(a.shared, rec.key, stampOf({ version: 2, expiresAt }));
  assert.equal(await a.tier.touch(rec.key, expiresAt, rec.lastSeenAt + 7), true);
  await touched;
  before = counts(a.tier);
  assert.deepEqual(await a.tier.get(rec.key), { ...v2, expiresAt, lastSeenAt: rec.lastSeenAt + 7 });
  assert.deepEqual(counts(a.tier), { ...before, hits: before.hits + 1 }, 'a hit after the touch too');
}

/**
 * Another node reads A's write; its touch (same version, a new deadline) and then its destroy each
 * drop A's copy, so A's next read returns B's deadline and then nothing.
 */
export async function othersChangesInvalidate(a: StampNode, b: StampNode, clock: Clock): Promise<void> {
  const rec = makeRecord(clock, { userId: 'stamp-user' });
  assert.deepEqual(await a.tier.set(rec, 0), { ok: true });
  const v2 = { ...rec, version: 2, data: '"v2"' };
  assert.deepEqual(await a.tier.set(v2, 1), { ok: true });
  assert.deepEqual(await b.tier.get(rec.key), v2, 'the other node reads the new version');
  assert.deepEqual(await a.tier.get(rec.key), v2);

  const expiresAt = rec.expiresAt + 9_000;
  const lastSeenAt = rec.lastSeenAt + 11;
  let before = counts(a.tier);
  const reported = feedDelivers(a.shared, rec.key, stampOf({ version: 2, expiresAt }));
  assert.equal(await b.tier.touch(rec.key, expiresAt, lastSeenAt), true);
  await reported;
  assert.deepEqual(await a.tier.get(rec.key), { ...v2, expiresAt, lastSeenAt }, 'A returns B’s deadline');
  assert.deepEqual(counts(a.tier), { hits: before.hits, misses: before.misses + 1, invalidations: before.invalidations + 1 },
    'B’s touch invalidated A’s copy (its stamp differs)');

  before = counts(a.tier);
  const removed = feedDelivers(a.shared, rec.key, undefined);
  await b.tier.destroy(rec.key);
  await removed;
  assert.equal(await a.tier.get(rec.key), null, 'A no longer serves a destroyed session');
  assert.equal(counts(a.tier).invalidations, before.invalidations + 1);
}

export interface TwoNodeCases {
  /** How test names call the shared backend, e.g. "one Redis". */
  where: string;
  /** Prefix of the test names, e.g. "tiered redis". */
  tag: string;
  /** Two nodes over one shared namespace (two processes' worth). */
  pair: (clock: Clock) => Promise<[TieredStore, TieredStore]>;
  /** One node over a fresh namespace. */
  single: (clock: Clock) => Promise<TieredStore>;
  iterations: number;
  /** Hits and invalidations each node must show at least. */
  atLeast: number;
}

/** The freshness and fence-sharing cases every backend's tier runs. */
export function twoNodeCases(o: TwoNodeCases): void {
  it(`two tiers over ${o.where} when one acknowledges a write then the other’s next read returns it`, async () => {
    const clock = new ManualClock();
    const [a, b] = await o.pair(clock);
    try {
      assert.equal(a.consistency, 'fenced');
      await alternateWrites(a, b, clock, o.iterations);
      for (const t of [a, b]) {
        const s = t.stats();
        assert.ok(s.hits >= o.atLeast, `copies were served locally (hits ${s.hits})`);
        assert.ok(s.invalidations >= o.atLeast, `and dropped when the other node wrote (invalidations ${s.invalidations})`);
        assert.ok(s.fences >= s.hits, 'every hit waited for a fence');
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it(`${o.tag} when 200 reads of cached records start in one turn then they share one fence`, async () => {
    const clock = new ManualClock();
    const tier = await o.single(clock);
    try {
      const { hits, fences } = await concurrentHits(tier, clock, 200);
      assert.equal(hits, 200);
      assert.equal(fences, 1, 'the fence is sent at the end of the turn, after every one of them began');
    } finally {
      await tier.close();
    }
  });
}
