/** TieredStore over a real RedisStore: the conformance suite, two nodes with fenced reads, shared fences, and a killed subscriber connection. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TieredStore } from '../../src/stores/tiered/index.js';
import type { TieredConsistency } from '../../src/stores/tiered/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { Clock, SessionStore } from '../../src/core/store.js';
import { startRedis, redisCommand, waitFor } from '../helpers/redis.js';
import { wasUnsent } from '../../src/core/store.js';
import type { RedisServer } from '../helpers/redis.js';
import { twoNodeCases, writesAcrossFeedOutage } from '../helpers/tiered.js';
import { delayingProxy, stallingProxy } from '../helpers/net.js';
import { HEARTBEAT_MS } from '../../src/stores/redis/feed.js';

let server: RedisServer;
let prefixes = 0;
const nextPrefix = (): string => `tier${process.pid}-${++prefixes}:`;
const prefixOf = new WeakMap<SessionStore, string>();
const sharedOf = new WeakMap<TieredStore, RedisStore>();

before(async () => {
  server = await startRedis();
});
after(async () => {
  await server?.dispose();
});

/** A node: its own RedisStore client on `keyPrefix` behind its own tier, returned once the feed listens. */
async function node(keyPrefix: string, clock: Clock, consistency?: TieredConsistency): Promise<TieredStore> {
  const shared = new RedisStore({ url: server.url, keyPrefix, clock });
  const tier = new TieredStore({ shared, clock, consistency });
  prefixOf.set(tier, keyPrefix);
  sharedOf.set(tier, shared);
  await waitFor('the change feed to listen', 5_000, async () => shared.feedState === 'listening');
  return tier;
}

runStoreSuite({
  name: 'tiered over redis',
  destroysAll: true,
  lacks: { sweep: true },
  limits: true,
  regenerates: true,
  open: (clock) => node(nextPrefix(), clock),
  connect: (store, clock) => node(prefixOf.get(store)!, clock),
});

