/**
 * The per-request session handle: a typed data bag plus lifecycle intents (regenerate, destroy,
 * login) that the engine carries out at commit, before the response goes out.
 * @module
 */
import type { RequestView } from './csrf.js';
import { ReauthRequiredError, SessionCommittedError, SessionEndedError, SessionKeyInvalidError } from './errors.js';
import type { SessionRecord } from './store.js';
import type { ResolvedOptions } from './options.js';
import type { Envelope } from './codec.js';
import type { Release } from './gate.js';
import { checkUserId, handleOf, hashId, randomToken } from './ids.js';
import { copyData } from './decoded.js';
import { FORBIDDEN_KEYS, draftWrites } from './draft.js';

/** What update() answers once a synchronous change is made: one settled promise for every call. */
const DONE: Promise<void> = Promise.resolve();

function ignore(): void {}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

export type SessionData = Record<string, unknown>;

/**
 * Why a presented session cookie named no session: `forged` (malformed, or a signature no secret
 * verifies) or `unknown` (signed by us, but its session was destroyed, ended by a regeneration, or
 * never stored). A session that merely timed out is not rejected: it counts as expired.
 */
export type RejectedCookie = 'forged' | 'unknown';
export type UpdateFn<T> = (data: Partial<T>) => void | Promise<void>;

/** Engine-side state of a session; not part of the public API. */
export interface SessionState {
  id: string | null;
  key: string | null;
  record: SessionRecord | null;
  loadedText: string | null;
  loadedUserId: string | null;
  /** The stored envelope, shared with other requests of this session: never changed. */
  loaded: Envelope | null;
  /** This request's own data; null until first touched (then made by `copyLoaded`). */
  data: SessionData | null;
  /**
   * Makes this request's data (the engine's, per codec): a draft over the loaded data (or over an empty
   * object for a session not stored yet), or a fresh decoding.
   */
  copyLoaded: (state: SessionState) => SessionData;
  csrf: string | undefined;
  ua: string | undefined;
  userId: string | null;
  /** Marked with `remember()`: the session has the longer timeouts of `options.remember` and a persistent cookie. */
  remembered: boolean;
  /** When the owner last proved who they are (`login()`, `reauthenticated()`); undefined when not known. */
  authAt: number | undefined;
  /** The network the request came from, under `addressChange` (else what the session had stored). */
  net: string | undefined;
  /** The request, kept only under `newSessions` limits: its address is asked when a new session is stored. */
  view: RequestView | null;
  /** Replayable changes, in order, re-applied on fresh data after a CAS conflict. */
  ops: Array<(data: SessionData, state: SessionState) => void | Promise<void>>;
  /**
   * Writes made through the data's draft by `update()` functions that completed (draft.ts
   * `draftWrites`): when the draft counts more, something else changed the data, and the request's
   * changes cannot be re-applied by replaying `ops`.
   */
  updateWrites: number;
  /** The draft's write count up to which `updateWrites` has counted: overlapping updates count each write once. */
  updateCountedTo: number;
  regenerate: boolean;
  /** When the session's current ID was issued (the envelope's `i`), kept under `renewal` only. */
  issuedAt: number | undefined;
  /**
   * The session's handle once a renewal or `reauthenticated()` replaced its ID (the envelope's `h`: the
   * handle of the ID it began with); undefined while it is stored under that ID, whose own handle is the
   * session's.
   */
  sessionHandle: string | undefined;
  /**
   * Set by `reauthenticated()`: its new ID goes on with the same session, which keeps its handle, as
   * through a renewal; `regenerate()` and `login()` begin a new session, with a handle of its own.
   */
  keepHandle: boolean;
  /** This request can deliver a new cookie, so its commit may renew a due ID (`renewal`). */
  renew: boolean;
  /** The ID the request's cookie carried (null without one): what opens a renewal's pointer (renewal.ts). */
  presentedId: string | null;
  /** Set by `login()`: the regenerated session's absolute lifetime starts again (a plain regenerate() keeps its age). */
  newLifetime: boolean;
  destroyed: boolean;
  /** `touch()`: true forces a touch at commit, false forbids one (and a renewal), undefined leaves it to the touch interval. */
  touch: boolean | undefined;
  /** The cookie verified with an old secret: send it again, signed with the current one. */
  resign: boolean;
  /** A cookie was presented that names no live session: expire it in the browser. */
  clearCookie: boolean;
  /** Why the presented cookie was refused, when it was neither live nor merely expired (see Session.rejectedCookie). */
  rejected: RejectedCookie | null;
  release: Release | null;
  /** `update()` functions still awaiting: the commit waits for them (at most gateTimeoutMs). */
  updating: number;
  /** Wakes a commit waiting for `updating` to reach 0. */
  updated: (() => void) | null;
  /** That commit, shared by every call to commit while it waits. */
  afterUpdates: Promise<string[]> | null;
  /** `afterCommit()` callbacks, in order; null until one is registered, and again once taken by a commit or dropped. */
  afterCommit: Array<() => void> | null;
  committed: boolean;
  /**
   * The commit's store write while it is under way: a second call to commit (the adapter's, after the
   * handler's own `tether.commit()` it did not await) waits for it, for its cookies or its failure.
   */
  committing: Promise<string[]> | null;
  setCookies: string[];
  /** The Clear-Site-Data value the response carries: set by a commit that ended the session under the `clearSiteData` option. */
  clearSiteData: string | null;
  newId: () => string;
  /** The engine's options: its clock, and its timeouts for the session's deadlines. */
  options: Readonly<ResolvedOptions>;
}

