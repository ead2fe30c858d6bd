/**
 * PostgresStore: sessions in a PostgreSQL table, compare-and-set on `version`, LISTEN/NOTIFY as the change feed.
 *
 * Store contract, beyond src/core/store.ts:
 * - Expiry is decided by the store's clock, passed as a query parameter: by default a ServerClock,
 *   this machine's clock corrected by the server's `clock_timestamp()` (sampled at `ready()` and every
 *   minute), so every machine agrees with the server on time; a clock given in options is used as is
 *   (tests move time). `sweep()` deletes what is due.
 * - `set` with expectedVersion 0 is `INSERT … ON CONFLICT DO UPDATE … WHERE <stored row expired>`: an
 *   expired row counts as version 0 and may be replaced. Any other `set` is
 *   `UPDATE … WHERE key AND version AND <live>`. When nothing was written, a second read reports the
 *   current version. The user index is the `user_id` column, so it changes atomically with the write.
 * - Every write that changed a row sends `pg_notify(channel, payload)` in the same statement (the key,
 *   with the new state's stamp after a set or touch; feed.ts): delivered if and only if the write commits.
 * - `destroyAll()` deletes in keyset batches over the primary key, one statement each, every removal
 *   notified as `destroy`'s is; it waits for rows that concurrent writes hold, so none is skipped.
 * - `subscribe(listener, { onResync })` holds one dedicated connection running LISTEN and reconnects
 *   with backoff. While it is disconnected nothing is delivered (PostgreSQL keeps no notifications for
 *   absent listeners), so `onResync` runs when the connection drops and again whenever LISTEN becomes
 *   active (the first time included). A TieredStore over this store must drop its whole local cache
 *   on `onResync`, and not trust its copies while `feedState !== 'listening'`. `fence()` is a round
 *   trip on the LISTEN connection that orders the read after every notification already committed.
 * - Backend failures reject with STORE_UNAVAILABLE (driver error as `cause`) within about
 *   connect + statement timeout; a call whose values PostgreSQL refuses (a data exception, SQLSTATE
 *   class 22, such as a NUL in text) rejects with STORE_REJECTED instead, since it would fail on every
 *   try; after `close()` every call rejects with STORE_CLOSED.
 * - Durability is PostgreSQL's: with `synchronous_commit=on` (the default) an acknowledged write
 *   survives a server crash. See docs/stores.md.
 * @module
 */
import { checkLimiter, limiterDigest, windowPosition, withinLimit } from '../../core/rate-limit.js';
import type { SharedLimiter } from '../../core/rate-limit.js';
import type { Pool, PoolClient, QueryConfig, QueryResult } from 'pg';
import { OptionsInvalidError, StoreClosedError, StoreRejectedError, StoreUnavailableError, isTetherError } from '../../core/errors.js';
import { SERVER_CLOCK_SYNC_MS, ServerClock, systemClock, assertNextVersion, assertRegeneration, countMargin, idCollision, SweptListeners, unsent, wasUnsent } from '../../core/store.js';
import type { Clock, CountOptions, DestroyAllOptions, DestroyByUserOptions, SessionRecord, SessionStore, SetResult, SweptListener } from '../../core/store.js';
import { MAX_TIMER_MS, checkOptions } from '../../core/options-check.js';
import { IDENTIFIER, MAX_TABLE_NAME, migrate, schemaNames } from './schema.js';
import type { SchemaNames } from './schema.js';
import { ChangeFeed } from './feed.js';
import { loadPg } from './driver.js';
import type { ChangeFeedSubscription, FeedState } from './feed.js';
import { statements, prepared, toRecord } from './sql.js';
import type { DestroyAllRow, RecordRow, SweptRow } from './sql.js';

