/**
 * TieredStore's options, their defaults, its consistency modes and the figures `stats()` reports.
 * @module
 */
import type { Clock, SessionStore } from '../../core/store.js';

/** The optional SessionStore members the tier uses when the shared store has them. */
export type SharedStoreExtras = Pick<SessionStore, 'subscribe' | 'fence' | 'feedState' | 'regenerate' | 'onSwept'>;

/**
 * How a local hit relates to writes made through other processes.
 * - `fenced`: a hit waits for the shared store's `fence()` (coalesced: about one round trip per batch of
 *   concurrent reads), so it is never older than a write acknowledged anywhere before the read began.
 * - `eventual`: a hit costs no round trip; for the feed's delivery delay after another process's write
 *   (sub-millisecond on one host, about a network hop on a LAN) a read there may return the previous
 *   version. Safe with sticky routing: a session is written where it is read, and every write is a
 *   compare-and-set against the shared store, so a stale read can never overwrite a newer session
 *   (the write conflicts, and the engine replays or refuses it).
 */
export type TieredConsistency = 'fenced' | 'eventual';

export interface TieredStoreOptions {
  /** The store every process shares; the source of truth. */
  shared: SessionStore;
  /** Upper bound on the bytes of local copies (keys + data, estimated). @default 32 MiB */
  maxBytes?: number;
  /** Decides when a local copy has expired; give the shared store the same one. @default the shared store's `clock` (RedisStore's follows Redis's time), else the system clock */
  clock?: Clock;
  /**
   * Allows a shared store without a change feed. Safe only when no other process writes to that store:
   * their writes would never reach this cache, which would then serve stale (or destroyed) sessions.
   * @default false
   */
  singleProcess?: boolean;
  /** `close()` also closes the shared store; set false when several tiers share one store object. @default true */
  closeShared?: boolean;
  /** See TieredConsistency; 'fenced' needs a shared store with `fence()`. @default 'fenced' when the shared store has `fence()`, else 'eventual' */
  consistency?: TieredConsistency;
}

export const TIERED_STORE_DEFAULTS = { maxBytes: 32 * 1024 * 1024, singleProcess: false, closeShared: true } as const;

export interface TieredStats {
  /** Reads answered from a local copy. */
  hits: number;
  /** Reads that went to the shared store. */
  misses: number;
  /** Local copies dropped because the change feed reported the key changed. */
  invalidations: number;
  /** Local copies pushed out by `maxBytes`. */
  evictions: number;
  bytes: number;
  entries: number;
  /** hits / (hits + misses); 0 before the first read. */
  hitRatio: number;
  /** Fences sent to the shared store ('fenced' consistency); concurrent hits share one. */
  fences: number;
}
