/**
 * SqliteStore: the embedded default store, one SQLite file (WAL) shared safely by every worker process
 * on a machine, surviving restarts and process crashes.
 *
 * Durability per `synchronous` (docs/stores.md, SECURITY.md F12): with 'NORMAL' (the default) a
 * committed write survives a killed process but the last commits may roll back on an OS crash or
 * power loss (the file stays consistent); with 'FULL' it also survives those, if the disk honours fsync.
 *
 * better-sqlite3 is synchronous: each call blocks the event loop for its duration. Every write is an
 * IMMEDIATE transaction, so the compare-and-set, the user index (a column) and the change-log row commit
 * together or not at all.
 *
 * Waiting for another process's lock: SQLite's busy handler sleeps in the calling thread, so a write
 * left to wait there blocked every request of the process, and the engine's store deadline could not
 * fire, for up to `busyTimeoutMs`. The connection waits at most LOCK_WAIT_MS per attempt instead; a
 * transaction that still finds the lock taken was rolled back whole by the driver (nothing of it
 * committed), and is tried again on a timer with a growing pause until `busyTimeoutMs` has passed since
 * it was first tried, then fails with STORE_UNAVAILABLE as before. Writes wait in one line while the
 * first waits for the lock, so they still commit in the order they were made. A read can meet a lock
 * too (another connection rebuilding the WAL index after a crash answers SQLITE_BUSY_RECOVERY), and is
 * retried the same way.
 *
 * Group commit: `set`, `regenerate`, `touch` and `destroy` calls made in one turn of the event loop
 * are committed together, in the order they were made, at the end of that turn (`setImmediate`): one
 * transaction and one write to the WAL for the lot, each call in its own savepoint, so one that fails
 * or conflicts leaves the others as they are. Each promise settles only after that commit. A read
 * made in the same turn does not see a queued write (which has not been acknowledged yet); every
 * other write, and `close`, first commits what is queued, so writes keep the order they were made in.
 * @module
 */
import type BetterSqlite3 from 'better-sqlite3';
import { OptionsInvalidError, StoreClosedError } from '../../core/errors.js';
import { assertNextVersion, countMargin, stampOf, systemClock, assertRegeneration, idCollision, nextTurn, SweptListeners } from '../../core/store.js';
import type { ChangeFeedOptions, Clock, CountOptions, DeletedRecord, DestroyAllOptions, DestroyByUserOptions, SessionRecord, SessionStore, SetResult, SweptListener } from '../../core/store.js';
import { checkOptions } from '../../core/options-check.js';
import { MOVED_PREFIX } from '../../core/renewal.js';
import { isBusy, openDatabase, unavailable } from './connection.js';
import { ChangeFeed } from './changes.js';

// The declarations of tether/sqlite reach no module that imports better-sqlite3's types, so a strict
// consumer (skipLibCheck off) type-checks them without @types/better-sqlite3, a devDependency here.
export { SCHEMA_VERSION, MIGRATIONS } from './migrations.js';
export type { ChangeFeedOptions } from '../../core/store.js';

export interface SqliteStoreOptions {
  /** The database file (its folder is created when missing), or ':memory:' for a private in-memory one. */
  path: string;
  /**
   * How long a write waits, in all, for another connection's lock before failing with STORE_UNAVAILABLE.
   * It waits on timers between short attempts, so the event loop keeps running meanwhile. Keep it below
   * the engine's `storeTimeoutMs` (2000): a write still waiting when the engine answers 503 then fails
   * too, rather than committing after the client was told it failed. @default 1500
   */
  busyTimeoutMs?: number;
  /**
   * - 'NORMAL': committed writes survive a process crash; an OS crash or power loss may roll back the
   *   last commits (never corrupts). One fsync per checkpoint, not per commit.
   * - 'FULL': also survives an OS crash or power loss when the storage honours fsync; one fsync per commit.
   * @default 'NORMAL'
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How often expired records are deleted, in ms; 0 disables the timer (call `sweep()` yourself). @default 60_000 */
  sweepIntervalMs?: number;
  /** How often the change log is polled while someone subscribes, in ms. @default 100 */
  changePollMs?: number;
  clock?: Clock;
}

