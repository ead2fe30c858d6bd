/**
 * The shop's configuration: read once from the environment, validated, with every error naming the
 * variable to fix. Also owns the development secret kept in the data directory.
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { secretProblem, TETHER_DEFAULTS } from 'tether';
import type { SessionStore } from 'tether';
import { createStore, parseStoreUrl } from 'tether/stores';
import { isClusterWorker, isNodeName } from 'tether/cluster';

export interface ShopConfig {
  port: number;
  host: string;
  /** Absolute path; created when missing. */
  dataDir: string;
  /** Session store URL (createStore): `sqlite:<file>`, `memory`, `redis://…`, `redis+sentinel://…`, `redis+cluster://…`, `postgres://…`. */
  storeUrl: string;
  /** The shop's own data: `sqlite:<file>` or `postgres://…`. */
  databaseUrl: string;
  /** First signs, all verify. */
  secrets: string[];
  /** Keys of encryptedCodec (first encrypts, all decrypt); empty: session data stored as JSON. */
  dataKeys: string[];
  /** True when no TETHER_SECRET was given and one was generated (development only). */
  secretGenerated: boolean;
  production: boolean;
  idleTimeoutSec: number;
  absoluteTimeoutSec: number;
  /** Timeouts of a session kept signed in ("Keep me signed in"), at least the ordinary ones. */
  rememberIdleTimeoutSec: number;
  /** Sessions one account may have at once; a login past it signs the oldest out (0: no limit). */
  maxSessionsPerUser: number;
  /** A session's ID is replaced once it is this old (0: never), the old one naming it renewalGraceSec more. */
  renewalIntervalSec: number;
  renewalGraceSec: number;
  rememberAbsoluteTimeoutSec: number;
  workers: number;
  newSessionsPerMinute: number;
  /** New sessions per minute from all addresses together: bounds the sessions a distributed flood can store. */
  newSessionsPerMinuteTotal: number;
  /** The most sessions the store may hold: past it a new one is refused 503 TOO_MANY_SESSIONS (0: no cap). */
  maxSessions: number;
  /** Requests per minute from one address whose session cookie is forged, before 429 (ID guessing). */
  rejectedCookiesPerMinute: number;
  /** Failed logins for one account in LOGIN_FAILURE_WINDOW_MS, after which its logins answer 429 (password guessing). */
  loginFailuresPerAccount: number;
  /** Failed logins from one address in LOGIN_FAILURE_WINDOW_MS, after which its logins answer 429 (credential stuffing). */
  loginFailuresPerAddress: number;
  /** Registrations from one address in REGISTRATION_WINDOW_MS, after which its registrations answer 429 (each costs a password hash). */
  registrationsPerHour: number;
  /**
   * Password checks (logins, password changes, step-ups, right or wrong) from one address in a minute,
   * after which they answer 429: each costs a scrypt hash (32 MiB), so right passwords in a loop are
   * as costly as wrong ones.
   */
  passwordChecksPerMinute: number;
  /** How long after a login ending other sessions needs no password again (ASVS 7.5.2); 0: always asked. */
  reauthWindowSec: number;
  /** Seconds before the idle timeout at which a signed-in page warns and offers to stay signed in (WCAG 2.2.1); 0: no warning. */
  idleWarningSec: number;
  /** Live-channel sockets (lib/live.ts) one process keeps open at most; 0 turns the channel off. */
  liveMaxSockets: number;
  /** Seconds between reads of a live socket's session, for an end handled by another process. */
  liveCheckIntervalSec: number;
  /** Seconds a client has to send a whole request head before 408 and close (slowloris, SECURITY.md S51). */
  headersTimeoutSec: number;
  /** Seconds a client has to send a whole request, head and body, before 408 and close; at least headersTimeoutSec. */
  requestTimeoutSec: number;
  /** The least severe log records written (pino levels); `silent` writes none. */
  logLevel: LogLevel;
  /** The engine's addressChange: what a session seen from another network does. */
  addressChange: 'off' | 'report' | 'end';
  /** Set only when SHOP_ADMIN_PASSWORD is. */
  adminPassword: string | undefined;
  /** The origin unsafe requests must come from; undefined: the origin of the request's Host. */
  publicOrigin: string | undefined;
  /** Names this process in `X-Tether-Node`, /healthz and metrics. */
  nodeName: string;
  /**
   * Which proxies' X-Forwarded-For to believe for the client address (rate limits): false (default,
   * the socket's address), or a list of proxy addresses/CIDRs, e.g. the HAProxy in front.
   */
  trustProxy: false | string[];
  /** Where log records (JSON lines) and one-time notices (generated passwords, warnings) go; stderr by default. */
  log: (line: string) => void;
}

