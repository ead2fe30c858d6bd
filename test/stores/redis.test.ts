/** RedisStore against a real redis-server: the conformance suite, key layout, the eviction guard, crash and outage recovery. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStore, STORE_MARKER, redisClientOptions } from '../../src/stores/redis/index.js';
import type { RedisStoreOptions } from '../../src/stores/redis/index.js';
import { plainSender } from '../../src/stores/redis/options.js';
import { escapeGlob } from '../../src/stores/redis/feed.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import type { StoreSuiteFactory } from '../../src/testing/store-suite.js';
import type { Clock, SessionRecord, SessionStore } from '../../src/core/store.js';
import { startRedis, redisCommand, waitFor } from '../helpers/redis.js';
import { delayingProxy, movableProxy } from '../helpers/net.js';
import { assertMemoryFlatUnderWrites } from '../helpers/heap.js';
import { sweepsReportEachOnce } from '../helpers/report-expired.js';
import { createTether } from '../../src/core/engine.js';
import type { Tether } from '../../src/core/engine.js';
import type { Session, SessionData } from '../../src/core/session.js';
import { sharedLimiter } from '../../src/cluster/limits.js';
import { hashId } from '../../src/core/ids.js';
import { cookiePair, sleep, trip, view, SECRET_A } from '../unit/support.js';
import { clearOfWindowBoundary } from '../helpers/time.js';
import type { RedisServer } from '../helpers/redis.js';

let server: RedisServer;
let prefixes = 0;
const nextPrefix = (): string => `t${process.pid}-${++prefixes}:`;
const prefixOf = new WeakMap<SessionStore, string>();
/** Clients the tests built and passed in: a store never closes a client it was given. */
const callerClients: Redis[] = [];
/** A client of the caller's that maps RESP3 replies to their own shapes (maps as objects), closed after the file. */
function resp3MappedClient(): Redis {
  const client = new Redis(server.url, { ...redisClientOptions(), replyMapping: 'resp3' });
  callerClients.push(client);
  return client;
}

before(async () => {
  server = await startRedis();
});
after(async () => {
  for (const client of callerClients) client.disconnect();
  await server?.dispose();
});

/**
 * A suite's `open` (a store on a new key prefix, its change feed attached, as a long-lived process's is
 * by the time it serves) and `connect` (another store on that prefix, built by `again`).
 */
function onNewPrefix(build: (keyPrefix: string, clock: Clock) => RedisStore, again = build): Pick<StoreSuiteFactory, 'open' | 'connect'> {
  return {
    open: async (clock) => {
      const keyPrefix = nextPrefix();
      const store = build(keyPrefix, clock);
      prefixOf.set(store, keyPrefix);
      store.subscribe(() => {})();
      return store;
    },
    connect: async (store, clock) => again(prefixOf.get(store)!, clock),
  };
}
/** Builds a store with its own client to the test server. */
const byUrl = (options: Partial<RedisStoreOptions> = {}) =>
  (keyPrefix: string, clock: Clock): RedisStore => new RedisStore({ url: server.url, keyPrefix, clock, ...options });
const everyCase = { lacks: { sweep: true }, limits: true, destroysAll: true, regenerates: true } as const;

runStoreSuite({ name: 'redis', ...everyCase, ...onNewPrefix(byUrl()) });

// The same cases with reports of sessions that time out (a hash of those due, claimed by a sweep).
runStoreSuite({
  name: 'redis with reportExpired',
  limits: true,
  destroysAll: true,
  reportsSwept: true,
  ...onNewPrefix(byUrl({ reportExpired: true, sweepIntervalMs: 0 })),
});

// The same cases through a client of the caller's that maps RESP3 replies to their own shapes (maps as
// objects): what the store reads must not depend on how a caller set up the client.
runStoreSuite({
  name: 'redis through a caller client with replyMapping resp3',
  ...everyCase,
  ...onNewPrefix((keyPrefix, clock) => new RedisStore({ client: resp3MappedClient(), keyPrefix, clock }), byUrl()),
});

/** Resolves with the rejection's code and how long the call took. */
async function timedFailure(call: () => Promise<unknown>): Promise<{ code: string | undefined; ms: number }> {
  const start = Date.now();
  try {
    await call();
  } catch (err) {
    return { code: (err as { code?: string }).code, ms: Date.now() - start };
  }
  return { code: 'RESOLVED', ms: Date.now() - start };
}

describe('RedisStore reportExpired', () => {
  const reportingPair = (): [RedisStore, RedisStore, string] => {
    const keyPrefix = nextPrefix();
    return [new RedisStore({ url: server.url, keyPrefix, reportExpired: true, sweepIntervalMs: 0 }),
      new RedisStore({ url: server.url, keyPrefix, reportExpired: true, sweepIntervalMs: 0 }), keyPrefix];
  };

  it('redis store with reportExpired when sessions time out in Redis then two processes sweeping at once report each once, with its owner; logged-out ones, ended ones, renewal pointers and user contexts never', async () => {
    const [a, b, prefix] = reportingPair();
    await sweepsReportEachOnce(a, b, 30, async () => Number(await redisCommand(server.port, ['HLEN', `${prefix}due`])));
  });

  it('engine over a RedisStore with reportExpired when a session times out unseen then the sweep publishes expired with reason swept and its owner', async () => {
    const [store] = reportingPair();
    const tether = createTether({ secrets: [SECRET_A], store, idleTimeoutMs: 1_500, expiryGraceMs: 0 });
    const events: Array<{ reason?: string; userId: string | null }> = [];
    tether.events.on('expired', (m: { reason?: string; userId: string | null }) => void events.push({ reason: m.reason, userId: m.userId }));
    try {
      await trip(tether, undefined, (s) => s.login('ada'));
      await trip(tether, undefined, (s) => s.set('cart', ['tea']));
      await sleep(1_800);
      assert.equal(await store.sweep!(), 2);
      assert.deepEqual(events.sort((x, y) => String(x.userId).localeCompare(String(y.userId))), [{ reason: 'swept', userId: 'ada' }, { reason: 'swept', userId: null }]);
      assert.equal(tether.stats().swept, 2);
    } finally {
      await tether.close();
    }
  });

  it('redis store with reportExpired when sweepIntervalMs is negative then OPTIONS_INVALID, before any connection', () => {
    assert.throws(() => new RedisStore({ url: server.url, reportExpired: true, sweepIntervalMs: -1 }), { code: 'OPTIONS_INVALID' });
  });
});

