/**
 * The RedisStore change feed: one subscriber connection per store, fanning `<prefix>changes` messages out to listeners.
 *
 * Redis pub/sub is at-most-once: a message published while the subscriber is disconnected is gone.
 * So the feed re-subscribes itself on every reconnection and then calls each listener's `onResync`,
 * which tells a cache in front of the store to drop what it holds.
 * @module
 */
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './options.js';

export interface ChangeFeedOptions {
  /** Runs once the subscription is (re)established; changes made before that may have been missed. */
  onResync?: () => void;
}

type Listener = (key: string) => void;

export class ChangeFeed {
  readonly #sub: RedisClient;
  readonly #channel: string;
  readonly #listeners = new Map<Listener, ChangeFeedOptions>();
  #closed = false;

  constructor(client: RedisClient, channel: string) {
    this.#channel = channel;
    // The subscriber waits for its connection (offline queue on, no per-command timeout): unlike a
    // request, a subscription has no caller waiting on it.
    if (client.isCluster) {
      const cluster = client as Cluster;
      this.#sub = cluster.duplicate([], {
        lazyConnect: false,
        enableOfflineQueue: true,
        redisOptions: { ...cluster.options.redisOptions, commandTimeout: undefined, maxRetriesPerRequest: null },
      });
    } else {
      this.#sub = (client as Redis).duplicate({
        lazyConnect: false,
        enableOfflineQueue: true,
        commandTimeout: undefined,
        maxRetriesPerRequest: null,
        // We subscribe again ourselves on 'ready', so we know when the gap has closed.
        autoResubscribe: false,
      });
    }
    this.#sub.on('error', () => {});
    this.#sub.on('message', (channel: string, key: string) => {
      if (channel !== this.#channel) return;
      for (const listener of this.#listeners.keys()) {
        try {
          listener(key);
        } catch (err) {
          process.emitWarning(err as Error, { code: 'TETHER_CHANGE_LISTENER_THREW', type: 'TetherWarning' });
        }
      }
    });
    let first = true;
    const attach = (): void => {
      if (this.#closed) return;
      this.#sub.subscribe(this.#channel).then(() => this.#resync(), () => {});
    };
    // A Cluster re-subscribes by itself when its subscriber node changes; a single server is
    // subscribed again here after every reconnection.
    if (!client.isCluster) this.#sub.on('ready', () => { if (!first) attach(); });
    attach();
    first = false;
  }

  add(listener: Listener, options: ChangeFeedOptions): () => void {
    this.#listeners.set(listener, options);
    return () => { this.#listeners.delete(listener); };
  }

  async close(): Promise<void> {
    this.#closed = true;
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