export interface Deadlines {
  /** When the session ends unless a request comes first: the earlier of its idle and absolute deadlines. */
  expiresAt: number;
  /** When it ends whatever it does. */
  absoluteExpiresAt: number;
}

/**
 * A stored session's deadlines as the engine judges them (commit.ts `expiryOf`): the store's, less the
 * grace the engine gives the store, and the timeouts that apply (a remembered session's, or the engine's)
 * from its last activity and its creation.
 */
export function deadlinesOf(r: SessionRecord, remembered: boolean, o: Readonly<ResolvedOptions>): Deadlines {
  const life = remembered ? o.remember : o;
  const absoluteExpiresAt = Math.min(r.absoluteExpiresAt - o.expiryGraceMs, r.createdAt + life.absoluteTimeoutMs);
  return { expiresAt: Math.min(r.expiresAt - o.expiryGraceMs, r.lastSeenAt + life.idleTimeoutMs, absoluteExpiresAt), absoluteExpiresAt };
}

let internals!: (s: Session) => SessionState;

export class Session<T extends object = SessionData> {
  readonly #s: SessionState;

  static {
    internals = (s) => s.#s;
  }

  /** @internal built by the engine */
  constructor(state: SessionState) {
    this.#s = state;
  }

  /** The raw session ID (what the cookie carries, unsigned), or null before one exists. Never log it. */
  get id(): string | null {
    return this.#s.id;
  }

