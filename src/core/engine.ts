/**
 * The session engine: loads a request's session from its signed cookie, serialises writers of one
 * session (gate) and of one record across processes (compare-and-set), and commits every change
 * before the response goes out.
 * @module
 */
import { EventEmitter } from 'node:events';
import { generateId, hashId, handleOf } from './ids.js';
import { Signer } from './signer.js';
import { VerifiedCookies } from './verified-cookies.js';
import type { VerifiedCookie } from './verified-cookies.js';
import { readCookie, setCookieHeader, clearCookieHeader } from './cookie.js';
import { SessionGate } from './gate.js';
import { Deadlines } from './timeout.js';
import { DecodedCache, copyData, jsonExactCopy, sameData } from './decoded.js';
import { resolveOptions } from './options.js';
import type { ResolvedOptions, TetherOptions } from './options.js';
import { jsonCodec } from './codec.js';
import type { Envelope } from './codec.js';
import { Session, dataOf, sessionState } from './session.js';
import type { SessionData, SessionState } from './session.js';
import { SessionConflictError, SessionTooLargeError, OptionsInvalidError, StoreUnavailableError, isTetherError } from './errors.js';
import type { SessionRecord, SessionStore } from './store.js';
import { MemoryStore } from '../stores/memory/index.js';
import { channels } from '../observability/channels.js';
import type { LifecycleEvent, LifecycleMessage } from '../observability/channels.js';
import { checkCsrf } from './csrf.js';
import type { RequestView } from './csrf.js';
import { UserContexts } from './user-context.js';

export type { RequestView } from './csrf.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * The data of a record ended by a regeneration: read as "no session". The compare-and-set that ends
 * the record also gives it deadlines already passed, so the store drops it in that same call (a TTL
 * store deletes it; the others stop returning it and sweep it later), and no separate delete is sent.
 * The marker covers a store whose clock trails the engine's by a few milliseconds. Valid JSON, so
 * stores that check their data accept it, but never a codec envelope.
 */
const ENDED = '"tether:ended"';

/** Filled by #encode: the envelope a write's text decodes to, when it could be kept without decoding. */
interface Written {
  env: Envelope | null;
}
const NOTHING_WRITTEN: Written = Object.freeze({ env: null }) as Written;

export interface OpenOptions {
  /**
   * Whether this request may write the session and so waits its turn at the per-session gate.
   * @default true for unsafe methods (POST, PUT, PATCH, DELETE), false for GET, HEAD, OPTIONS
   */
  write?: boolean;
}

export interface UserSessionInfo {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  userAgent: string | null;
  current: boolean;
}

export interface EngineStats {
  created: number;
  regenerated: number;
  destroyed: number;
  expired: number;
  conflicts: number;
  replays: number;
  writes: number;
  touches: number;
  storeErrors: number;
  gateWaiting: number;
}