describe('TieredStore over Redis', () => {
  it('tiered redis consistency defaults to fenced, and the feed state is the subscriber connection’s', async () => {
    const clock = new ManualClock();
    const tier = await node(nextPrefix(), clock);
    try {
      assert.equal(tier.consistency, 'fenced');
      assert.equal(sharedOf.get(tier)!.feedState, 'listening');
    } finally {
      await tier.close();
    }
    assert.equal(sharedOf.get(tier)!.feedState, 'closed');
  });

  twoNodeCases({
    where: 'one Redis', tag: 'tiered redis', iterations: 300, atLeast: 100,
    pair: async (clock) => {
      const prefix = nextPrefix();
      return [await node(prefix, clock), await node(prefix, clock)];
    },
    single: (clock) => node(nextPrefix(), clock),
  });

  it('tiered redis when every subscriber connection is killed then no read returns a version older than the last acknowledged write', async () => {
    const clock = new ManualClock();
    const prefix = nextPrefix();
    const writer = await node(prefix, clock);
    const reader = await node(prefix, clock);
    try {
      const result = await writesAcrossFeedOutage({
        writer, reader, readerShared: sharedOf.get(reader)!, clock,
        interrupt: async () => {
          const killed = Number(await redisCommand(server.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']));
          assert.ok(killed >= 2, `killed ${killed} subscriber connections`);
        },
        afterRecovery: 30, maxIterations: 10_000, maxMs: 30_000,
      });
      assert.ok(result.hitsAfterRecovery > 0, 'the reader serves local copies again once its feed is back');
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('tiered redis with eventual reads, a subscriber connection that goes silent without closing is replaced, and a session destroyed elsewhere stops being served', async () => {
    const clock = new ManualClock();
    const prefix = nextPrefix();
    const proxy = await stallingProxy(server.port);
    const shared = new RedisStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, clock, commandTimeoutMs: 500 });
    const reader = new TieredStore({ shared, clock, consistency: 'eventual' });
    const other = new RedisStore({ url: server.url, keyPrefix: prefix, clock });
    try {
      await reader.get('warm-up');
      await waitFor('the change feed to listen', 5_000, async () => shared.feedState === 'listening');
      const rec = makeRecord(clock, { userId: 'alice' });
      assert.deepEqual(await reader.set(rec, 0), { ok: true });
      assert.equal(reader.getLocal(rec.key)?.version, 1, 'served locally');
      assert.equal(proxy.stall('psubscribe'), 1, 'the subscriber connection went silent');
      await other.destroy(rec.key); // a logout on another machine, whose report never arrives
      assert.equal(reader.getLocal(rec.key)?.version, 1, 'nothing told the reader yet');
      await waitFor('the silent subscriber connection to be replaced and the copy dropped', HEARTBEAT_MS + 5_000,
        async () => shared.feedState === 'listening' && reader.getLocal(rec.key) === undefined);
      assert.equal(await reader.get(rec.key), null);
    } finally {
      await reader.close();
      await other.close();
      await proxy.close();
    }
  });

  it('tiered redis when its writes fail while Redis is down, sending nothing, then once Redis is back the sessions are served locally again', async () => {
    const down = await startRedis({ appendonly: 'always' });
    const clock = new ManualClock();
    const shared = new RedisStore({ url: down.url, keyPrefix: nextPrefix(), clock, commandTimeoutMs: 300 });
    const tier = new TieredStore({ shared, clock });
    try {
      await tier.get('warm-up');
      await waitFor('the change feed to listen', 5_000, async () => shared.feedState === 'listening');
      const rec = makeRecord(clock, { userId: 'alice' });
      assert.deepEqual(await tier.set(rec, 0), { ok: true });
      await down.stop();
      await waitFor('the store to see Redis gone', 5_000, async () => shared.feedState === 'connecting');
      for (const write of [() => tier.set({ ...rec, version: 2, data: '{"n":2}' }, 1), () => tier.touch(rec.key, rec.expiresAt + 1_000, clock.now(), 1), () => tier.destroy(rec.key)]) {
        await assert.rejects(write(), (err: Error & { code?: string }) => err.code === 'STORE_UNAVAILABLE' && wasUnsent(err));
      }
      await down.restart();
      await waitFor('the tier reading again', 10_000, () => tier.get(rec.key).then((r) => r?.version === 1, () => false));
      await waitFor('the change feed to listen again', 5_000, async () => shared.feedState === 'listening');
      assert.equal((await tier.get(rec.key))?.version, 1);
      const hits = tier.stats().hits;
      assert.equal((await tier.get(rec.key))?.version, 1);
      assert.equal(tier.stats().hits, hits + 1, 'writes that were never sent leave nothing in doubt');
    } finally {
      await tier.close();
      await down.dispose();
    }
  });

  it('tiered redis when a write of its own times out and reaches Redis later then the tier serves what it left, never the copy from before', async () => {
    const clock = new ManualClock();
    const prefix = nextPrefix();
    // This machine's path to Redis can hold what it sends; another machine reads Redis directly.
    const proxy = await delayingProxy(server.port);
    const shared = new RedisStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, clock, commandTimeoutMs: 300 });
    const tier = new TieredStore({ shared, clock });
    const other = new RedisStore({ url: server.url, keyPrefix: prefix, clock });
    try {
      await tier.get('warm-up');
      // Redis holds the destroy script then, so the held one runs when it arrives (not NOSCRIPT).
      await tier.destroy('warm-up');
      await waitFor('the change feed to listen', 5_000, async () => shared.feedState === 'listening');
      for (const write of ['set', 'destroy'] as const) {
        const rec = makeRecord(clock, { userId: 'alice' });
        assert.deepEqual(await tier.set(rec, 0), { ok: true });
        assert.equal((await tier.get(rec.key))?.version, 1);
        proxy.setDelay(3_000);
        const next = { ...rec, version: 2, data: '{"n":2}' };
        await assert.rejects(write === 'set' ? tier.set(next, 1) : tier.destroy(rec.key), { code: 'STORE_UNAVAILABLE' }, `${write}: the caller gave up`);
        proxy.setDelay(0);
        // Read again (on a new connection) while the write is still held: the version before it.
        await waitFor(`${write}: the tier reading again`, 10_000, () => tier.get(rec.key).then((r) => r?.version === 1, () => false));
        await waitFor(`${write}: the held write reaching Redis`, 10_000, async () => {
          const now = await other.get(rec.key);
          return write === 'set' ? now?.version === 2 : now === null;
        });
        // Redis never sends this machine what it published itself, so only the tier can know.
        const read = await tier.get(rec.key);
        if (write === 'set') {
          assert.equal(read?.data, next.data, 'the version the late write left');
          const hits = tier.stats().hits;
          assert.equal((await tier.get(rec.key))?.version, 2);
          assert.equal(tier.stats().hits, hits + 1, 'served locally again once Redis showed the write there');
        } else {
          assert.equal(read, null, 'the session the late destroy ended');
        }
      }
    } finally {
      await tier.close();
      await other.close();
      await proxy.close();
    }
  });
});
