/**
 * The SqliteStore schema as an ordered list of migrations, and the code that applies them once per file.
 *
 * Migrations live in TypeScript rather than a .sql file so the built package needs no asset copying.
 * A migration is never edited after release: a change to the schema is a new entry at the end.
 * @module
 */
import type BetterSqlite3 from 'better-sqlite3';
import { StoreUnavailableError } from '../../core/errors.js';

export interface Migration {
  /** 1, 2, 3…: the `schema_version` the file has once this migration ran. */
  version: number;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE tether_sessions (
        key                 TEXT PRIMARY KEY NOT NULL,
        data                TEXT NOT NULL,
        version             INTEGER NOT NULL,
        user_id             TEXT,
        created_at          INTEGER NOT NULL,
        last_seen_at        INTEGER NOT NULL,
        expires_at          INTEGER NOT NULL,
        absolute_expires_at INTEGER NOT NULL
      ) STRICT;
      -- The sweep and count() range-scan the earlier of the two deadlines; the query must use this
      -- exact expression for SQLite to pick the index.
      CREATE INDEX tether_sessions_deadline ON tether_sessions (min(expires_at, absolute_expires_at));
      -- The user index is a column of the row itself, so it can never disagree with the row.
      CREATE INDEX tether_sessions_user ON tether_sessions (user_id) WHERE user_id IS NOT NULL;
      -- The cross-process change feed: one row per set/touch/destroy, written in the writer's
      -- transaction and polled by subscribers. AUTOINCREMENT keeps seq increasing after trims.
      CREATE TABLE tether_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        at  INTEGER NOT NULL
      ) STRICT;
      INSERT INTO tether_meta (name, value) VALUES ('changes_trimmed_through', 0);
    `,
  },
  {
    version: 2,
    // The state a set or touch left behind (stampOf), so a subscriber can tell its own writes' reports
    // from others'. NULL for a removal, and on rows written before this migration (they invalidate).
    sql: 'ALTER TABLE tether_changes ADD COLUMN stamp TEXT;',
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

const META_DDL = 'CREATE TABLE IF NOT EXISTS tether_meta (name TEXT PRIMARY KEY NOT NULL, value ANY) STRICT';

/** The file's schema version, 0 for a new file. */
export function readSchemaVersion(db: BetterSqlite3.Database): number {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'tether_meta'").pluck().get();
  if (!hasMeta) return 0;
  const v = db.prepare("SELECT value FROM tether_meta WHERE name = 'schema_version'").pluck().get();
  return typeof v === 'number' ? v : 0;
}

/**
 * Brings the file to SCHEMA_VERSION; returns how many migrations ran (0 when it was current).
 *
 * Safe when several processes open a new file at once: the version is re-read inside an IMMEDIATE
 * transaction, which only one connection holds at a time, so exactly one of them migrates and the
 * others find the work done. The common case (already current) takes no write lock at all.
 */
export function migrate(db: BetterSqlite3.Database): number {
  const known = readSchemaVersion(db);
  if (known === SCHEMA_VERSION) return 0;
  if (known > SCHEMA_VERSION) throw newerSchema(known);
  const apply = db.transaction((): number => {
    db.exec(META_DDL);
    const current = readSchemaVersion(db);
    if (current > SCHEMA_VERSION) throw newerSchema(current);
    let ran = 0;
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.prepare("INSERT INTO tether_meta (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        .run(m.version);
      ran++;
    }
    return ran;
  });
  return apply.immediate();
}

function newerSchema(found: number): Error {
  return new StoreUnavailableError(`the SQLite file has schema version ${found}, newer than this Tether understands (${SCHEMA_VERSION}); upgrade Tether`);
}