export const SQLITE_STORE_DEFAULTS = {
  busyTimeoutMs: 1_500,
  synchronous: 'NORMAL',
  sweepIntervalMs: 60_000,
  changePollMs: 100,
} as const;

/** Rows deleted per sweep transaction, so a large sweep never holds the write lock for long. */
const SWEEP_BATCH = 500;
const SWEEP_MAX_BATCHES = 10_000;
/** Sessions deleted per destroyAll transaction, for the same reason. */
const DESTROY_ALL_BATCH = 500;
/** The change log is trimmed after this many of this connection's writes (and on every sweep). */
const TRIM_EVERY_WRITES = 1_000;
/**
 * Pauses before each new attempt of a transaction or read that found another connection's lock, in ms
 * (the last repeats). Short at first, because most locks are held for a commit's worth of time.
 */
const RETRY_PAUSES_MS = [1, 2, 5, 10, 20, 25, 50];

const COLUMNS = `key, data, version, user_id AS userId, created_at AS createdAt, last_seen_at AS lastSeenAt,
  expires_at AS expiresAt, absolute_expires_at AS absoluteExpiresAt`;
const LIVE = 'expires_at > @now AND absolute_expires_at > @now';
/** Live past @after: a removal's count, which leaves out the sessions within the caller's `marginMs` of a deadline. */
const LIVE_AFTER = 'expires_at > @after AND absolute_expires_at > @after';
/**
 * Session keys: every key but user contexts (isSessionKey). Keys compare as bytes (BINARY), so those
 * starting with 'user:' are exactly the ones from 'user:' up to 'user;' (';' follows ':'), and this
 * reads as two ranges of the primary-key index that never visit a user context.
 */
const SESSION_KEY = "(key < 'user:' OR key >= 'user;')";
/**
 * Not a renewal's pointer (MOVED_PREFIX in renewal.ts): the session it names is counted under its new
 * key. The data is compared only for a row whose other columns could be one.
 */
const NOT_POINTER = `NOT (user_id IS NULL AND last_seen_at = expires_at AND substr(data, 1, ${MOVED_PREFIX.length}) = '${MOVED_PREFIX}')`;

type Row = SessionRecord;
type Params = Record<string, string | number | null>;
type Statement = BetterSqlite3.Statement<unknown[], unknown>;
type Statements = Record<'get' | 'insertFree' | 'updateAt' | 'version' | 'touch' | 'destroy' | 'listByUser'
  | 'destroyByUser' | 'destroyAll' | 'sweep' | 'count', Statement>;
interface Transactions {
  set(p: Params, expected: number): SetResult;
  regenerate(ended: Params, expected: number, created: Params): SetResult;
  touch(p: Params): boolean;
  destroy(key: string): void;
  destroyByUser(p: Params): number;
  destroyAll(now: number, after: number): { deleted: number; live: number };
  sweep(now: number): DeletedRecord[];
}

/**
 * A write transaction on its way to the file: `attempt` runs it once (throwing what it threw), `settle`
 * answers its callers with the outcome.
 */
interface Job {
  op: string;
  attempt: () => void;
  settle: (err?: unknown) => void;
  /** When it stops waiting for another connection's lock (performance.now() time). */
  deadline: number;
  tries: number;
}

/** A write waiting for the group commit, and then what it answered. */
interface Queued {
  op: string;
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  result?: unknown;
  failed?: boolean;
  error?: unknown;
}

export class SqliteStore implements SessionStore, AsyncDisposable {
  readonly name = 'sqlite';
  /** `busyTimeoutMs`: see SessionStore.maxWaitMs. */
  readonly maxWaitMs: number;
  readonly #db: BetterSqlite3.Database;
  readonly #clock: Clock;
  readonly #feed: ChangeFeed;
  readonly #s: Statements;
  readonly #tx: Transactions;
  /** Change rows written by the transaction in progress (seq, key, stamp), announced once it commits. */
  readonly #pending: Array<readonly [number, string, string | undefined]> = [];
  /** Writes waiting for this turn's group commit (see the module comment). */
  #queue: Queued[] = [];
  /** Runs a batch of queued writes in one IMMEDIATE transaction. */
  readonly #commitBatch: (batch: Queued[]) => void;
  readonly #busyTimeoutMs: number;
  /**
   * Write transactions waiting for another connection's lock, oldest first; while it is not empty,
   * every new one waits behind them (see the module comment).
   */
  #line: Job[] = [];
  /** Called once the line is empty: `close()` waits for what is in it. */
  #onLineEmpty: Array<() => void> = [];
  #sinceTrim = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #swept = new SweptListeners();

