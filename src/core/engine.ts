/**
 * The session engine: loads a request's session from its signed cookie, serialises writers of one
 * session (gate) and of one record across processes (compare-and-set), and commits every change
 * before the response goes out.
 * @module
 */
import { EventEmitter } from 'node:events';
import { checkUserId, generateId, handleOf, hashId, isWellFormedId } from './ids.js';
import { isMoved, movedId, pointedTo } from './renewal.js';
import { Signer } from './signer.js';
import { Admission } from './admission.js';
import { networkOf } from './network.js';
import { Committer, ENDED, Expiry, endedRecord, expiryOf, recordHandle, sessionExpired, sessionsOf } from './commit.js';
import type { EventNames } from './commit.js';
import { VerifiedCookies } from './verified-cookies.js';
import type { VerifiedCookie } from './verified-cookies.js';
import { SessionCookie, readCookie } from './cookie.js';
import { SessionGate } from './gate.js';
import type { Release } from './gate.js';
import { Deadlines } from './timeout.js';
import { DecodedCache } from './decoded.js';
import type { DecodedHolder } from './decoded.js';
import { draft } from './draft.js';
import { resolveOptions } from './options.js';
import type { ResolvedOptions, TetherOptions } from './options.js';
import { CodecFailureWarning, isJsonCodec } from './codec.js';
import type { Envelope } from './codec.js';
import { Session, deadlinesOf, handleIn, idOfKey, sessionState } from './session.js';
import type { RejectedCookie, SessionData, SessionState } from './session.js';
import { OptionsInvalidError, StoreUnavailableError, isTetherError } from './errors.js';
import { warnSweptListenerThrew } from './store.js';
import type { LocalSlot, SessionRecord, SessionStore, SweptSession } from './store.js';
import { MemoryStore } from '../stores/memory/index.js';
import { channels } from '../observability/channels.js';
import { isTraced, traced, tracing } from '../observability/tracing.js';
import type { CommitTraceContext, OpenTraceContext, StoreTraceContext } from '../observability/tracing.js';
import type { LifecycleEvent, LifecycleMessage } from '../observability/channels.js';
import { checkCsrf, checkCsrfHead, checkOrigin } from './csrf.js';
import type { RequestView } from './csrf.js';
import { handshakeOriginsOf } from './handshake-origins.js';
import { UserContexts } from './user-context.js';
import { NO_SOCKET_ENDS, SocketRegistry, SocketSession } from './socket.js';
import type { SocketEndReason, SocketOptions } from './socket.js';
import { checkOptions } from './options-check.js';
import type { OptionKind } from './options-check.js';

const SOCKET_OPTIONS: Record<keyof SocketOptions, OptionKind> = { checkIntervalMs: 'timerMsOrZero', changeFeed: 'boolean' };