describe('RedisStore own cases', () => {
  it('redis store when given an unknown option, a bad URL or two locations then throws OPTIONS_INVALID', () => {
    assert.throws(() => new RedisStore({ urll: server.url } as never), { code: 'OPTIONS_INVALID', message: /options\.urll is not an option/ });
    assert.throws(() => new RedisStore({ url: 'http://x' }), { code: 'OPTIONS_INVALID', message: /redis:\/\// });
    assert.throws(() => new RedisStore({ url: server.url, cluster: { nodes: [{ host: '127.0.0.1', port: 1 }] } }),
      { code: 'OPTIONS_INVALID', message: /give only one/ });
    assert.throws(() => new RedisStore({ commandTimeoutMs: 0 }), { code: 'OPTIONS_INVALID', message: /commandTimeoutMs/ });
    assert.throws(() => new RedisStore({ commandTimeoutMs: 2_147_483_648 }), { code: 'OPTIONS_INVALID', message: /commandTimeoutMs must be .*at most 2147483647/ });
    assert.throws(() => new RedisStore({ connectTimeoutMs: 2_147_483_648 }), { code: 'OPTIONS_INVALID', message: /connectTimeoutMs must be .*at most 2147483647/ });
  });

  it('redis store when Redis refuses the URL\'s password then the STORE_UNAVAILABLE message says so in Redis\'s words, never quoting the password', async (t) => {
    const server = await startRedis();
    t.after(() => server.dispose());
    assert.equal(await redisCommand(server.port, ['CONFIG', 'SET', 'requirepass', 'Right-pass-0123456789']), 'OK');
    for (const auth of [':Wrong-pass-SECRET@', '']) {
      const store = new RedisStore({ url: `redis://${auth}127.0.0.1:${server.port}`, commandTimeoutMs: 500 });
      try {
        await assert.rejects(store.get('k'), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'STORE_UNAVAILABLE');
          assert.match(err.message, /Redis refused the credentials \((WRONGPASS|NOAUTH)[^)]*\); check the URL's user and password/);
          assert.doesNotMatch(err.message, /SECRET/);
          return true;
        });
      } finally {
        await store.close();
      }
    }
    const right = new RedisStore({ url: `redis://:Right-pass-0123456789@127.0.0.1:${server.port}` });
    assert.equal(await right.get('k'), null);
    await right.close();
  });

  it('redis store when given its own ioredis client then uses it and leaves it open on close', async () => {
    const client = new Redis(server.url, redisClientOptions());
    const store = new RedisStore({ client, keyPrefix: nextPrefix() });
    try {
      const rec = makeRecord(new ManualClock());
      assert.deepEqual(await store.set(rec, 0), { ok: true });
      assert.equal((await store.get(rec.key))?.version, 1);
      await store.close();
      assert.equal(await client.ping(), 'PONG');
      await assert.rejects(store.get(rec.key), { code: 'STORE_CLOSED' });
    } finally {
      client.disconnect();
    }
  });

  it('redis store when many calls start in one turn of the event loop then Redis receives them in one read, and each gets its own answer', async () => {
    const store = new RedisStore({ url: server.url, keyPrefix: nextPrefix() });
    try {
      const clock = new ManualClock();
      const records = Array.from({ length: 40 }, () => makeRecord(clock));
      for (const rec of records) assert.deepEqual(await store.set(rec, 0), { ok: true });
      const readsProcessed = async (): Promise<number> =>
        Number(/total_reads_processed:(\d+)/.exec(await redisCommand(server.port, ['INFO', 'stats']))![1]);
      const before = await readsProcessed();
      const got = await Promise.all(records.map((rec) => store.get(rec.key)));
      const reads = await readsProcessed() - before;
      assert.deepEqual(got.map((r) => r?.key), records.map((r) => r.key));
      // One read for the 40 GETs, one for the INFO connection's command (its connect is not a read).
      assert.ok(reads <= 3, `Redis processed ${reads} reads for 40 GETs sent in one turn`);
    } finally {
      await store.close();
    }
  });

  it('redis store command sender when given mixed strings and numbers then Redis receives what the client methods send, and replies arrive as text', async () => {
    const client = new Redis(server.url, redisClientOptions());
    try {
      await client.connect();
      const send = plainSender(client);
      assert.ok(send, 'a plain client gets a sender');
      const key = `${nextPrefix()}k`;
      // The script answers with every key and argument it was given, as Redis received them.
      const echo = "local out = {} for _, v in ipairs(KEYS) do out[#out + 1] = v end for _, v in ipairs(ARGV) do out[#out + 1] = v end return out";
      const args = [key, 0, -12, 1.5, 2 ** 53 - 1, '', 'é ☃ \r\n $3', '{"a":[1,2]}'];
      const viaMethod = await client.eval(echo, 1, ...args);
      const sha = await client.script('LOAD', echo) as string;
      assert.deepEqual(await send('evalsha', [sha, 1, ...args]), viaMethod);
      assert.deepEqual(viaMethod, [key, '0', '-12', '1.5', '9007199254740991', '', 'é ☃ \r\n $3', '{"a":[1,2]}']);
      await client.set(key, 'välue');
      assert.equal(await send('get', [key]), 'välue');
      assert.deepEqual(await send('mget', [key, `${key}-absent`]), ['välue', null]);
      await assert.rejects(send('evalsha', ['0'.repeat(40), 0]), /NOSCRIPT/);
      // Where ioredis itself would rewrite arguments (its own keyPrefix), the store keeps the client's methods.
      const prefixed = new Redis(server.url, { ...redisClientOptions(), keyPrefix: 'p:' });
      assert.equal(plainSender(prefixed), undefined);
      prefixed.disconnect();
    } finally {
      client.disconnect();
    }
  });

  it('redis stores when given different key prefixes then never see each other’s sessions, users or changes', async () => {
    const clock = new ManualClock();
    const a = new RedisStore({ url: server.url, keyPrefix: nextPrefix(), clock });
    const b = new RedisStore({ url: server.url, keyPrefix: nextPrefix(), clock });
    const seenByB: string[] = [];
    b.subscribe((key) => seenByB.push(key));
    const rec = makeRecord(clock, { userId: 'shared-user' });
    await a.set(rec, 0);
    assert.equal(await b.get(rec.key), null);
    assert.deepEqual(await b.listByUser('shared-user'), []);
    assert.equal(await b.destroyByUser('shared-user'), 0);
    assert.deepEqual(await b.set({ ...rec, version: 2 }, 1), { ok: false, current: 0 });
    assert.equal((await a.get(rec.key))?.version, 1);
    await a.destroy(rec.key);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seenByB, []);
    await a.close();
    await b.close();
  });

  it('redis change feed when a listener throws then the others still hear the change, and a TETHER_CHANGE_LISTENER_THREW warning names the error', async () => {
    const clock = new ManualClock();
    const keyPrefix = nextPrefix();
    const a = new RedisStore({ url: server.url, keyPrefix, clock });
    const b = new RedisStore({ url: server.url, keyPrefix, clock });
    const warnings: Array<Error & { code?: string }> = [];
    const onWarning = (w: Error & { code?: string }): void => void warnings.push(w);
    process.on('warning', onWarning);
    let attached = 0;
    const heard: string[] = [];
    const stopThrowing = a.subscribe(() => { throw new Error('listener bug'); }, { onResync: () => { attached++; } });
    const stop = a.subscribe((key) => heard.push(key));
    try {
      await waitFor('the change feed to attach', 5_000, async () => attached >= 1);
      const rec = makeRecord(clock);
      await b.set(rec, 0);
      await waitFor('the change over Redis', 5_000, async () => heard.includes(rec.key));
      await waitFor('the warning', 5_000, async () => warnings.some((w) => w.code === 'TETHER_CHANGE_LISTENER_THREW'));
      const w = warnings.find((x) => x.code === 'TETHER_CHANGE_LISTENER_THREW')!;
      assert.match(w.message, /listener bug/);
      assert.equal(w.name, 'TetherWarning');
    } finally {
      process.off('warning', onWarning);
      stopThrowing();
      stop();
      await a.close();
      await b.close();
    }
  });

  it('redis change feed when this store and another write then each listener hears every change once: the other’s over Redis, its own as acknowledged', async () => {
    const clock = new ManualClock();
    const keyPrefix = nextPrefix();
    const a = new RedisStore({ url: server.url, keyPrefix, clock });
    const b = new RedisStore({ url: server.url, keyPrefix, clock });
    const heard: string[] = [];
    let resyncs = 0;
    const stop = a.subscribe((key, stamp) => heard.push(`${key} ${stamp ?? '-'}`), { onResync: () => { resyncs++; } });
    try {
      await waitFor('the change feed to attach', 5_000, async () => resyncs >= 1);
      const own = makeRecord(clock, { key: 'own', userId: 'feed-user' });
      // Each of this store's own changes is heard by the time its call returns.
      await a.set(own, 0);
      assert.deepEqual(heard, [`own 1:${own.expiresAt}`]);
      await a.touch('own', own.expiresAt + 5, own.lastSeenAt + 5);
      assert.deepEqual(heard.at(-1), `own 1:${own.expiresAt + 5}`);
      const next = makeRecord(clock, { key: 'own-next', userId: 'feed-user' });
      assert.ok((await a.regenerate!({ ...own, version: 2, expiresAt: clock.now() - 1, absoluteExpiresAt: clock.now() - 1 }, 1, next)).ok);
      assert.deepEqual(heard.slice(-2), [`own 2:${clock.now() - 1}`, `own-next 1:${next.expiresAt}`]);
      assert.equal(await a.destroyByUser('feed-user'), 1);
      assert.deepEqual(heard.at(-1), 'own-next -');
      await a.destroy('gone');
      assert.deepEqual(heard.at(-1), 'gone -');
      // The other store's changes arrive over Redis.
      const theirs = makeRecord(clock, { key: 'theirs' });
      await b.set(theirs, 0);
      await waitFor('the other store’s change', 5_000, async () => heard.includes(`theirs 1:${theirs.expiresAt}`));
      // Nothing came twice: Redis did not send this store its own messages back.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(heard.length, new Set(heard).size, heard.join(' | '));
      assert.equal(heard.length, 7, heard.join(' | '));
      // A conflict publishes nothing, and is heard by nobody.
      assert.equal((await a.set({ ...theirs, version: 6 }, 5)).ok, false);
      assert.equal(heard.length, 7);
    } finally {
      stop();
      await a.close();
      await b.close();
    }
  });

  it('redis change feed when stores with any other tag publish then it hears each message once, and never its own store’s', async () => {
    const clock = new ManualClock();
    const keyPrefix = `${nextPrefix()}[*?\\]`;
    const store = new RedisStore({ url: server.url, keyPrefix, clock });
    const raw = new Redis(server.url);
    const spy = new Redis(server.url);
    const heard: string[] = [];
    let resyncs = 0;
    const stop = store.subscribe((key) => heard.push(key), { onResync: () => { resyncs++; } });
    try {
      await waitFor('the change feed to attach', 5_000, async () => resyncs >= 1);
      // The store's own channel, as a spy on every channel of the prefix sees it.
      const channels: string[] = [];
      spy.on('pmessage', (_p: string, channel: string) => channels.push(channel));
      await spy.psubscribe(`${escapeGlob(keyPrefix)}changes:*`);
      await store.set(makeRecord(clock, { key: 'probe' }), 0);
      await waitFor('the spy to see the store’s channel', 5_000, async () => channels.length > 0);
      const base = `${keyPrefix}changes:`;
      const tag = channels[0]!.slice(base.length);
      assert.match(tag, /^[0-9A-Za-z]{7}$/);
      heard.length = 0;
      // Every tag that differs from the store's at one position, and one that differs everywhere.
      const other = (c: string): string => (c === 'z' ? 'y' : 'z');
      const tags = [...tag].map((c, i) => tag.slice(0, i) + other(c) + tag.slice(i + 1));
      tags.push([...tag].map(other).join(''));
      for (const [i, t] of tags.entries()) await raw.publish(base + t, `!k${i}`);
      // Channels that only look alike: the store's own, longer or shorter tags, another prefix that begins with this one.
      await raw.publish(base + tag, '!own');
      await raw.publish(base + tag + 'x', '!longer');
      await raw.publish(base + tag.slice(1), '!shorter');
      await raw.publish(`${keyPrefix}changes:xchanges:${tags[0]}`, '!nested');
      await raw.publish(`${keyPrefix}changes`, '!bare');
      await raw.publish(base + 'marker0', '!marker');
      await waitFor('the marker', 5_000, async () => heard.includes('marker'));
      assert.deepEqual(heard, [...tags.map((_t, i) => `k${i}`), 'marker']);
    } finally {
      stop();
      spy.disconnect();
      raw.disconnect();
      await store.close();
    }
  });

  it('redis store when a session is written then keeps one string per session and one sorted set per user, with TTLs', async () => {
    const clock = new ManualClock();
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ url: server.url, keyPrefix, clock });
    const rec = makeRecord(clock, { userId: 'layout-user', expiresAt: clock.now() + 60_000, absoluteExpiresAt: clock.now() + 30_000 });
    await store.set(rec, 0);
    const raw = new Redis(server.url);
    try {
      const keys = (await raw.keys(`${keyPrefix}*`)).sort();
      assert.deepEqual(keys, [`${keyPrefix}s:${rec.key}`, `${keyPrefix}store`, `${keyPrefix}u:layout-user`]);
      assert.equal(await raw.get(`${keyPrefix}store`), STORE_MARKER, 'the marker that says a store writes under this prefix');
      const stored = await raw.get(`${keyPrefix}s:${rec.key}`);
      const ms = (n: number): string => String(n).padStart(16, '0');
      assert.equal(stored, `${ms(1)}${ms(rec.createdAt)}${ms(rec.lastSeenAt)}${ms(rec.expiresAt)}${ms(rec.absoluteExpiresAt)}`
        + `u0000001100000011layout-user${rec.data}`);
      const pttl = await raw.pttl(`${keyPrefix}s:${rec.key}`);
      assert.ok(pttl > 25_000 && pttl <= 30_000, `the session expires at the earlier (absolute) deadline, pttl ${pttl}`);
      assert.equal(await raw.zscore(`${keyPrefix}u:layout-user`, rec.key), String(rec.absoluteExpiresAt));
      assert.ok((await raw.pttl(`${keyPrefix}u:layout-user`)) > pttl, 'the index outlives its sessions');
      await store.destroy(rec.key);
      assert.deepEqual(await raw.keys(`${keyPrefix}*`), [`${keyPrefix}store`], 'destroy leaves neither the hash nor the index entry');
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('redis limiter when it counts then keeps two keys per limiter and key, named by a digest and never the key, each for at most two windows', async () => {
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ url: server.url, keyPrefix });
    const raw = new Redis(server.url);
    try {
      const limiter = store.limiter('signups', 2, 60_000);
      assert.deepEqual([await limiter.take('203.0.113.7'), await limiter.take('203.0.113.7'), await limiter.take('203.0.113.7')], [true, true, false]);
      const keys = await raw.keys(`${keyPrefix}*`);
      assert.equal(keys.length, 1, keys.join(' '));
      assert.match(keys[0]!, new RegExp(`^${keyPrefix}l:signups:\\{[A-Za-z0-9_-]{32}\\}:\\d+$`));
      assert.ok(!keys[0]!.includes('203.0.113.7'));
      assert.equal(await raw.get(keys[0]!), '2', 'a refused take is not counted');
      const pttl = await raw.pttl(keys[0]!);
      assert.ok(pttl > 60_000 && pttl <= 120_000, `kept until the next window ends, pttl ${pttl}`);
      assert.equal(await store.count(), 0, 'limiter keys are not sessions');
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('engines on two processes\' RedisStores under newSessions when one address creates sessions through both then the limit holds once', async () => {
    const keyPrefix = nextPrefix();
    const stores = [new RedisStore({ url: server.url, keyPrefix }), new RedisStore({ url: server.url, keyPrefix })];
    const engines = stores.map((store) => createTether({ secrets: [SECRET_A], store, newSessions: { perAddress: 3 } }));
    try {
      const codes: Array<string | null> = [];
      for (let i = 0; i < 6; i++) {
        const tether = engines[i % 2]!;
        const s = await tether.open({ method: 'POST', header: () => undefined, address: () => '203.0.113.50' });
        s.set('n', i);
        codes.push(await tether.commit(s).then(() => null, (err: { code: string }) => err.code));
      }
      assert.deepEqual(codes, [null, null, null, 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
      assert.equal(await stores[0]!.count(), 3);
    } finally {
      await Promise.all(engines.map((e) => e.close()));
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('engines on RedisStores under newSessions.maxActive when they create, log in and log out then each refuses by the sessions Redis holds, as its last count saw them', async () => {
    const keyPrefix = nextPrefix();
    const stores: RedisStore[] = [];
    const engines: Tether[] = [];
    /** An engine on a RedisStore of its own, once its first count (made when it starts) has landed. */
    const engine = async (): Promise<Tether> => {
      const store = new RedisStore({ url: server.url, keyPrefix });
      const tether = createTether({ secrets: [SECRET_A], store, newSessions: { maxActive: 3, recountMs: 60_000 } });
      stores.push(store);
      engines.push(tether);
      await waitFor('the first count', 5_000, async () => tether.stats().activeSessions !== null);
      return tether;
    };
    const request = async (tether: Tether, cookie: string | undefined, fn: (s: Session<SessionData>) => unknown): Promise<{ code: string | null; cookie?: string }> => {
      const s = await tether.open({ method: 'POST', header: (n) => (n === 'cookie' ? cookie : undefined) });
      await fn(s);
      return tether.commit(s).then((set) => ({ code: null, cookie: set.find((v) => v.startsWith('sid='))?.split(';')[0] }), (err: { code: string }) => ({ code: err.code }));
    };
    const create = (tether: Tether) => request(tether, undefined, (s) => s.set('n', 1));
    try {
      const a = await engine();
      const first = await create(a);
      assert.equal((await create(a)).code, null);
      const b = await engine();
      assert.equal(b.stats().activeSessions, 2, 'b counted the 2 sessions in Redis when it started');
      assert.equal((await create(b)).code, null);
      assert.equal((await create(b)).code, 'TOO_MANY_SESSIONS', 'b: 2 counted and its own 1');
      const login = await request(a, first.cookie, (s) => s.login('alice'));
      assert.equal(login.code, null, 'a login over a stored session is not refused');
      assert.equal(await stores[0]!.count(), 3, 'the record a login ended is not counted');
      const c = await engine();
      assert.equal(c.stats().activeSessions, 3);
      assert.equal((await create(c)).code, 'TOO_MANY_SESSIONS');
      assert.equal((await request(a, login.cookie, (s) => s.destroy())).code, null);
      assert.equal(await stores[0]!.count(), 2, 'limiter and user-index keys are not counted either');
      const d = await engine();
      assert.equal((await create(d)).code, null, 'a fresh count: 2');
      assert.equal((await create(d)).code, 'TOO_MANY_SESSIONS');
    } finally {
      await Promise.all(engines.map((e) => e.close()));
    }
  });

  it('redis store when a write or a regeneration conflicts then the stored value and its TTL stay as they were, and nothing is published', async () => {
    const clock = new ManualClock();
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ url: server.url, keyPrefix, clock, publishChanges: true });
    const raw = new Redis(server.url);
    const sub = new Redis(server.url);
    const heard: string[] = [];
    try {
      await sub.psubscribe(`${keyPrefix}*`);
      sub.on('pmessage', (_p, _c, m: string) => heard.push(m));
      const rec = makeRecord(clock, { userId: 'cas-user', expiresAt: clock.now() + 60_000, absoluteExpiresAt: clock.now() + 30_000 });
      await store.set(rec, 0);
      await store.set({ ...rec, version: 2, data: '{"n":2}' }, 1);
      const skey = `${keyPrefix}s:${rec.key}`;
      const before = await raw.get(skey);
      // Redis delivers a subscriber's messages in the order they were published: once a marker
      // published now has arrived, so has everything published before it.
      const delivered = async (marker: string): Promise<void> => {
        await raw.publish(`${keyPrefix}marker`, marker);
        await waitFor(`the marker ${marker}`, 5_000, async () => heard.includes(marker));
      };
      await delivered('after the writes');
      heard.length = 0;
      const unchanged = async (what: string): Promise<void> => {
        assert.equal(await raw.get(skey), before, `${what}: the stored value is the one it found`);
        const pttl = await raw.pttl(skey);
        assert.ok(pttl > 25_000 && pttl <= 30_000, `${what}: the TTL still ends at the record's earlier deadline, pttl ${pttl}`);
      };
      // A stale writer (expects version 1), a stale regeneration (ends version 1), and a create over a live key.
      assert.deepEqual(await store.set({ ...rec, version: 2, data: '{"stale":true}', expiresAt: clock.now() + 90_000, absoluteExpiresAt: clock.now() + 90_000 }, 1), { ok: false, current: 2 });
      await unchanged('a stale write');
      const fresh = makeRecord(clock, { userId: 'cas-user' });
      assert.deepEqual(await store.regenerate!({ ...rec, version: 2, data: '"x"', expiresAt: clock.now() - 1, absoluteExpiresAt: clock.now() - 1 }, 1, fresh), { ok: false, current: 2 });
      await unchanged('a stale regeneration');
      assert.deepEqual(await store.set({ ...rec, version: 1, expiresAt: clock.now() + 90_000, absoluteExpiresAt: clock.now() + 90_000 }, 0), { ok: false, current: 2 });
      await unchanged('a create over a live record');
      assert.equal(await raw.exists(`${keyPrefix}s:${fresh.key}`), 0, 'the new record of the refused regeneration was not written');
      assert.deepEqual(await raw.zrange(`${keyPrefix}u:cas-user`, '0', '-1'), [rec.key], 'the index is as it was');
      await delivered('after the refusals');
      assert.deepEqual(heard, ['after the refusals'], 'a refused write reports no change');
      // A value that is not a record (here too short to hold a header) is left as it is, and reads as no session.
      const other = `${keyPrefix}s:${makeRecord(clock).key}`;
      await raw.set(other, 'not a session', 'PX', 45_000);
      const key = other.slice(`${keyPrefix}s:`.length);
      assert.deepEqual(await store.set({ ...makeRecord(clock), key, version: 4 }, 3), { ok: false, current: 0 });
      assert.equal(await raw.get(other), 'not a session');
      assert.equal(await store.get(key), null);
    } finally {
      sub.disconnect();
      raw.disconnect();
      await store.close();
    }
  });

  it('redis store when a login regenerates a session then the old record and its index entry go in the same step', async () => {
    const keyPrefix = nextPrefix();
    const store = new RedisStore({ url: server.url, keyPrefix });
    const tether = createTether({ secrets: [SECRET_A], store, production: false });
    const raw = new Redis(server.url);
    try {
      const first = await trip(tether, undefined, (s) => s.login('regen-user'));
      const again = await trip(tether, first.cookie, (s) => s.login('regen-user'));
      assert.notEqual(again.session.id, first.session.id);
      assert.deepEqual(await raw.zrange(`${keyPrefix}u:regen-user`, '0', '-1'), [hashId(again.session.id!)], 'the index names the new record only');
      assert.deepEqual(await raw.keys(`${keyPrefix}s:*`), [`${keyPrefix}s:${hashId(again.session.id!)}`], 'only the new record is stored');
      assert.equal((await tether.listUserSessions('regen-user')).length, 1);
    } finally {
      raw.disconnect();
      await tether.close();
    }
  });

  it('redis store when a login is remembered then the record and its user index live for the remembered timeouts, and a plain one for the engine\'s', async () => {
    const keyPrefix = nextPrefix();
    const tether = createTether({ secrets: [SECRET_A], store: new RedisStore({ url: server.url, keyPrefix }), production: false });
    const raw = new Redis(server.url);
    const DAY = 86_400_000;
    try {
      const kept = await trip(tether, undefined, (s) => {
        s.login('remembered-user');
        s.remember();
      });
      const plain = await trip(tether, undefined, (s) => s.login('remembered-user'));
      const keptTtl = await raw.pttl(`${keyPrefix}s:${hashId(kept.session.id!)}`);
      const plainTtl = await raw.pttl(`${keyPrefix}s:${hashId(plain.session.id!)}`);
      assert.ok(keptTtl > 14 * DAY - 60_000 && keptTtl <= 14 * DAY + 60_000, `remembered: 14 days idle (+ grace), pttl ${keptTtl}`);
      assert.ok(plainTtl > 30 * 60_000 && plainTtl <= 31 * 60_000, `plain: 30 minutes idle (+ grace), pttl ${plainTtl}`);
      assert.ok(await raw.pttl(`${keyPrefix}u:remembered-user`) >= keptTtl, 'the user index outlives the remembered session');
      // A touch keeps the remembered lifetime.
      await trip(tether, kept.cookie, (s) => s.touch(), 'GET');
      assert.ok(await raw.pttl(`${keyPrefix}s:${hashId(kept.session.id!)}`) > 14 * DAY - 60_000);
      assert.deepEqual((await tether.listUserSessions('remembered-user')).map((x) => x.remembered).sort(), [false, true]);
    } finally {
      raw.disconnect();
      await tether.close();
    }
  });

  it('redis store when a login regenerates then it takes one GET and one script, and another process\'s write meanwhile is replayed into the new record', async () => {
    const keyPrefix = nextPrefix();
    const here = createTether({ secrets: [SECRET_A], store: new RedisStore({ url: server.url, keyPrefix }), production: false });
    const there = createTether({ secrets: [SECRET_A], store: new RedisStore({ url: server.url, keyPrefix }), production: false });
    const raw = new Redis(server.url);
    const calls = async (): Promise<{ get: number; evalsha: number; eval: number }> => {
      const stats = await raw.info('commandstats');
      const count = (c: string): number => Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      return { get: count('get'), evalsha: count('evalsha'), eval: count('eval') };
    };
    try {
      const first = await trip(here, undefined, (s) => s.update((d) => { d.n = 1; }));
      // The first login loads the script into Redis (EVALSHA, then EVAL); count the second.
      const loaded = await trip(here, first.cookie, (s) => s.login('one-step'));
      let before = await calls();
      const plain = await trip(here, loaded.cookie, (s) => s.login('one-step'));
      let after = await calls();
      assert.deepEqual({ get: after.get - before.get, evalsha: after.evalsha - before.evalsha, eval: after.eval - before.eval }, { get: 1, evalsha: 1, eval: 0 });
      // Opened here, then the same session changed by another process before this login commits.
      const login = await here.open(view('POST', { cookie: plain.cookie! }));
      await trip(there, plain.cookie, (s) => s.update((d) => { d.n = 2; }));
      before = await calls();
      login.login('one-step');
      await login.update((d) => { d.m = 1; });
      const cookie = cookiePair(await here.commit(login));
      after = await calls();
      // The first script met the conflict; the fresh record was read and the login replayed onto it.
      assert.deepEqual({ get: after.get - before.get, evalsha: after.evalsha - before.evalsha }, { get: 1, evalsha: 2 });
      const next = await trip(here, cookie, () => {}, 'GET');
      assert.deepEqual({ ...next.session.data }, { n: 2, m: 1 });
      assert.equal(next.session.userId, 'one-step');
      assert.deepEqual(await raw.keys(`${keyPrefix}s:*`), [`${keyPrefix}s:${hashId(login.id!)}`], 'only the new record is stored');
      assert.deepEqual(await raw.zrange(`${keyPrefix}u:one-step`, '0', '-1'), [hashId(login.id!)]);
    } finally {
      raw.disconnect();
      await here.close();
      await there.close();
    }
  });

  it('redis store when a time is not a whole number of milliseconds then set and touch throw RangeError and store nothing', async () => {
    const clock = new ManualClock();
    const store = new RedisStore({ url: server.url, keyPrefix: nextPrefix(), clock });
    try {
      const rec = makeRecord(clock, { expiresAt: clock.now() + 0.5 });
      await assert.rejects(store.set(rec, 0), RangeError);
      assert.equal(await store.get(rec.key), null);
      const ok = makeRecord(clock);
      await store.set(ok, 0);
      await assert.rejects(store.touch(ok.key, clock.now() + 1.5, clock.now()), RangeError);
      assert.equal((await store.get(ok.key))?.expiresAt, ok.expiresAt);
    } finally {
      await store.close();
    }
  });

  it('redis store when maxmemory-policy is allkeys-lru then warns TETHER_REDIS_EVICTION once, and not under noeviction', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }): void => { if (w.code === 'TETHER_REDIS_EVICTION') warnings.push(w.message); };
    process.on('warning', onWarning);
    try {
      await redisCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru']);
      const risky = new RedisStore({ url: server.url, keyPrefix: nextPrefix() });
      await risky.get('any');
      assert.equal(await risky.checkEvictionPolicy(), 'allkeys-lru');
      assert.equal(await risky.checkEvictionPolicy(), 'allkeys-lru');
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /allkeys-lru.*noeviction/s);
      await risky.close();

      await redisCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
      const safe = new RedisStore({ url: server.url, keyPrefix: nextPrefix() });
      assert.equal(await safe.checkEvictionPolicy(), 'noeviction');
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);
      await safe.close();
    } finally {
      process.off('warning', onWarning);
      await redisCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    }
  });

  it('redis store through a caller client with replyMapping resp3 when maxmemory-policy is allkeys-lru then it reads the policy from the map reply', async () => {
    // Each store reads the policy once: one store per setting.
    const storeOnItsOwnClient = (): RedisStore => new RedisStore({ client: resp3MappedClient(), keyPrefix: nextPrefix() });
    const onWarning = (): void => {};
    process.on('warning', onWarning);
    try {
      await redisCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru']);
      await using risky = storeOnItsOwnClient();
      assert.equal(await risky.checkEvictionPolicy(), 'allkeys-lru');
      await redisCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
      await using safe = storeOnItsOwnClient();
      assert.equal(await safe.checkEvictionPolicy(), 'noeviction');
    } finally {
      process.off('warning', onWarning);
      await redisCommand(server.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction']);
    }
  });

  it('redis store when its URL says protocol=2 then its connections speak RESP2, and RESP3 without it', async () => {
    /** The protocol of each connection of this store's client name, from the server's CLIENT LIST. */
    const protocols = async (name: string): Promise<string[]> => (await redisCommand(server.port, ['CLIENT', 'LIST']))
      .split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => / resp=(\d)/.exec(line)?.[1] ?? '?');
    for (const [query, resp] of [['', '3'], ['?protocol=2', '2']] as const) {
      const name = `proto${resp}-${process.pid}`;
      const url = `${server.url}/${query}${query ? '&' : '?'}connectionName=${name}`;
      await using store = new RedisStore({ url, keyPrefix: nextPrefix() });
      const rec = makeRecord(new ManualClock());
      assert.deepEqual(await store.set(rec, 0), { ok: true });
      assert.equal((await store.get(rec.key))?.data, rec.data);
      assert.deepEqual(await protocols(name), [resp], query || 'the default');
    }
  });

  it('redis store when CONFIG is disabled on the server then cannot tell the policy and still works', async () => {
    const locked = await startRedis({ extraArgs: ['--rename-command', 'CONFIG', '""'] });
    const store = new RedisStore({ url: locked.url });
    try {
      assert.equal(await store.checkEvictionPolicy(), null);
      const rec = makeRecord(new ManualClock());
      assert.deepEqual(await store.set(rec, 0), { ok: true });
    } finally {
      await store.close();
      await locked.dispose();
    }
  });
});

