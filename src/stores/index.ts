/**
 * createStore: a SessionStore from one URL (an env var or CLI flag), loading only the driver that URL needs.
 *
 * Redis and PostgreSQL stores are loaded with `import()`, so `createStore('sqlite:…')` never loads
 * ioredis or pg; SQLite's driver is itself loaded only when a SqliteStore is constructed. A URL may also
 * set some of its store's options and a tiered near-cache over it as query parameters (URL_PARAMS,
 * CACHE_PARAMS; docs/stores.md, "Store URLs"), so that one environment variable describes the store.
 * @module
 */
import { resolve } from 'node:path';
import { StoreUrlInvalidError } from '../core/errors.js';
import { checkOptions } from '../core/options-check.js';
import type { Clock, SessionStore } from '../core/store.js';
import { MemoryStore } from './memory/index.js';
import { SqliteStore } from './sqlite/index.js';
import type { SqliteStoreOptions } from './sqlite/index.js';
import type { PostgresStoreOptions } from './postgres/index.js';
import type { RedisStoreOptions } from './redis/options.js';
import type { TieredConsistency } from './tiered/options.js';

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
  'sqlite:…?synchronous=FULL&cache=fenced|eventual',
  'redis://[user:password@]host[:port][/db][?keyPrefix=…&reportExpired=true&cache=fenced|eventual]',
  'rediss://… (Redis over TLS)',
  'redis+sentinel://[user:password@]host[:port][,host[:port]…]/name[/db] (Sentinels, port 26379 by default)',
  'redis+cluster://[user:password@]host[:port][,host[:port]…] (Redis Cluster seed nodes)',
  'postgres://[user:password@]host[:port]/database[?tableName=…&schema=…&cache=fenced|eventual]',
  'postgresql://…',
] as const;

/** `cache=` on a sqlite:, redis:// or postgres:// URL: a TieredStore (tether/tiered) over the store the URL names. */
export interface UrlNearCache {
  consistency: TieredConsistency;
  maxBytes?: number;
}

/** SqliteStore options a sqlite: URL may carry as query parameters. */
export type SqliteUrlOptions = Pick<SqliteStoreOptions, 'synchronous' | 'busyTimeoutMs' | 'sweepIntervalMs'>;
/*
 * The Redis and PostgreSQL ones are written out, not picked from the stores' options: those name
 * ioredis's and pg's types, optional peers a consumer of createStore('sqlite:…') may not have, and
 * these declarations would reach them. _UrlOptionsMatch, which fails to compile when they part, keeps
 * them the stores' own.
 */
/** RedisStore options a redis:// URL may carry as query parameters (RedisStoreOptions' of the same names). */
export interface RedisUrlOptions {
  keyPrefix?: string;
  reportExpired?: boolean;
  sweepIntervalMs?: number;
}
/** PostgresStore options a postgres:// URL may carry as query parameters (PostgresStoreOptions' of the same names). */
export interface PostgresUrlOptions {
  tableName?: string;
  schema?: string;
  sweepIntervalMs?: number;
}
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
type _UrlOptionsMatch = [
  Holds<Same<RedisUrlOptions, Pick<RedisStoreOptions, keyof RedisUrlOptions>>>,
  Holds<Same<PostgresUrlOptions, Pick<PostgresStoreOptions, keyof PostgresUrlOptions>>>,
];

/**
 * What a URL names, before anything is opened or loaded. `options` and `cache` appear only when the URL
 * sets one of Tether's parameters; `url` / `connectionString` is then the URL without them, as its driver
 * (ioredis, pg) receives it.
 */
export type StoreTarget =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string; options?: SqliteUrlOptions; cache?: UrlNearCache }
  | ({ kind: 'redis'; options?: RedisUrlOptions; cache?: UrlNearCache } & RedisConnection)
  | { kind: 'postgres'; connectionString: string; options?: PostgresUrlOptions; cache?: UrlNearCache };

/** A host and port of a multi-host URL. */
export interface UrlHost {
  host: string;
  port: number;
}