/** Failed logins are counted over this window, per account and per address. */
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;

/** Registrations are counted over this window, per address. */
export const REGISTRATION_WINDOW_MS = 60 * 60_000;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const SHOP_DEFAULTS = {
  port: 3000,
  host: '127.0.0.1',
  dataDir: './data',
  idleTimeoutSec: 1800,
  absoluteTimeoutSec: 43_200,
  rememberIdleTimeoutSec: 14 * 86_400,
  rememberAbsoluteTimeoutSec: 30 * 86_400,
  maxSessionsPerUser: 20,
  renewalIntervalSec: 900,
  renewalGraceSec: 30,
  workers: 1,
  newSessionsPerMinute: 120,
  newSessionsPerMinuteTotal: 6_000,
  maxSessions: 1_000_000,
  rejectedCookiesPerMinute: 100,
  reauthWindowSec: 900,
  idleWarningSec: 120,
  loginFailuresPerAccount: 10,
  loginFailuresPerAddress: 100,
  registrationsPerHour: 20,
  passwordChecksPerMinute: 60,
  liveMaxSockets: 10_000,
  liveCheckIntervalSec: 300,
  headersTimeoutSec: 20,
  requestTimeoutSec: 120,
  /** Seconds an idle keep-alive connection stays open after a response (SECURITY.md S52); not a setting. */
  keepAliveTimeoutSec: 5,
  logLevel: 'info' as LogLevel,
  addressChange: 'report' as 'off' | 'report' | 'end',
} as const;

/** A configuration error: the message names the variable; main.ts prints it and exits non-zero. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** The node's name, sent in X-Tether-Node: printable ASCII (as runCluster takes it). */
function nodeNameOf(env: Env): string {
  const name = text(env, 'TETHER_NODE_NAME');
  if (name !== undefined && !isNodeName(name)) {
    throw new ConfigError('TETHER_NODE_NAME', 'must be printable ASCII: it goes out in the X-Tether-Node header');
  }
  return name ?? `${hostname()}:${process.pid}`;
}

