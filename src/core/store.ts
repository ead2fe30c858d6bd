/**
 * The persistence contract every session store implements (memory, SQLite, Redis, PostgreSQL, tiered).
 *
 * A store keeps opaque records under opaque keys. It never sees a raw session ID: the engine hands it
 * the SHA-256 of the ID (base64url). It never parses `data`: the engine's codec owns that string.
 * The conformance suite in src/testing/store-suite.ts is the executable form of this contract.
 * @module
 */
import { SessionConflictError } from './errors.js';
import { decimal } from './decimal.js';
import type { SharedLimiter } from './rate-limit.js';

/** Time source; injected so expiry tests never sleep. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that follows a server shared by many machines: the local clock plus the offset measured
 * from the server's own time (NTP's estimate: the server's time minus the midpoint of the round trip
 * that fetched it). Every process sharing the server then agrees on "now" with it, within half a
 * round trip, however far its own clock is off, so one authority decides expiry (SECURITY.md F14).
 * Until the first sample it is the local clock.
 */
/** How often a store measures its ServerClock against the server (besides connecting and the first read). */
export const SERVER_CLOCK_SYNC_MS = 60_000;

export class ServerClock implements Clock {
  readonly local: Clock;
  #offset = 0;
  #synced = false;

  constructor(local: Clock = systemClock) {
    this.local = local;
  }

  now(): number {
    return this.local.now() + this.#offset;
  }

  /** The server's time minus the local clock's, in ms, as last measured (0 before the first sample). */
  get offsetMs(): number {
    return this.#offset;
  }

  /** Whether a sample was taken. */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * One measurement: the local time the request left (`sentAt`), the server's time in its answer
   * (`serverMs`) and the local time the answer arrived (`receivedAt`). Taken whole milliseconds, so
   * deadlines computed from `now()` stay integers.
   */
  sample(sentAt: number, serverMs: number, receivedAt: number): void {
    if (!(receivedAt >= sentAt) || !Number.isFinite(serverMs)) return;
    this.#offset = Math.round(serverMs - (sentAt + receivedAt) / 2);
    this.#synced = true;
  }
}

/** One stored session (or user-context record). All times are epoch milliseconds. */
export interface SessionRecord {
  /** Store key: the hash of the session ID, or `user:<hash>` for a user context. */
  key: string;
  /** The codec's output; opaque to stores. */
  data: string;
  /** 1 on creation, +1 on every `set`. `touch` does not change it. */
  version: number;
  /** Owner, for the per-user index; null for anonymous sessions. */
  userId: string | null;
  createdAt: number;
  lastSeenAt: number;
  /** Idle deadline; moved forward by `touch` and `set`. */
  expiresAt: number;
  /** Hard deadline, never moved by `touch`. */
  absoluteExpiresAt: number;
}

export interface ChangeFeedOptions {
  /** Called whenever changes may have been missed; the subscriber must then distrust every cached key. */
  onResync?: () => void;
}

/**
 * Where a change feed stands, for stores whose feed runs over a connection that can drop:
 * - `idle`: nobody subscribes, so no feed runs.
 * - `connecting`: someone subscribes but the feed is not receiving (first connect, or reconnecting
 *   after a drop); changes made now are not reported, and `onResync` runs once it is back.
 * - `listening`: every committed change is reported.
 * - `closed`: the store was closed.
 */
export type ChangeFeedState = 'idle' | 'connecting' | 'listening' | 'closed';

export type SetResult =
  | { ok: true }
  /** `current` is the version found (0 when the key is absent or expired). */
  | { ok: false; current: number };

export interface CountOptions {
  /**
   * Count only sessions whose deadline (the earlier of `expiresAt` and `absoluteExpiresAt`) is more
   * than this many milliseconds after the store clock's now: a whole number, at least 0 (otherwise the
   * count rejects with a TypeError). The engine passes its `expiryGraceMs`. @default 0
   */
  marginMs?: number;
}

/**
 * `options.marginMs` of a SessionStore.count, destroyByUser or destroyAll call (`method`, for the
 * message), 0 when absent: a session is counted when its deadline is after the store clock's now plus
 * this. Throws a TypeError for a margin that is not a whole number of milliseconds, at least 0.
 */