/** Credentials a multi-host URL carries (for the Redis servers, not the Sentinels). */
export interface UrlCredentials {
  username?: string;
  password?: string;
}

/**
 * Where Redis is: a redis:// URL for ioredis; the Sentinels and master name of
 * `redis+sentinel://host:26379,host:26379/name[/db]`; the seed nodes of `redis+cluster://host:6379,host:6379`.
 */
export type RedisConnection =
  | { url: string }
  | { sentinel: { sentinels: UrlHost[]; name: string; db?: number } & UrlCredentials }
  | { cluster: { nodes: UrlHost[] } & UrlCredentials };

type ParamKind = 'text' | 'flag' | 'integer';
/**
 * Tether's own query parameters, per scheme: taken out of the URL before the driver sees it (ioredis and
 * pg read the rest, e.g. `family=6`, `sslmode=require`). Without this, `keyPrefix` would reach ioredis as
 * its own key prefix and put a second prefix on every key the store's scripts touch.
 */
const URL_PARAMS = {
  sqlite: { synchronous: 'text', busyTimeoutMs: 'integer', sweepIntervalMs: 'integer' },
  redis: { keyPrefix: 'text', reportExpired: 'flag', sweepIntervalMs: 'integer' },
  postgres: { tableName: 'text', schema: 'text', sweepIntervalMs: 'integer' },
} as const satisfies Record<string, Record<string, ParamKind>>;
const CACHE_PARAMS = { cache: 'text', cacheMaxBytes: 'integer' } as const satisfies Record<string, ParamKind>;

