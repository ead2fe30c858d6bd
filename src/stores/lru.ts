/**
 * A map bounded by an estimated byte size, evicting the least recently used entries: the bound under
 * MemoryStore and TieredStore's local copies, so neither grows without limit under session flooding.
 * @module
 */

/** Estimated fixed cost of one entry beyond its strings: the entry object, Map slot, index slot. */
export const ENTRY_OVERHEAD_BYTES = 96;

/** The estimated size of one session record: UTF-16 strings at two bytes per code unit, plus overhead. */
export function recordBytes(key: string, data: string, userId: string | null): number {
  return ENTRY_OVERHEAD_BYTES + key.length * 2 + data.length * 2 + (userId?.length ?? 0) * 2;
}

export class ByteLru<V> {
  readonly maxBytes: number;
  /** Insertion order is recency order: `get` and `set` move the key to the end. */
  readonly #map = new Map<string, { value: V; size: number }>();
  readonly #onEvict: ((key: string, value: V) => void) | undefined;
  #bytes = 0;
  /** Entries pushed out by the byte bound (not removed by `delete`). */
  evictions = 0;

  /** `onEvict` runs for each entry the bound pushes out, after it was removed. */
  constructor(maxBytes: number, onEvict?: (key: string, value: V) => void) {
    this.maxBytes = maxBytes;
    this.#onEvict = onEvict;
  }

  /** Bytes accounted for; never above `maxBytes` once a `set` returned. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value, marked as most recently used. */
  get(key: string): V | undefined {
    const slot = this.#map.get(key);
    if (!slot) return undefined;
    this.#map.delete(key);
    this.#map.set(key, slot);
    return slot.value;
  }

  /** The value, without touching recency. */
  peek(key: string): V | undefined {
    return this.#map.get(key)?.value;
  }

  /**
   * Stores `value` as most recently used, replacing any entry under `key`, then evicts the oldest
   * entries until the bound holds. A value larger than the whole bound is not stored (returns false,
   * and the previous entry under `key` is gone).
   */
  set(key: string, value: V, size: number): boolean {
    this.delete(key);
    if (size > this.maxBytes) return false;
    this.#map.set(key, { value, size });
    this.#bytes += size;
    while (this.#bytes > this.maxBytes) {
      const oldest = this.#map.entries().next();
      if (oldest.done) break;
      const [k, slot] = oldest.value;
      this.#map.delete(k);
      this.#bytes -= slot.size;
      this.evictions++;
      this.#onEvict?.(k, slot.value);
    }
    return true;
  }

  /** Removes `key`; returns whether it was there. */
  delete(key: string): boolean {
    const slot = this.#map.get(key);
    if (!slot) return false;
    this.#map.delete(key);
    this.#bytes -= slot.size;
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  /** Oldest first; safe to `delete` the current key while iterating. */
  *entries(): IterableIterator<[string, V]> {
    for (const [key, slot] of this.#map) yield [key, slot.value];
  }
}
