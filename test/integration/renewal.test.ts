/**
 * The renewal timeout over every real backend, two engines (two processes' worth) on each: the ID
 * renewed in one process, its old cookie followed in the other within the grace and dead after it,
 * the user's session list showing one session, and two processes renewing the same session at once
 * losing neither change and leaving no copy behind.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tether } from '../../src/core/engine.js';
import type { SessionStore } from '../../src/core/store.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { cookiePair, SECRET_A, sleep, trip, view } from '../unit/support.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';

const RENEWAL = { intervalMs: 2_000, graceMs: 1_000 };

let redis: RedisServer;
let postgres: PostgresServer;
let sqlite: TempSqliteFile;
let prefixes = 0;

before(async () => {
  [redis, postgres, sqlite] = await Promise.all([startRedis(), startPostgres({ fast: true }), tempSqliteFile()]);
});
after(async () => {
  await Promise.all([redis?.dispose(), postgres?.dispose(), sqlite?.remove()]);
});

const backends: Array<{ name: string; pair(): [SessionStore, SessionStore] }> = [
  { name: 'SqliteStore', pair: () => [
    new SqliteStore({ path: sqlite.path, sweepIntervalMs: 0, changePollMs: 20 }),
    new SqliteStore({ path: sqlite.path, sweepIntervalMs: 0, changePollMs: 20 }),
  ] },
  { name: 'RedisStore', pair: () => {
    const keyPrefix = `renew${++prefixes}:`;
    return [new RedisStore({ url: redis.url, keyPrefix }), new RedisStore({ url: redis.url, keyPrefix })];
  } },
  { name: 'PostgresStore', pair: () => {
    const tableName = `renew_sessions_${++prefixes}`;
    return [
      new PostgresStore({ connectionString: postgres.url, tableName, sweepIntervalMs: 0 }),
      new PostgresStore({ connectionString: postgres.url, tableName, sweepIntervalMs: 0 }),
    ];
  } },
  { name: 'TieredStore over RedisStore', pair: () => {
    const keyPrefix = `renew${++prefixes}:`;
    return [
      new TieredStore({ shared: new RedisStore({ url: redis.url, keyPrefix }) }),
      new TieredStore({ shared: new RedisStore({ url: redis.url, keyPrefix }) }),
    ];
  } },
];

describe('renewal over real backends', () => {
  for (const backend of backends) {
    it(`${backend.name}: renewal when one process renews the ID then the other follows the old cookie within the grace only, and racing renewals lose nothing`, async () => {
      const [sa, sb] = backend.pair();
      const a = new Tether({ secrets: [SECRET_A], store: sa, renewal: RENEWAL });
      const b = new Tether({ secrets: [SECRET_A], store: sb, renewal: RENEWAL });
      try {
        const first = (await trip(a, undefined, (s) => {
          s.set('cart', ['apple']);
          s.login('u1');
        })).cookie!;
        await sleep(RENEWAL.intervalMs + 100);
        const renewed = cookiePair((await trip(a, first, () => {}, 'GET')).setCookies);
        assert.ok(renewed !== undefined && renewed !== first, 'renewed');

        // The other process, within the grace: the old cookie opens the session, its write lands, the new cookie goes out.
        const late = await trip(b, first, (s) => s.update((d) => void (d.cart = [...(d.cart as string[]), 'pear'])));
        assert.equal(cookiePair(late.setCookies), renewed);
        await trip(a, renewed, (s) => assert.deepEqual(s.get('cart'), ['apple', 'pear']), 'GET');
        assert.equal((await b.listUserSessions('u1')).length, 1);

        // Both processes find the new ID due at once.
        await sleep(RENEWAL.intervalMs + 100);
        const ra = await a.open(view('GET', { cookie: renewed }));
        const rb = await b.open(view('GET', { cookie: renewed }));
        await ra.update((d) => void (d.a = 1));
        await rb.update((d) => void (d.b = 2));
        const [ca, cb] = (await Promise.all([a.commit(ra), b.commit(rb)])).map((c) => cookiePair(c));
        assert.ok(ca !== undefined && ca !== renewed, 'renewed again');
        assert.equal(cb, ca, 'both answered the one new cookie');
        await trip(b, ca, (s) => {
          assert.equal(s.get('a'), 1);
          assert.equal(s.get('b'), 2);
          assert.deepEqual(s.get('cart'), ['apple', 'pear']);
        }, 'GET');
        assert.equal((await a.listUserSessions('u1')).length, 1, 'the losing renewal left no copy');

        await sleep(RENEWAL.graceMs + 100);
        for (const [engine, cookie] of [[a, first], [b, first], [a, renewed], [b, renewed]] as const) {
          const dead = await trip(engine, cookie, () => {}, 'GET');
          assert.equal(dead.session.isNew, true, 'an old cookie past its grace names no session');
        }
        await trip(a, ca, (s) => assert.equal(s.get('b'), 2), 'GET');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  }
});
