/**
 * TieredStore's local copies, in MemoryStore's compact layout (src/stores/memory): one string per
 * record (binary key, packed numbers, data coded with the code this cache trains on its first
 * records) in a Map whose order is the recency order, bounded by estimated heap bytes. A copy costs
 * about 255 bytes for a ~200-byte session where a record object cost about 650, so the same
 * `maxBytes` holds two and a half times as many sessions; a hit pays for unpacking the copy.
 * @module
 */
import type { LocalSlot, SessionRecord } from '../../core/store.js';
import { isExpired } from '../../core/store.js';
import { fromStoredKey, knownStoredKey, toStoredKey } from '../memory/keys.js';
import { RecordPacker, readHead } from '../memory/layout.js';
import type { Head } from '../memory/layout.js';
import { RecordTable, entryBytes } from '../memory/table.js';

export class LocalCopies {
  readonly #table: RecordTable;
  readonly #packer = new RecordPacker();

  constructor(maxBytes: number) {
    this.#table = new RecordTable(maxBytes, () => {});
  }

  get size(): number {
    return this.#table.size;
  }

  get bytes(): number {
    return this.#table.bytes;
  }

  /** Copies pushed out by the byte bound. */
  get evictions(): number {
    return this.#table.evictions;
  }

  /** The form a key has in this cache; convert once where one call uses a key several times. */
  stored(key: string): string {
    return toStoredKey(key);
  }

  /** The copy's header fields (version, owner, deadlines) without unpacking its data. */
  head(stored: string): Head | undefined {
    const value = this.#table.peek(stored);
    return value === undefined ? undefined : readHead(value);
  }

  /** A new record object unpacked from the copy under `stored` (`key`'s form), its recency left as it is. */
  record(stored: string, key: string): SessionRecord | undefined {
    const value = this.#table.peek(stored);
    return value === undefined ? undefined : this.#packer.record(key, stored, value, readHead(value));
  }

  /**
   * `key`'s record if its copy is still live at `now`, marked as recently used; an expired copy is not
   * unpacked. `stored`: the key's form, when the caller has it. `slot`: see SessionStore.getLocal.
   */
  live(key: string, now: number, slot?: LocalSlot, stored?: string): SessionRecord | undefined {
    const held = this.#packer.held(slot);
    if (stored === undefined) {
      if (held === undefined) stored = toStoredKey(key);
      else knownStoredKey(key, (stored = held.stored));
    }
    const value = this.#table.use(stored);
    if (value === undefined) return undefined;
    const shared = this.#packer.shared(held, value, now);
    if (shared !== undefined) return shared;
    const head = readHead(value);
    return isExpired(head, now) ? undefined : this.#packer.record(key, stored, value, head, slot);
  }

  /** Keeps a copy of `rec` (replacing any); a record larger than the whole bound is not kept. */
  set(rec: SessionRecord, stored = toStoredKey(rec.key)): void {
    // Coded later (WRITE_BEHIND), unless only the coded form fits the bound.
    let packed = this.#packer.pack(rec, rec.key, true);
    if (entryBytes(stored, packed) > this.#table.maxBytes) {
      packed = this.#packer.pack(rec, rec.key);
      if (entryBytes(stored, packed) > this.#table.maxBytes) {
        this.#table.delete(stored);
        return;
      }
    }
    this.#table.put(stored, packed);
    this.#packer.kept(this.#table, stored, packed);
  }

  /** Drops the copy under `stored` (a key's form: see `stored`). */
  delete(stored: string): boolean {
    return this.#table.delete(stored);
  }

  clear(): void {
    this.#table.clear();
  }

  /**
   * Keys, their forms here and header fields of every copy, oldest first; a snapshot, so deleting
   * while iterating is safe.
   */
  heads(): Array<[key: string, stored: string, head: Head]> {
    return [...this.#table.entries()].map(([stored, value]) => [fromStoredKey(stored), stored, readHead(value)]);
  }
}
