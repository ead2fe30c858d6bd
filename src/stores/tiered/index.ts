/**
 * TieredStore: a bytes-bounded local LRU of records in front of a shared store, written through and
 * invalidated by the shared store's change feed, so with sticky routing most reads never leave the process.
 *
 * Consistency: a `set` resolves only after the shared store acknowledged it. A read is served locally
 * only if the copy is unexpired by the clock, no change to the key has been reported since it was
 * cached, and the feed is receiving (`feedState`). With `consistency: 'fenced'` (the default when the
 * shared store has `fence()`: SQLite, Redis, PostgreSQL) a hit also waits for a fence sent after the
 * read began, so it never returns a copy older than a write another process had acknowledged before
 * the read. With 'eventual', another process's write reaches this cache as fast as the feed delivers it.
 *
 * The feed reports this tier's own writes too. A report stamped with the state of the copy held, or of
 * a set or touch this tier sent (echoes.ts), tells it nothing new (see SessionStore.subscribe) and is
 * ignored, so an acknowledged write leaves its copy in place and the next read is a hit.
 * @module
 */
import { OptionsInvalidError, StoreClosedError, isTetherError } from '../../core/errors.js';
import { assertNextVersion, isExpired, stampOf, systemClock, assertRegeneration, isSessionKey, wasUnsent } from '../../core/store.js';
import type { SharedLimiter } from '../../core/rate-limit.js';
import type { Clock, CountOptions, DestroyAllOptions, DestroyByUserOptions, LocalSlot, SessionRecord, SessionStore, SetResult, SweptListener } from '../../core/store.js';
import { checkOptions } from '../../core/options-check.js';
import { KeptMap } from '../../core/kept-map.js';
import { LocalCopies } from './local-copies.js';
import { Echoes } from './echoes.js';
import { Doubts } from './doubts.js';
import { FenceCoalescer } from './fence.js';
import { TIERED_STORE_DEFAULTS } from './options.js';
import type { TieredConsistency, TieredStats, TieredStoreOptions } from './options.js';

export { TIERED_STORE_DEFAULTS } from './options.js';
export type { SharedStoreExtras, TieredConsistency, TieredStats, TieredStoreOptions } from './options.js';

/** A write in flight: the copy to keep once it is acknowledged, and the key's generation when it was sent. */
interface Writing {
  copy: SessionRecord;
  /** The key's form in the local copies (converted once per write). */
  stored: string;
  g: Generation;
  stamp: string;
  seen: number;
}

/**
 * Generations with no fetch or write in flight kept at most, for their keys' next use: as many keys
 * as the local copies keep recent texts of (RECENT_TEXTS). Each costs ≈ 200 bytes with its key, a
 * fixed sum that a bytes-per-session figure carries too (4,096 of them added ≈ 6 bytes per session
 * to the tier's figure at 100,000 sessions).
 */
const IDLE_GENERATIONS = 1024;

/** A key's generation, bumped by every invalidation; read while a fetch or write of it is in flight. */
interface Generation {
  gen: number;
  users: number;
  /** This tier's sets and touches of the key in flight; while any is, no fetch of it is cached. */
  writes: number;
}

const isStore = (v: unknown): string | null => {
  const s = v as Partial<SessionStore> | null;
  return typeof s === 'object' && s !== null && typeof s.get === 'function' && typeof s.set === 'function'
    && typeof s.touch === 'function' && typeof s.destroy === 'function' && typeof s.close === 'function'
    ? null : 'a SessionStore';
};

