/**
 * Real backends for a test file that runs one case per backend with two clients of each, as two
 * processes would hold: a SQLite file, redis-server and PostgreSQL, started before the file's tests
 * and stopped after them.
 */
import { after, before } from 'node:test';
import type { SessionStore } from '../../src/core/store.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { tempSqliteFile } from './sqlite.js';
import type { TempSqliteFile } from './sqlite.js';
import { startRedis } from './redis.js';
import type { RedisServer } from './redis.js';
import { startPostgres } from './postgres.js';
import type { PostgresServer } from './postgres.js';

/** Two clients of one backend. */
export interface BackendPair {
  a: SessionStore;
  b: SessionStore;
}

export interface SharedBackend {
  name: string;
  /** Two new clients, on keys (a prefix, a table) no other pair uses. */
  pair(): BackendPair;
}

export interface RealBackends {
  /** SqliteStore (two connections to one file), RedisStore, PostgresStore, TieredStore over RedisStore. */
  readonly list: readonly SharedBackend[];
  /** The redis-server, once started. */
  readonly redis: RedisServer;
}

/** Starts the backends before the file's tests (registers `before` and `after`); `name` sets their keys apart. */
export function realBackends(name: string): RealBackends {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let sqlite: TempSqliteFile;
  let n = 0;
  before(async () => {
    [redis, postgres, sqlite] = await Promise.all([startRedis(), startPostgres({ fast: true }), tempSqliteFile()]);
  });
  after(async () => {
    await Promise.all([redis?.dispose(), postgres?.dispose(), sqlite?.remove()]);
  });
  const redisPair = (tiered: boolean): BackendPair => {
    const keyPrefix = `${name}${++n}:`;
    const client = (): SessionStore => {
      const store = new RedisStore({ url: redis.url, keyPrefix });
      return tiered ? new TieredStore({ shared: store }) : store;
    };
    return { a: client(), b: client() };
  };
  return {
    get redis() {
      return redis;
    },
    list: [
      { name: 'SqliteStore (two connections to one file)', pair: () => ({
        a: new SqliteStore({ path: sqlite.path, sweepIntervalMs: 0, changePollMs: 20 }),
        b: new SqliteStore({ path: sqlite.path, sweepIntervalMs: 0, changePollMs: 20 }),
      }) },
      { name: 'RedisStore', pair: () => redisPair(false) },
      { name: 'PostgresStore', pair: () => {
        const tableName = `${name}_sessions_${++n}`;
        return {
          a: new PostgresStore({ connectionString: postgres.url, tableName, sweepIntervalMs: 0 }),
          b: new PostgresStore({ connectionString: postgres.url, tableName, sweepIntervalMs: 0 }),
        };
      } },
      { name: 'TieredStore over RedisStore', pair: () => redisPair(true) },
    ],
  };
}

/** A redis-server and a PostgreSQL, started before the tests of the scope it is called in and stopped after them. */
export function redisAndPostgres(): { readonly redis: RedisServer; readonly postgres: PostgresServer } {
  let redis: RedisServer;
  let postgres: PostgresServer;
  before(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres({ fast: true })]);
  });
  after(async () => {
    await Promise.all([redis?.dispose(), postgres?.dispose()]);
  });
  return {
    get redis() {
      return redis;
    },
    get postgres() {
      return postgres;
    },
  };
}
