/**
 * Temporary SQLite files for tests and benchmarks: one fresh folder per file, removed on request, or
 * when the process exits (helpers/exit.ts) if nobody removed it.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atExit } from './exit.js';

export interface TempSqliteFile {
  /** The folder holding the file and its -wal/-shm companions. */
  dir: string;
  /** The database file (not created yet). */
  path: string;
  /** Deletes the folder and everything in it. */
  remove(): Promise<void>;
}

/** Folders created here and not removed yet. */
const ownDirs = new Set<string>();
atExit(() => {
  for (const dir of ownDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort at exit */ }
  }
});

export async function tempSqliteFile(name = 'sessions.db'): Promise<TempSqliteFile> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-sqlite-'));
  ownDirs.add(dir);
  const remove = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    ownDirs.delete(dir);
  };
  return { dir, path: join(dir, name), remove };
}