export type { RequestView } from './csrf.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/**
 * Listings "log out everywhere else" ends sessions from under renewal before it deletes what is left
 * at once (#endAllBut): each round ends what signed in or renewed during the one before.
 */
const END_ROUNDS = 5;
/** What a new session's draft is made over: never changed (every write lands in the draft's copy). */
const NO_DATA: SessionData = Object.freeze({});

export interface OpenOptions {
  /**
   * Whether this request may write the session and so waits its turn at the per-session gate.
   * @default true for unsafe methods (POST, PUT, PATCH, DELETE), false for GET, HEAD, OPTIONS
   */
  write?: boolean;
  /**
   * Whether the commit may replace a due ID (`renewal`): false for a caller that cannot deliver the new
   * cookie to the browser (a read for a WebSocket, a background job), since the browser would keep
   * only the old ID, dead after the grace. @default true
   */
  renew?: boolean;
}

export interface UserSessionInfo {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  /** When it ends unless it is used first (`session.expiresAt` there). */
  expiresAt: number;
  userAgent: string | null;
  /** The network it was last seen from (`addressChange`: the client's address cut to `addressPrefix`), e.g. `203.0.113.0/24`; null when not recorded. */
  network: string | null;
  /** Marked with `session.remember()` ("keep me signed in"). */
  remembered: boolean;
  /** When its user last signed in or confirmed who they are there (`session.authenticatedAt`); null when not known. */
  authenticatedAt: number | null;
  current: boolean;
}

export interface EngineStats {
  created: number;
  regenerated: number;
  /** Of those, IDs replaced by the renewal timeout (`renewal`; the `regenerated` event with reason `renewal`). */
  renewed: number;
  destroyed: number;
  /** Sessions that timed out: presented past a timeout, or deleted by the store's sweep (`swept`). */
  expired: number;
  /** Of those, the ones the store's sweep deleted in this process (the `expired` event with reason `swept`). */
  swept: number;
  conflicts: number;
  replays: number;
  writes: number;
  touches: number;
  storeErrors: number;
  /** Session cookies that were forged or named no session (Session.rejectedCookie). */
  rejectedCookies: number;
  /**
   * Of those, the forged ones (malformed, or signed by no configured secret): what ID guessing sends,
   * since a guess cannot carry a valid signature. The others name no session: ended, replaced by a
   * login, or timed out longer ago than `expiryGraceMs`.
   */
  forgedCookies: number;
  /** Sessions presented by another browser than the one they were last seen in, or from another network under `addressChange` (the `anomaly` event). */
  anomalies: number;
  /** New sessions refused under `newSessions`: a rate passed (RATE_LIMITED) or the store full (TOO_MANY_SESSIONS). */
  refusedSessions: number;
  /**
   * Under `newSessions.maxActive`: the live sessions the store holds as this engine reckons them, its last
   * count plus the sessions it stored since; null without the cap, or before a count has succeeded.
   */
  activeSessions: number | null;
  /** Requests queued at a per-session gate behind another request of the same session. */
  gateWaiting: number;
  /** Requests holding a per-session gate (writers inside their session section). */
  gateHolding: number;
  /** Requests that had to wait at a per-session gate (their session's gate was held), since start. */
  gateWaits: number;
  /** Seconds those requests spent waiting, in all (given up at `gateTimeoutMs` or not). */
  gateWaitSeconds: number;
  /** Cookies remembered as verified (their next return skips the HMAC); at most 10,000. */
  verifiedCookies: number;
  /** Sessions of open sockets (`openSocket`) this engine watches: opened with a session, not yet closed or ended. */
  sockets: number;
  /** Sockets whose session ended while they were open, by reason (SocketEndReason). */
  socketEnds: Readonly<Record<SocketEndReason, number>>;
}

/** What an abandoned request's answer carries when it carries no cookie. */
const NO_COOKIES: readonly string[] = Object.freeze([]);

export class Tether<T extends object = SessionData> implements AsyncDisposable {
  readonly options: Readonly<ResolvedOptions>;
  readonly store: SessionStore;
  readonly events = new EventEmitter();
  /** Per-user state that outlives sessions (saved cart, preferences, unfinished flows). */
  readonly users: UserContexts;
  readonly #signer: Signer;
  readonly #cookie: SessionCookie;
  readonly #newId: () => string;
  /** Cookies verified before, by digest: returning sessions skip the HMAC (verified-cookies.ts). */
  readonly #verified: VerifiedCookies;
  readonly #gate = new SessionGate();
  /** Every store call's deadline (storeTimeoutMs). */
  readonly #deadlines: Deadlines;
  /** Decoded sessions by store key, reused while the stored text is unchanged (decoded.ts). */
  readonly #decoded = new DecodedCache();
  /** A request's own copy of its loaded data: a deep copy for JSON, a fresh decode for other codecs. */
  readonly #copyLoaded: (s: SessionState) => SessionData;
  /** The commit path (commit.ts). */
  readonly #commits: Committer;
  /** The newSessions limits, or null without them. */
  readonly #admission: Admission | null;
  readonly #undecodable = new CodecFailureWarning('TETHER_RECORD_UNDECODABLE', (kind) => `a stored session could not be decoded (${kind}) and was treated as absent; check the codec option and the store's data`);
  /** The sessions of open sockets (`openSocket`), made with the first. */
  #sockets: SocketRegistry | null = null;
  /** Ends the subscription to the store's swept sessions (SessionStore.onSwept); absent without one. */
  readonly #unsubscribeSwept: (() => void) | undefined;
  readonly #stats: Omit<EngineStats, 'gateWaiting' | 'gateHolding' | 'verifiedCookies' | 'sockets' | 'socketEnds' | 'activeSessions'> = {
    created: 0, regenerated: 0, renewed: 0, destroyed: 0, expired: 0, swept: 0, conflicts: 0, replays: 0, writes: 0, touches: 0, storeErrors: 0,
    rejectedCookies: 0, forgedCookies: 0, anomalies: 0, refusedSessions: 0, gateWaits: 0, gateWaitSeconds: 0,
  };

  constructor(options: TetherOptions = {}) {
    this.options = resolveOptions(options);
    if (this.options.secretsGenerated) {
      process.emitWarning('no secrets given: a random one was generated, so sessions end when the process restarts', { code: 'TETHER_SECRET_GENERATED' });
    }
    const weak = this.options.weakSecrets;
    if (weak.length > 0) {
      // Positions only: the message never quotes a secret.
      process.emitWarning(`options.secrets: secret${weak.length > 1 ? 's' : ''} ${weak.join(', ')} of ${this.options.secrets.length} `
        + `${weak.length > 1 ? 'are repeated patterns' : 'is a repeated pattern'}, not random, and would be refused in production; `
        + 'generate one with npx tether secret', { code: 'TETHER_WEAK_SECRET' });
    }
    if (this.options.production && !this.options.cookie.secure) {
      process.emitWarning('cookie.secure is false in production: browsers will send the session cookie over plain HTTP too', { code: 'TETHER_INSECURE_COOKIE' });
    }
    if (!this.options.store && this.options.production) {
      process.emitWarning('MemoryStore in production: sessions are lost on restart and not shared between processes', { code: 'TETHER_MEMORY_STORE' });
    }
    this.store = this.options.store ?? new MemoryStore({ clock: this.options.clock });
    const maxWaitMs = this.store.maxWaitMs;
    if (typeof maxWaitMs === 'number' && maxWaitMs >= this.options.storeTimeoutMs) {
      process.emitWarning(`the ${this.store.name} store lets a write wait ${maxWaitMs} ms, not less than storeTimeoutMs (${this.options.storeTimeoutMs} ms): `
        + 'a write the engine answered 503 STORE_UNAVAILABLE for may still commit after it; lower the store\'s wait (SqliteStore busyTimeoutMs)', { code: 'TETHER_STORE_OUTWAITS_DEADLINE' });
    }
    this.#signer = new Signer(this.options.secrets);
    this.#cookie = new SessionCookie(this.options.cookie);
    this.#newId = this.options.generateId ? checkedIds(this.options.generateId) : generateId;
    this.#verified = new VerifiedCookies(this.#signer);
    this.#deadlines = new Deadlines(this.options.storeTimeoutMs, { onFailure: () => void this.#stats.storeErrors++ });
    const codec = this.options.codec;
    // A new session's data is a draft too, over an empty object no draft changes: its writes are
    // checked and counted as a stored session's are.
    this.#copyLoaded = isJsonCodec(codec) ? (s) => draft(s.loaded === null ? NO_DATA : s.loaded.d)
      : (s) => (s.loaded === null ? {} : codec.decode(s.loadedText!).d);
    this.users = new UserContexts(this.store, this.options, (op, what) => this.#call(op, what));
    this.#admission = this.options.newSessions === null ? null : new Admission(this.options.newSessions, this.store, this.options.clock, this.options.expiryGraceMs);
    const admission = this.#admission;
    this.#commits = new Committer({
      options: this.options, store: this.store, decoded: this.#decoded, stats: this.#stats,
      admit: admission === null ? undefined : (s) => admission.admit(s.view?.address?.()).catch((err: unknown) => {
        if (isTetherError(err) && (err.code === 'RATE_LIMITED' || err.code === 'TOO_MANY_SESSIONS')) this.#stats.refusedSessions++;
        throw err;
      }),
      call: (op, what) => this.#call(op, what),
      endOnce: (key, userId, event, reason, handle) => this.#endOnce(key, userId, event, reason, handle),
      emit: (event, key, userId, reason, previousKey, names) => this.#emit(event, key, userId, reason, previousKey, names),
      issueCookie: (id, key, lastingMs, keepVerified = true) => {
        const value = keepVerified ? this.#verified.sign(id, key) : this.#signer.sign(id);
        return lastingMs === undefined ? this.#cookie.set(value) : this.#cookie.lasting(value, lastingMs);
      },
      clearCookie: this.#cookie.clear,
    });
    // Sessions that time out unseen end in the store's sweep, off every request's path.
    this.#unsubscribeSwept = this.store.onSwept?.((swept) => this.#swept(swept));
  }

  /** The deletions under way, by store key (see #endOnce). */
  readonly #ending = new Map<string, Promise<boolean>>();

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
    if (!isTraced(tracing.open)) return this.#openNow(req, options);
    const context: OpenTraceContext = { method: req.method };
    return traced(tracing.open, context, () => this.#openNow(req, options), (session) => {
      context.handle = session.handle;
      context.rejectedCookie = session.rejectedCookie;
    });
  }

  #openNow(req: RequestView, options: OpenOptions): Session<T> | Promise<Session<T>> {
    const o = this.options;
    const state = this.#newState(req.header('user-agent'), o.addressChange === 'off' ? undefined : networkOf(req.address?.(), o.addressPrefix));
    if (this.#admission !== null) state.view = req;
    const raw = readCookie(req.header('cookie'), this.options.cookie.name);
    if (raw === undefined) return new Session<T>(state);
    const unsigned = this.#verified.verify(raw);
    if (!unsigned) {
      this.#reject(state, 'forged');
      return new Session<T>(state);
    }
    if (options.renew === false) state.renew = false;
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
   * due); otherwise the promise `commit` gives. What fails before any store call is thrown. Called again
   * while an earlier call's write is under way, it gives that write's outcome once it is known.
   */
  commitNow(session: Session<T>): string[] | Promise<string[]> {
    if (!isTraced(tracing.commit)) return this.#commitNow(session);
    const context: CommitTraceContext = { handle: session.handle };
    return traced(tracing.commit, context, () => this.#commitNow(session));
  }

  #commitNow(session: Session<T>): string[] | Promise<string[]> {
    const s = sessionState(session);
    // Answered at once, the cookies would be those of a write still under way: none yet.
    if (s.committed) return s.committing ?? s.setCookies;
    if (s.updating !== 0) return (s.afterUpdates ??= this.#afterUpdates(s));
    return this.#commitState(s);
  }

  #commitState(s: SessionState): string[] | Promise<string[]> {
    s.committed = true;
    // A request that never called afterCommit() pays this one check.
    if (s.afterCommit !== null) return this.#persistThenRun(s, s.afterCommit);
    return this.#persist(s);
  }

  #persist(s: SessionState): string[] | Promise<string[]> {
    let pending: Promise<void> | undefined;
    try {
      pending = this.#commits.persist(s);
    } finally {
      if (pending === undefined) this.#release(s);
    }
    if (pending === undefined) return s.setCookies;
    const committing = this.#settle(s, pending);
    s.committing = committing;
    const settled = (): void => {
      if (s.committing === committing) s.committing = null;
    };
    committing.then(settled, settled);
    return committing;
  }

  /**
   * Commits, then runs the `afterCommit()` callbacks once the commit succeeded. They are taken now: a
   * commit that fails drops them, and a later one (endNow's) does not run them again.
   */
  #persistThenRun(s: SessionState, after: Array<() => void>): string[] | Promise<string[]> {
    s.afterCommit = null;
    const out = this.#persist(s);
    if (Array.isArray(out)) {
      runAfterCommit(after);
      return out;
    }
    return out.then((cookies) => {
      runAfterCommit(after);
      return cookies;
    });
  }

  /**
   * Commits once the request's asynchronous `update()` functions have settled (one the handler did not
   * await would otherwise be refused with SESSION_COMMITTED, its change lost), or at gateTimeoutMs:
   * a function that never settles must not hold the response, nor the session's gate, for good.
   */
  async #afterUpdates(s: SessionState): Promise<string[]> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.gateTimeoutMs);
      s.updated = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    s.updated = null;
    s.afterUpdates = null;
    // Committed meanwhile, by a commit called between the last update settling and this turn.
    return s.committed ? s.committing ?? s.setCookies : this.#commitState(s);
  }

  /**
   * Ends the session at once, even one already committed: its record is deleted now and the response
   * expires the cookie instead of carrying the session's. For a login undone after its commit (the
   * account was disabled or its password changed while the login ran); before a commit, `destroy()`
   * does the same at commit.
   */
  async endNow(session: Session<T>): Promise<void> {
    const s = sessionState(session);
    s.destroyed = true;
    if (s.committed) {
      // Committed already: commit once more, as an ending, and send only what that commit sends.
      s.committed = false;
      s.setCookies.length = 0;
    }
    // Not after the update() functions still running, as a commit would wait (up to gateTimeoutMs):
    // whatever they change ends with the session. A commit waiting for them goes ahead now, as this one.
    if (s.afterUpdates !== null) {
      s.updated?.();
      await s.afterUpdates;
      return;
    }
    await this.#commitState(s);
  }

  /**
   * Ends the request without writing anything (handler failed, or its client went away before it was
   * answered); releases the gate. A no-op once the commit has begun, its wait for pending `update()`
   * functions included: the handler has answered, so its changes are stored.
   *
   * Returns the Set-Cookie values the error answer carries (and `commit` returns from then on): none,
   * except the expiry of a presented cookie that names nothing whatever the request's outcome (forged,
   * or its session timed out). Left in the browser, such a cookie would be sent into every refusal: an
   * app that throttles forged cookies per address, answering 429, would never let go of a browser whose
   * cookie a replaced secret no longer verifies.
   */
  abandon(session: Session<T>): readonly string[] {
    const s = sessionState(session);
    // A commit under way releases the gate when its write settles: released now, the session's next
    // writer would load the record the write is replacing.
    if (s.committed || s.afterUpdates !== null) return NO_COOKIES;
    s.committed = true;
    // Nothing of the request is stored: a later endNow, which commits an ending, must not run them.
    s.afterCommit = null;
    if (s.clearCookie && s.record === null) s.setCookies.push(this.#cookie.clear);
    this.#release(s);
    return s.setCookies;
  }

  /**
   * CSRF checks for an unsafe request: Sec-Fetch-Site, Origin/Referer, content type, synchronizer token.
   * Throws ORIGIN_MISMATCH, UNSUPPORTED_MEDIA_TYPE or CSRF_TOKEN_INVALID; safe methods always pass.
   *
   * With `csrf.forms`, a form post (`application/x-www-form-urlencoded`, `multipart/form-data`) without
   * the token header takes the token from `form[csrf.formField]`, where `form` is its parsed body (an
   * object of fields, as body parsers give it). Without `form`, such a request fails CSRF_TOKEN_INVALID:
   * a caller that cannot read the body refuses form posts rather than letting them through. An adapter
   * that parses the body after opening the session calls `checkRequestHead` first instead.
   * @example
   * // Express, a body parser registered before the session middleware:
   * tether.checkRequest(session, view, req.body);
   */
  checkRequest(session: Session<T>, req: RequestView, form?: object): void {
    if (this.options.csrf === false) return;
    checkCsrf(this.options.csrf, sessionState(session).csrf, req, form);
  }

  /**
   * The part of `checkRequest` the request's head decides, for an adapter that opens the session before
   * the body is parsed: Sec-Fetch-Site, Origin/Referer, the content type, and the token when it is in
   * the header. Returns true only for a form post whose token is still to be read from its body (with
   * `csrf.forms`): the adapter then calls `checkRequest(session, req, form)` with the parsed body once
   * it has it, before the route's handler runs, and answers its error. False: nothing is left to check.
   * Costs a JSON request what `checkRequest` does.
   * @example
   * // onRequest (no body yet):
   * const pending = tether.checkRequestHead(session, view);
   * // once the body is parsed, before the handler, if pending:
   * tether.checkRequest(session, view, body);
   */
  checkRequestHead(session: Session<T>, req: RequestView): boolean {
    if (this.options.csrf === false) return false;
    return checkCsrfHead(this.options.csrf, sessionState(session).csrf, req);
  }

  /**
   * For a WebSocket handshake (or any request that opens a long-lived connection): checks where it
   * comes from, then reads the session its cookie names, as a read-only request would. A browser sends
   * its cookies with a handshake that a page of another origin opens, and no CORS stands in the way, so
   * the handshake must come from an allowed origin: Sec-Fetch-Site `cross-site` and an Origin other than
   * `csrf.origins` (by default the Host's) are refused with ORIGIN_MISMATCH (403), as is a handshake
   * without Origin under `csrf.requireOrigin` (browsers always send one). Rejects with
   * STORE_UNAVAILABLE when the store cannot answer. The SocketSession follows the session while the
   * connection lives: see its `touch()`, `update()`, `onEnd()` and `close()`.
   * @example
   * // node:http with `ws`: tether/node's openSocket(tether, req) calls this; see docs/websocket.md.
   * server.on('upgrade', (req, socket, head) => {
   *   openSocket(tether, req).then((live) => {
   *     if (live.userId === null) return refuseUpgrade(socket, 401);
   *     wss.handleUpgrade(req, socket, head, (ws) => {
   *       live.onEnd(() => ws.close(4001, 'session ended'));
   *       ws.on('message', () => void live.touch().catch(() => ws.close(1011)));
   *       ws.on('close', () => live.close());
   *     });
   *   }).catch((err: unknown) => refuseUpgrade(socket, err));
   * });
   */
  async openSocket(req: RequestView, options: SocketOptions = {}): Promise<SocketSession<T>> {
    checkOptions('openSocket', options, SOCKET_OPTIONS);
    const csrf = this.options.csrf;
    const checks = csrf === false ? { origins: undefined, requireOrigin: false, secureOrigins: this.options.cookie.secure } : csrf;
    // An engine whose cookie is Secure on some requests only decides per handshake (handshake-origins.ts).
    const decided = handshakeOriginsOf(this)?.(req);
    checkOrigin(decided === undefined ? checks : { ...checks, ...decided }, req, false);
    // No renewal: a handshake's answer may not carry cookies to the browser (socket.io's does not).
    this.#sockets ??= new SocketRegistry(this.options.clock, this.store.subscribe ? (listener, o) => this.store.subscribe!(listener, o) : undefined);
    const sockets = this.#sockets;
    // An ending between this read and the socket's registration reaches the socket once registered.
    const watch = sockets.watch(options.changeFeed ?? true);
    let session: Session<T>;
    let cookies: string[];
    try {
      session = await this.open(req, { write: false, renew: false });
      cookies = await this.commit(session);
    } catch (err) {
      sockets.settle(watch, null, null);
      throw err;
    }
    // A cookie whose ID renewal replaced, presented within the grace: the socket reads the session under
    // its new ID from now on, since the old one soon names nothing.
    const s = sessionState(session);
    const view: RequestView = s.id === null || s.id === s.presentedId ? req
      : { method: req.method, header: (name) => (name === 'cookie' ? `${this.options.cookie.name}=${this.#signer.sign(s.id!)}` : req.header(name)) };
    const socket = new SocketSession<T>(this, sockets, view, session, cookies, options);
    sockets.settle(watch, s.key, socket);
    return socket;
  }

  /**
   * The user's live sessions, for an account page; `id` is an opaque handle, never the cookie: the
   * session's `handle`, which names it until it ends, through ID renewals (`renewal`).
   */
  async listUserSessions(userId: string, current?: Session<T>): Promise<UserSessionInfo[]> {
    checkUserId(userId);
    const records = await this.#call(() => this.store.listByUser(userId), 'listByUser');
    const now = this.options.clock.now();
    // Its renewed key too: another request of the session may have renewed its ID since this one loaded it.
    const currentKeys = current ? await this.#keysOf(sessionState(current)) : [];
    const live: Array<{ r: SessionRecord; env: Envelope | null }> = [];
    for (const r of records) {
      // A record the codec cannot read is listed without what its envelope would tell.
      let env: Envelope | null = null;
      try {
        env = this.options.codec.decode(r.data);
      } catch { /* listed as is */ }
      if (!sessionExpired(r, now, this.options, () => env?.r === 1)) live.push({ r, env });
    }
    // A session whose renewal is under way, or whose renewal failed at its second write, is stored under
    // both IDs: listed once, as its most recently seen record.
    const listed: UserSessionInfo[] = [];
    for (const group of sessionsOf(live.map((l) => l.r), this.options)) {
      const r = group.reduce((a, b) => (b.lastSeenAt > a.lastSeenAt ? b : a));
      const env = live.find((l) => l.r === r)!.env;
      listed.push({
        id: env?.h ?? handleOf(r.key), createdAt: r.createdAt, lastSeenAt: r.lastSeenAt, expiresAt: deadlinesOf(r, env?.r === 1, this.options).expiresAt,
        userAgent: env?.u ?? null, network: env?.n ?? null,
        remembered: env?.r === 1, authenticatedAt: env?.a ?? null, current: group.some((g) => currentKeys.includes(g.key)),
      });
    }
    return listed.sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /**
   * Ends one of the user's sessions by its handle (as `listUserSessions()` and `session.handle` give
   * it, however often renewal replaced its ID since); false when the user has no such session.
   */
  async destroyUserSession(userId: string, handle: string): Promise<boolean> {
    checkUserId(userId);
    const records = await this.#call(() => this.store.listByUser(userId), 'listByUser');
    const now = this.options.clock.now();
    // By the session's handle, or by the handle of the ID it is stored under (an event's of before it
    // kept one). Past its timeout (still in the store for expiryGraceMs) it ended already, and is not listed.
    const targets = records.filter((r) => (handleOf(r.key) === handle || recordHandle(r, this.options.codec) === handle)
      && !sessionExpired(r, now, this.options));
    if (targets.length === 0) return false;
    return this.#commits.endOwned(userId, targets, 'user');
  }

  /**
   * "Log out everywhere" (or everywhere else, with `except`), account disablement. Returns how many live
   * sessions ended, each once: under `renewal`, one caught between its renewal's two writes is stored
   * under two IDs, and the user's records are ended by session (see #endAllBut) rather than counted by
   * the store's `destroyByUser`, which would count it twice. A session past its timeout, which the store
   * keeps for `expiryGraceMs`, had ended already: its record is removed too, and not counted.
   */
  async destroyUserSessions(userId: string, options: { except?: Session<T> } = {}): Promise<number> {
    checkUserId(userId);
    const except = options.except ? await this.#keysOf(sessionState(options.except)) : [];
    const n = this.options.renewal !== null
      ? await this.#endAllBut(userId, except, except.length > 0 ? handleIn(sessionState(options.except!))! : null)
      : await this.#call(() => this.store.destroyByUser(userId, { except, marginMs: this.options.expiryGraceMs }), 'destroyByUser');
    this.#stats.destroyed += n;
    this.#sockets?.endedForUser(userId, except);
    if (channels.destroyed.hasSubscribers || this.events.listenerCount('destroyed') > 0) {
      this.#publish('destroyed', { event: 'destroyed', handle: '*', userId, reason: 'user', at: this.options.clock.now() });
    }
    return n;
  }

  /**
   * "Log out everywhere (else)" under renewal: ends every session of the user but the one stored under
   * `except` (whose handle is `handle`; none when both are empty), which another request of it may be
   * renewing meanwhile. Its copy
   * under the new ID is stored before the old record becomes a pointer, at any moment, and the store's
   * destroyByUser, sparing only the keys it is given, would delete a copy stored after they were
   * listed: the renewal then answers the new ID of a deleted record, and the device that asked to stay
   * is signed out. So the user's records are listed and deleted one by one, the session's own (its
   * handle, which its copies keep, or its keys) spared wherever they are listed, and listed again until
   * a listing holds nothing more to end: a session that renewed or signed in meanwhile is ended in the
   * next round. `except` gains the keys spared. Returns how many live sessions were ended, counted by
   * session: one stored under two IDs (a renewal between its two writes) is counted once.
   */
  async #endAllBut(userId: string, except: string[], handle: string | null): Promise<number> {
    const ended = new Set<string>();
    // Counted by session: one renewed meanwhile is deleted under both its IDs.
    const sessions = new Set<string>();
    for (let round = 0; round < END_ROUNDS; round++) {
      const listed = await this.#call(() => this.store.listByUser(userId), 'listByUser');
      const now = this.options.clock.now();
      const victims: SessionRecord[] = [];
      for (const g of sessionsOf(listed, this.options)) {
        if (g.some((r) => except.includes(r.key) || recordHandle(r, this.options.codec) === handle)) {
          for (const r of g) if (!except.includes(r.key)) except.push(r.key);
        } else {
          for (const r of g) if (!ended.has(r.key)) victims.push(r);
        }
      }
      if (victims.length === 0) return sessions.size;
      await Promise.all(victims.map(async (r) => {
        ended.add(r.key);
        this.#decoded.forget(r.key);
        await this.#call(() => this.store.destroy(r.key), 'destroy');
        if (!sessionExpired(r, now, this.options)) sessions.add(recordHandle(r, this.options.codec));
      }));
    }
    // Still new sessions at every listing: what is left goes at once, as without renewal.
    return sessions.size + await this.#call(() => this.store.destroyByUser(userId, { except, marginMs: this.options.expiryGraceMs }), 'destroyByUser');
  }

  /**
   * The store keys that hold the session `s` names: its own, and, when another request of it renewed its
   * ID since this one loaded it (`renewal`), the key of the new ID its record now points to. Spared by
   * "log out everywhere else", the old key alone would leave the session's renewed record to be ended
   * with the others, and the device that asked to stay signed in with it.
   */
  async #keysOf(s: SessionState): Promise<string[]> {
    if (s.key === null) return [];
    const keys = [s.key];
    if (this.options.renewal === null) return keys;
    let id = idOfKey(s, s.key);
    // A renewed ID is not renewed again within its grace, so one hop is all there is; two for safety.
    for (let hop = 0; hop < 2 && id !== null; hop++) {
      const key = keys.at(-1)!;
      const rec = await this.#call(() => this.store.get(key), 'get');
      id = rec !== null && isMoved(rec.data) ? movedId(rec.data, id) : null;
      if (id !== null) keys.push(hashId(id));
    }
    return keys;
  }

  /**
   * Ends every session of every user at once (ASVS 7.4.5): after a breach, or when what sessions hold
   * changes meaning. Every request then starts anonymous; user contexts (`tether.users`) stay. This
   * process's open WebSockets end at once, other processes' when their feed reports the removals (or at
   * their next check). Returns how many live sessions ended (not those past their timeout that the store
   * keeps for `expiryGraceMs`, though their records go too); the `destroyed` event is published once,
   * with handle `*`, userId null and reason `all`. It walks the whole store (twice under `renewal`, for a
   * session renewed under a key the first walk had passed), so it is bounded by the
   * store's own per-command deadlines, not `storeTimeoutMs`. Needs a store with `destroyAll()` (every
   * store Tether ships); otherwise it throws OPTIONS_INVALID.
   * @example
   * // An operator's endpoint, after a password database leak:
   * const ended = await tether.destroyAllSessions();
   */
  async destroyAllSessions(): Promise<number> {
    const store = this.store;
    if (typeof store.destroyAll !== 'function') {
      throw new OptionsInvalidError(`Tether: the ${store.name} store cannot end every session (it has no destroyAll()); end them by replacing the signing secret (docs/deploy.md)`);
    }
    let n: number;
    try {
      // Counted as count() counts for newSessions.maxActive: a session within the grace has timed out.
      const counting = { marginMs: this.options.expiryGraceMs };
      n = await store.destroyAll(counting);
      // A session whose ID a renewal replaced while the store was walked may live on under a key the walk
      // had passed or never listed, its old record (then a pointer) removed: a second walk ends it. A
      // renewal under way then fails, the old record being gone.
      if (this.options.renewal !== null) n += await store.destroyAll(counting);
    } catch (err) {
      this.#stats.storeErrors++;
      throw isTetherError(err) ? err : new StoreUnavailableError('the session store failed on destroyAll', { cause: err });
    }
    this.#stats.destroyed += n;
    this.#admission?.recountSoon();
    this.#sockets?.endedAll();
    if (channels.destroyed.hasSubscribers || this.events.listenerCount('destroyed') > 0) {
      this.#publish('destroyed', { event: 'destroyed', handle: '*', userId: null, reason: 'all', at: this.options.clock.now() });
    }
    return n;
  }

  stats(): EngineStats {
    return { ...this.#stats, activeSessions: this.#admission?.activeSessions ?? null, gateWaiting: this.#gate.waiting, gateHolding: this.#gate.holding, verifiedCookies: this.#verified.size,
      sockets: this.#sockets?.size ?? 0, socketEnds: this.#sockets?.ends ?? NO_SOCKET_ENDS };
  }

  /** `close()`, for `await using tether = createTether(…)`: the engine and its store are closed when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    this.#unsubscribeSwept?.();
    this.#sockets?.stop();
    await this.store.close();
  }

  /** The Set-Cookie value that carries `id` (used by adapters and the cluster router). */
  cookieFor(id: string): string {
    return this.#cookie.set(this.#signer.sign(id));
  }

  /** The store key of the session a raw Cookie header names, if its signature holds (no store call). */
  keyFromCookieHeader(header: string | undefined): string | null {
    const raw = readCookie(header, this.options.cookie.name);
    return raw === undefined ? null : this.#verified.verify(raw)?.key ?? null;
  }

  /**
   * Runs a call into a store the engine does not own (the express-session store a migration reads) as
   * the engine runs its own: within `storeTimeoutMs`, a failure rejected as STORE_UNAVAILABLE and
   * counted in `storeErrors`. `op` names the call (the store method) in the timeout's message.
   */
  callStore<R>(call: () => Promise<R>, op: string): Promise<R> {
    return this.#call(call, op);
  }

  // ---- internals ----

  #newState(ua: string | undefined, net: string | undefined): SessionState {
    return {
      id: null, key: null, record: null, loadedText: null, loadedUserId: null, loaded: null, data: null, copyLoaded: this.#copyLoaded, csrf: undefined,
      ua: ua === undefined ? undefined : ua.slice(0, 256), userId: null, remembered: false, authAt: undefined, net, view: null, ops: [], updateWrites: 0, updateCountedTo: 0, regenerate: false, issuedAt: undefined, sessionHandle: undefined, keepHandle: false, renew: true, presentedId: null, newLifetime: false, destroyed: false,
      touch: undefined, resign: false, clearCookie: false, rejected: null, release: null, updating: 0, updated: null, afterUpdates: null, afterCommit: null, committed: false, committing: null, setCookies: [], clearSiteData: null,
      newId: this.#newId, options: this.options,
    };
  }

  /** A writer whose session's gate was held: waits its turn, counted with the time it waited (given up or not). */
  async #openAfterGate(state: SessionState, unsigned: VerifiedCookie): Promise<Session<T>> {
    state.release = await this.#awaitGate(unsigned.key);
    return this.#load(state, unsigned);
  }

  /** Waits for the gate of `key` (SESSION_BUSY past gateTimeoutMs), counted with the time it waited. */
  async #awaitGate(key: string): Promise<Release> {
    const queuedAt = performance.now();
    try {
      return await this.#gate.acquire(key, this.options.gateTimeoutMs);
    } finally {
      this.#stats.gateWaits++;
      this.#stats.gateWaitSeconds += (performance.now() - queuedAt) / 1000;
    }
  }

  /** Reads the record (the gate held, for a writer): at once when the store holds it in memory. */
  #load(state: SessionState, unsigned: VerifiedCookie): Session<T> | Promise<Session<T>> {
    try {
      const local = this.#getLocal(unsigned.key, unsigned.holder);
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
    if (record !== null && isMoved(record.data)) return this.#follow(state, unsigned, record);
    return this.#opened(state, unsigned.id, unsigned.key, unsigned.holder, record, unsigned.stale);
  }

  /**
   * The cookie names an ID that renewal replaced (renewal.ts): within the grace the request opens the
   * session under its new ID, and its commit sends the new cookie; past the grace, or when that session
   * has ended since, there is no session.
   */
  async #follow(state: SessionState, unsigned: VerifiedCookie, pointer: SessionRecord): Promise<Session<T>> {
    try {
      const to = pointedTo(pointer, unsigned.id, this.options.clock.now());
      if (to !== null) {
        const { id, key } = to;
        // A writer holds the gate of the key its cookie names, but the session is under the new key now,
        // whose gate the requests presenting the new cookie take: it takes that one instead, and reads
        // the session once it holds it, so the two cookies' writers still run one at a time.
        if (state.release !== null) {
          this.#release(state);
          state.release = this.#gate.tryAcquire(key) ?? await this.#awaitGate(key);
        }
        // The cookie's slot is for its own key: the new key's lookups get one of their own.
        const slot: DecodedHolder & LocalSlot = { decoded: undefined, local: undefined };
        const local = this.#getLocal(key, slot);
        const target = local !== undefined ? local : await this.#call(() => this.store.get(key), 'get');
        if (target !== null && !isMoved(target.data)) {
          state.presentedId = unsigned.id;
          return await this.#opened(state, id, key, slot, target, true);
        }
      }
    } catch (err) {
      this.#release(state);
      throw err;
    }
    return this.#opened(state, unsigned.id, unsigned.key, unsigned.holder, null, false);
  }

  /** The session over `record`, stored under `key` for `id`; `resign`: its cookie goes out again. */
  #opened(state: SessionState, id: string, key: string, holder: DecodedHolder, record: SessionRecord | null, resign: boolean): Session<T> | Promise<Session<T>> {
    if (!record || record.data === ENDED) {
      this.#reject(state, 'unknown');
      // A cookie we signed for a session that has ended (logged out, timed out, replaced by a login):
      // its handle is the one the ending reported, so a subscriber can tell a replayed logout apart.
      this.#emit('reused', key, record?.userId ?? null);
      return this.#released(state);
    }
    // Past the engine's timeouts, a remembered session may still be live: its decoding (kept) tells.
    const expiry = expiryOf(record, this.options.clock.now(), this.options);
    if (expiry !== Expiry.Live && (expiry === Expiry.Expired || this.#decode(key, record.data, holder)?.r !== 1)) {
      return this.#end(state, record, 'expired', undefined, this.#decode(key, record.data, holder)?.h);
    }
    const env = this.#decode(key, record.data, holder);
    if (!env) {
      this.#reject(state, 'unknown');
      return this.#released(state);
    }
    // Presented by another browser than the one it was last seen in: a stolen cookie, or a browser
    // update. Reported once, as the network below: the commit stores the request's User-Agent.
    if (state.ua !== env.u) {
      this.#emit('anomaly', key, record.userId, 'user-agent', undefined, { handle: env.h });
      if (this.options.userAgentChange === 'end') return this.#end(state, record, 'destroyed', 'anomaly', env.h);
    }
    // From another network than the one it was last seen from (addressChange; a request without an
    // address keeps the stored one). Reported once: the commit stores the new network.
    if (state.net === undefined) {
      state.net = env.n;
    } else if (env.n !== undefined && state.net !== env.n) {
      this.#emit('anomaly', key, record.userId, 'address', undefined, { handle: env.h });
      if (this.options.addressChange === 'end') return this.#end(state, record, 'destroyed', 'anomaly', env.h);
    }
    state.id = id;
    state.presentedId ??= id;
    state.key = key;
    state.record = record;
    state.loadedText = record.data;
    state.loadedUserId = record.userId;
    state.userId = record.userId;
    state.loaded = env;
    state.csrf = env.c;
    state.remembered = env.r === 1;
    state.authAt = env.a;
    state.issuedAt = env.i;
    state.sessionHandle = env.h;
    state.resign = resign;
    return new Session<T>(state);
  }

  /**
   * Deletes the record under `key` and reports it, once however many calls of this process end it at
   * the same time (requests that found it timed out, logins racing over `maxSessionsPerUser`, two
   * `destroyUserSession` calls): the later ones share the deletion under way. True for the call that
   * deleted it. Calls in other processes are not seen: each may report it (the store deletes it once),
   * unless `read` is given: the record as this request read it, ended by a compare-and-set over it
   * (ENDED, `endedRecord`), so that of the processes that read it at once only the one whose ending
   * stored reports it, and a record changed since (by a process that found it live) is left alone.
   */
  #endOnce(key: string, userId: string | null, event: 'expired' | 'destroyed', reason?: string, handle?: string, read?: SessionRecord): Promise<boolean> {
    const under = this.#ending.get(key);
    if (under !== undefined) return under.then(() => false);
    this.#decoded.forget(key);
    const report = (): true => {
      this.#emit(event, key, userId, reason, undefined, { handle });
      return true;
    };
    const ending = read === undefined
      ? this.#call(() => this.store.destroy(key), 'destroy').then(report)
      : this.#call(() => this.store.set(endedRecord(read, this.options.clock.now()), read.version), 'set').then((res) => res.ok && report());
    const done = (): void => void this.#ending.delete(key);
    ending.then(done, done);
    this.#ending.set(key, ending);
    return ending;
  }

  /** Ends the session the cookie named (timed out, or ended for an anomaly); the request goes on without it. */
  async #end(state: SessionState, record: SessionRecord, event: 'expired' | 'destroyed', reason?: string, handle?: string): Promise<Session<T>> {
    try {
      // Requests that read the session at once (a page's parallel requests after its timeout) all find
      // it to end: they share the first one's ending, so the session is ended and reported once.
      // A timeout is ended over the record as read, so that processes finding it at once report it once;
      // an anomaly's ending deletes whatever the record holds by now (a thief's later write included).
      await this.#endOnce(record.key, record.userId, event, reason, handle, event === 'expired' ? record : undefined);
      state.clearCookie = true;
      return this.#released(state);
    } catch (err) {
      this.#release(state);
      throw err;
    }
  }

  /**
   * The presented cookie names no session: count it, and expire it in the browser if it is forged. A
   * signed cookie that names no session is left alone: its session may have been replaced by a login
   * that is answering this browser meanwhile (the store keeps nothing of the old record to tell), and a
   * request that raced the login would otherwise clear the new cookie once answered after it. Such a
   * cookie costs its browser nothing: every request with it goes on without a session, and the first
   * that stores one replaces it.
   */
  #reject(state: SessionState, why: RejectedCookie): void {
    state.clearCookie = why === 'forged';
    state.rejected = why;
    this.#stats.rejectedCookies++;
    if (why === 'forged') this.#stats.forgedCookies++;
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
  #decode(key: string, text: string, holder: DecodedHolder): Envelope | null {
    try {
      return this.#decoded.envelope(key, text, this.options.codec, holder);
    } catch (err) {
      this.#undecodable.warn(err);
      return null;
    }
  }

  #released(state: SessionState): Session<T> {
    this.#release(state);
    return new Session<T>(state);
  }

  /** `store.getLocal`, failing as a store call would (STORE_UNAVAILABLE, counted) when it throws. */
  #getLocal(key: string, slot: LocalSlot): SessionRecord | null | undefined {
    const store = this.store;
    if (store.getLocal === undefined) return undefined;
    try {
      return store.getLocal(key, slot);
    } catch (err) {
      this.#stats.storeErrors++;
      throw isTetherError(err) ? err : new StoreUnavailableError('the session store failed on get', { cause: err });
    }
  }

  /**
   * Sessions the store's sweep deleted because they timed out: `expired` with reason `swept`, each
   * counted. A listener that throws is reported once per batch (TETHER_SWEEP_LISTENER_THREW) and the
   * batch's other sessions are still reported: the sweep runs on a timer, with nobody to answer.
   */
  #swept(swept: ReadonlyArray<SweptSession>): void {
    let failure: { err: unknown } | undefined;
    for (const { key, userId } of swept) {
      this.#stats.swept++;
      this.#decoded.forget(key);
      try {
        this.#emit('expired', key, userId, 'swept');
      } catch (err) {
        failure ??= { err };
      }
    }
    if (failure !== undefined) warnSweptListenerThrew(failure.err);
  }

  #call<R>(op: () => Promise<R>, what: string): Promise<R> {
    if (!isTraced(tracing.store)) return this.#deadlines.run(op, what);
    const context: StoreTraceContext = { operation: what, store: this.store.name };
    return traced(tracing.store, context, () => this.#deadlines.run(op, what));
  }

  /**
   * Reports a lifecycle event of the session stored under `key` to the sockets and the subscribers.
   * `names` gives the session's handle when it is not its key's (a renewed session: `Envelope.h`), and
   * the previous session's (previousHandle null: none is sent, as for a renewal, which keeps the handle).
   */
  #emit(event: LifecycleEvent, key: string, userId: string | null, reason?: string, previousKey?: string, names?: EventNames): void {
    if (event === 'created') this.#stats.created++;
    else if (event === 'regenerated') {
      this.#stats.regenerated++;
      if (reason === 'renewal') this.#stats.renewed++;
    }
    else if (event === 'destroyed') this.#stats.destroyed++;
    else if (event === 'expired') this.#stats.expired++;
    else if (event === 'anomaly') this.#stats.anomalies++;
    if (this.#sockets !== null) this.#socketsHear(event, key, previousKey);
    if (!channels[event].hasSubscribers && this.events.listenerCount(event) === 0) return;
    const own = handleOf(key);
    const msg: LifecycleMessage = { event, handle: names?.handle ?? own, userId, at: this.options.clock.now() };
    if (msg.handle !== own) msg.idHandle = own;
    if (reason !== undefined) msg.reason = reason;
    const previousHandle = names?.previousHandle === undefined && previousKey !== undefined ? handleOf(previousKey) : names?.previousHandle;
    if (typeof previousHandle === 'string') msg.previousHandle = previousHandle;
    this.#publish(event, msg);
  }

  /** An ending in this process reaches the sockets of the session that ended. */
  #socketsHear(event: LifecycleEvent, key: string, previousKey: string | undefined): void {
    const sockets = this.#sockets!;
    if (event === 'destroyed' || event === 'expired') sockets.ended(key, event);
    else if (event === 'regenerated' && previousKey !== undefined) sockets.ended(previousKey, 'regenerated');
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

/**
 * Runs a successful commit's `afterCommit()` callbacks in order. One that throws must neither fail the
 * commit, whose write stands, nor keep the others from running: its error is thrown again on the next
 * tick, where it is uncaught as it would have been without the engine in between.
 */
function runAfterCommit(callbacks: Array<() => void>): void {
  for (const fn of callbacks) {
    try {
      fn();
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

/**
 * A custom ID generator whose every ID is checked: one that is not base64url of 22–128 characters would
 * be signed into a cookie that never verifies (or one that breaks the Set-Cookie header), so it fails
 * the commit with OPTIONS_INVALID instead.
 */
function checkedIds(generate: () => string): () => string {
  return () => {
    const id = generate();
    if (typeof id !== 'string' || !isWellFormedId(id)) {
      throw new OptionsInvalidError('options.generateId must return base64url IDs of 22 to 128 characters');
    }
    return id;
  };
}
