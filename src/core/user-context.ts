/**
 * User contexts: per-user state that outlives any one session (saved cart, preferences, unfinished
 * flows), kept in the session store under `user:<hash>` and changed by compare-and-set, so two
 * devices of one user never lose each other's updates.
 * @module
 */
import { checkUserId, userContextKey } from './ids.js';
import { SessionConflictError, UserContextTooLargeError } from './errors.js';
import { CodecFailureWarning, bytesOver, parseStoredJson } from './codec.js';
import type { SessionCodec } from './codec.js';
import type { ResolvedOptions } from './options.js';
import type { Clock, SessionRecord, SessionStore } from './store.js';

export type UserContextData = Record<string, unknown>;

/**
 * A stored user context as `codec` stored it (`decodeText`, else JSON) and the JSON text it holds;
 * throws when the codec cannot read it or it is not a JSON object. Shared by `tether.users` and the CLI.
 */
export function decodeUserContext(data: string, codec: SessionCodec): { context: UserContextData; json: string } {
  const json = codec.decodeText ? codec.decodeText(data) : data;
  const context = parseStoredJson(json);
  if (typeof context !== 'object' || context === null || Array.isArray(context)) throw new TypeError('a user context must be a JSON object');
  return { context: context as UserContextData, json };
}

/** An object literal's kind: its prototype is Object.prototype or null (what JSON.parse makes). */
function plainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

export class UserContexts {
  readonly #store: SessionStore;
  readonly #o: Readonly<ResolvedOptions>;
  readonly #call: <R>(op: () => Promise<R>, what: string) => Promise<R>;
  readonly #undecodable = new CodecFailureWarning('TETHER_RECORD_UNDECODABLE', (kind) => `a stored user context could not be decoded (${kind}) and was treated as empty; check the codec option and the store's data`);

  constructor(store: SessionStore, options: Readonly<ResolvedOptions>, call: <R>(op: () => Promise<R>, what: string) => Promise<R>) {
    this.#store = store;
    this.#o = options;
    this.#call = call;
  }

  /** The engine's clock, which the contexts' deadlines follow (and flows kept in them: `tether/flow`). */
  get clock(): Clock {
    return this.#o.clock;
  }

  /**
   * The user's context, `{}` when none was saved. A context read when less than half of
   * `userContextTtlMs` is left is kept for the whole of it again, so a user who comes back keeps what
   * they saved once (their preferences) however long ago they saved it.
   */
  async get<C extends UserContextData = UserContextData>(userId: string): Promise<Partial<C>> {
    const key = userContextKey(checkUserId(userId));
    const rec = await this.#call(() => this.#store.get(key), 'get');
    const { context, json } = this.#read(rec);
    if (rec !== null && json !== null) await this.#keep(rec, json);
    return context as Partial<C>;
  }

  /**
   * Writes `rec` again, its content unchanged, with a deadline a whole `userContextTtlMs` from now, when less than
   * half of it is left: a touch cannot, since a context's absolute deadline is its idle one. At most one
   * write per context per half TTL. A write that meets another (that one set a new deadline) or fails is
   * let go: the read it follows has its answer. `lastSeenAt` stays that of the last update: it is when the
   * context was last changed (what `tether users show` gives as last written), and a read changes nothing.
   * The text it read (`json`) is stored as the codec stores it now: a context kept alive only by reads
   * would otherwise stay sealed under the data key it was written with (or in plaintext) for as long as
   * it is read, and be lost when that key is dropped; so once `userContextTtlMs` has passed since a key
   * was moved off first place, no live context is sealed under it. (A plaintext context that sealing
   * would take past `maxUserContextBytes` is kept as it is: a read never fails for the size.)
   */
  async #keep(rec: SessionRecord, json: string): Promise<void> {
    const now = this.#o.clock.now();
    const ttl = this.#o.userContextTtlMs;
    if (rec.expiresAt - now >= ttl / 2) return;
    const deadline = now + ttl;
    const codec = this.#o.codec;
    try {
      const sealed = codec.encodeText ? codec.encodeText(json) : json;
      const data = bytesOver(sealed, this.#o.maxUserContextBytes) === null ? sealed : rec.data;
      await this.#call(() => this.#store.set({ ...rec, data, version: rec.version + 1, expiresAt: deadline, absoluteExpiresAt: deadline }, rec.version), 'set');
    } catch {
      // As above: the context was read; it is kept at the next read.
    }
  }

