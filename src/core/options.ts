/**
 * Engine options: `TetherOptions` (user input) goes through `resolveOptions()` once, at construction,
 * and comes out as a frozen `ResolvedOptions`. Defaults live in `TETHER_DEFAULTS`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { OptionsInvalidError } from './errors.js';
import { checkOptions } from './options-check.js';
import { systemClock } from './store.js';
import type { Clock, SessionStore } from './store.js';
import type { AddressPrefix } from './network.js';
import type { SharedLimiter } from './rate-limit.js';
import type { SessionCodec } from './codec.js';
import { jsonCodec } from './codec.js';

export type SameSite = 'lax' | 'strict' | 'none';

export interface CookieOptions {
  /** @default 'sid', or '__Host-sid' when the cookie is Secure with Path=/ and no Domain */
  name?: string;
  /** @default '/' */
  path?: string;
  /** @default none (host-only cookie) */
  domain?: string;
  /**
   * - 'lax' (default): sent on top-level navigations from other sites, not on their subrequests or POSTs.
   * - 'strict': never sent from other sites; links from elsewhere arrive logged out.
   * - 'none': sent everywhere; needs Secure and leaves CSRF defence to the token alone.
   */
  sameSite?: SameSite;
  /** @default true in production, else false */
  secure?: boolean;
  /** Persistent cookie lifetime, from 1000 ms (Max-Age counts whole seconds) to absoluteTimeoutMs; omitted (default) makes a browser-session cookie. */
  maxAgeMs?: number;
}

export interface CsrfOptions {
  /** Header carrying the synchronizer token. @default 'x-csrf-token' */
  header?: string;
  /**
   * Allowed origins (full `scheme://host[:port]`). Default: the host and port named by the request's
   * Host; with a Secure cookie (production's default) the scheme too must be https (or http to a
   * loopback host, which browsers treat as secure), since the server behind a TLS proxy cannot see it.
   */
  origins?: string[];
  /**
   * Refuse unsafe requests that carry neither Origin nor Referer (browsers send Origin with every unsafe
   * request; a client that sends neither must name its origin or go without CSRF protection). @default
   * `secureOrigins`: a site served over HTTPS requires one, as Django does for secure requests; over
   * plain HTTP (development, tests, tools), none is required
   */
  requireOrigin?: boolean;
  /**
   * Without `origins`: accept only a secure origin of the Host (https, or http to a loopback host, which
   * browsers count as secure). @default `cookie.secure`: a site whose cookie is Secure is served over HTTPS
   */
  secureOrigins?: boolean;
  /** Refuse the CORS-simple content types (text/plain, forms) on unsafe requests with a body. @default true */
  jsonOnly?: boolean;
  /**
   * Accept HTML form posts (`application/x-www-form-urlencoded`, `multipart/form-data`): they pass the
   * content-type check, and one without the token header takes the token from the `formField` field of
   * its parsed body. Sec-Fetch-Site and Origin/Referer are checked as for any request; text/plain and a
   * missing content type stay refused while `jsonOnly`. See the README's adapter sections for where each
   * adapter reads the body. @default false
   */
  forms?: boolean;
  /** The form field that carries the token when `forms` is on. @default '_csrf' */
  formField?: string;
}

/**
 * "Remember me": the lifetime of a session marked with `session.remember()`, typically at a login whose
 * user asked to stay signed in. Its cookie is persistent (Max-Age), and its idle and absolute timeouts
 * are these instead of the engine's.
 */
export interface RememberOptions {
  /** Idle timeout of a remembered session, at least idleTimeoutMs. @default 14 days */
  idleTimeoutMs?: number;
  /** Absolute lifetime of a remembered session, at least absoluteTimeoutMs. @default 30 days (or absoluteTimeoutMs, if longer) */
  absoluteTimeoutMs?: number;
}

/**
 * Renewal timeout (OWASP Session Management Cheat Sheet, "Renewal Timeout"): a session's ID is replaced
 * once it is `intervalMs` old, whatever the session does, so that a stolen ID works for at most that
 * long even while its owner stays active. The request that finds the ID due answers with the new
 * cookie; data, owner, CSRF token and the session's age are kept. The old ID goes on naming the session
 * for `graceMs`, for the requests the browser sent before the new cookie arrived, then dies. Requests
 * that cannot deliver a cookie (a WebSocket's reads, `open(req, { renew: false })`) never renew.
 */
