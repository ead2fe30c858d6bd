/**
 * The code that applies SqliteStore's migrations (migrations.ts) once per file.
 * @module
 */
import type BetterSqlite3 from 'better-sqlite3';
import { StoreUnavailableError } from '../../core/errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

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
