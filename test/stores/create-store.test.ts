/** createStore and parseStoreUrl: every accepted URL form, the default SQLite path, bad URLs, lazy drivers. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createStore, parseStoreUrl } from '../../src/stores/index.js';
import type { SqliteStore } from '../../src/stores/sqlite/index.js';
import type { TieredStore } from '../../src/stores/tiered/index.js';
import { ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';

const temps: TempSqliteFile[] = [];
after(async () => {
  for (const t of temps) await t.remove();
});

/** Each URL is refused with STORE_URL_INVALID, a message matching its pattern and no password (hunter2) in it. */
async function rejectsEach(cases: ReadonlyArray<[string, RegExp]>): Promise<void> {
  for (const [url, message] of cases) {
    await assert.rejects(createStore(url), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'STORE_URL_INVALID', url);
      assert.match(err.message, message, url);
      assert.ok(!err.message.includes('hunter2'), 'the password stays out of the message');
      return true;
    });
  }
}

const loadedDrivers = (): string[] => Object.keys(createRequire(import.meta.url).cache)
  .filter((p) => /[\\/]node_modules[\\/](ioredis|pg)[\\/]/.test(p));

describe('createStore', () => {
  // First in the file, before anything could have loaded a network driver into this process.
  it('createStore when given memory and sqlite URLs then loads neither ioredis nor pg', async () => {
    const tmp = await tempSqliteFile();
    temps.push(tmp);
    for (const url of ['memory', `sqlite:${tmp.path}`]) await (await createStore(url)).close();
    assert.deepEqual(loadedDrivers(), []);
  });

  it('createStore when given memory or memory: then returns a working MemoryStore on the given clock', async () => {
    const clock = new ManualClock();
    for (const url of ['memory', 'memory:']) {
      const store = await createStore(url, { clock });
      assert.equal(store.name, 'memory');
      const rec = makeRecord(clock, { expiresAt: clock.now() + 100 });
      await store.set(rec, 0);
      assert.equal((await store.get(rec.key))?.data, rec.data);
      clock.advance(100);
      assert.equal(await store.get(rec.key), null, 'expiry follows the injected clock');
      await store.close();
    }
  });

  it('createStore when given sqlite with a relative path then opens that file against the working folder', async () => {
    const tmp = await tempSqliteFile('rel.db');
    temps.push(tmp);
    const rel = relative(process.cwd(), tmp.path);
    assert.deepEqual(parseStoreUrl(`sqlite:${rel}`), { kind: 'sqlite', path: tmp.path });
    const store = await createStore(`sqlite:${rel}`);
    assert.equal(store.name, 'sqlite');
    await store.close();
    assert.ok(existsSync(tmp.path));
  });

  it('createStore when given sqlite: alone then uses sessions.db in dataDir, or in ./data by default', async () => {
    const tmp = await tempSqliteFile();
    temps.push(tmp);
    const dataDir = join(tmp.dir, 'state');
    const clock = new ManualClock();
    const store = await createStore('sqlite:', { dataDir, clock });
    const rec = makeRecord(clock);
    await store.set(rec, 0);
    await store.close();
    assert.ok(existsSync(join(dataDir, 'sessions.db')), 'the folder and file were created');
    assert.deepEqual(parseStoreUrl('sqlite:'), { kind: 'sqlite', path: resolve('data', 'sessions.db') });
    assert.deepEqual(parseStoreUrl('sqlite::memory:'), { kind: 'sqlite', path: ':memory:' });
    assert.deepEqual(parseStoreUrl('sqlite:/var/lib/app/s.db'), { kind: 'sqlite', path: '/var/lib/app/s.db' });
  });

  it('createStore when a sqlite URL carries parameters then opens the file with them, through a near-cache when asked, and refuses any it does not know', async () => {
    const tmp = await tempSqliteFile('params.db');
    temps.push(tmp);
    assert.deepEqual(parseStoreUrl(`sqlite:${tmp.path}?synchronous=FULL&busyTimeoutMs=250&cache=eventual&cacheMaxBytes=65536`), {
      kind: 'sqlite', path: tmp.path, options: { synchronous: 'FULL', busyTimeoutMs: 250 }, cache: { consistency: 'eventual', maxBytes: 65536 },
    });
    assert.deepEqual(parseStoreUrl('sqlite:?cache=fenced', { dataDir: tmp.dir }), { kind: 'sqlite', path: join(tmp.dir, 'sessions.db'), cache: { consistency: 'fenced' } });
    const full = await createStore(`sqlite:${tmp.path}?synchronous=FULL`);
    assert.equal(full.name, 'sqlite');
    assert.equal((full as SqliteStore).synchronous, 'FULL');
    await full.close();

    const clock = new ManualClock();
    const tiered = await createStore(`sqlite:${tmp.path}?cache=eventual`, { clock }) as TieredStore;
    try {
      assert.equal(tiered.name, 'tiered');
      const rec = makeRecord(clock);
      await tiered.set(rec, 0);
      const deadline = Date.now() + 5_000;
      while (tiered.stats().hits === 0 && Date.now() < deadline) {
        assert.equal((await tiered.get(rec.key))?.data, rec.data);
        await delay(20);
      }
      assert.ok(tiered.stats().hits > 0, 'reads are answered from the local copy');
    } finally {
      await tiered.close();
    }

    for (const url of [`sqlite:${tmp.path}?mode=ro`, `sqlite:${tmp.path}?synchronous=FULL&journal=wal`, 'sqlite:what?.db']) {
      await assert.rejects(createStore(url), { code: 'STORE_URL_INVALID', message: /parameter that is not one of synchronous, busyTimeoutMs, sweepIntervalMs, cache, cacheMaxBytes/ });
    }
    assert.ok(!existsSync(join(process.cwd(), 'what')), 'nothing was created for a refused URL');
    await assert.rejects(createStore(`sqlite:${tmp.path}?synchronous=OFF`), { code: 'OPTIONS_INVALID', message: /synchronous/ });
  });

  it('parseStoreUrl when given redis or postgres URLs then chooses that store without connecting', () => {
    assert.deepEqual(parseStoreUrl('redis://127.0.0.1:6379/2'), { kind: 'redis', url: 'redis://127.0.0.1:6379/2' });
    assert.deepEqual(parseStoreUrl('rediss://user:pw@cache.internal:6380'), { kind: 'redis', url: 'rediss://user:pw@cache.internal:6380' });
    assert.deepEqual(parseStoreUrl('postgres://app@127.0.0.1/shop'), { kind: 'postgres', connectionString: 'postgres://app@127.0.0.1/shop' });
    assert.deepEqual(parseStoreUrl('postgresql://app:pw@db:5433/shop?sslmode=require'),
      { kind: 'postgres', connectionString: 'postgresql://app:pw@db:5433/shop?sslmode=require' });
  });

  it('parseStoreUrl when a redis URL carries Tether parameters then takes them out and leaves the driver its own, byte for byte', () => {
    assert.deepEqual(parseStoreUrl('redis://:pw@127.0.0.1:6379/2?family=6&keyPrefix=app%3A&reportExpired=true&sweepIntervalMs=5000&cache=eventual&cacheMaxBytes=1048576'), {
      kind: 'redis',
      url: 'redis://:pw@127.0.0.1:6379/2?family=6',
      options: { keyPrefix: 'app:', reportExpired: true, sweepIntervalMs: 5000 },
      cache: { consistency: 'eventual', maxBytes: 1048576 },
    });
    assert.deepEqual(parseStoreUrl('rediss://cache.internal?reportExpired=0'),
      { kind: 'redis', url: 'rediss://cache.internal', options: { reportExpired: false } });
    assert.deepEqual(parseStoreUrl('redis://127.0.0.1?cache=fenced'), { kind: 'redis', url: 'redis://127.0.0.1', cache: { consistency: 'fenced' } });
    // Another store's parameter is not Tether's here: the driver gets it.
    assert.deepEqual(parseStoreUrl('redis://127.0.0.1?tableName=x'), { kind: 'redis', url: 'redis://127.0.0.1?tableName=x' });
  });

  it('parseStoreUrl when a postgres URL carries Tether parameters then takes them out and keeps the driver parameters as written', () => {
    assert.deepEqual(parseStoreUrl('postgresql://app:pw@db:5433/shop?options=-c%20statement_timeout%3D5000&tableName=shop_sessions&schema=app&sslmode=require&cache=fenced'), {
      kind: 'postgres',
      connectionString: 'postgresql://app:pw@db:5433/shop?options=-c%20statement_timeout%3D5000&sslmode=require',
      options: { tableName: 'shop_sessions', schema: 'app' },
      cache: { consistency: 'fenced' },
    });
    assert.deepEqual(parseStoreUrl('postgres://app@127.0.0.1/shop?sweepIntervalMs=0'),
      { kind: 'postgres', connectionString: 'postgres://app@127.0.0.1/shop', options: { sweepIntervalMs: 0 } });
  });

  it('parseStoreUrl when given redis+sentinel or redis+cluster URLs then lists the hosts, the master name, the database and the credentials', () => {
    assert.deepEqual(parseStoreUrl('redis+sentinel://app:s%40cret@10.0.0.1,10.0.0.2:26380,[::1]:26381/mymaster/2?keyPrefix=shop:&cache=fenced'), {
      kind: 'redis',
      sentinel: {
        sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }, { host: '::1', port: 26381 }],
        name: 'mymaster', db: 2, username: 'app', password: 's@cret',
      },
      options: { keyPrefix: 'shop:' },
      cache: { consistency: 'fenced' },
    });
    assert.deepEqual(parseStoreUrl('redis+sentinel://sentinel.internal/primary'),
      { kind: 'redis', sentinel: { sentinels: [{ host: 'sentinel.internal', port: 26379 }], name: 'primary' } });
    assert.deepEqual(parseStoreUrl('redis+cluster://:pw@10.0.0.1:7000,10.0.0.2'), {
      kind: 'redis', cluster: { nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 6379 }], password: 'pw' },
    });
  });

  it('createStore when a redis+sentinel or redis+cluster URL is malformed then rejects with STORE_URL_INVALID saying what is wrong, never the password', async () => {
    const cases: Array<[string, RegExp]> = [
      ['redis+sentinel://:hunter2@10.0.0.1', /ends with \/NAME/],
      ['redis+sentinel://:hunter2@10.0.0.1/', /ends with \/NAME/],
      ['redis+sentinel://:hunter2@10.0.0.1/a/1/x', /ends with \/NAME/],
      ['redis+sentinel://:hunter2@10.0.0.1/a/zero', /database must be a whole number/],
      ['redis+sentinel://:hunter2@10.0.0.1:99999/a', /host list must be host\[:port\]/],
      ['redis+sentinel://:hunter2@10.0.0.1,,10.0.0.2/a', /host list must be host\[:port\]/],
      ['redis+cluster://:hunter2@', /host list must be host\[:port\]/],
      ['redis+cluster://:hunter2@10.0.0.1:7000/1', /names no database/],
      ['redis+cluster://:hunter2@10.0.0.1?family=6', /parameter that is not one of keyPrefix/],
      ['redis+cluster://:hunter2@10.0.0.1?cache=sometimes', /cache must be fenced or eventual/],
    ];
    await rejectsEach(cases);
  });

  it('createStore when a Tether parameter in the URL is wrong then rejects with STORE_URL_INVALID naming it and never the password', async () => {
    const cases: Array<[string, RegExp]> = [
      ['redis://:hunter2@127.0.0.1?cache=lazy', /cache must be fenced or eventual/],
      ['redis://:hunter2@127.0.0.1?cache=', /cache is empty/],
      ['redis://:hunter2@127.0.0.1?reportExpired=yes', /reportExpired must be true or false/],
      ['redis://:hunter2@127.0.0.1?sweepIntervalMs=1e3', /sweepIntervalMs must be a whole number/],
      ['redis://:hunter2@127.0.0.1?sweepIntervalMs=-1', /sweepIntervalMs must be a whole number/],
      ['redis://:hunter2@127.0.0.1?keyPrefix=', /keyPrefix is empty/],
      ['redis://:hunter2@127.0.0.1?keyPrefix=a&keyPrefix=b', /sets keyPrefix more than once/],
      ['redis://:hunter2@127.0.0.1?cacheMaxBytes=1000', /cacheMaxBytes without cache=fenced or cache=eventual/],
      ['redis://:hunter2@127.0.0.1?keyPrefix=%E0%A4%A', /does not percent-decode/],
      ['postgres://u:hunter2@127.0.0.1/db?tableName=', /tableName is empty/],
      ['postgres://u:hunter2@127.0.0.1/db?cache=eventual&cacheMaxBytes=lots', /cacheMaxBytes must be a whole number/],
    ];
    await rejectsEach(cases);
  });

  it('createStore when given a URL it does not know then rejects with STORE_URL_INVALID naming the forms and no password', async () => {
    const bad = ['', 'mysql://root:hunter2@127.0.0.1/db', 'Memory', 'memory://x', 'sqlite://relative.db', 'redis://', 'postgres://',
      'redis:127.0.0.1', 'http://127.0.0.1', '  memory', 'file:sessions.db'];
    for (const url of bad) {
      await assert.rejects(createStore(url), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'STORE_URL_INVALID', url);
        for (const form of ['memory', 'sqlite:PATH', 'redis://', 'rediss://', 'postgres://', 'postgresql://']) {
          assert.ok(err.message.includes(form), `message for ${JSON.stringify(url)} names ${form}: ${err.message}`);
        }
        assert.ok(!err.message.includes('hunter2'), 'the password stays out of the message');
        return true;
      });
    }
    await assert.rejects(createStore(42 as never), { code: 'STORE_URL_INVALID' });
  });

  it('createStore when given an unknown option then rejects with OPTIONS_INVALID', async () => {
    await assert.rejects(createStore('memory', { dir: 'x' } as never), { code: 'OPTIONS_INVALID', message: /options\.dir is not an option/ });
  });
});