export interface RenewalOptions {
  /** How old an ID may get before the next request replaces it; longer than graceMs. */
  intervalMs: number;
  /** How long the replaced ID still names the session, at most 60 s. @default 30 s */
  graceMs?: number;
}

export interface TetherOptions {
  /** Where sessions live. @default a MemoryStore (warned about in production) */
  store?: SessionStore;
  /**
   * Signing secrets, at least 32 characters each; the first signs, all verify. Required in production,
   * where each must also have at least 8 different characters (a repeated character or word is refused).
   * `undefined` is accepted as absent, so `process.env.TETHER_SECRET?.split(',')` type-checks under
   * `exactOptionalPropertyTypes` too.
   */
  secrets?: string | readonly string[] | undefined;
  /** @default process.env.NODE_ENV === 'production' */
  production?: boolean;
  cookie?: CookieOptions;
  /** Idle (rolling) timeout. @default 30 minutes */
  idleTimeoutMs?: number;
  /** Absolute lifetime, counted from creation or the last `login()` (a plain `regenerate()` keeps the session's age). @default 12 hours */
  absoluteTimeoutMs?: number;
  /**
   * Minimum time between expiry touches of an unchanged session; shorter than idleTimeoutMs. Requests
   * that change nothing keep a session alive when they come at most idleTimeoutMs − touchIntervalMs apart.
   * @default min(60 s, idleTimeoutMs / 10)
   */
  touchIntervalMs?: number;
  /** Extra life given to records in the store past the engine's own deadlines, so the engine sees expiries. @default 60 s */
  expiryGraceMs?: number;
  /** Upper bound on one encoded session. @default 64 KiB */
  maxSessionBytes?: number;
  /** Bound on every store call, at most 2^31 − 1 ms. @default 2000 ms */
  storeTimeoutMs?: number;
  /** Bound on waiting for the per-session gate, at most 2^31 − 1 ms (a Node.js timer's longest delay). @default 15000 ms */
  gateTimeoutMs?: number;
  /** Compare-and-set replays of `session.update()` before giving up with SESSION_CONFLICT. @default 8 */
  maxReplays?: number;
  /** Sessions a user may hold; a login over it ends the oldest. 0 = no limit. @default 0 */
  maxSessionsPerUser?: number;
  /** Timeouts of sessions marked with `session.remember()` ("keep me signed in"). */
  remember?: RememberOptions;
  /** Replaces a session's ID once it is `renewal.intervalMs` old (see RenewalOptions). @default off */
  renewal?: RenewalOptions | false;
  /** How long a user context lives after its last write (a read with less than half of it left writes it again). @default 90 days */
  userContextTtlMs?: number;
  /** Upper bound on one stored user context (`tether.users`), as the codec stores it. @default 64 KiB */
  maxUserContextBytes?: number;
  /** CSRF protection settings; `false` turns the checks off. */
  csrf?: CsrfOptions | false;
  /** A custom ID generator: base64url, 22–128 characters, ≥128 bits of entropy. Each ID is checked: another value fails with OPTIONS_INVALID. */
  generateId?: () => string;
  codec?: SessionCodec;
  /**
   * A session presented by a browser other than the one it was last seen in (its User-Agent differs
   * from the one stored): `'report'` emits an `anomaly` event (reason `user-agent`), counts it and
   * stores the new User-Agent, so each change is reported once (a browser that updated itself, once,
   * not at every request after); `'end'` also ends the session, and the request continues with a
   * fresh anonymous one (stricter binding, at the price of logging users out when their browser
   * updates itself). @default 'report'
   */
  userAgentChange?: 'report' | 'end';
  /**
   * A session presented from another network than the one it was last seen from (the client's
   * address, cut to `addressPrefix`, differs from the one stored): `'report'` emits an `anomaly` event
   * (reason `address`), counts it and stores the new network, so each move is reported once; `'end'`
   * also ends the session, and the request continues with a fresh anonymous one; `'off'` stores and
   * compares nothing. The address is the adapter's: Express's and Fastify's `req.ip` (under their
   * `trust proxy` settings), the socket's peer on node:http, the `clientAddress` option on Hono; a
   * request without one (a WebSocket handshake) is not compared. Clients change networks legitimately
   * (mobile, Wi-Fi to cellular, VPNs): `'end'` logs those users out. @default 'off'
   */
  addressChange?: 'off' | 'report' | 'end';
  /** The prefix lengths `addressChange` compares. @default { ipv4: 24, ipv6: 48 } */
  addressPrefix?: { ipv4?: number; ipv6?: number };
  /** Limits on creating sessions (off unless given): see NewSessionLimits. */
  newSessions?: NewSessionLimits;
  /**
   * A `Clear-Site-Data` header on the response of a request that ended its session (`destroy()`,
   * `logout()`), telling the browser to drop what it kept of the site while signed in (SECURITY.md
   * S16). `true` sends `"cache", "storage"`: cached pages and the origin's storage (localStorage,
   * IndexedDB, service workers). A list names the types, `['cache', 'cookies', 'storage']` say;
   * `'cookies'` reaches every cookie of the site's registrable domain (its sibling subdomains too), which
   * is why `true` leaves it out: the session cookie itself is expired by the logout's Set-Cookie anyway.
   * Any adapter sends it; so does the express-session drop-in, on `req.session.destroy()`. @default false
   */
  clearSiteData?: boolean | readonly ClearSiteDataType[];
  /**
   * Decides every deadline. @default the store's own `clock` when it has one (RedisStore follows the
   * Redis server's time, so machines whose clocks differ still agree), else the system clock
   */
  clock?: Clock;
}

