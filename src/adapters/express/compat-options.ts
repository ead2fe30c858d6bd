/**
 * Options of the express-session compatible middleware: express-session's own options, checked once
 * and mapped onto a Tether engine, plus a `tether` group for the engine's settings. Defaults live in
 * `COMPAT_DEFAULTS`; every decision that differs from express-session is written down here and in
 * docs/migrating-from-express-session.md.
 * @module
 */
import { hkdfSync, KeyObject } from 'node:crypto';
import type { CipherKey } from 'node:crypto';
import type { Request } from 'express';
import { Tether } from '../../core/engine.js';
import { decideHandshakeOrigins } from '../../core/handshake-origins.js';
import type { OriginChecks } from '../../core/handshake-origins.js';
import type { CsrfOptions, TetherOptions } from '../../core/options.js';
import { TETHER_DEFAULTS } from '../../core/options.js';
import { OptionsInvalidError } from '../../core/errors.js';
import { checkOptions } from '../../core/options-check.js';
import { generateId, isWellFormedId } from '../../core/ids.js';
import { systemClock } from '../../core/store.js';
import type { Clock, SessionStore } from '../../core/store.js';
import { CompatCookie } from './compat-cookie.js';
import type { CompatCookieOptions } from './compat-cookie.js';
import { ExpressSessionStoreAdapter, isExpressSessionStore } from './legacy-store.js';
import type { ExpressSessionStoreLike } from './legacy-store.js';
import { LEGACY_COOKIE_NAME } from './legacy-cookie.js';
import { Adoptions } from './legacy-migration.js';
import { HandshakeView } from '../shared/http.js';

/** Engine settings that have no express-session counterpart. */
export interface CompatTetherOptions extends Pick<TetherOptions,
  'production' | 'idleTimeoutMs' | 'absoluteTimeoutMs' | 'touchIntervalMs' | 'expiryGraceMs' | 'maxSessionBytes'
  | 'storeTimeoutMs' | 'gateTimeoutMs' | 'maxReplays' | 'maxSessionsPerUser' | 'remember' | 'userContextTtlMs' | 'maxUserContextBytes' | 'clock'
  | 'userAgentChange' | 'addressChange' | 'addressPrefix' | 'newSessions' | 'renewal' | 'clearSiteData' | 'codec'> {
  /**
   * CSRF settings used by `csrfProtection()`. The compat middleware itself never checks CSRF
   * (express-session apps send no tokens); mount `csrfProtection()` to turn the checks on.
   * @default { jsonOnly: false } (HTML forms are the norm in express-session apps)
   */
  csrf?: CsrfOptions;
  /**
   * Whether a request waits its turn at the per-session gate (one writer at a time per session in this
   * process). express-session apps change sessions on GET too, so every request does by default.
   * @default () => true
   */
  write?: (req: Request) => boolean;
  /** Adopt sessions express-session stored (its `s:` cookie + the old store) on the user's next visit. @default true when an old store is known */
  migrateLegacySessions?: boolean;
  /**
   * The name(s) express-session's cookie had, read for migration (the first that carries a signed
   * session wins).
   * @default `name` when given, then express-session's default 'connect.sid'
   */
  legacyCookieName?: string | string[];
  /**
   * The express-session store to migrate from when `store` is already a Tether store: the store itself,
   * or `fromExpressSessionStore(store, { timeoutMs, prefix })` for options of its own, with or without
   * `instrumentStore` around it.
   */
  migrateFrom?: ExpressSessionStoreLike | ExpressSessionStoreAdapter;
  /**
   * Which user a session belongs to, read from its data at each commit, for Tether's per-user features
   * (`listUserSessions`, `destroyUserSessions`, `maxSessionsPerUser`).
   * @example (data) => (data.passport as { user?: { id?: string } } | undefined)?.user?.id
   */
  userIdFrom?: (data: Record<string, unknown>) => string | null | undefined;
}

