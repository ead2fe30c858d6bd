/** TieredStore and stamped change reports over Redis, PostgreSQL, SQLite and memory: a node keeps its own writes, others' changes still invalidate, and the wire formats hold any key. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Redis } from 'ioredis';
import { TieredStore } from '../../src/stores/tiered/index.js';
import type { TieredConsistency } from '../../src/stores/tiered/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { parseChange as parseRedis } from '../../src/stores/redis/feed.js';
import { parseChange as parsePostgres } from '../../src/stores/postgres/feed.js';
import { ManualClock, makeKey, makeRecord } from '../../src/testing/store-suite.js';
import { stampOf } from '../../src/core/store.js';
import type { Clock, SessionStore } from '../../src/core/store.js';
import { startRedis, waitFor } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';
import { othersChangesInvalidate, ownWritesStayLocal } from '../helpers/tiered.js';
import type { StampNode } from '../helpers/tiered.js';

/** Keys no separator choice may break: spaces, the format's own markers and separators, text beyond ASCII. */
const AWKWARD = ['a b c', '=1:2 x', '!x', '=', '!', ' ', ':', '=12:34', '=12:34 ', 'ключ 名前 🛒 =!: ', 'user:' + makeKey()];
const CONSISTENCIES: readonly TieredConsistency[] = ['fenced', 'eventual'];

let redis: RedisServer;
let postgres: PostgresServer;
const temps: TempSqliteFile[] = [];
let counter = 0;

before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres({ fast: true })]);
});
after(async () => {
  await Promise.all([redis?.dispose(), postgres?.dispose()]);
  for (const t of temps) await t.remove();
});

/** Opens two nodes ("processes") on one new backend, each with its own client behind its own tier. */
type Backend = (clock: Clock, consistency: TieredConsistency) => Promise<[StampNode, StampNode]>;

const backends: Record<string, Backend> = {
  redis: async (clock, consistency) => {
    const keyPrefix = `stamps${process.pid}-${++counter}:`;
    const open = async (): Promise<StampNode> => {
      const shared = new RedisStore({ url: redis.url, keyPrefix, clock });
      const tier = new TieredStore({ shared, clock, consistency });
      await waitFor('the change feed to listen', 5_000, async () => shared.feedState === 'listening');
      return { tier, shared };
    };
    return [await open(), await open()];
  },
  postgres: async (clock, consistency) => {
    const tableName = `stamps_${++counter}`;
    const open = async (): Promise<StampNode> => {
      const shared = new PostgresStore({ connectionString: postgres.url, tableName, clock, sweepIntervalMs: 0 });
      await shared.ready();
      const tier = new TieredStore({ shared, clock, consistency });
      assert.equal(await shared.feedListening(), true);
      return { tier, shared };
    };
    return [await open(), await open()];
  },
  sqlite: async (clock, consistency) => {
    const file = await tempSqliteFile();
    temps.push(file);
    const open = (): StampNode => {
      const shared = new SqliteStore({ path: file.path, clock, sweepIntervalMs: 0, changePollMs: 20 });
      return { tier: new TieredStore({ shared, clock, consistency }), shared };
    };
    return [open(), open()];
  },
};

for (const [name, open] of Object.entries(backends)) {
  describe(`TieredStore over ${name} with stamped reports`, () => {
    for (const consistency of CONSISTENCIES) {
      it(`tiered ${name} (${consistency}) when a node acknowledged its own set or touch then its next read is a local hit of that state`, async () => {
        const clock = new ManualClock();
        const [a, b] = await open(clock, consistency);
        try {
          await ownWritesStayLocal(a, clock);
        } finally {
          await a.tier.close();
          await b.tier.close();
        }
      });

      it(`tiered ${name} (${consistency}) when another node reads, touches then destroys a session then the first node's copy follows each change`, async () => {
        const clock = new ManualClock();
        const [a, b] = await open(clock, consistency);
        try {
          await othersChangesInvalidate(a, b, clock);
        } finally {
          await a.tier.close();
          await b.tier.close();
        }
      });
    }
  });
}

