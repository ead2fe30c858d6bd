/**
 * RedisStore `reportExpired` between two processes, as test/stores/redis.test.ts (one server) and
 * redis-cluster.test.ts (a Cluster) run it: sessions that time out in Redis are reported once each,
 * with their owners, whichever process sweeps them; logged-out sessions, ended records, renewal
 * pointers and user contexts never are.
 */
import assert from 'node:assert/strict';
import type { RedisStore } from '../../src/stores/redis/index.js';
import type { SweptSession } from '../../src/core/store.js';
import { makeRecord } from '../../src/testing/store-suite.js';

/**
 * Runs the case on two stores of one prefix (closed afterwards). `listed` tells how many entries the
 * prefix's hashes of sessions due hold; `written` runs once every record is written, before the sweep.
 */
export async function sweepsReportEachOnce(a: RedisStore, b: RedisStore, sessions: number, listed: () => Promise<number>, written?: () => Promise<void>): Promise<void> {
  try {
    // Deadlines well ahead of the writes: a record written already past its deadline is an ending, never reported.
    const now = a.clock.now();
    const soon = { expiresAt: now + 2_000 };
    const idle = Array.from({ length: sessions }, (_, i) => makeRecord(a.clock, { ...soon, userId: i % 3 === 0 ? null : `u${i % 4}` }));
    const live = makeRecord(a.clock, { userId: 'u1' });
    const loggedOut = makeRecord(a.clock, { ...soon, userId: 'u2' });
    const context = makeRecord(a.clock, { ...soon, key: 'user:' + makeRecord(a.clock).key.slice(5) });
    const renewed = makeRecord(a.clock, { userId: 'u3' });
    const ended = makeRecord(a.clock, { userId: 'u3' });
    for (const res of await Promise.all([...idle, live, loggedOut, context, renewed, ended].map((r) => a.set(r, 0)))) assert.deepEqual(res, { ok: true });
    await b.destroy(loggedOut.key);
    const until = now + 2_000;
    assert.deepEqual(await b.set({ ...renewed, data: '"moved"', version: 2, userId: null, lastSeenAt: until, expiresAt: until, absoluteExpiresAt: until }, 1), { ok: true });
    const t = a.clock.now();
    assert.deepEqual(await b.set({ ...ended, data: '"ended"', version: 2, lastSeenAt: t, expiresAt: t - 1, absoluteExpiresAt: t - 1 }, 1), { ok: true });
    assert.ok(a.clock.now() < until, 'every record was written before its deadline');
    await written?.();
    await new Promise((r) => setTimeout(r, until + 300 - a.clock.now()));
    const reports: SweptSession[][] = [[], []];
    a.onSwept!((s) => void reports[0]!.push(...s));
    b.onSwept!((s) => void reports[1]!.push(...s));
    const [na, nb] = await Promise.all([a.sweep!(), b.sweep!()]);
    const all = reports.flat();
    assert.equal(na + nb, idle.length);
    assert.equal(all.length, idle.length, 'each reported once, by one process');
    const byKey = new Map(all.map((s) => [s.key, s.userId]));
    for (const r of idle) assert.equal(byKey.get(r.key), r.userId, r.key);
    assert.deepEqual([await a.sweep!(), await b.sweep!()], [0, 0], 'nothing is reported twice');
    assert.ok(await a.get(live.key), 'a live session stays');
    assert.equal(await listed(), 1, 'the hashes of sessions due hold the live one alone');
  } finally {
    await a.close();
    await b.close();
  }
}
