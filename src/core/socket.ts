/**
 * Sessions on WebSocket connections (and any long-lived connection an HTTP request opens): the
 * handshake's origin is checked, the session is read at the handshake and again as the socket is
 * used, kept alive by the socket's activity, written through the session's gate, and watched for
 * its end, so that a logout closes the sockets it should.
 * @module
 */
import { SessionEndedError } from './errors.js';
import { sessionState } from './session.js';
import type { RejectedCookie, Session, UpdateFn } from './session.js';
import type { RequestView } from './csrf.js';
import { deadlineOf, expiresAtOfStamp } from './store.js';
import type { Clock } from './store.js';
import { MAX_TIMER_MS } from './options-check.js';

export interface SocketOptions {
  /**
   * How often the session is read again, so that a socket learns of an end this process did not see
   * (a logout handled by another process, a timeout); 0: only when `touch()`, `refresh()` or
   * `update()` read it. The timer does not keep the process alive.
   * @default 60_000
   */
  checkIntervalMs?: number;
  /**
   * Whether the store's change feed (SessionStore.subscribe: MemoryStore, SqliteStore, RedisStore,
   * PostgresStore, a TieredStore over one of them) prompts a read of the session when a client of the
   * same backend removes it, or writes it already ended (a regeneration), so that the socket learns of
   * a logout in another process within the feed's delay rather than at the next check. The first
   * handshake that uses it subscribes the engine for its lifetime (at its read, so that an end
   * reported during it is heard): RedisStore then holds a subscriber
   * connection, PostgresStore a LISTEN connection (one of its pool's), SqliteStore polls its change
   * log. Timeouts a backend enforces itself (RedisStore's TTLs) are found by the socket's timer at its
   * session's deadline. When the feed may have lost reports (it reconnected), every socket it watches
   * reads its session again, spread over a few seconds (RESYNC_SPREAD_MS).
   * @default true
   */
  changeFeed?: boolean;
}

/** A store's change feed, as SessionStore.subscribe gives it. */
export type ChangeFeedSubscribe = (listener: (key: string, stamp?: string) => void, options: { onResync: () => void }) => () => void;

/** Over how long the sockets read again after the change feed may have lost reports (a reconnection). */
export const RESYNC_SPREAD_MS = 5_000;
const RESYNC_SLICES = 50;
/** No socket ended yet, for each reason. */
export const NO_SOCKET_ENDS: Readonly<Record<SocketEndReason, number>> = Object.freeze({ destroyed: 0, expired: 0, regenerated: 0, gone: 0 });

/**
 * Why a socket's session ended: `destroyed` (a logout, "log out everywhere", a session limit), `expired`
 * (its timeout), `regenerated` (a login, a step-up (`reauthenticated()`) or `regenerate()` in this process gave it a new ID: the browser
 * holds a new cookie, which a new connection carries), `gone` (a read found no session: ended in
 * another process, by any of those).
 */
export type SocketEndReason = 'destroyed' | 'expired' | 'regenerated' | 'gone';

/** What a SocketSession needs of the engine: the request API, and its clock and touch interval. */
export interface SocketEngine<T extends object> {
  open(req: RequestView, options?: { write?: boolean; renew?: boolean }): Promise<Session<T>>;
  commit(session: Session<T>): Promise<string[]>;
  abandon(session: Session<T>): void;
  readonly options: { readonly clock: Clock; readonly touchIntervalMs: number; readonly expiryGraceMs: number };
}

/** What ended, or what the change feed reported, while a handshake read its session (SocketRegistry.watch). */
export interface HandshakeWatch {
  /** Keys whose session ended in this process, with the first reason. */
  keys: Map<string, SocketEndReason>;
  /** Keys the change feed reported, with the idle deadline reported (undefined: a removal). */
  reported: Map<string, number | undefined>;
  /** destroyUserSessions calls: the user, and the keys it kept. */
  users: Array<{ userId: string; except: readonly string[] }>;
  /** destroyAllSessions ran. */
  all: boolean;
  /** The feed may have lost reports. */
  resync: boolean;
}

/**
 * The sockets of one engine by store key: how the engine's lifecycle events reach them, and the
 * store's change feed, where it has one, the removals made by other processes.
 */
