/** PostgresStore against a real PostgreSQL: the shared suite, then migrations, the NOTIFY feed, outages and crash durability. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresStore, MIGRATIONS } from '../../src/stores/postgres/index.js';
import { runStoreSuite, ManualClock, makeKey, makeRecord } from '../../src/testing/store-suite.js';
import { startPostgres, createDatabase, freePort, pgQuery } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';
import { assertSweepsOnItsOwn } from '../helpers/sweep-timer.js';
import { assertMemoryFlatUnderWrites } from '../helpers/heap.js';

/** One fast (fsync off) server for everything that does not test durability; started on first use. */
let fastServer: Promise<PostgresServer> | undefined;
const fast = (): Promise<PostgresServer> => (fastServer ??= startPostgres({ fast: true }));
/** One server with PostgreSQL's durable defaults for the outage and crash cases; started early so its initdb overlaps the suite. */
let durableServer: Promise<PostgresServer> | undefined;
before(() => {
  durableServer = startPostgres();
  durableServer.catch(() => {}); // awaited (and reported) by the describe that uses it
});
after(async () => {
  if (fastServer) await (await fastServer).dispose();
  if (durableServer) await (await durableServer.catch(() => null))?.dispose();
});

let tables = 0;
const tableOf = new WeakMap<object, string>();


/** Waits for `fn` to return true, polling; bounded in time and count. */
async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what} within ${timeoutMs} ms`);
}

/** Collects change-feed events and counts resyncs; `waitFor(key)` resolves when the key arrives (bounded). */
function collect(store: PostgresStore): { events: string[]; resyncs: () => number; waitFor(key: string): Promise<void>; off(): void } {
  const events: string[] = [];
  let resyncs = 0;
  const off = store.subscribe((key) => events.push(key), { onResync: () => { resyncs++; } });
  return { events, off, resyncs: () => resyncs, waitFor: (key) => until('the change event', () => events.includes(key), 5_000) };
}

runStoreSuite({
  name: 'postgres',
  limits: true,
  regenerates: true,
  reportsSwept: true,
  destroysAll: true,
  open: async (clock) => {
    const { url } = await fast();
    const tableName = `suite_${++tables}`;
    const store = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    tableOf.set(store, tableName);
    await store.ready();
    // The suite's feed case writes 50 ms after subscribing; attach LISTEN now so a loaded machine cannot miss it.
    store.subscribe(() => {});
    assert.equal(await store.feedListening(), true);
    return store;
  },
  connect: async (store, clock) => {
    const { url } = await fast();
    const tableName = tableOf.get(store)!;
    const peer = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    tableOf.set(peer, tableName);
    return peer;
  },
  dispose: async (store) => {
    const { url } = await fast();
    await pgQuery(url, `DROP TABLE IF EXISTS "${tableOf.get(store)!}", "${tableOf.get(store)!}_limits"`);
  },
});

describe('PostgresStore options and loading', () => {
  it('postgres store sweep timer when sweepIntervalMs passes then a timed-out session is deleted and reported without a call to sweep()', async () => {
    const { url } = await fast();
    await assertSweepsOnItsOwn((clock, sweepIntervalMs) => new PostgresStore({ connectionString: url, tableName: `swept_${++tables}`, clock, sweepIntervalMs }));
  });

  it('postgres store when given unknown or unsafe options then throws OPTIONS_INVALID', () => {
    assert.throws(() => new PostgresStore({ tableNmae: 'x' } as never), { code: 'OPTIONS_INVALID', message: /options\.tableNmae is not an option/ });
    assert.throws(() => new PostgresStore({ tableName: 'sessions; DROP TABLE users' }), { code: 'OPTIONS_INVALID', message: /tableName must be a plain identifier/ });
    assert.throws(() => new PostgresStore({ schema: 'a-b' }), { code: 'OPTIONS_INVALID', message: /schema/ });
    assert.throws(() => new PostgresStore({ statementTimeoutMs: 0 }), { code: 'OPTIONS_INVALID', message: /statementTimeoutMs/ });
    assert.throws(() => new PostgresStore({ statementTimeoutMs: 2_147_483_648 }), { code: 'OPTIONS_INVALID', message: /statementTimeoutMs must be .*at most 2147483647/ });
    assert.throws(() => new PostgresStore({ sweepIntervalMs: 2_147_483_648 }), { code: 'OPTIONS_INVALID', message: /sweepIntervalMs must be .*at most 2147483647/ });
    assert.throws(() => new PostgresStore({ pool: {} as never }), { code: 'OPTIONS_INVALID', message: /pool must be a pg\.Pool/ });
    assert.throws(() => new PostgresStore({ connectionString: 'postgres://x', pool: new pg.Pool() }), { code: 'OPTIONS_INVALID', message: /either/ });
  });

  it('postgres store module when imported then does not load pg until a store is constructed', () => {
    const entry = fileURLToPath(new URL('../../src/stores/postgres/index.ts', import.meta.url));
    const script = `import { createRequire } from 'node:module';
      const req = createRequire(import.meta.url);
      const loaded = () => Object.keys(req.cache).some((p) => p.includes('/node_modules/pg/'));
      const mod = await import(${JSON.stringify(entry)});
      const before = loaded();
      const store = new mod.PostgresStore({ connectionString: 'postgres://127.0.0.1:1/x', sweepIntervalMs: 0 });
      await store.close();
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const out = spawnSync(process.execPath, ['--conditions=tether-source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout.trim().split('\n').pop()!), { before: false, after: true });
  });

  it('postgres store when given a pool then uses it and leaves it open on close', async () => {
    const { url } = await fast();
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    const clock = new ManualClock();
    const store = new PostgresStore({ pool, tableName: `pooled_${++tables}`, clock, sweepIntervalMs: 0 });
    const rec = makeRecord(clock);
    assert.deepEqual(await store.set(rec, 0), { ok: true });
    assert.equal(await store.count(), 1);
    await store.close();
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
    await pool.end();
  });

  it('postgres store when statementTimeoutMs is the longest accepted then its calls work without overflowing a timer', async () => {
    const { url } = await fast();
    const overflows: Error[] = [];
    const onWarning = (w: Error): void => { if (w.name === 'TimeoutOverflowWarning') overflows.push(w); };
    process.on('warning', onWarning);
    const clock = new ManualClock();
    const store = new PostgresStore({ connectionString: url, tableName: `longest_${++tables}`, clock, statementTimeoutMs: 2_147_483_647, sweepIntervalMs: 2_147_483_647 });
    try {
      const rec = makeRecord(clock);
      assert.deepEqual(await store.set(rec, 0), { ok: true });
      assert.deepEqual(await store.get(rec.key), rec);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(overflows, []);
    } finally {
      process.off('warning', onWarning);
      await store.close();
    }
  });
});

