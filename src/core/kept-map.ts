/**
 * A Map of per-key state that is in use for a while and then idle: a session's gate while a request
 * holds it, a tiered store's generation while a fetch or write of the key is in flight, the echoes
 * it awaits. An idle entry stays, so that the key's next use changes it where it stands.
 *
 * Deleting the entry when it goes idle and inserting it again at the key's next use would leave a
 * hole in V8's hash table each time, so the table rehashes every few uses, and a Map that runs empty
 * reallocates its table at the delete that empties it (`Runtime_MapShrink`): with one request at a
 * time, every use paid a call into the runtime and an allocation (bench/analysis.md, item 41).
 *
 * Past `idleLimit` idle entries, the oldest idle ones leave first (by insertion: an entry used again
 * keeps its place); an entry in use met on the way goes back in at the end. The owner says when an
 * entry goes idle (`rest`) and when an idle one is used again (`resume`); `isIdle` must agree.
 * @module
 */
import { OldestFirst } from './oldest-first.js';

export class KeptMap<K, V> {
  readonly #map = new Map<K, V>();
  readonly #oldest = new OldestFirst<K, V>();
  readonly #idleLimit: number;
  readonly #isIdle: (value: V) => boolean;
  #idle = 0;

  constructor(idleLimit: number, isIdle: (value: V) => boolean) {
    this.#idleLimit = idleLimit;
    this.#isIdle = isIdle;
  }

  /** Entries, in use or idle. */
  get size(): number {
    return this.#map.size;
  }

  /** Idle entries kept. */
  get idle(): number {
    return this.#idle;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** Adds an entry in use, or changes one where it stands. */
  set(key: K, value: V): void {
    this.#map.set(key, value);
  }

  /** An idle entry is in use again (call when changing one from idle). */
  resume(): void {
    this.#idle--;
  }

  /** An entry went idle (call after changing it to idle); past the limit the oldest idle entry leaves. */
  rest(): void {
    if (++this.#idle > this.#idleLimit) this.#dropOldestIdle();
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  clear(): void {
    this.#map.clear();
    this.#idle = 0;
  }

  #dropOldestIdle(): void {
    // More idle entries than the limit (≥ 1) are counted, so one is met before the map runs out.
    for (;;) {
      const [key, value] = this.#oldest.shift(this.#map)!;
      if (this.#isIdle(value)) {
        this.#idle--;
        return;
      }
      this.#map.set(key, value);
    }
  }
}
