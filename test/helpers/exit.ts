/**
 * Cleanup when this process ends, for the throwaway servers the helpers start (redis-server, HAProxy,
 * PostgreSQL, app processes). `atExit(fn)` runs `fn` from the process's `exit` event, and makes
 * SIGINT, SIGTERM and SIGHUP end the process through that event too: their default action ends it
 * without running exit hooks, which left a benchmark or a test file stopped with `kill` (or Ctrl-C)
 * with its servers running and their folders on disk. A signal exits with 128 + its number, as the
 * default action's status reads in a shell; when something else in the process listens for the
 * signal (a server under test draining on SIGTERM), the choice is left to it.
 * @module
 */
import os from 'node:os';

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
