/**
 * `fromExpressSessionStore(store)`: runs Tether on an existing express-session store (connect-redis,
 * connect-mongo, express-session's MemoryStore…) so an app can switch middleware before it switches
 * stores, and reads the sessions express-session left there so they can be migrated one by one.
 *
 * What such a store cannot give (docs/migrating-from-express-session.md says it to users):
 * - compare-and-set is emulated with a lock in this process only: two processes can still interleave
 *   between the read and the write of one record (the window is one store round trip), and under
 *   `renewal` a logout in one racing a renewal in another can then leave the session under its new ID;
 * - a touch rewrites the whole record (express-session stores have no partial update), under the same lock;
 * - no per-user index: `listByUser`/`destroyByUser` scan `all()` (every session in the store), and
 *   reject when the store has no `all()`; `destroyAll` (present only with `all()`) ends express-session's
 *   own sessions there too, which a migration would otherwise adopt;
 * - no change feed, so a TieredStore in front of it is for one process only;
 * - durability is whatever the wrapped store gives, and its client's outage handling applies.
 * @module
 */
import { StoreClosedError, StoreUnavailableError } from '../../core/errors.js';
import { assertNextVersion, countMargin, deadlineOf, isExpired, isSessionKey, systemClock } from '../../core/store.js';
import type { Clock, CountOptions, DestroyAllOptions, DestroyByUserOptions, SessionRecord, SessionStore, SetResult } from '../../core/store.js';
import { checkOptions } from '../../core/options-check.js';
import { isPointer } from '../../core/renewal.js';

type Callback<T = unknown> = (err?: unknown, value?: T) => void;

/** Anything implementing express-session's Store (required: get, set, destroy). */
export interface ExpressSessionStoreLike {
  get(sid: string, callback: (err: unknown, session?: unknown) => void): unknown;
  set(sid: string, session: unknown, callback?: (err?: unknown) => void): unknown;
  destroy(sid: string, callback?: (err?: unknown) => void): unknown;
  touch?(sid: string, session: unknown, callback?: (err?: unknown) => void): unknown;
  all?(callback: (err: unknown, sessions?: unknown) => void): unknown;
  length?(callback: (err: unknown, length?: number) => void): unknown;
}

export interface ExpressSessionStoreAdapterOptions {
  /** Prefix of the IDs under which Tether records are kept, apart from express-session's own. @default 'tether:' */
  prefix?: string;
  /** Bound on each call into the wrapped store, so a callback that never comes cannot hold a lock. @default 2000 */
  timeoutMs?: number;
  clock?: Clock;
}

export const EXPRESS_SESSION_STORE_DEFAULTS = { prefix: 'tether:', timeoutMs: 2_000 } as const;

/** How much longer than Tether's own deadline the wrapped store's TTL runs. */
const NATIVE_TTL_MARGIN_MS = 5_000;

/** Shape of a Tether record inside an express-session store: a session object whose `cookie.expires` drives the store's own TTL. */
interface Envelope {
  cookie: { originalMaxAge: number; maxAge: number; expires: string; httpOnly: true; path: '/' };
  tether: Omit<SessionRecord, 'key'> & { v: 1 };
}