  /**
   * Changes the context through `fn` (re-run on fresh data when another device wrote meanwhile) and
   * returns what was stored, as `get` reads it back. `fn` may return a new object or change the one it is given; any other
   * value it returns (a string, a number, an array, a Map or any object that is not a plain one) is
   * refused with a TypeError, nothing stored.
   */
  async update<C extends UserContextData = UserContextData>(
    userId: string,
    fn: (ctx: Partial<C>) => void | Partial<C> | Promise<void | Partial<C>>,
  ): Promise<Partial<C>> {
    const key = userContextKey(checkUserId(userId));
    const codec = this.#o.codec;
    for (let attempt = 0; attempt <= this.#o.maxReplays * 4; attempt++) {
      const rec = await this.#call(() => this.#store.get(key), 'get');
      const { context, json: before } = this.#read(rec);
      const current = context as Partial<C>;
      const returned = await fn(current);
      // A Map, a Set or a class instance returned would be stored as its JSON, `{}` for most of them:
      // the context replaced by nothing. Only a plain object replaces it.
      if (returned !== undefined && returned !== null && !plainObject(returned)) {
        throw new TypeError('tether.users.update(userId, fn): fn returned an object that is not a plain object (a Map, a Set, a class instance), which would be stored as its JSON and replace the context; return a plain object, or change the context it is given and return nothing');
      }
      const next = returned ?? current;
      const json: string | undefined = JSON.stringify(next);
      // What `fn` returns replaces the context: a value that is not an object (what an arrow function
      // like `(c) => c.theme = 'dark'` or `(c) => c.cart.push(item)` returns) would be stored, and the
      // context then read as empty, everything in it lost.
      if (json === undefined || !json.startsWith('{')) throw new TypeError('tether.users.update(userId, fn): fn must change the context it is given and return nothing, or return an object to store instead; it returned a value that is not an object');
      // What is answered is what was stored, as `get` will read it on any device: JSON, not `next` as
      // `fn` left it (a Date there is stored as its text, NaN as null, an undefined member dropped).
      const stored = () => parseStoredJson(json) as Partial<C>;
      // Unchanged, or nothing to keep for a user who had no context: nothing to write.
      if (rec ? json === before : json === '{}') return stored();
      const data = codec.encodeText ? codec.encodeText(json) : json;
      const max = this.#o.maxUserContextBytes;
      const bytes = bytesOver(data, max);
      if (bytes !== null) throw new UserContextTooLargeError(bytes, max);
      const now = this.#o.clock.now();
      const deadline = now + this.#o.userContextTtlMs;
      const version = rec?.version ?? 0;
      const res = await this.#call(() => this.#store.set({
        key, data, version: version + 1, userId: null, createdAt: rec?.createdAt ?? now, lastSeenAt: now,
        expiresAt: deadline, absoluteExpiresAt: deadline,
      }, version), 'set');
      if (res.ok) return stored();
    }
    throw new SessionConflictError('the user context kept changing under this update; retry');
  }

  /**
   * A stored context and the JSON text it was read from (null when none is stored). One the codec
   * cannot read (changed in the store, or sealed under a key no longer held) is treated as absent,
   * as a session is: its user's next update starts afresh instead of every call failing.
   */
  #read(rec: SessionRecord | null): { context: UserContextData; json: string | null } {
    if (rec === null) return { context: {}, json: null };
    try {
      return decodeUserContext(rec.data, this.#o.codec);
    } catch (err) {
      this.#undecodable.warn(err);
      return { context: {}, json: null };
    }
  }

  /** Deletes the user's context (account deletion). */
  async clear(userId: string): Promise<void> {
    const key = userContextKey(checkUserId(userId));
    await this.#call(() => this.#store.destroy(key), 'destroy');
  }
}
