/**
 * The SQL PostgresStore runs, built once per table, and the row-to-record mapping.
 *
 * Every write is one statement (a data-modifying CTE), so it is its own transaction: the row change,
 * the user index (the user_id column) and the NOTIFY commit together or not at all. Row locks and
 * READ COMMITTED re-checking make the `WHERE version = $n` of a racing UPDATE see the winner's row, which
 * is what turns these statements into compare-and-set. Expiry always compares with a `now` parameter
 * from the store's clock.
 * @module
 */
import { createHash } from 'node:crypto';
import type { QueryConfig } from 'pg';
import type { SessionRecord } from '../../core/store.js';
import { MOVED_PREFIX } from '../../core/renewal.js';

/** A query bounded client-side: pg honours `query_timeout` per query, though its types list it only on the client config. */
export function timed(text: string, values: unknown[] | undefined, timeoutMs: number): QueryConfig {
  const config: QueryConfig & { query_timeout: number } = { text, values, query_timeout: timeoutMs };
  return config;
}

/** `timed`, as a named statement: parsed and planned once per connection instead of on every call. */
export function prepared(text: string, values: unknown[], timeoutMs: number): QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = 'tether_' + createHash('sha1').update(text).digest('hex').slice(0, 20)));
  return { ...timed(text, values, timeoutMs), name };
}

const statementNames = new Map<string, string>();

/** bigint columns arrive as strings from pg; epoch milliseconds and versions fit a double exactly. */
export interface RecordRow {
  key: string;
  data: string;
  version: string;
  user_id: string | null;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  absolute_expires_at: string;
}

export function toRecord(row: RecordRow): SessionRecord {
  return {
    key: row.key,
    data: row.data,
    version: Number(row.version),
    userId: row.user_id,
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    expiresAt: Number(row.expires_at),
    absoluteExpiresAt: Number(row.absolute_expires_at),
  };
}

/** What one batch of destroyAll reports (the `destroyAll` statements); counts are bigint, so strings. */
export interface DestroyAllRow {
  scanned: string;
  last: string | null;
  live: string;
}

/** A row a sweep deleted: what `onSwept` needs to tell a timed-out session. */
export type SweptRow = Pick<RecordRow, 'key' | 'user_id' | 'last_seen_at' | 'expires_at' | 'absolute_expires_at'>;

const COLUMNS = 'key, data, version, user_id, created_at, last_seen_at, expires_at, absolute_expires_at';
const live = (now: string, alias = ''): string => `${alias}expires_at > ${now} AND ${alias}absolute_expires_at > ${now}`;

/** NOTIFY payload of a set or touch (feed.ts): `=<version>:<expiresAt> <key>`, from the row written. */
const STAMPED = `'=' || version || ':' || expires_at || ' ' || key`;
/** NOTIFY payload of a removal: `!<key>`. */
const REMOVED = `'!' || key`;
/** Session keys: every key but user contexts (isSessionKey); LIKE compares exactly, whatever the collation. */
const SESSION_KEY = `key NOT LIKE 'user:%'`;
/**
 * Not a renewal's pointer (MOVED_PREFIX in renewal.ts): the session it names is counted under its new
 * key. The data is compared only for a row whose other columns could be one.
 */
const NOT_POINTER = `NOT (user_id IS NULL AND last_seen_at = expires_at AND left(data, ${MOVED_PREFIX.length}) = '${MOVED_PREFIX}')`;

/** A limiter row's counts as of the window starting at EXCLUDED.window_start (limitTake). */
const ROLLED_CURRENT = `CASE WHEN l.window_start >= EXCLUDED.window_start THEN l.current ELSE 0 END`;
const ROLLED_PREVIOUS = `CASE WHEN l.window_start >= EXCLUDED.window_start THEN l.previous
  WHEN l.window_start = EXCLUDED.window_start - $3::bigint THEN l.current ELSE 0 END`;

/**
 * `table` is quoted and qualified; `limits` too (the rate limiters' table). With `notify`, each write statement takes the channel as its last
 * parameter and returns one row per changed key; without, the same rows come back with no NOTIFY.
 */
