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
import { SlidingWindowLimiter, checkLimiter, fallingBackTo } from '../core/rate-limit.js';
import type { SharedLimiter } from '../core/rate-limit.js';
import type { SessionStore } from '../core/store.js';

export { SlidingWindowLimiter } from '../core/rate-limit.js';
export type { SharedLimiter } from '../core/rate-limit.js';

/** How long a worker waits for the primary's count before it counts the event alone. */
export const CLUSTER_LIMIT_TIMEOUT_MS = 1_000;

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
  return fallingBackTo(options.store?.limiter?.(name, limit, windowMs), machine);
}
