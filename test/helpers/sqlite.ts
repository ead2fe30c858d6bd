/**
 * Temporary SQLite files for tests and benchmarks: one fresh folder per file, removed on request, or
 * when the process exits (helpers/exit.ts) if nobody removed it.
 */
import { join } from 'node:path';
import { removeTempDir, tempDir } from './exit.js';

export interface TempSqliteFile {
  /** The folder holding the file and its -wal/-shm companions. */
  dir: string;
  /** The database file (not created yet). */
  path: string;
  /** Deletes the folder and everything in it. */
  remove(): Promise<void>;
}

export async function tempSqliteFile(name = 'sessions.db'): Promise<TempSqliteFile> {
  const dir = await tempDir('tether-sqlite-');
  return { dir, path: join(dir, name), remove: () => removeTempDir(dir) };
}
