/**
 * createStore: a SessionStore from one URL (an env var or CLI flag), loading only the driver that URL needs.
 *
 * Redis and PostgreSQL stores are loaded with `import()`, so `createStore('sqlite:…')` never loads
 * ioredis or pg; SQLite's driver is itself loaded only when a SqliteStore is constructed.
 * @module
 */
import { resolve } from 'node:path';
import { StoreUrlInvalidError } from '../core/errors.js';
import { checkOptions } from '../core/options-check.js';
import type { Clock, SessionStore } from '../core/store.js';
import { MemoryStore } from './memory/index.js';
import { SqliteStore } from './sqlite/index.js';

export interface CreateStoreOptions {
  /** Folder of the default SQLite file for the URL `sqlite:`. @default './data' (against the working folder) */
  dataDir?: string;
  clock?: Clock;
}

export const CREATE_STORE_DEFAULTS = { dataDir: './data', sqliteFileName: 'sessions.db' } as const;

/** The accepted forms, as every STORE_URL_INVALID message lists them. */
export const STORE_URL_FORMS = [
  'memory',
  'sqlite:PATH (relative to the working folder)',
  'sqlite: (sessions.db in options.dataDir, default ./data)',
  'redis://[user:password@]host[:port][/db]',
  'rediss://… (Redis over TLS)',
  'postgres://[user:password@]host[:port]/database',
  'postgresql://…',
] as const;

/** What a URL names, before anything is opened or loaded. */
export type StoreTarget =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string }
  | { kind: 'postgres'; connectionString: string };

/** Parses a store URL; throws STORE_URL_INVALID naming the accepted forms. Opens and loads nothing. */
export function parseStoreUrl(url: string, options: CreateStoreOptions = {}): StoreTarget {
  checkOptions('createStore', options, { dataDir: 'nonEmptyString', clock: 'clock' });
  if (typeof url !== 'string') throw invalid('the store URL must be a string');
  if (url === 'memory' || url === 'memory:') return { kind: 'memory' };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) throw invalid('write a SQLite URL as sqlite:PATH, without "//" (e.g. sqlite:/var/lib/app/sessions.db)');
    if (path === '') return { kind: 'sqlite', path: resolve(options.dataDir ?? CREATE_STORE_DEFAULTS.dataDir, CREATE_STORE_DEFAULTS.sqliteFileName) };
    if (path === ':memory:') return { kind: 'sqlite', path };
    return { kind: 'sqlite', path: resolve(path) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme === 'redis' || scheme === 'rediss') {
    requireHost(url, scheme);
    return { kind: 'redis', url };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    requireHost(url, scheme);
    return { kind: 'postgres', connectionString: url };
  }
  throw invalid(`the store URL ${describe(url)} is not understood`);
}

/**
 * Builds the store a URL names. Redis and PostgreSQL stores connect lazily, as their constructors do.
 * @example
 * const store = await createStore(process.env.TETHER_STORE ?? 'sqlite:');
 */
export async function createStore(url: string, options: CreateStoreOptions = {}): Promise<SessionStore> {
  const target = parseStoreUrl(url, options);
  const clock = options.clock === undefined ? {} : { clock: options.clock };
  switch (target.kind) {
    case 'memory':
      return new MemoryStore(clock);
    case 'sqlite':
      return new SqliteStore({ path: target.path, ...clock });
    case 'redis': {
      const { RedisStore } = await import('./redis/index.js');
      return new RedisStore({ url: target.url, ...clock });
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres/index.js');
      return new PostgresStore({ connectionString: target.connectionString, ...clock });
    }
  }
}

function requireHost(url: string, scheme: string): void {
  let host = '';
  try {
    host = new URL(url).hostname;
  } catch {
    throw invalid(`the ${scheme}:// URL cannot be parsed`);
  }
  if (host === '') throw invalid(`the ${scheme}:// URL names no host`);
}

/** The scheme only: a URL may carry a password, which must never reach an error message or a log. */
function describe(url: string): string {
  if (url === '') return '(empty)';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]{0,20}):/.exec(url)?.[1];
  return scheme ? `"${scheme}:…"` : 'given';
}

function invalid(reason: string): StoreUrlInvalidError {
  return new StoreUrlInvalidError(`${reason}; use one of: ${STORE_URL_FORMS.join(', ')}`);
}