/** A type of browser data `Clear-Site-Data` names (W3C Clear Site Data); `'*'` is every type. */
export type ClearSiteDataType = 'cache' | 'cookies' | 'storage' | 'executionContexts' | 'clientHints' | 'prefetchCache' | 'prerenderCache' | '*';

const CLEAR_SITE_DATA_TYPES: ReadonlySet<string> = new Set<ClearSiteDataType>(['cache', 'cookies', 'storage', 'executionContexts', 'clientHints', 'prefetchCache', 'prerenderCache', '*']);

/** The Clear-Site-Data header value of the `clearSiteData` option, or null for none. */
function clearSiteDataOf(v: boolean | readonly ClearSiteDataType[] | undefined): string | null {
  if (v === undefined || v === false) return null;
  const types = v === true ? ['cache', 'storage'] : v;
  return types.map((t) => `"${t}"`).join(', ');
}

/**
 * Limits on creating sessions (SECURITY.md S47): how fast, and how many may live at once. A request
 * that would store a new session past a rate is refused, 429 RATE_LIMITED with Retry-After, and stores
 * nothing (its handler has run; nothing of the session is kept). Logins that regenerate a stored
 * session, and every write to one, are never counted. The rates' counts live in the store when it keeps shared ones (RedisStore, PostgresStore, a
 * TieredStore over either: every machine counts together), else in this process (pass `limiter` to
 * count elsewhere, e.g. `sharedLimiter` from tether/cluster for a cluster's workers); while the store
 * is out, in this process.
 */
