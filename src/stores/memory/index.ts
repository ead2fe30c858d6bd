/**
 * MemoryStore: an in-process store bounded by bytes (LRU eviction) with TTL expiry and a user index.
 *
 * For tests and single-process use: everything is lost when the process ends. Records are kept as
 * strings and copied out on read, so callers cannot alias stored state, exactly as with a remote store.
 * @module
 */
import { OptionsInvalidError, StoreClosedError } from '../../core/errors.js';
import { systemClock, assertNextVersion, isExpired, stampOf } from '../../core/store.js';
import type { Clock, DestroyByUserOptions, SessionRecord, SessionStore, SetResult } from '../../core/store.js';
import { checkOptions } from '../../core/options-check.js';
import { ByteLru, recordBytes } from '../lru.js';

export interface MemoryStoreOptions {
  /** Upper bound on the bytes held (keys + data + bookkeeping, estimated). @default 64 MiB */
  maxBytes?: number;
  /** How often expired records are swept, in ms; 0 disables the timer. @default 60_000 */
  sweepIntervalMs?: number;
  clock?: Clock;
}

export const MEMORY_STORE_DEFAULTS = { maxBytes: 64 * 1024 * 1024, sweepIntervalMs: 60_000 } as const;

class Entry {
  constructor(
    public data: string,
    public version: number,
    public userId: string | null,
    public createdAt: number,
    public lastSeenAt: number,
    public expiresAt: number,
    public absoluteExpiresAt: number,
  ) {}
}

export class MemoryStore implements SessionStore {
  readonly name = 'memory';
  readonly #clock: Clock;
  readonly #entries: ByteLru<Entry>;
  readonly #byUser = new Map<string, Set<string>>();
  readonly #listeners = new Set<(key: string, stamp?: string) => void>();
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    checkOptions('MemoryStore', options, {
      maxBytes: 'positiveInteger',
      sweepIntervalMs: 'nonNegativeInteger',
      clock: 'clock',
    });
    this.#entries = new ByteLru(options.maxBytes ?? MEMORY_STORE_DEFAULTS.maxBytes, (key, entry) => {
      this.#unindex(key, entry);
      this.#notify(key);
    });
    this.#clock = options.clock ?? systemClock;
    const interval = options.sweepIntervalMs ?? MEMORY_STORE_DEFAULTS.sweepIntervalMs;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.sweep(), interval);
      this.#timer.unref();
    }
  }

  /** Bytes currently accounted for; never above `maxBytes`. */
  get bytes(): number {
    return this.#entries.bytes;
  }

  /** Records pushed out by the byte bound (not by expiry). */
  get evictions(): number {
    return this.#entries.evictions;
  }

  async get(key: string): Promise<SessionRecord | null> {
    this.#open();
    const entry = this.#live(key);
    if (!entry) return null;
    this.#entries.get(key); // marks it most recently used
    return toRecord(key, entry);
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    const current = this.#live(record.key);
    const currentVersion = current ? current.version : 0;
    if (currentVersion !== expectedVersion) return { ok: false, current: currentVersion };
    const size = recordBytes(record.key, record.data, record.userId);
    const max = this.#entries.maxBytes;
    if (size > max) throw new OptionsInvalidError(`MemoryStore options.maxBytes (${max}) is smaller than one record (${size} bytes)`);
    if (current) this.#remove(record.key, current);
    const entry = new Entry(record.data, record.version, record.userId, record.createdAt, record.lastSeenAt,
      record.expiresAt, record.absoluteExpiresAt);
    if (record.userId !== null) this.#index(record.userId, record.key);
    this.#entries.set(record.key, entry, size);
    this.#notify(record.key, stampOf(record));
    return { ok: true };
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number): Promise<boolean> {
    this.#open();
    const entry = this.#live(key);
    if (!entry) return false;
    entry.expiresAt = expiresAt;
    entry.lastSeenAt = lastSeenAt;
    this.#notify(key, stampOf(entry));
    return true;
  }

  async destroy(key: string): Promise<void> {
    this.#open();
    const entry = this.#entries.peek(key);
    if (entry) {
      this.#remove(key, entry);
      this.#notify(key);
    }
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    const keys = this.#byUser.get(userId);
    if (!keys) return [];
    const out: SessionRecord[] = [];
    for (const key of [...keys]) {
      const entry = this.#live(key);
      if (entry) out.push(toRecord(key, entry));
    }
    return out;
  }

  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    this.#open();
    const keys = this.#byUser.get(userId);
    if (!keys) return 0;
    const keep = new Set(options.except ?? []);
    let removed = 0;
    for (const key of [...keys]) {
      if (keep.has(key)) continue;
      const entry = this.#entries.peek(key);
      if (!entry) continue;
      if (!isExpired(entry, this.#clock.now())) removed++;
      this.#remove(key, entry);
      this.#notify(key);
    }
    return removed;
  }

  async sweep(): Promise<number> {
    if (this.#closed) return 0;
    const now = this.#clock.now();
    let removed = 0;
    for (const [key, entry] of this.#entries.entries()) {
      if (isExpired(entry, now)) {
        this.#remove(key, entry);
        removed++;
      }
    }
    return removed;
  }

  async count(): Promise<number> {
    this.#open();
    return this.#entries.size;
  }

  /** Reports each set and touch with its stamp, each removal (destroy, eviction) without; see SessionStore.subscribe. */
  subscribe(listener: (key: string, stamp?: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#entries.clear();
    this.#byUser.clear();
    this.#listeners.clear();
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError('MemoryStore');
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.peek(key);
    if (!entry) return undefined;
    if (isExpired(entry, this.#clock.now())) {
      this.#remove(key, entry);
      return undefined;
    }
    return entry;
  }

  #index(userId: string, key: string): void {
    let keys = this.#byUser.get(userId);
    if (!keys) this.#byUser.set(userId, (keys = new Set()));
    keys.add(key);
  }

  #remove(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#unindex(key, entry);
  }

  #unindex(key: string, entry: Entry): void {
    if (entry.userId !== null) {
      const keys = this.#byUser.get(entry.userId);
      keys?.delete(key);
      if (keys && keys.size === 0) this.#byUser.delete(entry.userId);
    }
  }

  #notify(key: string, stamp?: string): void {
    for (const listener of this.#listeners) listener(key, stamp);
  }
}

function toRecord(key: string, e: Entry): SessionRecord {
  return {
    key,
    data: e.data,
    version: e.version,
    userId: e.userId,
    createdAt: e.createdAt,
    lastSeenAt: e.lastSeenAt,
    expiresAt: e.expiresAt,
    absoluteExpiresAt: e.absoluteExpiresAt,
  };
}