function decode(key: string, raw: unknown): SessionRecord | null {
  const obj = typeof raw === 'string' ? safeParse(raw) : raw;
  const t = (obj as Partial<Envelope> | null)?.tether as Partial<Envelope['tether']> | undefined;
  if (!t || t.v !== 1 || typeof t.data !== 'string' || typeof t.version !== 'number' || typeof t.createdAt !== 'number'
    || typeof t.lastSeenAt !== 'number' || typeof t.expiresAt !== 'number' || typeof t.absoluteExpiresAt !== 'number'
    || (t.userId !== null && typeof t.userId !== 'string')) return null;
  return {
    key, data: t.data, version: t.version, userId: t.userId, createdAt: t.createdAt, lastSeenAt: t.lastSeenAt,
    expiresAt: t.expiresAt, absoluteExpiresAt: t.absoluteExpiresAt,
  };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A SessionStore over an express-session store, plus read access to express-session's own sessions. */
export class ExpressSessionStoreAdapter implements SessionStore, AsyncDisposable {
  readonly name: string;
  /** The wrapped express-session store. */
  readonly legacy: ExpressSessionStoreLike;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #locks = new Map<string, Promise<void>>();
  #closed = false;
  /** Present only when the wrapped store has `all()`. */
  readonly count?: (options?: CountOptions) => Promise<number>;
  readonly sweep?: () => Promise<number>;
  readonly destroyAll?: (options?: DestroyAllOptions) => Promise<number>;

  constructor(store: ExpressSessionStoreLike, options: ExpressSessionStoreAdapterOptions = {}) {
    if (typeof store !== 'object' || store === null || typeof store.get !== 'function' || typeof store.set !== 'function'
      || typeof store.destroy !== 'function') {
      throw new TypeError('fromExpressSessionStore(store): store must implement get, set and destroy (express-session Store)');
    }
    checkOptions('fromExpressSessionStore', options, { prefix: 'nonEmptyString', timeoutMs: 'timerMs', clock: 'clock' });
    this.legacy = store;
    this.name = `express-session:${(store as { constructor?: { name?: string } }).constructor?.name || 'store'}`;
    this.#prefix = options.prefix ?? EXPRESS_SESSION_STORE_DEFAULTS.prefix;
    this.#timeoutMs = options.timeoutMs ?? EXPRESS_SESSION_STORE_DEFAULTS.timeoutMs;
    this.#clock = options.clock ?? systemClock;
    if (typeof store.all === 'function') {
      // A renewal's pointer is the session's old name, counted under its new key; with `marginMs`, a
      // session within that of its deadline is left out too (see SessionStore.count).
      this.count = async (options) => {
        const after = this.#clock.now() + countMargin(options);
        return (await this.#ours()).filter((r) => isSessionKey(r.key) && !isPointer(r) && !isExpired(r, after)).length;
      };
      this.sweep = async () => this.#sweep();
      this.destroyAll = async (options) => this.#destroyAll(options);
    }
  }

  async get(key: string): Promise<SessionRecord | null> {
    this.#open();
    return this.#read(key);
  }

  async set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    this.#open();
    assertNextVersion(record, expectedVersion);
    return this.#locked(record.key, async () => {
      const current = await this.#read(record.key);
      const version = current ? current.version : 0;
      if (version !== expectedVersion) return { ok: false, current: version };
      await this.#write(record);
      return { ok: true };
    });
  }

  async touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean> {
    this.#open();
    return this.#locked(key, async () => {
      const current = await this.#read(key);
      if (!current || (version !== undefined && current.version !== version)) return false;
      await this.#write({ ...current, expiresAt, lastSeenAt });
      return true;
    });
  }

  async destroy(key: string): Promise<void> {
    this.#open();
    await this.#locked(key, () => this.#call<void>('destroy', (cb) => this.legacy.destroy(this.#prefix + key, cb)));
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    this.#open();
    return (await this.#ours()).filter((r) => r.userId === userId);
  }

  /** Counts, of the sessions removed, those live by more than `marginMs` (see SessionStore.destroyByUser). */
  async destroyByUser(userId: string, options: DestroyByUserOptions = {}): Promise<number> {
    this.#open();
    // Sessions live past this are counted: now, plus the margin.
    const after = this.#clock.now() + countMargin(options, 'destroyByUser');
    const keep = new Set(options.except ?? []);
    let removed = 0;
    for (const r of await this.listByUser(userId)) {
      if (keep.has(r.key)) continue;
      await this.destroy(r.key);
      if (!isExpired(r, after)) removed++;
    }
    return removed;
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Marks this adapter closed. The wrapped store (and its client) belongs to the app and stays open. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * A session express-session itself stored under `sid` (the session object, `cookie` included), or
   * null. Never returns Tether's own records.
   */
  async readLegacy(sid: string): Promise<Record<string, unknown> | null> {
    this.#open();
    if (sid.startsWith(this.#prefix)) return null;
    const raw = await this.#call<unknown>('get', (cb) => this.legacy.get(sid, cb));
    const obj = typeof raw === 'string' ? safeParse(raw) : raw;
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj) || decode(sid, obj)) return null;
    return obj as Record<string, unknown>;
  }

  /** Removes a session express-session stored (after it was migrated). */
  async destroyLegacy(sid: string): Promise<void> {
    this.#open();
    if (sid.startsWith(this.#prefix)) return;
    await this.#call<void>('destroy', (cb) => this.legacy.destroy(sid, cb));
  }

  // ---- internals ----

  #open(): void {
    if (this.#closed) throw new StoreClosedError(this.name);
  }

  async #read(key: string): Promise<SessionRecord | null> {
    const raw = await this.#call<unknown>('get', (cb) => this.legacy.get(this.#prefix + key, cb));
    const rec = raw == null ? null : decode(key, raw);
    return rec && !isExpired(rec, this.#clock.now()) ? rec : null;
  }

  async #write(record: SessionRecord): Promise<void> {
    // The wrapped store expires entries by `cookie.expires` in wall-clock time: convert the time left by
    // our (possibly injected) clock into a wall-clock deadline, a little later than ours so that we, not
    // the store, decide when a record is over (and sweep() still sees it to count it).
    const left = Math.max(1, deadlineOf(record) - this.#clock.now()) + NATIVE_TTL_MARGIN_MS;
    const { key, ...rest } = record;
    const env: Envelope = {
      // `maxAge` as express-session's Cookie gives it (the time left), which stores such as memorystore
      // read for their TTL (one day without it); `expires` for those that read that (connect-redis).
      cookie: { originalMaxAge: left, maxAge: left, expires: new Date(Date.now() + left).toISOString(), httpOnly: true, path: '/' },
      tether: { v: 1, ...rest },
    };
    await this.#call<void>('set', (cb) => this.legacy.set(this.#prefix + key, env, cb));
  }

  /** Every entry of the wrapped store, Tether's and express-session's own, as (id, value) (needs `all()`). */
  async #entries(): Promise<Array<[string, unknown]>> {
    const legacy = this.legacy;
    if (typeof legacy.all !== 'function') {
      throw new StoreUnavailableError(`${this.name} has no all(), so sessions cannot be listed per user; use a Tether store for listUserSessions, destroyUserSessions and maxSessionsPerUser`);
    }
    const raw = await this.#call<unknown>('all', (cb) => legacy.all!(cb));
    return Array.isArray(raw)
      // connect-redis and others return a list of sessions carrying their `id`; MemoryStore an id → session map.
      ? raw.map((s) => [idOf(s), s] as [string, unknown])
      : Object.entries((raw ?? {}) as Record<string, unknown>);
  }

  /** Every Tether record in the store, live or not (needs `all()`). */
  async #scan(): Promise<SessionRecord[]> {
    const out: SessionRecord[] = [];
    for (const [sid, sess] of await this.#entries()) {
      if (!sid.startsWith(this.#prefix)) continue;
      const rec = decode(sid.slice(this.#prefix.length), sess);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * Ends every session in the wrapped store (see SessionStore.destroyAll): Tether's session records,
   * and the sessions express-session itself left there, which a migration would otherwise adopt. One
   * `destroy` each, after one `all()`; Tether's user contexts stay. Counts the live ones: of Tether's,
   * those live by more than `marginMs` (see SessionStore.destroyAll).
   */
  async #destroyAll(options: DestroyAllOptions | undefined): Promise<number> {
    this.#open();
    // Tether's sessions live past this are counted: now, plus the margin.
    const after = this.#clock.now() + countMargin(options, 'destroyAll');
    let removed = 0;
    for (const [sid, sess] of await this.#entries()) {
      if (!sid.startsWith(this.#prefix)) {
        if (sid === '') continue;
        await this.#call<void>('destroy', (cb) => this.legacy.destroy(sid, cb));
        removed++;
        continue;
      }
      const rec = decode(sid.slice(this.#prefix.length), sess);
      if (rec === null || !isSessionKey(rec.key)) continue;
      await this.destroy(rec.key);
      if (!isExpired(rec, after) && !isPointer(rec)) removed++;
    }
    return removed;
  }

  async #ours(): Promise<SessionRecord[]> {
    const now = this.#clock.now();
    return (await this.#scan()).filter((r) => !isExpired(r, now));
  }

  async #sweep(): Promise<number> {
    if (this.#closed) return 0;
    const now = this.#clock.now();
    let removed = 0;
    for (const rec of await this.#scan()) {
      if (!isExpired(rec, now)) continue;
      await this.destroy(rec.key);
      removed++;
    }
    return removed;
  }

  /** Runs `fn` after every earlier locked call on `key` in this process: the in-process half of CAS. */
  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(() => undefined, () => undefined);
    this.#locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  /** One callback-style call, bounded in time; errors become STORE_UNAVAILABLE with the driver error as cause. */
  #call<T>(what: string, fn: (cb: Callback<T>) => unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => finish(new StoreUnavailableError(`${this.name} did not answer ${what} within ${this.#timeoutMs} ms (option timeoutMs)`)), this.#timeoutMs);
      const finish = (err: unknown, value?: T): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err === undefined || err === null) resolve(value as T);
        // express-session's convention: ENOENT from get means "no such session".
        else if (what === 'get' && (err as { code?: unknown }).code === 'ENOENT') resolve(null as T);
        else if (err instanceof StoreUnavailableError) reject(err);
        else reject(new StoreUnavailableError(`${this.name} failed on ${what}`, { cause: err }));
      };
      try {
        const ret = fn((err, value) => finish(err, value));
        // Promise-returning stores (connect-redis 8+) may reject instead of calling back.
        if (ret && typeof (ret as Promise<unknown>).then === 'function') (ret as Promise<unknown>).then(undefined, (err: unknown) => finish(err ?? new Error('rejected')));
      } catch (err) {
        finish(err);
      }
    });
  }
}

/**
 * Wraps an express-session store as a Tether SessionStore.
 * @example
 * import { RedisStore } from 'connect-redis';
 * import { session, fromExpressSessionStore } from 'tether/express';
 * app.use(session({ secret, store: fromExpressSessionStore(new RedisStore({ client })) }));
 */
export function fromExpressSessionStore(store: ExpressSessionStoreLike, options: ExpressSessionStoreAdapterOptions = {}): ExpressSessionStoreAdapter {
  return new ExpressSessionStoreAdapter(store, options);
}

/** True for an express-session store (callback API), false for a Tether SessionStore. */
export function isExpressSessionStore(store: unknown): store is ExpressSessionStoreLike {
  if (typeof store !== 'object' || store === null) return false;
  const s = store as Record<string, unknown>;
  if (typeof s.get !== 'function' || typeof s.set !== 'function' || typeof s.destroy !== 'function') return false;
  // Tether stores have the user index; express-session stores have none.
  return typeof s.listByUser !== 'function';
}

/** The session ID an express-session store's `all()` gives with a session (connect-redis and others). */
function idOf(session: unknown): string {
  const id = (session as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : '';
}
