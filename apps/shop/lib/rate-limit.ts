/**
 * A per-address sliding-window counter (two fixed windows, the previous one weighted by how much of it
 * still overlaps), bounded in memory: at most `maxKeys` addresses, the least recently seen dropped first.
 * @module
 */

interface Window {
  start: number;
  current: number;
  previous: number;
}

export class SlidingWindowLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Insertion order is recency order. */
  readonly #windows = new Map<string, Window>();

  constructor(limit: number, windowMs = 60_000, maxKeys = 100_000, now: () => number = Date.now) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  /** Counts one event for `key`; false (and not counted) when the key is over its limit. */
  take(key: string): boolean {
    const now = this.#now();
    const aligned = now - (now % this.#windowMs);
    let w = this.#windows.get(key);
    if (w) this.#windows.delete(key);
    if (!w || aligned - w.start >= 2 * this.#windowMs) w = { start: aligned, current: 0, previous: 0 };
    else if (aligned !== w.start) w = { start: aligned, current: 0, previous: w.current };
    this.#windows.set(key, w);
    if (this.#windows.size > this.#maxKeys) this.#windows.delete(this.#windows.keys().next().value!);
    const overlap = 1 - (now - w.start) / this.#windowMs;
    if (w.previous * overlap + w.current >= this.#limit) return false;
    w.current++;
    return true;
  }

  get size(): number {
    return this.#windows.size;
  }
}