export interface NewSessionLimits {
  /**
   * New sessions per client address (the adapter's, as for `addressChange`; an IPv6 client counted by
   * its /64, which one client controls) in any `windowMs`; a request without an address is not
   * counted here. 0: no limit. @default 0
   */
  perAddress?: number;
  /** New sessions from all clients together in any `windowMs`: bounds how fast a flood from many addresses fills the store. 0: no limit. @default 0 */
  total?: number;
  /** @default 60000 */
  windowMs?: number;
  /**
   * The most live sessions the store may hold (Tomcat's `maxActiveSessions`): a request that would store
   * a new session while the store holds this many is refused, 503 TOO_MANY_SESSIONS with Retry-After,
   * and stores nothing, until sessions end. What is counted is the store's `count()`: its live sessions
   * (user contexts, the per-user state of `users.update`, are not sessions and do not count, nor does
   * the record a renewed session's old ID keeps for its grace, nor a session that timed out, which the
   * store keeps for `expiryGraceMs`: it is counted with that margin, `count({ marginMs })`).
   * It is asked when the engine starts, then at most every `recountMs`, off the requests' path (a request
   * that the last count would refuse waits for a due one); in between, each session this engine stores
   * adds one, and one whose write failed (a store outage) adds nothing. Machines sharing a store each
   * learn of the others' new sessions at their next count, so together they may pass the cap by what
   * they create in that time; pair it with `total`. Until a count has succeeded, nothing is refused;
   * while the store cannot be counted, the last count holds. 0: no cap. @default 0
   */
  maxActive?: number;
  /**
   * How often, at most, the store's live sessions are counted under `maxActive`. Counts are spaced
   * further apart when they are slow, so that counting takes at most 1 % of the time: RedisStore counts
   * by SCAN, ≈ 0.3 s per 100,000 keys, so with that many the count is repeated every 30 s. SqliteStore
   * counts in this process's thread, ≈ 6 ms per 100,000 sessions, during which it answers nothing else.
   * @default 5000
   */
  recountMs?: number;
  /** Where the counts are kept, instead of the store (or this process). */
  limiter?: (name: string, limit: number, windowMs: number) => SharedLimiter;
}

export const TETHER_DEFAULTS = {
  cookieName: 'sid',
  idleTimeoutMs: 30 * 60_000,
  absoluteTimeoutMs: 12 * 3_600_000,
  expiryGraceMs: 60_000,
  maxSessionBytes: 64 * 1024,
  storeTimeoutMs: 2_000,
  gateTimeoutMs: 15_000,
  maxReplays: 8,
  maxSessionsPerUser: 0,
  userContextTtlMs: 90 * 86_400_000,
  maxUserContextBytes: 64 * 1024,
  rememberIdleTimeoutMs: 14 * 86_400_000,
  rememberAbsoluteTimeoutMs: 30 * 86_400_000,
  renewalGraceMs: 30_000,
  /** The longest `renewal.graceMs`: a replaced ID must die soon (SECURITY.md S26). */
  maxRenewalGraceMs: 60_000,
  csrfHeader: 'x-csrf-token',
  csrfFormField: '_csrf',
  minSecretLength: 32,
  /**
   * In production, the fewest different characters a secret may have. Random secrets are far above it
   * (32 random hex characters have about 14, 43 of base64url about 31); a repeated character or word
   * ('x' × 32, 'secret' × 6, 'changeme…') is far below, and would sign cookies anyone can forge.
   */
  minSecretDistinctChars: 8,
} as const;

export interface ResolvedCookie {
  name: string;
  path: string;
  domain: string | undefined;
  sameSite: SameSite;
  secure: boolean;
  httpOnly: true;
  maxAgeMs: number | undefined;
}

