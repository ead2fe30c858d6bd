/**
 * RedisStore options: checking, defaults, and building the ioredis client with fail-fast settings.
 *
 * ioredis is loaded here, inside the constructor path, through createRequire: importing
 * `tether/redis` never fails where ioredis is absent, and the root entry never loads a driver.
 * @module
 */
import { createRequire } from 'node:module';
import type { Cluster, ClusterNode, ClusterOptions, Command, Redis, RedisOptions } from 'ioredis';
import { OptionsInvalidError } from '../../core/errors.js';
import { checkOptions } from '../../core/options-check.js';
import { decimal } from '../../core/decimal.js';
import { ServerClock, systemClock } from '../../core/store.js';
import type { Clock } from '../../core/store.js';

/** What RedisStore calls on a client: ioredis `Redis` or `Cluster`. */
export type RedisClient = Redis | Cluster;

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…`. @default REDIS_STORE_DEFAULTS.url when no other connection option is given */
  url?: string;
  /**
   * An ioredis `Redis` or `Cluster` you built. The store never closes it. Give it the settings of
   * `redisClientOptions()` (no offline queue, a command timeout) or calls may wait instead of failing fast.
   */
  client?: RedisClient;
  /** Redis Cluster: seed nodes, plus ioredis ClusterOptions laid over the store's fail-fast defaults. */
  cluster?: { nodes: ClusterNode[]; options?: ClusterOptions };
  /** Redis Sentinel: ioredis options (`sentinels`, `name`, passwords…) laid over the store's defaults. */
  sentinel?: { sentinels: Array<{ host: string; port: number }>; name: string } & Partial<RedisOptions>;
  /** Prepended to every key and to the change channel; separates apps sharing one Redis. @default 'tether:' */
  keyPrefix?: string;
  /**
   * Decides expiry, as given (tests pass a hand-moved clock). @default a ServerClock: this machine's
   * clock corrected by the Redis server's time (`TIME`, on every connection and every minute), so every
   * process agrees on time with Redis, and an engine with no clock of its own follows it
   */
  clock?: Clock;
  /** The machine's clock that the default ServerClock corrects (tests play a machine whose clock is off). @default system clock */
  localClock?: Clock;
  /** A call that gets no reply within this bound rejects with STORE_UNAVAILABLE. @default 2000 */
  commandTimeoutMs?: number;
  /** Bound on establishing a connection (TCP + handshake). @default 5000 */
  connectTimeoutMs?: number;
  /** Publish every change on `<prefix>changes:<tag>` (this store's channel) so `subscribe()` in any process sees it. @default true */
  publishChanges?: boolean;
  /**
   * Report sessions that time out unseen (`onSwept`, and so the engine's `expired` event with reason
   * `swept`), as the other stores' sweeps do: each session that can time out is listed in the hash
   * `<prefix>due` (its owner, or '' when anonymous), and a sweep every `sweepIntervalMs` claims the
   * entries whose record Redis expired (or that are past their deadline by the store's clock), each
   * once, whichever process's sweep gets it. Costs one HSET inside each write's script, an HDEL before
   * each destroy, a login's two writes instead of one script, and the hash's memory (≈ 100 bytes per
   * session). On a Cluster the hash is split in 16 (`<prefix>due{0}` … `{15}`, spread over the
   * primaries by their hash tags) and each write of a session costs one HSET more, after it, as a
   * round trip of its own: see docs/stores.md for what that changes. @default false
   */
  reportExpired?: boolean;
  /** With `reportExpired`: how often the sweep runs, 0 for none (call `sweep()` yourself). @default 60000 */
  sweepIntervalMs?: number;
}

export const REDIS_STORE_DEFAULTS = {
  url: 'redis://127.0.0.1:6379',
  keyPrefix: 'tether:',
  commandTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
  publishChanges: true,
  sweepIntervalMs: 60_000,
  /** Longest pause between reconnection attempts, in ms: recovery is at most this long after Redis returns. */
  maxReconnectDelayMs: 1_000,
} as const;

export interface ResolvedRedisStoreOptions {
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly commandTimeoutMs: number;
  readonly publishChanges: boolean;
  readonly reportExpired: boolean;
  readonly sweepIntervalMs: number;
}

const isNodeList = (v: unknown): string | null =>
  Array.isArray(v) && v.length > 0 && v.every((n) => typeof n === 'string' || typeof n === 'number' || (typeof n === 'object' && n !== null))
    ? null : 'a non-empty array of "host:port" strings or { host, port } objects';

const isClient = (v: unknown): string | null =>
  typeof v === 'object' && v !== null && typeof (v as { evalsha?: unknown }).evalsha === 'function'
    && typeof (v as { status?: unknown }).status === 'string' ? null : 'an ioredis Redis or Cluster instance';

const isRedisUrl = (v: unknown): string | null =>
  typeof v === 'string' && /^rediss?:\/\/./.test(v) ? null : 'a redis:// or rediss:// URL';

/** Throws OPTIONS_INVALID for unknown, mistyped or conflicting options; returns the resolved, frozen view. */
export function resolveRedisStoreOptions(options: RedisStoreOptions): ResolvedRedisStoreOptions {
  checkOptions('RedisStore', options, {
    url: isRedisUrl,
    client: isClient,
    cluster: 'object',
    sentinel: 'object',
    keyPrefix: 'string',
    clock: 'clock',
    localClock: 'clock',
    commandTimeoutMs: 'timerMs',
    connectTimeoutMs: 'timerMs',
    publishChanges: 'boolean',
    reportExpired: 'boolean',
    sweepIntervalMs: 'timerMsOrZero',
  });
  const given = (['url', 'client', 'cluster', 'sentinel'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) {
    throw new OptionsInvalidError(`RedisStore options.${given[0]} and options.${given[1]} both say where Redis is; give only one`);
  }
  if (options.cluster) checkOptions('RedisStore', options.cluster, { nodes: isNodeList, options: 'object' }, 'options.cluster');
  if (options.cluster && options.cluster.nodes === undefined) throw new OptionsInvalidError('RedisStore options.cluster.nodes is required');
  if (options.sentinel) {
    const s = options.sentinel;
    if (isNodeList(s.sentinels) !== null) throw new OptionsInvalidError('RedisStore options.sentinel.sentinels must be a non-empty array of { host, port }');
    if (typeof s.name !== 'string' || s.name === '') throw new OptionsInvalidError('RedisStore options.sentinel.name must be a non-empty string (the master group name)');
  }
  return Object.freeze({
    keyPrefix: options.keyPrefix ?? REDIS_STORE_DEFAULTS.keyPrefix,
    clock: options.clock ?? new ServerClock(options.localClock ?? systemClock),
    commandTimeoutMs: options.commandTimeoutMs ?? REDIS_STORE_DEFAULTS.commandTimeoutMs,
    publishChanges: options.publishChanges ?? REDIS_STORE_DEFAULTS.publishChanges,
    reportExpired: options.reportExpired ?? false,
    sweepIntervalMs: options.sweepIntervalMs ?? REDIS_STORE_DEFAULTS.sweepIntervalMs,
  });
}

/** Capped exponential backoff: 50, 100, 200 … ms, never more than maxReconnectDelayMs. Never gives up. */
export function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 10), REDIS_STORE_DEFAULTS.maxReconnectDelayMs);
}

/**
 * The ioredis settings the store relies on to fail fast and recover by itself; use them for a
 * client you pass as `options.client`.
 * - `enableOfflineQueue: false`: while disconnected nothing is queued (the store waits for the
 *   connection at most commandTimeoutMs, then rejects), so a call never runs late, after its caller gave up.
 * - `maxRetriesPerRequest: 0` + `autoResendUnfulfilledCommands: false`: commands in flight when the
 *   connection drops are rejected at once (their outcome is unknown) and never sent twice.
 * - `commandTimeout`: a server that accepts the connection but does not answer still fails the call.
 * - `reconnectOnError`: a `READONLY` reply (the server was made a replica: a failover behind a virtual
 *   IP or a DNS name, a managed service's primary endpoint) drops the connection, so the next one
 *   reaches whatever the address leads to now; kept, it refused every write until it broke by itself.
 *   The write that met it fails (nothing was written) and is not sent again.
 */
export function redisClientOptions(commandTimeoutMs: number = REDIS_STORE_DEFAULTS.commandTimeoutMs,
  connectTimeoutMs: number = REDIS_STORE_DEFAULTS.connectTimeoutMs): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs,
    retryStrategy: reconnectDelay,
    reconnectOnError: demoted,
  };
}

/** A reply saying the server is a replica now: reconnect, failing the command (ioredis's `1`, not `2`, which would send it again). */
function demoted(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

interface IoredisModule {
  Redis: new (...args: unknown[]) => Redis;
  Cluster: new (nodes: ClusterNode[], options?: ClusterOptions) => Cluster;
  Command: typeof Command;
}

/** Sends one command whose arguments are already a flat list of strings and numbers (the list is taken over); a bulk reply comes back as a string. */
export type CommandSender = (name: string, args: Array<string | number>) => Promise<unknown>;

function loadIoredis(): IoredisModule {
  try {
    return createRequire(import.meta.url)('ioredis') as IoredisModule;
  } catch (err) {
    throw new OptionsInvalidError(`RedisStore needs the ioredis package (npm install ioredis), or pass options.client: ${(err as Error).message}`);
  }
}

const NO_ARGS: readonly string[] = Object.freeze([]);
const UTF8 = Object.freeze({ replyEncoding: 'utf8' as const });

/**
 * How the store sends its commands on a standalone or Sentinel client it built: an ioredis Command
 * given its arguments as they are. Every client method (`get`, `evalsha`…) builds its Command from
 * `args.flat()`, which V8 runs at ≈ 0.2 µs per argument through its generic path: ≈ 2.5 µs for the
 * compare-and-set's arguments, on every write (bench/analysis.md item 16). The store's arguments are
 * flat already, so the constructor is handed none to flatten and `args` is set after it; the rest of
 * Command (serialising, reply decoding, the promise) is ioredis's own, and sendCommand is the client's.
 * Undefined where ioredis would rewrite the arguments (its own `keyPrefix`) or record a stack per
 * command (`showFriendlyErrorStack`): those clients keep the methods.
 */
export function plainSender(client: Redis): CommandSender | undefined {
  if (client.options.keyPrefix || client.options.showFriendlyErrorStack) return undefined;
  class FlatCommand extends loadIoredis().Command {
    constructor(name: string, args: Array<string | number>) {
      super(name, NO_ARGS as string[], UTF8);
      // What the constructor does to each argument it flattened (numbers become their decimal text).
      for (let i = 0; i < args.length; i++) if (typeof args[i] !== 'string') args[i] = decimal(args[i] as number);
      this.args = args;
    }
  }
  return (name, args) => client.sendCommand(new FlatCommand(name, args)) as Promise<unknown>;
}

/**
 * The client to use: the caller's `client` (not owned: never closed by the store), or one built for
 * url / cluster / sentinel; `send` is set for a standalone or Sentinel client the store built (plainSender).
 */
export function buildClient(options: RedisStoreOptions): { client: RedisClient; owned: boolean; send?: CommandSender } {
  if (options.client) return { client: options.client, owned: false };
  const commandTimeoutMs = options.commandTimeoutMs ?? REDIS_STORE_DEFAULTS.commandTimeoutMs;
  const connectTimeoutMs = options.connectTimeoutMs ?? REDIS_STORE_DEFAULTS.connectTimeoutMs;
  // The store bounds each of its calls itself (one shared ticker, not a timer per command). It sends
  // the commands of one turn of the event loop as one write: by corking a standalone connection
  // itself (RedisStore #cork), and on a Cluster through ioredis's auto-pipelining.
  const { commandTimeout: _perCommand, ...base } = redisClientOptions(commandTimeoutMs, connectTimeoutMs);
  const io = loadIoredis();
  if (options.cluster) {
    // A Cluster follows failovers itself (MOVED, slot refreshes): a demoted node answers MOVED, not READONLY.
    const { lazyConnect, enableOfflineQueue, retryStrategy: _r, reconnectOnError: _o, ...perNode } = base;
    const user = options.cluster.options ?? {};
    const client = new io.Cluster(options.cluster.nodes, {
      lazyConnect,
      enableOfflineQueue,
      enableAutoPipelining: true,
      clusterRetryStrategy: reconnectDelay,
      ...user,
      redisOptions: { ...perNode, ...(user.redisOptions ?? {}) },
    });
    return { client, owned: true };
  }
  const client = options.sentinel ? new io.Redis({ ...base, ...options.sentinel }) : new io.Redis(options.url ?? REDIS_STORE_DEFAULTS.url, base);
  return { client, owned: true, send: plainSender(client) };
}