export type { ChangeFeedSubscription, FeedState } from './feed.js';
export { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export interface PostgresStoreOptions {
  /** postgres://… URL; the store creates and owns a pool. Neither this nor `pool`: pg's PG* environment variables. */
  connectionString?: string;
  /** A pg.Pool you own (the store never ends it). Its own settings apply; `statementTimeoutMs` is enforced client-side. */
  pool?: Pool;
  /** Plain identifier, at most 48 characters. @default 'tether_sessions' */
  tableName?: string;
  /** Schema for the table and tether_migrations (created if missing). Default: the connection's search_path. */
  schema?: string;
  /** NOTIFY channel. Every store on one table must use the same. @default 'tether:<schema.>tableName' */
  channel?: string;
  /**
   * Decides expiry, as given (tests pass a hand-moved clock). @default a ServerClock: this machine's
   * clock corrected by the server's time, so every process agrees on time with PostgreSQL, and an
   * engine with no clock of its own follows it
   */
  clock?: Clock;
  /** The machine's clock that the default ServerClock corrects (tests play a machine whose clock is off). @default system clock */
  localClock?: Clock;
  /** Server-side statement_timeout and connection timeout, in ms (at most 2^31 − 1); the client gives up 500 ms later. @default 2000 */
  statementTimeoutMs?: number;
  /** How often expired rows are deleted, in ms (at most 2^31 − 1); 0 disables the timer. @default 60_000 */
  sweepIntervalMs?: number;
  /** Send NOTIFY on every write. Off only if no process puts a cache in front of this table. @default true */
  notify?: boolean;
}

export const POSTGRES_STORE_DEFAULTS = {
  tableName: 'tether_sessions',
  statementTimeoutMs: 2_000,
  sweepIntervalMs: 60_000,
  notify: true,
} as const;

/** Client-side grace after the server's statement_timeout, so the server's cancel (a definite outcome) normally wins. */
const QUERY_TIMEOUT_GRACE_MS = 500;
/** SQLSTATE class 22, data exception: the values of a statement cannot be stored, however often it is sent. */
const DATA_EXCEPTION = /^22[0-9A-Z]{3}$/;

/** The calls that only read: any other runs as a write (`#written`). */
const READS = new Set(['get', 'listByUser', 'limiter peek', 'count']);

/**
 * The routine a notice comes from when a commit stopped waiting for a synchronous standby because its
 * query was cancelled (pg_cancel_backend, an operator freeing a stuck session): PostgreSQL then answers
 * with a WARNING, not an error, and the statement looks successful. (statement_timeout does not end that
 * wait: it is disabled before the commit; the client-side timeout does, and fails the call.) Source
 * names are not translated, unlike the message (lc_messages).
 */
const SYNC_REP_WAIT = 'SyncRepWaitForLSN';
const SWEEP_BATCH = 1_000;
const SWEEP_MAX_BATCHES = 100;
/** Keys each statement of `destroyAll` takes (sessions and user contexts alike; it deletes the sessions). */
const DESTROY_ALL_BATCH = 1_000;
/** How often a statement PostgreSQL aborted to break a deadlock is sent (destroyAll's batches). */
const DEADLOCK_ATTEMPTS = 3;
/** Statements destroyByUser sends at most: each deletes what logins and renewals that raced the one before moved to new keys. */
const DESTROY_BY_USER_ROUNDS = 8;
/** How often `set` re-tries when the read after a failed write shows the expected version (the row changed in between). */
const SET_ATTEMPTS = 3;

const identifier = (max: number) => (v: unknown): string | null =>
  typeof v === 'string' && IDENTIFIER.test(v) && v.length <= max ? null : `a plain identifier ([A-Za-z_][A-Za-z0-9_]*) of at most ${max} characters`;

/** The server's time in epoch milliseconds (clock_timestamp: the time now, not the transaction's start). */
const SERVER_TIME_SQL = 'SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS ms';

export class PostgresStore implements SessionStore, AsyncDisposable {
  readonly name = 'postgres';
  readonly #pool: Pool;
  readonly #ownsPool: boolean;
  /** Decides expiry: the given clock, or by default a ServerClock following PostgreSQL's time. */
  readonly clock: Clock;
  /** The default clock, sampled against the server's `clock_timestamp()`; undefined when a clock was given. */
  readonly #serverClock: ServerClock | undefined;
  #clockTimer: NodeJS.Timeout | undefined;
  readonly #names: SchemaNames;
  readonly #sql: ReturnType<typeof statements>;
  /** The NOTIFY channel, appended to the parameters of every write when `notify` is on; null when off. */
  readonly #channel: string | null;
  readonly #queryTimeoutMs: number;
  readonly #feed: ChangeFeed;
  readonly #onPoolError = (): void => {};
  #ready: Promise<void> | null = null;
  /** ready() has resolved: migrations applied and the clock sampled, so `now` may be taken. */
  #migrated = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #swept = new SweptListeners();

  constructor(options: PostgresStoreOptions = {}) {
    checkOptions('PostgresStore', options, {
      connectionString: 'nonEmptyString',
      pool: (v) => (typeof v === 'object' && v !== null && typeof (v as Pool).connect === 'function'
        && typeof (v as Pool).query === 'function' ? null : 'a pg.Pool'),
      tableName: identifier(MAX_TABLE_NAME),
      schema: identifier(63),
      channel: (v) => (typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= 63 && !v.includes('\u0000')
        ? null : 'a non-empty string of at most 63 bytes'),
      clock: 'clock',
      localClock: 'clock',
      statementTimeoutMs: 'timerMs',
      sweepIntervalMs: 'timerMsOrZero',
      notify: 'boolean',
    });
    if (options.pool && options.connectionString) {
      throw new OptionsInvalidError('pass either options.pool or options.connectionString, not both');
    }
    const tableName = options.tableName ?? POSTGRES_STORE_DEFAULTS.tableName;
    const channel = options.channel ?? `tether:${options.schema ? `${options.schema}.` : ''}${tableName}`;
    if (Buffer.byteLength(channel) > 63) {
      throw new OptionsInvalidError(`the default NOTIFY channel "${channel}" is over 63 bytes; set options.channel`);
    }
    const timeoutMs = options.statementTimeoutMs ?? POSTGRES_STORE_DEFAULTS.statementTimeoutMs;
    // The derived bounds stay in a timer's range (and in PostgreSQL's, an int of ms) even for the
    // longest statementTimeoutMs accepted; at that length the grace no longer matters.
    this.#queryTimeoutMs = Math.min(timeoutMs + QUERY_TIMEOUT_GRACE_MS, MAX_TIMER_MS);
    this.#serverClock = options.clock ? undefined : new ServerClock(options.localClock ?? systemClock);
    this.clock = options.clock ?? this.#serverClock!;
    this.#names = schemaNames(tableName, options.schema);
    const notify = options.notify ?? POSTGRES_STORE_DEFAULTS.notify;
    this.#sql = statements(this.#names.table, notify, this.#names.limits);
    this.#channel = notify ? channel : null;
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else {
      const pg = loadPg();
      this.#pool = new pg.Pool({
        connectionString: options.connectionString,
        connectionTimeoutMillis: timeoutMs,
        statement_timeout: timeoutMs,
        query_timeout: this.#queryTimeoutMs,
        idle_in_transaction_session_timeout: Math.min(timeoutMs * 5, MAX_TIMER_MS),
        application_name: 'tether',
        keepAlive: true,
      });
      this.#ownsPool = true;
    }
    // An idle pooled connection that dies emits 'error' on the pool; unhandled, it would end the process.
    this.#pool.on('error', this.#onPoolError);
    this.#feed = new ChangeFeed({ channel, connect: () => this.#pool.connect(), timeoutMs: this.#queryTimeoutMs });
    const interval = options.sweepIntervalMs ?? POSTGRES_STORE_DEFAULTS.sweepIntervalMs;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.sweep().catch(() => {}), interval);
      this.#timer.unref();
    }
  }

  /** State of the change feed's LISTEN connection (see FeedState). */
  get feedState(): FeedState {
    return this.#feed.state;
  }

  /**
   * Applies pending migrations (once; retried on the next call after a failure). Every method awaits it;
   * call it at boot to fail fast on a wrong URL or missing permissions.
   */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreClosedError('PostgresStore'));
    this.#ready ??= (async () => {
      try {
        await this.#withClient(async (client) => {
          await migrate(client, this.#names);
          // Before the first statement that decides an expiry: the server's time.
          await this.#syncClock(client);
        });
        this.#migrated = true;
      } catch (err) {
        this.#ready = null;
        // A caller's write waits for this and is not sent when it fails.
        throw unsent(this.#fail('migrate', err));
      }
    })();
    return this.#ready;
  }

  async get(key: string): Promise<SessionRecord | null> {
    if (!this.#migrated) await this.ready();
    const res = await this.#query<RecordRow>('get', this.#sql.get, [key, this.clock.now()]);
    return res.rows[0] ? toRecord(res.rows[0]) : null;
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    if (!this.#migrated) await this.ready();
    const r = record;
    let current = 0;
    for (let attempt = 0; attempt < SET_ATTEMPTS; attempt++) {
      const now = this.clock.now();
      const fields = [...fieldsOf(r), now];
      const write = expectedVersion === 0
        ? await this.#query('set', this.#sql.create, this.#notifying(fields))
        : await this.#query('set', this.#sql.update, this.#notifying([...fields, expectedVersion]));
      if (write.rows.length > 0) return { ok: true };
      const found = await this.#query<{ version: string }>('set', this.#sql.version, [r.key, now]);
      current = found.rows[0] ? Number(found.rows[0].version) : 0;
      // Equal means the row changed between our write and this read; the write may now succeed.
      if (current !== expectedVersion) break;
    }
    return { ok: false, current };
  }

  /**
   * A login's two writes (see SessionStore.regenerate) in one statement: one round trip when it
   * applies. When it does not, the old record's version or a live row under the new key says why; a
   * row that changed between the statement and those reads is tried again, as `set` does.
   */
  async regenerate(ended: SessionRecord, expectedVersion: number, created: SessionRecord): Promise<SetResult> {
    this.#open();
    assertRegeneration(ended, expectedVersion, created);
    if (!this.#migrated) await this.ready();
    let current = 0;
    for (let attempt = 0; attempt < SET_ATTEMPTS; attempt++) {
      const now = this.clock.now();
      const write = await this.#query('regenerate', this.#sql.regenerate,
        this.#notifying([...fieldsOf(ended), now, expectedVersion, ...fieldsOf(created)]));
      if (write.rows.length > 0) return { ok: true };
      const found = await this.#query<{ version: string }>('regenerate', this.#sql.version, [ended.key, now]);
      current = found.rows[0] ? Number(found.rows[0].version) : 0;
      if (current !== expectedVersion) break;
      const taken = await this.#query('regenerate', this.#sql.version, [created.key, now]);
      if (taken.rows.length > 0) throw idCollision();
    }
    return { ok: false, current };
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean> {
    if (!this.#migrated) await this.ready();
    const res = await this.#query('touch', this.#sql.touch,
      this.#notifying([key, expiresAt, lastSeenAt, this.clock.now(), version ?? null]));
    return res.rows.length > 0;
  }

  async destroy(key: string): Promise<void> {
    await this.#query('destroy', this.#sql.destroy, this.#notifying([key]));
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    if (!this.#migrated) await this.ready();
    const res = await this.#query<RecordRow>('listByUser', this.#sql.listByUser, [userId, this.clock.now()]);
    return res.rows.map(toRecord);
  }

  /**
   * Deletes the user's sessions but `except`, by one statement sent again until one deletes nothing
   * (at least twice, at most DESTROY_BY_USER_ROUNDS). A statement sees the rows committed when it
   * began: a login or renewal of one of these sessions that commits while it runs creates a new key
   * it cannot see (the old row it waited for is then ended, or an ownerless pointer), and the next
   * statement deletes it. A renewal whose pointer commits first leaves the first statement nothing of
   * it to delete, hence the second. Counts, of the rows deleted, those live by more than `marginMs`
   * (see SessionStore.destroyByUser).
   */
  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    const margin = countMargin(options, 'destroyByUser');
    if (!this.#migrated) await this.ready();
    const except = [...(options.except ?? [])];
    let live = 0;
    for (let round = 0; round < DESTROY_BY_USER_ROUNDS; round++) {
      const res = await this.#query<{ live: boolean }>('destroyByUser', this.#sql.destroyByUser,
        this.#notifying([userId, except, this.clock.now() + margin]));
      live += res.rows.filter((row) => row.live).length;
      if (round > 0 && res.rows.length === 0) break;
    }
    return live;
  }

  /**
   * Ends every session (see SessionStore.destroyAll); user contexts (`user:` keys) stay. A keyset loop
   * over the primary key: each batch is one statement (sql.ts `destroyAll`) that takes the next
   * DESTROY_ALL_BATCH keys after the last batch's, deletes the sessions among them and sends a
   * `pg_notify` removal for each, so it commits (rows, user index and notifications) or not at all and
   * locks only its own rows, briefly. It waits for a row a concurrent write holds rather than skip it,
   * so every session stored before the call is removed; one written meanwhile behind the cursor is
   * kept whole. A batch PostgreSQL aborts as a deadlock victim (crossing another multi-row delete) is
   * sent again. Returns how many of the deleted rows were live by the store's clock at the start, by
   * more than `marginMs` (see SessionStore.destroyAll).
   */
  async destroyAll(options?: DestroyAllOptions): Promise<number> {
    this.#open();
    const margin = countMargin(options, 'destroyAll');
    if (!this.#migrated) await this.ready();
    // What the statements count by: now, plus the margin.
    const now = this.clock.now() + margin;
    let removed = 0;
    let after: string | null = null;
    for (;;) {
      const res = await this.#destroyAllBatch(after, now);
      const row = res.rows[0];
      removed += Number(row?.live ?? 0);
      if (!row || row.last === null || Number(row.scanned) < DESTROY_ALL_BATCH) return removed;
      after = row.last;
    }
  }

  async #destroyAllBatch(after: string | null, now: number): Promise<QueryResult<DestroyAllRow>> {
    const text = after === null ? this.#sql.destroyAllFirst : this.#sql.destroyAll;
    const values = this.#notifying([after ?? '', DESTROY_ALL_BATCH, now]);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#query<DestroyAllRow>('destroyAll', text, values);
      } catch (err) {
        if (attempt >= DEADLOCK_ATTEMPTS || !deadlocked(err)) throw err;
      }
    }
  }

  /** Deletes expired rows in batches (each one short, so none runs into statement_timeout); returns how many. */
  async sweep(): Promise<number> {
    if (this.#closed) return 0;
    if (!this.#migrated) await this.ready();
    const now = this.clock.now();
    let removed = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const res = await this.#query<SweptRow>('sweep', this.#sql.sweep, [now, SWEEP_BATCH]);
      removed += res.rows.length;
      if (this.#swept.active) {
        this.#swept.report(res.rows.map((r) => ({
          key: r.key, userId: r.user_id, lastSeenAt: Number(r.last_seen_at), expiresAt: Number(r.expires_at), absoluteExpiresAt: Number(r.absolute_expires_at),
        })));
      }
      if (res.rows.length < SWEEP_BATCH) break;
    }
    // The rate limiters' counts past their last window (not sessions: not counted, not reported).
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const res = await this.#query('sweep', this.#sql.limitSweep, [now, SWEEP_BATCH]);
      if ((res.rowCount ?? 0) < SWEEP_BATCH) break;
    }
    return removed;
  }

  /**
   * A rate limiter counted in PostgreSQL (see SessionStore.limiter), so every process and machine on
   * this table counts together: one row per limiter and key in `<table>_limits`, under a digest of
   * both (never the key), kept until the window after its own ends and then removed by `sweep()`.
   * A take is one upsert, a peek one select. Time is the store's clock, so machines agree on the windows.
   */
  limiter(name: string, limit: number, windowMs: number): SharedLimiter {
    checkLimiter(name, limit, windowMs);
    return {
      take: async (key) => {
        const { start, previousWeight } = windowPosition(this.clock.now(), windowMs);
        const res = await this.#query('limiter take', this.#sql.limitTake, [limiterDigest(name, key), start, windowMs, previousWeight, limit]);
        return res.rows.length === 1;
      },
      peek: async (key) => {
        const { start, previousWeight } = windowPosition(this.clock.now(), windowMs);
        const res = await this.#query<{ window_start: string; current: number; previous: number }>('limiter peek', this.#sql.limitPeek, [limiterDigest(name, key)]);
        const row = res.rows[0];
        if (!row) return true;
        const at = Number(row.window_start);
        if (at >= start) return withinLimit(row.previous, row.current, previousWeight, limit);
        return withinLimit(at === start - windowMs ? row.current : 0, 0, previousWeight, limit);
      },
    };
  }

  /**
   * Reports the sessions this store's sweeps delete because they timed out (see SessionStore.onSwept):
   * each statement's, once it committed. Of several processes sweeping one table, each row is reported
   * by the one whose statement deleted it.
   */
  onSwept(listener: SweptListener): () => void {
    return this.#swept.add(listener);
  }

  /**
   * Live sessions (by the store clock), those within `marginMs` of their deadline left out too (see
   * SessionStore.count): user contexts and renewals' pointers not counted.
   */
  async count(options?: CountOptions): Promise<number> {
    const margin = countMargin(options);
    if (!this.#migrated) await this.ready();
    const res = await this.#query<{ n: string }>('count', this.#sql.count, [this.clock.now() + margin]);
    return Number(res.rows[0]?.n ?? 0);
  }

  /**
   * Calls `listener(key, stamp)` after any store on this table (this process or another) changed or
   * removed `key` (stamp: see SessionStore.subscribe; the payload format is in feed.ts), once the change
   * committed; `options.onResync` whenever changes may have been missed (see the module comment). Returns the unsubscribe function; the last one releases the LISTEN connection.
   */
  subscribe(listener: (key: string, stamp?: string) => void, options: ChangeFeedSubscription = {}): () => void {
    if (this.#closed) return () => {};
    return this.#feed.add(listener, options);
  }

  /**
   * Read fence (see SessionStore.fence): a `SELECT 1` on the LISTEN connection. PostgreSQL delivers a
   * listening session the notifications committed before a query ahead of its result, so when it
   * resolves true every change committed before the call has reached the listeners. False while
   * `feedState !== 'listening'` or if the connection is lost meanwhile. TieredStore coalesces calls.
   */
  fence(): Promise<boolean> {
    if (this.#closed) return Promise.reject(new StoreClosedError('PostgresStore'));
    return this.#feed.fence();
  }

  /** Resolves true once the change feed's LISTEN is active (false after `timeoutMs`). Needs a subscriber. */
  feedListening(timeoutMs = 5_000): Promise<boolean> {
    return this.#feed.listening(timeoutMs);
  }

  /** `close()`, for `await using store = new …Store(…)`: the store is closed when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearInterval(this.#clockTimer);
    this.#feed.close();
    if (this.#ownsPool) {
      // end() resolves before its connections have finished closing; one the server drops meanwhile
      // still emits 'error' on the pool, so our own pool keeps its listener for good.
      await this.#pool.end().catch(() => {});
    } else {
      this.#pool.removeListener('error', this.#onPoolError);
    }
  }

  /** Samples the server's time into the default ServerClock; a failed sample keeps the last offset. */
  async #syncClock(via: Pick<Pool, 'query'> = this.#pool): Promise<void> {
    const clock = this.#serverClock;
    if (!clock || this.#closed) return;
    this.#clockTimer ??= setInterval(() => void this.#syncClock(), SERVER_CLOCK_SYNC_MS).unref();
    try {
      const sentAt = clock.local.now();
      const res = await via.query<{ ms: number }>(SERVER_TIME_SQL);
      clock.sample(sentAt, Math.floor(Number(res.rows[0]?.ms)), clock.local.now());
    } catch {
      // Not reachable now: the next sample tries again.
    }
  }

  /** Write statements take the channel as their last parameter, only when they notify. */
  #notifying(values: unknown[]): unknown[] {
    return this.#channel === null ? values : [...values, this.#channel];
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError('PostgresStore');
  }

  async #query<R extends object = object>(op: string, text: string, values: unknown[]): Promise<QueryResult<R>> {
    this.#open();
    if (!this.#migrated) await this.ready();
    const config = prepared(text, values, this.#queryTimeoutMs);
    try {
      return await (READS.has(op) ? this.#pool.query<R>(config) : this.#written<R>(op, config));
    } catch (err) {
      throw this.#fail(op, err);
    }
  }

  /**
   * A write, on a client of its own so that the notices PostgreSQL sends while it runs are this
   * write's. One whose commit stopped waiting for the synchronous standby (SYNC_REP_WAIT) is on this
   * server but maybe not on the standby, so a failover could lose it: it is not acknowledged, and
   * fails STORE_UNAVAILABLE with its outcome unknown, as a write whose answer was lost.
   */
  async #written<R extends object>(op: string, config: QueryConfig): Promise<QueryResult<R>> {
    return this.#withClient(async (client) => {
      let unreplicated = false;
      const onNotice = (n: { routine?: string }): void => {
        if (n.routine === SYNC_REP_WAIT) unreplicated = true;
      };
      client.on('notice', onNotice);
      try {
        const res = await client.query<R>(config);
        if (unreplicated) {
          throw new StoreUnavailableError(`PostgresStore ${op}: PostgreSQL committed it but its wait for the synchronous standby was `
            + 'cancelled, so a failover could lose it; not acknowledged, its outcome is unknown. Check the standby (pg_stat_replication)');
        }
        return res;
      } finally {
        client.off('notice', onNotice);
      }
    });
  }

  /**
   * Runs `fn` on a client of the pool's. A checked-out client has no listener of the pool's: without
   * one, its connection dropping meanwhile (the server restarting, the backend terminated) would be an
   * uncaught 'error'; the statement under way rejects as well, and that failure is reported. As
   * pool.query does, a client whose work failed is not reused (a terminated backend answers the
   * statement under way before its socket closes, so the client may still look healthy); one refused
   * by this store's own checks is.
   */
  async #withClient<R>(fn: (client: PoolClient) => Promise<R>): Promise<R> {
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      // No connection: nothing of the call was sent, so its write cannot land later.
      throw err instanceof Error ? unsent(err) : err;
    }
    const onError = (): void => {};
    client.on('error', onError);
    try {
      const result = await fn(client);
      client.off('error', onError);
      client.release();
      return result;
    } catch (err) {
      if (isTetherError(err)) {
        client.off('error', onError);
        client.release();
      } else {
        // The listener stays: the client is dropped, and its socket may still report the failure.
        client.release(err instanceof Error ? err : true);
      }
      throw err;
    }
  }


  #fail(op: string, err: unknown): Error {
    if (this.#closed) return new StoreClosedError('PostgresStore');
    if (isTetherError(err)) return err;
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : '';
    // A data exception is PostgreSQL refusing this call's values (a NUL in text, a number out of
    // range): the server is up and the same call fails every time, so STORE_UNAVAILABLE's retry and
    // its "check that PostgreSQL is reachable" would mislead. Only pg's DatabaseError carries a
    // SQLSTATE; a socket error's code (ECONNREFUSED…) never matches, so connection failures stay
    // STORE_UNAVAILABLE. PostgreSQL's texts for these statements name an encoding, a byte or a
    // number, never a record's data or user ID, so the message may keep them.
    if (DATA_EXCEPTION.test(code)) {
      const why = [code, typeof e.message === 'string' ? e.message.slice(0, 200) : ''].filter(Boolean).join(' ');
      return new StoreRejectedError(`PostgresStore ${op} was refused by PostgreSQL (${why}): a value given cannot be stored, `
        + 'for example a NUL character (U+0000) in the session data or the user ID; retrying will not help', { cause: err });
    }
    // Any other failure by its code alone (SQLSTATE or errno): the adapters answer this message to the
    // client, and the driver's text names the server's address, the database or the role ("connect
    // ECONNREFUSED 10.0.0.5:5432", "password authentication failed for user …"). The text stays in `cause`.
    const out = new StoreUnavailableError(`PostgresStore ${op} failed${code ? ` (${code})` : ''}; check that PostgreSQL is reachable `
      + '(options connectionString or pool) and answers within options.statementTimeoutMs', { cause: err });
    return wasUnsent(err) ? unsent(out) : out;
  }
}

/** Whether a call failed because PostgreSQL chose its statement to break a deadlock (SQLSTATE 40P01): nothing of it applied. */
function deadlocked(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause === 'object' && cause !== null && cause.code === '40P01';
}

/** A record's columns, in the order the create, update and regenerate statements take them. */
function fieldsOf(r: SessionRecord): unknown[] {
  return [r.key, r.data, r.version, r.userId, r.createdAt, r.lastSeenAt, r.expiresAt, r.absoluteExpiresAt];
}