/** A session's two timeouts: the engine's, or those of a remembered session. */
export interface Lifetime {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

export interface ResolvedCsrf {
  header: string;
  origins: readonly string[] | undefined;
  requireOrigin: boolean;
  /** Without `origins`: only a secure origin (https, or http to a loopback host) passes (CsrfOptions.secureOrigins). */
  secureOrigins: boolean;
  jsonOnly: boolean;
  forms: boolean;
  formField: string;
}

export interface ResolvedOptions {
  store: SessionStore | undefined;
  secrets: readonly string[];
  secretsGenerated: boolean;
  /**
   * Outside production, the positions (from 1) of the secrets production would refuse as a repeated
   * pattern: the engine warns TETHER_WEAK_SECRET naming them. Empty in production, which refuses them.
   */
  weakSecrets: readonly number[];
  production: boolean;
  cookie: Readonly<ResolvedCookie>;
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  /** The timeouts of a remembered session (`session.remember()`). */
  remember: Readonly<Lifetime>;
  /** The renewal timeout, or null when IDs are not renewed. */
  renewal: Readonly<Required<RenewalOptions>> | null;
  touchIntervalMs: number;
  expiryGraceMs: number;
  maxSessionBytes: number;
  storeTimeoutMs: number;
  gateTimeoutMs: number;
  maxReplays: number;
  maxSessionsPerUser: number;
  userContextTtlMs: number;
  maxUserContextBytes: number;
  csrf: Readonly<ResolvedCsrf> | false;
  generateId: (() => string) | undefined;
  codec: SessionCodec;
  userAgentChange: 'report' | 'end';
  addressChange: 'off' | 'report' | 'end';
  addressPrefix: Readonly<AddressPrefix>;
  newSessions: Readonly<Required<Omit<NewSessionLimits, 'limiter'>> & Pick<NewSessionLimits, 'limiter'>> | null;
  /** The Clear-Site-Data header value sent when a request ends its session, or null. */
  clearSiteData: string | null;
  clock: Clock;
}

/**
 * An HTTP token (RFC 9110 §5.6.2): what a cookie name (RFC 6265) and a header name may be; never `;`,
 * a space or CR/LF.
 */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PATH_OR_DOMAIN = /^[\x21-\x3A\x3C-\x7E]+$/;

function checkStore(v: unknown): string | null {
  const s = v as Partial<SessionStore> | null;
  return typeof s === 'object' && s !== null && typeof s.get === 'function' && typeof s.set === 'function'
    && typeof s.destroy === 'function' && typeof s.touch === 'function' ? null : 'a SessionStore (get, set, touch, destroy…)';
}

function checkSecrets(v: unknown): string | null {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string')) return 'a string or a non-empty array of strings';
  return null;
}

/**
 * Why `secret` cannot sign sessions, or null when it can: under TETHER_DEFAULTS.minSecretLength
 * characters, or, in production, under minSecretDistinctChars different ones (a repeated character or
 * word). The reason never quotes the secret, only counts its characters.
 */
export function secretProblem(secret: string, production: boolean): string | null {
  if (secret.length < TETHER_DEFAULTS.minSecretLength) return `every secret must be at least ${TETHER_DEFAULTS.minSecretLength} characters`;
  const distinct = new Set(secret).size;
  if (production && distinct < TETHER_DEFAULTS.minSecretDistinctChars) {
    return `a secret with ${distinct} different characters is a repeated pattern, not a random secret; in production each needs at least `
      + `${TETHER_DEFAULTS.minSecretDistinctChars}. Generate one with npx tether secret`;
  }
  return null;
}

export function resolveOptions(input: TetherOptions = {}): Readonly<ResolvedOptions> {
  checkOptions('Tether', input, {
    store: checkStore, secrets: checkSecrets, production: 'boolean', cookie: 'object',
    idleTimeoutMs: 'positiveInteger', absoluteTimeoutMs: 'positiveInteger', touchIntervalMs: 'nonNegativeInteger',
    expiryGraceMs: 'nonNegativeInteger', maxSessionBytes: 'positiveInteger', storeTimeoutMs: 'timerMs',
    gateTimeoutMs: 'timerMs', maxReplays: 'nonNegativeInteger', maxSessionsPerUser: 'nonNegativeInteger',
    userContextTtlMs: 'positiveInteger', maxUserContextBytes: 'positiveInteger',
    csrf: (v) => (v === false || (typeof v === 'object' && v !== null && !Array.isArray(v)) ? null : 'false or an object'),
    generateId: 'function', codec: (v) => (typeof (v as SessionCodec)?.encode === 'function' && typeof (v as SessionCodec)?.decode === 'function' ? null : 'an object with encode() and decode()'),
    clock: 'clock', userAgentChange: ['report', 'end'], addressChange: ['off', 'report', 'end'], addressPrefix: 'object', newSessions: 'object', remember: 'object',
    renewal: (v) => (v === false || (typeof v === 'object' && v !== null && !Array.isArray(v)) ? null : 'false or an object'),
    clearSiteData: (v) => (typeof v === 'boolean' || (Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'string' && CLEAR_SITE_DATA_TYPES.has(t)))
      ? null : `true, false or a non-empty list of ${[...CLEAR_SITE_DATA_TYPES].map((t) => `'${t}'`).join(', ')}`),
  });
  checkOptions('Tether', input.newSessions, {
    perAddress: 'nonNegativeInteger', total: 'nonNegativeInteger', windowMs: 'positiveInteger', maxActive: 'nonNegativeInteger', recountMs: 'positiveInteger',
    limiter: 'function',
  }, 'options.newSessions');
  checkOptions('Tether', input.addressPrefix, {
    ipv4: (v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 32 ? null : 'a whole number from 1 to 32'),
    ipv6: (v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 128 ? null : 'a whole number from 1 to 128'),
  }, 'options.addressPrefix');
  checkOptions('Tether', input.remember, { idleTimeoutMs: 'positiveInteger', absoluteTimeoutMs: 'positiveInteger' }, 'options.remember');
  checkOptions('Tether', input.cookie, {
    name: 'nonEmptyString', path: 'nonEmptyString', domain: 'nonEmptyString', sameSite: ['lax', 'strict', 'none'],
    secure: 'boolean', maxAgeMs: 'positiveInteger',
  }, 'options.cookie');
  if (input.csrf) {
    checkOptions('Tether', input.csrf, {
      header: 'nonEmptyString', origins: 'stringArray', requireOrigin: 'boolean', secureOrigins: 'boolean', jsonOnly: 'boolean', forms: 'boolean', formField: 'nonEmptyString',
    }, 'options.csrf');
  }

