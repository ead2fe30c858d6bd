/** TieredStore over a real RedisStore: the conformance suite, two nodes with fenced reads, shared fences, and a killed subscriber connection. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TieredStore } from '../../src/stores/tiered/index.js';
import type { TieredConsistency } from '../../src/stores/tiered/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { runStoreSuite, ManualClock } from '../../src/testing/store-suite.js';
import type { Clock, SessionStore } from '../../src/core/store.js';
import { startRedis, redisCommand, waitFor } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { alternateWrites, concurrentHits, writesAcrossFeedOutage } from '../helpers/tiered.js';

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
  lacks: { sweep: true },
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

  it('two tiers over one Redis when one acknowledges a write then the other’s next read returns it', async () => {
    const clock = new ManualClock();
    const prefix = nextPrefix();
    const a = await node(prefix, clock);
    const b = await node(prefix, clock);
    try {
      await alternateWrites(a, b, clock, 300);
      for (const t of [a, b]) {
        const s = t.stats();
        assert.ok(s.hits >= 100, `copies were served locally (hits ${s.hits})`);
        assert.ok(s.invalidations >= 100, `and dropped when the other node wrote (invalidations ${s.invalidations})`);
        assert.ok(s.fences >= s.hits, 'every hit waited for a fence');
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('tiered redis when 200 reads of cached records run at once then they share two fences', async () => {
    const clock = new ManualClock();
    const tier = await node(nextPrefix(), clock);
    try {
      const { hits, fences } = await concurrentHits(tier, clock, 200);
      assert.equal(hits, 200);
      assert.equal(fences, 2, 'one for the first read, one for all that began after it was sent');
    } finally {
      await tier.close();
    }
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
});
