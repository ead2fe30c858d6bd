/** TieredStore over a real PostgresStore: the conformance suite, two nodes with fenced reads, shared fences, and a terminated LISTEN backend. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { runStoreSuite, ManualClock } from '../../src/testing/store-suite.js';
import type { Clock, SessionStore } from '../../src/core/store.js';
import { startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';
import { alternateWrites, concurrentHits, writesAcrossFeedOutage } from '../helpers/tiered.js';

let server: PostgresServer;
let tables = 0;
const nextTable = (): string => `tiered_${++tables}`;
const tableOf = new WeakMap<SessionStore, string>();
const sharedOf = new WeakMap<TieredStore, PostgresStore>();

before(async () => {
  server = await startPostgres({ fast: true });
});
after(async () => {
  await server?.dispose();
});

async function query<R extends object>(text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

/** A node: its own PostgresStore (own pool) on `tableName` behind its own tier, returned once LISTEN is active. */
async function node(tableName: string, clock: Clock): Promise<TieredStore> {
  const shared = new PostgresStore({ connectionString: server.url, tableName, clock, sweepIntervalMs: 0 });
  await shared.ready();
  const tier = new TieredStore({ shared, clock });
  tableOf.set(tier, tableName);
  sharedOf.set(tier, shared);
  assert.equal(await shared.feedListening(), true);
  return tier;
}

runStoreSuite({
  name: 'tiered over postgres',
  open: (clock) => node(nextTable(), clock),
  connect: (store, clock) => node(tableOf.get(store)!, clock),
  dispose: async (store) => {
    await query(`DROP TABLE IF EXISTS "${tableOf.get(store)!}"`);
  },
});

describe('TieredStore over PostgreSQL', () => {
  it('two tiers over one PostgreSQL table when one acknowledges a write then the other’s next read returns it', async () => {
    const clock = new ManualClock();
    const table = nextTable();
    const a = await node(table, clock);
    const b = await node(table, clock);
    try {
      assert.equal(a.consistency, 'fenced');
      await alternateWrites(a, b, clock, 200);
      for (const t of [a, b]) {
        const s = t.stats();
        assert.ok(s.hits >= 60, `copies were served locally (hits ${s.hits})`);
        assert.ok(s.invalidations >= 60, `and dropped when the other node wrote (invalidations ${s.invalidations})`);
        assert.ok(s.fences >= s.hits, 'every hit waited for a fence');
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('tiered postgres when 200 reads of cached records run at once then they share two fences', async () => {
    const clock = new ManualClock();
    const tier = await node(nextTable(), clock);
    try {
      const { hits, fences } = await concurrentHits(tier, clock, 200);
      assert.equal(hits, 200);
      assert.equal(fences, 2, 'one for the first read, one for all that began after it was sent');
    } finally {
      await tier.close();
    }
  });

  it('tiered postgres when the LISTEN backends are terminated then no read returns a version older than the last acknowledged write', async () => {
    const clock = new ManualClock();
    const table = nextTable();
    const writer = await node(table, clock);
    const reader = await node(table, clock);
    try {
      const result = await writesAcrossFeedOutage({
        writer, reader, readerShared: sharedOf.get(reader)!, clock,
        interrupt: async () => {
          // A feed connection's last statement is its LISTEN, or the SELECT 1 of a fence or heartbeat.
          const killed = await query<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
            WHERE application_name = 'tether' AND (query LIKE 'LISTEN%' OR query = 'SELECT 1') AND datname = current_database()`);
          assert.ok(killed.length >= 2 && killed.every((k) => k.ok), `terminated ${killed.length} LISTEN backends`);
        },
        afterRecovery: 30, maxIterations: 10_000, maxMs: 30_000,
      });
      assert.ok(result.hitsAfterRecovery > 0, 'the reader serves local copies again once LISTEN is back');
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});
