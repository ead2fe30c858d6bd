/**
 * createStore with Tether's URL parameters against a real redis-server and PostgreSQL: the key prefix,
 * the table, RedisStore's reportExpired and the tiered near-cache each take effect where the data lands.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { createStore } from '../../src/stores/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { TieredStore } from '../../src/stores/tiered/index.js';
import { makeRecord } from '../../src/testing/store-suite.js';
import { Redis } from 'ioredis';
import { startRedis, startRedisCluster, startRedisSentinel } from '../helpers/redis.js';
import type { RedisCluster, RedisServer } from '../helpers/redis.js';
import { pgQuery } from '../helpers/postgres.js';
import { redisAndPostgres } from '../helpers/backends.js';

const clock = { now: () => Date.now() };

describe('createStore with URL parameters on real servers', () => {
  const servers = redisAndPostgres();

  it('createStore when a redis URL sets keyPrefix, reportExpired and cache=fenced then writes under that prefix, lists what can time out, and reads through a tier that sees another client\'s change', async () => {
    const store = await createStore(`${servers.redis.url}/0?keyPrefix=url1%3A&reportExpired=true&sweepIntervalMs=0&cache=fenced&cacheMaxBytes=65536`, { clock });
    const other = new RedisStore({ url: servers.redis.url, keyPrefix: 'url1:', clock });
    const raw = new Redis(servers.redis.url);
    try {
      assert.equal(store.name, 'tiered');
      const rec = makeRecord(clock, { userId: 'ada' });
      await store.set(rec, 0);
      const keys = await raw.keys('url1:*');
      assert.ok(keys.some((k) => k.startsWith('url1:s:')), `the record is under the URL's prefix: ${keys.join(', ')}`);
      assert.deepEqual(Object.values(await raw.hgetall('url1:due')), ['ada'], 'reportExpired lists the session that can time out, with its owner');

      assert.equal((await store.get(rec.key))?.data, rec.data);
      await other.set({ ...rec, data: '{"n":1}', version: 2 }, 1);
      // Fenced: a read after another client's acknowledged write sees it, never the local copy.
      assert.equal((await store.get(rec.key))?.data, '{"n":1}');
      const stats = (store as TieredStore).stats();
      assert.ok(stats.fences > 0, 'the tier read with fences');
      assert.ok(stats.bytes <= 65_536);
    } finally {
      raw.disconnect();
      await other.close();
      await store.close();
    }
  });

  it('createStore when a redis URL sets cache=eventual then a repeated read is a local hit', async () => {
    const store = await createStore(`${servers.redis.url}?keyPrefix=url2:&cache=eventual`, { clock }) as TieredStore;
    const raw = new Redis(servers.redis.url);
    try {
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      // Local copies are kept once the change feed is subscribed, which the first calls start.
      const deadline = Date.now() + 5_000;
      while (store.stats().hits === 0 && Date.now() < deadline) {
        await store.get(rec.key);
        await delay(20);
      }
      const before = store.stats().hits;
      assert.ok(before > 0, 'a read was answered from the local copy');
      assert.equal((await store.get(rec.key))?.data, rec.data);
      assert.equal(store.stats().hits, before + 1);
      assert.equal(store.stats().fences, 0);
      assert.equal(await raw.exists('url2:due'), 0, 'reportExpired is off unless asked for');
      assert.equal((await raw.keys('url2:s:*')).length, 1);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('createStore when a postgres URL sets tableName, schema and cache then creates that table and reads through a tier', async () => {
    await pgQuery(servers.postgres.url, 'CREATE SCHEMA IF NOT EXISTS shopdata');
    const store = await createStore(`${servers.postgres.url}?tableName=url_sessions&schema=shopdata&cache=fenced`, { clock });
    try {
      assert.equal(store.name, 'tiered');
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      assert.equal((await store.get(rec.key))?.data, rec.data);
      const rows = await pgQuery<{ n: string }>(servers.postgres.url, 'SELECT count(*)::text AS n FROM shopdata.url_sessions');
      assert.equal(rows[0]!.n, '1', 'the record is in the table the URL named');
    } finally {
      await store.close();
    }
  });

  it('createStore when the store refuses an option from the URL then rejects with the code of the store, naming the option', async () => {
    await assert.rejects(createStore(`${servers.postgres.url}?tableName=bad%20name`, { clock }), { code: 'OPTIONS_INVALID', message: /tableName/ });
  });
});

describe('createStore with Sentinel and Cluster URLs on real servers', () => {
  let primary: RedisServer;
  let sentinel: RedisServer;
  let cluster: RedisCluster;
  before(async () => {
    primary = await startRedis();
    [sentinel, cluster] = await Promise.all([startRedisSentinel(primary.port, 'urlmaster'), startRedisCluster(3)]);
  });
  after(async () => {
    await Promise.all([sentinel?.dispose(), cluster?.dispose()]);
    await primary?.dispose();
  });

  it('createStore when given a redis+sentinel URL then finds the master through the Sentinel and writes to the database and prefix it names', async () => {
    const store = await createStore(`redis+sentinel://127.0.0.1:${sentinel.port}/urlmaster/3?keyPrefix=sen:&cache=eventual`, { clock });
    const raw = new Redis(`${primary.url}/3`);
    try {
      assert.equal(store.name, 'tiered');
      const rec = makeRecord(clock);
      await store.set(rec, 0);
      assert.equal((await store.get(rec.key))?.data, rec.data);
      assert.equal((await raw.keys('sen:s:*')).length, 1, 'the record is in database 3 of the master, under the prefix');
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('createStore when given a redis+cluster URL with one seed then reaches every node, and reportExpired turns on its sweep', async () => {
    const seed = cluster.seeds[0]!;
    const store = await createStore(`redis+cluster://${seed.host}:${seed.port}?keyPrefix=clu:`, { clock });
    try {
      const recs = Array.from({ length: 20 }, () => makeRecord(clock));
      for (const rec of recs) await store.set(rec, 0);
      for (const rec of recs) assert.equal((await store.get(rec.key))?.data, rec.data);
      let onNodes = 0;
      for (const node of cluster.nodes) {
        const raw = new Redis(node.url);
        try {
          if ((await raw.keys('clu:*')).length > 0) onNodes++;
        } finally {
          raw.disconnect();
        }
      }
      assert.ok(onNodes >= 2, `the records are spread over the cluster's nodes (${onNodes})`);
    } finally {
      await store.close();
    }
    const reporting = await createStore(`redis+cluster://${seed.host}:${seed.port}?keyPrefix=clu2:&reportExpired=true&sweepIntervalMs=0`, { clock });
    try {
      assert.equal(typeof reporting.sweep, 'function');
      assert.equal(await reporting.sweep!(), 0);
    } finally {
      await reporting.close();
    }
  });
});
