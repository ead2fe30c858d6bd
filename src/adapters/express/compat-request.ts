/**
 * One request's side of the express-session compatible middleware: keeps `req.session` (plain
 * properties) and the Tether session (gate, compare-and-set, commit before the response) in step.
 *
 * The replay rule: at each commit the request's change is the difference between the data as loaded
 * (or last saved) and `req.session` now. It is applied through `session.update()`, so after a
 * compare-and-set conflict the engine re-applies it to the fresh data as a three-way merge (merge.ts):
 * changes to different keys, or different keys of a nested object, both survive; two different
 * changes of one value fail with 409 SESSION_CONFLICT instead of one silently winning.
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { Session } from '../../core/session.js';
import { sessionState } from '../../core/session.js';
import type { RequestView } from '../../core/csrf.js';
import { OptionsInvalidError, SessionConflictError, SessionKeyInvalidError } from '../../core/errors.js';
import { viewOf } from '../shared/http.js';
import { CompatSession, dataOf, RESERVED_KEYS } from './compat-session.js';
import type { SessionController } from './compat-session.js';
import type { CompatCookie } from './compat-cookie.js';
import { jsonClone, jsonEqual, merge3, replaceContents } from './merge.js';
import type { ResolvedCompat } from './compat-options.js';
import { Claim, expireLegacyCookie, legacyRequest, readAdoption, retire } from './legacy-migration.js';
import type { Adopted, Adoption } from './legacy-migration.js';
import { SetCookieQueue } from './set-cookies.js';

type Data = Record<string, unknown>;
type TSession = Session<Data>;

const CONTROLLER = Symbol.for('tether.express.compat');

/**
 * What the compat layer adds to Express's Request at runtime. Apps see `req.session` typed by
 * @types/express-session; this module must compile with or without it, so it goes through this view.
 */
interface Holder {
  session?: unknown;
  sessionStore?: unknown;
  [CONTROLLER]?: RequestSessions;
}

// A cast: under an app's declaration merging, Express's Request and Holder may share no property.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
const holder = (req: Request): Holder => req as unknown as Holder;

/** The controller of a request that went through `session()`. */
export function controllerOf(req: Request): RequestSessions {
  const ctl = holder(req)[CONTROLLER];
  if (!ctl) throw new Error('tether/express: the session() middleware did not run for this request');
  return ctl;
}

const noop = (): void => {};

/** Session data without the cookie settings stored beside it. */
function withoutCookie(data: Data): Data {
  const { cookie: _cookie, ...rest } = data;
  return rest;
}

/** `view` carrying the Tether cookie of session `id` in place of the request's cookies. */
function carrying(cfg: ResolvedCompat, view: RequestView, id: string): RequestView {
  const header = cfg.tether.cookieFor(id);
  const value = header.slice(header.indexOf('=') + 1, header.includes(';') ? header.indexOf(';') : undefined);
  const cookie = `${cfg.name}=${value}`;
  return { method: view.method, header: (n) => (n === 'cookie' ? cookie : view.header(n)) };
}