/** express-session's options (as @types/express-session declares them) plus `tether`. */
export interface CompatSessionOptions {
  /** Signing secret(s): the first signs, all verify. Secrets under 32 characters are stretched with HKDF and warned about. */
  secret?: CipherKey | CipherKey[] | undefined;
  /** Cookie name. @default 'sid' ('__Host-sid' with `cookie.secure: true`); express-session's was 'connect.sid' */
  name?: string | undefined;
  /** @deprecated express-session's old alias of `name`. */
  key?: string | undefined;
  /** A Tether store, or any express-session store (wrapped with fromExpressSessionStore). @default a Tether MemoryStore */
  store?: SessionStore | ExpressSessionStoreLike | undefined;
  cookie?: CompatCookieOptions | ((req: Request) => CompatCookieOptions) | undefined;
  /** Session ID generator; must return 22–128 base64url characters with ≥128 bits of entropy. */
  genid?: ((req: Request) => string) | undefined;
  /** Send the cookie on every response (refreshing a persistent cookie's expiry). @default false */
  rolling?: boolean | undefined;
  /** Accepted; `true` is not honoured (warned): Tether never rewrites unchanged sessions. @default false */
  resave?: boolean | undefined;
  /** Store sessions that hold nothing. @default false (express-session's deprecated default was true) */
  saveUninitialized?: boolean | undefined;
  /** Trust X-Forwarded-Proto for `cookie.secure`; undefined = Express's "trust proxy" (req.secure). */
  proxy?: boolean | undefined;
  /** What `req.session = null` means: 'keep' ignores the request's changes, 'destroy' ends the session. @default 'keep' */
  unset?: 'destroy' | 'keep' | undefined;
  tether?: CompatTetherOptions | undefined;
}

export const COMPAT_DEFAULTS = {
  /** Not express-session's 'connect.sid', which names the stack (OWASP: session ID name fingerprinting). */
  cookieName: TETHER_DEFAULTS.cookieName,
  sameSite: 'lax',
  rolling: false,
  saveUninitialized: false,
  unset: 'keep',
} as const;

/** Everything the middleware needs, resolved once. */
export interface ResolvedCompat {
  tether: Tether<Record<string, unknown>>;
  name: string;
  /** A fresh cookie with this request's defaults (`'auto'` settings resolved). */
  cookieFor(req: Request): CompatCookie;
  /** `cookie` is one cookieFor() made with `secure: 'auto'`. */
  secureAuto(cookie: CompatCookie): boolean;
  /** `cookie` is a function: the defaults may differ from one request to the next. */
  cookiePerRequest: boolean;
  /**
   * The origin checks of `csrfProtection()` and of WebSocket handshakes, for a request whose session
   * cookie is Secure (`secure`) or not: a secure origin, and an Origin or Referer on every unsafe request
   * (an Origin on a handshake), where the cookie is Secure, as `secure: true` sets for every request;
   * what `tether.csrf` gives for these wins.
   */
  originChecks(secure: boolean): OriginChecks;
  rolling: boolean;
  saveUninitialized: boolean;
  unsetDestroy: boolean;
  proxy: boolean | undefined;
  production: boolean;
  clock: Clock;
  write(req: Request): boolean;
  /** A new session ID for this request (genid, checked) or Tether's own. */
  newId(req: Request): string;
  legacy: { names: readonly string[]; secrets: readonly Buffer[]; source: ExpressSessionStoreAdapter; adoptions: Adoptions } | null;
  /** What `req.sessionStore` shows: the store the app passed. */
  appStore: unknown;
  userIdFrom: ((data: Record<string, unknown>) => string | null | undefined) | undefined;
  warn(code: string, message: string): void;
}

const ENGINE_KEYS = ['production', 'idleTimeoutMs', 'absoluteTimeoutMs', 'touchIntervalMs', 'expiryGraceMs', 'maxSessionBytes',
  'storeTimeoutMs', 'gateTimeoutMs', 'maxReplays', 'maxSessionsPerUser', 'remember', 'userContextTtlMs', 'maxUserContextBytes', 'clock', 'csrf',
  'userAgentChange', 'addressChange', 'addressPrefix', 'newSessions', 'renewal', 'clearSiteData', 'codec'] as const;

const isCookieName = (v: unknown): boolean => typeof v === 'string' && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v);

const isKey = (v: unknown): boolean => typeof v === 'string' || ArrayBuffer.isView(v) || v instanceof KeyObject;

function keyBytes(s: CipherKey): Buffer {
  if (typeof s === 'string') return Buffer.from(s, 'utf8');
  if (s instanceof KeyObject) return s.export();
  return Buffer.from(s.buffer, s.byteOffset, s.byteLength);
}

/**
 * Tether needs ≥32 characters per secret. A shorter express-session secret is stretched with
 * HKDF-SHA256 (so `'keyboard cat'` keeps working) and warned about: stretching adds no entropy.
 * It stays safe enough only because a Tether session ID is 256 random bits looked up server-side:
 * a forged signature on a guessed ID still finds no session.
 */