describe('PostgresStore schema and migrations', () => {
  it('postgres store when opened twice on one table then migrates once and creates the table and both indexes', async () => {
    const url = await createDatabase((await fast()).url, 'migrate_twice');
    const a = new PostgresStore({ connectionString: url, sweepIntervalMs: 0 });
    await a.ready();
    const b = new PostgresStore({ connectionString: url, sweepIntervalMs: 0 });
    await b.ready();
    await Promise.all([a.close(), b.close()]);
    const rows = await pgQuery<{ table_name: string; version: number }>(url, 'SELECT table_name, version FROM tether_migrations ORDER BY version');
    assert.deepEqual(rows.map((r) => ({ ...r })), MIGRATIONS.map((m) => ({ table_name: 'tether_sessions', version: m.version })));
    const indexes = await pgQuery<{ indexname: string }>(url, `SELECT indexname FROM pg_indexes WHERE tablename = 'tether_sessions' ORDER BY indexname`);
    assert.deepEqual(indexes.map((r) => r.indexname), ['tether_sessions_deadline_idx', 'tether_sessions_pkey', 'tether_sessions_user_id_idx']);
    const cols = await pgQuery<{ column_name: string; data_type: string }>(url,
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'tether_sessions' ORDER BY ordinal_position`);
    assert.deepEqual(cols.map((c) => `${c.column_name}:${c.data_type}`), ['key:text', 'data:text', 'version:bigint', 'user_id:text',
      'created_at:bigint', 'last_seen_at:bigint', 'expires_at:bigint', 'absolute_expires_at:bigint']);
  });

  it('postgres store when several processes open a fresh database at once then all start and each table migrates once', async () => {
    const url = await createDatabase((await fast()).url, 'migrate_race');
    const stores = ['race_a', 'race_a', 'race_b', 'race_b'].map((tableName) => new PostgresStore({ connectionString: url, tableName, sweepIntervalMs: 0 }));
    await Promise.all(stores.map((s) => s.ready()));
    const clock = new ManualClock();
    const rec = makeRecord(clock);
    assert.deepEqual(await stores[0]!.set(rec, 0), { ok: true });
    assert.equal((await stores[1]!.get(rec.key))?.data, rec.data);
    await Promise.all(stores.map((s) => s.close()));
    const rows = await pgQuery<{ table_name: string; n: string }>(url, 'SELECT table_name, count(*) AS n FROM tether_migrations GROUP BY table_name ORDER BY table_name');
    assert.deepEqual(rows.map((r) => [r.table_name, Number(r.n)]), [['race_a', MIGRATIONS.length], ['race_b', MIGRATIONS.length]]);
  });

  it('postgres store when its connection is terminated during the migration then ready() fails STORE_UNAVAILABLE, the process goes on, and the next call migrates', async () => {
    const url = await createDatabase((await fast()).url, 'migrate_terminated');
    // Another session holds the migrations' lock, so the store's migration waits on it, then is terminated.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('tether_migrations'))`);
      const clock = new ManualClock();
      const store = new PostgresStore({ connectionString: url, tableName: 'terminated', clock, sweepIntervalMs: 0 });
      const first = store.ready().then(() => null, (err: unknown) => err);
      // Asked on connections of their own: inside the holder's transaction pg_stat_activity is a snapshot.
      let pid: number | undefined;
      await until('the migration to wait for the lock', async () => (pid = (await pgQuery<{ pid: number }>(url,
        `SELECT pid FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE '%pg_advisory_xact_lock%'`))[0]?.pid) !== undefined);
      await pgQuery(url, 'SELECT pg_terminate_backend($1)', [pid]);
      const err = await first as { code?: string } | null;
      assert.equal(err?.code, 'STORE_UNAVAILABLE');
      await holder.query('ROLLBACK');
      const rec = makeRecord(clock);
      assert.deepEqual(await store.set(rec, 0), { ok: true }, 'the next call migrates and writes');
      await store.close();
    } finally {
      await holder.end();
    }
  });

  it('postgres store when given a schema then creates it and keeps its table and migrations there', async () => {
    const { url } = await fast();
    const clock = new ManualClock();
    const store = new PostgresStore({ connectionString: url, schema: 'tenant_a', tableName: 'sessions', clock, sweepIntervalMs: 0 });
    const rec = makeRecord(clock, { userId: 'u1' });
    await store.set(rec, 0);
    assert.deepEqual((await store.listByUser('u1')).map((r) => r.key), [rec.key]);
    await store.close();
    const rows = await pgQuery<{ n: string }>(url, 'SELECT count(*) AS n FROM tenant_a.sessions');
    assert.equal(Number(rows[0]!.n), 1);
    const mig = await pgQuery<{ n: string }>(url, `SELECT count(*) AS n FROM tenant_a.tether_migrations WHERE table_name = 'sessions'`);
    assert.equal(Number(mig[0]!.n), MIGRATIONS.length);
  });
});

