/**
 * bench:stores — store operations per second: `get` of an existing record, `set` of a new record
 * (create, expectedVersion 0) and a compare-and-set update (`set` with the current version), for every
 * store against a real backend on loopback: memory, SQLite (WAL, synchronous NORMAL), Redis, PostgreSQL
 * (synchronous_commit on), and the tiered cache over Redis (hits served locally, fenced and eventual).
 *
 *   npm run bench:stores [-- --quick] [-- --json FILE]
 *
 * How to read it: each figure is the median of several passes of `concurrency` callers looping for a
 * fixed time in this one process, so it is the store's throughput through its client as an app sees it,
 * not the backend's own ceiling. Compare stores within one run; this machine is shared and noisy.
 * Writes bench/results/stores.json and regenerates docs/benchmarks.md.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionStore, SessionRecord } from '../src/core/store.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { PostgresStore } from '../src/stores/postgres/index.js';
import { TieredStore } from '../src/stores/tiered/index.js';
import { startRedis } from '../test/helpers/redis.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { machine, versions } from './lib/machine.js';
import { median } from './lib/stats.js';
import { writeResults } from './lib/results.js';
import { renderReport } from './report.js';

const quick = process.argv.includes('--quick');
const jsonAt = process.argv.indexOf('--json');
const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const PASSES = quick ? 3 : 5;
const PASS_MS = quick ? 400 : 1_500;
const CONCURRENCY = 16;
const RECORDS = 1_000;
const DATA = JSON.stringify({ d: { cart: [{ productId: 'camp-mug', quantity: 2 }, { productId: 'headlamp', quantity: 1 }], theme: 'dark' }, c: 'x'.repeat(43), u: 'Mozilla/5.0 (X11; Linux x86_64) bench' });

let seq = 0;
function record(key = `bench-${process.pid}-${++seq}`.padEnd(43, 'x')): SessionRecord {
  const now = Date.now();
  return { key, data: DATA, version: 1, userId: null, createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, absoluteExpiresAt: now + 7_200_000 };
}

/** Runs `op` from CONCURRENCY callers for PASS_MS; returns operations per second. */
async function pass(op: (i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const deadline = performance.now() + PASS_MS;
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let i = w; performance.now() < deadline; i += CONCURRENCY) {
      await op(i);
      done++;
    }
  }));
  return done / ((performance.now() - start) / 1000);
}

async function measure(store: SessionStore): Promise<{ get: number; set: number; cas: number }> {
  const keys: string[] = [];
  const versionOf = new Map<string, number>();
  for (let i = 0; i < RECORDS; i++) {
    const r = record();
    await store.set(r, 0);
    keys.push(r.key);
    versionOf.set(r.key, 1);
  }
  const get = (i: number) => store.get(keys[i % RECORDS]!);
  const set = () => store.set(record(), 0);
  const cas = async (i: number) => {
    // Each caller owns the keys congruent to its index, so the version it holds is the current one.
    const key = keys[i % RECORDS]!;
    const v = versionOf.get(key)!;
    const res = await store.set({ ...record(key), version: v + 1 }, v);
    if (!res.ok) throw new Error(`unexpected CAS conflict on ${store.name}`);
    versionOf.set(key, v + 1);
  };
  for (const op of [get, set, cas]) await pass(op); // warm-up
  const runs = { get: [] as number[], set: [] as number[], cas: [] as number[] };
  for (let p = 0; p < PASSES; p++) {
    runs.get.push(await pass(get));
    runs.set.push(await pass(set));
    runs.cas.push(await pass(cas));
  }
  return { get: median(runs.get), set: median(runs.set), cas: median(runs.cas) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-bench-stores-'));
  const redis = await startRedis();
  const pg = await startPostgres();
  const rows: Array<[string, { get: number; set: number; cas: number }]> = [];
  try {
    const stores: Array<[string, () => Promise<SessionStore>]> = [
      ['memory', async () => new MemoryStore({ sweepIntervalMs: 0 })],
      ['sqlite (WAL, synchronous NORMAL)', async () => new SqliteStore({ path: join(dir, 'bench.db'), sweepIntervalMs: 0 })],
      ['redis (loopback)', async () => new RedisStore({ url: redis.url, keyPrefix: 'bench:' })],
      ['postgres (synchronous_commit on)', async () => new PostgresStore({ connectionString: pg.url, sweepIntervalMs: 0 })],
      ['tiered over redis, eventual (hits local)', async () => new TieredStore({ shared: new RedisStore({ url: redis.url, keyPrefix: 'bench-te:' }), consistency: 'eventual' })],
      ['tiered over redis, fenced', async () => new TieredStore({ shared: new RedisStore({ url: redis.url, keyPrefix: 'bench-tf:' }) })],
    ];
    for (const [name, open] of stores) {
      let store: SessionStore;
      try {
        store = await open();
      } catch (err) {
        console.error(`${name}: not measured (${(err as Error).message})`);
        continue;
      }
      const r = await measure(store);
      await store.close();
      rows.push([name, r]);
      console.log(`${name.padEnd(42)} get ${Math.round(r.get).toString().padStart(8)}/s  set ${Math.round(r.set).toString().padStart(8)}/s  cas ${Math.round(r.cas).toString().padStart(8)}/s`);
    }
  } finally {
    await redis.stop();
    await pg.dispose();
    await rm(dir, { recursive: true, force: true });
  }
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  writeResults('stores', {
    bench: 'stores',
    title: 'Store operations per second',
    generatedAt: new Date().toISOString(),
    quick,
    machine: machine(),
    versions: versions(['better-sqlite3', 'ioredis', 'pg'], true),
    command: `npm run bench:stores${quick ? ' -- --quick' : ''}`,
    summary: `Medians of ${PASSES} passes of ${PASS_MS} ms, ${CONCURRENCY} concurrent callers in one process, ${RECORDS} pre-created records of ${DATA.length} bytes. ` +
      '`get`: an existing record; `set`: a new record (create); `cas`: an update with the current version. Tiered `get` counts cache hits.',
    tables: [{
      title: 'Operations per second (median)',
      columns: ['store', 'get', 'set (create)', 'CAS update'],
      rows: rows.map(([name, r]) => [name, fmt(r.get), fmt(r.set), fmt(r.cas)]),
    }],
  }, jsonFile);
  for (const p of renderReport()) console.log(`wrote ${p}`);
}

await main();
