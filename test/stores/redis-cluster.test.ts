/** RedisStore against a real three-primary Redis Cluster: the conformance suite plus sessions spread over every primary. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../src/stores/redis/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { SessionStore, SweptSession } from '../../src/core/store.js';
import { startRedisCluster, redisCommand, waitFor } from '../helpers/redis.js';
import type { RedisCluster } from '../helpers/redis.js';

let cluster: RedisCluster;
let prefixes = 0;
const nextPrefix = (): string => `c${process.pid}-${++prefixes}:`;
const prefixOf = new WeakMap<SessionStore, string>();

before(async () => {
  cluster = await startRedisCluster(3);
});
after(async () => {
  await cluster?.dispose();
});

runStoreSuite({
  name: 'redis cluster',
  lacks: { sweep: true },
  limits: true,
  destroysAll: true,
  open: async (clock) => {
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix, clock });
    prefixOf.set(store, keyPrefix);
    // A long-lived process subscribes at start-up; attach the feed now, as it would be by then.
    store.subscribe(() => {})();
    return store;
  },
  connect: async (store, clock) => new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix: prefixOf.get(store)!, clock }),
});

// The same cases with reports of sessions that time out: the hashes of those due, claimed by a sweep.
runStoreSuite({
  name: 'redis cluster with reportExpired',
  limits: true,
  destroysAll: true,
  reportsSwept: true,
  open: async (clock) => {
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix, clock, reportExpired: true, sweepIntervalMs: 0 });
    prefixOf.set(store, keyPrefix);
    store.subscribe(() => {})();
    return store;
  },
  connect: async (store, clock) => new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix: prefixOf.get(store)!, clock, reportExpired: true, sweepIntervalMs: 0 }),
});

describe('RedisStore on a cluster', () => {
  it('cluster store with reportExpired when sessions time out in Redis then two processes sweeping at once report each once, with its owner; logged-out ones, renewal pointers and user contexts never', async () => {
    const keyPrefix = nextPrefix();
    const open = (): RedisStore => new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix, reportExpired: true, sweepIntervalMs: 0 });
    const a = open();
    const b = open();
    try {
      // Deadlines well ahead of the writes: a record written already past its deadline is an ending, never reported.
      const now = a.clock.now();
      const soon = { expiresAt: now + 2_000 };
      const idle = Array.from({ length: 60 }, (_, i) => makeRecord(a.clock, { ...soon, userId: i % 3 === 0 ? null : `u${i % 4}` }));
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

      // The hashes of sessions due are spread over the primaries.
      const holders = new Set<number>();
      for (let i = 0; i < 16; i++) {
        const slot = Number(await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', `${keyPrefix}due{${i}}`]));
        for (const node of cluster.nodes) {
          if (Number(await redisCommand(node.port, ['CLUSTER', 'COUNTKEYSINSLOT', slot])) > 0) holders.add(node.port);
        }
      }
      assert.equal(holders.size, 3, 'every primary holds some of the hashes of sessions due');

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
      let listed = 0;
      for (let i = 0; i < 16; i++) {
        const slot = Number(await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', `${keyPrefix}due{${i}}`]));
        for (const node of cluster.nodes) {
          if (Number(await redisCommand(node.port, ['CLUSTER', 'COUNTKEYSINSLOT', slot])) > 0) listed += Number(await redisCommand(node.port, ['HLEN', `${keyPrefix}due{${i}}`]));
        }
      }
      assert.equal(listed, 1, 'the hashes of sessions due hold the live one alone');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('change feed when its subscriber connection is killed then it subscribes again on a node it picks, calls onResync, and reports later changes', async () => {
    const clock = new ManualClock();
    const store = new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix: nextPrefix(), clock });
    try {
      const seen: string[] = [];
      let resyncs = 0;
      const stop = store.subscribe((key) => void seen.push(key), { onResync: () => void resyncs++ });
      await waitFor('the first subscription', 10_000, async () => store.feedState === 'listening' && resyncs === 1);
      const before = makeRecord(clock);
      await store.set(before, 0);
      await waitFor('a change reported', 10_000, async () => seen.includes(before.key));

      // Every pub/sub connection on every primary: the feed's is one of them.
      let killed = 0;
      for (const node of cluster.nodes) killed += Number(await redisCommand(node.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']));
      assert.ok(killed >= 1, 'the subscriber connection was killed');
      await waitFor('a new subscription with onResync', 10_000, async () => resyncs === 2 && store.feedState === 'listening');
      const after = makeRecord(clock);
      await store.set(after, 0);
      await waitFor('a change after the gap reported', 10_000, async () => seen.includes(after.key));
      stop();
    } finally {
      await store.close();
    }
  });

  it('cluster store when one user’s sessions live on every primary then listByUser and destroyByUser reach them all', async () => {
    const clock = new ManualClock();
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix, clock });
    try {
      const user = 'spread-user';
      const recs = Array.from({ length: 30 }, () => makeRecord(clock, { userId: user }));
      for (const r of recs) assert.deepEqual(await store.set(r, 0), { ok: true });
      // Which primary holds each session: every one of the three should hold some.
      const holders = new Set<number>();
      for (const r of recs) {
        const slot = Number(await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', `${keyPrefix}s:${r.key}`]));
        for (const node of cluster.nodes) {
          if (Number(await redisCommand(node.port, ['CLUSTER', 'COUNTKEYSINSLOT', slot])) > 0) holders.add(node.port);
        }
      }
      assert.equal(holders.size, 3, 'sessions are spread over all three primaries');
      assert.equal((await store.listByUser(user)).length, 30);
      assert.equal(await store.count(), 30);
      assert.equal(await store.destroyByUser(user, { except: [recs[0]!.key] }), 29);
      assert.deepEqual((await store.listByUser(user)).map((r) => r.key), [recs[0]!.key]);
      for (const r of recs.slice(1)) assert.equal(await store.get(r.key), null);
    } finally {
      await store.close();
    }
  });
});