describe('TieredStore over memory with stamped reports', () => {
  it('tiered memory when a node writes then it keeps its copy, and another node’s touch and destroy still invalidate it', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const node = (): StampNode => ({ tier: new TieredStore({ shared: memory, clock, closeShared: false }), shared: memory });
    const [a, b] = [node(), node()];
    try {
      await ownWritesStayLocal(a, clock);
      await othersChangesInvalidate(a, b, clock);
    } finally {
      await a.tier.close();
      await b.tier.close();
      await memory.close();
    }
  });
});

/**
 * A client of `memory` whose feed holds reports until `deliver()`: a feed that lags behind the
 * acknowledgements, as pub/sub and LISTEN can, on their own connection.
 */
function lagging(memory: MemoryStore): { store: SessionStore; deliver(): void } {
  const queue: Array<[string, string | undefined]> = [];
  const listeners = new Set<(key: string, stamp?: string) => void>();
  memory.subscribe((key, stamp) => queue.push([key, stamp]));
  const store: SessionStore = {
    name: 'lagging',
    get: (key) => memory.get(key),
    set: (rec, expected) => memory.set(rec, expected),
    touch: (key, expiresAt, lastSeenAt) => memory.touch(key, expiresAt, lastSeenAt),
    destroy: (key) => memory.destroy(key),
    listByUser: (user) => memory.listByUser(user),
    destroyByUser: (user, options) => memory.destroyByUser(user, options),
    close: async () => {},
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { store, deliver: () => { for (const [key, stamp] of queue.splice(0)) for (const l of listeners) l(key, stamp); } };
}

describe('TieredStore with a lagging feed', () => {
  it('tiered store when the reports of two of its own writes arrive after both were acknowledged then its copy stays', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const feed = lagging(memory);
    const tier = new TieredStore({ shared: feed.store, clock });
    try {
      const rec = makeRecord(clock);
      const v2 = { ...rec, version: 2, data: '"v2"' };
      await tier.set(rec, 0);
      await tier.set(v2, 1);
      const expiresAt = rec.expiresAt + 1_000;
      assert.equal(await tier.touch(rec.key, expiresAt, rec.lastSeenAt + 1), true);
      feed.deliver();
      assert.deepEqual(await tier.get(rec.key), { ...v2, expiresAt, lastSeenAt: rec.lastSeenAt + 1 });
      assert.deepEqual({ hits: tier.stats().hits, misses: tier.stats().misses, invalidations: tier.stats().invalidations },
        { hits: 1, misses: 0, invalidations: 0 });
    } finally {
      await tier.close();
      await memory.close();
    }
  });

  it('tiered store when another node’s write is reported behind the echo of its own then the copy is dropped', async () => {
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock, sweepIntervalMs: 0 });
    const feedA = lagging(memory);
    const a = new TieredStore({ shared: feedA.store, clock });
    const b = new TieredStore({ shared: lagging(memory).store, clock });
    try {
      const rec = makeRecord(clock);
      await a.set(rec, 0);
      const theirs = { ...rec, version: 2, data: '"theirs"' };
      assert.deepEqual(await b.set(theirs, 1), { ok: true });
      assert.equal((await a.get(rec.key))?.version, 1, 'stale until the feed delivers, as with eventual consistency');
      feedA.deliver();
      assert.deepEqual(await a.get(rec.key), theirs);
      assert.equal(a.stats().invalidations, 1);
      // The same version with another deadline (another node's touch) is another state, too.
      const expiresAt = rec.expiresAt + 2_000;
      assert.equal(await b.touch(rec.key, expiresAt, rec.lastSeenAt + 2), true);
      feedA.deliver();
      assert.equal(stampOf((await a.get(rec.key))!), stampOf({ version: 2, expiresAt }));
      assert.equal(a.stats().invalidations, 2);
    } finally {
      await a.close();
      await b.close();
      await memory.close();
    }
  });
});

