/**
 * PostgresStore's change feed: one dedicated connection running LISTEN, reconnected with backoff, that turns NOTIFY payloads into key events.
 *
 * PostgreSQL does not queue notifications for a session that is not listening, so every gap in the
 * connection may hide changes. The feed says so through each subscriber's `onResync` (the option the
 * Redis and SQLite feeds take too): it runs once LISTEN is active (the first time and after every
 * reconnect) and also as soon as the connection is lost, so a cache in front of the store stops
 * trusting what it holds at once, not only when the feed is back.
 *
 * Payload format (sql.ts builds it in the write statement): `=<version>:<expiresAt> <key>` for a set or
 * touch (the stamp, see SessionStore.subscribe, is digits and a colon, so the first space ends it
 * whatever the key holds), `!<key>` for a removal. Anything else is a bare key from an older release
 * (its keys, hashes and `user:` names, never start with `=` or `!`), reported without a stamp.
 * @module
 */
import type { Notification, PoolClient } from 'pg';
import { warnChangeListenerThrew } from '../../core/store.js';
import type { ChangeFeedState } from '../../core/store.js';
import { timed } from './sql.js';

export interface ChangeFeedSubscription {
  /**
   * Runs whenever changes may have been missed: when the LISTEN connection is lost and when LISTEN is
   * active again (also the first time). A cache must drop every record it holds.
   */
  onResync?: () => void;
}

/**
 * - `idle`: no listeners, no connection.
 * - `connecting`: listeners exist but LISTEN is not active (first connect, or reconnecting after a
 *   drop); events written now are not seen by this process.
 * - `listening`: LISTEN is active; every committed change notifies.
 * - `closed`: the store was closed.
 */
export type FeedState = ChangeFeedState;

export interface ChangeFeedConfig {
  /** The exact NOTIFY channel name. */
  channel: string;
  /** A dedicated connection; the feed releases it with an error (so a pool discards it) when done. */
  connect(): Promise<PoolClient>;
  /** Bound on the heartbeat query that detects half-open connections. */
  timeoutMs: number;
}

const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 5_000;
const HEARTBEAT_MS = 15_000;

type Listener = (key: string, stamp?: string) => void;

/** A NOTIFY payload as the write statements build it: the key and, for a set or touch, its stamp. */
export function parseChange(payload: string): [key: string, stamp: string | undefined] {
  if (payload.startsWith('!')) return [payload.slice(1), undefined];
  if (payload.startsWith('=')) {
    const space = payload.indexOf(' ');
    if (space > 1) return [payload.slice(space + 1), payload.slice(1, space)];
  }
  return [payload, undefined];
}

export class ChangeFeed {
  readonly #options: ChangeFeedConfig;
  readonly #listeners = new Map<Listener, ChangeFeedSubscription>();
  #state: FeedState = 'idle';
  /** Releases the current connection (discarding it); set while one is held. */
  #drop: ((err?: unknown) => void) | null = null;
  /** The LISTEN connection while one is held; fences run their round trip on it. */
  #client: PoolClient | null = null;
  /** Bumped on every (re)connect and stop, so a late callback of an old connection changes nothing. */
  #generation = 0;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #waiters: Array<() => void> = [];

  constructor(options: ChangeFeedConfig) {
    this.#options = options;
  }

  get state(): FeedState {
    return this.#state;
  }

  add(listener: Listener, subscription: ChangeFeedSubscription = {}): () => void {
    if (this.#state === 'closed') return () => {};
    this.#listeners.set(listener, subscription);
    if (this.#state === 'idle') void this.#start();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#state !== 'closed') this.#stop('idle');
    };
  }

  /** Resolves once LISTEN is active, or false after `timeoutMs` (the feed keeps trying). */
  listening(timeoutMs: number): Promise<boolean> {
    if (this.#state === 'listening') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(this.#state === 'listening');
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.#waiters.push(done);
    });
  }

  /**
   * A round trip on the LISTEN connection. The server sends a listening session the notifications
   * committed before a query ahead of that query's result, so once `SELECT 1` returns, every change
   * committed before the call has been delivered. False when LISTEN is not active, or the connection
   * was lost meanwhile (then it is replaced, and `onResync` runs when LISTEN is back).
   */
  async fence(): Promise<boolean> {
    const client = this.#client;
    const generation = this.#generation;
    if (this.#state !== 'listening' || client === null) return false;
    try {
      await client.query(timed('SELECT 1', undefined, this.#options.timeoutMs));
    } catch (err) {
      // Unanswered within the bound: treat the connection as half-open, like the heartbeat does.
      if (generation === this.#generation && this.#client === client) this.#drop?.(err);
      return false;
    }
    return generation === this.#generation && this.#client === client && this.#state === 'listening';
  }

  close(): void {
    this.#stop('closed');
    this.#listeners.clear();
  }

  async #start(): Promise<void> {
    const generation = ++this.#generation;
    this.#state = 'connecting';
    let client: PoolClient;
    try {
      client = await this.#options.connect();
    } catch {
      if (generation === this.#generation) this.#retry();
      return;
    }
    if (generation !== this.#generation) {
      client.release(true);
      return;
    }
    let released = false;
    const lost = (err?: unknown): void => {
      if (released) return;
      released = true;
      client.removeListener('notification', onNotification);
      client.release(err instanceof Error ? err : true);
      if (generation !== this.#generation) return;
      this.#drop = null;
      this.#client = null;
      const wasListening = this.#state === 'listening';
      this.#state = 'connecting';
      clearInterval(this.#heartbeat);
      if (wasListening) this.#resync();
      this.#retry();
    };
    const onNotification = (msg: Notification): void => {
      if (msg.channel === this.#options.channel && msg.payload !== undefined) this.#deliver(msg.payload);
    };
    // An 'error' with no listener on a checked-out client would crash the process.
    client.on('error', lost);
    client.once('end', () => lost());
    client.on('notification', onNotification);
    this.#drop = lost;
    this.#client = client;
    try {
      await client.query(timed(`LISTEN "${this.#options.channel.replace(/"/g, '""')}"`, undefined, this.#options.timeoutMs));
    } catch (err) {
      lost(err);
      return;
    }
    if (generation !== this.#generation) return;
    this.#state = 'listening';
    this.#attempt = 0;
    this.#heartbeat = setInterval(() => {
      client.query(timed('SELECT 1', undefined, this.#options.timeoutMs)).catch(lost);
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    // Changes made before LISTEN (or while we were away) were never notified to us.
    this.#resync();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #retry(): void {
    if (this.#listeners.size === 0 || this.#state === 'closed') return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 16);
    this.#retryTimer = setTimeout(() => void this.#start(), base / 2 + Math.random() * (base / 2));
    this.#retryTimer.unref();
  }

  #stop(state: 'idle' | 'closed'): void {
    this.#generation++;
    this.#state = state;
    this.#attempt = 0;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#heartbeat);
    const drop = this.#drop;
    this.#drop = null;
    this.#client = null;
    // After the generation bump, `lost` only releases the connection; it does not reconnect.
    drop?.();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #deliver(payload: string): void {
    const [key, stamp] = parseChange(payload);
    for (const listener of [...this.#listeners.keys()]) guard(() => listener(key, stamp));
  }

  #resync(): void {
    for (const { onResync } of [...this.#listeners.values()]) if (onResync) guard(onResync);
  }
}

/** A listener that throws must not stop the others; the same warning code as the other stores' feeds. */
function guard(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    warnChangeListenerThrew(err);
  }
}