function engineSecret(s: CipherKey, warn: ResolvedCompat['warn']): string {
  if (typeof s === 'string' && s.length >= TETHER_DEFAULTS.minSecretLength) return s;
  const bytes = keyBytes(s);
  if (bytes.length === 0) throw new OptionsInvalidError('session options.secret must not be empty');
  if (typeof s !== 'string' && bytes.length >= 32) return bytes.toString('base64url');
  warn('TETHER_COMPAT_SHORT_SECRET', `session options.secret is shorter than ${TETHER_DEFAULTS.minSecretLength} characters: a signing key was derived from it with HKDF-SHA256, which adds no entropy. Use a random secret of at least 32 characters (e.g. \`openssl rand -base64 32\`), first in the list so old cookies still verify.`);
  return Buffer.from(hkdfSync('sha256', bytes, 'tether/express compat', 'cookie signing key', 32)).toString('base64url');
}

function checkCompat(options: CompatSessionOptions): void {
  checkOptions('session', options, {
    secret: (v) => (isKey(v) || (Array.isArray(v) && v.length > 0 && v.every(isKey)) ? null : 'a string, a Buffer or a non-empty array of them'),
    name: 'nonEmptyString', key: 'nonEmptyString',
    store: (v) => (isExpressSessionStore(v) || (typeof v === 'object' && v !== null && typeof (v as SessionStore).listByUser === 'function')
      ? null : 'a Tether SessionStore or an express-session Store (get, set, destroy)'),
    cookie: (v) => (typeof v === 'function' || (typeof v === 'object' && v !== null && !Array.isArray(v)) ? null : 'an object or a function of the request'),
    genid: 'function', rolling: 'boolean', resave: 'boolean', saveUninitialized: 'boolean', proxy: 'boolean',
    unset: ['destroy', 'keep'], tether: 'object',
  });
  if (typeof options.cookie === 'object') checkCookie(options.cookie);
  const engineKinds = Object.fromEntries(ENGINE_KEYS.map((k) => [k, 'any' as const]));
  checkOptions('session', options.tether, {
    ...engineKinds, write: 'function', migrateLegacySessions: 'boolean', userIdFrom: 'function',
    legacyCookieName: (v) => (isCookieName(v) || (Array.isArray(v) && v.length > 0 && v.every(isCookieName)) ? null : 'a cookie name or a non-empty array of them'),
    // The adapter has a user index, so isExpressSessionStore() calls it a Tether store. instrumentStore's
    // proxy of one is an instance too (a Proxy without a getPrototypeOf trap answers with its target's).
    migrateFrom: (v) => (isExpressSessionStore(v) || v instanceof ExpressSessionStoreAdapter
      ? null : 'an express-session Store (get, set, destroy) or what fromExpressSessionStore() returns'),
  }, 'options.tether');
  const c = options.tether?.csrf as unknown;
  if (c !== undefined && (typeof c !== 'object' || c === null)) throw new OptionsInvalidError('session options.tether.csrf must be an object (mount csrfProtection() to use it)');
}

function checkCookie(cookie: CompatCookieOptions): void {
  checkOptions('session', cookie, {
    maxAge: (v) => (v === null || (typeof v === 'number' && Number.isFinite(v)) ? null : 'a number of milliseconds or null'),
    expires: (v) => (v === null || v === false || v instanceof Date ? null : 'a Date, null or false'),
    httpOnly: 'boolean', path: 'nonEmptyString', domain: 'nonEmptyString', secure: (v) => (typeof v === 'boolean' || v === 'auto' ? null : 'a boolean or "auto"'),
    sameSite: (v) => (typeof v === 'boolean' || (typeof v === 'string' && ['lax', 'strict', 'none', 'auto'].includes(v.toLowerCase())) ? null : 'a boolean, "lax", "strict", "none" or "auto"'),
    partitioned: 'boolean', priority: ['low', 'medium', 'high'], signed: 'boolean', encode: 'function',
  }, 'options.cookie');
}

/** express-session's issecure(): TLS socket, else X-Forwarded-Proto with `proxy: true`, else Express's req.secure. */
export function isSecureRequest(req: Request, proxy: boolean | undefined): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
  if (proxy === false) return false;
  if (proxy !== true) return (req as { secure?: boolean }).secure === true;
  const header = String(req.headers['x-forwarded-proto'] ?? '');
  return header.split(',')[0]!.trim().toLowerCase() === 'https';
}