export class SocketRegistry {
  readonly #byKey = new Map<string, Set<SocketSession<object>>>();
  readonly #subscribe: ChangeFeedSubscribe | undefined;
  readonly #clock: Clock;
  #unsubscribe: (() => void) | null = null;
  #stopped = false;
  #size = 0;
  #resyncTimer: NodeJS.Timeout | null = null;
  /** Sockets whose session ended, by reason (closed ones are not counted). */
  readonly #ends: Record<SocketEndReason, number> = { ...NO_SOCKET_ENDS };
  /** Handshakes reading their session: what ended meanwhile (see `watch`). */
  readonly #watches = new Set<HandshakeWatch>();

  /** `subscribe`: the store's change feed, or undefined when it has none. */
  constructor(clock: Clock, subscribe?: ChangeFeedSubscribe) {
    this.#clock = clock;
    this.#subscribe = subscribe;
  }

  /** Adds a socket; `feed`: it wants the change feed's reports (subscribes the engine with the first). */
  add(key: string, socket: SocketSession<object>, feed: boolean): void {
    let set = this.#byKey.get(key);
    if (set === undefined) this.#byKey.set(key, (set = new Set()));
    if (!set.has(socket)) {
      set.add(socket);
      this.#size++;
    }
    if (feed) this.#subscribeFeed();
  }

  /**
   * A handshake begins to read its session: until `settle`, what ends here and what the feed reports
   * is noted for it, since its socket is not yet among those the endings reach. Without it, a logout
   * between the handshake's read and its socket's registration would leave the socket open on an
   * ended session until its next check. `feed`: the socket will want the change feed, which is
   * subscribed now so that reports made during the read are heard.
   */
  watch(feed: boolean): HandshakeWatch {
    const watch: HandshakeWatch = { keys: new Map(), reported: new Map(), users: [], all: false, resync: false };
    this.#watches.add(watch);
    if (feed) this.#subscribeFeed();
    return watch;
  }

  /**
   * The handshake's socket is registered (or there is none: `socket` null): what ended during its read
   * reaches it now, as it would have had it been registered then.
   */
  settle(watch: HandshakeWatch, key: string | null, socket: SocketSession<object> | null): void {
    this.#watches.delete(watch);
    if (socket === null || key === null) return;
    const userId = socket.userId;
    const reason = watch.all ? 'destroyed' : watch.keys.get(key)
      ?? (userId !== null && watch.users.some((u) => u.userId === userId && !u.except.includes(key)) ? 'destroyed' : undefined);
    if (reason !== undefined) return socket.end(reason);
    if (watch.resync) socket.heard(undefined, this.#clock.now());
    else if (watch.reported.has(key)) socket.heard(watch.reported.get(key), this.#clock.now());
  }

  #subscribeFeed(): void {
    if (this.#unsubscribe === null && this.#subscribe !== undefined && !this.#stopped) {
      try {
        this.#unsubscribe = this.#subscribe((k, stamp) => this.#reported(k, stamp), { onResync: () => this.#resynced() });
      } catch {
        // A store that cannot subscribe now (closing): the sockets' checks still find their ends.
      }
    }
  }

  /** Leaves the change feed (the engine closes). */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#resyncTimer !== null) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = null;
  }

