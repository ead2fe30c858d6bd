/**
 * Heap bytes per session for one session holder, in a fresh process started with --expose-gc: holds
 * `count` sessions of about 200 bytes of data, then reports (heap used after GC − heap used before) / count.
 *
 * Subjects: 'tether-memory' (sessions created through the engine into its MemoryStore), 'tether-tiered'
 * (the tiered store's local cache, filled by reads through the engine; its shared store is a redis-server
 * in another process), 'express-session-memory' (express-session's MemoryStore, holding what its
 * middleware would save: the data plus its cookie object).
 * Usage (by bench/lib/memory.ts, compiled by bench/lib/build.ts): node --expose-gc memory-probe.mjs <subject> <count> [redisUrl]
 * @module
 */
import { randomBytes } from 'node:crypto';
import session from 'express-session';
import { createTether, MemoryStore } from 'tether';
import type { Tether } from 'tether';
import { RedisStore } from 'tether/redis';
import { TieredStore } from 'tether/tiered';
import { seedData } from './workload.js';
import type { ShopSession } from './workload.js';
import { BENCH_SECRET } from './workload.js';

const [subject, countArg, redisUrl] = process.argv.slice(2);
const count = Number(countArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('memory-probe needs node --expose-gc');

function heapAfterGc(): number {
  for (let i = 0; i < 4; i++) gc!();
  return process.memoryUsage().heapUsed;
}

const view = { method: 'POST', header: () => undefined };

async function createThrough(tether: Tether<ShopSession>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = await tether.open(view);
    Object.assign(s.data, seedData(i));
    await tether.commit(s);
  }
}

async function tetherMemory(): Promise<Record<string, number>> {
  const store = new MemoryStore({ maxBytes: 2 ** 31 - 1, sweepIntervalMs: 0 });
  const tether = createTether<ShopSession>({ secrets: [BENCH_SECRET], production: false, store });
  await createThrough(tether, 10); // compile the paths before the baseline
  const before = heapAfterGc();
  await createThrough(tether, count);
  const after = heapAfterGc();
  const held = await store.count();
  return { bytesPerSession: (after - before) / count, sessions: held - 10, storeEstimate: store.bytes / held };
}

async function tetherTiered(): Promise<Record<string, number>> {
  const shared = new RedisStore({ url: redisUrl });
  // The local cache must hold every session: give it room for all of them.
  const store = new TieredStore({ shared, maxBytes: 2 ** 31 - 1, closeShared: false });
  // Session keys live in one off-heap buffer; each read makes its own key string, as a request's
  // hash of its cookie does, so the cache's keys count in the figure.
  const raw = randomBytes(32 * count);
  const keyOf = (i: number): string => raw.toString('base64url', i * 32, i * 32 + 32);
  const now = Date.now();
  // Written to Redis directly (what the engine would write), then read through the tier: its own
  // writes are echoed back by the change feed and dropped, reads are what fill it.
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, k) => shared.set({
      key: keyOf(i + k), data: JSON.stringify({ d: seedData(i + k) }), version: 1, userId: null, createdAt: now, lastSeenAt: now,
      expiresAt: now + 31 * 60_000, absoluteExpiresAt: now + 12 * 3_600_000,
    }, 0)));
  }
  for (let i = 0; i < 10; i++) await store.get(keyOf(i));
  const before = heapAfterGc();
  for (let i = 10; i < count; i++) await store.get(keyOf(i));
  const after = heapAfterGc();
  const held = store.stats().entries;
  await store.close();
  await shared.close();
  return { bytesPerSession: (after - before) / (count - 10), sessions: held - 10 };
}

async function expressSessionMemory(): Promise<Record<string, number>> {
  const store = new session.MemoryStore();
  const put = (i: number): Promise<void> => new Promise((resolve, reject) => {
    // What the middleware saves for a fresh session: its Cookie (defaults) and the data.
    const data = { cookie: new session.Cookie(), ...seedData(i) } as unknown as session.SessionData;
    store.set(randomBytes(24).toString('base64url'), data, (err) => (err ? reject(err as Error) : resolve()));
  });
  for (let i = 0; i < 10; i++) await put(i);
  const before = heapAfterGc();
  for (let i = 0; i < count; i++) await put(i);
  const after = heapAfterGc();
  const sample = JSON.stringify({ cookie: new session.Cookie(), ...seedData(1) });
  return { bytesPerSession: (after - before) / count, sessions: count, storedStringBytes: sample.length };
}

const subjects: Record<string, () => Promise<Record<string, number>>> = {
  'tether-memory': tetherMemory,
  'tether-tiered': tetherTiered,
  'express-session-memory': expressSessionMemory,
};
const run = subjects[subject ?? ''];
if (!run) throw new Error(`unknown subject ${subject}; known: ${Object.keys(subjects).join(', ')}`);
const out = await run();
process.stdout.write(JSON.stringify({ subject, ...out }) + '\n');
process.exit(0);