describe('change report wire formats', () => {
  for (const [name, parse] of [['redis', parseRedis], ['postgres', parsePostgres]] as const) {
    it(`${name} change reports when keys hold spaces, markers, separators or unicode then parse back to the key and stamp`, () => {
      for (const key of AWKWARD) {
        assert.deepEqual(parse(`=3:1700000000123 ${key}`), [key, '3:1700000000123'], JSON.stringify(key));
        assert.deepEqual(parse(`!${key}`), [key, undefined], JSON.stringify(key));
      }
      // A bare key, as an older release sent it, is a report without a stamp.
      assert.deepEqual(parse('AbC-_09'), ['AbC-_09', undefined]);
      assert.deepEqual(parse('user:AbC'), ['user:AbC', undefined]);
    });
  }

  it('redis change messages when a session is set, touched and destroyed then read =<version>:<expiresAt> <key> and !<key>', async () => {
    const clock = new ManualClock();
    const keyPrefix = `wire${process.pid}-${++counter}:`;
    const store = new RedisStore({ url: redis.url, keyPrefix, clock });
    const sub = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    sub.on('error', () => {});
    const messages: string[] = [];
    const channels = new Set<string>();
    sub.on('pmessage', (_pattern: string, channel: string, message: string) => {
      channels.add(channel);
      messages.push(message);
    });
    try {
      await sub.connect();
      await sub.psubscribe(`${keyPrefix}changes:*`);
      const key = 'ключ =1:2 !';
      const rec = makeRecord(clock, { key, version: 1 });
      await store.set(rec, 0);
      await store.set({ ...rec, version: 2 }, 1);
      await store.touch(key, rec.expiresAt + 1, rec.lastSeenAt + 1);
      await store.destroy(key);
      const want = [`=1:${rec.expiresAt} ${key}`, `=2:${rec.expiresAt} ${key}`, `=2:${rec.expiresAt + 1} ${key}`, `!${key}`];
      await waitFor('four change messages', 5_000, async () => messages.length >= want.length);
      assert.deepEqual(messages, want);
      // All on the store's own channel: <prefix>changes:<seven alphanumerics>.
      assert.equal(channels.size, 1);
      assert.match([...channels][0]!, new RegExp(`^${keyPrefix}changes:[0-9A-Za-z]{7}$`));
    } finally {
      sub.disconnect();
      await store.close();
    }
  });

  it('postgres notifications when a session is set, touched and destroyed then read =<version>:<expiresAt> <key> and !<key>', async () => {
    const clock = new ManualClock();
    const tableName = `wire_${++counter}`;
    const store = new PostgresStore({ connectionString: postgres.url, tableName, clock, sweepIntervalMs: 0 });
    const client = new pg.Client({ connectionString: postgres.url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => {});
    const payloads: string[] = [];
    client.on('notification', (msg) => { if (msg.payload !== undefined) payloads.push(msg.payload); });
    try {
      await store.ready();
      await client.connect();
      await client.query(`LISTEN "tether:${tableName}"`);
      const key = 'ключ =1:2 !';
      const rec = makeRecord(clock, { key, userId: 'wire-user' });
      await store.set(rec, 0);
      await store.set({ ...rec, version: 2 }, 1);
      await store.touch(key, rec.expiresAt + 1, rec.lastSeenAt + 1);
      await store.destroyByUser('wire-user');
      const want = [`=1:${rec.expiresAt} ${key}`, `=2:${rec.expiresAt} ${key}`, `=2:${rec.expiresAt + 1} ${key}`, `!${key}`];
      await waitFor('four notifications', 5_000, async () => payloads.length >= want.length);
      assert.deepEqual(payloads, want);
    } finally {
      await client.end().catch(() => {});
      await store.close();
    }
  });
});
