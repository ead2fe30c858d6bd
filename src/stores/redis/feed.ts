/**
 * The RedisStore change feed: one subscriber connection per store, fanning change messages out to listeners.
 *
 * Each store publishes on a channel of its own, `<prefix>changes:<tag>` (the tag: seven random
 * alphanumerics drawn when the store is built), and its feed subscribes to every such channel but its
 * own: seven patterns, the i-th matching the tags that first differ from this one at character i. So
 * Redis never sends a process the messages of its own writes; the store hands those to its listeners
 * itself, in the same order, when each write is acknowledged (`deliver`). Receiving them back cost the
 * store's process about 5 µs of CPU per write (bench/analysis.md item 30). Two live stores drawing the
 * same tag (about one chance in 3.5 × 10¹² per pair) would not hear each other.
 *
 * Redis pub/sub is at-most-once: a message published while the subscriber is disconnected is gone.
 * So the feed re-subscribes itself on every reconnection (on a Cluster, to a node it picks afresh) and
 * then calls each listener's `onResync`, which tells a cache in front of the store to drop what it holds; `state` says whether it is
 * receiving right now. `fence()` is a PING on the subscriber connection: Redis answers a subscribed
 * connection's PING in order after the messages it already queued for it, so the pong proves every
 * message published before the PING arrived has been delivered. The same PING goes out every
 * HEARTBEAT_MS while subscribed: a connection that stopped carrying anything without closing (a NAT or
 * firewall that dropped an idle flow, a peer gone without a FIN) would otherwise stay `listening` until
 * TCP keepalive gave up on it (minutes to hours), while a cache with eventual reads served copies whose
 * changes it never heard of; unanswered, it is replaced and `onResync` follows.
 *
 * Message format (scripts.ts publishes it): `=<version>:<expiresAt> <key>` for a set or touch (the
 * stamp, see SessionStore.subscribe, is digits and a colon, so the first space ends it whatever the key
 * holds), `!<key>` for a removal. Anything else is a bare key, reported without a stamp.
 * @module
 */
import { randomInt } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { warnChangeListenerThrew } from '../../core/store.js';
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

/** Characters in a store's tag: few, because each is one pattern every PUBLISH is matched against. */
const TAG_LENGTH = 7;
const TAG_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A store's tag: TAG_LENGTH random alphanumerics, so no tag holds a character special to a pattern. */
export function writerTag(): string {
  let tag = '';
  for (let i = 0; i < TAG_LENGTH; i++) tag += TAG_ALPHABET[randomInt(TAG_ALPHABET.length)];
  return tag;
}

/** The channel a store tagged `tag` publishes on. */
export function changeChannel(base: string, tag: string): string {
  return `${base}:${tag}`;
}

/** `text` as a Redis glob pattern that matches exactly it (SCAN MATCH, PSUBSCRIBE). */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Patterns matching the channel of every tag but `tag`, and nothing else: the i-th takes the tags
 * that share its first i characters and differ at the next; `?` holds the rest to the tag's length,
 * so the channels of a longer prefix that begins with this one's never match.
 */
export function otherChannels(base: string, tag: string): string[] {
  const head = `${escapeGlob(base)}:`;
  return [...tag].map((c, i) => `${head}${tag.slice(0, i)}[^${c}]${'?'.repeat(tag.length - 1 - i)}`);
}

/**
 * A subscriber connection's settings: it waits for its connection (offline queue on, no per-command
 * timeout), since unlike a request a subscription has no caller waiting on it; it takes no pipelines;
 * and the feed subscribes again itself after a reconnection, so it knows when the gap has closed.
 */
const SUBSCRIBER = {
  lazyConnect: false,
  enableOfflineQueue: true,
  enableAutoPipelining: false,
  commandTimeout: undefined,
  maxRetriesPerRequest: null,
  autoResubscribe: false,
} as const;

/** How often a subscribed connection is PINGed to notice that it stopped answering (as PostgresStore's feed does). */
export const HEARTBEAT_MS = 15_000;

export class ChangeFeed {
  /** The subscriber connection: a duplicate of a single server's client, or one node of a Cluster (none while it picks one). */
  #sub: Redis | null;
  /** What the subscriber connection subscribes to: every store's channel but this store's own. */
  readonly #patterns: string[];
  readonly #listeners = new Map<Listener, ChangeFeedOptions>();
  readonly #fenceTimeoutMs: number;
  /** Fences waiting for their pong; a lost connection answers them false at once. */
  readonly #fences = new Set<(ok: boolean) => void>();
  #state: ChangeFeedState = 'connecting';
  /** Bumped whenever the subscriber connection closes, so a pong from before a gap proves nothing. */
  #epoch = 0;
  /** Cluster: failed subscriber connections in a row (paces the next attempt). */
  #failures = 0;
  #closed = false;
  readonly #heartbeat: NodeJS.Timeout;

