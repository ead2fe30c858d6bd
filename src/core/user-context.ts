/**
 * User contexts: per-user state that outlives any one session (saved cart, preferences, unfinished
 * flows), kept in the session store under `user:<hash>` and changed by compare-and-set, so two
 * devices of one user never lose each other's updates.
 * @module
 */
import { checkUserId, userContextKey } from './ids.js';
import { SessionConflictError } from './errors.js';
import { parseStoredJson } from './codec.js';
import type { ResolvedOptions } from './options.js';
import type { Clock, SessionStore } from './store.js';

export type UserContextData = Record<string, unknown>;

export class UserContexts {
  readonly #store: SessionStore;
  readonly #o: Readonly<ResolvedOptions>;
  readonly #call: <R>(op: () => Promise<R>, what: string) => Promise<R>;

  constructor(store: SessionStore, options: Readonly<ResolvedOptions>, call: <R>(op: () => Promise<R>, what: string) => Promise<R>) {
    this.#store = store;
    this.#o = options;
    this.#call = call;
  }

  /** The engine's clock, which the contexts' deadlines follow (and flows kept in them: `tether/flow`). */
  get clock(): Clock {
    return this.#o.clock;
  }

  /** The user's context, `{}` when none was saved. */
  async get<C extends UserContextData = UserContextData>(userId: string): Promise<Partial<C>> {
    const key = userContextKey(checkUserId(userId));
    const rec = await this.#call(() => this.#store.get(key), 'get');
    return rec ? (parseStoredJson(rec.data) as Partial<C>) : {};
  }

  /**
   * Changes the context through `fn` (re-run on fresh data when another device wrote meanwhile) and
   * returns what was stored. `fn` may return a new object or change the one it is given.
   */
  async update<C extends UserContextData = UserContextData>(
    userId: string,
    fn: (ctx: Partial<C>) => void | Partial<C> | Promise<void | Partial<C>>,
  ): Promise<Partial<C>> {
    const key = userContextKey(checkUserId(userId));
    for (let attempt = 0; attempt <= this.#o.maxReplays * 4; attempt++) {
      const rec = await this.#call(() => this.#store.get(key), 'get');
      const current = rec ? (parseStoredJson(rec.data) as Partial<C>) : {};
      const next = (await fn(current)) ?? current;
      const data = JSON.stringify(next);
      if (rec && data === rec.data) return next;
      const now = this.#o.clock.now();
      const deadline = now + this.#o.userContextTtlMs;
      const version = rec?.version ?? 0;
      const res = await this.#call(() => this.#store.set({
        key, data, version: version + 1, userId: null, createdAt: rec?.createdAt ?? now, lastSeenAt: now,
        expiresAt: deadline, absoluteExpiresAt: deadline,
      }, version), 'set');
      if (res.ok) return next;
    }
    throw new SessionConflictError('the user context kept changing under this update; retry');
  }

  /** Deletes the user's context (account deletion). */
  async clear(userId: string): Promise<void> {
    const key = userContextKey(checkUserId(userId));
    await this.#call(() => this.#store.destroy(key), 'destroy');
  }
}
