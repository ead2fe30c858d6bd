/**
 * Cleanup when this process ends, for the throwaway servers and folders the helpers create
 * (redis-server, HAProxy, PostgreSQL, app processes, data folders). `atExit(fn)` runs `fn` from the
 * process's `exit` event, and makes SIGINT, SIGTERM and SIGHUP end the process through that event
 * too: their default action ends it without running exit hooks, which left a benchmark or a test file
 * stopped with `kill` (or Ctrl-C) with its servers running and their folders on disk. A signal exits
 * with 128 + its number, as the default action's status reads in a shell; when something else in the
 * process listens for the signal (a server under test draining on SIGTERM), the choice is left to it.
 * `tempDir` makes a folder that is removed at exit unless `removeTempDir` removed it before.
 * @module
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const hooks: Array<() => void> = [];
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  process.exit(128 + os.constants.signals[signal]);
}

/** Runs `fn` (synchronous, best effort: errors are ignored) when this process exits or is stopped by a signal. */
export function atExit(fn: () => void): void {
  if (hooks.length === 0) {
    process.once('exit', () => {
      for (const hook of hooks) {
        try { hook(); } catch { /* best effort at exit */ }
      }
    });
    for (const signal of SIGNALS) process.on(signal, onSignal);
  }
  hooks.push(fn);
}

/** Folders made by `tempDir` and not removed yet. */
const dirs = new Set<string>();
let dirsAtExit = false;

/** A new folder `<prefix>XXXXXX` in the system's temporary folder, removed at exit unless `removeTempDir` removed it first. */
export async function tempDir(prefix: string): Promise<string> {
  if (!dirsAtExit) {
    dirsAtExit = true;
    atExit(() => {
      for (const dir of dirs) {
        try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort at exit */ }
      }
    });
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

/** Removes a folder and everything in it; one made by `tempDir` is no longer removed at exit. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  dirs.delete(dir);
}
