/**
 * What a stack's server needs from the harness: where its backend runs, and a counter of the
 * requests its route handlers ran (the divisor of CPU per request).
 * @module
 */
import type { Server } from 'node:http';

export interface StackEnv {
  /** redis://127.0.0.1:<port> of this stack's own redis-server. */
  redisUrl?: string;
  /** A fresh SQLite file for this stack. */
  sqlitePath?: string;
}

export interface Counter {
  handled: number;
}

export interface RunningApp {
  server: Server;
  close(): Promise<void>;
}

/** The seed index from `/seed?i=123`. */
export function seedIndex(url: string | undefined): number {
  const q = url?.indexOf('?i=') ?? -1;
  return q < 0 ? 0 : Number(url!.slice(q + 3)) || 0;
}