describe('PostgresStore change feed', () => {
  let url: string;
  let a: PostgresStore;
  let b: PostgresStore;
  const clock = new ManualClock();
  before(async () => {
    url = (await fast()).url;
    const tableName = `feed_${++tables}`;
    a = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    tableOf.set(a, tableName);
    b = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('postgres feed when another pool creates, updates, touches and destroys then reports each, and a lost CAS reports nothing', async () => {
    const feed = collect(a);
    assert.equal(await a.feedListening(), true);
    const rec = makeRecord(clock, { userId: 'feed-user' });
    await b.set(rec, 0);
    await feed.waitFor(rec.key);
    await b.set({ ...rec, version: 2 }, 1);
    await b.touch(rec.key, clock.now() + 5_000, clock.now());
    await b.destroy(rec.key);
    const lost = makeRecord(clock);
    await b.set(lost, 0);
    assert.deepEqual(await b.set({ ...lost, version: 6 }, 5), { ok: false, current: 1 });
    // Notifications arrive in commit order: once the sentinel is seen, anything the lost CAS sent would be too.
    const sentinel = makeRecord(clock);
    await b.set(sentinel, 0);
    await feed.waitFor(sentinel.key);
    feed.off();
    assert.deepEqual(feed.events, [rec.key, rec.key, rec.key, rec.key, lost.key, sentinel.key]);
  });

  it('postgres feed when a store has notify off then its writes send nothing and still commit', async () => {
    const quiet = new PostgresStore({ connectionString: url, tableName: tableOf.get(a)!, clock, sweepIntervalMs: 0, notify: false });
    const feed = collect(a);
    assert.equal(await a.feedListening(), true);
    const rec = makeRecord(clock);
    await quiet.set(rec, 0);
    await quiet.set({ ...rec, version: 2 }, 1);
    await quiet.touch(rec.key, clock.now() + 5_000, clock.now());
    const sentinel = makeRecord(clock);
    await b.set(sentinel, 0);
    await feed.waitFor(sentinel.key);
    feed.off();
    assert.deepEqual(feed.events, [sentinel.key]);
    assert.equal((await a.get(rec.key))?.version, 2);
    await quiet.destroy(rec.key);
    assert.equal(await a.get(rec.key), null);
    await quiet.close();
  });

  it('postgres feed when its connection is killed then calls onResync on loss and on return, and reports writes again', async () => {
    const feed = collect(a);
    assert.equal(await a.feedListening(), true);
    await until('onResync once LISTEN is active', () => feed.resyncs() === 1);
    const killed = await pgQuery<{ ok: boolean }>(url, `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
      WHERE application_name = 'tether' AND query LIKE 'LISTEN%' AND datname = current_database()`);
    assert.ok(killed.length >= 1, 'found the LISTEN connection');
    await until('onResync on loss and again once listening', () => feed.resyncs() >= 3 && a.feedState === 'listening');
    const rec = makeRecord(clock);
    await b.set(rec, 0);
    await feed.waitFor(rec.key);
    feed.off();
    assert.equal(a.feedState, 'idle', 'the last unsubscribe releases the connection');
  });
});

describe('PostgresStore outages and crashes (fsync and synchronous_commit on)', () => {
  let server: PostgresServer;
  const clock = new ManualClock();
  before(async () => {
    server = await durableServer!;
  });

  const rejectsUnavailableWithin = async (store: PostgresStore, key: string, boundMs: number): Promise<void> => {
    const rec = makeRecord(clock, { key, version: 2 });
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['get', () => store.get(key)], ['set', () => store.set(rec, 1)], ['touch', () => store.touch(key, clock.now() + 1, clock.now())],
      ['destroy', () => store.destroy(key)], ['listByUser', () => store.listByUser('u')], ['destroyByUser', () => store.destroyByUser('u')],
      ['count', () => store.count()],
    ];
    await Promise.all(calls.map(async ([name, call]) => {
      const started = Date.now();
      await assert.rejects(call, (err: Error & { code?: string; cause?: unknown }) => {
        assert.equal(err.code, 'STORE_UNAVAILABLE', `${name}: ${err.message}`);
        assert.ok(err.cause, `${name} carries the driver error`);
        assert.ok(!err.message.includes(key), `${name}'s message does not name the key`);
        return true;
      });
      const took = Date.now() - started;
      assert.ok(took < boundMs, `${name} failed after ${took} ms`);
    }));
  };

  it('postgres store when the server stops then calls fail fast with STORE_UNAVAILABLE and work again after restart', async () => {
    const store = new PostgresStore({ connectionString: server.url, clock, sweepIntervalMs: 0 });
    const feed = collect(store);
    assert.equal(await store.feedListening(), true);
    const rec = makeRecord(clock);
    await store.set(rec, 0);
    const resyncsBefore = feed.resyncs();
    await server.stop();
    await rejectsUnavailableWithin(store, rec.key, 3_000);
    await until('onResync when the feed connection is lost', () => feed.resyncs() > resyncsBefore);
    assert.equal(store.feedState, 'connecting');
    await server.restart();
    await until('the store answers again', async () => (await store.get(rec.key).catch(() => null)) !== null);
    assert.deepEqual(await store.set({ ...rec, version: 2 }, 1), { ok: true });
    assert.equal(await store.feedListening(10_000), true);
    await until('onResync once LISTEN is back', () => feed.resyncs() > resyncsBefore + 1);
    feed.off();
    await store.close();
  });

  it('postgres store when the server hangs then calls fail with STORE_UNAVAILABLE within the timeout and recover when it resumes', async () => {
    const store = new PostgresStore({ connectionString: server.url, clock, sweepIntervalMs: 0 });
    const rec = makeRecord(clock);
    await store.set(rec, 0);
    server.pause();
    try {
      await rejectsUnavailableWithin(store, rec.key, 3_000);
    } finally {
      server.resume();
    }
    await until('the store answers again', async () => (await store.get(rec.key).catch(() => null)) !== null);
    await store.close();
  });

  it('postgres store when the server hangs under a stream of writes then nothing piles up: memory stays flat, and writes work once it resumes', async (t) => {
    const store = new PostgresStore({ connectionString: server.url, clock, sweepIntervalMs: 0, statementTimeoutMs: 500 });
    const rec = makeRecord(clock, { data: JSON.stringify({ blob: 'x'.repeat(1_000) }) });
    await store.set(rec, 0);
    server.pause();
    try {
      // Each waits for a pooled connection at most the timeout.
      await assertMemoryFlatUnderWrites(t, store, rec, 'to a hung PostgreSQL');
    } finally {
      server.resume();
    }
    await until('the store writes again', async () => store.touch(rec.key, rec.expiresAt + 1, rec.lastSeenAt).then(() => true, () => false));
    await store.close();
  });

  it('postgres store when the postmaster is killed -9 after acknowledged writes then every one is there after restart', async () => {
    const [setting] = await pgQuery<{ synchronous_commit: string }>(server.url, 'SHOW synchronous_commit');
    assert.equal(setting!.synchronous_commit, 'on');
    const tableName = 'durable';
    const store = new PostgresStore({ connectionString: server.url, tableName, clock, sweepIntervalMs: 0 });
    const written: string[] = [];
    const destroyed: string[] = [];
    // Four concurrent writers so commits overlap, as under load.
    await Promise.all(Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 50; i++) {
        const rec = makeRecord(clock, { data: JSON.stringify({ w, i }), userId: `durable-${w}` });
        assert.deepEqual(await store.set(rec, 0), { ok: true });
        if (i % 10 === 9) {
          await store.destroy(rec.key);
          destroyed.push(rec.key);
        } else {
          written.push(rec.key);
        }
      }
    }));
    await server.kill();
    await server.restart();
    await store.close();
    const after = new PostgresStore({ connectionString: server.url, tableName, clock, sweepIntervalMs: 0 });
    for (const key of written) assert.ok(await after.get(key), 'an acknowledged write survived');
    for (const key of destroyed) assert.equal(await after.get(key), null, 'an acknowledged destroy stayed destroyed');
    assert.equal(await after.count(), written.length);
    await after.close();
  });
});

