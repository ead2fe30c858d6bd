/** RedisStore against a real three-primary Redis Cluster: the conformance suite plus sessions spread over every primary. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../src/stores/redis/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { SessionStore } from '../../src/core/store.js';
import { startRedisCluster, redisCommand } from '../helpers/redis.js';
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

describe('RedisStore on a cluster', () => {
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
