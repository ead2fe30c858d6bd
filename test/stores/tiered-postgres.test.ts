/** TieredStore over a real PostgresStore: the conformance suite, two nodes with fenced reads, shared fences, and a terminated LISTEN backend. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { TieredStore } from '../../src/stores/tiered/index.js';
import { PostgresStore } from '../../src/stores/postgres/index.js';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { wasUnsent } from '../../src/core/store.js';
import { waitFor } from '../helpers/redis.js';
import type { Clock, SessionStore } from '../../src/core/store.js';
import { pgQuery, startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';
import { twoNodeCases, writesAcrossFeedOutage } from '../helpers/tiered.js';

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

const query = <R extends object>(text: string): Promise<R[]> => pgQuery<R>(server.url, text);

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
  destroysAll: true,
  limits: true,
  regenerates: true,
  reportsSwept: true,
  open: (clock) => node(nextTable(), clock),
  connect: (store, clock) => node(tableOf.get(store)!, clock),
  dispose: async (store) => {
    await query(`DROP TABLE IF EXISTS "${tableOf.get(store)!}"`);
  },
});

describe('TieredStore over PostgreSQL', () => {
  it('tiered postgres when its writes fail while PostgreSQL is down, sending nothing, then once it is back the sessions are served locally again', async () => {
    const down = await startPostgres({ fast: true });
    const clock = new ManualClock();
    const shared = new PostgresStore({ connectionString: down.url, clock, sweepIntervalMs: 0, statementTimeoutMs: 500 });
    await shared.ready();
    const tier = new TieredStore({ shared, clock });
    try {
      assert.equal(await shared.feedListening(), true);
      const rec = makeRecord(clock, { userId: 'alice' });
      assert.deepEqual(await tier.set(rec, 0), { ok: true });
      await down.stop();
      await waitFor('the store to see PostgreSQL gone', 10_000, async () => shared.feedState !== 'listening');
      // Pooled connections the server closed are dropped as their end is noticed; then calls find none.
      await waitFor('a write to fail without a connection', 10_000,
        () => tier.set(makeRecord(clock), 0).then(() => false, (err: Error & { code?: string }) => err.code === 'STORE_UNAVAILABLE' && wasUnsent(err)));
      for (const write of [() => tier.set({ ...rec, version: 2, data: '{"n":2}' }, 1), () => tier.touch(rec.key, rec.expiresAt + 1_000, clock.now(), 1), () => tier.destroy(rec.key)]) {
        await assert.rejects(write(), (err: Error & { code?: string }) => err.code === 'STORE_UNAVAILABLE' && wasUnsent(err));
      }
      await down.restart();
      assert.equal(await shared.feedListening(15_000), true);
      await waitFor('the tier reading again', 10_000, () => tier.get(rec.key).then((r) => r?.version === 1, () => false));
      const hits = tier.stats().hits;
      assert.equal((await tier.get(rec.key))?.version, 1);
      assert.equal(tier.stats().hits, hits + 1, 'writes that were never sent leave nothing in doubt');
    } finally {
      await tier.close();
      await down.dispose();
    }
  });

  twoNodeCases({
    where: 'one PostgreSQL table', tag: 'tiered postgres', iterations: 200, atLeast: 60,
    pair: async (clock) => {
      const table = nextTable();
      return [await node(table, clock), await node(table, clock)];
    },
    single: (clock) => node(nextTable(), clock),
  });

  it('tiered postgres when the LISTEN backends are terminated then no read returns a version older than the last acknowledged write', async () => {
    const clock = new ManualClock();
    const table = nextTable();
    const writer = await node(table, clock);
    const reader = await node(table, clock);
    // One admin connection, opened before the cut: the cut is then one round trip. A feed reconnects
    // within 50–100 ms, which a loaded machine can spend before the loop's first iteration, so the
    // LISTEN backends are terminated again every 25 ms until the loop has seen the reader's feed down.
    const admin = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 5_000 });
    admin.on('error', () => {});
    await admin.connect();
    // A feed connection's last statement is its LISTEN, or the SELECT 1 of a fence or heartbeat.
    const terminate = async (): Promise<Array<{ ok: boolean }>> => (await admin.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE application_name = 'tether' AND (query LIKE 'LISTEN%' OR query = 'SELECT 1') AND datname = current_database()`)).rows;
    let again: NodeJS.Timeout | undefined;
    try {
      const result = await writesAcrossFeedOutage({
        writer, reader, readerShared: sharedOf.get(reader)!, clock,
        interrupt: async () => {
          const killed = await terminate();
          assert.ok(killed.length >= 2 && killed.every((k) => k.ok), `terminated ${killed.length} LISTEN backends`);
          again = setInterval(() => void terminate().catch(() => {}), 25);
        },
        restore: async () => {
          clearInterval(again);
          await admin.query('SELECT 1'); // queued behind any cut in flight: none comes after this
        },
        afterRecovery: 30, maxIterations: 10_000, maxMs: 30_000,
      });
      assert.ok(result.downIterations >= 5, `the reader's feed was seen down on ${result.downIterations} iterations`);
      assert.ok(result.hitsAfterRecovery > 0, 'the reader serves local copies again once LISTEN is back');
    } finally {
      clearInterval(again);
      await admin.end().catch(() => {});
      await writer.close();
      await reader.close();
    }
  });
});