describe('PostgresStore failures answered to clients', () => {
  it('postgres store when the server refuses the connection or the role then STORE_UNAVAILABLE gives the code, never the address or the role', async () => {
    const { url } = await fast();
    const u = new URL(url);
    const closed = new URL(url);
    closed.port = String(await freePort());
    const noRole = new URL(url);
    noRole.username = 'no_such_role_4711';
    for (const [name, connectionString, code] of [['a closed port', closed.href, 'ECONNREFUSED'], ['an unknown role', noRole.href, '28000']] as const) {
      const store = new PostgresStore({ connectionString, clock: new ManualClock(), sweepIntervalMs: 0 });
      try {
        await assert.rejects(store.get(makeKey()), (err: Error & { code?: string; cause?: { code?: string; message?: string } }) => {
          assert.equal(err.code, 'STORE_UNAVAILABLE', `${name}: ${err.message}`);
          assert.equal(err.cause?.code, code, `${name}: the driver error is the cause`);
          assert.match(err.message, new RegExp(`\\(${code}\\)`), name);
          for (const detail of [`${u.hostname}:`, closed.port, 'no_such_role_4711']) assert.ok(!err.message.includes(detail), `${name}: the message names ${detail}: ${err.message}`);
          return true;
        });
      } finally {
        await store.close();
      }
    }
  });
});

