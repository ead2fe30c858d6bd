/**
 * Builds the Tether engine of a stack over the store it names (memory, SQLite, Redis, tiered over
 * Redis), with the options a new user gets by default (CSRF on, touch throttled, JSON codec).
 * @module
 */
import { createTether } from 'tether';
import type { Tether, SessionStore } from 'tether';
import type { StoreKind } from '../lib/stacks.js';
import type { StackEnv } from './context.js';
import { BENCH_SECRET } from '../lib/workload.js';
import type { ShopSession } from '../lib/workload.js';

/** Loaded by name at run time, so a checkout where a store is still missing can run the others. */
async function load(subpath: string): Promise<Record<string, unknown>> {
  const spec: string = `tether/${subpath}`;
  return (await import(spec)) as Record<string, unknown>;
}

type StoreCtor = new (options: Record<string, unknown>) => SessionStore;

export async function storeFor(kind: StoreKind, env: StackEnv): Promise<SessionStore | undefined> {
  switch (kind) {
    case 'memory':
      return undefined; // the engine's default MemoryStore
    case 'sqlite': {
      const { SqliteStore } = (await load('sqlite')) as { SqliteStore: StoreCtor };
      return new SqliteStore({ path: env.sqlitePath });
    }
    case 'redis': {
      const { RedisStore } = (await load('redis')) as { RedisStore: StoreCtor };
      return new RedisStore({ url: env.redisUrl });
    }
    case 'tiered': {
      const { RedisStore } = (await load('redis')) as { RedisStore: StoreCtor };
      const { TieredStore } = (await load('tiered')) as { TieredStore: StoreCtor };
      return new TieredStore({ shared: new RedisStore({ url: env.redisUrl }) });
    }
    default:
      throw new Error(`no Tether store "${kind}"`);
  }
}

export async function tetherFor(kind: StoreKind, env: StackEnv): Promise<Tether<ShopSession>> {
  const store = await storeFor(kind, env);
  return createTether<ShopSession>({ secrets: [BENCH_SECRET], production: false, ...(store ? { store } : {}) });
}