export class RequestSessions implements SessionController {
  readonly #cfg: ResolvedCompat;
  readonly #req: Request;
  readonly #res: ServerResponse;
  readonly #view: RequestView;
  readonly #write: boolean;
  /** This request's default cookie; a session's own settings are the differences from it. */
  readonly #defaults: CompatCookie;
  /** The open Tether session (it may hold the gate), or null between a save and the next change. */
  #current: TSession | null;
  #id: string | null;
  /** A record exists under #id. */
  #stored: boolean;
  /** The data as loaded or last committed: the base of the three-way merge. */
  #base: Data;
  #compat: CompatSession | undefined;
  #cookie: CompatCookie;
  /**
   * The cookies of session objects that regenerate() or reload() replaced: copied from one (Passport's
   * keepSessionInfo merges the old session into the new), they are its own, as in express-session.
   */
  readonly #replaced = new WeakMap<CompatSession, CompatCookie>();
  /** The session's cookie lifetime as the request arrived (null or false: a browser-session cookie, or a new session). */
  #arrivedLifetime: number | null | false;
  /** The lifetime stored with the session, as loaded or last committed. */
  #storedLifetime: number | null | false;
  #chain: Promise<unknown> = Promise.resolve();
  /** The failure that broke this request's sessions: every later operation throws it again. */
  #broken: { err: unknown } | null = null;
  #ended = false;
  #modified = false;
  #touch = false;
  #regenerated = false;
  /** An express-session session this request took over, until its old copy is deleted. */
  #legacy: Adoption | null = null;
  /** Its data lives only in `req.session` so far: the old copy must stay until Tether has stored it. */
  #legacyPending = false;
  /** This request's hold on the old session it adopts: other requests presenting it wait (legacy-migration.ts). */
  #claim: Claim | null = null;
  /** Another request's adoption of the old session this request presented, which this one joined. */
  #joined: Adopted | null = null;
  /** finish() has begun: from then on it, not abort(), releases the claim. */
  #finishing = false;
  /** abort() listens for the response's 'close'. */
  #listening = false;
  readonly #out: SetCookieQueue;
  /** The Clear-Site-Data value of the session this request ended (tether's `clearSiteData` option), until it stores another. */
  #clearSiteData: string | null = null;
  #next: (err: unknown) => void = noop;

  private constructor(cfg: ResolvedCompat, req: Request, res: ServerResponse, view: RequestView, write: boolean, defaults: CompatCookie, s: TSession) {
    this.#cfg = cfg;
    this.#req = req;
    this.#res = res;
    this.#view = view;
    this.#write = write;
    this.#defaults = defaults;
    this.#out = new SetCookieQueue(cfg, req);
    this.#current = this.#bound(s);
    this.#id = s.id;
    this.#stored = !s.isNew;
    const data = jsonClone(s.data as Data);
    this.#base = jsonClone(data);
    this.#cookie = this.#cookieFrom(data.cookie);
    this.#arrivedLifetime = this.#storedLifetime = s.isNew ? null : this.#cookie.originalMaxAge;
    this.#compat = new CompatSession(this, data);
  }

  /** Loads the request's session (migrating an express-session one if configured) and installs `req.session`. */
  static async open(
    cfg: ResolvedCompat, req: Request, res: ServerResponse, defaults: CompatCookie, next: (err: unknown) => void,
  ): Promise<RequestSessions> {
    const view = viewOf(req);
    const legacy = legacyRequest(cfg, view);
    const write = cfg.write(req);
    let s = await cfg.tether.open(legacy.view, { write });
    if (!s.isNew || legacy.sid === null) return new RequestSessions(cfg, req, res, view, write, defaults, s).#install(next);
    let claim: Claim | null = null;
    try {
      const turn = await cfg.legacy!.adoptions.claim(legacy.sid, cfg.tether.options.gateTimeoutMs);
      if (turn instanceof Claim) {
        claim = turn;
        const adoption = await readAdoption(cfg, legacy.sid, legacy.name);
        const ctl = new RequestSessions(cfg, req, res, view, write, defaults, s);
        if (adoption) ctl.#adopt(adoption, claim);
        // Gone from the old store (migrated or ended): nothing for others to wait for.
        else claim.release();
        return ctl.#install(next);
      }
      // Another request of this process adopted it: open the Tether session it became, as if this
      // request had carried its cookie. One that ended since is left, as its cookie would be.
      const adopted = await cfg.tether.open(carrying(cfg, legacy.view, turn.id), { write });
      if (adopted.isNew) {
        cfg.tether.abandon(adopted);
      } else {
        cfg.tether.abandon(s);
        s = adopted;
      }
      const ctl = new RequestSessions(cfg, req, res, view, write, defaults, s);
      ctl.#joined = turn;
      return ctl.#install(next);
    } catch (err) {
      claim?.release();
      cfg.tether.abandon(s);
      throw err;
    }
  }

  // ---- SessionController (what req.session's methods call) ----

  idOf(): string {
    return this.sessionId();
  }

  cookieOf(session: CompatSession): CompatCookie {
    return session === this.#compat ? this.#cookie : this.#replaced.get(session) ?? this.#cookie;
  }

