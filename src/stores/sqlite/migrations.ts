/**
 * The SqliteStore schema as an ordered list of migrations (schema.ts applies them).
 *
 * Migrations live in TypeScript rather than a .sql file so the built package needs no asset copying.
 * A migration is never edited after release: a change to the schema is a new entry at the end.
 * This module imports nothing from better-sqlite3, not even its types: tether/sqlite's declarations
 * re-export it, and a strict consumer checking them need not install @types/better-sqlite3.
 * @module
 */

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