describe('RedisStore faults', () => {
  // `always` fsyncs before replying, so this holds for power loss too. `everysec` normally writes to the
  // kernel before replying, but while a background fsync is slow (a busy disk) Redis postpones that
  // write, and still replies, for up to 2 s (flushAppendOnlyFile): so it holds for a process crash
  // (what is tested here) that comes more than that after the last acknowledged write.
  // SHUTDOWN (a normal stop) flushes and fsyncs the AOF before exiting, so nothing waits there.
  const cases = [
    { fsync: 'always', end: 'kill', when: 'is killed -9 at once' },
    { fsync: 'everysec', end: 'kill', when: 'is killed -9 over 2 s after the last write' },
    { fsync: 'everysec', end: 'shutdown', when: 'is stopped with SHUTDOWN right after the last write' },
  ] as const;
  for (const { fsync, end, when } of cases) {
    it(`redis store when redis-server with appendfsync ${fsync} ${when} then every acknowledged write and destroy survives the restart`, async () => {
      const durable = await startRedis({ appendonly: fsync });
      const clock = new ManualClock();
      const store = new RedisStore({ url: durable.url, clock });
      try {
        const acked: SessionRecord[] = [];
        for (let i = 0; i < 150; i++) {
          const rec = makeRecord(clock, { userId: i % 3 === 0 ? `crash-user-${i % 7}` : null, data: JSON.stringify({ i }) });
          assert.deepEqual(await store.set(rec, 0), { ok: true });
          acked.push(rec);
        }
        const updated = acked.slice(0, 50).map((r) => ({ ...r, version: 2, data: JSON.stringify({ updated: r.key }) }));
        for (const r of updated) assert.deepEqual(await store.set(r, 1), { ok: true });
        const destroyed = acked.slice(140);
        for (const r of destroyed) await store.destroy(r.key);

        if (end === 'shutdown') {
          // The server closes the connection as it exits: no reply comes.
          await redisCommand(durable.port, ['SHUTDOWN']).catch(() => '');
          await waitFor('redis-server to exit', 10_000, async () => durable.pid === 0);
        } else {
          if (fsync === 'everysec') await new Promise((r) => setTimeout(r, 3_200));
          await durable.kill();
        }
        await durable.restart();

        const expected = [...updated, ...acked.slice(50, 140)];
        await waitFor('the store to reconnect', 10_000, async () => (await store.get(expected[0]!.key)) !== null);
        for (const r of expected) assert.deepEqual(await store.get(r.key), r);
        for (const r of destroyed) assert.equal(await store.get(r.key), null, 'an acknowledged destroy stays destroyed');
        for (let u = 0; u < 7; u++) {
          const owned = expected.filter((r) => r.userId === `crash-user-${u}`).map((r) => r.key).sort();
          assert.deepEqual((await store.listByUser(`crash-user-${u}`)).map((r) => r.key).sort(), owned, 'the user index survives too');
        }
      } finally {
        await store.close();
        await durable.dispose();
      }
    });
  }

  it('redis store when its server is made a replica behind the same address (a failover behind a virtual IP or a DNS name) then the write that meets READONLY fails and the next ones reach the new primary', async () => {
    const first = await startRedis();
    const second = await startRedis();
    const address = await movableProxy(first.port);
    const clock = new ManualClock();
    const store = new RedisStore({ url: `redis://127.0.0.1:${address.port}`, clock });
    try {
      const before = makeRecord(clock, { userId: 'failover-user' });
      assert.deepEqual(await store.set(before, 0), { ok: true });
      // The failover: the second server takes over, the first follows it, the address moves.
      await redisCommand(first.port, ['REPLICAOF', '127.0.0.1', String(second.port)]);
      address.moveTo(second.port);
      const rec = makeRecord(clock);
      await assert.rejects(store.set(rec, 0), (err: { code?: string; message?: string }) => err.code === 'STORE_UNAVAILABLE' && /READONLY/.test(err.message ?? ''));
      // Once the connection was replaced, writes go to the new primary (the store waits for it within commandTimeoutMs).
      await waitFor('a write to succeed', 5_000, async () => (await store.set(rec, 0)).ok);
      assert.equal(await redisCommand(second.port, ['EXISTS', `tether:s:${rec.key}`]), '1', 'written on the new primary');
    } finally {
      await store.close();
      await address.close();
      await first.dispose();
      await second.dispose();
    }
  });

  it('redis store when Redis is full (maxmemory, noeviction) then writes fail STORE_UNAVAILABLE, never a silent success; reads still answer, and writes work once there is room', async () => {
    const full = await startRedis({ extraArgs: ['--maxmemory-policy', 'noeviction'] });
    const store = new RedisStore({ url: full.url });
    const tether = createTether({ secrets: [SECRET_A], store });
    try {
      const kept = await trip(tether, undefined, (s) => { s.set('cart', ['plum']); s.login('full-user'); }, 'POST');
      // A limit under what Redis already holds: it is over its maxmemory, as once filled up.
      await redisCommand(full.port, ['CONFIG', 'SET', 'maxmemory', '1']);
      assert.match(await redisCommand(full.port, ['SET', 'probe', 'x']).catch((err: Error) => err.message), /OOM/, 'Redis is full');
      await assert.rejects(store.set(makeRecord(new ManualClock()), 0), { code: 'STORE_UNAVAILABLE' });
      await assert.rejects(trip(tether, undefined, (s) => s.set('cart', ['pear']), 'POST'), { code: 'STORE_UNAVAILABLE' }, 'a new session is not answered as stored');
      await assert.rejects(trip(tether, kept.cookie, (s) => s.set('cart', ['plum', 'fig']), 'POST'), { code: 'STORE_UNAVAILABLE' });
      await trip(tether, kept.cookie, (s) => assert.deepEqual(s.get('cart'), ['plum'], 'read, unchanged'), 'GET');
      await redisCommand(full.port, ['CONFIG', 'SET', 'maxmemory', '0']);
      const after = await trip(tether, kept.cookie, (s) => s.set('cart', ['plum', 'fig']), 'POST');
      await trip(tether, after.cookie, (s) => assert.deepEqual(s.get('cart'), ['plum', 'fig']), 'GET');
    } finally {
      await tether.close();
      await full.dispose();
    }
  });

  it('redis store when redis-server is stopped then every call fails with STORE_UNAVAILABLE within 3 s, and the same instance recovers after restart', async () => {
    const flaky = await startRedis();
    const clock = new ManualClock();
    const store = new RedisStore({ url: flaky.url, clock });
    const writer = new RedisStore({ url: flaky.url, clock });
    const crashes: unknown[] = [];
    const onCrash = (err: unknown): void => { crashes.push(err); };
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    let resyncs = 0;
    const seen: string[] = [];
    try {
      store.subscribe((key) => seen.push(key), { onResync: () => { resyncs++; } });
      const rec = makeRecord(clock, { userId: 'outage-user' });
      await store.set(rec, 0);
      await waitFor('the change feed to attach', 5_000, async () => resyncs >= 1);

      await flaky.stop();
      const calls: Array<() => Promise<unknown>> = [
        () => store.get(rec.key),
        () => store.set(makeRecord(clock), 0),
        () => store.touch(rec.key, clock.now() + 1_000, clock.now()),
        () => store.destroy(rec.key),
        () => store.listByUser('outage-user'),
        () => store.destroyByUser('outage-user'),
        () => store.count(),
      ];
      for (let round = 0; round < 2; round++) {
        const results = await Promise.all(calls.map((c) => timedFailure(c)));
        for (const [i, r] of results.entries()) {
          assert.equal(r.code, 'STORE_UNAVAILABLE', `call ${i} in round ${round}`);
          assert.ok(r.ms < 3_000, `call ${i} in round ${round} took ${r.ms} ms`);
        }
      }

      await flaky.restart();
      const fresh = makeRecord(clock);
      const start = Date.now();
      await waitFor('the same store instance to write again', 10_000, async () => (await store.set(fresh, 0)).ok);
      assert.ok(Date.now() - start < 10_000);
      assert.deepEqual(await store.get(fresh.key), fresh);

      await waitFor('the change feed to re-attach', 10_000, async () => resyncs >= 2);
      // Pub/sub is at most once: a write published while the subscription was being made again may be
      // missed (that is what onResync covers), so write until one is heard, bounded in time.
      const written: string[] = [];
      await waitFor('a change notice after the outage', 10_000, async () => {
        if (written.some((k) => seen.includes(k))) return true;
        const after = makeRecord(clock);
        if ((await writer.set(after, 0)).ok) written.push(after.key);
        await new Promise((r) => setTimeout(r, 200));
        return written.some((k) => seen.includes(k));
      });
      assert.deepEqual(crashes, [], 'no uncaught error while Redis was down');
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      await store.close();
      await writer.close();
      await flaky.dispose();
    }
  });

  it('write from a machine with a slow network when it reaches Redis after its caller gave up and after a newer write then that newer write stands', async (t) => {
    const keyPrefix = nextPrefix();
    const proxy = await delayingProxy(server.port);
    t.after(() => proxy.close());
    const slow = createTether({ secrets: [SECRET_A], store: new RedisStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix, commandTimeoutMs: 1_000 }) });
    const fast = createTether({ secrets: [SECRET_A], store: new RedisStore({ url: server.url, keyPrefix }) });
    t.after(() => Promise.all([slow.close(), fast.close()]));
    const evalshaCalls = async (): Promise<number> =>
      Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redisCommand(server.port, ['INFO', 'commandstats']))?.[1] ?? 0);

    const { cookie } = await trip(fast, undefined, (s) => s.set('who', 'nobody'));
    const session = await slow.open(view('POST', { cookie: cookie! }));
    session.set('who', 'slow');
    proxy.setDelay(3_000);
    await assert.rejects(slow.commit(session), { code: 'STORE_UNAVAILABLE' }, 'not acknowledged: the caller gave up');
    await trip(fast, cookie, (s) => s.set('who', 'fast'));
    const before = await evalshaCalls();
    // The held compare-and-set reaches Redis now: it names a version that is no longer there.
    await waitFor('the late write reaching Redis', 10_000, async () => (await evalshaCalls()) > before);
    proxy.setDelay(0);
    await trip(fast, cookie, (s) => assert.equal(s.get('who'), 'fast', 'the acknowledged write was not overwritten'), 'GET');
    // The slow machine dropped its connection when the write timed out; its new one is ready once the
    // handshake it sent during the delay has passed.
    let seen: unknown;
    await waitFor('the slow machine reading again', 10_000, async () => {
      seen = await trip(slow, cookie, (s) => s.get('who'), 'GET').then((r) => r.session.get('who'), () => undefined);
      return seen !== undefined;
    });
    assert.equal(seen, 'fast');
  });

  it('write when the connection is cut after the command was sent, its reply lost, or before it was sent, then the call fails STORE_UNAVAILABLE, the command ran at most once and was never resent, and the store goes on', async (t) => {
    const keyPrefix = nextPrefix();
    const proxy = await delayingProxy(server.port);
    t.after(() => proxy.close());
    // A long command timeout: a failure before it comes from the cut connection, not from the deadline.
    const store = new RedisStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix, commandTimeoutMs: 20_000 });
    const direct = new RedisStore({ url: server.url, keyPrefix });
    t.after(() => Promise.all([store.close(), direct.close()]));
    const clock = { now: () => Date.now() };
    const scriptCalls = async (): Promise<number> => {
      const stats = await redisCommand(server.port, ['INFO', 'commandstats']);
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    };
    const reconnected = (): Promise<void> => waitFor('the store answering again', 15_000, () => store.get('probe').then(() => true, () => false));
    // One write first: Redis then holds the script, so the cut write is one EVALSHA that runs.
    assert.deepEqual(await store.set(makeRecord(clock), 0), { ok: true });

    const sent = makeRecord(clock);
    const before = await scriptCalls();
    proxy.cutNext('after');
    const started = Date.now();
    await assert.rejects(store.set(sent, 0), { code: 'STORE_UNAVAILABLE' });
    assert.ok(Date.now() - started < 15_000, 'failed with the connection, not at the command timeout');
    assert.equal((await direct.get(sent.key))?.version, 1, 'the write ran: Redis had it before the cut');
    await reconnected();
    await sleep(300);
    assert.equal(await scriptCalls() - before, 1, 'and ran once: not sent again on the new connection');
    assert.deepEqual(await store.set(sent, 0), { ok: false, current: 1 }, 'a retry by the caller is a conflict, not a second write');

    const unsent = makeRecord(clock);
    proxy.cutNext('before');
    await assert.rejects(store.set(unsent, 0), { code: 'STORE_UNAVAILABLE' });
    assert.equal(await direct.get(unsent.key), null, 'nothing was written');
    await reconnected();
    assert.deepEqual(await store.set(unsent, 0), { ok: true }, 'the caller\'s retry writes it');
    assert.equal((await direct.get(unsent.key))?.version, 1);
  });

  it('sharedLimiter over a RedisStore when redis-server hangs then it counts on the machine within the store\'s bound, and in Redis again once it resumes', async () => {
    const hung = await startRedis();
    const store = new RedisStore({ url: hung.url, commandTimeoutMs: 500 });
    const other = new RedisStore({ url: hung.url, commandTimeoutMs: 500 });
    const limiter = sharedLimiter('outage', 3, 60_000, { store });
    const peer = sharedLimiter('outage', 3, 60_000, { store: other });
    try {
      assert.equal(await limiter.take('k'), true);
      assert.equal(await peer.take('k'), true, 'the peer counts in Redis too');
      // The four takes below wait up to 500 ms each for Redis: clear of the limits' window boundary for all of them.
      await clearOfWindowBoundary(8_000);
      process.kill(hung.pid, 'SIGSTOP');
      const started = Date.now();
      // Redis out: each process counts alone, so this one allows its own 3 and no more.
      assert.deepEqual([await limiter.take('k'), await limiter.take('k'), await limiter.take('k'), await limiter.take('k')], [true, true, true, false]);
      assert.ok(Date.now() - started < 4 * 1_500, `took ${Date.now() - started} ms`);
      process.kill(hung.pid, 'SIGCONT');
      // Once both stores answer again (each dropped its connection to the hung server, and reconnects:
      // on a loaded machine that takes a while), back in Redis, shared again: 3 in all for a new key,
      // whichever process takes them (a process still counting alone would allow the fourth, its own second).
      const answers = (s: RedisStore): Promise<boolean> => s.get('probe').then(() => true, () => false);
      await waitFor('both stores answering again', 10_000, async () => (await answers(store)) && (await answers(other)));
      await clearOfWindowBoundary(3_000);
      assert.deepEqual([await peer.take('k2'), await limiter.take('k2'), await peer.take('k2'), await limiter.take('k2')], [true, true, true, false]);
    } finally {
      if (hung.pid) process.kill(hung.pid, 'SIGCONT');
      await store.close();
      await other.close();
      await hung.dispose();
    }
  });

  it('redis store when redis-server hangs under a stream of writes then it drops the connection and what was queued on it: memory stays flat, and writes work once it resumes', async (t) => {
    const hung = await startRedis();
    const store = new RedisStore({ url: hung.url, commandTimeoutMs: 500 });
    const rec = makeRecord(new ManualClock(), { data: JSON.stringify({ blob: 'x'.repeat(1_000) }) });
    try {
      await store.set(rec, 0);
      process.kill(hung.pid, 'SIGSTOP');
      await assertMemoryFlatUnderWrites(t, store, rec, 'to a hung Redis');
      process.kill(hung.pid, 'SIGCONT');
      const deadline = Date.now() + 10_000;
      let back = false;
      while (!back && Date.now() < deadline) back = await store.touch(rec.key, rec.expiresAt + 1, rec.lastSeenAt).then(() => true, () => false);
      assert.ok(back, 'the store works again once Redis resumes');
    } finally {
      if (hung.pid) process.kill(hung.pid, 'SIGCONT');
      await store.close();
      await hung.dispose();
    }
  });

  it('engine over redis-server busy in one long command (DEBUG SLEEP) then requests fail STORE_UNAVAILABLE within storeTimeoutMs, and no acknowledged update is lost, late ones included', async () => {
    // Unlike SIGSTOP the server takes the commands sent meanwhile and runs them when it wakes: a write
    // reported failed may still land (its outcome is unknown), and must not overwrite a newer one.
    const busy = await startRedis({ extraArgs: ['--enable-debug-command', 'yes'] });
    const tether = createTether({ secrets: [SECRET_A], store: new RedisStore({ url: busy.url, commandTimeoutMs: 500 }), storeTimeoutMs: 500 });
    let acked = 0;
    let attempted = 0;
    const add = async (): Promise<boolean> => {
      attempted++;
      try {
        await trip(tether, cookie, (s) => s.update((d) => void (d.n = (d.n as number) + 1)));
        acked++;
        return true;
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'STORE_UNAVAILABLE');
        return false;
      }
    };
    const { cookie } = await trip(tether, undefined, (s) => s.set('n', 0));
    try {
      assert.equal(await add(), true);
      const sleeping = redisCommand(busy.port, ['DEBUG', 'SLEEP', '2'], 10_000);
      await new Promise((r) => setTimeout(r, 100));
      const write = await timedFailure(() => trip(tether, cookie, (s) => s.update((d) => void (d.n = (d.n as number) + 1))));
      attempted++;
      assert.equal(write.code, 'STORE_UNAVAILABLE');
      assert.ok(write.ms < 1_500, `the write failed after ${write.ms} ms`);
      const read = await timedFailure(() => trip(tether, cookie, (s) => s.get('n'), 'GET'));
      assert.deepEqual([read.code, read.ms < 1_500], ['STORE_UNAVAILABLE', true], `the read failed after ${read.ms} ms`);
      assert.equal(await sleeping, 'OK');
      const until = Date.now() + 10_000;
      while (acked < 6 && Date.now() < until) await add();
      assert.equal(acked, 6, 'writes work again once the command ends');
      const n = (await trip(tether, cookie, () => {}, 'GET')).session.get('n') as number;
      assert.ok(n >= acked && n <= attempted, `n = ${n}: every one of the ${acked} acknowledged adds is there, and none of the ${attempted} was applied twice`);
    } finally {
      await tether.close();
      await busy.dispose();
    }
  });

  it('redis store when redis-server hangs (SIGSTOP) then calls fail with STORE_UNAVAILABLE within 3 s and succeed once it resumes', async () => {
    const hung = await startRedis();
    const store = new RedisStore({ url: hung.url });
    const rec = makeRecord(new ManualClock());
    try {
      await store.set(rec, 0);
      process.kill(hung.pid, 'SIGSTOP');
      const r = await timedFailure(() => store.get(rec.key));
      assert.equal(r.code, 'STORE_UNAVAILABLE');
      assert.ok(r.ms < 3_000, `took ${r.ms} ms`);
      process.kill(hung.pid, 'SIGCONT');
      assert.equal((await store.get(rec.key))?.version, 1);
    } finally {
      if (hung.pid) process.kill(hung.pid, 'SIGCONT');
      await store.close();
      await hung.dispose();
    }
  });
});
