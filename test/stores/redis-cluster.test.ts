/** RedisStore against a real three-primary Redis Cluster: the conformance suite plus sessions spread over every primary. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DUE_SHARDS, RedisStore } from '../../src/stores/redis/index.js';
import { sweepsReportEachOnce } from '../helpers/report-expired.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { SessionStore } from '../../src/core/store.js';
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
  it('cluster store with reportExpired when sessions time out in Redis then two processes sweeping at once report each once, with its owner; logged-out ones, ended ones, renewal pointers and user contexts never', async () => {
    const keyPrefix = nextPrefix();
    const open = (): RedisStore => new RedisStore({ cluster: { nodes: [...cluster.seeds] }, keyPrefix, reportExpired: true, sweepIntervalMs: 0 });
    // Each of the 16 hashes of sessions due, on the primary that holds its slot.
    const dueHashes = async (): Promise<Array<{ port: number; hash: string }>> => {
      const out: Array<{ port: number; hash: string }> = [];
      for (let i = 0; i < DUE_SHARDS; i++) {
        const hash = `${keyPrefix}due{${i}}`;
        const slot = Number(await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', hash]));
        for (const node of cluster.nodes) {
          if (Number(await redisCommand(node.port, ['CLUSTER', 'COUNTKEYSINSLOT', slot])) > 0) out.push({ port: node.port, hash });
        }
      }
      return out;
    };
    await sweepsReportEachOnce(open(), open(), 60, async () => {
      let listed = 0;
      for (const { port, hash } of await dueHashes()) listed += Number(await redisCommand(port, ['HLEN', hash]));
      return listed;
    }, async () => {
      assert.equal(new Set((await dueHashes()).map((d) => d.port)).size, 3, 'every primary holds some of the hashes of sessions due');
    });
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