function text(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function checkStoreUrl(name: string, url: string, allowed: readonly string[]): string {
  const scheme = url === 'memory' ? 'memory' : url.split(':')[0]!.toLowerCase();
  if (!allowed.includes(scheme)) throw new ConfigError(name, `unsupported URL "${scheme}:…"; use one of ${allowed.map((s) => (s === 'memory' ? s : `${s}:…`)).join(', ')}`);
  return url;
}

/** Whether a store URL names data kept inside one process (the memory store, an in-memory SQLite database). */
export function processLocal(url: string): boolean {
  let target: ReturnType<typeof parseStoreUrl>;
  try {
    target = parseStoreUrl(url);
  } catch {
    return false; // reported where the URL is checked
  }
  return target.kind === 'memory' || (target.kind === 'sqlite' && target.path === ':memory:');
}

function parseOrigin(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `"${raw}" is not an origin like https://shop.example`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(name, 'must be an http: or https: origin');
  return u.origin;
}

/**
 * The development secret: generated once and kept in `<dataDir>/secret` (mode 0600), so sessions
 * survive restarts. `wx` makes concurrent first starts (cluster workers) agree on one file.
 */
function developmentSecret(dataDir: string): { secret: string; created: boolean } {
  const file = join(dataDir, 'secret');
  const fresh = randomBytes(32).toString('base64url');
  try {
    writeFileSync(file, fresh + '\n', { flag: 'wx', mode: 0o600 });
    chmodSync(file, 0o600);
    return { secret: fresh, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const existing = readFileSync(file, 'utf8').trim();
  if (secretProblem(existing, false) !== null) {
    throw new ConfigError('TETHER_SECRET', `unset, and the generated secret in ${file} is damaged; delete the file or set TETHER_SECRET`);
  }
  return { secret: existing, created: false };
}

/** Reads and validates the environment; creates the data directory. Throws ConfigError. */
export function loadConfig(env: Env = process.env, log: (line: string) => void = (l) => console.error(l)): ShopConfig {
  const production = env.NODE_ENV === 'production';
  const port = integer(env, 'PORT', SHOP_DEFAULTS.port, 0, 65_535);
  const host = text(env, 'HOST') ?? SHOP_DEFAULTS.host;
  const dataDir = resolve(text(env, 'TETHER_DATA_DIR') ?? SHOP_DEFAULTS.dataDir);

  const rawSecrets = text(env, 'TETHER_SECRET');
  if (production && rawSecrets === undefined) {
    throw new ConfigError('TETHER_SECRET', `is required when NODE_ENV=production (comma-separated, each at least ${TETHER_DEFAULTS.minSecretLength} characters; e.g. from \`npx tether secret\`)`);
  }
  let secrets: string[] = [];
  if (rawSecrets !== undefined) {
    secrets = rawSecrets.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (secrets.length === 0) throw new ConfigError('TETHER_SECRET', 'holds no secret');
    const problem = secrets.map((s) => secretProblem(s, production)).find((p) => p !== null);
    if (problem) throw new ConfigError('TETHER_SECRET', problem);
  }

  // Session data encrypted at rest (encryptedCodec), under keys of its own.
  const rawDataKeys = text(env, 'TETHER_DATA_KEY');
  const dataKeys = rawDataKeys === undefined ? [] : rawDataKeys.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
  if (rawDataKeys !== undefined && dataKeys.length === 0) throw new ConfigError('TETHER_DATA_KEY', 'holds no key');
  const keyProblem = dataKeys.map((k) => secretProblem(k, true)).find((p) => p !== null);
  if (keyProblem) throw new ConfigError('TETHER_DATA_KEY', keyProblem);
  if (dataKeys.some((k) => secrets.includes(k))) throw new ConfigError('TETHER_DATA_KEY', 'must not repeat a signing secret of TETHER_SECRET');

  const idleTimeoutSec = integer(env, 'TETHER_IDLE_TIMEOUT', SHOP_DEFAULTS.idleTimeoutSec, 1, 31_536_000);
  const absoluteTimeoutSec = integer(env, 'TETHER_ABSOLUTE_TIMEOUT', SHOP_DEFAULTS.absoluteTimeoutSec, 1, 31_536_000);
  // Keeping a session signed in never shortens it: unset, each follows the ordinary one when that is longer.
  const rememberIdleTimeoutSec = integer(env, 'TETHER_REMEMBER_IDLE_TIMEOUT', Math.max(SHOP_DEFAULTS.rememberIdleTimeoutSec, idleTimeoutSec), 1, 31_536_000);
  const rememberAbsoluteTimeoutSec = integer(env, 'TETHER_REMEMBER_ABSOLUTE_TIMEOUT', Math.max(SHOP_DEFAULTS.rememberAbsoluteTimeoutSec, absoluteTimeoutSec), 1, 31_536_000);
  if (rememberIdleTimeoutSec < idleTimeoutSec) {
    throw new ConfigError('TETHER_REMEMBER_IDLE_TIMEOUT', `must be at least TETHER_IDLE_TIMEOUT (${idleTimeoutSec}), got ${rememberIdleTimeoutSec}`);
  }
  if (rememberAbsoluteTimeoutSec < absoluteTimeoutSec) {
    throw new ConfigError('TETHER_REMEMBER_ABSOLUTE_TIMEOUT', `must be at least TETHER_ABSOLUTE_TIMEOUT (${absoluteTimeoutSec}), got ${rememberAbsoluteTimeoutSec}`);
  }
  const maxSessionsPerUser = integer(env, 'TETHER_MAX_SESSIONS_PER_USER', SHOP_DEFAULTS.maxSessionsPerUser, 0, 100_000);
  const renewalIntervalSec = integer(env, 'TETHER_RENEWAL_INTERVAL', SHOP_DEFAULTS.renewalIntervalSec, 0, 31_536_000);
  const renewalGraceSec = integer(env, 'TETHER_RENEWAL_GRACE', Math.min(SHOP_DEFAULTS.renewalGraceSec, Math.floor(renewalIntervalSec / 2)), 0, 60);
  if (renewalIntervalSec > 0 && renewalGraceSec >= renewalIntervalSec) {
    throw new ConfigError('TETHER_RENEWAL_GRACE', `must be shorter than TETHER_RENEWAL_INTERVAL (${renewalIntervalSec}), got ${renewalGraceSec}`);
  }
  const workers = integer(env, 'TETHER_WORKERS', SHOP_DEFAULTS.workers, 1, 256);
  const newSessionsPerMinute = integer(env, 'SHOP_NEW_SESSIONS_PER_MINUTE', SHOP_DEFAULTS.newSessionsPerMinute, 1, 1_000_000);
  const newSessionsPerMinuteTotal = integer(env, 'SHOP_NEW_SESSIONS_PER_MINUTE_TOTAL', SHOP_DEFAULTS.newSessionsPerMinuteTotal, 1, 100_000_000);
  const maxSessions = integer(env, 'SHOP_MAX_SESSIONS', SHOP_DEFAULTS.maxSessions, 0, 1_000_000_000);
  const rejectedCookiesPerMinute = integer(env, 'SHOP_REJECTED_COOKIES_PER_MINUTE', SHOP_DEFAULTS.rejectedCookiesPerMinute, 1, 1_000_000);
  const reauthWindowSec = integer(env, 'SHOP_REAUTH_WINDOW', SHOP_DEFAULTS.reauthWindowSec, 0, 86_400);
  const idleWarningSec = integer(env, 'SHOP_IDLE_WARNING', SHOP_DEFAULTS.idleWarningSec, 0, 86_400);
  const loginFailuresPerAccount = integer(env, 'SHOP_LOGIN_FAILURES_PER_ACCOUNT', SHOP_DEFAULTS.loginFailuresPerAccount, 1, 1_000_000);
  const loginFailuresPerAddress = integer(env, 'SHOP_LOGIN_FAILURES_PER_ADDRESS', SHOP_DEFAULTS.loginFailuresPerAddress, 1, 1_000_000);
  const registrationsPerHour = integer(env, 'SHOP_REGISTRATIONS_PER_HOUR', SHOP_DEFAULTS.registrationsPerHour, 1, 1_000_000);
  const passwordChecksPerMinute = integer(env, 'SHOP_PASSWORD_CHECKS_PER_MINUTE', SHOP_DEFAULTS.passwordChecksPerMinute, 1, 1_000_000);
  const liveMaxSockets = integer(env, 'SHOP_LIVE_MAX_SOCKETS', SHOP_DEFAULTS.liveMaxSockets, 0, 1_000_000);
  const liveCheckIntervalSec = integer(env, 'SHOP_LIVE_CHECK_INTERVAL', SHOP_DEFAULTS.liveCheckIntervalSec, 1, 3_600);
  const headersTimeoutSec = integer(env, 'SHOP_HEADERS_TIMEOUT', SHOP_DEFAULTS.headersTimeoutSec, 1, 3_600);
  const requestTimeoutSec = integer(env, 'SHOP_REQUEST_TIMEOUT', SHOP_DEFAULTS.requestTimeoutSec, 1, 86_400);
  // Node refuses a head deadline later than the whole request's.
  if (requestTimeoutSec < headersTimeoutSec) {
    throw new ConfigError('SHOP_REQUEST_TIMEOUT', `must be at least SHOP_HEADERS_TIMEOUT (${headersTimeoutSec}), got ${requestTimeoutSec}`);
  }
  const logLevel = text(env, 'SHOP_LOG_LEVEL')?.toLowerCase() ?? SHOP_DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new ConfigError('SHOP_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const addressChange = text(env, 'TETHER_ADDRESS_CHANGE')?.toLowerCase() ?? SHOP_DEFAULTS.addressChange;
  if (addressChange !== 'off' && addressChange !== 'report' && addressChange !== 'end') {
    throw new ConfigError('TETHER_ADDRESS_CHANGE', `must be one of off, report, end, got "${addressChange}"`);
  }
  const adminPassword = env.SHOP_ADMIN_PASSWORD === undefined || env.SHOP_ADMIN_PASSWORD === '' ? undefined : env.SHOP_ADMIN_PASSWORD;
  if (adminPassword !== undefined && (adminPassword.length < 8 || adminPassword.length > 128)) {
    throw new ConfigError('SHOP_ADMIN_PASSWORD', 'must be 8 to 128 characters');
  }
  const rawOrigin = text(env, 'SHOP_PUBLIC_ORIGIN');
  const publicOrigin = rawOrigin === undefined ? undefined : parseOrigin('SHOP_PUBLIC_ORIGIN', rawOrigin);

  // Validate URLs before touching the disk, so a typo fails without side effects.
  const storeUrlRaw = text(env, 'TETHER_STORE');
  const dbUrlRaw = text(env, 'SHOP_DATABASE_URL');
  if (storeUrlRaw !== undefined) {
    try {
      parseStoreUrl(storeUrlRaw);
    } catch (err) {
      throw new ConfigError('TETHER_STORE', (err as Error).message);
    }
  }
  if (dbUrlRaw !== undefined) checkStoreUrl('SHOP_DATABASE_URL', dbUrlRaw, ['sqlite', 'postgres', 'postgresql']);
  // Each worker would hold its own copy of a store kept in process memory: a user routed to another
  // worker (a new connection, a worker replaced) would find no session, or no account.
  for (const [name, url] of [['TETHER_STORE', storeUrlRaw], ['SHOP_DATABASE_URL', dbUrlRaw]] as const) {
    if (url !== undefined && workers > 1 && processLocal(url)) {
      throw new ConfigError('TETHER_WORKERS', `${workers} workers cannot share ${name}=${url}, which lives inside each process; use TETHER_WORKERS=1 or a shared store (sqlite:PATH, redis://…, postgres://…)`);
    }
  }

  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError('TETHER_DATA_DIR', `cannot create ${dataDir}: ${(err as Error).message}`);
  }

  let secretGenerated = false;
  if (secrets.length === 0) {
    const dev = developmentSecret(dataDir);
    secrets = [dev.secret];
    secretGenerated = true;
    // Under the cluster the primary has said so already, and each worker would say it again.
    if (!isClusterWorker()) log(`warning: TETHER_SECRET is not set; ${dev.created ? 'generated a secret and saved it' : 'using the generated secret'} in ${join(dataDir, 'secret')} (development only: set TETHER_SECRET in production)`);
  }

  return {
    port,
    host,
    dataDir,
    storeUrl: storeUrlRaw ?? `sqlite:${join(dataDir, 'sessions.db')}`,
    databaseUrl: dbUrlRaw ?? `sqlite:${join(dataDir, 'shop.db')}`,
    secrets,
    dataKeys,
    secretGenerated,
    production,
    idleTimeoutSec,
    absoluteTimeoutSec,
    rememberIdleTimeoutSec,
    rememberAbsoluteTimeoutSec,
    maxSessionsPerUser,
    renewalIntervalSec,
    renewalGraceSec,
    workers,
    newSessionsPerMinute,
    newSessionsPerMinuteTotal,
    maxSessions,
    rejectedCookiesPerMinute,
    reauthWindowSec,
    idleWarningSec,
    loginFailuresPerAccount,
    loginFailuresPerAddress,
    registrationsPerHour,
    passwordChecksPerMinute,
    liveMaxSockets,
    liveCheckIntervalSec,
    headersTimeoutSec,
    requestTimeoutSec,
    logLevel: logLevel as LogLevel,
    addressChange,
    adminPassword,
    publicOrigin,
    nodeName: nodeNameOf(env),
    trustProxy: trustedProxies(text(env, 'SHOP_TRUST_PROXY')),
    log,
  };
}

/** SHOP_TRUST_PROXY: comma-separated proxy addresses or CIDRs whose X-Forwarded-For is believed. */
function trustedProxies(raw: string | undefined): false | string[] {
  if (raw === undefined) return false;
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.find((a) => !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(a));
  if (list.length === 0 || bad !== undefined) {
    throw new ConfigError('SHOP_TRUST_PROXY', `must be comma-separated proxy addresses or CIDRs (e.g. 127.0.0.1), got "${bad ?? raw}"`);
  }
  return list;
}

/** Opens the session store TETHER_STORE names (default: SQLite in the data dir). */
export async function openSessionStore(config: Pick<ShopConfig, 'storeUrl' | 'dataDir'>): Promise<SessionStore> {
  return createStore(config.storeUrl, { dataDir: config.dataDir });
}
