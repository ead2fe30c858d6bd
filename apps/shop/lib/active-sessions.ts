/**
 * Sessions this process served within the idle window: the "live sessions on this node" figure of the
 * admin page and metrics. Bounded: at most `max` handles, the least recently seen dropped first.
 * @module
 */

export class ActiveSessions {
  readonly #windowMs: number;
  readonly #max: number;
  /** handle → last seen (ms); insertion order is recency order. */
  readonly #seen = new Map<string, number>();

  constructor(windowMs: number, max = 200_000) {
    this.#windowMs = windowMs;
    this.#max = max;
  }

  seen(handle: string, now = Date.now()): void {
    this.#seen.delete(handle);
    this.#seen.set(handle, now);
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.keys().next().value!);
  }

  forget(handle: string): void {
    this.#seen.delete(handle);
  }

  count(now = Date.now()): number {
    for (const [handle, at] of this.#seen) {
      if (now - at < this.#windowMs) break;
      this.#seen.delete(handle);
    }
    return this.#seen.size;
  }
}