  /**
   * The feed may have lost reports (it reconnected, or its log was trimmed): every socket it watches
   * reads its session again, spread over RESYNC_SPREAD_MS in slices, so that a feed back from an
   * outage does not send them all to the store at once. A resync during one starts it over.
   */
  #resynced(): void {
    if (this.#resyncTimer !== null) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = null;
    for (const watch of this.#watches) watch.resync = true;
    const sockets = [...this.#byKey.values()].flatMap((set) => [...set]);
    const per = Math.ceil(sockets.length / RESYNC_SLICES);
    let next = 0;
    const slice = (): void => {
      this.#resyncTimer = null;
      if (this.#stopped) return;
      for (const socket of sockets.slice(next, next + per)) socket.heard(undefined, this.#clock.now());
      next += per;
      if (next >= sockets.length) return;
      this.#resyncTimer = setTimeout(slice, RESYNC_SPREAD_MS / RESYNC_SLICES);
      this.#resyncTimer.unref();
    };
    if (sockets.length > 0) slice();
  }

  /**
   * A report of the change feed: each socket of the key decides whether it ended the session (see
   * SocketSession.heard). That waits for the end of the turn: an ending in this process is told by the
   * engine first, with its own reason, and the report it also makes is then moot.
   */
  #reported(key: string, stamp: string | undefined): void {
    if (!this.#byKey.has(key) && this.#watches.size === 0) return;
    const expiresAt = stamp === undefined ? undefined : expiresAtOfStamp(stamp);
    // A removal outweighs a write reported with it: the socket then reads the session again.
    for (const watch of this.#watches) if (!watch.reported.has(key) || watch.reported.get(key) !== undefined) watch.reported.set(key, expiresAt);
    setImmediate(() => {
      const set = this.#byKey.get(key);
      if (set !== undefined) for (const socket of [...set]) socket.heard(expiresAt, this.#clock.now());
    });
  }

  remove(key: string, socket: SocketSession<object>): void {
    const set = this.#byKey.get(key);
    if (set === undefined || !set.delete(socket)) return;
    this.#size--;
    if (set.size === 0) this.#byKey.delete(key);
  }

  /** Sockets watched. */
  get size(): number {
    return this.#size;
  }

  /** Sockets whose session ended, by reason, since the engine began. */
  get ends(): Readonly<Record<SocketEndReason, number>> {
    return { ...this.#ends };
  }

  /** @internal A socket's session ended (SocketSession.end). */
  counted(reason: SocketEndReason): void {
    this.#ends[reason]++;
  }

  /** The session under `key` ended in this process. */
  ended(key: string, reason: SocketEndReason): void {
    for (const watch of this.#watches) if (!watch.keys.has(key)) watch.keys.set(key, reason);
    const set = this.#byKey.get(key);
    if (set === undefined) return;
    for (const socket of [...set]) socket.end(reason);
  }

  /** Every session ended (`destroyAllSessions`). */
  endedAll(): void {
    for (const watch of this.#watches) watch.all = true;
    for (const set of [...this.#byKey.values()]) for (const socket of [...set]) socket.end('destroyed');
  }

  /** Every session of `userId` ended (`destroyUserSessions`), but those under the keys in `except`. */
  endedForUser(userId: string, except: readonly string[]): void {
    for (const watch of this.#watches) watch.users.push({ userId, except });
    for (const [key, set] of [...this.#byKey]) {
      if (except.includes(key)) continue;
      for (const socket of [...set]) if (socket.userId === userId) socket.end('destroyed');
    }
  }
}

/**
 * A session as a long-lived connection sees it: read at the handshake and again on demand, never
 * written but through `update()`. Built by `tether.openSocket()`; call `close()` when the connection closes.
 */
export class SocketSession<T extends object> {
  readonly #engine: SocketEngine<T>;
  readonly #registry: SocketRegistry;
  /** The handshake's cookie and User-Agent: what a request of this browser would carry. */
  readonly #view: RequestView;
  /** Whether change-feed reports prompt a read (options.changeFeed). */
  readonly #feed: boolean;
  #session: Session<T>;
  #key: string | null;
  #ended: SocketEndReason | null = null;
  #closed = false;
  #onEnd: Array<(reason: SocketEndReason) => void> = [];
  /** When touch() last read the store (the engine's clock), to space out its reads. */
  #touchedAt: number;
  /** The read under way, of `touch()` and of the others: each shares one of its own kind. */
  #touching: Promise<boolean> | null = null;
  #reading: Promise<boolean> | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Fires at the session's timeout as last read, to read it then (see `#atDeadline`). */
  #deadlineTimer: NodeJS.Timeout | null = null;
  /** The latest idle deadline the change feed reported for a live write (see `heard`). */
  #heardExpiresAt = -Infinity;
  /**
   * Set-Cookie values the handshake's commit gave: usually none; a cookie re-signed with the first
   * secret, or one expiring a forged cookie. A 101 response may carry them.
   */
  readonly cookies: readonly string[];
  /**
   * Set when the handshake carried a session cookie that was forged or names no session, as
   * `Session.rejectedCookie`: count the forged ones per client, as for requests (ID guessing).
   */
  readonly rejectedCookie: RejectedCookie | null;

  /** @internal built by the engine */
  constructor(engine: SocketEngine<T>, registry: SocketRegistry, req: RequestView, session: Session<T>, cookies: string[], options: SocketOptions) {
    this.#engine = engine;
    this.#registry = registry;
    const cookie = req.header('cookie');
    const ua = req.header('user-agent');
    this.#view = { method: 'GET', header: (name) => (name === 'cookie' ? cookie : name === 'user-agent' ? ua : undefined) };
    this.#session = session;
    this.#key = sessionState(session).key;
    this.#touchedAt = engine.options.clock.now();
    this.cookies = cookies;
    this.rejectedCookie = session.rejectedCookie;
    this.#feed = options.changeFeed ?? true;
    if (this.#key === null) return;
    registry.add(this.#key, this, this.#feed);
    const every = options.checkIntervalMs ?? 60_000;
    if (every > 0) {
      this.#timer = setInterval(() => void this.refresh().catch(() => {}), every);
      this.#timer.unref();
    }
    this.#atDeadline();
  }

  /** True when the handshake carried no live session (nothing to watch; `touch()` answers false). */
  get isNew(): boolean {
    return this.#key === null;
  }

  /** The session's opaque handle (as `listUserSessions()` gives it), or null without a session. */
  get handle(): string | null {
    return this.#session.handle;
  }

  /** The owner, as last read. */
  get userId(): string | null {
    return this.#session.userId;
  }

  /** The data as last read; read-only (change it with `update()`). */
  get data(): Readonly<Partial<T>> {
    return this.#session.data;
  }

  /** One value of the data as last read. */
  get<K extends keyof T & string>(key: K): T[K] | undefined {
    return this.#session.get(key);
  }

  /** Why the session ended, or null while it lives (and for a socket that never had one). */
  get ended(): SocketEndReason | null {
    return this.#ended;
  }

  /**
   * Runs `fn` once when the session ends (see SocketEndReason), at once if it already has. Close the
   * socket there: what it was allowed to see belonged to a session that is over.
   */
  onEnd(fn: (reason: SocketEndReason) => void): void {
    if (typeof fn !== 'function') throw new TypeError('socket.onEnd(fn) takes a function');
    if (this.#ended !== null) {
      const reason = this.#ended;
      queueMicrotask(() => fn(reason));
      return;
    }
    if (!this.#closed) this.#onEnd.push(fn);
  }

  /**
   * Activity on the socket (a message from the browser): keeps the session alive as a request would,
   * its idle deadline moved when a touch is due. Reads the store at most once per `touchIntervalMs`
   * and answers from what it knows in between. Resolves whether the session lives.
   */
  touch(): Promise<boolean> {
    if (this.#ended !== null || this.#key === null) return Promise.resolve(false);
    const now = this.#engine.options.clock.now();
    if (now - this.#touchedAt < this.#engine.options.touchIntervalMs) return Promise.resolve(true);
    return (this.#touching ??= this.#read(true).then((live) => {
      this.#touchedAt = now;
      return live;
    }).finally(() => {
      this.#touching = null;
    }));
  }

  /**
   * Reads the session again now (its data, its owner, whether it lives), as a request of this browser
   * would, but without keeping it alive: that is `touch()`'s, for activity. The check timer and the
   * change feed read so, so an open socket on which nothing happens does not hold its session past
   * the idle timeout. Resolves whether it lives; rejects with STORE_UNAVAILABLE when the store cannot
   * answer (the session is not taken for ended). Calls made while a read is under way share it.
   */
  refresh(): Promise<boolean> {
    if (this.#ended !== null || this.#key === null) return Promise.resolve(false);
    return (this.#reading ??= this.#read(false).finally(() => {
      this.#reading = null;
    }));
  }

  /**
   * Changes the session as a request of this browser would: waits its turn at the session's gate, runs
   * `fn` as `session.update(fn)` does (again on fresh data after a conflict), and stores the change
   * before it resolves. Rejects with SESSION_ENDED once the session has ended; with the commit's
   * errors (SESSION_TOO_LARGE, STORE_UNAVAILABLE…) otherwise.
   */
  async update(fn: UpdateFn<T>): Promise<void> {
    if (this.#ended !== null || this.#key === null) throw new SessionEndedError();
    const session = await this.#engine.open(this.#view, { write: true, renew: false });
    if (!this.#same(session)) {
      await this.#engine.commit(session);
      this.end(endOf(session));
      throw new SessionEndedError();
    }
    try {
      await session.update(fn);
    } catch (err) {
      // As a request whose handler failed: nothing of it is stored.
      this.#engine.abandon(session);
      throw err;
    }
    await this.#engine.commit(session);
    this.#touchedAt = this.#engine.options.clock.now();
    this.#read1(session);
  }

  /** Stops watching the session: call it when the connection closes. `onEnd` callbacks no longer run. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onEnd = [];
    this.#unwatch();
  }

  /**
   * @internal The change feed reported the session changed (`expiresAt`: its new idle deadline) or
   * removed (undefined). A removal, or a state written already past its deadline (how a regeneration
   * ends the old ID), sends the socket to read it again, if it listens. Any other change did not end
   * the session; its data is read at the next touch or refresh.
   *
   * "Past" is judged by this process's clock, or against the latest live deadline known (read, or
   * reported since): a live write sets its deadline a whole window (idle timeout and grace) after its
   * writer's now, an ending one just before it, so a deadline more than half a window before the
   * latest is an ending. A regeneration in a process whose clock runs ahead of this one's is still
   * heard, and a live write from one whose clock trails by a few milliseconds (two RedisStores' samples
   * of the server's time) does not send the socket to the store.
   */
  heard(expiresAt: number | undefined, now: number): void {
    if (!this.#feed || this.#ended !== null) return;
    if (expiresAt !== undefined && expiresAt > now) {
      const record = sessionState(this.#session).record;
      const latest = Math.max(this.#heardExpiresAt, record?.expiresAt ?? -Infinity);
      const halfWindow = record === null ? 0 : (record.expiresAt - record.lastSeenAt) / 2;
      if (!(expiresAt < latest - halfWindow)) {
        if (expiresAt > this.#heardExpiresAt) this.#heardExpiresAt = expiresAt;
        return;
      }
    }
    // A read under way may have read the store before the change it reports: a read after it, then.
    const fresh = (): void => void this.refresh().catch(() => {});
    if (this.#reading !== null) void this.#reading.then(fresh, fresh);
    else fresh();
  }

  /** @internal The session ended: the registry (an event of this engine) or a read found so. */
  end(reason: SocketEndReason): void {
    // A socket closed while a read was under way watches nothing: not an end to count or report.
    if (this.#ended !== null || this.#closed) return;
    this.#ended = reason;
    this.#registry.counted(reason);
    this.#unwatch();
    const callbacks = this.#onEnd;
    this.#onEnd = [];
    for (const fn of callbacks) {
      try {
        fn(reason);
      } catch (err) {
        // As afterCommit: an app's callback that throws is thrown again, uncaught, off this path.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  /** Reads the session; `touch`: committed as a read-only request (a touch when due), else let go unwritten. */
  async #read(touch: boolean): Promise<boolean> {
    const session = await this.#engine.open(this.#view, { write: false, renew: false });
    // A read-only request: its commit writes only a touch that is due, never the data.
    if (touch) await this.#engine.commit(session);
    else this.#engine.abandon(session);
    if (this.#ended !== null) return false;
    if (!this.#same(session)) {
      this.end(endOf(session));
      return false;
    }
    this.#read1(session);
    return true;
  }

  /**
   * Whether a reopened session is this socket's, still live (not a fresh anonymous one). A session
   * reached through a renewal's pointer is not: the socket's cookie dies with the grace.
   */
  #same(session: Session<T>): boolean {
    return sessionState(session).key === this.#key && !session.isNew;
  }

  #read1(session: Session<T>): void {
    this.#session = session;
    this.#atDeadline();
  }

  /**
   * Reads the session again when it times out, as last read: the earlier of its idle and absolute
   * deadlines (the record's, less the grace the engine adds for the store). It ends then, `expired`,
   * unless activity elsewhere moved it, which the read finds, and the timer is set again. So a socket
   * learns of its session's timeout on time, whatever the store, and without a check timer. At least
   * a second from now: a deadline this process's clock already passed cannot make it read in a loop.
   */
  #atDeadline(): void {
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = null;
    const record = sessionState(this.#session).record;
    if (record === null || this.#ended !== null || this.#closed) return;
    const deadline = deadlineOf(record) - this.#engine.options.expiryGraceMs;
    const delay = Math.max(deadline - this.#engine.options.clock.now() + 1, 1_000);
    if (delay > MAX_TIMER_MS) return;
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = null;
      // A store that cannot answer now: read again (a second on, the deadline being past), or the
      // timeout goes unnoticed where no check timer or change feed would find it.
      this.refresh().catch(() => this.#atDeadline());
    }, delay);
    this.#deadlineTimer.unref();
  }

  #unwatch(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = null;
    if (this.#key !== null) this.#registry.remove(this.#key, this);
  }
}

/**
 * Why a socket's session, reopened, is no longer its own: its ID was renewed (the cookie led to the
 * session's new ID; the browser has it, and a new connection carries it), or it ended.
 */
function endOf(session: Session<object>): SocketEndReason {
  const s = sessionState(session);
  return s.key !== null && s.id !== s.presentedId ? 'regenerated' : 'gone';
}
