/**
 * The RedisStore change feed: one subscriber connection per store, fanning `<prefix>changes` messages out to listeners.
 *
 * Redis pub/sub is at-most-once: a message published while the subscriber is disconnected is gone.
 * So the feed re-subscribes itself on every reconnection and then calls each listener's `onResync`,
 * which tells a cache in front of the store to drop what it holds; `state` says whether it is
 * receiving right now. `fence()` is a PING on the subscriber connection: Redis answers a subscribed
 * connection's PING in order after the messages it already queued for it, so the pong proves every
 * message published before the PING arrived has been delivered.
 *
 * Message format (scripts.ts publishes it): `=<version>:<expiresAt> <key>` for a set or touch (the
 * stamp, see SessionStore.subscribe, is digits and a colon, so the first space ends it whatever the key
 * holds), `!<key>` for a removal. Anything else is a bare key from an older release (its keys, hashes
 * and `user:` names, never start with `=` or `!`), reported without a stamp.
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import type { ChangeFeedState } from '../../core/store.js';
import type { RedisClient } from './options.js';

export interface ChangeFeedOptions {
  /** Runs once the subscription is (re)established; changes made before that may have been missed. */
  onResync?: () => void;
}

type Listener = (key: string, stamp?: string) => void;

/** A change message as the scripts publish it: the key and, for a set or touch, its stamp. */
export function parseChange(message: string): [key: string, stamp: string | undefined] {
  if (message.startsWith('!')) return [message.slice(1), undefined];
  if (message.startsWith('=')) {
    const space = message.indexOf(' ');
    if (space > 1) return [message.slice(space + 1), message.slice(1, space)];
  }
  return [message, undefined];
}

export class ChangeFeed {
  readonly #sub: RedisClient;
  readonly #channel: string;
  readonly #listeners = new Map<Listener, ChangeFeedOptions>();
  readonly #fenceTimeoutMs: number;
  /** Fences waiting for their pong; a lost connection answers them false at once. */
  readonly #fences = new Set<(ok: boolean) => void>();
  #state: ChangeFeedState = 'connecting';
  /** Bumped whenever the subscriber connection closes, so a pong from before a gap proves nothing. */
  #epoch = 0;
  #closed = false;

  constructor(client: RedisClient, channel: string, fenceTimeoutMs: number) {
    this.#channel = channel;
    this.#fenceTimeoutMs = fenceTimeoutMs;
    // The subscriber waits for its connection (offline queue on, no per-command timeout): unlike a
    // request, a subscription has no caller waiting on it. A subscriber connection takes no pipelines.
    if (client.isCluster) {
      const cluster = client as Cluster;
      this.#sub = cluster.duplicate([], {
        lazyConnect: false,
        enableOfflineQueue: true,
        enableAutoPipelining: false,
        redisOptions: { ...cluster.options.redisOptions, commandTimeout: undefined, maxRetriesPerRequest: null },
      });
    } else {
      this.#sub = (client as Redis).duplicate({
        lazyConnect: false,
        enableOfflineQueue: true,
        enableAutoPipelining: false,
        commandTimeout: undefined,
        maxRetriesPerRequest: null,
        // We subscribe again ourselves on 'ready', so we know when the gap has closed.
        autoResubscribe: false,
      });
    }
    this.#sub.on('error', () => {});
    // A Cluster re-subscribes on its own, without telling us; its state stays `listening` (see `state`).
    if (!client.isCluster) this.#sub.on('close', () => {
      if (this.#closed) return;
      this.#epoch++;
      this.#state = 'connecting';
      for (const settle of [...this.#fences]) settle(false);
    });
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const [key, stamp] = parseChange(message);
      for (const listener of this.#listeners.keys()) {
        try {
          listener(key, stamp);
        } catch (err) {
          process.emitWarning(err as Error, { code: 'TETHER_CHANGE_LISTENER_THREW', type: 'TetherWarning' });
        }
      }
    });
    let first = true;
    const attach = (): void => {
      if (this.#closed) return;
      this.#sub.subscribe(this.#channel).then(() => {
        if (this.#closed) return;
        this.#state = 'listening';
        this.#resync();
      }, () => {});
    };
    // A Cluster re-subscribes by itself when its subscriber node changes; a single server is
    // subscribed again here after every reconnection.
    if (!client.isCluster) this.#sub.on('ready', () => { if (!first) attach(); });
    attach();
    first = false;
  }

  /** Whether messages are being received now (see ChangeFeedState); a Cluster's is never `connecting` after its first subscription. */
  get state(): ChangeFeedState {
    return this.#state;
  }

  /**
   * Resolves true once a PING sent now on the subscriber connection is answered: every message
   * published before the call has then been delivered. False when not subscribed, when the connection
   * closes first, or after `fenceTimeoutMs` without a pong (the connection is then replaced, as a
   * half-open one would be, so `onResync` follows). Standalone and Sentinel only: on a Cluster a
   * message reaches the subscriber's node over the cluster bus, in no order with a PING to that node.
   */
  fence(): Promise<boolean> {
    if (this.#state !== 'listening') return Promise.resolve(false);
    const epoch = this.#epoch;
    const sub = this.#sub as Redis;
    return new Promise<boolean>((resolve) => {
      const settle = (ok: boolean): void => {
        if (!this.#fences.delete(settle)) return;
        clearTimeout(timer);
        resolve(ok && epoch === this.#epoch && this.#state === 'listening');
      };
      const timer = setTimeout(() => {
        settle(false);
        if (epoch === this.#epoch && !this.#closed) sub.disconnect(true);
      }, this.#fenceTimeoutMs);
      this.#fences.add(settle);
      sub.ping().then(() => settle(true), () => settle(false));
    });
  }

  add(listener: Listener, options: ChangeFeedOptions): () => void {
    this.#listeners.set(listener, options);
    return () => { this.#listeners.delete(listener); };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#state = 'closed';
    for (const settle of [...this.#fences]) settle(false);
    this.#listeners.clear();
    this.#sub.disconnect();
  }

  #resync(): void {
    for (const { onResync } of this.#listeners.values()) {
      try {
        onResync?.();
      } catch (err) {
        process.emitWarning(err as Error, { code: 'TETHER_CHANGE_LISTENER_THREW', type: 'TetherWarning' });
      }
    }
  }
}