describe('PostgresStore values PostgreSQL refuses', () => {
  /** A data exception: STORE_REJECTED with the SQLSTATE and PostgreSQL's text, the driver error as cause, no key or value quoted. */
  const rejected = (name: string, secret: string, key?: string) => (err: Error & { code?: string; status?: number; cause?: { code?: string } }): boolean => {
    assert.equal(err.code, 'STORE_REJECTED', `${name}: ${err.message}`);
    assert.equal(err.status, 500, name);
    assert.equal(err.cause?.code, '22021', `${name} carries the driver error`);
    assert.match(err.message, /22021 invalid byte sequence for encoding "UTF8": 0x00/, name);
    assert.doesNotMatch(err.message, /reachable/, `${name} does not send the operator to check the server`);
    assert.ok(!err.message.includes(secret), `${name}'s message does not quote the value`);
    if (key !== undefined) assert.ok(!err.message.includes(key), `${name}'s message does not name the key`);
    return true;
  };

  it('postgres store when a record\'s data or user ID holds U+0000 then rejects with STORE_REJECTED, writes nothing, and keeps working', async () => {
    const { url } = await fast();
    const clock = new ManualClock();
    const store = new PostgresStore({ connectionString: url, tableName: `rejects_${++tables}`, clock, sweepIntervalMs: 0 });
    try {
      // A custom codec's text, not JSON: the default codec would have escaped the NUL as \u0000.
      const secret = 'card=4111';
      const nulData = makeRecord(clock, { data: `${secret}\u0000tail` });
      await assert.rejects(store.set(nulData, 0), rejected('set (create, data)', secret, nulData.key));
      const nulUser = makeRecord(clock, { userId: `${secret}\u0000` });
      await assert.rejects(store.set(nulUser, 0), rejected('set (create, userId)', secret, nulUser.key));
      assert.equal(await store.get(nulData.key), null);
      assert.equal(await store.count(), 0);

      // The next record goes through on the same store and pool.
      const next = makeRecord(clock);
      assert.deepEqual(await store.set(next, 0), { ok: true });
      // An update carrying the NUL is refused too, and the stored version stays as it was.
      await assert.rejects(store.set({ ...next, version: 2, data: `${secret}\u0000` }, 1), rejected('set (update)', secret, next.key));
      assert.deepEqual(await store.get(next.key), next);
      assert.deepEqual(await store.set({ ...next, version: 2, data: '{"n":2}' }, 1), { ok: true });

      // A login's regeneration: nothing of it applies, the old record stays.
      const created = makeRecord(clock, { data: `${secret}\u0000` });
      await assert.rejects(store.regenerate({ ...next, version: 3, expiresAt: clock.now() }, 2, created), rejected('regenerate', secret));
      assert.equal((await store.get(next.key))?.version, 2);
      assert.equal(await store.get(created.key), null);

      // Reading by such a user ID is a data exception as well, not an outage.
      await assert.rejects(store.listByUser(`${secret}\u0000`), rejected('listByUser', secret));
      await assert.rejects(store.destroyByUser(`${secret}\u0000`), rejected('destroyByUser', secret));
      assert.equal(await store.count(), 1);
    } finally {
      await store.close();
    }
  });

  it('postgres store when nothing listens at its address then still rejects with STORE_UNAVAILABLE', async () => {
    const store = new PostgresStore({ connectionString: 'postgres://tether@127.0.0.1:1/none', statementTimeoutMs: 1_000, sweepIntervalMs: 0 });
    try {
      await assert.rejects(store.get(makeKey()), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'STORE_UNAVAILABLE', err.message);
        return true;
      });
      await assert.rejects(store.set(makeRecord(new ManualClock(), { data: '\u0000' }), 0), { code: 'STORE_UNAVAILABLE' });
    } finally {
      await store.close();
    }
  });
});

