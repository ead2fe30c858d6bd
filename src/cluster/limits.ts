/**
 * Rate limits counted once for a whole one-machine cluster. The primary hands each connection to any
 * worker, so limits counted per process would admit as many times the limit as there are workers;
 * `sharedLimiter` in a worker asks the primary instead, which keeps the only count. Outside a cluster
 * (or in the primary) the count is the process's own. Behind HAProxy, where each machine's primary
 * would count for itself, give it the shared session store (`{ store }`): the counts then live there.
 * @module
 * @example
 * // in the worker's app (the primary answers on its own: runCluster calls serveClusterLimits)
 * const signups = sharedLimiter('signups', 10, 60_000);
 * if (!(await signups.take(req.ip))) throw new RateLimitedError();
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { isMessage } from './messages.js';
import type { LimitReplyMessage, LimitRequestMessage } from './messages.js';
import { answerWorker, askPrimary } from './ask.js';
import { OldestFirst } from '../core/oldest-first.js';
import { checkLimiter, windowPosition, withinLimit } from '../core/rate-limit.js';
import type { SharedLimiter } from '../core/rate-limit.js';
import type { SessionStore } from '../core/store.js';
import { isTetherError } from '../core/errors.js';

export type { SharedLimiter } from '../core/rate-limit.js';

/** How long a worker waits for the primary's count before it counts the event alone. */
export const CLUSTER_LIMIT_TIMEOUT_MS = 1_000;

/**
 * A per-key sliding-window counter (two fixed windows, the previous one weighted by how much of it
 * still overlaps), bounded in memory: at most `maxKeys` keys, the least recently seen dropped first.
 */
/** One key's count: the current fixed window's events and the previous window's. */
interface Window {
  start: number;
  current: number;
  previous: number;
}

export class SlidingWindowLimiter {
  readonly limit: number;
  readonly windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Insertion order is recency order. */
  readonly #windows = new Map<string, Window>();
  readonly #oldest = new OldestFirst<string, Window>();

  constructor(limit: number, windowMs = 60_000, maxKeys = 100_000, now: () => number = Date.now) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  /** Counts one event for `key`; false (and not counted) when the key is over its limit. */
  take(key: string): boolean {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (w) this.#windows.delete(key);
    w = this.#rolled(w, now);
    this.#windows.set(key, w);
    if (this.#windows.size > this.#maxKeys) this.#oldest.shift(this.#windows);
    if (!this.#within(w, now)) return false;
    w.current++;
    return true;
  }

  /** Whether an event for `key` would be within its limit now; counts nothing and keeps no key. */
  peek(key: string): boolean {
    const now = this.#now();
    const w = this.#windows.get(key);
    return w === undefined || this.#within(this.#rolled(w, now), now);
  }

  /** `w` as of `now`: the same window, or moved on by one or more windows. */
  #rolled(w: Window | undefined, now: number): Window {
    const aligned = windowPosition(now, this.windowMs).start;
    if (!w || aligned - w.start >= 2 * this.windowMs) return { start: aligned, current: 0, previous: 0 };
    if (aligned !== w.start) return { start: aligned, current: 0, previous: w.current };
    return w;
  }

  #within(w: Window, now: number): boolean {
    return withinLimit(w.previous, w.current, windowPosition(now, this.windowMs).previousWeight, this.limit);
  }

  get size(): number {
    return this.#windows.size;
  }
}

const served = new Map<string, SlidingWindowLimiter>();
let serving = false;

/** Primary: keeps the counts workers' `sharedLimiter`s ask for. Idempotent; runCluster calls it. */
export function serveClusterLimits(): void {
  if (serving || !cluster.isPrimary) return;
  serving = true;
  cluster.on('message', (worker: Worker, msg: unknown) => {
    if (!isMessage<LimitRequestMessage>(msg, 'tether:limit')) return;
    // One limiter per name, with the limit and window of the first worker that asked: every worker
    // runs the same app, so they agree; a mismatch is the app's bug, and the first setting stands.
    let limiter = served.get(msg.name);
    if (!limiter) served.set(msg.name, limiter = new SlidingWindowLimiter(msg.limit, msg.windowMs));
    answerWorker<LimitReplyMessage>(worker, { type: 'tether:limit-reply', id: msg.id, allowed: msg.peek ? limiter.peek(msg.key) : limiter.take(msg.key) });
  });
}

/** sharedLimiter's options. */
export interface SharedLimiterOptions {
  /**
   * A store shared by every machine (RedisStore, PostgresStore, or a TieredStore over either): the
   * counts then live there, and the limit holds once for every process and machine that uses the
   * store (behind HAProxy, say), not once per machine. A store without shared counts (`limiter`
   * absent: MemoryStore, SQLiteStore) is ignored.
   */
  store?: SessionStore;
}

/**
 * A limiter named `name`, counting `limit` events per key in any `windowMs`. With `options.store`
 * offering shared counts, every `take` counts there; in a cluster worker otherwise every `take` asks
 * the primary; elsewhere the process counts alone. Should the store fail (STORE_UNAVAILABLE: an
 * outage, a command past its timeout) or the primary not answer within CLUSTER_LIMIT_TIMEOUT_MS (a
 * primary that is shutting down), the event is counted the next way down (the primary, then the
 * process), so a limit never blocks a request for longer than the store's or the primary's bound and
 * is still enforced, per machine or per process, meanwhile.
 */
export function sharedLimiter(name: string, limit: number, windowMs = 60_000, options: SharedLimiterOptions = {}): SharedLimiter {
  checkLimiter(name, limit, windowMs);
  const local = new SlidingWindowLimiter(limit, windowMs);
  let machine: SharedLimiter = local;
  if (cluster.isWorker && process.send) {
    const ask = (key: string, peek: boolean): Promise<boolean> =>
      askPrimary<LimitReplyMessage>('sharedLimiter()', { type: 'tether:limit', name, key, limit, windowMs, ...(peek ? { peek } : {}) }, 'tether:limit-reply', CLUSTER_LIMIT_TIMEOUT_MS)
        .then((reply) => reply.allowed, () => (peek ? local.peek(key) : local.take(key)));
    machine = { take: (key) => ask(key, false), peek: (key) => ask(key, true) };
  }
  const shared = options.store?.limiter?.(name, limit, windowMs);
  if (!shared) return machine;
  // The store's count; during an outage, the machine's.
  const either = (op: 'take' | 'peek') => async (key: string): Promise<boolean> => {
    try {
      return await shared[op](key);
    } catch (err) {
      if (!isStoreFailure(err)) throw err;
      return machine[op](key);
    }
  };
  return { take: either('take'), peek: either('peek') };
}

/** An outage or a closed store, which the next way down can stand in for; anything else is a bug to surface. */
function isStoreFailure(err: unknown): boolean {
  return isTetherError(err) && (err.code === 'STORE_UNAVAILABLE' || err.code === 'STORE_CLOSED');
}
