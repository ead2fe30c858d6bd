/**
 * Sliding-window rate limits: the arithmetic every limiter shares (the process's own
 * SlidingWindowLimiter, and the counts a shared store keeps for many machines), and the interface
 * callers use. A window is two fixed windows, the previous one weighted by how much of it still
 * overlaps the last `windowMs`, so a burst at a window's edge cannot pass twice the limit.
 * @module
 */
import { createHash } from 'node:crypto';
import { isTetherError } from './errors.js';
import { OldestFirst } from './oldest-first.js';

/** Counts events per key against a limit: at once in one process, through the primary or a shared store elsewhere. */
export interface SharedLimiter {
  /** Counts one event for `key`; false (and nothing counted) when the key is at its limit. */
  take(key: string): boolean | Promise<boolean>;
  /** Whether a `take` now would be allowed, counting nothing: for limits on failures, checked before the attempt. */
  peek(key: string): boolean | Promise<boolean>;
}

/** Where `now` falls: the start of its fixed window, and the weight of the window before it (1 at the start, 0 at the end). */
export interface WindowPosition {
  readonly start: number;
  readonly previousWeight: number;
}

export function windowPosition(now: number, windowMs: number): WindowPosition {
  const start = now - (now % windowMs);
  return { start, previousWeight: 1 - (now - start) / windowMs };
}

/** Whether one more event fits: the previous window's events weighted, plus this window's, under `limit`. */
export function withinLimit(previous: number, current: number, previousWeight: number, limit: number): boolean {
  return previous * previousWeight + current < limit;
}

/** A limiter's name: letters, digits and `_.:-`, so it can stand in a key or a log line as it is. */
const LIMITER_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/** Throws a TypeError unless `name`, `limit` (a whole number ≥ 1) and `windowMs` (≥ 1 ms) make a limiter. */
export function checkLimiter(name: string, limit: number, windowMs: number): void {
  if (typeof name !== 'string' || !LIMITER_NAME.test(name)) {
    throw new TypeError(`limiter name must be 1–100 letters, digits or _.:- (got ${JSON.stringify(name)})`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError(`limit must be a whole number of at least 1 (got ${limit})`);
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new TypeError(`windowMs must be a whole number of milliseconds, at least 1 (got ${windowMs})`);
}

/**
 * What a shared store keeps a key's counts under: a digest of the limiter's name and the key, never
 * the key itself (a client's address, a name typed into a login form, which may be a password).
 */
export function limiterDigest(name: string, key: string): string {
  return createHash('sha256').update(`${name}\0${key}`).digest('base64url').slice(0, 32);
}

/** One key's count: the current fixed window's events and the previous window's. */
interface Window {
  start: number;
  current: number;
  previous: number;
}

/**
 * A per-key sliding-window counter in this process (two fixed windows, the previous one weighted by
 * how much of it still overlaps), bounded in memory: at most `maxKeys` keys, the least recently seen
 * dropped first. `now` is its clock (the engine passes its own).
 */
export class SlidingWindowLimiter {
  readonly limit: number;
  readonly windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Insertion order is recency order. */
  readonly #windows = new Map<string, Window>();
  readonly #oldest = new OldestFirst<string, Window>();

  constructor(limit: number, windowMs = 60_000, maxKeys = 100_000, now: () => number = Date.now) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  /** Counts one event for `key`; false (and not counted) when the key is over its limit. */
  take(key: string): boolean {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (w) this.#windows.delete(key);
    w = this.#rolled(w, now);
    this.#windows.set(key, w);
    if (this.#windows.size > this.#maxKeys) this.#oldest.shift(this.#windows);
    if (!this.#within(w, now)) return false;
    w.current++;
    return true;
  }

  /** Whether an event for `key` would be within its limit now; counts nothing and keeps no key. */
  peek(key: string): boolean {
    const now = this.#now();
    const w = this.#windows.get(key);
    return w === undefined || this.#within(this.#rolled(w, now), now);
  }

  /** `w` as of `now`: the same window, or moved on by one or more windows. */
  #rolled(w: Window | undefined, now: number): Window {
    const aligned = windowPosition(now, this.windowMs).start;
    if (!w || aligned - w.start >= 2 * this.windowMs) return { start: aligned, current: 0, previous: 0 };
    if (aligned !== w.start) return { start: aligned, current: 0, previous: w.current };
    return w;
  }

  #within(w: Window, now: number): boolean {
    return withinLimit(w.previous, w.current, windowPosition(now, this.windowMs).previousWeight, this.limit);
  }

  get size(): number {
    return this.#windows.size;
  }
}

/**
 * `shared` (a store's counts), counted on `machine` instead while the store is out (STORE_UNAVAILABLE,
 * STORE_CLOSED); any other failure is a bug and is thrown. Without `shared`, `machine` itself.
 */
export function fallingBackTo(shared: SharedLimiter | undefined, machine: SharedLimiter): SharedLimiter {
  if (!shared) return machine;
  const either = (op: 'take' | 'peek') => async (key: string): Promise<boolean> => {
    try {
      return await shared[op](key);
    } catch (err) {
      if (!isStoreFailure(err)) throw err;
      return machine[op](key);
    }
  };
  return { take: either('take'), peek: either('peek') };
}

/** An outage or a closed store, which the machine's count can stand in for. */
function isStoreFailure(err: unknown): boolean {
  return isTetherError(err) && (err.code === 'STORE_UNAVAILABLE' || err.code === 'STORE_CLOSED');
}
