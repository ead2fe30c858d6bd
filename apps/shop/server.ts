/**
 * Builds the shop: a Fastify app with the Tether plugin, the shop's routes, one error shape for every
 * failure, and the headers the contract promises. `buildShop` is what tests use in-process;
 * `startShop` also listens and is what main.ts and (later) each cluster worker call.
 * @module
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';
import type { Socket } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import { createTether, encryptedCodec, isTetherError } from 'tether';
import type { Tether } from 'tether';
import { tetherPlugin } from 'tether/fastify';
import { registerFlowMetrics, registerTetherMetrics, instrumentStore } from 'tether/observability';
import { isClusterWorker, shareWorkerMetrics, sharedLimiter } from 'tether/cluster';
import type { SharedLimiter } from 'tether/cluster';
import { sessionFlows } from 'tether/flow';
import { openSessionStore, SHOP_DEFAULTS } from './config.js';
import type { ShopConfig } from './config.js';
import { openShopDb } from './db/index.js';
import type { ShopDb } from './db/index.js';
import { checkoutFlow, guestCheckoutFlow } from './lib/checkout.js';
import { ActiveSessions, isForgetMessage } from './lib/active-sessions.js';
import type { ForgetMessage } from './lib/active-sessions.js';
import { ShopRateLimitedError } from './lib/errors.js';
import { attachLive } from './lib/live.js';
import { LoginFailures } from './lib/login-failures.js';
import { clientOf } from './context.js';
import type { ShopContext, ShopSession } from './context.js';
import { catalogRoutes } from './routes/catalog.js';
import { sessionRoutes } from './routes/session.js';
import { cartRoutes } from './routes/cart.js';
import { authRoutes } from './routes/auth.js';
import { accountRoutes } from './routes/account.js';
import { checkoutRoutes } from './routes/checkout.js';
import { adminRoutes } from './routes/admin.js';
import { systemRoutes } from './routes/system.js';
import { pageRoutes, sendNotFoundPage } from './routes/pages.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `createsSession`: the route may create a session, so new ones from one address are rate-limited. */
    shop?: { createsSession?: boolean };
  }
}

/** The largest request body the shop reads (body-parser's default): its JSON bodies are a few hundred bytes. */
export const BODY_LIMIT_BYTES = 100 * 1024;

export interface Shop {
  app: FastifyInstance;
  tether: Tether<ShopSession>;
  db: ShopDb;
  context: ShopContext;
  /** Stops accepting, lets in-flight requests finish, then closes the stores. Idempotent. */
  close(): Promise<void>;
  /** As a cluster worker's drain begins: closes the live channel's WebSockets (1001), which a drain cannot wait for. */
  drain(): Promise<void>;
}

/** Fastify's own failures, in the contract's codes. */
function mapFrameworkError(err: FastifyError): { status: number; code: string; message: string } {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: `the body is over the limit of ${BODY_LIMIT_BYTES} bytes` };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'INVALID_JSON', message: 'the body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'this route accepts application/json only' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'BAD_REQUEST', message: 'the body does not match its Content-Length' };
    // The router's own refusals (through frameworkErrors). Fastify's messages quote the URL; these do not.
    case 'FST_ERR_BAD_URL':
      return { status: 400, code: 'BAD_REQUEST', message: 'the URL path is not validly percent-encoded' };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 414, code: 'URI_TOO_LONG', message: 'a segment of the URL path is too long' };
    default:
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        return { status: err.statusCode, code: 'BAD_REQUEST', message: 'the request could not be understood' };
      }
      return { status: 500, code: 'INTERNAL_ERROR', message: 'internal server error' };
  }
}

/**
 * Headers every response carries, whichever way it is sent: the onSend hook for routed requests, and
 * directly for the answers given before any route (and so any hook) is chosen.
 */
function contractHeaders(config: ShopConfig): Array<[string, string]> {
  return [
    ['x-tether-node', config.nodeName],
    ['x-content-type-options', 'nosniff'],
    ['referrer-policy', 'same-origin'],
    ...(config.production ? [['strict-transport-security', 'max-age=31536000'] as [string, string]] : []),
  ];
}

