/** RedisStore through Redis Sentinel: a primary, a replica and one sentinel; the store follows a failover by itself. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RedisStore } from '../../src/stores/redis/index.js';
import { ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { SessionRecord } from '../../src/core/store.js';
import { startRedis, startRedisSentinel, redisCommand, waitFor } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';

let primary: RedisServer;
let replica: RedisServer;
let sentinel: RedisServer;

/** The replication offset a server reports (`master_repl_offset`). */
async function offset(port: number): Promise<number> {
  const info = await redisCommand(port, ['INFO', 'replication']);
  return Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
}

before(async () => {
  primary = await startRedis();
  replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
  await waitFor('the replica to sync', 10_000,
    async () => (await redisCommand(replica.port, ['INFO', 'replication'])).includes('master_link_status:up'));
  sentinel = await startRedisSentinel(primary.port);
  await waitFor('the sentinel to see the replica', 10_000,
    async () => (await redisCommand(sentinel.port, ['INFO', 'sentinel'])).includes('slaves=1'));
});
after(async () => {
  await Promise.all([sentinel?.dispose(), replica?.dispose(), primary?.dispose()]);
});

describe('RedisStore through Sentinel', () => {
  it('sentinel store when the primary is killed then calls fail fast during the failover and the same instance writes to the promoted replica', async (t) => {
    const clock = new ManualClock();
    const store = new RedisStore({ sentinel: { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'mymaster' }, clock });
    try {
      const before: SessionRecord[] = [];
      for (let i = 0; i < 20; i++) {
        const rec = makeRecord(clock, { userId: 'failover-user' });
        assert.deepEqual(await store.set(rec, 0), { ok: true });
        before.push(rec);
      }
      // Replication is asynchronous: only writes the replica has received can survive a failover,
      // so wait until it caught up (this is what the test can promise; docs/stores.md says what cannot).
      await waitFor('the replica to catch up', 5_000, async () => (await offset(replica.port)) >= (await offset(primary.port)));

      await primary.kill();
      const start = Date.now();
      const fresh = makeRecord(clock, { userId: 'failover-user' });
      // Sentinel needs its down-after period plus an election: keep trying, bounded in time, with a pause
      // between attempts because a refused call returns at once.
      let failures = 0;
      while (Date.now() - start < 30_000) {
        const t0 = Date.now();
        try {
          if ((await store.set(fresh, 0)).ok) break;
        } catch (err) {
          failures++;
          assert.equal((err as { code?: string }).code, 'STORE_UNAVAILABLE');
          assert.ok(Date.now() - t0 < 3_000, `a call during the failover took ${Date.now() - t0} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      t.diagnostic(`${failures} calls failed fast during the failover`);
      const failoverMs = Date.now() - start;
      t.diagnostic(`first successful write ${failoverMs} ms after the primary was killed`);
      assert.ok((await store.get(fresh.key)) !== null, `no write succeeded within ${failoverMs} ms of the failover`);
      assert.match(await redisCommand(replica.port, ['INFO', 'replication']), /role:master/, 'the replica was promoted');
      for (const r of before) assert.deepEqual(await store.get(r.key), r, 'a replicated write survives the failover');
      assert.equal((await store.listByUser('failover-user')).length, 21);
    } finally {
      await store.close();
    }
  });
});