  /** `base` is `<prefix>changes`; `tag` the store's own (see writerTag). */
  constructor(client: RedisClient, base: string, tag: string, fenceTimeoutMs: number) {
    this.#patterns = otherChannels(base, tag);
    this.#fenceTimeoutMs = fenceTimeoutMs;
    // A fence that times out replaces the connection; one already waiting for its pong will tell the same.
    this.#heartbeat = setInterval(() => {
      if (this.#state === 'listening' && this.#fences.size === 0) void this.fence();
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    if (client.isCluster) {
      this.#sub = this.#subscribeToNode(client as Cluster);
      return;
    }
    this.#sub = (client as Redis).duplicate(SUBSCRIBER);
    const sub = this.#sub;
    this.#listen(sub);
    sub.on('close', () => this.#gap());
    let first = true;
    sub.on('ready', () => { if (!first) this.#attach(sub); });
    this.#attach(sub);
    first = false;
  }

  /**
   * A Cluster delivers every PUBLISH to every node, so one node's subscription hears them all. The feed
   * picks a node itself rather than using the Cluster's own subscriber, which moves to another node on
   * a failure without saying so: here a lost connection is a gap (`onResync` once subscribed again),
   * and the next attempt goes to a node picked afresh, sooner the fewer attempts have failed.
   */
  #subscribeToNode(cluster: Cluster): Redis | null {
    const nodes = cluster.nodes('all');
    if (nodes.length === 0) {
      // Not connected yet (the store's client connects lazily): no node is known to subscribe to.
      if (cluster.status === 'wait') cluster.connect().catch(() => {});
      this.#retry(cluster);
      return null;
    }
    const node = nodes[Math.floor(Math.random() * nodes.length)]!;
    // No reconnection to the same node: on 'end' the next attempt picks a node again. A duplicate of the
    // node's connection: built by the ioredis the Cluster came from, which need not be the one this
    // package resolves (a caller's client), and importing tether/redis must not need ioredis at all.
    const sub = node.duplicate({ ...SUBSCRIBER, retryStrategy: () => null });
    this.#listen(sub);
    sub.once('end', () => {
      this.#gap();
      this.#retry(cluster);
    });
    sub.once('ready', () => { this.#failures = 0; });
    this.#attach(sub);
    return sub;
  }

  #retry(cluster: Cluster): void {
    if (this.#closed) return;
    const delay = Math.min(1_000, 50 * 2 ** this.#failures++);
    setTimeout(() => {
      if (!this.#closed) this.#sub = this.#subscribeToNode(cluster);
    }, delay).unref();
  }

  #listen(sub: Redis): void {
    sub.on('error', () => {});
    sub.on('pmessage', (_pattern: string, _channel: string, message: string) => {
      const [key, stamp] = parseChange(message);
      this.deliver(key, stamp);
    });
  }

  /**
   * Reports a change to every listener: one received from another store, or one of this store's own,
   * which it hands over when its write is acknowledged (Redis does not send it back).
   */
  deliver(key: string, stamp: string | undefined): void {
    for (const listener of this.#listeners.keys()) {
      try {
        listener(key, stamp);
      } catch (err) {
        warnChangeListenerThrew(err);
      }
    }
  }

  /** Subscribes `sub`; once it is, the feed is listening and every listener resyncs. */
  #attach(sub: Redis): void {
    if (this.#closed) return;
    sub.psubscribe(...this.#patterns).then(() => {
      if (this.#closed || sub !== this.#sub) return;
      this.#state = 'listening';
      this.#resync();
    }, () => {});
  }

  /** The subscriber connection closed: messages may be missed until it is subscribed again. */
  #gap(): void {
    if (this.#closed) return;
    this.#epoch++;
    this.#state = 'connecting';
    for (const settle of [...this.#fences]) settle(false);
  }

  /** Whether messages are being received now (see ChangeFeedState). */
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
    clearInterval(this.#heartbeat);
    for (const settle of [...this.#fences]) settle(false);
    this.#listeners.clear();
    this.#sub?.disconnect();
  }

  #resync(): void {
    for (const { onResync } of this.#listeners.values()) {
      try {
        onResync?.();
      } catch (err) {
        warnChangeListenerThrew(err);
      }
    }
  }
}