/** Parses a store URL; throws STORE_URL_INVALID naming the accepted forms. Opens and loads nothing. */
export function parseStoreUrl(url: string, options: CreateStoreOptions = {}): StoreTarget {
  checkOptions('createStore', options, { dataDir: 'nonEmptyString', clock: 'clock' });
  if (typeof url !== 'string') throw invalid('the store URL must be a string');
  if (url === 'memory' || url === 'memory:') return { kind: 'memory' };
  if (url.startsWith('sqlite:')) {
    const { rest, options: sqlite, cache } = takeParams<SqliteUrlOptions>(url, 'sqlite:', URL_PARAMS.sqlite);
    // No driver reads a query here: a '?' left over is a parameter Tether does not know, not a file name.
    if (rest.includes('?')) throw unknownParameter('sqlite:', URL_PARAMS.sqlite);
    const path = rest.slice('sqlite:'.length);
    if (path.startsWith('//')) throw invalid('write a SQLite URL as sqlite:PATH, without "//" (e.g. sqlite:/var/lib/app/sessions.db)');
    const file = path === '' ? resolve(options.dataDir ?? CREATE_STORE_DEFAULTS.dataDir, CREATE_STORE_DEFAULTS.sqliteFileName)
      : path === ':memory:' ? path : resolve(path);
    return { kind: 'sqlite', path: file, ...(sqlite && { options: sqlite }), ...(cache && { cache }) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme === 'redis' || scheme === 'rediss') {
    requireHost(url, scheme);
    const { rest, options, cache } = takeParams<RedisUrlOptions>(url, `${scheme}://`, URL_PARAMS.redis);
    return { kind: 'redis', url: rest, ...(options && { options }), ...(cache && { cache }) };
  }
  if (scheme === 'redis+sentinel' || scheme === 'redis+cluster') {
    const { rest, options, cache } = takeParams<RedisUrlOptions>(url, `${scheme}://`, URL_PARAMS.redis);
    const multi = parseMultiHost(rest, scheme, scheme === 'redis+sentinel' ? 26379 : 6379);
    const extras = { ...(options && { options }), ...(cache && { cache }) };
    if (scheme === 'redis+cluster') {
      if (multi.path.length > 0) throw invalid('a redis+cluster:// URL names no database: Redis Cluster has only database 0');
      return { kind: 'redis', cluster: { nodes: multi.hosts, ...multi.credentials }, ...extras };
    }
    const [name, db, ...more] = multi.path;
    if (name === undefined || name === '' || more.length > 0) throw invalid('a redis+sentinel:// URL ends with /NAME, the master group the Sentinels watch, or /NAME/DB');
    const dbNumber = db === undefined ? undefined : paramValue('database', 'integer', db, `${scheme}://`) as number;
    return { kind: 'redis', sentinel: { sentinels: multi.hosts, name, ...(dbNumber !== undefined && { db: dbNumber }), ...multi.credentials }, ...extras };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    requireHost(url, scheme);
    const { rest, options, cache } = takeParams<PostgresUrlOptions>(url, `${scheme}://`, URL_PARAMS.postgres);
    return { kind: 'postgres', connectionString: rest, ...(options && { options }), ...(cache && { cache }) };
  }
  throw invalid(`the store URL ${describe(url)} is not understood`);
}

/**
 * Splits Tether's parameters off a URL's query. The rest of the URL is kept byte for byte (the driver's
 * parameters are not decoded and encoded again), and a URL without Tether's parameters comes back as given.
 */
function takeParams<O>(url: string, label: string, known: Readonly<Record<keyof O & string, ParamKind>>):
{ rest: string; options?: O; cache?: UrlNearCache } {
  const q = url.indexOf('?');
  if (q < 0) return { rest: url };
  const end = url.indexOf('#', q) < 0 ? url.length : url.indexOf('#', q);
  const kept: string[] = [];
  const options: Record<string, string | number | boolean> = {};
  const cacheParams: Partial<Record<keyof typeof CACHE_PARAMS, string | number | boolean>> = {};
  let taken = 0;
  for (const part of url.slice(q + 1, end).split('&')) {
    const eq = part.indexOf('=');
    const name = decodeParam(eq < 0 ? part : part.slice(0, eq), label);
    const own = Object.hasOwn(known, name);
    const kind = own ? known[name as keyof O & string] : Object.hasOwn(CACHE_PARAMS, name) ? CACHE_PARAMS[name as keyof typeof CACHE_PARAMS] : undefined;
    if (kind === undefined) {
      if (part !== '') kept.push(part);
      continue;
    }
    const target: Record<string, unknown> = own ? options : cacheParams;
    if (name in target) throw invalid(`the ${label} URL sets ${name} more than once`);
    target[name] = paramValue(name, kind, eq < 0 ? '' : decodeParam(part.slice(eq + 1), label), label);
    taken++;
  }
  if (taken === 0) return { rest: url };
  const rest = url.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : '') + url.slice(end);
  let cache: UrlNearCache | undefined;
  if (cacheParams.cache !== undefined) {
    if (cacheParams.cache !== 'fenced' && cacheParams.cache !== 'eventual') {
      throw invalid(`the ${label} URL's cache must be fenced or eventual`);
    }
    cache = { consistency: cacheParams.cache, ...(cacheParams.cacheMaxBytes !== undefined && { maxBytes: cacheParams.cacheMaxBytes as number }) };
  } else if (cacheParams.cacheMaxBytes !== undefined) {
    throw invalid(`the ${label} URL sets cacheMaxBytes without cache=fenced or cache=eventual`);
  }
  return { rest, ...(Object.keys(options).length > 0 && { options: options as O }), ...(cache && { cache }) };
}

/**
 * `scheme://[user[:password]@]host[:port][,host[:port]…][/segment…]`, which `new URL` does not take
 * (several hosts). IPv6 hosts are written in brackets. Tether's parameters were taken out already, so
 * whatever query is left is one no driver would read: refused.
 */