export function countMargin(options: CountOptions | undefined, method = 'count'): number {
  const margin = options?.marginMs ?? 0;
  if (!Number.isSafeInteger(margin) || margin < 0) {
    throw new TypeError(`${method}(): marginMs must be a whole number of milliseconds, at least 0 (got ${String(margin)})`);
  }
  return margin;
}

/**
 * Options of `destroyByUser`. `marginMs`, as count's, applies to the count returned only: every record of
 * the user but `except` is removed, and those within the margin of their deadline are not counted (a
 * margin that is not a whole number, at least 0, rejects with a TypeError and removes nothing).
 */
export interface DestroyByUserOptions extends CountOptions {
  /** Keys to keep (typically the session making the request). */
  except?: readonly string[];
}

/**
 * Options of `destroyAll`: `marginMs`, as count's, for the count returned only; every session is removed
 * (a margin that is not a whole number, at least 0, rejects with a TypeError and removes nothing).
 */
export type DestroyAllOptions = CountOptions;

/** A session a sweep deleted because it timed out (SessionStore.onSwept). */
export interface SweptSession {
  /** Its store key. */
  key: string;
  /** Its owner, null for an anonymous session. */
  userId: string | null;
}

export type SweptListener = (swept: ReadonlyArray<SweptSession>) => void;

/** A caller's slot for one store key, kept between calls (see SessionStore.getLocal). */
export interface LocalSlot {
  local: unknown;
}

/**
 * Required members. Contract, for every store:
 * - `get` returns null for a missing key and for a record whose `expiresAt` or `absoluteExpiresAt`
 *   is at or before the store clock's `now()`; it returns a copy the caller may change freely.
 * - `set(record, expectedVersion)` is a compare-and-set: it writes iff the stored version (0 when
 *   absent or expired) equals `expectedVersion`, and `record.version` must be `expectedVersion + 1`.
 *   So a key that was destroyed can never be written again by a request that loaded it before
 *   (its expectedVersion is > 0), which is what makes logout final. The user index is updated in the
 *   same atomic step: the key is listed under `record.userId` and removed from a previous owner.
 * - `touch(key, expiresAt, lastSeenAt, version?)` moves the idle deadline of an existing, unexpired record; on a
 *   missing key it does nothing (it never creates). Given `version`, only a record still at that version is
 *   touched: a request that read an older state must not put its deadline over the one a newer write set
 *   (a session remembered meanwhile would get the ordinary idle timeout back). Returns whether a record
 *   was touched.
 * - `destroy(key)` removes the record and its index entry; idempotent.
 * - `listByUser(userId)` returns the user's live records (any order); `destroyByUser` removes them all
 *   but `except`, returning how many live ones it removed: with `marginMs`, only those whose deadline
 *   is more than that far ahead of now (the engine passes its `expiryGraceMs`, so that a session it
 *   treats as ended is not counted as ended now). A store that ignores `marginMs` (one written before
 *   it existed) still works, counting those too.
 * - After `close()`, every method rejects with code `STORE_CLOSED`; `close()` itself is idempotent.
 * - Failures of the backend reject with code `STORE_UNAVAILABLE` (the engine also bounds each call
 *   with its own timeout).
 */
export interface SessionStore {
  /** Short name for messages and metrics, e.g. "sqlite". */
  readonly name: string;
  /**
   * The clock this store decides expiry by, when it is one every process sharing the store agrees on
   * (RedisStore's ServerClock, following the server's time). An engine given no `clock` of its own
   * follows it, so a machine whose clock is off neither ends sessions early nor keeps them late.
   */
  readonly clock?: Clock;
  /**
   * Optional: how long a write may wait inside the store (SqliteStore: for another process's lock,
   * `busyTimeoutMs`) before it fails, having committed nothing. Kept below the engine's `storeTimeoutMs`,
   * a write the engine answered `503 STORE_UNAVAILABLE` for has failed in the store too; at or above it,
   * such a write may still commit afterwards (a login's regeneration under a cookie the client never
   * got), and the engine warns (TETHER_STORE_OUTWAITS_DEADLINE).
   */
  readonly maxWaitMs?: number;
  get(key: string): Promise<SessionRecord | null>;
  set(record: SessionRecord, expectedVersion: number): Promise<SetResult>;
  touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean>;
  destroy(key: string): Promise<void>;
  listByUser(userId: string): Promise<SessionRecord[]>;
  destroyByUser(userId: string, options?: DestroyByUserOptions): Promise<number>;
  close(): Promise<void>;