  regenerate(session: CompatSession): Promise<void> {
    return this.#run(async () => {
      this.#assertCurrent(session);
      const s = await this.#ensureOpen();
      if (this.#stored) {
        s.regenerate();
        // express-session's regenerate() makes a new session: its lifetime starts again, as at a login.
        sessionState(s).newLifetime = true;
        this.#regenerated = true;
        this.#id = s.id;
      } else if (this.#id !== null) {
        // Never stored: there is nothing to end, only an ID to forget.
        this.#id = null;
        sessionState(s).id = null;
      }
      // A session taken over from express-session ends here too: its old copy must not come back, and
      // what is stored next is not the old session's, for a request with its cookie to join.
      this.#legacyPending = false;
      this.#claim?.end();
      this.#replaced.set(session, this.#cookie);
      // A new session's cookie, as express-session makes one: from the `cookie` function again, when it
      // is one, so that what the handler set on the request for it (a "remember me") counts.
      this.#cookie = (this.#cfg.cookiePerRequest ? this.#cfg.cookieFor(this.#req) : this.#defaults).clone();
      // The new ID's cookie goes out anyway.
      this.#arrivedLifetime = null;
      this.#compat = new CompatSession(this, {});
      holder(this.#req).session = this.#compat;
    });
  }

  destroy(session: CompatSession): Promise<void> {
    // As express-session: `req.session` is gone at once, the store is told afterwards.
    if (holder(this.#req).session === session) delete holder(this.#req).session;
    return this.#run(async () => {
      if (session !== this.#compat) throw new Error('this session object was replaced by regenerate(), reload() or destroy()');
      await this.#end();
    });
  }

  reload(session: CompatSession): Promise<void> {
    return this.#run(async () => {
      this.#assertCurrent(session);
      // Taken over from express-session and not stored in Tether yet: it is still the old store's, where
      // express-session's reload() would read it.
      if (this.#legacy && this.#legacyPending && this.#claim && !this.#stored) {
        const adoption = await readAdoption(this.#cfg, this.#legacy.sid, this.#legacy.name);
        if (!adoption) throw new Error('failed to load session');
        this.#replaced.set(session, this.#cookie);
        this.#cookie = this.#defaults.clone();
        this.#adopt(adoption, this.#claim);
        holder(this.#req).session = this.#compat;
        return;
      }
      // express-session's own message for a session that is not (or no longer) in the store; a regenerated
      // session is not stored until it is saved.
      if (!this.#stored || this.#regenerated) throw new Error('failed to load session');
      if (this.#current) this.#cfg.tether.abandon(this.#current);
      this.#current = null;
      this.#touch = false;
      let s: TSession | null = null;
      try {
        s = await this.#ensureOpen();
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SESSION_CONFLICT') throw err;
        // The session ended meanwhile (a logout elsewhere): what the request stores from now on goes to a
        // new session under a new ID. Stored under this one, it would bring the ended ID back to life for
        // whoever still holds its cookie.
        this.#stored = false;
        this.#id = null;
      }
      if (!s) throw new Error('failed to load session');
      const data = jsonClone(s.data as Data);
      this.#base = jsonClone(data);
      this.#replaced.set(session, this.#cookie);
      this.#cookie = this.#cookieFrom(data.cookie);
      this.#storedLifetime = this.#cookie.originalMaxAge;
      this.#compat = new CompatSession(this, data);
      holder(this.#req).session = this.#compat;
    });
  }

  save(session: CompatSession): Promise<void> {
    return this.#run(async () => {
      this.#assertCurrent(session);
      await this.#commit();
    });
  }

  touch(): void {
    this.#touch = true;
    this.#cookie.resetMaxAge();
  }

  callbackThrew(err: unknown): void {
    // Express's final handler closes the connection when the head is already out.
    this.#next(err);
  }

  // ---- the rest of the middleware's view ----

  get tether(): ResolvedCompat['tether'] {
    return this.#cfg.tether;
  }

  /** The session ID; a new session gets its ID on first ask (and keeps it when it is stored). */
  sessionId(): string {
    if (this.#id === null) {
      this.#id = this.#cfg.newId(this.#req);
      const s = this.#current;
      if (s && s.isNew && s.id === null) sessionState(s).id = this.#id;
    }
    return this.#id;
  }

  /**
   * The origin checks for this request: those of a Secure cookie when the session's is Secure here
   * (`secure: 'auto'` over HTTPS, what a `cookie` function returned, or kept with the session).
   */
  originChecks(): { secureOrigins: boolean; requireOrigin: boolean } {
    return this.#cfg.originChecks(this.#cookie.secure === true);
  }

  /** Runs `fn` on the request's open Tether session, in turn with the session's other operations. */
  withSession<T>(fn: (session: TSession, view: RequestView) => T | Promise<T>): Promise<T> {
    return this.#run(async () => fn(await this.#ensureOpen(), this.#view));
  }

  /** The Clear-Site-Data value to send with finish()'s cookies: set when this request ended its session. */
  get clearSiteData(): string | null {
    return this.#clearSiteData;
  }

  /** Runs at the first write of the response head: commits, and returns the Set-Cookie values to send. */
  async finish(): Promise<string[]> {
    this.#finishing = true;
    try {
      await this.#settle();
      if (!this.#ended) {
        if (holder(this.#req).session !== this.#compat || this.#compat === undefined) await this.#run(() => this.#unset());
        else await this.#run(() => this.#commit());
      }
      // An adopted session that holds nothing is retired too; one that could not be stored is kept for next time.
      if (this.#legacy && (this.#stored || this.#ended || !this.#legacyPending)) await this.#run(() => this.#retireLegacy());
      if (this.#joined) {
        // The request that adopted the session expires the old cookie too, but either response may come last.
        const clear = expireLegacyCookie(this.#cfg, this.#joined, this.#defaults);
        if (clear) this.#out.add(...clear);
      }
      this.#resendIfDue();
      return this.#out.close();
    } finally {
      // The adoption is settled: a request still waiting takes over whatever the old store still holds.
      this.#claim?.release();
    }
  }

  /** Runs before `res.end` when the head went out earlier (streaming): writes what changed since. */
  async finishLate(): Promise<void> {
    await this.#settle();
    if (this.#ended) return;
    if (holder(this.#req).session !== this.#compat || this.#compat === undefined) await this.#run(() => this.#unset());
    else await this.#run(() => this.#commit());
  }

  /**
   * Called once the session is loaded, before the handler runs. A client that goes away before its
   * response ends must not keep what the request holds: the session's gate, or its claim on an old
   * session. Only a request that holds one listens for that (a listener on every request would cost
   * every read for nothing, as in the native adapters), and it may have gone while the session loaded
   * (waiting at the gate behind another request of the session, or for the old store): its 'close'
   * came before anyone listened, so what it holds is given back now.
   */
  loaded(): void {
    if (this.#res.closed) this.abort();
    else this.#listen();
  }

  /** The client went away before the head was written: give the gate and the claim back. */
  abort(): void {
    if (!this.#finishing) this.#claim?.release();
    if (this.#out.closed || !this.#current) return;
    this.#cfg.tether.abandon(this.#current);
    this.#current = null;
  }

  // ---- internals ----

  /**
   * `s` with its new IDs made by `genid` from this request: at regenerate(), and also where the engine
   * makes one during a commit (a renewal), when no handler code is running.
   */
  #bound(s: TSession): TSession {
    sessionState(s).newId = () => this.#cfg.newId(this.#req);
    return s;
  }

  /** Listens for an early close once the request holds the gate or a claim (see `loaded`). */
  #listen(): void {
    if (this.#listening) return;
    const gate = this.#current !== null && sessionState(this.#current).release !== null;
    if (!gate && this.#claim === null) return;
    this.#listening = true;
    this.#res.once('close', () => this.abort());
  }

  #install(next: (err: unknown) => void): this {
    this.#next = next;
    const h = holder(this.#req);
    h[CONTROLLER] = this;
    h.session = this.#compat;
    h.sessionStore = this.#cfg.appStore;
    Object.defineProperty(this.#req, 'sessionID', {
      configurable: true,
      enumerable: true,
      get: () => this.sessionId(),
      set: () => {
        throw new TypeError('req.sessionID is read-only: use req.session.regenerate() for a new ID');
      },
    });
    return this;
  }

  /** Serialises this request's session operations; after a failed write every later one fails the same way. */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(() => {
      if (this.#broken) throw this.#broken.err;
      return fn();
    });
    this.#chain = p.then(noop, noop);
    return p;
  }

  async #settle(): Promise<void> {
    await this.#chain;
    if (this.#broken) throw this.#broken.err;
  }

  #assertCurrent(session: CompatSession): void {
    if (session !== this.#compat) throw new Error('this session object was replaced by regenerate(), reload() or destroy()');
  }

  #cookieFrom(stored: unknown): CompatCookie {
    const c = this.#defaults.clone();
    c.applyOverrides(stored);
    // Like express-session's touch at the end of each request: a persistent cookie counts from now.
    c.resetMaxAge();
    return c;
  }

  /** The data to store: `req.session`'s own properties plus the cookie settings it changed. */
  #mine(): Data {
    const data = dataOf(this.#compat!);
    for (const k of Object.keys(data)) if (RESERVED_KEYS.has(k)) throw new SessionKeyInvalidError(k);
    const out = jsonClone(data);
    const overrides = this.#cookie.overridesAgainst(this.#defaults);
    const empty = Object.keys(out).length === 0;
    // With `cookie` a function the defaults are this request's: a session keeps the lifetime it was given
    // (express-session stores its whole cookie), so a request given another does not remember or forget it.
    // Also one stored empty (saveUninitialized), which would otherwise take the next request's lifetime.
    // Not for a session left empty that is not stored, nor for a regenerated one (a logout), which must
    // stay empty to end.
    const keepsLifetime = this.#cfg.cookiePerRequest
      && (!empty || (this.#stored && !this.#regenerated) || this.#cfg.saveUninitialized);
    if (keepsLifetime) overrides.originalMaxAge = this.#cookie.originalMaxAge;
    // `secure: 'auto'` follows the request, but a session once stored with a Secure cookie keeps it, as
    // express-session's keeps the Secure it was created with: a request that does not look like HTTPS
    // (a proxy that left out X-Forwarded-Proto) must not send its ID in a cookie without Secure, which
    // the browser would then also send over plain HTTP.
    // Not for a session left empty that is not stored, nor for a regenerated one, which must stay empty to end.
    const kept = !empty || this.#cfg.saveUninitialized || (this.#stored && !this.#regenerated);
    if (kept && this.#cookie.secure === true && this.#cfg.secureAuto(this.#defaults)) overrides.secure = true;
    if (Object.keys(overrides).length > 0 && (this.#stored || !empty || keepsLifetime)) out.cookie = overrides;
    return out;
  }

  async #ensureOpen(): Promise<TSession> {
    if (this.#current) return this.#current;
    const tether = this.#cfg.tether;
    let s: TSession;
    if (this.#stored && this.#id !== null) {
      s = await tether.open(carrying(this.#cfg, this.#view, this.#id), { write: this.#write });
      if (s.isNew) {
        tether.abandon(s);
        throw new SessionConflictError('the session ended while this request ran');
      }
    } else {
      s = await tether.open({ method: this.#view.method, header: (n) => (n === 'cookie' ? undefined : this.#view.header(n)) }, { write: false });
      if (this.#id !== null) sessionState(s).id = this.#id;
    }
    this.#current = this.#bound(s);
    // Opened again after a save, a writer holds the gate: for the first time, if this request stored the session.
    this.#listen();
    return s;
  }

  /** Writes `req.session` through the Tether session (opening one again after an earlier save). */
  async #commit(): Promise<void> {
    const mine = this.#mine();
    const base0 = this.#base;
    const changed = !jsonEqual(base0, mine);
    if (!this.#current && !changed && !this.#touch) return;
    const s = await this.#ensureOpen();
    const tether = this.#cfg.tether;
    this.#current = null;
    try {
      if (this.#regenerated && Object.keys(mine).length === 0 && !this.#cfg.saveUninitialized) {
        // Regenerated and left empty (logout): end the old session rather than store an empty new one.
        s.destroy();
        this.#out.pushEngine(await tether.commit(s), this.#cookie);
        this.#clearSiteData = s.clearSiteData;
        this.#stored = false;
        this.#id = null;
        this.#base = {};
        this.#modified = true;
        this.#regenerated = false;
        return;
      }
      if (changed) {
        const base = this.#base;
        // After regenerate() the new record starts from `mine` alone: nothing of the old one carries over.
        const apply = this.#regenerated ? (d: Data) => replaceContents(d, jsonClone(mine)) : (d: Data) => replaceContents(d, jsonClone(merge3(base, mine, d)));
        await s.update(apply);
      }
      if (this.#cfg.userIdFrom) {
        const raw = this.#cfg.userIdFrom(mine);
        // No owner for an empty ID, as for none: USER_ID_INVALID would fail every commit of the session.
        const userId = raw === undefined || raw === null || raw === '' ? null : String(raw);
        if (userId !== s.userId) s.setUser(userId);
      }
      this.#rememberByCookie(s);
      if (this.#touch) s.touch();
      this.#checkCookie();
      if (s.isNew) {
        if (this.#cfg.saveUninitialized) void s.csrfToken;
        if (!this.#out.deliverable(this.#cookie)) {
          // A Secure cookie cannot be set over plain HTTP (express-session does not set it either): storing would orphan the record.
          tether.abandon(s);
          return;
        }
        const willStore = Object.keys(mine).length > 0 || sessionState(s).csrf !== undefined;
        if (s.id === null && willStore) sessionState(s).id = this.sessionId();
      }
      // The engine sends a remembered session's cookie again with each write and touch, so that it lasts
      // as long as the session, and when a session becomes remembered. Here the cookie's lifetime is the
      // app's, and express-session's rules say when it goes out again (#resendIfDue); a new ID (a
      // renewal's too), a re-signing or the end of remembering (a "forget me") still send it.
      const st = sessionState(s);
      const idBefore = s.id;
      const refreshOnly = !s.isNew && !st.regenerate && !st.resign && st.remembered;
      // A renewal's new ID whose cookie cannot reach the browser (Secure, on a request that does not look
      // like HTTPS) would leave it the old ID, which names nothing once the grace is over: a later request
      // that can take the cookie renews instead.
      if (!this.#out.deliverable(this.#cookie)) st.renew = false;
      const headers = await tether.commit(s);
      this.#out.pushEngine(refreshOnly && s.id === idBefore ? [] : headers, this.#cookie);
      this.#stored = !s.isNew;
      // A session stored after one was ended keeps its cookie: the browser is not told to clear the site.
      if (this.#stored) this.#clearSiteData = null;
      this.#id = s.id ?? this.#id;
      // The adopted data is in Tether: requests that presented the old session meanwhile can open it.
      if (this.#legacy && this.#stored && this.#claim) this.#claim.adopted({ id: this.#id!, name: this.#legacy.name, path: this.#legacy.path, domain: this.#legacy.domain });
      // As express-session's: a change of `req.session.cookie` alone does not count (its hash leaves the
      // cookie out), so it alone sends no cookie without `rolling`.
      if (this.#regenerated || !jsonEqual(withoutCookie(base0), withoutCookie(mine))) this.#modified = true;
      this.#base = mine;
      this.#storedLifetime = this.#cookie.originalMaxAge;
      this.#regenerated = false;
      this.#touch = false;
    } catch (err) {
      tether.abandon(s);
      this.#broken = { err };
      throw err;
    }
    if (this.#legacy && this.#stored) await this.#retireLegacy();
  }

  /**
   * Refuses, before anything is stored, attributes the app gave `req.session.cookie` that no Set-Cookie
   * header can carry (a `;` or a line break in its domain or path): the cookie could not be sent, and
   * the record stored for it would be an orphan until its idle timeout.
   */
  #checkCookie(): void {
    try {
      this.#cookie.serialize(this.#cfg.name, 'x');
    } catch (err) {
      // Not the value itself: an app may have taken it from the request, and the answer would echo it.
      const attribute = /option (\w+) is invalid/.exec((err as Error).message)?.[1] ?? 'an attribute';
      throw new OptionsInvalidError(`req.session.cookie cannot be sent: its ${attribute} holds what a Set-Cookie header cannot carry`);
    }
  }

  /**
   * express-session's "remember me" is a per-session cookie lifetime (`req.session.cookie.maxAge` set at
   * login). One longer than the idle timeout makes the session a remembered one, whose timeouts
   * (`tether.remember`) keep it on the server as long as its cookie; cut back to within the idle timeout,
   * or to a browser-session cookie, it is an ordinary session again.
   */
  #rememberByCookie(s: TSession): void {
    const lifetime = this.#cookie.originalMaxAge;
    const lasting = typeof lifetime === 'number' && lifetime > this.#cfg.tether.options.idleTimeoutMs;
    if (lasting !== s.remembered) s.remember(lasting);
  }

  async #end(): Promise<void> {
    this.#claim?.end();
    const s = await this.#ensureOpen();
    this.#current = null;
    s.destroy();
    try {
      this.#out.pushEngine(await this.#cfg.tether.commit(s), this.#cookie);
    } catch (err) {
      this.#broken = { err };
      throw err;
    }
    this.#clearSiteData = s.clearSiteData;
    this.#ended = true;
    this.#stored = false;
    this.#compat = undefined;
    if (this.#legacy) await this.#retireLegacy();
  }

  /** `req.session` was set to null/undefined (or replaced): `unset: 'destroy'` ends the session, 'keep' drops the changes. */
  async #unset(): Promise<void> {
    if (holder(this.#req).session == null && this.#cfg.unsetDestroy && (this.#stored || this.#legacy)) {
      await this.#end();
      return;
    }
    if (this.#current) this.#cfg.tether.abandon(this.#current);
    this.#current = null;
  }

  /** The old session's data becomes this request's change, so the next commit writes it under a new ID. */
  #adopt(adoption: Adoption, claim: Claim): void {
    this.#claim = claim;
    if (adoption.originalMaxAge !== undefined) this.#cookie.applyOverrides({ originalMaxAge: adoption.originalMaxAge });
    this.#cookie.resetMaxAge();
    this.#compat = new CompatSession(this, jsonClone(adoption.data));
    this.#legacy = adoption;
    this.#legacyPending = Object.keys(adoption.data).length > 0;
  }

  /** After the data lives in Tether (or was ended), the express-session copy goes: its cookie must not bring it back. */
  async #retireLegacy(): Promise<void> {
    try {
      const clear = await retire(this.#cfg, this.#legacy!, this.#defaults);
      if (clear) this.#out.add(...clear);
    } catch (err) {
      this.#broken = { err };
      throw err;
    }
    this.#legacy = null;
  }

  /**
   * express-session's rule: a known session's cookie is sent again with `rolling`, or when persistent and
   * changed. Also when the request cut a persistent cookie to a browser-session one ("forget me"), changed
   * or not: express-session would leave the lasting cookie in the browser, and this layer, which re-sends a
   * browser-session cookie (`expires` null or false) for no change, would never replace it. A remembered
   * session's cut goes out with the engine's cookie.
   */
  #resendIfDue(): void {
    if (this.#ended || !this.#stored || this.#id === null || this.#out.has(this.#cfg.name)) return;
    // `req.session` set to null (`unset: 'keep'`): express-session sends no cookie for a request without one.
    if (holder(this.#req).session == null) return;
    const cut = typeof this.#arrivedLifetime === 'number' && typeof this.#storedLifetime !== 'number';
    // One that joined another request's adoption may be answered last: it carries the new cookie too.
    if (this.#cfg.rolling || this.#joined !== null || cut || (this.#cookie.expires instanceof Date && this.#modified)) {
      this.#out.pushEngine([this.#cfg.tether.cookieFor(this.#id)], this.#cookie);
    }
  }
}
