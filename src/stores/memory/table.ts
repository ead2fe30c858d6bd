/**
 * MemoryStore's records: one Map from stored key to packed record string, whose insertion order is the
 * recency order, bounded by an estimate of the heap bytes it holds (evicting least recently used).
 * No per-entry wrapper: an entry's size is computed again from its two strings when it leaves.
 * @module
 */
import { storedKeyBytes } from './keys.js';

/**
 * Estimated heap bytes of one entry beyond its characters: two string headers (16 bytes each, plus
 * rounding to 8) and the Map's slot (3 words, its bucket share, and the free slots of a table that
 * doubles). Measured on Node 20 x64 (bench/lib/memory-probe.ts): 100,000 engine sessions of
 * 207-character data take 253–255 heap bytes each, which this estimate puts at 258.
 */
export const ENTRY_OVERHEAD_BYTES = 80;

/** Estimated heap bytes of one entry; `value` holds one byte per character by construction. */
export function entryBytes(storedKey: string, value: string): number {
  return ENTRY_OVERHEAD_BYTES + storedKeyBytes(storedKey) + value.length;
}

export class RecordTable {
  readonly maxBytes: number;
  /** Insertion order is recency order: `bump` and `put` move the key to the end. */
  readonly #map = new Map<string, string>();
  readonly #onEvict: (storedKey: string, value: string) => void;
  #bytes = 0;
  /** Entries pushed out by the byte bound (not removed by `delete`). */
  evictions = 0;

  /** `onEvict` runs for each entry the bound pushes out, after it was removed. */
  constructor(maxBytes: number, onEvict: (storedKey: string, value: string) => void) {
    this.maxBytes = maxBytes;
    this.#onEvict = onEvict;
  }

  /** Bytes accounted for; never above `maxBytes` once a `put` returned. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value, without touching recency. */
  peek(storedKey: string): string | undefined {
    return this.#map.get(storedKey);
  }

  /** Marks the entry holding `value` (from `peek`) as most recently used. */
  bump(storedKey: string, value: string): void {
    this.#map.delete(storedKey);
    this.#map.set(storedKey, value);
  }

  /**
   * Stores `value` as most recently used, replacing any entry under the key, then evicts the oldest
   * entries until the bound holds (the new one too, if it is left alone and still too big).
   */
  put(storedKey: string, value: string): void {
    this.delete(storedKey);
    this.#map.set(storedKey, value);
    this.#bytes += entryBytes(storedKey, value);
    while (this.#bytes > this.maxBytes) {
      const oldest = this.#map.entries().next();
      if (oldest.done) break;
      const [k, v] = oldest.value;
      this.#map.delete(k);
      this.#bytes -= entryBytes(k, v);
      this.evictions++;
      this.#onEvict(k, v);
    }
  }

  /** Removes the key; returns whether it was there. */
  delete(storedKey: string): boolean {
    const value = this.#map.get(storedKey);
    if (value === undefined) return false;
    this.#map.delete(storedKey);
    this.#bytes -= entryBytes(storedKey, value);
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  /** Oldest first; safe to `delete` the current key while iterating. */
  entries(): IterableIterator<[string, string]> {
    return this.#map.entries();
  }
}