export function statements(table: string, notify: boolean, limits: string) {
  const emit = (channelParam: string, payload: string, extra = ''): string =>
    (notify ? `SELECT pg_notify(${channelParam}, ${payload})${extra} FROM w` : `SELECT key${extra} FROM w`);
  const destroyAllBatch = (after: '>' | '>='): string => `WITH batch AS (
      SELECT key FROM ${table} WHERE key ${after} $1 ORDER BY key LIMIT $2
    ), w AS (
      DELETE FROM ${table} WHERE key IN (SELECT key FROM batch) AND ${SESSION_KEY}
      RETURNING key, (${live('$3')} AND ${NOT_POINTER}) AS live
    ) SELECT (SELECT count(*) FROM batch) AS scanned, (SELECT max(key) FROM batch) AS last,
      count(*) FILTER (WHERE live) AS live${notify ? `, count(pg_notify($4, ${REMOVED})) AS notified` : ''} FROM w`;
  return {
    get: `SELECT ${COLUMNS} FROM ${table} WHERE key = $1 AND ${live('$2')}`,

    /** $1..$8 record, $9 now, [$10 channel]. A stored row counts as absent when expired at $9. */
    create: `WITH w AS (
      INSERT INTO ${table} AS t (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, user_id = EXCLUDED.user_id,
        created_at = EXCLUDED.created_at, last_seen_at = EXCLUDED.last_seen_at, expires_at = EXCLUDED.expires_at,
        absolute_expires_at = EXCLUDED.absolute_expires_at
      WHERE t.expires_at <= $9 OR t.absolute_expires_at <= $9
      RETURNING t.key, t.version, t.expires_at
    ) ${emit('$10', STAMPED)}`,

    /** $1..$8 record, $9 now, $10 expected version, [$11 channel]. */
    update: `WITH w AS (
      UPDATE ${table} SET data = $2, version = $3, user_id = $4, created_at = $5, last_seen_at = $6,
        expires_at = $7, absolute_expires_at = $8
      WHERE key = $1 AND version = $10 AND ${live('$9')}
      RETURNING key, version, expires_at
    ) ${emit('$11', STAMPED)}`,

    /**
     * A login's two writes in one statement: $1..$8 the ended record, $9 now, $10 its expected version,
     * $11..$18 the new record, [$19 channel]. The old row is rewritten only if its version matches and
     * the new key holds no live row, and the new row is written only if the old one was: both change,
     * or neither (the caller then finds out why). One row per changed key.
     */
    regenerate: `WITH e AS (
      UPDATE ${table} SET data = $2, version = $3, user_id = $4, created_at = $5, last_seen_at = $6,
        expires_at = $7, absolute_expires_at = $8
      WHERE key = $1 AND version = $10 AND ${live('$9')}
        AND NOT EXISTS (SELECT 1 FROM ${table} WHERE key = $11 AND ${live('$9')})
      RETURNING key, version, expires_at
    ), c AS (
      INSERT INTO ${table} AS t (${COLUMNS})
      SELECT $11::text, $12::text, $13::bigint, $14::text, $15::bigint, $16::bigint, $17::bigint, $18::bigint FROM e
      ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, user_id = EXCLUDED.user_id,
        created_at = EXCLUDED.created_at, last_seen_at = EXCLUDED.last_seen_at, expires_at = EXCLUDED.expires_at,
        absolute_expires_at = EXCLUDED.absolute_expires_at
      WHERE t.expires_at <= $9 OR t.absolute_expires_at <= $9
      RETURNING t.key, t.version, t.expires_at
    ), w AS (SELECT key, version, expires_at FROM e UNION ALL SELECT key, version, expires_at FROM c)
    ${emit('$19', STAMPED)}`,

    /** The version a failed write lost to: $1 key, $2 now. */
    version: `SELECT version FROM ${table} WHERE key = $1 AND ${live('$2')}`,

    /** $1 key, $2 expiresAt, $3 lastSeenAt, $4 now, $5 version (null: any), [$6 channel]. Never creates. */
    touch: `WITH w AS (
      UPDATE ${table} SET expires_at = $2, last_seen_at = $3
      WHERE key = $1 AND ${live('$4')} AND ($5::bigint IS NULL OR version = $5::bigint)
      RETURNING key, version, expires_at
    ) ${emit('$6', STAMPED)}`,

    /** $1 key, [$2 channel]. */
    destroy: `WITH w AS (DELETE FROM ${table} WHERE key = $1 RETURNING key) ${emit('$2', REMOVED)}`,

    listByUser: `SELECT ${COLUMNS} FROM ${table} WHERE user_id = $1 AND ${live('$2')}`,

    /**
     * $1 user, $2 keys to keep, $3 now (with the caller's `marginMs`, that much later: only `live` reads
     * it), [$4 channel]. One row per deleted key; `live` says whether it counted.
     */
    destroyByUser: `WITH w AS (
      DELETE FROM ${table} WHERE user_id = $1 AND key <> ALL($2::text[])
      RETURNING key, (${live('$3')}) AS live
    ) ${emit('$4', REMOVED, ', live')}`,

    /**
     * One batch of destroyAll, after the key `$1` ($1 '' and `destroyAllFirst` for the first batch, so
     * that even an empty key is taken): $2 batch size, $3 now (with the caller's `marginMs`, that much
     * later: only `live` reads it), [$4 channel]. `batch` is the next $2 keys
     * of any kind in key order (the primary key's index), so each statement reads at most $2 index
     * entries however many user contexts lie between sessions; of them, the sessions are deleted, each
     * notified as a removal. One row back: `scanned` (fewer than $2: the table is done), `last` (the
     * next batch's $1), `live` (the deleted rows live at $3). A row another client deleted first is not
     * deleted, counted or notified again; one a concurrent write holds is waited for and then deleted.
     */
    destroyAllFirst: destroyAllBatch('>='),
    destroyAll: destroyAllBatch('>'),

    /**
     * $1 now, $2 batch size. The outer predicate repeats the deadline so that a row re-created between
     * the subquery and the delete (an expired key replaced by a create) is re-checked and kept. It
     * returns only the rows this statement deleted: a row another process's sweep deleted first is
     * skipped, so each is reported once (SessionStore.onSwept).
     */
    sweep: `DELETE FROM ${table} WHERE key IN (
      SELECT key FROM ${table} WHERE least(expires_at, absolute_expires_at) <= $1 LIMIT $2
    ) AND least(expires_at, absolute_expires_at) <= $1
    RETURNING key, user_id, last_seen_at, expires_at, absolute_expires_at`,

    count: `SELECT count(*) AS n FROM ${table} WHERE ${live('$1')} AND ${SESSION_KEY} AND ${NOT_POINTER}`,

    /**
     * One event against a sliding-window limit (src/core/rate-limit.ts), counted only when it fits:
     * $1 key digest, $2 this window's start, $3 window ms, $4 the previous window's weight, $5 limit.
     * A row from an earlier window is rolled forward first (its count becomes the previous one, or
     * nothing when two windows have passed); a row from a later one (another machine's clock ahead)
     * is taken as this window. The upsert's row lock makes concurrent takes count one by one. One row
     * back when counted, none when refused.
     */
    limitTake: `INSERT INTO ${limits} AS l (key, window_start, current, previous, expires_at)
      VALUES ($1, $2::bigint, 1, 0, $2::bigint + 2 * $3::bigint)
      ON CONFLICT (key) DO UPDATE SET
        window_start = greatest(l.window_start, EXCLUDED.window_start),
        previous = ${ROLLED_PREVIOUS},
        current = ${ROLLED_CURRENT} + 1,
        expires_at = greatest(l.window_start, EXCLUDED.window_start) + 2 * $3::bigint
      WHERE (${ROLLED_PREVIOUS}) * $4::float8 + ${ROLLED_CURRENT} < $5::integer
      RETURNING 1 AS counted`,

    /** A limiter key's counts for peek: $1 key digest. */
    limitPeek: `SELECT window_start, current, previous FROM ${limits} WHERE key = $1`,

    /** Counts past their last window: $1 now, $2 batch size. */
    limitSweep: `DELETE FROM ${limits} WHERE key IN (SELECT key FROM ${limits} WHERE expires_at <= $1 LIMIT $2) AND expires_at <= $1`,
  };
}
