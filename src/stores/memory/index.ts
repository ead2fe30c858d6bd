/**
 * MemoryStore: an in-process store bounded by bytes (LRU eviction) with TTL expiry and a user index.
 *
 * For tests and single-process use: everything is lost when the process ends. Each record is kept as
 * one packed string (layout.ts) under its key in compact form (keys.ts), and unpacked into a new
 * object on every read, so callers cannot alias stored state, exactly as with a remote store.
 * @module
 */
import { OptionsInvalidError, StoreClosedError } from '../../core/errors.js';
import { systemClock, assertNextVersion, assertRegeneration, countMargin, idCollision, isExpired, nextTurn, stampOf, SweptListeners } from '../../core/store.js';
import type { Clock, CountOptions, DeletedRecord, DestroyAllOptions, DestroyByUserOptions, LocalSlot, SessionRecord, SessionStore, SetResult, SweptListener } from '../../core/store.js';
import { checkOptions } from '../../core/options-check.js';
import { isMoved } from '../../core/renewal.js';
import { fromStoredKey, isSessionStoredKey, knownStoredKey, toStoredKey } from './keys.js';
import { RecordPacker, readHead } from './layout.js';
import type { Head } from './layout.js';
import { RecordTable, entryBytes } from './table.js';

export interface MemoryStoreOptions {
  /** Upper bound on the bytes held (keys + data + bookkeeping, estimated). @default 64 MiB */
  maxBytes?: number;
  /** How often expired records are swept, in ms; 0 disables the timer. @default 60_000 */
  sweepIntervalMs?: number;
  clock?: Clock;
}

export const MEMORY_STORE_DEFAULTS = { maxBytes: 64 * 1024 * 1024, sweepIntervalMs: 60_000 } as const;

/**
 * How long a sweep works before it lets the event loop run, in ms (the clock read every SWEEP_CHECK
 * records): looking through 100,000 records in one go took ≈ 40–55 ms, and dropping 100,000 ≈ 160, and
 * every request of the process waited for that.
 */
const SWEEP_SLICE_MS = 2;
const SWEEP_CHECK = 256;

