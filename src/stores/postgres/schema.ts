/**
 * PostgresStore's schema as numbered migrations, and the runner that applies them once per table, safely under concurrent startup.
 *
 * Each session table records the migrations applied to it in `tether_migrations` (same schema), keyed by
 * table name, so several stores (say `sessions` and `user_contexts`) can share a schema. The runner holds
 * a transaction-scoped advisory lock from before its first DDL statement: two processes booting on an
 * empty database at once would otherwise race on `CREATE TABLE IF NOT EXISTS` (which is not atomic
 * against itself and fails with a unique violation in pg_type). DDL is transactional in PostgreSQL, so a
 * migration that fails leaves nothing behind and is retried on the next start.
 * @module
 */
import type { PoolClient } from 'pg';
import { timed } from './sql.js';

/** Quoted, schema-qualified names of everything the store creates for one table. */
export interface SchemaNames {
  /** Unquoted, for the migrations table's `table_name` column. */
  readonly tableName: string;
  /** Quoted and qualified, ready to paste into SQL. */
  readonly table: string;
  readonly migrations: string;
  readonly userIndex: string;
  readonly deadlineIndex: string;
  /** The rate limiters' counts (PostgresStore.limiter), quoted and qualified, and their sweep's index. */
  readonly limits: string;
  readonly limitsDeadlineIndex: string;
  /** Quoted schema, or null for the connection's search_path. */
  readonly schema: string | null;
}

export interface Migration {
  readonly version: number;
  readonly description: string;
  statements(n: SchemaNames): string[];
}

/** Identifiers we accept: plain, unquoted-safe, short enough for the derived index names (63-byte limit). */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_TABLE_NAME = 48;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function schemaNames(tableName: string, schema: string | undefined): SchemaNames {
  const q = (name: string): string => (schema ? `${quoteIdent(schema)}.${quoteIdent(name)}` : quoteIdent(name));
  return {
    tableName,
    table: q(tableName),
    migrations: q('tether_migrations'),
    // Index names live in the table's schema; CREATE INDEX takes them unqualified.
    userIndex: quoteIdent(`${tableName}_user_id_idx`),
    deadlineIndex: quoteIdent(`${tableName}_deadline_idx`),
    limits: q(`${tableName}_limits`),
    limitsDeadlineIndex: quoteIdent(`${tableName}_limits_deadline_idx`),
    schema: schema ? quoteIdent(schema) : null,
  };
}

/**
 * Append-only: a released migration is never edited, a change is a new entry. Times are bigint epoch
 * milliseconds from the store's clock (by default the server's time carried by a ServerClock), passed
 * as parameters rather than read from now() inside statements, so tests can move time.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'session table, user index, deadline index',
    statements: (n) => [
      `CREATE TABLE IF NOT EXISTS ${n.table} (
        key text PRIMARY KEY,
        data text NOT NULL,
        version bigint NOT NULL,
        user_id text NULL,
        created_at bigint NOT NULL,
        last_seen_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        absolute_expires_at bigint NOT NULL
      )`,
      // Partial: anonymous sessions (most of them) cost the index nothing.
      `CREATE INDEX IF NOT EXISTS ${n.userIndex} ON ${n.table} (user_id) WHERE user_id IS NOT NULL`,
      // The sweep's predicate, so sweeping scans only what is due.
      `CREATE INDEX IF NOT EXISTS ${n.deadlineIndex} ON ${n.table} ((least(expires_at, absolute_expires_at)))`,
    ],
  },
  {
    version: 2,
    description: 'rate limiter counts',
    statements: (n) => [
      // One row per limiter and key (`key`: a digest of both, never the key itself), this fixed
      // window's count and the one before, kept until the window after this one ends.
      `CREATE TABLE IF NOT EXISTS ${n.limits} (
        key text PRIMARY KEY,
        window_start bigint NOT NULL,
        current integer NOT NULL,
        previous integer NOT NULL,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX IF NOT EXISTS ${n.limitsDeadlineIndex} ON ${n.limits} (expires_at)`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** One key for every Tether migration in a database: migrations are rare, so serialising all of them is free. */
const MIGRATION_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('tether_migrations'))`;

/** Bound on a migration transaction (waiting for another process's lock, building indexes). */
export const MIGRATION_TIMEOUT_MS = 30_000;

/**
 * Applies the pending migrations of `names.tableName` on `client` in one transaction; returns the
 * versions it applied (empty when the table was already current). A database newer than this code
 * (a later release migrated it) is left alone: migrations are additive, so older code keeps working.
 */
export async function migrate(client: PoolClient, names: SchemaNames): Promise<number[]> {
  const q = (text: string, values?: unknown[]) => client.query<{ version: number }>(timed(text, values, MIGRATION_TIMEOUT_MS + 1_000));
  await q('BEGIN');
  try {
    await q(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    await q(MIGRATION_LOCK_SQL);
    if (names.schema) await q(`CREATE SCHEMA IF NOT EXISTS ${names.schema}`);
    await q(`CREATE TABLE IF NOT EXISTS ${names.migrations} (
      table_name text NOT NULL,
      version integer NOT NULL,
      description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (table_name, version)
    )`);
    const done = await q(`SELECT version FROM ${names.migrations} WHERE table_name = $1`, [names.tableName]);
    const applied = new Set(done.rows.map((r) => r.version));
    const ran: number[] = [];
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      for (const sql of m.statements(names)) await q(sql);
      await q(`INSERT INTO ${names.migrations} (table_name, version, description) VALUES ($1, $2, $3)`,
        [names.tableName, m.version, m.description]);
      ran.push(m.version);
    }
    await q('COMMIT');
    return ran;
  } catch (err) {
    await q('ROLLBACK').catch(() => {});
    throw err;
  }
}