  constructor(options: SqliteStoreOptions) {
    checkOptions('SqliteStore', options, {
      path: 'nonEmptyString',
      busyTimeoutMs: 'timerMsOrZero',
      synchronous: ['NORMAL', 'FULL'],
      sweepIntervalMs: 'timerMsOrZero',
      changePollMs: 'timerMs',
      clock: 'clock',
    });
    if (typeof options?.path !== 'string') {
      throw new OptionsInvalidError('SqliteStore options.path is required: a file path or ":memory:"');
    }
    const o = { ...SQLITE_STORE_DEFAULTS, ...stripUndefined(options), path: options.path };
    this.#clock = options.clock ?? systemClock;
    this.#busyTimeoutMs = o.busyTimeoutMs;
    this.maxWaitMs = o.busyTimeoutMs;
    const db = openDatabase(o.path, o.busyTimeoutMs, o.synchronous);
    try {
      this.#db = db;
      this.#feed = new ChangeFeed(db, o.changePollMs);
      this.#s = prepareStatements(db);
      this.#tx = this.#transactions();
      this.#commitBatch = this.#batches();
    } catch (err) {
      db.close();
      throw unavailable(err, 'open');
    }
    if (o.sweepIntervalMs > 0) {
      this.#sweepTimer = setInterval(() => {
        this.sweep().catch(() => {
          // The next tick retries; callers see failures on their own calls.
        });
      }, o.sweepIntervalMs);
      this.#sweepTimer.unref();
    }
  }

  /** The durability in effect on this connection, read back from SQLite (see the module comment). */
  get synchronous(): 'NORMAL' | 'FULL' | 'OTHER' {
    this.#open();
    const level = this.#db.pragma('synchronous', { simple: true });
    return level === 1 ? 'NORMAL' : level === 2 ? 'FULL' : 'OTHER';
  }

  async get(key: string): Promise<SessionRecord | null> {
    this.#open();
    const now = this.#clock.now();
    return this.#read('get', () => (this.#s.get.get({ key, now }) as Row | undefined) ?? null);
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    const p = this.#params(record, this.#clock.now());
    return this.#enqueue('set', () => this.#tx.set(p, expectedVersion));
  }

  /** A login's two writes in one transaction (see SessionStore.regenerate): one commit, all or nothing. */
  async regenerate(ended: SessionRecord, expectedVersion: number, created: SessionRecord): Promise<SetResult> {
    this.#open();
    assertRegeneration(ended, expectedVersion, created);
    const now = this.#clock.now();
    const old = this.#params(ended, now);
    const fresh = this.#params(created, now);
    return this.#enqueue('regenerate', () => this.#tx.regenerate(old, expectedVersion, fresh));
  }

  #params(record: SessionRecord, now: number): Params {
    return {
      key: record.key, data: record.data, version: record.version, userId: record.userId,
      createdAt: record.createdAt, lastSeenAt: record.lastSeenAt, expiresAt: record.expiresAt,
      absoluteExpiresAt: record.absoluteExpiresAt, now,
    };
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean> {
    this.#open();
    const now = this.#clock.now();
    return this.#enqueue('touch', () => this.#tx.touch({ key, expiresAt, lastSeenAt, now, version: version ?? null }));
  }

  async destroy(key: string): Promise<void> {
    this.#open();
    return this.#enqueue('destroy', () => this.#tx.destroy(key));
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    const now = this.#clock.now();
    return this.#read('listByUser', () => this.#s.listByUser.all({ userId, now }) as Row[]);
  }

  /** Counts, of the sessions removed, those live by more than `marginMs` (see SessionStore.destroyByUser). */
  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    this.#open();
    const margin = countMargin(options, 'destroyByUser');
    const except = JSON.stringify(options.except ?? []);
    const after = this.#clock.now() + margin;
    return this.#write('destroyByUser', () => this.#tx.destroyByUser({ userId, except, after }));
  }

  /**
   * Ends every session (see SessionStore.destroyAll); user contexts stay. Deletes DESTROY_ALL_BATCH
   * sessions per IMMEDIATE transaction, each logging a change row per key (no stamp) as `destroy`
   * does, until a transaction finds fewer left. Only sessions created at or before the call (created_at,
   * by the store clock) are taken, whichever process wrote them: one created meanwhile, as a login's
   * new record is, is kept whole, so steady creation cannot keep the loop going; a session rewritten
   * meanwhile keeps its created_at and is removed. Gives the event loop a turn between transactions.
   * Returns how many of the sessions removed were live by the store clock when it was called, by more
   * than `marginMs` (see SessionStore.destroyAll). Closed midway, it rejects with STORE_CLOSED; the
   * transactions that committed stay.
   */
  async destroyAll(options?: DestroyAllOptions): Promise<number> {
    this.#open();
    const margin = countMargin(options, 'destroyAll');
    const now = this.#clock.now();
    let live = 0;
    for (;;) {
      const batch = await this.#write('destroyAll', () => this.#tx.destroyAll(now, now + margin));
      live += batch.live;
      if (batch.deleted < DESTROY_ALL_BATCH) return live;
      await nextTurn();
      // Closed meanwhile: not every session ended, so no count to report.
      this.#open();
    }
  }

  /**
   * Deletes expired records in short transactions and trims the change log; returns how many records.
   * Each transaction's timed-out sessions go to the `onSwept` listeners once it committed. The event
   * loop gets a turn between transactions: a sweep of many thousand records (after a quiet night, or
   * a long stop) would otherwise hold every request of the process for its whole length.
   */
  async sweep(): Promise<number> {
    if (this.#closed) return 0;
    const now = this.#clock.now();
    let removed = 0;
    for (let i = 0; i < SWEEP_MAX_BATCHES; i++) {
      const rows = await this.#write('sweep', () => this.#tx.sweep(now));
      removed += rows.length;
      if (this.#swept.active) this.#swept.report(rows);
      if (this.#closed) return removed;
      if (rows.length < SWEEP_BATCH) break;
      await nextTurn();
      if (this.#closed) return removed;
    }
    await this.#write('trim', () => this.#feed.trim());
    return removed;
  }

  /**
   * Reports the sessions this connection's sweeps delete because they timed out (see
   * SessionStore.onSwept). The delete returns the rows it removed inside its write transaction, so of
   * several processes sweeping one file, each row is reported by the one that deleted it.
   */
  onSwept(listener: SweptListener): () => void {
    return this.#swept.add(listener);
  }

  /**
   * Live (unexpired) sessions in the file, those within `marginMs` of their deadline left out too (see
   * SessionStore.count): user contexts and renewals' pointers not counted.
   */
  async count(options?: CountOptions): Promise<number> {
    this.#open();
    const after = this.#clock.now() + countMargin(options);
    return this.#read('count', () => this.#s.count.get({ after }) as number);
  }

  /**
   * Calls `listener(key, stamp)` after any connection to this file (this one or another process's) changed
   * or removed `key` (stamp: see SessionStore.subscribe): at once for this connection's writes, within
   * about `changePollMs` for others'.
   * `options.onResync` runs if this connection fell so far behind (over a minute) that changes were
   * trimmed from the log unread: anything cached from this store may then be stale.
   */
  subscribe(listener: (key: string, stamp?: string) => void, options: ChangeFeedOptions = {}): () => void {
    if (this.#closed) return () => {};
    return this.#feed.subscribe(listener, options);
  }

  /**
   * Delivers now, synchronously, the changes other connections committed before the call. TieredStore
   * calls it (through `fence()`) before serving a cached copy, so a read never predates a write
   * acknowledged before it.
   * Returns true when every such change was delivered; false when more were waiting than one poll reads
   * (100,000 rows, so that one call never blocks the event loop for long), and the rest are left to the
   * next call or timer poll.
   * Costs one `PRAGMA data_version` when nothing changed.
   */
  flushChanges(): boolean {
    this.#open();
    try {
      return this.#feed.poll();
    } catch (err) {
      // Not retried as reads are: it is synchronous, and a fence that fails makes the reader read through.
      throw unavailable(err, 'change poll');
    }
  }

  /**
   * Read fence (see SessionStore.fence): `flushChanges()`, resolving true only when it delivered every
   * change committed before the call. After a burst of more changes than one poll reads, it resolves
   * false: the change a cached copy waits for may be among the rows not yet read, and false makes the
   * reader go to the file, which is always current. Polling on until caught up would make the fence
   * wait (or block the event loop) for as long as the backlog takes, and dropping every cached copy
   * would cost every other key a miss; reading through costs only the reads made while the backlog
   * lasts, and each fence reads another 100,000 rows of it, so it is gone after a few. Rejects with
   * STORE_UNAVAILABLE when the poll fails.
   */
  async fence(): Promise<boolean> {
    return this.flushChanges();
  }

  /** `close()`, for `await using store = new …Store(…)`: the store is closed when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Commits what is queued, waits for the writes still waiting for a lock to commit or fail, then closes. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#commitQueued();
    this.#closed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    if (this.#line.length > 0) await new Promise<void>((resolve) => this.#onLineEmpty.push(resolve));
    this.#feed.stop();
    this.#db.close();
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError('SqliteStore');
  }

  /** Runs a read; if another connection's lock stops it, tries again on a timer (see the module comment). */
  #read<T>(op: string, fn: () => T): T | Promise<T> {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || this.#busyTimeoutMs === 0) throw unavailable(err, op);
      return this.#readLater(op, fn, performance.now() + this.#busyTimeoutMs);
    }
  }

  async #readLater<T>(op: string, fn: () => T, deadline: number): Promise<T> {
    for (let tries = 1; ; tries++) {
      await new Promise((resolve) => setTimeout(resolve, pauseBefore(tries, deadline)));
      this.#open();
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw unavailable(err, op);
      }
    }
  }

  /** Queues a write for this turn's group commit; the promise settles once that commit is done. */
  #enqueue<T>(op: string, run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#commitQueued());
      this.#queue.push({ op, run, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /**
   * Commits every queued write and settles their promises: a call made alone is its own transaction,
   * several share one (each in a savepoint, `#batches`). At once when no write waits for a lock, else
   * in line behind those that do.
   */
  #commitQueued(): void {
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    const single = batch.length === 1 ? batch[0]! : undefined;
    this.#submit(single?.op ?? 'commit', () => {
      // A new attempt starts afresh: the one before was rolled back whole.
      for (const q of batch) q.failed = false;
      if (single) single.result = this.#transact(single.op, single.run);
      else this.#transact('commit', () => this.#commitBatch(batch));
    }, (err) => {
      if (err !== undefined) {
        // The commit itself failed: none of the batch holds, whatever each call had answered.
        for (const q of batch) q.reject(unavailable(err, q.op));
        return;
      }
      for (const q of batch) {
        if (q.failed) q.reject(unavailable(q.error, q.op));
        else q.resolve(q.result);
      }
    });
  }

  /** A write outside the group commit; whatever is queued commits first, so writes keep their order. */
  #write<T>(op: string, fn: () => T): Promise<T> {
    this.#commitQueued();
    return new Promise<T>((resolve, reject) => {
      let out: T;
      this.#submit(op, () => {
        out = this.#transact(op, fn);
      }, (err?: unknown) => {
        if (err === undefined) resolve(out);
        else reject(unavailable(err, op));
      });
    });
  }

  /**
   * Runs a write transaction now if nothing waits for a lock and the lock is free (the usual case, with
   * no timer), else puts it in line.
   */
  #submit(op: string, attempt: () => void, settle: (err?: unknown) => void): void {
    const job: Job = { op, attempt, settle, deadline: performance.now() + this.#busyTimeoutMs, tries: 0 };
    if (this.#line.length === 0 && this.#try(job)) return;
    this.#line.push(job);
    if (this.#line.length === 1) this.#retryLater();
  }

  /** One attempt at `job`; false when it found the lock taken and may wait longer. Settles it otherwise. */
  #try(job: Job): boolean {
    job.tries++;
    try {
      job.attempt();
    } catch (err) {
      if (isBusy(err) && performance.now() < job.deadline) return false;
      job.settle(unavailable(err, job.op));
      return true;
    }
    job.settle();
    return true;
  }

  #retryLater(): void {
    const head = this.#line[0]!;
    setTimeout(() => {
      // Runs the line while the lock is free; the first that finds it taken waits again.
      while (this.#line.length > 0) {
        if (!this.#try(this.#line[0]!)) {
          this.#retryLater();
          return;
        }
        this.#line.shift();
      }
      for (const resolve of this.#onLineEmpty.splice(0)) resolve();
    }, pauseBefore(head.tries, head.deadline));
  }

  /**
   * Runs one write transaction, then announces its change rows: only after the commit succeeded. Throws
   * STORE_UNAVAILABLE (the driver's error as cause) when it fails; then nothing of it committed.
   */
  #transact<T>(op: string, fn: () => T): T {
    this.#pending.length = 0;
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.#pending.length = 0;
      throw unavailable(err, op);
    }
    const committed = this.#pending.splice(0);
    this.#feed.committed(committed);
    this.#sinceTrim += committed.length;
    if (this.#sinceTrim >= TRIM_EVERY_WRITES) {
      this.#sinceTrim = 0;
      // Off the write's path: a busy trim must never fail a write that already committed.
      setTimeout(() => {
        try {
          if (!this.#closed) this.#feed.trim();
        } catch {
          // Busy or failing: the next 1 000 writes, or the next sweep, try again.
        }
      }, 0).unref();
    }
    return out;
  }

  #log(key: string, stamp?: string): void {
    this.#pending.push([this.#feed.log(key, stamp), key, stamp]);
  }

  /**
   * The group commit's transaction: each queued write runs in its own savepoint (better-sqlite3 nests a
   * transaction function called inside another), so one that throws is rolled back alone, its change
   * rows dropped, and the rest commit.
   */
  #batches(): (batch: Queued[]) => void {
    const run = this.#db.transaction((batch: Queued[]) => {
      for (const q of batch) {
        const mark = this.#pending.length;
        try {
          q.result = q.run();
        } catch (err) {
          // Some errors (a full disk, an I/O error) make SQLite roll back the whole transaction: then
          // nothing of the batch holds, and the batch fails as one.
          if (!this.#db.inTransaction) throw err;
          this.#pending.length = mark;
          q.failed = true;
          q.error = err;
        }
      }
    });
    return (batch) => run.immediate(batch);
  }

  #transactions(): Transactions {
    const s = this.#s;
    const db = this.#db;
    const put = (p: Params, expected: number): SetResult => {
      const changed = expected === 0 ? s.insertFree.run(p).changes : s.updateAt.run({ ...p, expected }).changes;
      if (changed === 0) return { ok: false, current: (s.version.get({ key: p.key, now: p.now }) as number | undefined) ?? 0 };
      this.#log(p.key as string, stampOf({ version: p.version as number, expiresAt: p.expiresAt as number }));
      return { ok: true };
    };
    const set = db.transaction(put);
    const regenerate = db.transaction((ended: Params, expected: number, created: Params): SetResult => {
      const res = put(ended, expected);
      if (!res.ok) return res;
      // Thrown, so the transaction rolls back: the old record stays as it was.
      if (!put(created, 0).ok) throw idCollision();
      return res;
    });
    const touch = db.transaction((p: Params): boolean => {
      const version = s.touch.get(p) as number | undefined;
      if (version === undefined) return false;
      this.#log(p.key as string, stampOf({ version, expiresAt: p.expiresAt as number }));
      return true;
    });
    const destroy = db.transaction((key: string): void => {
      if (s.destroy.run(key).changes > 0) this.#log(key);
    });
    const destroyByUser = db.transaction((p: Params): number => {
      const rows = s.destroyByUser.all(p) as Array<{ key: string; live: number }>;
      for (const r of rows) this.#log(r.key);
      return rows.filter((r) => r.live === 1).length;
    });
    const destroyAll = db.transaction((now: number, after: number): { deleted: number; live: number } => {
      const rows = s.destroyAll.all({ now, after, limit: DESTROY_ALL_BATCH }) as Array<{ key: string; live: number }>;
      for (const r of rows) this.#log(r.key);
      return { deleted: rows.length, live: rows.filter((r) => r.live === 1).length };
    });
    const sweep = db.transaction((now: number): DeletedRecord[] => s.sweep.all({ now, limit: SWEEP_BATCH }) as DeletedRecord[]);
    return {
      set: (p, e) => set.immediate(p, e),
      regenerate: (o, e, c) => regenerate.immediate(o, e, c),
      touch: (p) => touch.immediate(p),
      destroy: (k) => destroy.immediate(k),
      destroyByUser: (p) => destroyByUser.immediate(p),
      destroyAll: (now, after) => destroyAll.immediate(now, after),
      sweep: (now) => sweep.immediate(now),
    };
  }
}