export class TieredStore implements SessionStore, AsyncDisposable {
  readonly name = 'tiered';
  /** Passes through to the shared store's feed; absent when it has none. */
  readonly subscribe?: (listener: (key: string, stamp?: string) => void, options?: { onResync?: () => void }) => () => void;
  /** Passes through to the shared store, with its options; absent when it has none. */
  readonly count?: (options?: CountOptions) => Promise<number>;
  /** The shared store's one-step regeneration, with both local copies kept as `set` keeps one; absent when it has none. */
  readonly regenerate?: (ended: SessionRecord, expectedVersion: number, created: SessionRecord) => Promise<SetResult>;
  /**
   * Drops expired local copies, then runs the shared store's sweep and returns what it removed.
   * Absent when the shared store has none (it expires records itself); expired copies are then never
   * served and leave by the LRU bound.
   */
  readonly sweep?: () => Promise<number>;
  /**
   * The shared store's report of the sessions its sweeps delete (see SessionStore.onSwept), whether the
   * sweep runs through this tier or on the shared store's own timer; absent when it has none.
   */
  readonly onSwept?: (listener: SweptListener) => () => void;
  /** The shared store's `destroyAll`, this tier's copies of sessions dropped with it; absent when it has none. */
  readonly destroyAll?: (options?: DestroyAllOptions) => Promise<number>;
  /** The shared store's rate limiter (see SessionStore.limiter): its counts are every machine's; absent when it has none. */
  readonly limiter?: (name: string, limit: number, windowMs: number) => SharedLimiter;
  /** The consistency in force (the option, or its default for this shared store). */
  readonly consistency: TieredConsistency;
  readonly #shared: SessionStore;
  /** Decides when a local copy has expired: the option, else the shared store's clock, else the system's. */
  readonly clock: Clock;
  readonly #closeShared: boolean;
  readonly #lru: LocalCopies;
  /** Per-key generations; one with no users stays (kept-map.ts) until more than IDLE_GENERATIONS do. */
  readonly #gens = new KeptMap<string, Generation>(IDLE_GENERATIONS, (g) => g.users === 0);
  /** Stamps of own writes whose reports are awaited; absent without a feed. */
  readonly #echoes: Echoes | undefined;
  readonly #fence: FenceCoalescer | undefined;
  /** Writes of this tier that failed with their outcome unknown, and may still land unreported (doubts.ts). */
  readonly #doubts = new Doubts();
  readonly #unsubscribe: (() => void) | undefined;
  #hits = 0;
  #misses = 0;
  #invalidations = 0;
  #closed = false;

  constructor(options: TieredStoreOptions) {
    checkOptions('TieredStore', options, {
      shared: isStore,
      maxBytes: 'positiveInteger',
      clock: 'clock',
      singleProcess: 'boolean',
      closeShared: 'boolean',
      consistency: ['fenced', 'eventual'],
    });
    if (options?.shared === undefined) throw new OptionsInvalidError('TieredStore options.shared is required: the store every process shares');
    const shared = options.shared;
    const singleProcess = options.singleProcess ?? TIERED_STORE_DEFAULTS.singleProcess;
    if (typeof shared.subscribe !== 'function' && !singleProcess) {
      throw new OptionsInvalidError(`TieredStore options.shared (${shared.name}) has no change feed (subscribe), so writes by other `
        + 'processes could never reach this cache; use a store with one, or set options.singleProcess: true if only this process uses it');
    }
    this.#shared = shared;
    this.clock = options.clock ?? shared.clock ?? systemClock;
    this.#closeShared = options.closeShared ?? TIERED_STORE_DEFAULTS.closeShared;
    this.#lru = new LocalCopies(options.maxBytes ?? TIERED_STORE_DEFAULTS.maxBytes);
    const canFence = typeof shared.fence === 'function';
    this.consistency = options.consistency ?? (canFence ? 'fenced' : 'eventual');
    if (this.consistency === 'fenced') {
      if (!canFence) {
        throw new OptionsInvalidError(`TieredStore options.consistency 'fenced' needs a shared store with fence(), and ${shared.name} `
          + "has none; use consistency: 'eventual' (hits may trail another process's write by the feed's delivery delay)");
      }
      this.#fence = new FenceCoalescer(() => shared.fence!());
    }
    if (typeof shared.subscribe === 'function') {
      this.#echoes = new Echoes();
      this.#unsubscribe = shared.subscribe((key, stamp) => this.#reported(key, stamp), { onResync: () => this.#dropAll() });
      this.subscribe = (listener, opts) => {
        this.#open();
        return shared.subscribe!(listener, opts);
      };
    }
    // What passes straight through checks first that this tier is open: with closeShared false, the
    // shared store outlives it, and would answer a closed tier's calls.
    if (typeof shared.count === 'function') this.count = async (options) => {
      this.#open();
      return shared.count!(options);
    };
    if (typeof shared.regenerate === 'function') this.regenerate = (ended, version, created) => this.#regenerate(ended, version, created);
    if (typeof shared.sweep === 'function') this.sweep = () => this.#sweep(shared.sweep!.bind(shared));
    if (typeof shared.onSwept === 'function') this.onSwept = (listener) => {
      this.#open();
      return shared.onSwept!(listener);
    };
    if (typeof shared.destroyAll === 'function') this.destroyAll = (options) => this.#destroyAll(() => shared.destroyAll!(options));
    if (typeof shared.limiter === 'function') this.limiter = (name, limit, windowMs) => {
      this.#open();
      return shared.limiter!(name, limit, windowMs);
    };
  }