export class Tether<T extends object = SessionData> {
  readonly options: Readonly<ResolvedOptions>;
  readonly store: SessionStore;
  readonly events = new EventEmitter();
  /** Per-user state that outlives sessions (saved cart, preferences, unfinished flows). */
  readonly users: UserContexts;
  readonly #signer: Signer;
  /** Cookies verified before, by digest: returning sessions skip the HMAC (verified-cookies.ts). */
  readonly #verified: VerifiedCookies;
  readonly #gate = new SessionGate();
  /** Every store call's deadline (storeTimeoutMs). */
  readonly #deadlines: Deadlines;
  /** Decoded sessions by store key, reused while the stored text is unchanged (decoded.ts). */
  readonly #decoded = new DecodedCache();
  /** A request's own copy of its loaded data: a deep copy for JSON, a fresh decode for other codecs. */
  readonly #copyLoaded: (s: SessionState) => SessionData;
  #warnedUndecodable = false;
  readonly #stats: Omit<EngineStats, 'gateWaiting'> = {
    created: 0, regenerated: 0, destroyed: 0, expired: 0, conflicts: 0, replays: 0, writes: 0, touches: 0, storeErrors: 0,
  };

  constructor(options: TetherOptions = {}) {
    this.options = resolveOptions(options);
    if (this.options.secretsGenerated) {
      process.emitWarning('no secrets given: a random one was generated, so sessions end when the process restarts', { code: 'TETHER_SECRET_GENERATED' });
    }
    if (!this.options.store && this.options.production) {
      process.emitWarning('MemoryStore in production: sessions are lost on restart and not shared between processes', { code: 'TETHER_MEMORY_STORE' });
    }
    this.store = this.options.store ?? new MemoryStore({ clock: this.options.clock });
    this.#signer = new Signer(this.options.secrets);
    this.#verified = new VerifiedCookies(this.#signer);
    this.#deadlines = new Deadlines(this.options.storeTimeoutMs, { onFailure: () => void this.#stats.storeErrors++ });
    const codec = this.options.codec;
    this.#copyLoaded = codec === jsonCodec ? (s) => copyData(s.loaded!.d) : (s) => codec.decode(s.loadedText!).d;
    this.users = new UserContexts(this.store, this.options, (op, what) => this.#call(op, what));
  }

  /** Loads the session named by the request's cookie (or an empty, not yet stored one). */
  async open(req: RequestView, options: OpenOptions = {}): Promise<Session<T>> {
    return this.openNow(req, options);
  }

  /**
   * `open`, answered at once when nothing has to wait: no cookie, or a store that holds the record in
   * memory (`getLocal`) and, for a writer, a free gate; otherwise the promise `open` gives. For
   * adapters whose framework takes either (a hook's callback), so that such a request costs no
   * promise. What fails before anything waits is thrown rather than rejected.
   */
  openNow(req: RequestView, options: OpenOptions = {}): Session<T> | Promise<Session<T>> {
    const state = this.#newState(req.header('user-agent'));
    const raw = readCookie(req.header('cookie'), this.options.cookie.name);
    if (raw === undefined) return new Session<T>(state);
    const unsigned = this.#verified.verify(raw);
    if (!unsigned) {
      state.clearCookie = true;
      return new Session<T>(state);
    }
    const write = options.write ?? !SAFE_METHODS.has(req.method);
    if (write) {
      const release = this.#gate.tryAcquire(unsigned.key);
      if (release === null) return this.#openAfterGate(state, unsigned);
      state.release = release;
    }
    return this.#load(state, unsigned);
  }

  /**
   * Writes what the request changed (only if it changed), touches expiry when due, and returns the
   * Set-Cookie header values to send. Must complete before the status line goes out; releases the gate.
   */
  async commit(session: Session<T>): Promise<string[]> {
    return this.commitNow(session);
  }

  /**
   * `commit`, answered at once when there is nothing to write (the data is unchanged and no touch is
   * due); otherwise the promise `commit` gives. What fails before any store call is thrown.
   */
  commitNow(session: Session<T>): string[] | Promise<string[]> {
    const s = sessionState(session);
    if (s.committed) return s.setCookies;
    s.committed = true;
    let pending: Promise<void> | undefined;
    try {
      pending = this.#persist(s);
    } finally {
      if (pending === undefined) this.#release(s);
    }
    return pending === undefined ? s.setCookies : this.#settle(s, pending);
  }

  /** Ends the request without writing anything (handler failed); releases the gate. */
  abandon(session: Session<T>): void {
    const s = sessionState(session);
    s.committed = true;
    this.#release(s);
  }

  /** CSRF checks for an unsafe request: Sec-Fetch-Site, Origin/Referer, content type, synchronizer token. */
  checkRequest(session: Session<T>, req: RequestView): void {
    if (this.options.csrf === false) return;
    checkCsrf(this.options.csrf, sessionState(session).csrf, req);
  }

  /** The user's live sessions, for an account page; `id` is an opaque handle, never the cookie. */
  async listUserSessions(userId: string, current?: Session<T>): Promise<UserSessionInfo[]> {
    const records = await this.#call(() => this.store.listByUser(userId), 'listByUser');
    const now = this.options.clock.now();
    const currentKey = current ? sessionState(current).key : null;
    return records
      .filter((r) => !this.#expired(r, now))
      .map((r) => ({
        id: handleOf(r.key),
        createdAt: r.createdAt,
        lastSeenAt: r.lastSeenAt,
        userAgent: this.options.codec.decode(r.data).u ?? null,
        current: r.key === currentKey,
      }))
      .sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /** Ends one of the user's sessions by its handle; false when the user has no such session. */
  async destroyUserSession(userId: string, handle: string): Promise<boolean> {
    const records = await this.#call(() => this.store.listByUser(userId), 'listByUser');
    const target = records.find((r) => handleOf(r.key) === handle);
    if (!target) return false;
    await this.#call(() => this.store.destroy(target.key), 'destroy');
    this.#emit('destroyed', target.key, userId, 'user');
    return true;
  }

  /** "Log out everywhere" (or everywhere else, with `except`), account disablement. */
  async destroyUserSessions(userId: string, options: { except?: Session<T> } = {}): Promise<number> {
    const exceptKey = options.except ? sessionState(options.except).key : null;
    const n = await this.#call(() => this.store.destroyByUser(userId, { except: exceptKey ? [exceptKey] : [] }), 'destroyByUser');
    this.#stats.destroyed += n;
    if (channels.destroyed.hasSubscribers || this.events.listenerCount('destroyed') > 0) {
      this.#publish('destroyed', { event: 'destroyed', handle: '*', userId, reason: 'user', at: this.options.clock.now() });
    }
    return n;
  }

  stats(): EngineStats {
    return { ...this.#stats, gateWaiting: this.#gate.waiting };
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** The Set-Cookie value that carries `id` (used by adapters and the cluster router). */
  cookieFor(id: string): string {
    return setCookieHeader(this.options.cookie, this.#signer.sign(id));
  }

  /** The store key of the session a raw Cookie header names, if its signature holds (no store call). */
  keyFromCookieHeader(header: string | undefined): string | null {
    const raw = readCookie(header, this.options.cookie.name);
    return raw === undefined ? null : this.#verified.verify(raw)?.key ?? null;
  }

  // ---- internals ----

  #newState(ua: string | undefined): SessionState {
    return {
      id: null, key: null, record: null, loadedText: null, loadedUserId: null, loaded: null, data: null, copyLoaded: this.#copyLoaded, csrf: undefined,
      ua: ua === undefined ? undefined : ua.slice(0, 256), userId: null, ops: [], regenerate: false, destroyed: false,
      touch: false, resign: false, clearCookie: false, release: null, committed: false, setCookies: [],
      newId: this.options.generateId ?? generateId,
    };
  }

  async #openAfterGate(state: SessionState, unsigned: VerifiedCookie): Promise<Session<T>> {
    state.release = await this.#gate.acquire(unsigned.key, this.options.gateTimeoutMs);
    return this.#load(state, unsigned);
  }

  /** Reads the record (the gate held, for a writer): at once when the store holds it in memory. */
  #load(state: SessionState, unsigned: VerifiedCookie): Session<T> | Promise<Session<T>> {
    try {
      const local = this.#getLocal(unsigned.key);
      return local !== undefined ? this.#loaded(state, unsigned, local) : this.#loadRemote(state, unsigned);
    } catch (err) {
      this.#release(state);
      throw err;
    }
  }

  async #loadRemote(state: SessionState, unsigned: VerifiedCookie): Promise<Session<T>> {
    try {
      const record = await this.#call(() => this.store.get(unsigned.key), 'get');
      return await this.#loaded(state, unsigned, record);
    } catch (err) {
      this.#release(state);
      throw err;
    }
  }

  /** The session over the record the cookie names; one past a deadline is destroyed (a promise). */
  #loaded(state: SessionState, unsigned: VerifiedCookie, record: SessionRecord | null): Session<T> | Promise<Session<T>> {
    const key = unsigned.key;
    if (!record || record.data === ENDED) {
      state.clearCookie = true;
      return this.#released(state);
    }
    if (this.#expired(record, this.options.clock.now())) return this.#expire(state, record);
    const env = this.#decode(key, record.data);
    if (!env) {
      state.clearCookie = true;
      return this.#released(state);
    }
    state.id = unsigned.id;
    state.key = key;
    state.record = record;
    state.loadedText = record.data;
    state.loadedUserId = record.userId;
    state.userId = record.userId;
    state.loaded = env;
    state.csrf = env.c;
    state.ua = env.u;
    state.resign = unsigned.stale;
    return new Session<T>(state);
  }

  async #expire(state: SessionState, record: SessionRecord): Promise<Session<T>> {
    try {
      this.#decoded.forget(record.key);
      await this.#call(() => this.store.destroy(record.key), 'destroy');
      this.#emit('expired', record.key, record.userId);
      state.clearCookie = true;
      return this.#released(state);
    } catch (err) {
      this.#release(state);
      throw err;
    }
  }

  #release(state: SessionState): void {
    state.release?.();
    state.release = null;
  }

  async #settle(s: SessionState, pending: Promise<void>): Promise<string[]> {
    try {
      await pending;
    } finally {
      this.#release(s);
    }
    return s.setCookies;
  }

  /**
   * The record's envelope, or null when the codec cannot read it (a corrupt record, or one written by
   * another codec): that session is treated as absent rather than failing every request that names it.
   */
  #decode(key: string, text: string): Envelope | null {
    try {
      return this.#decoded.envelope(key, text, this.options.codec.decode);
    } catch (err) {
      if (!this.#warnedUndecodable) {
        this.#warnedUndecodable = true;
        // The codec's message may quote the record, and with it user data: name the error type only.
        const kind = err instanceof Error ? err.name : typeof err;
        process.emitWarning(`a stored session could not be decoded (${kind}) and was treated as absent; check the codec option and the store's data`, { code: 'TETHER_RECORD_UNDECODABLE' });
      }
      return null;
    }
  }

  #released(state: SessionState): Session<T> {
    this.#release(state);
    return new Session<T>(state);
  }

  #expired(r: SessionRecord, now: number): boolean {
    return now >= r.lastSeenAt + this.options.idleTimeoutMs || now >= r.createdAt + this.options.absoluteTimeoutMs
      || now >= r.expiresAt || now >= r.absoluteExpiresAt;
  }

  /** `store.getLocal`, failing as a store call would (STORE_UNAVAILABLE, counted) when it throws. */
  #getLocal(key: string): SessionRecord | null | undefined {
    const store = this.store;
    if (store.getLocal === undefined) return undefined;
    try {
      return store.getLocal(key);
    } catch (err) {
      this.#stats.storeErrors++;
      throw isTetherError(err) ? err : new StoreUnavailableError('the session store failed on get', { cause: err });
    }
  }

  #call<R>(op: () => Promise<R>, what: string): Promise<R> {
    return this.#deadlines.run(op, what);
  }


  /**
   * The text to store for the request's session. With `written`, for the JSON codec, the data is first
   * copied (when it is exactly what JSON gives back) and the text encoded from that private copy:
   * `written.env` is then the decoding of the text, ready for the decoded cache.
   */
  #encode(s: SessionState, written?: Written): string {
    let d = dataOf(s);
    const exact = written && this.options.codec === jsonCodec ? jsonExactCopy(d) : undefined;
    if (exact !== undefined) d = exact;
    const env: Envelope = { d };
    if (s.csrf !== undefined) env.c = s.csrf;
    if (s.ua !== undefined) env.u = s.ua;
    if (written) written.env = exact === undefined ? null : env;
    const text = this.options.codec.encode(env);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.options.maxSessionBytes) throw new SessionTooLargeError(bytes, this.options.maxSessionBytes);
    return text;
  }

  #newRecord(s: SessionState, id: string, text: string, now: number): SessionRecord {
    const o = this.options;
    return {
      key: hashId(id), data: text, version: 1, userId: s.userId, createdAt: now, lastSeenAt: now,
      expiresAt: now + o.idleTimeoutMs + o.expiryGraceMs, absoluteExpiresAt: now + o.absoluteTimeoutMs + o.expiryGraceMs,
    };
  }

  /**
   * Commits at once what needs no store call (unchanged data, no touch due); otherwise a promise for
   * the write, touch or destroy.
   */
  #persist(s: SessionState): Promise<void> | undefined {
    const o = this.options;
    const now = o.clock.now();
    const record = s.record;
    if (record === null && (s.destroyed || !this.#hasContent(s))) {
      if (s.clearCookie) s.setCookies.push(clearCookieHeader(o.cookie));
      return undefined;
    }
    if (s.destroyed || record === null || s.regenerate) return this.#write(s, now);
    const loaded = s.loaded!;
    // Data equal by value to what was loaded needs no encoding; otherwise the encoded text decides.
    // After update() a change is all but certain: the text decides at once, sparing the comparison.
    const same = s.userId === s.loadedUserId && s.csrf === loaded.c && (s.data === null || (s.ops.length === 0 && sameData(s.data, loaded.d)));
    if (!same || s.touch || now - record.lastSeenAt >= o.touchIntervalMs) return this.#write(s, now, same);
    if (s.resign) s.setCookies.push(this.cookieFor(s.id!));
    return undefined;
  }

  /** Whether a session not yet stored has anything worth storing. */
  #hasContent(s: SessionState): boolean {
    return s.userId !== null || s.csrf !== undefined || (s.data !== null && Object.keys(s.data).length > 0);
  }

  /** The store calls of a commit: destroy, create or regenerate, compare-and-set, touch. */
  async #write(s: SessionState, now: number, same = false): Promise<void> {
    const o = this.options;
    if (s.destroyed) {
      const rec = s.record!;
      this.#decoded.forget(rec.key);
      await this.#call(() => this.store.destroy(rec.key), 'destroy');
      this.#emit('destroyed', rec.key, rec.userId, 'logout');
      s.setCookies.push(clearCookieHeader(o.cookie));
      return;
    }
    if (s.record === null || s.regenerate) {
      // Regeneration first ends the old record by compare-and-set, so a session that was destroyed (or
      // changed) by another request meanwhile is neither carried to a new ID nor silently overwritten.
      // Its owner stays on it: index entries of records past their deadline are ignored and pruned by
      // every store, and moving it out of the index would cost Redis another round trip.
      let text = this.#encode(s);
      if (s.record !== null) {
        text = await this.#writeLoop(s, now, text, { env: null }, (base) => ({
          ...base, data: ENDED, version: base.version + 1, lastSeenAt: now, expiresAt: now - 1, absoluteExpiresAt: Math.min(base.absoluteExpiresAt, now - 1),
        }));
      }
      const id = s.id ?? s.newId();
      const record = this.#newRecord(s, id, text, now);
      const res = await this.#call(() => this.store.set(record, 0), 'set');
      if (!res.ok) throw new SessionConflictError('a new session ID collided with a live one');
      this.#stats.writes++;
      // Not kept: a session just created or regenerated may never come back, and holding it would
      // fill the decoded cache with every new visitor's session.
      this.#decoded.forget(record.key);
      const previous = s.record;
      s.id = id;
      s.key = record.key;
      s.record = record;
      s.setCookies.push(this.cookieFor(id));
      if (previous) {
        this.#decoded.forget(previous.key);
        this.#emit('regenerated', record.key, record.userId, undefined, previous.key);
      } else {
        this.#emit('created', record.key, record.userId);
      }
      if (record.userId !== null && record.userId !== s.loadedUserId) await this.#enforceLimit(record.userId, record.key);
      return;
    }
    const record = s.record;
    const written: Written = same ? NOTHING_WRITTEN : { env: null };
    const text = same ? null : this.#encode(s, written);
    if (text !== null && (text !== s.loadedText || s.userId !== s.loadedUserId)) {
      const final = await this.#writeLoop(s, now, text, written, (base, data) => ({
        key: base.key, data, version: base.version + 1, userId: s.userId, createdAt: base.createdAt, lastSeenAt: now,
        expiresAt: now + o.idleTimeoutMs + o.expiryGraceMs, absoluteExpiresAt: base.absoluteExpiresAt,
      }));
      this.#keepWritten(record.key, final, written);
      if (s.resign || o.cookie.maxAgeMs !== undefined) s.setCookies.push(this.cookieFor(s.id!));
      if (s.userId !== null && s.userId !== s.loadedUserId) await this.#enforceLimit(s.userId, record.key);
      return;
    }
    if (s.touch || now - record.lastSeenAt >= o.touchIntervalMs) {
      await this.#call(() => this.store.touch(record.key, now + o.idleTimeoutMs + o.expiryGraceMs, now), 'touch');
      this.#stats.touches++;
      if (o.cookie.maxAgeMs !== undefined) s.resign = true;
    }
    if (s.resign) s.setCookies.push(this.cookieFor(s.id!));
  }

  /** Keeps the decoding of the text just written (see #encode), so the session's next request skips the codec. */
  #keepWritten(key: string, text: string, written: Written): void {
    if (written.env) this.#decoded.prime(key, text, written.env);
    else this.#decoded.forget(key);
  }

  /**
   * Compare-and-set of `next(base, encodedData)` over the loaded record. On a conflict the handler's
   * `update()`/`setUser()` changes are re-applied to the fresh record and the write retried; a change
   * that cannot be replayed, or a session that ended meanwhile, fails with SESSION_CONFLICT.
   * Returns the data text it wrote (after any replay).
   */
  async #writeLoop(s: SessionState, now: number, firstText: string, written: Written, next: (base: SessionRecord, data: string) => SessionRecord): Promise<string> {
    let base = s.record!;
    let text = firstText;
    let replayable: boolean | undefined;
    for (let attempt = 0; ; attempt++) {
      const rec = next(base, text);
      const res = await this.#call(() => this.store.set(rec, base.version), 'set');
      if (res.ok) {
        this.#stats.writes++;
        s.record = rec;
        return text;
      }
      this.#stats.conflicts++;
      replayable ??= await this.#replayable(s, firstText);
      const fresh = replayable && attempt < this.options.maxReplays ? await this.#call(() => this.store.get(base.key), 'get') : null;
      if (!fresh || !this.#live(fresh, now)) {
        this.#emit('conflict', base.key, s.userId, 'rejected');
        // Replayable and still within budget means the fresh record was read, and it was gone.
        const ended = replayable && attempt < this.options.maxReplays;
        throw new SessionConflictError(ended ? 'the session ended while this request ran' : undefined);
      }
      this.#emit('conflict', base.key, s.userId, 'replayed');
      this.#stats.replays++;
      await this.#rebase(s, fresh.data, fresh.userId, s);
      text = this.#encode(s, written);
      base = fresh;
    }
  }

  /** Re-applies the request's replayable changes to `data`, writing the outcome into `into`. */
  async #rebase(s: SessionState, data: string, userId: string | null, into: SessionState): Promise<void> {
    const env = this.options.codec.decode(data);
    // A token rotated by regenerate() in this request is part of the intent, not of the data to rebase.
    const replay: SessionState = { ...s, data: env.d, csrf: s.regenerate ? s.csrf : env.c, ua: env.u, userId };
    for (const op of s.ops) await op(env.d, replay);
    into.data = env.d;
    into.csrf = replay.csrf;
    into.userId = replay.userId;
  }

  /** True when every change the handler made went through `update`/`setUser`, so it can be re-applied. */
  async #replayable(s: SessionState, currentText: string): Promise<boolean> {
    const probe: SessionState = { ...s };
    await this.#rebase(s, s.loadedText!, s.loadedUserId, probe);
    return this.#encode(probe) === currentText && probe.userId === s.userId;
  }

  /** A record that still names a session: not past a deadline, not ended by a regeneration. */
  #live(r: SessionRecord, now: number): boolean {
    return r.data !== ENDED && !this.#expired(r, now);
  }

  async #enforceLimit(userId: string, currentKey: string): Promise<void> {
    const max = this.options.maxSessionsPerUser;
    if (max === 0) return;
    const now = this.options.clock.now();
    const live = (await this.#call(() => this.store.listByUser(userId), 'listByUser')).filter((r) => !this.#expired(r, now));
    if (live.length <= max) return;
    const victims = live.filter((r) => r.key !== currentKey).sort((a, b) => a.createdAt - b.createdAt).slice(0, live.length - max);
    for (const v of victims) {
      await this.#call(() => this.store.destroy(v.key), 'destroy');
      this.#emit('destroyed', v.key, userId, 'limit');
    }
  }

  #emit(event: LifecycleEvent, key: string, userId: string | null, reason?: string, previousKey?: string): void {
    if (event === 'created') this.#stats.created++;
    else if (event === 'regenerated') this.#stats.regenerated++;
    else if (event === 'destroyed') this.#stats.destroyed++;
    else if (event === 'expired') this.#stats.expired++;
    if (!channels[event].hasSubscribers && this.events.listenerCount(event) === 0) return;
    const msg: LifecycleMessage = { event, handle: handleOf(key), userId, at: this.options.clock.now() };
    if (reason !== undefined) msg.reason = reason;
    if (previousKey !== undefined) msg.previousHandle = handleOf(previousKey);
    this.#publish(event, msg);
  }

  #publish(event: LifecycleEvent, msg: LifecycleMessage): void {
    if (channels[event].hasSubscribers) channels[event].publish(msg);
    this.events.emit(event, msg);
  }
}

/** Builds an engine; see TetherOptions. */
export function createTether<T extends object = SessionData>(options: TetherOptions = {}): Tether<T> {
  return new Tether<T>(options);
}

export { OptionsInvalidError };