/** Requests whose failure was logged with its error, so that their completion does not log it again. */
const LOGGED_FAILURES = new WeakSet<FastifyRequest>();

function logFailure(req: FastifyRequest, fields: Record<string, unknown>): void {
  LOGGED_FAILURES.add(req);
  req.log.error(fields, 'request failed');
}

/**
 * Fastify's `frameworkErrors`: the router refused the request before choosing a route (a URL that does
 * not decode, a path parameter over the router's maxParamLength). No hook runs for such a request, so no
 * session was opened and the contract's headers are set here.
 */
function answerFrameworkError(config: ShopConfig): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  return (err, req, reply) => {
    const mapped = mapFrameworkError(err);
    if (mapped.status >= 500) logFailure(req, { err, method: req.method });
    for (const [name, value] of contractHeaders(config)) reply.header(name, value);
    reply.code(mapped.status).header('cache-control', 'no-store')
      .send({ error: { code: mapped.code, message: mapped.message } });
  };
}

/** What node:http's parser refusals are answered with, by the parser's error code. */
function mapClientError(code: string): { status: number; code: string; message: string } {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' };
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'HEADERS_TOO_LARGE', message: 'the request head is over the size limit' };
    default:
      return { status: 400, code: 'BAD_REQUEST', message: 'the request is not valid HTTP' };
  }
}

/**
 * Fastify's `clientErrorHandler`: node:http could not parse a request (a head over the size limit, a
 * broken Content-Length or chunk, a control character in a header, a request line that is not HTTP) or
 * a slow client passed a deadline. There is no request to answer through Fastify, so a minimal response
 * in the contract's shape is written to the socket, which is then destroyed: after a parse error the
 * rest of the stream cannot be trusted. The error's rawPacket holds the request's bytes (its cookie
 * too), so only the code is logged, at trace, as Fastify does; a client's mistake is not a server error.
 */
function answerClientError(config: ShopConfig): (this: FastifyInstance, err: ConnectionError, socket: Socket) => void {
  return function (err, socket) {
    // A connection reset by the client, or already closed, has no one left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    this.log.trace({ code: err.code }, 'client error');
    // As node:http does by default: no answer when a response on this connection has sent its head
    // already, since a second status line in the middle of it would corrupt what the client reads.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const mapped = mapClientError(err.code);
      const body = JSON.stringify({ error: { code: mapped.code, message: mapped.message } });
      const headers = [
        ['content-type', 'application/json; charset=utf-8'], ['content-length', String(Buffer.byteLength(body))],
        ['cache-control', 'no-store'], ...contractHeaders(config), ['connection', 'close'],
      ];
      socket.write(`HTTP/1.1 ${mapped.status} ${STATUS_CODES[mapped.status]}\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n${body}`);
    }
    socket.destroy();
  };
}

function installErrorHandling(app: FastifyInstance, tether: Tether<ShopSession>): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    let status: number;
    let body: { error: { code: string; message: string; reason?: string } };
    if (isTetherError(err)) {
      status = err.status;
      body = { error: { code: err.code, message: err.message } };
      if (err instanceof ShopRateLimitedError) body.error.reason = err.reason;
    } else {
      const mapped = mapFrameworkError(err);
      status = mapped.status;
      body = { error: { code: mapped.code, message: mapped.message } };
    }
    if (status >= 500) logFailure(req, { err, method: req.method, route: req.routeOptions.url ?? null });
    // When to try again, where the error says: a limit's window, a second for a store outage.
    const wait = isTetherError(err) ? err.retryAfterSec : undefined;
    if (wait !== undefined) reply.header('retry-after', String(wait));
    // A request that failed changes nothing: whatever the handler did to the session is not written.
    if (req.session) tether.abandon(req.session);
    return reply.code(status).header('cache-control', 'no-store').send(body);
  });
}