  /**
   * Optional. Removes expired records where the backend has no native expiry (or, for RedisStore with
   * `reportExpired`, claims the sessions Redis expired, to report them); returns how many.
   * Absent: the backend expires records itself (Redis TTL).
   */
  sweep?(): Promise<number>;
  /**
   * Optional, with `sweep`: calls `listener` with the sessions each sweep deleted because they timed
   * out, once the deletion committed and before `sweep()` resolves, in batches (one per delete
   * statement or transaction). Only session records: not user contexts (`user:` keys), and not records
   * written already past a deadline (`lastSeenAt` at or after it: how the engine ends a regenerated
   * session, which is no expiry). Each
   * deleted record is reported once, by the client whose sweep deleted it, whichever of the processes
   * sharing the backend that is. A listener that throws stops neither the sweep nor the other
   * listeners (warning `TETHER_SWEEP_LISTENER_THREW`). Absent: nothing reports sessions the backend
   * expires (Redis TTLs, unless RedisStore's `reportExpired`). Returns an unsubscribe function.
   */
  onSwept?(listener: SweptListener): () => void;
  /**
   * Optional: `get(key)` answered from this process's memory, with no I/O, or `undefined` when it
   * cannot be answered so (a miss, or a copy that must first be checked with a backend). A defined
   * result must be what `get` would return. The engine tries it first: a hit costs no promise and no
   * store deadline. MemoryStore always answers; TieredStore answers for a copy it may serve at once.
   * `slot`, when given, is the caller's for this key alone and outlives the call (the engine keeps one
   * per verified cookie): the store may leave there what helps it answer the key's next call, and must
   * check whatever it finds there against what it holds then. Through a slot the store may hand out
   * the same record object again while the stored state it stands for is unchanged, so a caller that
   * passes a slot must not change what it gets (the engine never does).
   */
  getLocal?(key: string, slot?: LocalSlot): SessionRecord | null | undefined;
  /**
   * Optional change feed: calls `listener(key, stamp)` after any client of the same backend (this
   * process or another) changed or removed `key`. Used by TieredStore to invalidate its local copies.
   * Absent: a tier in front of this store can only be used by one process.
   * `stamp` is `stampOf` the state a `set` or `touch` left behind; a removal (destroy, destroyByUser,
   * eviction, sweep) is reported without one. A subscriber may ignore a report whose stamp equals the
   * stamp of the copy it holds, or of the set/touch it has in flight, for that key: within one lifetime
   * of a key the version only grows by compare-and-set, so (version, expiresAt) names one state; a key
   * deleted and re-created is reported deleted in between, and a feed delivers in commit order. A
   * report without a stamp always invalidates. Another client's touch moves expiresAt, so its stamp
   * differs and invalidates (a copy with a stale lastSeenAt could look idle-expired when it is not).
   * Feeds can lose events (pub/sub while disconnected, LISTEN while reconnecting, a trimmed change
   * log): each then calls `options.onResync()`, after which a subscriber must treat every key as
   * possibly changed (a tier drops its whole local cache).
   * Returns an unsubscribe function.
   */
  subscribe?(listener: (key: string, stamp?: string) => void, options?: ChangeFeedOptions): () => void;
  /**
   * Optional read fence for the change feed: resolves true once every change committed (by any client)
   * before the call has been delivered to this store's `subscribe` listeners, so a copy that no report
   * has invalidated by then is at least as new as any write acknowledged before the call. Resolves
   * false when the feed cannot vouch for that (not subscribed, disconnected, or the connection was lost
   * while fencing); a feed that was down calls `onResync` before a later fence resolves true again.
   * May reject on a backend failure. Typically one round trip on the feed's own connection, ordered
   * after the notifications already sent on it. Absent: the feed's delivery delay is the freshness
   * bound; TieredStore then serves hits without waiting (its `consistency: 'eventual'`).
   */
  fence?(): Promise<boolean>;
  /**
   * Optional: the feed's state where it runs over a connection that can drop. While it is not
   * `listening`, a subscriber must not trust anything it cached (TieredStore reads through).
   * Absent: the feed never stops delivering without calling `onResync` (a polled log, in-process calls).
   */
  readonly feedState?: ChangeFeedState;
  /**
   * Optional: how many live sessions the store holds (admin page, CLI, `newSessions.maxActive`): user
   * contexts (`user:` keys) are not sessions and are not counted. With `marginMs`, only those whose
   * deadline is more than that far ahead of now: the engine keeps records `expiryGraceMs` past its own
   * timeout, and counts with that margin so that a session it treats as ended is not counted. A store
   * that ignores the argument (one written before it existed) still works, counting those too.
   */
  count?(options?: CountOptions): Promise<number>;
  /**
   * Optional: ends every session at once (ASVS 7.4.5, "for all users": after a breach, or a change of
   * what a session may hold). Removes every session record and its user-index entry, as `destroy`
   * removes one, and reports each removal on the change feed without a stamp; user contexts
   * (`user:` keys) stay, since a user's saved state is not a session. Returns how many live sessions
   * it removed. It works in batches, each atomic: a session written while it runs is removed or kept
   * whole; one created after it resolves is kept. With `marginMs`, the count leaves out, as `count`'s
   * does, the sessions whose deadline is that close, though they are removed too: the engine passes
   * its `expiryGraceMs`. A store that ignores the argument (one written before it existed) still
   * works, counting those too. Absent: the engine's `destroyAllSessions()` is refused with
   * OPTIONS_INVALID.
   */
  destroyAll?(options?: DestroyAllOptions): Promise<number>;
  /**
   * Optional: a regeneration in one step. Writes `ended` (the old record, rewritten with its deadlines
   * already passed) by compare-and-set over `expectedVersion`, and only then `created` (version 1, a
   * new key), atomically: the outcome of `set(ended, expectedVersion)` followed by `set(created, 0)`,
   * in one round trip. On a conflict over the old record neither key changes and the result is that
   * conflict; a `created` key that already holds a live record fails with SESSION_CONFLICT, again with
   * neither key changed. Absent: the engine makes the two calls.
   */
  regenerate?(ended: SessionRecord, expectedVersion: number, created: SessionRecord): Promise<SetResult>;
  /**
   * Optional: a rate limiter whose counts live in the backend, so every process and machine sharing
   * it counts together: at most `limit` events per key in any `windowMs` (a sliding window of two
   * fixed ones, rate-limit.ts), by the store's clock. Keys are kept as digests only. Calls reject like
   * any other (STORE_UNAVAILABLE, STORE_CLOSED); a bad name, limit or window throws a TypeError.
   * Absent on stores one machine owns (MemoryStore, SQLiteStore): `sharedLimiter` (tether/cluster)
   * then counts on the machine. Prefer `sharedLimiter(name, limit, windowMs, { store })` to calling
   * this directly: it counts on the machine while the store is out.
   */
  limiter?(name: string, limit: number, windowMs: number): SharedLimiter;
}

