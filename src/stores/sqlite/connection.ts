/**
 * Opening a SqliteStore file (driver, folder, WAL, durability, schema) and turning driver failures
 * into STORE_UNAVAILABLE errors that say what to change.
 * @module
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { StoreUnavailableError, isTetherError } from '../../core/errors.js';
import { migrate, readSchemaVersion } from './schema.js';

/**
 * How long one statement waits inside SQLite for another connection's lock once the file is open.
 * SQLite's busy handler sleeps in the calling thread, so every millisecond of it is a millisecond the
 * event loop stands still: the store keeps it to a few and waits for the rest between attempts, on
 * timers (see `SqliteStore`), until `busyTimeoutMs` has passed.
 */
export const LOCK_WAIT_MS = 5;

/**
 * The least an open waits for other connections' locks (unless `busyTimeoutMs` is 0: fail at once).
 * Opening answers no client, and the workers of a cluster open one file together, at a start when the
 * machine is busiest: the default `busyTimeoutMs`, kept below the engine's deadline for writes, is
 * too short a bound there.
 */
const OPEN_WAIT_MS = 5_000;

/**
 * Opens `path` in WAL mode with the given `synchronous` level, migrated to the current schema. Opening
 * waits up to `busyTimeoutMs` (at least OPEN_WAIT_MS) for other connections' locks, blocking (a
 * constructor cannot await); the
 * connection returned waits at most LOCK_WAIT_MS per statement.
 * Throws STORE_UNAVAILABLE (driver missing, file unusable, lock not obtained in time).
 */
export function openDatabase(path: string, busyTimeoutMs: number, synchronous: 'NORMAL' | 'FULL'): BetterSqlite3.Database {
  const Database = loadDriver();
  let db: BetterSqlite3.Database | undefined;
  const openWaitMs = busyTimeoutMs === 0 ? 0 : Math.max(busyTimeoutMs, OPEN_WAIT_MS);
  try {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
    db = new Database(path, { timeout: openWaitMs });
    if (!db.memory) enableWal(db, openWaitMs);
    db.pragma(`synchronous = ${synchronous}`);
    migrate(db);
    db.pragma(`busy_timeout = ${Math.min(busyTimeoutMs, LOCK_WAIT_MS)}`);
    return db;
  } catch (err) {
    db?.close();
    throw unavailable(err, 'open');
  }
}

/**
 * Whether the existing file at `path` holds a SqliteStore (a migrated schema), read without writing:
 * opening another app's SQLite file as a store would add the store's tables to it. Null when the file
 * cannot be read as SQLite, which opening it as a store then reports.
 */
export function holdsStore(path: string): boolean | null {
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new (loadDriver())(path, { readonly: true, fileMustExist: true });
    return readSchemaVersion(db) > 0;
  } catch {
    return null;
  } finally {
    db?.close();
  }
}

/** Loaded here rather than imported, so importing the store never fails when the driver is absent. */
function loadDriver(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (err) {
    throw new StoreUnavailableError('SqliteStore needs the better-sqlite3 package: npm install better-sqlite3', { cause: err });
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Switches the file to WAL, which is what lets readers and one writer from many processes proceed
 * together. SQLite answers SQLITE_BUSY without calling the busy handler when several connections switch
 * a new file at the same moment (seen about once in 1,500 racing opens), so this retries until
 * `timeoutMs`, re-reading the mode each time since another process may have switched it meanwhile.
 */
function enableWal(db: BetterSqlite3.Database, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      if (db.pragma('journal_mode', { simple: true }) === 'wal') return;
      if (db.pragma('journal_mode = WAL', { simple: true }) === 'wal') return;
      throw new StoreUnavailableError('SqliteStore could not switch the file to WAL mode; keep options.path on a local disk (WAL does not work on network file systems)');
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
      // Synchronous, like every driver call: the constructor cannot await.
      Atomics.wait(pause, 0, 0, Math.min(5 * 2 ** attempt, 100));
    }
  }
}

/** SQLITE_BUSY and its extended codes, from the driver's error or from the STORE_UNAVAILABLE wrapping it. */
export const isBusy = (err: unknown): boolean => {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return /^SQLITE_BUSY/.test(String(e?.code)) || (isTetherError(err) && /^SQLITE_BUSY/.test(String(e?.cause?.code)));
};

const HINTS: Array<[RegExp, string]> = [
  [/^SQLITE_BUSY/, 'another connection held the lock longer than options.busyTimeoutMs'],
  [/^SQLITE_FULL/, 'the disk or volume is full'],
  [/^SQLITE_IOERR/, 'the disk reported an I/O error'],
  [/^SQLITE_(READONLY|CANTOPEN|PERM)|^E(ACCES|PERM|ROFS)$/, 'check the permissions of options.path and its folder'],
  [/^SQLITE_(CORRUPT|NOTADB)/, 'the file is damaged or not a SQLite database'],
];

/** Driver and file-system failures become STORE_UNAVAILABLE (cause kept); Tether errors and bugs pass through. */
export function unavailable(err: unknown, op: string): unknown {
  if (isTetherError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return err;
  const hint = HINTS.find(([re]) => re.test(code))?.[1];
  return new StoreUnavailableError(`SqliteStore ${op} failed (${code})${hint ? `: ${hint}` : ''}`, { cause: err });
}