function parseMultiHost(url: string, scheme: string, defaultPort: number): { hosts: UrlHost[]; credentials: UrlCredentials; path: string[] } {
  const label = `${scheme}://`;
  let body = url.slice(label.length);
  if (body.includes('?') || body.includes('#')) throw unknownParameter(label, URL_PARAMS.redis);
  const slash = body.indexOf('/');
  const path = slash < 0 ? [] : body.slice(slash + 1).split('/').map((p) => decodeParam(p, label));
  body = slash < 0 ? body : body.slice(0, slash);
  const at = body.lastIndexOf('@');
  const credentials: UrlCredentials = {};
  if (at >= 0) {
    const info = body.slice(0, at);
    const colon = info.indexOf(':');
    const username = decodeParam(colon < 0 ? info : info.slice(0, colon), label);
    const password = colon < 0 ? '' : decodeParam(info.slice(colon + 1), label);
    if (username !== '') credentials.username = username;
    if (password !== '') credentials.password = password;
    body = body.slice(at + 1);
  }
  const hosts = body.split(',').map((h): UrlHost => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(h);
    const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
    if (!m || port < 1 || port > 65535) throw invalid(`the ${label} URL's host list must be host[:port] separated by commas`);
    return { host: m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!, port };
  });
  return { hosts, credentials, path };
}

/** A URL no driver reads, with a query parameter Tether does not know: refused, naming those it knows. */
function unknownParameter(label: string, known: Readonly<Record<string, ParamKind>>): StoreUrlInvalidError {
  return invalid(`the ${label} URL has a parameter that is not one of ${[...Object.keys(known), ...Object.keys(CACHE_PARAMS)].join(', ')}`);
}

function decodeParam(text: string, label: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    throw invalid(`the ${label} URL's query does not percent-decode`);
  }
}

function paramValue(name: string, kind: ParamKind, value: string, label: string): string | number | boolean {
  if (kind === 'flag') {
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw invalid(`the ${label} URL's ${name} must be true or false`);
  }
  if (kind === 'integer') {
    const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n)) throw invalid(`the ${label} URL's ${name} must be a whole number`);
    return n;
  }
  if (value === '') throw invalid(`the ${label} URL's ${name} is empty`);
  return value;
}

/**
 * Builds the store a URL names. Redis and PostgreSQL stores connect lazily, as their constructors do.
 * Every store it builds can be closed by `await using`.
 * @example
 * const store = await createStore(process.env.TETHER_STORE ?? 'sqlite:');
 */
export async function createStore(url: string, options: CreateStoreOptions = {}): Promise<SessionStore & AsyncDisposable> {
  const target = parseStoreUrl(url, options);
  return nearCache(await openTarget(target, options.clock), target.kind === 'memory' ? undefined : target.cache);
}

/**
 * The store `target` names, without the near-cache its URL may ask for: what createStore wraps, and
 * what the CLI opens (one command needs no cache, and it asks the store itself what it holds).
 */
export async function openTarget(target: StoreTarget, clock?: Clock): Promise<SessionStore & AsyncDisposable> {
  const given = clock === undefined ? {} : { clock };
  switch (target.kind) {
    case 'memory':
      return new MemoryStore(given);
    case 'sqlite':
      return new SqliteStore({ path: target.path, ...target.options, ...given });
    case 'redis': {
      const { RedisStore } = await import('./redis/index.js');
      const connection = 'url' in target ? { url: target.url }
        : 'sentinel' in target ? { sentinel: target.sentinel }
          : { cluster: { nodes: target.cluster.nodes, options: { redisOptions: credentialsOf(target.cluster) } } };
      return new RedisStore({ ...connection, ...target.options, ...given });
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres/index.js');
      return new PostgresStore({ connectionString: target.connectionString, ...target.options, ...given });
    }
  }
}

function credentialsOf(c: UrlCredentials): UrlCredentials {
  return { ...(c.username !== undefined && { username: c.username }), ...(c.password !== undefined && { password: c.password }) };
}

async function nearCache(shared: SessionStore & AsyncDisposable, cache: UrlNearCache | undefined): Promise<SessionStore & AsyncDisposable> {
  if (cache === undefined) return shared;
  const { TieredStore } = await import('./tiered/index.js');
  try {
    return new TieredStore({ shared, ...cache });
  } catch (err) {
    await shared.close();
    throw err;
  }
}

function requireHost(url: string, scheme: string): void {
  let host: string;
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
