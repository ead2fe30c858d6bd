/**
 * Builds the Tether engine of a stack over the store it names (memory, SQLite, Redis, tiered over
 * Redis), with the options a new user gets by default (CSRF on, touch throttled, JSON codec).
 * @module
 */
import { createTether } from 'tether';
import type { Tether, SessionStore } from 'tether';
import { SqliteStore } from 'tether/sqlite';
import { RedisStore } from 'tether/redis';
import { TieredStore } from 'tether/tiered';
import type { StoreKind } from '../lib/stacks.js';
import type { StackEnv } from './context.js';
import { BENCH_SECRET } from '../lib/workload.js';
import type { ShopSession } from '../lib/workload.js';

export async function storeFor(kind: StoreKind, env: StackEnv): Promise<SessionStore | undefined> {
  switch (kind) {
    case 'memory':
      return undefined; // the engine's default MemoryStore
    case 'sqlite':
      return new SqliteStore({ path: env.sqlitePath! });
    case 'redis':
      return new RedisStore({ url: env.redisUrl });
    case 'tiered':
      return new TieredStore({ shared: new RedisStore({ url: env.redisUrl }) });
    case 'tiered-eventual':
      return new TieredStore({ shared: new RedisStore({ url: env.redisUrl }), consistency: 'eventual' });
    default:
      throw new Error(`no Tether store "${kind}"`);
  }
}

export async function tetherFor(kind: StoreKind, env: StackEnv): Promise<Tether<ShopSession>> {
  const store = await storeFor(kind, env);
  return createTether<ShopSession>({ secrets: [BENCH_SECRET], production: false, ...(store ? { store } : {}) });
}
