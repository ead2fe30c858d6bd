/**
 * Rate limits counted once for a whole one-machine cluster. The primary hands each connection to any
 * worker, so limits counted per process would admit as many times the limit as there are workers;
 * `sharedLimiter` in a worker asks the primary instead, which keeps the only count. Outside a cluster
 * (or in the primary) the count is the process's own. Behind HAProxy each machine counts for itself.
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
    const aligned = now - (now % this.windowMs);
    if (!w || aligned - w.start >= 2 * this.windowMs) return { start: aligned, current: 0, previous: 0 };
    if (aligned !== w.start) return { start: aligned, current: 0, previous: w.current };
    return w;
  }

  #within(w: Window, now: number): boolean {
    const overlap = 1 - (now - w.start) / this.windowMs;
    return w.previous * overlap + w.current < this.limit;
  }

  get size(): number {
    return this.#windows.size;
  }
}

/** Counts events per key against a limit: at once in one process, through the primary in a cluster worker. */
export interface SharedLimiter {
  take(key: string): boolean | Promise<boolean>;
  /** Whether a `take` now would be allowed, counting nothing: for limits on failures, checked before the attempt. */
  peek(key: string): boolean | Promise<boolean>;
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

/**
 * A limiter named `name`, counting `limit` events per key in any `windowMs`. In a cluster worker every
 * `take` asks the primary; should it not answer within CLUSTER_LIMIT_TIMEOUT_MS (a primary that is
 * shutting down), the worker counts that event in its own window, so a limit never blocks a request
 * for long and is still enforced per worker.
 */
export function sharedLimiter(name: string, limit: number, windowMs = 60_000): SharedLimiter {
  const local = new SlidingWindowLimiter(limit, windowMs);
  if (!cluster.isWorker || !process.send) return local;
  const ask = (key: string, peek: boolean): Promise<boolean> =>
    askPrimary<LimitReplyMessage>('sharedLimiter()', { type: 'tether:limit', name, key, limit, windowMs, ...(peek ? { peek } : {}) }, 'tether:limit-reply', CLUSTER_LIMIT_TIMEOUT_MS)
      .then((reply) => reply.allowed, () => (peek ? local.peek(key) : local.take(key)));
  return { take: (key) => ask(key, false), peek: (key) => ask(key, true) };
}