function prepareStatements(db: BetterSqlite3.Database): Statements {
  const prep = (sql: string) => db.prepare<unknown[], unknown>(sql);
  const assign = `data = @data, version = @version, user_id = @userId, created_at = @createdAt,
    last_seen_at = @lastSeenAt, expires_at = @expiresAt, absolute_expires_at = @absoluteExpiresAt`;
  return {
    get: prep(`SELECT ${COLUMNS} FROM tether_sessions WHERE key = @key AND ${LIVE}`),
    // Creation (expected version 0): a new key, or one whose record has expired.
    insertFree: prep(`INSERT INTO tether_sessions (key, data, version, user_id, created_at, last_seen_at, expires_at, absolute_expires_at)
      VALUES (@key, @data, @version, @userId, @createdAt, @lastSeenAt, @expiresAt, @absoluteExpiresAt)
      ON CONFLICT (key) DO UPDATE SET ${assign}
      WHERE tether_sessions.expires_at <= @now OR tether_sessions.absolute_expires_at <= @now`),
    // Update: never creates, so a destroyed or expired session stays gone.
    updateAt: prep(`UPDATE tether_sessions SET ${assign} WHERE key = @key AND version = @expected AND ${LIVE}`),
    version: prep(`SELECT version FROM tether_sessions WHERE key = @key AND ${LIVE}`).pluck(),
    // Returns the version touched: the change row's stamp names it.
    touch: prep(`UPDATE tether_sessions SET expires_at = @expiresAt, last_seen_at = @lastSeenAt WHERE key = @key AND ${LIVE}
      AND (@version IS NULL OR version = @version) RETURNING version`).pluck(),
    destroy: prep('DELETE FROM tether_sessions WHERE key = ?'),
    listByUser: prep(`SELECT ${COLUMNS} FROM tether_sessions WHERE user_id = @userId AND ${LIVE}`),
    // `live`: counted, its deadlines after @after (now, plus the caller's marginMs).
    destroyByUser: prep(`DELETE FROM tether_sessions
      WHERE user_id = @userId AND key NOT IN (SELECT value FROM json_each(@except))
      RETURNING key, (${LIVE_AFTER}) AS live`),
    // Still the two key ranges of SESSION_KEY, each row's created_at read as it is met.
    destroyAll: prep(`DELETE FROM tether_sessions WHERE key IN (
      SELECT key FROM tether_sessions WHERE ${SESSION_KEY} AND created_at <= @now LIMIT @limit)
      RETURNING key, (${LIVE_AFTER} AND ${NOT_POINTER}) AS live`),
    sweep: prep(`DELETE FROM tether_sessions WHERE key IN (
      SELECT key FROM tether_sessions WHERE min(expires_at, absolute_expires_at) <= @now LIMIT @limit)
      RETURNING key, user_id AS userId, last_seen_at AS lastSeenAt, expires_at AS expiresAt, absolute_expires_at AS absoluteExpiresAt`),
    count: prep(`SELECT count(*) FROM tether_sessions WHERE ${SESSION_KEY} AND min(expires_at, absolute_expires_at) > @after AND ${NOT_POINTER}`).pluck(),
  };
}

/** The pause before attempt `tries + 1` of something that found a lock taken, never past `deadline`. */
function pauseBefore(tries: number, deadline: number): number {
  const pause = RETRY_PAUSES_MS[Math.min(tries, RETRY_PAUSES_MS.length) - 1] ?? 1;
  return Math.max(0, Math.min(pause, Math.ceil(deadline - performance.now())));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
