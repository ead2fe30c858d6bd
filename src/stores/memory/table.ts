/**
 * MemoryStore's records: Maps from stored key to packed record string, in two generations of recency
 * (see RecordTable), bounded by an estimate of the heap bytes they hold (evicting least recently used).
 * No per-entry wrapper: an entry's size is computed again from its two strings when it leaves.
 * @module
 */
import { storedKeyBytes } from './keys.js';
import { OldestFirst } from '../../core/oldest-first.js';

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

/**
 * Entries in two generations, so that a read of a recently used entry moves nothing: `young` holds
 * what was written or used since the last flip, `old` the rest, each Map in the order its entries
 * arrived. A use moves an entry from `old` to `young`; a use of an entry already in `young` only
 * looks it up. The bound evicts from the head of `old`. When `old` runs empty and `young` holds more
 * than half the bound, the generations flip (`young` becomes `old`, and a new `young` begins).
 *
 * This is LRU to the resolution of one generation, as in quick-lru: every entry used since the last
 * flip outlives every entry that was not. Moving each used entry to the end of one Map (an exact LRU)
 * cost a delete and an insert per read, and the holes those leave made every lookup dearer: ≈ 0.9 µs
 * per read of the Fastify bench (bench/analysis.md item 25).
 */
export class RecordTable {
  readonly maxBytes: number;
  #young = new Map<string, string>();
  #old = new Map<string, string>();
  readonly #oldest = new OldestFirst<string, string>();
  readonly #onEvict: (storedKey: string, value: string) => void;
  #bytes = 0;
  #youngBytes = 0;
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
    return this.#young.size + this.#old.size;
  }

  /** The value, without touching recency. */
  peek(storedKey: string): string | undefined {
    return this.#young.get(storedKey) ?? this.#old.get(storedKey);
  }

  /** The value, marked as recently used. */
  use(storedKey: string): string | undefined {
    const young = this.#young.get(storedKey);
    if (young !== undefined) return young;
    const value = this.#old.get(storedKey);
    if (value === undefined) return undefined;
    this.#old.delete(storedKey);
    this.#young.set(storedKey, value);
    this.#youngBytes += entryBytes(storedKey, value);
    this.#flipWhenDue();
    return value;
  }

  /**
   * Stores `value` as recently used, replacing any entry under the key, then evicts the oldest
   * entries until the bound holds (the new one too, if it is left alone and still too big). An entry
   * of the younger generation is replaced where it stands, as `use` leaves it where it stands: a
   * delete and an insert would leave a hole in the Map on every write of a session.
   */
  put(storedKey: string, value: string): void {
    const young = this.#young.get(storedKey);
    if (young !== undefined) {
      const change = value.length - young.length;
      this.#young.set(storedKey, value);
      this.#bytes += change;
      this.#youngBytes += change;
    } else {
      const old = this.#old.get(storedKey);
      if (old !== undefined) {
        this.#old.delete(storedKey);
        this.#bytes -= entryBytes(storedKey, old);
      }
      const bytes = entryBytes(storedKey, value);
      this.#young.set(storedKey, value);
      this.#bytes += bytes;
      this.#youngBytes += bytes;
    }
    while (this.#bytes > this.maxBytes) {
      if (this.#old.size === 0) {
        // The flip makes the younger generation the one evicted from, in its order: the entry just
        // written, maybe replaced where it stood, goes last first, so that it is the last evicted.
        if (this.#young.delete(storedKey)) this.#young.set(storedKey, value);
        this.#flip();
      }
      const oldest = this.#oldest.shift(this.#old);
      if (oldest === undefined) break;
      const [k, v] = oldest;
      this.#bytes -= entryBytes(k, v);
      this.evictions++;
      this.#onEvict(k, v);
    }
    this.#flipWhenDue();
  }

  /**
   * Puts `value` in place of the key's value, its recency left as it is; the caller makes it no longer
   * than the value it replaces (as coding a record does), so the bound still holds.
   */
  replace(storedKey: string, value: string): void {
    const young = this.#young.get(storedKey);
    const previous = young ?? this.#old.get(storedKey);
    if (previous === undefined) return;
    const change = value.length - previous.length;
    if (young !== undefined) {
      this.#young.set(storedKey, value);
      this.#youngBytes += change;
    } else {
      this.#old.set(storedKey, value);
    }
    this.#bytes += change;
  }

  /** Removes the key; returns whether it was there. */
  delete(storedKey: string): boolean {
    const young = this.#young.get(storedKey);
    const value = young ?? this.#old.get(storedKey);
    if (value === undefined) return false;
    const bytes = entryBytes(storedKey, value);
    this.#bytes -= bytes;
    if (young !== undefined) {
      this.#young.delete(storedKey);
      this.#youngBytes -= bytes;
    } else {
      this.#old.delete(storedKey);
    }
    return true;
  }

  clear(): void {
    this.#young.clear();
    this.#old.clear();
    this.#bytes = 0;
    this.#youngBytes = 0;
  }

  /** Least recently used first (to a generation's resolution); safe to `delete` the current key while iterating. */
  *keys(): IterableIterator<string> {
    yield* this.#old.keys();
    yield* this.#young.keys();
  }

  /** Every key, copied: spreading the maps themselves is several times faster than the `keys()` generator. */
  keyList(): string[] {
    return [...this.#old.keys(), ...this.#young.keys()];
  }

  /**
   * Every entry, older generation first. Both generations are taken when the walk begins: a walk that
   * spans turns of the event loop (a sweep) may see the generations flip, once the older one has
   * emptied, and must then still visit the one that was younger, not the new one begun empty.
   */
  *entries(): IterableIterator<[string, string]> {
    const old = this.#old;
    const young = this.#young;
    yield* old.entries();
    yield* young.entries();
  }

  #flipWhenDue(): void {
    if (this.#old.size === 0 && this.#youngBytes > this.maxBytes / 2) this.#flip();
  }

  #flip(): void {
    this.#old = this.#young;
    this.#young = new Map();
    this.#youngBytes = 0;
  }
}