  const production = input.production ?? process.env.NODE_ENV === 'production';
  let secrets = typeof input.secrets === 'string' ? [input.secrets] : input.secrets ? [...input.secrets] : [];
  let secretsGenerated = false;
  if (secrets.length === 0) {
    if (production) throw new OptionsInvalidError('Tether options.secrets is required in production (set it from the environment, e.g. TETHER_SECRET)');
    secrets = [randomBytes(32).toString('base64url')];
    secretsGenerated = true;
  }
  const weakSecrets: number[] = [];
  secrets.forEach((s, i) => {
    const problem = secretProblem(s, production);
    if (problem !== null) throw new OptionsInvalidError(`Tether options.secrets: ${problem}`);
    if (!production && secretProblem(s, true) !== null) weakSecrets.push(i + 1);
  });

  const c = input.cookie ?? {};
  const secure = c.secure ?? production;
  const sameSite = c.sameSite ?? 'lax';
  const path = c.path ?? '/';
  if (sameSite === 'none' && !secure) throw new OptionsInvalidError('Tether options.cookie.sameSite "none" needs options.cookie.secure true');
  if (!PATH_OR_DOMAIN.test(path)) throw new OptionsInvalidError('Tether options.cookie.path contains characters not allowed in a cookie path');
  if (c.domain !== undefined && !PATH_OR_DOMAIN.test(c.domain)) throw new OptionsInvalidError('Tether options.cookie.domain contains characters not allowed in a cookie domain');
  const hostPrefixOk = secure && path === '/' && c.domain === undefined;
  const name = c.name ?? (hostPrefixOk ? `__Host-${TETHER_DEFAULTS.cookieName}` : TETHER_DEFAULTS.cookieName);
  if (!HTTP_TOKEN.test(name)) throw new OptionsInvalidError('Tether options.cookie.name must be an RFC 6265 token');
  if (name.startsWith('__Host-') && !hostPrefixOk) throw new OptionsInvalidError('Tether options.cookie.name with the __Host- prefix needs secure, path "/" and no domain');
  if (name.startsWith('__Secure-') && !secure) throw new OptionsInvalidError('Tether options.cookie.name with the __Secure- prefix needs secure');