  /**
   * A hit that needs no fence (consistency 'eventual', or a store without one) while the feed is
   * listening: the local copy, with no promise. Anything else is left to `get`.
   */
  getLocal(key: string, slot?: LocalSlot): SessionRecord | undefined {
    this.#open();
    // The same test as #trusted(), without starting a fence.
    if (this.#fence) return undefined;
    const state = this.#shared.feedState;
    if (state !== undefined && state !== 'listening') return undefined;
    const local = this.#lru.live(key, this.clock.now(), slot);
    if (local !== undefined) this.#hits++;
    return local;
  }

  async get(key: string): Promise<SessionRecord | null> {
    this.#open();
    const stored = this.#lru.stored(key);
    const peeked = this.#lru.head(stored);
    if (peeked && isExpired(peeked, this.clock.now())) this.#lru.delete(stored);
    else if (peeked) {
      const trusted = this.#trusted();
      if (trusted === true || (trusted !== false && await trusted)) {
        // Looked up again: the fence may have delivered a report that dropped or replaced the copy.
        const local = this.#lru.live(key, this.clock.now(), undefined, stored);
        if (local !== undefined) {
          this.#hits++;
          return local;
        }
      }
    }
    this.#misses++;
    const g = this.#acquire(key);
    const seen = g.gen;
    try {
      const rec = await this.#shared.get(key);
      // Cache only if nothing touched the key meanwhile: a change reported during the fetch may be
      // newer than what the fetch read. Nor while a write of ours is in flight: its echo is ignored,
      // so it cannot tell us that the fetch read the state before it. Nor what a failed write of
      // ours may still change, unreported (doubts.ts).
      if (rec && g.gen === seen && g.writes === 0 && !this.#closed && (this.#doubts.none || this.#doubts.allows(rec))) this.#put(rec);
      else if (rec === null && !this.#doubts.none) this.#doubts.absent(key);
      return rec;
    } finally {
      this.#release(g);
    }
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    const w = this.#begin(record);
    let echo = false;
    try {
      const pending = this.#shared.set(record, expectedVersion);
      // A change reported after the call began, other than this write's echo, may be another writer's
      // newer version, and then this copy must not be kept. (Taken after the synchronous part of the
      // call, where a feed that does not stamp reports this write.)
      w.seen = w.g.gen;
      const res = await pending;
      this.#acknowledged(w, res);
      echo = res.ok;
      return res;
    } catch (err) {
      this.#invalidate(record.key, false, w.stored);
      if (outcomeUnknown(err)) this.#doubts.setFailed(record.key, record.version, expectedVersion);
      throw err;
    } finally {
      this.#finish(w, echo);
    }
  }

  /** Both records' copies kept as `set` keeps one, around the shared store's one-step regeneration. */
  async #regenerate(ended: SessionRecord, expectedVersion: number, created: SessionRecord): Promise<SetResult> {
    this.#open();
    assertRegeneration(ended, expectedVersion, created);
    const old = this.#begin(ended);
    const fresh = this.#begin(created);
    let echo = false;
    try {
      const pending = this.#shared.regenerate!(ended, expectedVersion, created);
      old.seen = old.g.gen;
      fresh.seen = fresh.g.gen;
      const res = await pending;
      this.#acknowledged(old, res);
      this.#acknowledged(fresh, res);
      echo = res.ok;
      return res;
    } catch (err) {
      this.#invalidate(ended.key, false, old.stored);
      this.#invalidate(created.key, false, fresh.stored);
      if (outcomeUnknown(err)) {
        this.#doubts.setFailed(ended.key, ended.version, expectedVersion);
        this.#doubts.setFailed(created.key, created.version, 0);
      }
      throw err;
    } finally {
      this.#finish(old, echo);
      this.#finish(fresh, echo);
    }
  }

  /**
   * A write of `record` begins: its echo is awaited until the write is answered. Fenced, its copy is
   * dropped: a read must not return the version before a write that the shared store may have applied
   * and another process read. With eventual reads the copy stays until the answer (a read while the
   * write is in flight may return either version), and the written one then replaces it in place.
   */
  #begin(record: SessionRecord): Writing {
    const g = this.#acquire(record.key);
    const stored = this.#lru.stored(record.key);
    if (this.#fence) this.#invalidate(record.key, false, stored, g);
    else g.gen++;
    const stamp = stampOf(record);
    this.#echoes?.expect(record.key, stamp);
    g.writes++;
    return { copy: { ...record }, stored, g, stamp, seen: 0 };
  }

  /** The write was answered: its copy is kept if it was written and no other change was reported meanwhile. */
  #acknowledged(w: Writing, res: SetResult): void {
    const clean = w.g.gen === w.seen;
    w.g.gen++; // fetches that began while this write was in flight may hold the old version
    if (res.ok && !this.#doubts.none) this.#doubts.written(w.copy.key);
    // A record written already expired (the old ID of a regenerated session) is gone from the
    // shared store too: nothing to keep.
    if (res.ok && clean && !this.#closed && !isExpired(w.copy, this.clock.now()) && (this.#doubts.none || this.#doubts.allows(w.copy))) this.#put(w.copy, w.stored);
    else this.#lru.delete(w.stored);
  }

  #finish(w: Writing, echo: boolean): void {
    if (!echo) this.#echoes?.forget(w.copy.key, w.stamp);
    w.g.writes--;
    this.#release(w.g);
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean> {
    this.#open();
    const g = this.#acquire(key);
    // Taken out first, and put back with the new deadline once acknowledged, if no other change was
    // reported meanwhile (this touch's echo carries the stamp expected here). A copy of another version
    // than the one to touch is not the record touched.
    const stored = this.#lru.stored(key);
    const held = this.#lru.record(stored, key);
    const local = held && (version === undefined || held.version === version) ? held : null;
    this.#invalidate(key, false, stored);
    const stamp = local ? stampOf({ version: local.version, expiresAt }) : undefined;
    if (stamp !== undefined) this.#echoes?.expect(key, stamp);
    g.writes++;
    let echo = false;
    try {
      const pending = this.#shared.touch(key, expiresAt, lastSeenAt, version);
      const seen = g.gen;
      const touched = await pending;
      const clean = g.gen === seen;
      g.gen++;
      const copy = local && touched && clean && !this.#closed ? { ...local, expiresAt, lastSeenAt } : null;
      if (copy && (this.#doubts.none || this.#doubts.allows(copy))) this.#put(copy, stored);
      echo = touched;
      return touched;
    } catch (err) {
      this.#invalidate(key, false, stored);
      if (outcomeUnknown(err)) this.#doubts.touchFailed(key, expiresAt, version);
      throw err;
    } finally {
      if (!echo && stamp !== undefined) this.#echoes?.forget(key, stamp);
      g.writes--;
      this.#release(g);
    }
  }

  async destroy(key: string): Promise<void> {
    this.#open();
    const g = this.#acquire(key);
    this.#invalidate(key, false);
    try {
      await this.#shared.destroy(key);
      if (!this.#doubts.none) this.#doubts.destroyed(key);
    } catch (err) {
      if (outcomeUnknown(err)) this.#doubts.destroyFailed(key);
      throw err;
    } finally {
      this.#invalidate(key, false);
      this.#release(g);
    }
  }

  /** Always from the shared store: the local cache holds no per-user index. */
  async listByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return this.#shared.listByUser(userId);
  }

  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    this.#open();
    try {
      const removed = await this.#shared.destroyByUser(userId, options);
      if (!this.#doubts.none) this.#doubts.userDestroyed(userId);
      return removed;
    } catch (err) {
      if (outcomeUnknown(err)) this.#doubts.userFailed(userId);
      throw err;
    } finally {
      // The feed reports each key too; this also covers a tier without one (singleProcess).
      const keep = new Set(options.except ?? []);
      for (const [key, stored, rec] of this.#lru.heads()) if (rec.userId === userId && !keep.has(key)) this.#lru.delete(stored);
      for (const g of this.#gens.values()) g.gen++;
    }
  }

  async #destroyAll(sharedDestroyAll: () => Promise<number>): Promise<number> {
    this.#open();
    try {
      const removed = await sharedDestroyAll();
      if (!this.#doubts.none) this.#doubts.allDestroyed();
      return removed;
    } catch (err) {
      if (outcomeUnknown(err)) this.#doubts.allFailed();
      throw err;
    } finally {
      // The feed reports each key too; this also covers a tier without one (singleProcess).
      for (const [key, stored] of this.#lru.heads()) if (isSessionKey(key)) this.#lru.delete(stored);
      for (const g of this.#gens.values()) g.gen++;
    }
  }

  async #sweep(sharedSweep: () => Promise<number>): Promise<number> {
    if (this.#closed) return 0;
    const now = this.clock.now();
    for (const [, stored, rec] of this.#lru.heads()) if (isExpired(rec, now)) this.#lru.delete(stored);
    return sharedSweep();
  }

  stats(): TieredStats {
    const reads = this.#hits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      invalidations: this.#invalidations,
      evictions: this.#lru.evictions,
      bytes: this.#lru.bytes,
      entries: this.#lru.size,
      hitRatio: reads === 0 ? 0 : this.#hits / reads,
      fences: this.#fence?.sent ?? 0,
    };
  }

  /** `close()`, for `await using store = new …Store(…)`: the store is closed when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#dropAll();
    if (this.#closeShared) await this.#shared.close();
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError('TieredStore');
  }

  /**
   * Whether a local copy may be served now: never while the feed is down (its copies may have missed
   * reports, until `onResync`); with 'fenced', once a fence sent after this call came back true.
   */
  #trusted(): boolean | Promise<boolean> {
    const state = this.#shared.feedState;
    if (state !== undefined && state !== 'listening') return false;
    return this.#fence ? this.#fence.wait() : true;
  }

  /** Keeps `rec` (`stored`: its key's form) unless a newer version of it is held. */
  #put(rec: SessionRecord, stored = this.#lru.stored(rec.key)): void {
    const current = this.#lru.head(stored);
    if (current && current.version > rec.version) return;
    this.#lru.set(rec, stored);
  }

  /**
   * A feed report: ignored when its stamp names a state this tier wrote (the write's echo, however late)
   * or the state of the copy it holds (see SessionStore.subscribe), otherwise an invalidation.
   */
  #reported(key: string, stamp: string | undefined): void {
    if (stamp !== undefined) {
      if (this.#echoes!.take(key, stamp)) return;
      const local = this.#lru.head(this.#lru.stored(key));
      if (local && stampOf(local) === stamp) return;
    }
    this.#invalidate(key, true);
  }

  /** Drops `key`'s copy (`stored`: its form, `g`: its generation, when the caller has them) and bumps its generation. */
  #invalidate(key: string, fromFeed: boolean, stored = this.#lru.stored(key), g = this.#gens.get(key)): void {
    if (g) g.gen++;
    if (this.#lru.delete(stored) && fromFeed) this.#invalidations++;
  }

  #dropAll(): void {
    this.#lru.clear();
    this.#echoes?.clear();
    for (const g of this.#gens.values()) g.gen++;
  }

  #acquire(key: string): Generation {
    let g = this.#gens.get(key);
    if (!g) this.#gens.set(key, (g = { gen: 0, users: 0, writes: 0 }));
    else if (g.users === 0) this.#gens.resume();
    g.users++;
    return g;
  }

  #release(g: Generation): void {
    if (--g.users === 0) this.#gens.rest();
  }
}

/**
 * Whether a write that threw may still have been applied, or apply later: any failure but those that
 * say nothing was written (a refused value, a regeneration onto a taken ID, a call on a closed store,
 * one the shared store never sent: `unsent`).
 */
function outcomeUnknown(err: unknown): boolean {
  if (wasUnsent(err)) return false;
  return !(isTetherError(err) && (err.code === 'STORE_REJECTED' || err.code === 'SESSION_CONFLICT' || err.code === 'STORE_CLOSED'));
}