export class MemoryStore implements SessionStore, AsyncDisposable {
  readonly name = 'memory';
  readonly #clock: Clock;
  readonly #records: RecordTable;
  readonly #packer = new RecordPacker();
  /** Owner → stored keys of their records; anonymous records are not listed. */
  readonly #byUser = new Map<string, Set<string>>();
  readonly #listeners = new Set<(key: string, stamp?: string) => void>();
  readonly #swept = new SweptListeners();
  /** Expired records a read or write found and dropped this turn, reported at its end (`#lapse`). */
  #lapsed: DeletedRecord[] = [];
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    checkOptions('MemoryStore', options, {
      maxBytes: 'positiveInteger',
      sweepIntervalMs: 'timerMsOrZero',
      clock: 'clock',
    });
    this.#records = new RecordTable(options.maxBytes ?? MEMORY_STORE_DEFAULTS.maxBytes, (stored, value) => {
      this.#unindex(stored, readHead(value));
      this.#notify(fromStoredKey(stored));
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
    return this.#records.bytes;
  }

  /** Records pushed out by the byte bound (not by expiry). */
  get evictions(): number {
    return this.#records.evictions;
  }

  async get(key: string): Promise<SessionRecord | null> {
    return this.getLocal(key);
  }

  /** `get` without the promise: everything is in memory. */
  getLocal(key: string, slot?: LocalSlot): SessionRecord | null {
    this.#open();
    const held = this.#packer.held(slot);
    let stored: string;
    if (held === undefined) stored = toStoredKey(key);
    else knownStoredKey(key, (stored = held.stored));
    const value = this.#records.use(stored);
    if (value === undefined) return null;
    const shared = this.#packer.shared(held, value, this.#clock.now());
    if (shared !== undefined) return shared;
    const head = this.#live(stored, value);
    return head ? this.#packer.record(key, stored, value, head, slot) : null;
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    const stored = toStoredKey(record.key);
    return this.#put(record, stored, expectedVersion, this.#packed(record, stored));
  }

  /**
   * A login's two writes at once (see SessionStore.regenerate): nothing runs between them in this
   * process, and every check that could fail (the new key free, the new record's size, the old
   * record's version) is made before either is written, so it is all or nothing.
   */
  async regenerate(ended: SessionRecord, expectedVersion: number, created: SessionRecord): Promise<SetResult> {
    this.#open();
    assertRegeneration(ended, expectedVersion, created);
    const fresh = toStoredKey(created.key);
    const value = this.#records.peek(fresh);
    if (value !== undefined && this.#live(fresh, value)) throw idCollision();
    const packed = this.#packed(created, fresh);
    const old = toStoredKey(ended.key);
    const res = this.#put(ended, old, expectedVersion, this.#packed(ended, old));
    return res.ok ? this.#put(created, fresh, 0, packed) : res;
  }

  /** The record packed for the table (null when it is written already past a deadline), its size checked against the bound. */
  #packed(record: SessionRecord, stored: string): string | null {
    // Written already past a deadline (how the engine ends a regenerated record): nothing to keep.
    if (isExpired(record, this.#clock.now())) return null;
    const max = this.#records.maxBytes;
    // Coded later (WRITE_BEHIND), unless only the coded form fits the bound.
    let packed = this.#packer.pack(record, record.key, true);
    let size = entryBytes(stored, packed);
    if (size > max) {
      packed = this.#packer.pack(record, record.key);
      size = entryBytes(stored, packed);
    }
    if (size > max) throw new OptionsInvalidError(`MemoryStore options.maxBytes (${max}) is smaller than one record (${size} bytes)`);
    return packed;
  }

  /** The compare-and-set of `set` under the record's stored key, with the record already packed (`#packed`). */
  #put(record: SessionRecord, stored: string, expectedVersion: number, packed: string | null): SetResult {
    const value = this.#records.peek(stored);
    const current = value === undefined ? null : this.#live(stored, value);
    const currentVersion = current ? current.version : 0;
    if (currentVersion !== expectedVersion) return { ok: false, current: currentVersion };
    if (packed === null) {
      if (current) {
        this.#remove(stored, current);
        this.#notify(record.key);
      }
      return { ok: true };
    }
    // Replaced in place (RecordTable.put); the owner's index changes only with the owner.
    if (current && current.userId !== record.userId) this.#unindex(stored, current);
    if (record.userId !== null) this.#index(record.userId, stored);
    this.#records.put(stored, packed);
    this.#packer.kept(this.#records, stored, packed);
    this.#notify(record.key, stampOf(record));
    return { ok: true };
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean> {
    this.#open();
    const stored = toStoredKey(key);
    const value = this.#records.peek(stored);
    const head = value === undefined ? null : this.#live(stored, value);
    if (!head || (version !== undefined && head.version !== version)) return false;
    // A touch is a use: the record also becomes the most recently used.
    const packed = this.#packer.touched(value!, head, expiresAt, lastSeenAt, key);
    this.#records.put(stored, packed);
    this.#packer.kept(this.#records, stored, packed);
    this.#notify(key, stampOf({ version: head.version, expiresAt }));
    return true;
  }

  async destroy(key: string): Promise<void> {
    this.#open();
    const stored = toStoredKey(key);
    const value = this.#records.peek(stored);
    if (value !== undefined) {
      this.#remove(stored, readHead(value));
      this.#notify(key);
    }
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    const keys = this.#byUser.get(userId);
    if (!keys) return [];
    const out: SessionRecord[] = [];
    for (const stored of [...keys]) {
      const value = this.#records.peek(stored);
      const head = value === undefined ? null : this.#live(stored, value);
      if (head) out.push(this.#packer.record(fromStoredKey(stored), stored, value!, head));
    }
    return out;
  }

  /** Counts, of the sessions removed, those live by more than `marginMs` (see SessionStore.destroyByUser). */
  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    this.#open();
    const margin = countMargin(options, 'destroyByUser');
    const keys = this.#byUser.get(userId);
    if (!keys) return 0;
    const keep = new Set((options.except ?? []).map(toStoredKey));
    const after = this.#clock.now() + margin;
    let removed = 0;
    for (const stored of [...keys]) {
      if (keep.has(stored)) continue;
      const value = this.#records.peek(stored);
      if (value === undefined) continue;
      const head = readHead(value);
      if (!isExpired(head, after)) removed++;
      this.#remove(stored, head);
      this.#notify(fromStoredKey(stored));
    }
    return removed;
  }

  /**
   * Ends every session (see SessionStore.destroyAll); user contexts stay. It removes the sessions held
   * when it was called: it copies the table's keys, then looks each up and removes it in slices of about
   * SWEEP_SLICE_MS with a turn of the event loop between two, as `sweep` does. A session created
   * meanwhile is kept, so steady creation cannot keep it going; one written meanwhile is removed whole
   * at its turn, or was already. Copied keys rather than an iterator over the table: a read moves a
   * record to the younger generation, and once the generations flip during the walk (this empties the
   * older one), a record moved so would be missed. The copy is the one step not sliced, about a tenth
   * of what removing 100,000 sessions in one go took. Returns how many of the sessions removed were
   * live by the store clock when it was called, by more than `marginMs` (see SessionStore.destroyAll).
   * Closed midway, it rejects with STORE_CLOSED, as SqliteStore does; what it removed stays removed.
   */
  async destroyAll(options?: DestroyAllOptions): Promise<number> {
    this.#open();
    // Sessions live past this are counted: now, plus the margin.
    const after = this.#clock.now() + countMargin(options, 'destroyAll');
    let removed = 0;
    await this.#inSlices(this.#records.keyList(), (stored) => {
      if (!isSessionStoredKey(stored)) return;
      const value = this.#records.peek(stored);
      if (value === undefined) return;
      const head = readHead(value);
      if (this.#counts(value, head, after)) removed++;
      this.#remove(stored, head);
      this.#notify(fromStoredKey(stored));
    });
    // Closed meanwhile: not every session ended, so no count to report.
    this.#open();
    return removed;
  }

  /**
   * Drops the records past a deadline as of the call, in slices of about SWEEP_SLICE_MS with a turn of
   * the event loop between two; each slice's timed-out sessions go to the `onSwept` listeners before the
   * next. A record written meanwhile may be looked at or not: it is new, so not due.
   */
  async sweep(): Promise<number> {
    if (this.#closed) return 0;
    const now = this.#clock.now();
    let swept: DeletedRecord[] = [];
    let removed = 0;
    const report = (): void => {
      if (swept.length === 0) return;
      this.#swept.report(swept);
      swept = [];
    };
    await this.#inSlices(this.#records.entries(), ([stored, value]) => {
      const head = readHead(value);
      if (!isExpired(head, now)) return;
      if (this.#swept.active) swept.push(deleted(stored, head));
      this.#remove(stored, head);
      removed++;
    }, report);
    report();
    return removed;
  }

  /**
   * Calls `each` on every item, in slices of about SWEEP_SLICE_MS (the clock read every SWEEP_CHECK
   * items) with a turn of the event loop between two, `pause` called before each turn. Stops when the
   * store was closed during a turn: the items left are not visited.
   */
  async #inSlices<T>(items: Iterable<T>, each: (item: T) => void, pause?: () => void): Promise<void> {
    let seen = 0;
    let sliceStart = performance.now();
    for (const item of items) {
      each(item);
      if (++seen % SWEEP_CHECK !== 0 || performance.now() - sliceStart < SWEEP_SLICE_MS) continue;
      pause?.();
      await nextTurn();
      if (this.#closed) return;
      sliceStart = performance.now();
    }
  }

  /**
   * Reports the sessions each sweep drops because they timed out (see SessionStore.onSwept), and those a
   * read or write meets past their deadline and drops, at the end of that turn: a store with a
   * backend keeps such a record until its sweep.
   */
  onSwept(listener: SweptListener): () => void {
    return this.#swept.add(listener);
  }

  /**
   * The live sessions held, user contexts not counted: one pass over the table. One past its deadline
   * is left out, as the other stores leave it out, though it stays held until the sweep drops it (a
   * count that included it would turn new visitors away under `newSessions.maxActive`). A renewal's
   * pointer is left out too: its session is counted under its new ID. With `marginMs`, so is one whose
   * deadline is that close (see SessionStore.count).
   */
  async count(options?: CountOptions): Promise<number> {
    this.#open();
    const now = this.#clock.now() + countMargin(options);
    let n = 0;
    for (const [stored, value] of this.#records.entries()) {
      if (!isSessionStoredKey(stored)) continue;
      if (this.#counts(value, readHead(value), now)) n++;
    }
    return n;
  }

  /**
   * Whether the record stored as `value` is a live session at `now`: not past a deadline, and not a
   * renewal's pointer (the session's old name, counted under its new one). The data is read only for
   * the rare record whose header could be a pointer.
   */
  #counts(value: string, head: Head, now: number): boolean {
    if (isExpired(head, now)) return false;
    return !(head.userId === null && head.lastSeenAt === head.expiresAt && isMoved(this.#packer.data(value, head)));
  }

  /** Reports each set and touch with its stamp, each removal (destroy, eviction) without; see SessionStore.subscribe. */
  subscribe(listener: (key: string, stamp?: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** `close()`, for `await using store = new …Store(…)`: the store is closed when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#records.clear();
    this.#byUser.clear();
    this.#listeners.clear();
    this.#swept.clear();
    this.#lapsed = [];
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError('MemoryStore');
  }

  /** The header of the record `value` under `stored`, or null (and the record removed) once it expired. */
  #live(stored: string, value: string): Head | null {
    const head = readHead(value);
    if (isExpired(head, this.#clock.now())) {
      if (this.#swept.active) this.#lapse(stored, head);
      this.#remove(stored, head);
      return null;
    }
    return head;
  }

  /** Queues an expired record found outside a sweep for the report at the end of this turn. */
  #lapse(stored: string, head: Head): void {
    this.#lapsed.push(deleted(stored, head));
    if (this.#lapsed.length !== 1) return;
    setImmediate(() => {
      const lapsed = this.#lapsed;
      this.#lapsed = [];
      this.#swept.report(lapsed);
    });
  }

  #index(userId: string, stored: string): void {
    let keys = this.#byUser.get(userId);
    if (!keys) this.#byUser.set(userId, (keys = new Set()));
    keys.add(stored);
  }

  #remove(stored: string, head: Head): void {
    this.#records.delete(stored);
    this.#unindex(stored, head);
  }

  #unindex(stored: string, head: Head): void {
    if (head.userId !== null) {
      const keys = this.#byUser.get(head.userId);
      keys?.delete(stored);
      if (keys && keys.size === 0) this.#byUser.delete(head.userId);
    }
  }

  #notify(key: string, stamp?: string): void {
    for (const listener of this.#listeners) listener(key, stamp);
  }
}

/** What the swept-session report needs of a record dropped from the table. */
function deleted(stored: string, head: Head): DeletedRecord {
  return { key: fromStoredKey(stored), userId: head.userId, lastSeenAt: head.lastSeenAt, expiresAt: head.expiresAt, absoluteExpiresAt: head.absoluteExpiresAt };
}