describe('PostgresStore sweep', () => {
  it('postgres sweep when more rows are due than one batch then removes them all and keeps live ones', async () => {
    const { url } = await fast();
    const clock = new ManualClock();
    const tableName = `sweep_${++tables}`;
    const store = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    await store.ready();
    const now = clock.now();
    await pgQuery(url, `INSERT INTO "${tableName}" SELECT 'dead' || g, '{}', 1, NULL, $1::bigint, $1::bigint, $1::bigint + 10, $1::bigint + 1000 FROM generate_series(1, 2500) g`, [now]);
    const live = makeRecord(clock);
    await store.set(live, 0);
    clock.advance(20);
    assert.equal(await store.sweep(), 2500);
    assert.equal(await store.count(), 1);
    assert.ok(await store.get(live.key));
    assert.equal(makeKey().length, 43);
    await store.close();
  });

  it('postgres limiter when it counts then keeps one row per limiter and key under a digest, and sweep removes it after its last window without counting it as a session', async () => {
    const { url } = await fast();
    const clock = new ManualClock(60_000 * Math.ceil(Date.now() / 60_000));
    const tableName = `limits_${++tables}`;
    const store = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    try {
      const limiter = store.limiter('signups', 2, 60_000);
      assert.deepEqual([await limiter.take('203.0.113.7'), await limiter.take('203.0.113.7'), await limiter.take('203.0.113.7')], [true, true, false]);
      assert.equal(await limiter.take('203.0.113.8'), true);
      const rows = await pgQuery<{ key: string; current: number; previous: number; window_start: string; expires_at: string }>(url,
        `SELECT key, current, previous, window_start, expires_at FROM "${tableName}_limits" ORDER BY current DESC`);
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => /^[A-Za-z0-9_-]{32}$/.test(r.key)), rows.map((r) => r.key).join(' '));
      assert.deepEqual([rows[0]!.current, rows[0]!.previous, Number(rows[0]!.window_start), Number(rows[0]!.expires_at)], [2, 0, clock.now(), clock.now() + 120_000],
        'a refused take is not counted; the row is kept until the next window ends');
      // In the next window the count moves to `previous`; past it, the sweep removes the rows.
      clock.advance(60_000);
      assert.equal(await limiter.take('203.0.113.7'), false, 'the last window still weighs 2 × 1');
      assert.equal(await limiter.peek('203.0.113.8'), true);
      clock.advance(60_000);
      assert.equal(await store.sweep(), 0, 'limiter rows are not sessions');
      assert.equal(Number((await pgQuery<{ n: string }>(url, `SELECT count(*) AS n FROM "${tableName}_limits"`))[0]!.n), 0);
      assert.equal(await limiter.take('203.0.113.7'), true);
    } finally {
      await store.close();
      await pgQuery(url, `DROP TABLE IF EXISTS "${tableName}", "${tableName}_limits"`);
    }
  });
});

