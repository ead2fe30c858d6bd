/** Temporary SQLite files for tests and benchmarks: one fresh folder per file, removed on request. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempSqliteFile {
  /** The folder holding the file and its -wal/-shm companions. */
  dir: string;
  /** The database file (not created yet). */
  path: string;
  /** Deletes the folder and everything in it. */
  remove(): Promise<void>;
}

export async function tempSqliteFile(name = 'sessions.db'): Promise<TempSqliteFile> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-sqlite-'));
  return { dir, path: join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) };
}
