/**
 * The oldest entry of a Map that serves as a bounded queue (insertion order), in constant amortised time.
 *
 * `map.keys().next()` starts at the front of V8's hash table and steps over every entry deleted there
 * since the table was last compacted. A cache that evicts its oldest entry on each insert deletes at
 * the front every time, so those holes pile up: with 10,000 entries each such call cost ≈ 6 µs, more
 * than the rest of a request. One iterator kept from call to call steps over each hole once, since
 * a Map's iterator is live (it skips entries deleted ahead of it and reaches those added after it).
 * The kept iterator may keep the tables the Map had before it last grew or shrank reachable, until
 * the next `shift` moves it on to the current one.
 * @module
 */
export class OldestFirst<K, V> {
  #map: Map<K, V> | undefined;
  #cursor: MapIterator<[K, V]> | undefined;

  /**
   * Removes the oldest entry of `map` and returns it, or undefined when `map` is empty. Every entry
   * the cursor has passed was removed by it, so what is left is ahead of it; a cursor that ran to the
   * end, or was made for another Map, is made again.
   */
  shift(map: Map<K, V>): [K, V] | undefined {
    if (map !== this.#map) {
      this.#map = map;
      this.#cursor = undefined;
    }
    for (;;) {
      this.#cursor ??= map.entries();
      const next = this.#cursor.next();
      if (!next.done) {
        map.delete(next.value[0]);
        return next.value;
      }
      this.#cursor = undefined;
      if (map.size === 0) return undefined;
    }
  }
}