describe('PostgresStore destroyAll', () => {
  it('postgres destroyAll when sessions span several batches around a run of user contexts then another store hears each removed key once, without a stamp, and the contexts stay', async () => {
    const { url } = await fast();
    const clock = new ManualClock();
    const tableName = `destroy_all_${++tables}`;
    const a = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    const b = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0 });
    const quiet = new PostgresStore({ connectionString: url, tableName, clock, sweepIntervalMs: 0, notify: false });
    const heard: Array<[string, string | undefined]> = [];
    const off = b.subscribe((key, stamp) => heard.push([key, stamp]));
    try {
      await a.ready();
      assert.equal(await b.feedListening(), true);
      const now = clock.now();
      // In key order: 1,250 sessions ('a…'), 2,500 user contexts ('user:…', whole batches of them), 1,250 sessions ('z…').
      // Every fifth session is already past its idle deadline, every seventh past its absolute one; every third has an owner.
      await pgQuery(url, `INSERT INTO "${tableName}" SELECT CASE WHEN g % 2 = 0 THEN 'a' ELSE 'z' END || g, '{}', 1,
        CASE WHEN g % 3 = 0 THEN 'u' || g % 4 END, $1::bigint, $1::bigint,
        $1::bigint + CASE WHEN g % 5 = 0 THEN 0 ELSE 60000 END, $1::bigint + CASE WHEN g % 7 = 0 THEN 0 ELSE 60000 END
        FROM generate_series(1, 2500) g`, [now]);
      await pgQuery(url, `INSERT INTO "${tableName}" SELECT 'user:' || g, '{}', 1, NULL, $1::bigint, $1::bigint, $1::bigint + 60000, $1::bigint + 60000
        FROM generate_series(1, 2500) g`, [now]);
      const dead = Array.from({ length: 2500 }, (_, i) => i + 1).filter((g) => g % 5 === 0 || g % 7 === 0).length;
      assert.equal(await a.destroyAll(), 2500 - dead, 'the live sessions only');
      assert.equal(await a.count(), 0, 'no session left');
      assert.equal(Number((await pgQuery<{ n: string }>(url, `SELECT count(*) AS n FROM "${tableName}" WHERE key LIKE 'user:%'`))[0]!.n), 2500, 'the user contexts stay');
      assert.deepEqual(await a.listByUser('u1'), []);
      // Notifications arrive in commit order: once the sentinel is heard, every removal is.
      const sentinel = makeRecord(clock);
      await a.set(sentinel, 0);
      await until('the sentinel', () => heard.some(([key]) => key === sentinel.key));
      const removals = heard.filter(([key]) => key !== sentinel.key);
      assert.equal(removals.length, 2500, 'each removed key once');
      assert.equal(new Set(removals.map(([key]) => key)).size, 2500);
      assert.ok(removals.every(([key, stamp]) => /^[az]\d+$/.test(key) && stamp === undefined), 'sessions only, without a stamp');

      // With notify off the statement has no pg_notify: it removes the same way and sends nothing.
      heard.length = 0;
      const records = [makeRecord(clock, { userId: 'u1' }), makeRecord(clock)];
      for (const r of records) await a.set(r, 0);
      await until('their writes', () => heard.length === records.length);
      assert.equal(await quiet.destroyAll(), records.length + 1, 'these and the sentinel');
      const after = makeRecord(clock);
      await a.set(after, 0);
      await until('the next write', () => heard.some(([key]) => key === after.key));
      assert.deepEqual(heard.map(([key]) => key), [...records.map((r) => r.key), after.key]);
      assert.equal(await a.get(records[0]!.key), null);
      assert.deepEqual(await a.listByUser('u1'), []);
    } finally {
      off();
      await Promise.all([a.close(), b.close(), quiet.close()]);
      await pgQuery(url, `DROP TABLE IF EXISTS "${tableName}", "${tableName}_limits"`);
    }
  });

  it('postgres destroyAll when a write holds a session\'s row then waits for it rather than skip it, and sends again a batch PostgreSQL ends to break a deadlock', async () => {
    const { url } = await fast();
    const clock = new ManualClock();
    const tableName = `destroy_all_lock_${++tables}`;
    // The store's sessions check for a deadlock after 2 s, the holder's after a minute: PostgreSQL ends the store's statement.
    const pool = new pg.Pool({ connectionString: url, options: '-c deadlock_timeout=2s' });
    const store = new PostgresStore({ pool, tableName, clock, sweepIntervalMs: 0 });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      const records = Array.from({ length: 20 }, () => makeRecord(clock));
      // The statement deletes its batch in an order of its own: a round whose held row comes first
      // there has nothing to cross, and the next holds another row (at most two rounds).
      for (const held of records) {
        for (const r of records) assert.deepEqual(await store.set(r, 0), { ok: true });
        await holder.query('BEGIN');
        await holder.query(`SET LOCAL deadlock_timeout = '60s'`);
        await holder.query(`SELECT 1 FROM "${tableName}" WHERE key = $1 FOR UPDATE`, [held.key]);
        const destroying = store.destroyAll();
        destroying.catch(() => {});
        // Asked on another connection: a transaction sees pg_stat_activity as it was at its first look.
        await until('destroyAll waiting for the held row', async () => (await pgQuery(url, `SELECT 1 FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH batch%'`)).length === 1);
        // The rows the waiting statement has deleted carry its transaction as xmax.
        const taken = await holder.query<{ key: string }>(`SELECT key FROM "${tableName}"
          WHERE xmax <> '0'::xid AND xmax <> pg_current_xact_id()::xid`);
        if (taken.rows.length === 0) {
          await holder.query('COMMIT');
          assert.equal(await destroying, records.length, 'the held row is removed once it is released');
          continue;
        }
        // Deleting one of them waits for the store's statement, which waits for us: a deadlock.
        await holder.query(`DELETE FROM "${tableName}" WHERE key = $1`, [taken.rows[0]!.key]);
        await holder.query('COMMIT');
        assert.equal(await destroying, records.length - 1, 'sent again after the deadlock, it removes all but the row we deleted');
        assert.equal(await store.count(), 0);
        return;
      }
      assert.fail('no round crossed the statement\'s locks');
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
      await store.close();
      await pool.end();
      await pgQuery(url, `DROP TABLE IF EXISTS "${tableName}", "${tableName}_limits"`);
    }
  });
});