  const idleTimeoutMs = input.idleTimeoutMs ?? TETHER_DEFAULTS.idleTimeoutMs;
  const absoluteTimeoutMs = input.absoluteTimeoutMs ?? TETHER_DEFAULTS.absoluteTimeoutMs;
  // Max-Age counts whole seconds, and a cookie is sent with the floor of maxAgeMs / 1000: under a
  // second that is Max-Age=0, which tells the browser to delete the cookie as it receives it, so no
  // session could ever be carried.
  if (c.maxAgeMs !== undefined && c.maxAgeMs < 1000) {
    throw new OptionsInvalidError(`Tether options.cookie.maxAgeMs (${c.maxAgeMs}) is under 1000: the cookie's Max-Age counts whole seconds, `
      + 'and Max-Age=0 deletes the cookie as it is set. Give at least 1000 ms, or leave maxAgeMs unset (a browser-session cookie)');
  }
  if (c.maxAgeMs !== undefined && c.maxAgeMs > absoluteTimeoutMs) {
    throw new OptionsInvalidError(`Tether options.cookie.maxAgeMs (${c.maxAgeMs}) is longer than absoluteTimeoutMs (${absoluteTimeoutMs}): ` +
      'the cookie would outlive every session it can carry. Leave maxAgeMs unset (a browser-session cookie) or make it at most absoluteTimeoutMs');
  }
  // A request that changes nothing moves the idle deadline only when the last touch is at least
  // touchIntervalMs old. At touchIntervalMs >= idleTimeoutMs that is never before the session has
  // already expired, so a user who only reads would be logged out while active. The default is at
  // most a tenth of idleTimeoutMs, so only a touchIntervalMs given here can cross it.
  const touchIntervalMs = input.touchIntervalMs ?? Math.min(60_000, Math.floor(idleTimeoutMs / 10));
  if (touchIntervalMs >= idleTimeoutMs) {
    const idle = input.idleTimeoutMs === undefined ? `${idleTimeoutMs}, the default` : `${idleTimeoutMs}`;
    throw new OptionsInvalidError(`Tether options.touchIntervalMs (${touchIntervalMs}) must be shorter than options.idleTimeoutMs (${idle}): `
      + 'requests that change nothing would never move the idle deadline, and sessions in use would expire. '
      + 'Leave touchIntervalMs unset (at most a tenth of idleTimeoutMs) or make it well under idleTimeoutMs');
  }
  const remember = rememberLifetime(input, idleTimeoutMs, absoluteTimeoutMs);
  const renewal = renewalOf(input.renewal);
  const csrf = input.csrf === false ? false : Object.freeze({
    header: csrfHeader(input.csrf?.header ?? TETHER_DEFAULTS.csrfHeader),
    origins: input.csrf?.origins ? Object.freeze(input.csrf.origins.map((o) => normaliseOrigin(o))) : undefined,
    requireOrigin: input.csrf?.requireOrigin ?? input.csrf?.secureOrigins ?? secure,
    secureOrigins: input.csrf?.secureOrigins ?? secure,
    jsonOnly: input.csrf?.jsonOnly ?? true,
    forms: input.csrf?.forms ?? false,
    formField: input.csrf?.formField ?? TETHER_DEFAULTS.csrfFormField,
  });

  return Object.freeze({
    store: input.store,
    secrets: Object.freeze(secrets),
    secretsGenerated,
    weakSecrets: Object.freeze(weakSecrets),
    production,
    cookie: Object.freeze({ name, path, domain: c.domain, sameSite, secure, httpOnly: true as const, maxAgeMs: c.maxAgeMs }),
    idleTimeoutMs,
    absoluteTimeoutMs,
    remember,
    renewal,
    touchIntervalMs,
    expiryGraceMs: input.expiryGraceMs ?? TETHER_DEFAULTS.expiryGraceMs,
    maxSessionBytes: input.maxSessionBytes ?? TETHER_DEFAULTS.maxSessionBytes,
    storeTimeoutMs: input.storeTimeoutMs ?? TETHER_DEFAULTS.storeTimeoutMs,
    gateTimeoutMs: input.gateTimeoutMs ?? TETHER_DEFAULTS.gateTimeoutMs,
    maxReplays: input.maxReplays ?? TETHER_DEFAULTS.maxReplays,
    maxSessionsPerUser: input.maxSessionsPerUser ?? TETHER_DEFAULTS.maxSessionsPerUser,
    userContextTtlMs: input.userContextTtlMs ?? TETHER_DEFAULTS.userContextTtlMs,
    maxUserContextBytes: input.maxUserContextBytes ?? TETHER_DEFAULTS.maxUserContextBytes,
    csrf,
    generateId: input.generateId,
    codec: input.codec ?? jsonCodec,
    userAgentChange: input.userAgentChange ?? 'report',
    addressChange: input.addressChange ?? 'off',
    addressPrefix: Object.freeze({ ipv4: input.addressPrefix?.ipv4 ?? 24, ipv6: input.addressPrefix?.ipv6 ?? 48 }),
    newSessions: input.newSessions && ((input.newSessions.perAddress ?? 0) > 0 || (input.newSessions.total ?? 0) > 0 || (input.newSessions.maxActive ?? 0) > 0)
      ? Object.freeze({
        perAddress: input.newSessions.perAddress ?? 0, total: input.newSessions.total ?? 0, windowMs: input.newSessions.windowMs ?? 60_000,
        maxActive: input.newSessions.maxActive ?? 0, recountMs: input.newSessions.recountMs ?? 5_000, limiter: input.newSessions.limiter,
      })
      : null,
    clearSiteData: clearSiteDataOf(input.clearSiteData),
    clock: input.clock ?? input.store?.clock ?? systemClock,
  });
}