/** The state a set or touch left behind, as change feeds report it: `<version>:<expiresAt>`. */
export function stampOf(r: Pick<SessionRecord, 'version' | 'expiresAt'>): string {
  return `${r.version}:${decimal(r.expiresAt)}`;
}

/** The `expiresAt` a stamp (`stampOf`) reports; NaN for text that is no stamp. */
export function expiresAtOfStamp(stamp: string): number {
  const colon = stamp.indexOf(':');
  return colon < 0 ? Number.NaN : Number(stamp.slice(colon + 1));
}

/** True when the record is past either deadline at `now`. */
export function isExpired(record: Pick<SessionRecord, 'expiresAt' | 'absoluteExpiresAt'>, now: number): boolean {
  return record.expiresAt <= now || record.absoluteExpiresAt <= now;
}

/**
 * Resolves once the event loop has run what was waiting (timers, I/O, other requests): a store's long
 * pass (a sweep, destroyAll) awaits it between two batches, so the process goes on answering meanwhile.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The earlier of the two deadlines: what a TTL-based backend should expire the record at. */
export function deadlineOf(record: Pick<SessionRecord, 'expiresAt' | 'absoluteExpiresAt'>): number {
  return Math.min(record.expiresAt, record.absoluteExpiresAt);
}

/** The arguments of `regenerate`: each record's version follows its expected one (the new record's is 1). */
export function assertRegeneration(ended: SessionRecord, expectedVersion: number, created: SessionRecord): void {
  assertNextVersion(ended, expectedVersion);
  assertNextVersion(created, 0);
}