function installNotFound(app: FastifyInstance, page: Parameters<typeof sendNotFoundPage>[2]): void {
  // A path that names nothing needs no session: with none opened, a store outage does not turn every
  // mistyped URL into 503. Fastify takes the not-found route's config as a route's, though its types
  // list only the hooks.
  const options = { config: { tether: { session: false } } } as Parameters<FastifyInstance['setNotFoundHandler']>[0];
  app.setNotFoundHandler(options, (req, reply) => {
    if (sendNotFoundPage(req, reply, page)) return reply;
    const path = req.url.split('?')[0]!.slice(0, 200);
    return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } });
  });
}

function installHeaders(app: FastifyInstance, config: ShopConfig): void {
  app.addHook('onSend', async (req, reply, payload) => {
    for (const [name, value] of contractHeaders(config)) reply.header(name, value);
    // Anything under /api may carry session data, so no cache may keep it; pages set their own policy
    // (and the Tether plugin, running after this hook, makes any response that sets the cookie no-store).
    if (req.url.startsWith('/api/') || !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
}

/**
 * ID guessing (SECURITY.md S34): forged session cookies, per address, over requests and live-channel
 * handshakes alike. A guess cannot carry a valid signature; a signed cookie that names no session is a
 * real one whose session ended, was replaced by a login, or timed out long ago, and a returning user is
 * not throttled for it.
 */
function forgedCookieLimiter(ctx: ShopContext): SharedLimiter {
  return sharedLimiter('shop:rejected-cookies', ctx.config.rejectedCookiesPerMinute, 60_000, { store: ctx.tether.store });
}

function installRateLimit(app: FastifyInstance, ctx: ShopContext, rejected: SharedLimiter): void {
  // Counted once for every machine when the session store is shared (Redis, PostgreSQL, tiered over
  // either: the counts live there), else once for the machine's cluster (the primary keeps the count),
  // never once per worker.
  const { store } = ctx.tether;
  const limiter = sharedLimiter('shop:new-sessions', ctx.config.newSessionsPerMinute, 60_000, { store });
  // And for all addresses together (SECURITY.md S47): a flood from many addresses cannot fill the store
  // faster than this; active sessions stay under about this rate times the idle timeout.
  const total = sharedLimiter('shop:new-sessions-total', ctx.config.newSessionsPerMinuteTotal, 60_000, { store });
  // Runs after the Tether plugin's onRequest, so the session is loaded: only a request that would create
  // one is counted; regenerating an existing session (login) never is.
  app.addHook('onRequest', async (req) => {
    if (req.session?.rejectedCookie === 'forged' && !(await rejected.take(clientOf(req.ip)))) {
      ctx.counters.rateLimited++;
      throw new ShopRateLimitedError('rejected_cookies', 'too many requests with an invalid session cookie from this address; slow down');
    }
    if (!req.routeOptions.config?.shop?.createsSession || !req.session?.isNew) return;
    if (!(await limiter.take(clientOf(req.ip)))) {
      ctx.counters.rateLimited++;
      throw new ShopRateLimitedError('new_sessions');
    }
    if (!(await total.take('*'))) {
      ctx.counters.rateLimited++;
      throw new ShopRateLimitedError('new_sessions', 'too many new sessions from all addresses right now; try again in a minute');
    }
  });
}

/**
 * Every /api answer to a signed-in session says how long the session has left after it, in ms
 * (`X-Session-Expires-In`): the page warns from it before the idle timeout (SHOP_IDLE_WARNING, WCAG
 * 2.2.1). Taken once the commit has stored the request's changes (`afterCommit`), so a touch or a write
 * the request made counts; relative, so the browser's clock need not agree with the server's.
 */
function installDeadlineHeader(app: FastifyInstance, ctx: ShopContext): void {
  if (ctx.config.idleWarningSec === 0) return;
  const clock = ctx.tether.options.clock;
  app.addHook('preHandler', (req, reply, done) => {
    const s = req.session;
    if (s && req.url.startsWith('/api/')) {
      s.afterCommit(() => {
        const at = s.userId === null ? null : s.expiresAt;
        if (at !== null) reply.header('x-session-expires-in', String(Math.max(0, at - clock.now())));
      });
    }
    done();
  });
}

/** How many sessions ended on purpose the shop remembers, to tell a replayed cookie of one (S33). */
const ENDED_SESSIONS_KEPT = 10_000;

function installActivity(app: FastifyInstance, ctx: ShopContext): void {
  app.addHook('onResponse', async (req) => {
    const s = req.session;
    if (s && !s.destroyed && s.handle !== null) ctx.active.seen(s.handle, s.userId, s.remembered);
  });
  // In a cluster, a session may end in another worker than one that counted it: each worker tells the
  // others (through the primary, main.ts) which sessions ended in it, and forgets those they report.
  const send = isClusterWorker() && process.send ? process.send.bind(process) : null;
  const tell = (msg: ForgetMessage): void => void send?.(msg, undefined, {}, () => { /* primary gone: nothing to tell */ });
  if (send) {
    const heard = (msg: unknown): void => {
      if (!isForgetMessage(msg)) return;
      if (msg.handle !== undefined) ctx.active.ended(msg.handle);
      else ctx.active.forgetUser(msg.userId!);
    };
    process.on('message', heard);
    app.addHook('onClose', async () => void process.off('message', heard));
  }
  const forget = (handle: string): void => {
    ctx.active.ended(handle);
    tell({ type: 'shop:active-forget', handle });
  };
  // '*': every session of the user at once (destroyUserSessions); one that was spared is seen again as it answers.
  // Sessions ended on purpose lately, by handle, with why: a cookie of one presented again is logged as
  // a warning (S33: the reuse of an ended session ID). Bounded; the oldest are forgotten first.
  // By the handle of the ID a session ended under too (idHandle, for one whose ID renewal replaced):
  // a cookie presented again names that ID, and the log names the session as the account page did.
  const ended = new Map<string, { why: string; handle: string }>();
  ctx.tether.events.on('destroyed', (m: { handle: string; idHandle?: string; userId: string | null; reason?: string }) => {
    if (m.handle === '*') {
      if (m.userId !== null) {
        ctx.active.forgetUser(m.userId);
        tell({ type: 'shop:active-forget', userId: m.userId });
      }
    } else {
      forget(m.handle);
      const entry = { why: m.reason ?? 'destroyed', handle: m.handle };
      for (const h of m.idHandle === undefined ? [m.handle] : [m.handle, m.idHandle]) ended.set(h, entry);
      while (ended.size > ENDED_SESSIONS_KEPT) ended.delete(ended.keys().next().value!);
    }
  });
  // A cookie of an ended session: after a logout or a session ended for the user, someone may be
  // replaying a copy of it; after a timeout or a login (the old cookie of a request that raced it), a
  // browser is simply behind. Logged by handle (the one the ending reported), never by ID.
  ctx.tether.events.on('reused', (m: { handle: string; userId: string | null }) => {
    const entry = ended.get(m.handle);
    const why = entry?.why;
    const fields = { event: 'security.session_reused', session: entry?.handle ?? m.handle, user: m.userId, ended: why ?? null };
    if (why !== undefined) app.log.warn(fields, `the cookie of a session ended (${why}) was presented again`);
    else app.log.debug(fields, 'the cookie of a session that no longer exists was presented');
  });
  // Not told to the others: a session that timed out was idle that long, so they stop counting it
  // anyway (and a sweep reports its sessions in bulk).
  ctx.tether.events.on('expired', (m: { handle: string }) => ctx.active.forget(m.handle));
  ctx.tether.events.on('regenerated', (m: { previousHandle?: string }) => {
    if (m.previousHandle) forget(m.previousHandle);
  });
  // S33: a session presented by another browser, or from another network (TETHER_ADDRESS_CHANGE), is
  // logged by its handle (a one-way hash), never its ID.
  ctx.tether.events.on('anomaly', (m: { handle: string; userId: string | null; reason?: string }) => {
    app.log.warn({ event: 'security.session_anomaly', session: m.handle, user: m.userId, reason: m.reason },
      m.reason === 'address' ? 'a session was presented from another network than the one it was last seen from' : 'a session was presented by another browser than the one it was last seen in');
  });
}

/**
 * Fastify's own per-request lines, replaced: one record per request at `debug` when it completes
 * (method, route, status, time, the session by its handle), none when it starts or finds no route.
 * The route is the pattern (`/api/admin/users/:username`), not the path, which holds what the
 * parameters name; a request that matched no route has none (null), since its path can hold a
 * username too (a trailing slash, a mistyped sub-route).
 * Headers are not logged at all, so no cookie, CSRF token or credential can reach the log.
 */
class ShopLogController extends LogController {
  override incomingRequest(): void {}

  /** Fastify's line names the URL with its query; the `request` record says route null. */
  override routeNotFound(): void {}

  override requestCompleted(error: Error | null, req: FastifyRequest, reply: FastifyReply): void {
    const fields = {
      method: req.method, route: req.routeOptions.url ?? null, status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10, session: req.session?.handle ?? null,
    };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    // A 5xx no error handler saw: tether/fastify answers a session it could not load or commit (the
    // store down or slow, 503 STORE_UNAVAILABLE) itself, and a store outage would otherwise log nothing.
    else if (reply.statusCode >= 500 && !LOGGED_FAILURES.has(req)) reply.log.error(fields, 'request failed');
    else reply.log.debug(fields, 'request');
  }
}

function shopMetrics(registry: Registry, ctx: ShopContext): void {
  new Gauge({
    name: 'shop_active_sessions', help: 'Sessions this process served within their idle timeout (remembered ones within theirs).', registers: [registry],
    collect() {
      this.set(ctx.active.count());
    },
  });
  for (const [name, key, help] of [
    ['shop_orders_placed_total', 'ordersPlaced', 'Orders placed by this process.'],
    ['shop_new_sessions_rate_limited_total', 'rateLimited', 'Requests refused because their address made too many new sessions or sent too many invalid session cookies.'],
  ] as const) {
    new Counter({
      name, help, registers: [registry],
      collect() {
        this.reset();
        if (ctx.counters[key] > 0) this.inc(ctx.counters[key]);
      },
    });
  }
  new Counter({
    name: 'shop_auth_events_total', help: 'Audit events by kind (logins, failed and throttled password checks, account changes).',
    labelNames: ['event'], registers: [registry],
    collect() {
      this.reset();
      for (const [event, n] of ctx.counters.auth) this.inc({ event }, n);
    },
  });
}

/** Upper bound of the interval at which node:http looks for connections past their head or request deadline. */
const MAX_CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/**
 * The node:http deadlines, in milliseconds, from the shop's settings. Node checks the head and request
 * deadlines only every connectionsCheckingInterval, so a late request is answered within that much after
 * its deadline.
 */
export function slowClientDeadlines(config: Pick<ShopConfig, 'headersTimeoutSec' | 'requestTimeoutSec'>): {
  headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number;
} {
  const headersTimeout = config.headersTimeoutSec * 1000;
  return {
    headersTimeout,
    requestTimeout: config.requestTimeoutSec * 1000,
    keepAliveTimeout: SHOP_DEFAULTS.keepAliveTimeoutSec * 1000,
    connectionsCheckingInterval: Math.min(MAX_CONNECTIONS_CHECKING_INTERVAL_MS, headersTimeout),
  };
}

export async function buildShop(config: ShopConfig): Promise<Shop> {
  const registry = new Registry();
  registry.setDefaultLabels({ node: config.nodeName });
  collectDefaultMetrics({ register: registry });
  // Under the cluster, a scrape of any worker answers for all of them (series apart by `node`).
  if (isClusterWorker()) shareWorkerMetrics(registry);
  const store = instrumentStore(await openSessionStore(config), registry);
  const tether = createTether<ShopSession>({
    store,
    secrets: config.secrets,
    production: config.production,
    idleTimeoutMs: config.idleTimeoutSec * 1000,
    absoluteTimeoutMs: config.absoluteTimeoutSec * 1000,
    remember: { idleTimeoutMs: config.rememberIdleTimeoutSec * 1000, absoluteTimeoutMs: config.rememberAbsoluteTimeoutSec * 1000 },
    maxSessionsPerUser: config.maxSessionsPerUser,
    // OWASP's renewal timeout: a stolen ID works for at most the interval, even while its owner stays active.
    renewal: config.renewalIntervalSec === 0 ? false : { intervalMs: config.renewalIntervalSec * 1000, graceMs: config.renewalGraceSec * 1000 },
    addressChange: config.addressChange,
    // The per-address and total rates are the shop's own hooks (installRateLimit), checked before a route runs.
    newSessions: { maxActive: config.maxSessions },
    // Every unsafe request must name its origin (browsers send Origin on every POST, PUT, PATCH, DELETE).
    csrf: { requireOrigin: true, ...(config.publicOrigin ? { origins: [config.publicOrigin] } : {}) },
    // An answer that ends its session (logout, account deletion) tells the browser to drop the site's
    // cookies too, whatever path or name they were set under.
    clearSiteData: ['cookies'],
    // TETHER_DATA_KEY: carts, preferences and checkout details encrypted in the session store.
    ...(config.dataKeys.length > 0 ? { codec: encryptedCodec({ keys: config.dataKeys }) } : {}),
  });
  let db: ShopDb | undefined;
  try {
    db = await openShopDb(config.databaseUrl, {
      adminPassword: config.adminPassword, log: config.log,
      // SHOP_ADMIN_PASSWORD replacing the admin's password ends the sessions signed in with the old one,
      // as a password change does: an operator resets it because it leaked.
      endSessions: (userId) => tether.destroyUserSessions(userId),
    });
  } catch (err) {
    await tether.close();
    throw err;
  }
  registerTetherMetrics(tether, registry);
  // The checkout funnel on /metrics; the flow channels are the process's, so unsubscribed on close.
  const stopFlowMetrics = registerFlowMetrics(registry);
  const products = await db.listProducts();
  const counters = { ordersPlaced: 0, rateLimited: 0, auth: new Map<string, number>() };
  const context: ShopContext = {
    config, tether, db, products,
    catalog: new Map(products.map((p) => [p.id, p])),
    checkout: checkoutFlow.using(tether.users),
    guestCheckout: guestCheckoutFlow.using(sessionFlows),
    active: new ActiveSessions(tether.options.idleTimeoutMs, tether.options.remember.idleTimeoutMs),
    counters,
    // Counted once for the tier on a shared store, as the other per-client limits are.
    loginFailures: new LoginFailures(config, sharedLimiter('shop:password-checks', config.passwordChecksPerMinute, 60_000, { store: tether.store })),
  };
  shopMetrics(registry, context);

  const deadlines = slowClientDeadlines(config);
  const app = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    // JSON lines (pino) through config.log: audit events, security events and errors at info and above,
    // one line per request at debug. Records name sessions by handle and users by ID, nothing else.
    logger: {
      level: config.logLevel,
      base: { node: config.nodeName, pid: process.pid },
      // The same shape as the cluster primary's lines: the level by name, the time in ISO 8601.
      formatters: { level: (label: string) => ({ level: label }) },
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      // Fastify's own lines that carry the request (its fallback error handler's) would give its URL
      // with the path parameters and the query: the route instead, as in the `request` record.
      serializers: { req: (req: FastifyRequest) => ({ method: req.method, route: req.routeOptions?.url ?? null }) },
      stream: { write: (line: string) => config.log(line.trimEnd()) },
    },
    logController: new ShopLogController(),
    // Bounds against slow clients (SECURITY S51, S52): a request whose head or whole is late is answered
    // 408 and its connection closed. Fastify sets the server's requestTimeout and keepAliveTimeout after
    // node:http's createServer, which takes `http`; requestTimeout is also given there because createServer
    // checks headersTimeout against it.
    requestTimeout: deadlines.requestTimeout,
    keepAliveTimeout: deadlines.keepAliveTimeout,
    http: {
      headersTimeout: deadlines.headersTimeout,
      requestTimeout: deadlines.requestTimeout,
      connectionsCheckingInterval: deadlines.connectionsCheckingInterval,
    },
    return503OnClosing: true,
    // Requests refused before any route runs are answered in the contract's shape too, not Fastify's:
    // the router's refusals here, node:http's (a request it cannot parse) below.
    frameworkErrors: answerFrameworkError(config),
    clientErrorHandler: answerClientError(config),
    // Behind a proxy (SHOP_TRUST_PROXY), req.ip is the client from X-Forwarded-For, so limits stay per client.
    trustProxy: config.trustProxy === false ? false : config.trustProxy,
  });
  // JSON only: the text/plain parser would let CORS-simple requests reach the handlers.
  app.removeContentTypeParser('text/plain');
  // An empty body under a JSON Content-Type is no body, as body-parser takes it: a client that sets the
  // header on every call may send a DELETE or a logout without one. Fastify's own parser, with its
  // refusal of prototype poisoning, reads every other body; a route that needs one says what it lacks.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body: string, done) => {
    if (body === '') done(null, undefined);
    else void parseJson(req, body, done);
  });
  installErrorHandling(app, tether);
  installHeaders(app, config);
  await app.register(tetherPlugin, { tether: tether as unknown as Tether<object> });
  const forged = forgedCookieLimiter(context);
  installRateLimit(app, context, forged);
  installActivity(app, context);
  installDeadlineHeader(app, context);

  systemRoutes(app, context, registry);
  catalogRoutes(app, context);
  sessionRoutes(app, context);
  cartRoutes(app, context);
  authRoutes(app, context);
  accountRoutes(app, context);
  checkoutRoutes(app, context);
  adminRoutes(app, context);
  installNotFound(app, pageRoutes(app).notFoundPage);

  const trusted = config.trustProxy === false ? null : proxyAddr.compile(config.trustProxy);
  const clientAddress = (req: IncomingMessage): string => (trusted ? proxyAddr(req, trusted) : req.socket.remoteAddress ?? '');
  // The live channel (a WebSocket per signed-in page) shares the server; it is closed first on close,
  // since an open WebSocket would keep the server from closing.
  let drainLive = (): Promise<void> => Promise.resolve();
  if (config.liveMaxSockets > 0) {
    const live = attachLive(app.server, tether, {
      maxSockets: config.liveMaxSockets,
      checkIntervalMs: config.liveCheckIntervalSec * 1000,
      heartbeatMs: 30_000,
      headers: contractHeaders(config),
      warn: (fields, message) => app.log.warn(fields, message),
      forgedAllowed: async (req) => {
        // The client's address as Fastify gives a request's (req.ip): behind SHOP_TRUST_PROXY, from X-Forwarded-For.
        if (await forged.take(clientOf(clientAddress(req)))) return true;
        context.counters.rateLimited++;
        return false;
      },
    });
    app.addHook('preClose', async () => live.close());
    drainLive = () => live.close();
  }

  let closing: Promise<void> | undefined;
  app.addHook('onClose', async () => {
    stopFlowMetrics();
    await Promise.allSettled([tether.close(), db.close()]);
  });
  return {
    app, tether, db, context,
    close: () => (closing ??= app.close().then(() => undefined)),
    drain: () => drainLive(),
  };
}

/** Builds the shop and listens on the configured host and port (0: any free port). */
export async function startShop(config: ShopConfig): Promise<Shop & { url: string }> {
  const shop = await buildShop(config);
  try {
    await shop.app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await shop.close();
    throw err;
  }
  const address = shop.app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { ...shop, url: `http://${host}:${port}` };
}