/** The renewal timeout: both figures checked, the grace within what S26 allows and shorter than the interval. */
function renewalOf(input: RenewalOptions | false | undefined): Readonly<Required<RenewalOptions>> | null {
  if (input === undefined || input === false) return null;
  checkOptions('Tether', input, { intervalMs: 'positiveInteger', graceMs: 'nonNegativeInteger' }, 'options.renewal');
  if (input.intervalMs === undefined) throw new OptionsInvalidError('Tether options.renewal.intervalMs is required: how old an ID may get before it is replaced');
  const graceMs = input.graceMs ?? Math.min(TETHER_DEFAULTS.renewalGraceMs, Math.floor(input.intervalMs / 2));
  if (graceMs > TETHER_DEFAULTS.maxRenewalGraceMs) {
    throw new OptionsInvalidError(`Tether options.renewal.graceMs (${graceMs}) is over ${TETHER_DEFAULTS.maxRenewalGraceMs}: a replaced ID must stop naming its session within a minute`);
  }
  if (graceMs >= input.intervalMs) {
    throw new OptionsInvalidError(`Tether options.renewal.graceMs (${graceMs}) must be shorter than renewal.intervalMs (${input.intervalMs}): an ID would be replaced again before the one it replaced died`);
  }
  return Object.freeze({ intervalMs: input.intervalMs, graceMs });
}

/**
 * The timeouts of a remembered session. Remembering never shortens a session: each is at least the
 * engine's own. The default idle timeout is cut to the absolute one given, where that is shorter.
 */
function rememberLifetime(input: TetherOptions, idleTimeoutMs: number, absoluteTimeoutMs: number): Readonly<Lifetime> {
  const r = input.remember ?? {};
  const absolute = r.absoluteTimeoutMs ?? Math.max(TETHER_DEFAULTS.rememberAbsoluteTimeoutMs, absoluteTimeoutMs);
  const idle = r.idleTimeoutMs ?? Math.max(idleTimeoutMs, Math.min(TETHER_DEFAULTS.rememberIdleTimeoutMs, absolute));
  if (idle < idleTimeoutMs) {
    throw new OptionsInvalidError(`Tether options.remember.idleTimeoutMs (${idle}) is shorter than options.idleTimeoutMs (${idleTimeoutMs}): remembering a session must not shorten it`);
  }
  if (absolute < absoluteTimeoutMs) {
    throw new OptionsInvalidError(`Tether options.remember.absoluteTimeoutMs (${absolute}) is shorter than options.absoluteTimeoutMs (${absoluteTimeoutMs}): remembering a session must not shorten it`);
  }
  return Object.freeze({ idleTimeoutMs: idle, absoluteTimeoutMs: absolute });
}

/** An origin a browser sends in its Origin header: http(s), scheme, host and port; anything else never matches. */
function normaliseOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new OptionsInvalidError(`Tether options.csrf.origins: "${origin}" is not an origin like https://shop.example`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OptionsInvalidError(`Tether options.csrf.origins: "${origin}" is not an http or https origin; the origin check compares only those (like https://shop.example)`);
  }
  return url.origin;
}

/** The CSRF header's name, lower-cased, if a request can carry it. */
function csrfHeader(name: string): string {
  if (!HTTP_TOKEN.test(name)) {
    throw new OptionsInvalidError(`Tether options.csrf.header must be a header name (letters, digits and !#$%&'*+-.^_\`|~), got ${JSON.stringify(name.slice(0, 64))}`);
  }
  return name.toLowerCase();
}