const UNSENT = Symbol('tether.unsent');

/**
 * Marks `err`, a store call's failure, as one that sent nothing to the backend (no connection when it
 * was made): its write cannot land later, so a cache need not doubt what it held (TieredStore).
 */
export function unsent<E extends Error>(err: E): E {
  Object.defineProperty(err, UNSENT, { value: true });
  return err;
}

/** Whether `err` was marked by `unsent`. */
export function wasUnsent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[UNSENT] === true;
}

/** A new session's key already holds a live record: the error every regeneration and create answers it with. */
export function idCollision(): SessionConflictError {
  return new SessionConflictError('a new session ID collided with a live one');
}

/** Rejects a record whose version does not follow `expectedVersion`: a bug in the caller. */
export function assertNextVersion(record: SessionRecord, expectedVersion: number): void {
  if (record.version !== expectedVersion + 1) {
    throw new RangeError(`record.version must be expectedVersion + 1 (got ${record.version} after ${expectedVersion})`);
  }
}

/** Whether a store key names a session, not a user context (`user:<hash>`, src/core/ids.ts). */
export function isSessionKey(key: string): boolean {
  return !key.startsWith('user:');
}

/**
 * Whether a deleted record timed out, rather than being written already past a deadline (a
 * regeneration's ended record, whose `lastSeenAt` is its ending): what `onSwept` reports.
 */
function timedOut(record: Pick<SessionRecord, 'key' | 'lastSeenAt' | 'expiresAt' | 'absoluteExpiresAt'>): boolean {
  return isSessionKey(record.key) && deadlineOf(record) > record.lastSeenAt;
}

/** What a store knows of a record it deleted: enough to tell whether it timed out, and whose it was. */
export type DeletedRecord = Pick<SessionRecord, 'key' | 'userId' | 'lastSeenAt' | 'expiresAt' | 'absoluteExpiresAt'>;

/** A store's listeners of swept sessions (SessionStore.onSwept): what `onSwept` adds to, and its sweeps report to. */
export class SweptListeners {
  readonly #listeners = new Set<SweptListener>();

  /** Whether anyone listens: a sweep collects nothing for nobody. */
  get active(): boolean {
    return this.#listeners.size > 0;
  }

  /** Adds a listener; returns its unsubscribe function. */
  add(listener: SweptListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * Reports, of the records deleted, the sessions that timed out (see `timedOut`) to every listener;
   * one that throws is reported (TETHER_SWEEP_LISTENER_THREW) and the others still run: the sweep that
   * calls it goes on whatever they do.
   */
  report(deleted: Iterable<DeletedRecord>): void {
    const swept: SweptSession[] = [];
    for (const r of deleted) if (timedOut(r)) swept.push({ key: r.key, userId: r.userId });
    this.reportSessions(swept);
  }

  /** Reports sessions already known to have timed out (RedisStore's claims) to every listener, as `report` does. */
  reportSessions(swept: SweptSession[]): void {
    if (swept.length === 0) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(swept);
      } catch (err) {
        warnSweptListenerThrew(err);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

/**
 * The warning for a store listener that threw (`what` it was, `after`: what happened anyway). Given as
 * text: `process.emitWarning` ignores the code of a warning passed as an Error. The error's stack goes
 * in `detail`.
 */
export function warnListenerThrew(code: string, what: string, err: unknown, after: string): void {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  process.emitWarning(`${what} threw (${message}); ${after}`, {
    code, type: 'TetherWarning', detail: err instanceof Error ? err.stack : undefined,
  });
}

/** The warning for a listener of swept sessions that threw. */
export function warnSweptListenerThrew(err: unknown): void {
  warnListenerThrew('TETHER_SWEEP_LISTENER_THREW', 'a listener of swept sessions', err, 'the other sessions and listeners were still reported');
}

/** The warning for a change-feed listener that threw. */
export function warnChangeListenerThrew(err: unknown): void {
  warnListenerThrew('TETHER_CHANGE_LISTENER_THREW', 'a change-feed listener', err, 'the other listeners still ran');
}
