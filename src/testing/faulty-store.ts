/**
 * A store wrapper for tests that counts and logs every call and can make any method hang, reject,
 * throw synchronously or answer late, so engine and adapter tests can misbehave on purpose.
 * @module
 */
import type { CountOptions, DestroyAllOptions, DestroyByUserOptions, SessionRecord, SessionStore, SetResult } from '../core/store.js';

export type StoreMethod = 'get' | 'set' | 'touch' | 'destroy' | 'listByUser' | 'destroyByUser' | 'count' | 'destroyAll';

/**
 * - 'hang': the call never settles (a dead backend behind a socket that never times out).
 * - 'reject': the call rejects with a driver-like Error.
 * - 'throw': the method throws synchronously, before returning any promise (a buggy store).
 * - `{ delayMs }`: the call reaches the backend after `delayMs` (a slow network or disk).
 */
export type StoreFault = 'hang' | 'reject' | 'throw' | { delayMs: number };

const METHODS: readonly StoreMethod[] = ['get', 'set', 'touch', 'destroy', 'listByUser', 'destroyByUser', 'count', 'destroyAll'];
const WRITES: readonly StoreMethod[] = ['set', 'touch', 'destroy', 'destroyByUser', 'destroyAll'];

/** One call as the backend saw it: everything that ever reaches a store, for "what leaked" checks. */
export interface StoreCall {
  method: StoreMethod;
  args: unknown[];
  /** Set when the call completed: the answer the backend gave. */
  result?: unknown;
}

export class FaultyStore implements SessionStore, AsyncDisposable {
  readonly name: string;
  readonly inner: SessionStore;
  readonly calls: Record<StoreMethod, number> = { get: 0, set: 0, touch: 0, destroy: 0, listByUser: 0, destroyByUser: 0, count: 0, destroyAll: 0 };
  readonly log: StoreCall[] = [];
  readonly #faults = new Map<StoreMethod, StoreFault>();
  /** Called (and awaited) before a `set` reaches the backend; lets a test hold a write in flight. */
  beforeSet: ((record: SessionRecord) => Promise<void> | void) | undefined;
  /**
   * Present with `{ local: true }` over a store that has it: answers like the backend's `getLocal`,
   * counted and logged as a `get`. While a fault is set on `get` it answers undefined, so the engine
   * calls `get`, where the fault applies.
   */
  readonly getLocal?: (key: string) => SessionRecord | null | undefined;

  constructor(inner: SessionStore, name = `faulty(${inner.name})`, options: { local?: boolean } = {}) {
    this.inner = inner;
    this.name = name;
    if (options.local && inner.getLocal) {
      this.getLocal = (key) => {
        if (this.#faults.has('get')) return undefined;
        const result = this.inner.getLocal?.(key);
        if (result === undefined) return undefined;
        this.calls.get++;
        this.log.push({ method: 'get', args: [key], result: structuredClone(result) });
        return result;
      };
    }
  }

  /** Makes `method` (or every method) misbehave until `heal()`. */
  fail(method: StoreMethod | 'all', fault: StoreFault): this {
    for (const m of method === 'all' ? METHODS : [method]) this.#faults.set(m, fault);
    return this;
  }

  heal(): this {
    this.#faults.clear();
    return this;
  }

  /** Calls that change the backend: set, touch, destroy, destroyByUser, destroyAll. */
  get writes(): number {
    return WRITES.reduce((n, m) => n + this.calls[m], 0);
  }

  resetCounts(): void {
    for (const m of METHODS) this.calls[m] = 0;
    this.log.length = 0;
  }

  /** Everything the backend was ever handed or answered, as one string (for leak searches). */
  dump(): string {
    return JSON.stringify(this.log);
  }

  get(key: string): Promise<SessionRecord | null> {
    return this.#run('get', [key], () => this.inner.get(key));
  }

  set(record: SessionRecord, expectedVersion: number): Promise<SetResult> {
    return this.#run('set', [record, expectedVersion], async () => {
      await this.beforeSet?.(record);
      return this.inner.set(record, expectedVersion);
    });
  }

  touch(key: string, expiresAt: number, lastSeenAt: number, version?: number): Promise<boolean> {
    return this.#run('touch', [key, expiresAt, lastSeenAt, version], () => this.inner.touch(key, expiresAt, lastSeenAt, version));
  }

  destroy(key: string): Promise<void> {
    return this.#run('destroy', [key], () => this.inner.destroy(key));
  }

  listByUser(userId: string): Promise<SessionRecord[]> {
    return this.#run('listByUser', [userId], () => this.inner.listByUser(userId));
  }

  destroyByUser(userId: string, options?: DestroyByUserOptions): Promise<number> {
    return this.#run('destroyByUser', [userId, options], () => this.inner.destroyByUser(userId, options));
  }

  count(options?: CountOptions): Promise<number> {
    return this.#run('count', [options], () => (this.inner.count ? this.inner.count(options) : Promise.reject(new Error(`${this.inner.name} cannot count`))));
  }

  destroyAll(options?: DestroyAllOptions): Promise<number> {
    return this.#run('destroyAll', [options], () => (this.inner.destroyAll ? this.inner.destroyAll(options) : Promise.reject(new Error(`${this.inner.name} cannot end every session`))));
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  #run<R>(method: StoreMethod, args: unknown[], call: () => Promise<R>): Promise<R> {
    this.calls[method]++;
    const entry: StoreCall = { method, args: structuredClone(args) };
    this.log.push(entry);
    const fault = this.#faults.get(method);
    if (fault === 'throw') throw new Error(`injected synchronous failure in ${method}`);
    if (fault === 'hang') return new Promise<R>(() => {});
    if (fault === 'reject') return Promise.reject(new Error(`injected failure in ${method} (ECONNREFUSED)`));
    const run = async (): Promise<R> => {
      if (fault !== undefined) await new Promise((r) => setTimeout(r, fault.delayMs));
      const result = await call();
      entry.result = structuredClone(result);
      return result;
    };
    return run();
  }
}