/**
 * The cookie names migration reads. An app that kept express-session's name keeps it, one that renames
 * its cookie in the switch (or drops `connect.sid` for a name that does not tell the stack) still had
 * `connect.sid` before, unless `legacyCookieName` says otherwise.
 */
function legacyNames(name: string | undefined, given: string | string[] | undefined): string[] {
  if (given !== undefined) return [...new Set(Array.isArray(given) ? given : [given])];
  return [...new Set([...(name === undefined ? [] : [name]), LEGACY_COOKIE_NAME])];
}

export function resolveCompat(options: CompatSessionOptions = {}): ResolvedCompat {
  checkCompat(options);
  const warned = new Set<string>();
  const warn = (code: string, message: string): void => {
    if (warned.has(code)) return;
    warned.add(code);
    process.emitWarning(message, { code, type: 'TetherWarning' });
  };
  const t = options.tether ?? {};
  const production = t.production ?? process.env.NODE_ENV === 'production';
  const clock = t.clock ?? systemClock;
  const staticCookie = typeof options.cookie === 'object' ? options.cookie : undefined;

  if (options.resave === true) {
    warn('TETHER_COMPAT_RESAVE', 'session option resave: true is accepted but not honoured: rewriting unchanged sessions is what lets parallel requests overwrite each other. Tether writes only what changed, by compare-and-set, and refreshes expiry with a touch (docs/migrating-from-express-session.md).');
  }
  if (options.saveUninitialized === true) {
    warn('TETHER_COMPAT_SAVE_UNINITIALIZED', 'session option saveUninitialized: true is honoured: every request without a cookie stores a new session, crawlers included. Tether\'s default (false) stores a session only once it holds data.');
  }
  if (staticCookie?.httpOnly === false) warn('TETHER_COMPAT_HTTPONLY', 'session option cookie.httpOnly: false is honoured: page scripts (and any XSS) can read the session cookie.');
  if (staticCookie?.sameSite === false) warn('TETHER_COMPAT_SAMESITE', 'session option cookie.sameSite: false is honoured: the cookie carries no SameSite attribute and browsers pick their own default.');

  const secureDefault: boolean | 'auto' = production ? 'auto' : false;
  const staticSecure = staticCookie?.secure ?? secureDefault;
  const staticPath = staticCookie?.path ?? '/';
  const name = options.name ?? options.key
    ?? (staticSecure === true && staticPath === '/' && staticCookie?.domain === undefined ? `__Host-${COMPAT_DEFAULTS.cookieName}` : COMPAT_DEFAULTS.cookieName);

  const rawSecrets = options.secret === undefined ? [] : Array.isArray(options.secret) ? options.secret : [options.secret];
  const secrets = rawSecrets.map((s) => engineSecret(s, warn));

  let store: SessionStore | undefined;
  let legacySource: ExpressSessionStoreAdapter | null = null;
  if (options.store instanceof ExpressSessionStoreAdapter) {
    store = legacySource = options.store;
  } else if (options.store !== undefined && isExpressSessionStore(options.store)) {
    store = legacySource = new ExpressSessionStoreAdapter(options.store, { clock });
  } else {
    store = options.store;
  }
  if (legacySource) {
    warn('TETHER_COMPAT_LEGACY_STORE', `${legacySource.name} is an express-session store: compare-and-set is emulated in this process only, it has no per-user index and no change feed. Move to a Tether store to get every guarantee; sessions migrate on each user's next visit (docs/migrating-from-express-session.md).`);
    if ((t.maxSessionsPerUser ?? 0) > 0 && !legacySource.count) {
      throw new OptionsInvalidError('session options.tether.maxSessionsPerUser needs a store that can list sessions per user; this express-session store has no all()');
    }
  }
  if (t.migrateFrom) legacySource = t.migrateFrom instanceof ExpressSessionStoreAdapter ? t.migrateFrom : new ExpressSessionStoreAdapter(t.migrateFrom, { clock });
  const migrate = (t.migrateLegacySessions ?? true) && legacySource !== null && rawSecrets.length > 0;

  const newId = (req: Request): string => {
    if (!options.genid) return generateId();
    const id = options.genid(req);
    if (typeof id !== 'string' || !isWellFormedId(id)) {
      throw new OptionsInvalidError('session options.genid must return 22–128 base64url characters (A–Z a–z 0–9 _ -) with at least 128 bits of entropy, e.g. crypto.randomUUID()');
    }
    return id;
  };

  const staticMaxAge = typeof staticCookie?.maxAge === 'number' && staticCookie.maxAge > 0 ? Math.ceil(staticCookie.maxAge) : undefined;
  const idleTimeoutMs = t.idleTimeoutMs ?? staticMaxAge ?? TETHER_DEFAULTS.idleTimeoutMs;
  const engineOptions: TetherOptions = {
    ...Object.fromEntries(ENGINE_KEYS.filter((k) => t[k] !== undefined).map((k) => [k, t[k]])),
    production,
    clock,
    store,
    idleTimeoutMs,
    absoluteTimeoutMs: t.absoluteTimeoutMs ?? Math.max(TETHER_DEFAULTS.absoluteTimeoutMs, idleTimeoutMs),
    // The engine's cookie settings only name the cookie: the compat layer writes every Set-Cookie itself,
    // Secure decided per request (and warned about here when a production cookie goes out without it),
    // so the engine is told secure, which keeps it from warning about a cookie it never writes.
    cookie: { name, secure: true },
    // 'auto' and a `cookie` function make a cookie Secure on some requests only: csrfProtection() and
    // WebSocket handshakes through tether/node's openSocket decide per request (originChecks). This is
    // what a handshake view without its node:http request is checked by: https where every cookie is Secure.
    csrf: { jsonOnly: false, secureOrigins: staticSecure === true, ...t.csrf },
  };
  if (secrets.length > 0) engineOptions.secrets = secrets;
  const tether = new Tether<Record<string, unknown>>(engineOptions);

  const autoSecure = new WeakSet<CompatCookie>();
  const cookieFor = (req: Request): CompatCookie => {
    const o = (typeof options.cookie === 'function' ? options.cookie(req) : options.cookie) ?? {};
    if (typeof options.cookie === 'function') checkCookie(o);
    const c = new CompatCookie(clock);
    const secure = o.secure ?? secureDefault;
    const isSecure = secure === 'auto' || o.sameSite === 'auto' ? isSecureRequest(req, options.proxy) : false;
    c.path = o.path ?? '/';
    c.domain = o.domain;
    c.httpOnly = o.httpOnly ?? true;
    c.secure = secure === 'auto' ? isSecure : secure;
    if (secure === 'auto') autoSecure.add(c);
    const same = typeof o.sameSite === 'string' ? o.sameSite.toLowerCase() : o.sameSite;
    c.sameSite = same === undefined ? COMPAT_DEFAULTS.sameSite : same === 'auto' ? (isSecure ? 'none' : 'lax') : same as CompatCookie['sameSite'];
    c.partitioned = o.partitioned;
    c.priority = o.priority;
    if (typeof o.maxAge === 'number') c.maxAge = o.maxAge;
    else if (o.expires instanceof Date || o.expires === false) c.expires = o.expires;
    return c;
  };

  const originChecks = (secure: boolean): OriginChecks => {
    const secureOrigins = t.csrf?.secureOrigins ?? secure;
    return { secureOrigins, requireOrigin: t.csrf?.requireOrigin ?? secureOrigins };
  };
  // A handshake is checked by the cookie its own request would be given: Secure by that request's
  // defaults (`cookie` is called with the node:http request, as express-session is on socket.io's
  // `io.engine.use`). Its session is read only once its origin passed, so a Secure kept with a stored
  // session does not count here.
  decideHandshakeOrigins(tether, (view) => (view instanceof HandshakeView
    ? originChecks(cookieFor(view.request as Request).secure === true)
    : undefined));

  return {
    tether, name, cookieFor, clock, production, originChecks,
    secureAuto: (cookie) => autoSecure.has(cookie),
    cookiePerRequest: typeof options.cookie === 'function',
    rolling: options.rolling ?? COMPAT_DEFAULTS.rolling,
    saveUninitialized: options.saveUninitialized ?? COMPAT_DEFAULTS.saveUninitialized,
    unsetDestroy: (options.unset ?? COMPAT_DEFAULTS.unset) === 'destroy',
    proxy: options.proxy,
    write: t.write ?? (() => true),
    newId: (req) => newId(req),
    legacy: migrate
      ? { names: legacyNames(options.name ?? options.key, t.legacyCookieName), secrets: rawSecrets.map(keyBytes), source: legacySource!, adoptions: new Adoptions() }
      : null,
    appStore: options.store ?? tether.store,
    userIdFrom: t.userIdFrom,
    warn,
  };
}