  /**
   * An opaque handle for this session, safe to show and log: the `id` its user's session list gives it.
   * It names the session from its creation (or its last login or `regenerate()`) until it ends, through
   * the new IDs of `renewal` and `reauthenticated()`; null before the session is stored.
   */
  get handle(): string | null {
    return handleIn(this.#s);
  }

  /**
   * Set when the request carried a session cookie that was forged or names no session (see
   * RejectedCookie); null otherwise, and for a cookie whose session timed out. Count these per client
   * to detect ID guessing (the shop answers 429 past a limit per address).
   */
  get rejectedCookie(): RejectedCookie | null {
    return this.#s.rejected;
  }

  /** True until the session has been stored. */
  get isNew(): boolean {
    return this.#s.record === null;
  }

  get destroyed(): boolean {
    return this.#s.destroyed;
  }

  /**
   * The `Clear-Site-Data` value the response to this request carries, or null: set once a commit has
   * ended the session under the `clearSiteData` option. Every adapter sends it; an app that commits by
   * hand (`tether.commit`) sends it with the Set-Cookie values.
   */
  get clearSiteData(): string | null {
    return this.#s.clearSiteData;
  }

  /**
   * The data bag. Changes are detected at commit; only a real change is written. With the JSON codec
   * (the default) it is a copy-on-write view of the stored data (a Proxy): reading copies nothing, and
   * a change copies only the objects it touches. Use `snapshot()` for a plain copy to hand elsewhere
   * (structuredClone and postMessage refuse a Proxy). It stays readable after the commit, but a write
   * through it then is not stored and, unlike the methods, not refused: checking every write would
   * cost every write. Change the data before the response is sent (see SessionCommittedError).
   */
  get data(): Partial<T> {
    return dataOf(this.#s) as Partial<T>;
  }

  /** A plain deep copy of the data as it is now, the request's changes included; changing it changes nothing. */
  snapshot(): Partial<T> {
    return copyData(dataOf(this.#s)) as Partial<T>;
  }

  /** The value stored under `key`, undefined when the data holds none (inherited properties are not data). */
  get<K extends keyof T & string>(key: K): T[K] | undefined {
    const s = this.#s;
    if (s.data === null) {
      // An absent key or a primitive cannot be changed through the value handed out: no view is needed.
      if (s.loaded === null || !Object.hasOwn(s.loaded.d, key)) return undefined;
      const v = s.loaded.d[key];
      if (v === null || typeof v !== 'object') return v as T[K];
    }
    const d = dataOf(s);
    return Object.hasOwn(d, key) ? d[key] as T[K] : undefined;
  }

  set<K extends keyof T & string>(key: K, value: T[K]): void {
    this.#live();
    checkKey(key);
    dataOf(this.#s)[key] = value;
  }

  delete<K extends keyof T & string>(key: K): void {
    this.#live();
    delete dataOf(this.#s)[key];
  }

  /**
   * Changes the data through `fn`, now and again on fresh data should another request have written the
   * session meanwhile (compare-and-set conflict). Prefer this for read-modify-write: it never loses an
   * update and never fails with SESSION_CONFLICT unless the session ended, or the request also changed
   * the data outside `update()`. On a conflict `fn` runs again, on the data the request loaded, to check
   * that it gives what the request holds (once more if it does not: a function that writes a random ID
   * or the time is still replayed), and then on the fresh data: keep it free of side effects. The
   * commit waits for an asynchronous `fn` still running (at most gateTimeoutMs): its change is stored
   * even when the handler did not await it, and even when the client goes away meanwhile.
   */
  update(fn: UpdateFn<T>): Promise<void> {
    // Not an async function, and no closure here: a synchronous `fn`, the common case, then costs no
    // frame, no context and no extra turn.
    let out: void | Promise<void>;
    let data: SessionData;
    let before: number | undefined;
    try {
      this.#live();
      data = dataOf(this.#s);
      before = draftWrites(data);
      out = fn(data as Partial<T>);
    } catch (err) {
      return Promise.reject(err);
    }
    if (isThenable(out)) {
      this.#s.updating++;
      return this.#afterward(out, fn, data, before);
    }
    this.#replays(fn, data, before);
    return DONE;
  }

  /**
   * Records `fn` for replay once its promise `out` settles well. The writes made meanwhile are counted
   * as its own: another write of the same request while `fn` awaits would be taken for one of them.
   */
  #afterward(out: PromiseLike<unknown>, fn: UpdateFn<T>, data: SessionData, before: number | undefined): Promise<void> {
    const settled: Promise<void> = Promise.resolve(out).then(() => {
      try {
        // Committed while `fn` awaited (the commit waited for it no longer, or the request was abandoned
        // before its commit: the handler failed, or its client went away first): its change will never
        // be stored. A handler that awaits it learns so; one that did not, as update() allows, must not
        // have the process end on an unhandled rejection.
        if (this.#s.committed) {
          void settled.catch(ignore);
          throw new SessionCommittedError();
        }
        this.#replays(fn, data, before);
      } finally {
        this.#settled();
      }
    }, (err: unknown) => {
      this.#settled();
      throw err;
    });
    return settled;
  }

  /** One asynchronous update fewer in flight; the last one wakes a commit waiting for them. */
  #settled(): void {
    const s = this.#s;
    if (--s.updating === 0 && s.updated !== null) s.updated();
  }

  /**
   * Records `fn` to run again on fresh data should the write meet a conflict, and counts the writes it
   * made through the draft (`before`: the draft's count when it began), so that the commit can tell them
   * from changes made outside `update()`. A function that threw is not recorded: its writes, if any,
   * stay uncounted, and the request's changes are then not replayed.
   */
  #replays(fn: UpdateFn<T>, data: SessionData, before: number | undefined): void {
    const s = this.#s;
    if (before !== undefined) {
      // Updates that overlapped (an asynchronous one awaiting while another ran) share writes: each is
      // counted once, from where the last completed update stopped counting.
      const now = draftWrites(data)!;
      s.updateWrites += now - Math.max(before, s.updateCountedTo);
      s.updateCountedTo = Math.max(now, s.updateCountedTo);
    }
    s.ops.push((d) => fn(d as Partial<T>));
  }

  /**
   * Runs `fn` once this request's commit has succeeded: the store holds what the request changed (for a
   * destroyed session, its deletion), or the commit found nothing to store. For what must not happen
   * for a change that was not kept: an event, a message to another system. Callbacks run in the order
   * registered, before the commit answers (so before the response goes out), once, after the last
   * write of a commit that re-applied `update()` functions on fresh data. They never run when the
   * commit fails (SESSION_CONFLICT, STORE_UNAVAILABLE, SESSION_TOO_LARGE…) or the request is abandoned
   * (the handler failed, the client went away). A callback that throws fails neither the commit nor
   * the callbacks after it: its error is thrown again on the next tick (`process.nextTick`), as
   * node:diagnostics_channel does with a subscriber that throws, which ends the process unless an
   * `uncaughtException` handler takes it. Catch what a callback may throw.
   */
  afterCommit(fn: () => void): void {
    // Not refused on a destroyed session: its commit stores the deletion, which a callback may follow.
    this.#open();
    // Refused here, in the handler's stack: found at the commit, it would end the process instead.
    if (typeof fn !== 'function') throw new TypeError('session.afterCommit(fn) takes a function');
    (this.#s.afterCommit ??= []).push(fn);
  }

  /** The user this session belongs to, or null. */
  get userId(): string | null {
    return this.#s.userId;
  }

  /**
   * Sets the owner without a new ID (null: none). Use `login()` at authentication. A user ID stores
   * could confuse with another's is refused with UserIdInvalidError (see `checkUserId`).
   */
  setUser(userId: string | null): void {
    this.#live();
    if (userId !== null) checkUserId(userId);
    // Another owner has not proved who they are here: the authentication time was the previous one's.
    const own = (state: SessionState): void => {
      if (state.userId !== userId) state.authAt = undefined;
      state.userId = userId;
    };
    own(this.#s);
    this.#s.ops.push((_data, state) => own(state));
  }

  /**
   * "Keep me signed in": from this commit on the session has the timeouts of `options.remember` (by
   * default 14 days idle, 30 days in all) instead of the engine's, and its cookie is persistent, sent
   * again with each touch so that it lasts as long as the session. `remember(false)` gives the session
   * its ordinary timeouts and a browser-session cookie back. Call it with `login()`; it does not store
   * a session that holds nothing else.
   */
  remember(on = true): void {
    this.#live();
    this.#s.remembered = on;
    this.#s.ops.push((_data, state) => {
      state.remembered = on;
    });
  }

  /** Whether the session is remembered (see `remember()`). */
  get remembered(): boolean {
    return this.#s.remembered;
  }

  /**
   * Authentication: binds the user, issues a new ID and CSRF token; data is kept. Signing in as another
   * user than the session's owner also ends "keep me signed in" (`remember()`): whoever signs in on a
   * browser another user had kept signed in does not inherit it. The same user signing in again (a
   * fresh check of the password) keeps it, as an anonymous session keeps its own.
   *
   * `keep`: the only data keys the signed-in session carries over; every other one is deleted (flow
   * state, anything a visitor's requests put there). Pre-login data is the visitor's, and whoever
   * planted a session cookie in this browser chose it: name what a login should carry (a cart), or
   * `keep: []` for none. Without `keep`, all data is carried.
   */
  login(userId: string, options?: { keep?: readonly (keyof T & string)[] }): void {
    const keep = options?.keep;
    if (keep !== undefined && (!Array.isArray(keep) || keep.some((k) => typeof k !== 'string'))) {
      throw new TypeError('session.login(userId, { keep }) takes an array of data keys');
    }
    const owner = this.#s.userId;
    // The new ID before the owner: a user ID refused, or an ID generator that fails, leaves the session
    // as it was, never its old ID bound to the user (a fixation an app that catches the error would store).
    checkUserId(userId);
    this.regenerate();
    this.setUser(userId);
    this.#s.newLifetime = true;
    this.#authenticated();
    if (this.#s.remembered && owner !== null && owner !== userId) this.remember(false);
    // Last: a user ID refused or an ID generator that fails above leaves the data as it was. Through
    // update(), as the rest of the login is replayable: a write by another request of the session,
    // met at the commit, has the keys dropped from the fresh data instead of failing the login.
    if (keep !== undefined) {
      // A copy: the caller may reuse its array before the commit replays this.
      const only: readonly string[] = Array.from(keep as readonly string[]);
      void this.update((data) => {
        for (const key of Object.keys(data)) if (!only.includes(key)) delete (data as SessionData)[key];
      });
    }
  }

  /**
   * The signed-in user has just proved who they are again (typed their password, passed a second
   * factor): `authenticatedAt` becomes now, and `requireRecentAuth()` lets them through. The session
   * also gets a new ID, as at a login (ASVS 5 7.2.4: a new session token at re-authentication; OWASP:
   * a new ID at every privilege change): a copy of the old cookie, taken before the step-up, does not
   * carry what the step-up grants. The data, the user, the age and the CSRF token stay, so the page's
   * forms keep working. `{ regenerate: false }` keeps the ID (where the answer cannot deliver a new
   * cookie). Throws TypeError on a session with no user.
   */
  reauthenticated(options?: { regenerate?: boolean }): void {
    const regenerate = options?.regenerate ?? true;
    if (typeof regenerate !== 'boolean') throw new TypeError('session.reauthenticated({ regenerate }) takes true or false');
    this.#live();
    if (this.#s.userId === null) throw new TypeError('session.reauthenticated() needs a signed-in session: call login(userId) to sign one in');
    if (regenerate) {
      // The same session under a new ID, unless this request also begins a new one (login, regenerate).
      this.#s.keepHandle = !this.#s.regenerate || this.#s.keepHandle;
      this.#newId();
    }
    this.#authenticated();
  }

  /**
   * When the session's user last proved who they are: the time of `login()` or `reauthenticated()`, in
   * ms of the engine's clock (epoch ms by default); null with no user, or a user set by `setUser()`.
   * Survives remembered sessions' returns: a browser "kept signed in" for days has an old one.
   */
  get authenticatedAt(): number | null {
    return this.#s.userId === null ? null : this.#s.authAt ?? null;
  }

  /**
   * Step-up for a sensitive action (changing the email, a large payment): throws ReauthRequiredError
   * (REAUTH_REQUIRED, 401) unless the user proved who they are less than `maxAgeMs` ago (see
   * `authenticatedAt`; 0 asks every time). The app answers it with a password prompt, checks the
   * password, calls `reauthenticated()` and retries.
   * @example
   * session.requireRecentAuth(15 * 60_000); // signed in or re-confirmed within 15 minutes
   */
  requireRecentAuth(maxAgeMs: number): void {
    if (typeof maxAgeMs !== 'number' || !(maxAgeMs >= 0)) throw new TypeError('session.requireRecentAuth(maxAgeMs) takes a number of milliseconds, 0 or more');
    const at = this.authenticatedAt;
    if (at === null) throw new ReauthRequiredError(this.#s.userId === null ? 'sign in first' : undefined);
    if (this.#s.options.clock.now() - at >= maxAgeMs) throw new ReauthRequiredError();
  }

  #authenticated(): void {
    const at = this.#s.options.clock.now();
    this.#s.authAt = at;
    this.#s.ops.push((_data, state) => {
      state.authAt = at;
    });
  }

  /**
   * A new ID and CSRF token at commit; data kept; the old record is deleted. The session keeps its age:
   * its absolute timeout still counts from its creation or last `login()`, which starts it again.
   */
  regenerate(): void {
    this.#live();
    // The ID first: a custom generator that fails leaves the session as it was.
    this.#newId();
    this.#s.keepHandle = false;
    this.#s.csrf = randomToken();
  }

  /** A new ID for the session at commit; the old one ends then. */
  #newId(): void {
    const id = this.#s.newId();
    this.#s.regenerate = true;
    this.#s.id = id;
  }

  /**
   * Ends the session at commit: the record is deleted and the cookie expired. Once committed, see
   * `Tether.endNow` (a destroy() then would leave the session live, so it is refused).
   */
  destroy(): void {
    this.#open();
    this.#s.destroyed = true;
  }

  /**
   * `touch()` moves the idle deadline at commit even when the touch interval has not passed.
   * `touch(false)`: this request is not the user's activity (a poll, a status check, a page asking how
   * long its session has left): its commit moves no deadline and renews no ID, so the session times out
   * as if the request had not come. A change to the data is still stored, and a write sets new deadlines.
   */
  touch(on = true): void {
    if (typeof on !== 'boolean') throw new TypeError('session.touch(on): on must be true or false');
    this.#open();
    this.#s.touch = on;
  }

  /** The session's CSRF synchronizer token; asking for it creates the session. */
  get csrfToken(): string {
    const s = this.#s;
    // Reading the token the session has changes nothing: a streamed page may still print it after the commit.
    if (s.csrf !== undefined && !s.destroyed) return s.csrf;
    this.#live();
    if (this.#s.csrf === undefined) {
      this.#s.csrf = randomToken();
      const token = this.#s.csrf;
      this.#s.ops.push((_data, state) => {
        if (state.csrf === undefined) state.csrf = token;
      });
    }
    return this.#s.csrf;
  }

  get userAgent(): string | undefined {
    return this.#s.ua;
  }

  get createdAt(): number | null {
    return this.#s.record?.createdAt ?? null;
  }

  get lastSeenAt(): number | null {
    return this.#s.record?.lastSeenAt ?? null;
  }

  /**
   * When the session ends unless a request comes first (ms since the epoch, by the engine's clock): the
   * earlier of its idle and absolute deadlines, as the store holds them. After this request's commit,
   * as the commit left them: a write or a touch moves the idle deadline (a touch is written once
   * `touchIntervalMs` has passed since the last, so the deadline may stand up to that much earlier
   * than the last request plus the idle timeout). null for a session not stored, or ended. The cookie
   * carries no expiry (a browser-session cookie), so this is what a page asks to warn before a timeout.
   */
  get expiresAt(): number | null {
    return this.#deadlines()?.expiresAt ?? null;
  }

  /** When the session ends whatever it does (its absolute timeout; a login starts it again); null as for `expiresAt`. */
  get absoluteExpiresAt(): number | null {
    return this.#deadlines()?.absoluteExpiresAt ?? null;
  }

  #deadlines(): Deadlines | null {
    const s = this.#s;
    return s.destroyed || s.record === null ? null : deadlinesOf(s.record, s.remembered, s.options);
  }

  /**
   * Refuses a change that could not apply or could only be lost: to a destroyed session (SESSION_ENDED,
   * also once that ending is committed: the session is gone), or after the commit.
   */
  #live(): void {
    if (this.#s.destroyed) throw new SessionEndedError();
    this.#open();
  }

  /**
   * Refuses a change once the engine has committed the session or dropped its changes (`committed` is
   * set by both): the change would never be stored, and the application would never learn of it. A
   * streamed body (Hono's `stream()`, a Fastify stream payload) or a hijacked reply runs after that.
   */
  #open(): void {
    if (this.#s.committed) throw new SessionCommittedError();
  }
}

function checkKey(key: unknown): void {
  if (typeof key !== 'string' || FORBIDDEN_KEYS.has(key)) throw new SessionKeyInvalidError(String(key));
}

/** The handle of the session `s` holds (Session.handle), or null when it holds none. */
export function handleIn(s: SessionState): string | null {
  return s.key === null ? null : s.sessionHandle ?? handleOf(s.key);
}

/**
 * The ID whose store key is `key`, of those a request holds (the one it presented, the one it has now: a
 * regenerate() in the request has already replaced `s.id`); null when neither is. What a renewal's
 * pointer under `key` opens with.
 */
export function idOfKey(s: SessionState, key: string): string | null {
  return [s.id, s.presentedId].find((c) => c !== null && hashId(c) === key) ?? null;
}

/** The request's own data, made from the loaded envelope (or for a new session) the first time it is needed. */
export function dataOf(s: SessionState): SessionData {
  return s.data ??= s.copyLoaded(s);
}

export function sessionState(s: Session<object>): SessionState {
  return internals(s);
}
