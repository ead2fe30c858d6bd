/**
 * tether/fastify: a Fastify 5 plugin. `request.session` is the request's Tether session, committed
 * in `onSend`, before the reply goes out; a store failure turns the reply into a clean error (a stream
 * payload it replaces is destroyed, a web Response's body cancelled). A stream payload is sent after that
 * commit: changing the session while it is read throws SESSION_COMMITTED. A reply that sets the
 * session cookie is `Cache-Control: no-store`, whatever a web Response payload carries, and keeps the
 * Set-Cookie values set on `reply.raw`.
 * A hijacked reply (`reply.hijack()`) has no onSend: its `reply.raw` is held instead, and the session
 * is committed at its first write, as tether/node does; changes after that throw SESSION_COMMITTED.
 * With the engine's `csrf.forms`, a form post's token field is checked in a `preValidation` hook, once
 * the app's form parser (@fastify/formbody, @fastify/multipart with `attachFieldsToBody`) has run.
 * A route with `config: { tether: { session: 'optional' } }` is served while the store is down: its
 * handler runs with no session (`optionalSession(req)` gives null) and its answer sets and clears no
 * cookie; a commit the store cannot take lets the answer go out without its cookie (see FastifyContextConfig).
 * @module
 * @example
 * import Fastify from 'fastify';
 * import { createTether } from 'tether';
 * import { tetherPlugin } from 'tether/fastify';
 * const app = Fastify();
 * await app.register(tetherPlugin, { tether: createTether({ secrets: [process.env.TETHER_SECRET!] }) });
 * app.post('/visit', async (req) => {
 *   await req.session.update((d) => { d.visits = (Number(d.visits) || 0) + 1; });
 *   return { visits: req.session.data.visits };
 * });
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Tether } from '../../core/engine.js';
import { CsrfTokenInvalidError, OptionsInvalidError, isTetherError } from '../../core/errors.js';
import type { Session } from '../../core/session.js';
import type { RequestView } from '../../core/csrf.js';
import { ANSWER_HEADERS, CACHE_HEADERS, HeadersView, clearReasonPhrase, abandonOnEarlyClose, commitSession, errorResponse, isStoreUnavailable, mayRunWithoutSession, reopenAfterError } from '../shared/http.js';
import { holdResponse } from '../shared/hold.js';

/**
 * The shape of `request.session`'s data, for every route: extend it by declaration merging to type the
 * app's session (as @fastify/session's `Session` interface is extended). Keys not declared stay `unknown`.
 * @example
 * declare module 'tether/fastify' {
 *   interface TetherSessionData { cart?: string[]; theme?: 'light' | 'dark' }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TetherSessionData extends Record<string, unknown> {}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request's session; null on a route with `config: { tether: { session: false } }`, on one with
     * `session: 'optional'` while the store is down (read it there with `optionalSession(req)`, typed
     * so), and in the hooks (onSend, onResponse) of a request answered before its session opened
     * (`503 STORE_UNAVAILABLE`).
     */
    session: Session<TetherSessionData>;
  }
  interface FastifyContextConfig {
    /**
     * Per-route: `csrf: false` skips the CSRF checks; `write` overrides the gate decision; `session: false`
     * opens no session at all (static files, health checks): no store call, no cookie, `req.session` null.
     * `session: 'optional'`: while the store cannot answer (STORE_UNAVAILABLE), the handler runs with no
     * session (`optionalSession(req)` null) instead of the request being refused 503, and the answer
     * carries no session cookie, neither set nor cleared: the browser keeps the one it has. An unsafe
     * request whose CSRF checks apply is refused all the same (its token is in the session). A session
     * that opened but whose commit the store cannot take gives the handler's answer without its cookie;
     * the change is not stored, and the failure is counted as every store failure is (`storeErrors`,
     * `store_errors_total`). Any other error is answered as before. Another `session` value is refused
     * when the route is declared (OPTIONS_INVALID).
     */
    tether?: { csrf?: boolean; write?: boolean; session?: boolean | 'optional' };
  }
}

export interface FastifyAdapterOptions {
  tether: Tether<object>;
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean;
}

const NO_OPEN_OPTIONS = Object.freeze({});

/** The engine, on the Fastify instance the plugin was registered on (its children inherit it). */
const ENGINE = Symbol('tether.fastify.engine');
/** Raw responses of hijacked replies already held: a second `hijack()` must not hold (and commit) again. */
const HIJACKED = new WeakSet<object>();
/** Per Reply prototype given `hijackHeld`: the hijack it had before (its own, or the one it inherited). */
const FASTIFY_HIJACK = new WeakMap<object, (this: FastifyReply) => FastifyReply>();

/**
 * Stands in for `reply.hijack()` on the replies of the routes the plugin serves. A hijacked reply skips
 * onSend, where the session is committed: without this its changes would be dropped without a word, a
 * new session's cookie never sent, and a writer's gate kept until the response closes (for a long
 * stream, every other writer of the session would meet SESSION_BUSY). So `reply.raw` is held until its
 * first write, which commits the session and adds its cookies (src/adapters/shared/hold.ts).
 */
function hijackHeld(this: FastifyReply): FastifyReply {
  let owner = Object.getPrototypeOf(this) as object;
  while (!FASTIFY_HIJACK.has(owner)) owner = Object.getPrototypeOf(owner) as object;
  FASTIFY_HIJACK.get(owner)!.call(this);
  // Replies of another Fastify instance that shares the prototype: no session of ours, nothing to hold.
  const session = this.request.session;
  const tether = (this.server as unknown as Record<symbol, Tether<object> | undefined>)[ENGINE];
  const raw = this.raw;
  if (!session || tether === undefined || HIJACKED.has(raw)) return this;
  HIJACKED.add(raw);
  if (raw.headersSent) {
    // Written to before the hijack: no cookie can go out any more, so nothing may be stored.
    tether.abandon(session);
    return this;
  }
  holdResponse(raw, () => commitSession(tether, session, OPTIONAL.has(this.request)), undefined, session);
  return this;
}

/**
 * Puts `hijackHeld` on the reply's prototype, once: a property on every reply would cost every request,
 * and Fastify offers no hook for a hijack. The prototype may be Fastify's own Reply.prototype, shared
 * by every instance of that copy of Fastify; `hijackHeld` does only what Fastify's does for a reply
 * without a session of this plugin.
 */
function holdOnHijack(reply: FastifyReply): void {
  if (reply.hijack === hijackHeld) return;
  const proto = Object.getPrototypeOf(reply) as FastifyReply;
  // Kept to be called on each reply (`.call(this)` in hijackHeld), never detached from one.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  FASTIFY_HIJACK.set(proto, proto.hijack);
  Object.defineProperty(proto, 'hijack', { configurable: true, writable: true, value: hijackHeld });
}

/** Requests of routes whose session is optional (`session: 'optional'`) that opened one: its commit may fail quietly. */
const OPTIONAL = new WeakSet<FastifyRequest>();

/**
 * An open that failed: refused, or, on a route whose session is optional, when the store could not
 * answer and the request may run without a session, the handler runs without one (req.session null).
 * A function of the module, so that a request whose session opens at once makes no closure for it.
 */
function openFailed(tether: Tether<object>, req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void, csrf: boolean, err: unknown): void {
  if (OPTIONAL.has(req) && req.session === null && isStoreUnavailable(err) && mayRunWithoutSession(tether, req.method, csrf)) done();
  else refuse(tether, req, reply, err);
}

/**
 * Form posts (`csrf.forms`) whose token is still to be read from the body, parsed after onRequest: the
 * preValidation hook checks them. A set rather than a request decoration, which every request would pay for.
 */
const FORM_PENDING = new WeakSet<FastifyRequest>();

/**
 * Attaches the opened session to the request and runs the CSRF checks (which may throw). A client gone
 * before its session opened gets no session and its reply is hijacked, so Fastify runs no more of the
 * request (see abandonOnEarlyClose).
 */
function attach(tether: Tether<object>, req: FastifyRequest, reply: FastifyReply, view: RequestView, csrf: boolean, session: Session<object>): void {
  // Instead of an onRequestAbort hook, which would add a listener to every request.
  if (!abandonOnEarlyClose(tether, session, reply.raw)) {
    reply.hijack();
    return;
  }
  req.session = session;
  holdOnHijack(reply);
  if (csrf && tether.checkRequestHead(session, view)) FORM_PENDING.add(req);
}

/**
 * The fields to read a form's token from: Fastify's parsed body, whose form parser the app registers.
 * @fastify/multipart with `attachFieldsToBody: true` gives a field as `{ type: 'field', value }`.
 */
function formFields(body: unknown, field: string): object {
  if (typeof body !== 'object' || body === null) {
    throw new CsrfTokenInvalidError(`missing CSRF token: the form body was not parsed, so its ${field} field could not be read. Register a form body parser: `
      + '@fastify/formbody for application/x-www-form-urlencoded, @fastify/multipart with attachFieldsToBody for multipart/form-data');
  }
  const value = (body as Record<string, unknown>)[field];
  if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'field') {
    return { [field]: (value as { value?: unknown }).value };
  }
  return body;
}

/**
 * Answers the request with the error; the route handler does not run (`done` is not called). Sent as
 * JSON text: an object would go through the route's response schema and preSerialization hooks, and a
 * `4xx` schema without an `error` property would answer `{}`, the code lost.
 */
function refuse(tether: Tether<object>, req: FastifyRequest, reply: FastifyReply, err: unknown): void {
  if (req.session) tether.abandon(req.session);
  const { status, body, retryAfter } = errorResponse(err);
  // What an earlier hook set for the answer (a cookie, caching, a Location) is not the error's, as in sendError.
  clearAnswerHeaders(reply);
  if (retryAfter !== undefined) reply.header('retry-after', retryAfter);
  void reply.code(status).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(JSON.stringify(body));
}

/**
 * What a commit sends: its Set-Cookie values, and Clear-Site-Data when it ended the session; either
 * makes the reply no-store. Returns the payload to send: a web Response payload's own headers are
 * applied by Fastify after the onSend hooks, over the reply's, so those the session sets are set on
 * it too (see sessionResponse).
 */
function addCookies(reply: FastifyReply, payload: unknown, cookies: readonly string[], clearSiteData: string | null): unknown {
  if (cookies.length === 0 && clearSiteData === null) return payload;
  if (cookies.length > 0) {
    // Fastify writes the reply's headers over reply.raw's, so the session's Set-Cookie would replace
    // one set on reply.raw (by the app, or Express-style middleware). Moved onto the reply, the raw
    // values go out first; a Set-Cookie of the reply's own replaces them, as it does without a session.
    const raw = reply.raw.getHeader('set-cookie');
    if (raw !== undefined) {
      reply.raw.removeHeader('set-cookie');
      if (!reply.hasHeader('set-cookie')) reply.header('set-cookie', Array.isArray(raw) ? raw : [String(raw)]);
    }
    // The reply's second onSend (an error answered after a later hook failed) is given the same
    // cookies again by the commit: those its headers still hold are not sent twice.
    const had = reply.getHeader('set-cookie');
    reply.header('set-cookie', had === undefined ? cookies : cookies.filter((c) => !(Array.isArray(had) ? had : [String(had)]).includes(c)));
  }
  if (clearSiteData !== null) reply.header('clear-site-data', clearSiteData);
  reply.header('cache-control', 'no-store');
  return isWebResponse(payload) ? sessionResponse(payload, clearSiteData) : payload;
}

/** Whether the payload is a web Response, tested as Fastify tests it. */
function isWebResponse(payload: unknown): payload is Response {
  return typeof payload === 'object' && payload !== null && Object.prototype.toString.call(payload) === '[object Response]';
}

/**
 * The Response payload with the session's Cache-Control (and Clear-Site-Data) set on its own headers,
 * which Fastify copies onto the reply after the onSend hooks: its `Cache-Control: public` would
 * otherwise make a response that sets the session cookie cacheable. A Response whose headers are
 * immutable (one from fetch()) is rebuilt around the same body. Its Set-Cookie values stay: Fastify
 * appends them to the reply's. One that cannot be rebuilt (its body read or locked, the status 0 of
 * Response.error()) is left as it is: Fastify refuses to send it.
 */
function sessionResponse(payload: Response, clearSiteData: string | null): Response {
  const set = (headers: Headers): void => {
    headers.set('cache-control', 'no-store');
    if (clearSiteData !== null) headers.set('clear-site-data', clearSiteData);
  };
  try {
    set(payload.headers);
    return payload;
  } catch {
    // Immutable headers.
  }
  let rebuilt: Response;
  try {
    rebuilt = new Response(payload.body, payload);
  } catch {
    return payload;
  }
  set(rebuilt.headers);
  return rebuilt;
}

/**
 * Lets go of a payload the error replaces, which Fastify never sends, so never closes: a file stream
 * would keep its descriptor open, a stream of the app's would wait for a reader for ever. A node
 * stream is destroyed (closed or aborted when that is all it offers, as Fastify ends a stream payload
 * whose response closed); a web stream, or a web Response's body, is cancelled.
 */
function release(payload: unknown): void {
  if (typeof payload !== 'object' || payload === null) return;
  const body: unknown = isWebResponse(payload) ? payload.body : payload;
  if (typeof body !== 'object' || body === null) return;
  const stream = body as { pipe?: unknown; destroy?: () => void; close?: (cb: () => void) => void; abort?: () => void; getReader?: unknown; locked?: boolean; cancel?: () => Promise<void> };
  if (typeof stream.pipe === 'function') {
    if (typeof stream.destroy === 'function') stream.destroy();
    else if (typeof stream.close === 'function') stream.close(() => {});
    else if (typeof stream.abort === 'function') stream.abort();
  } else if (typeof stream.getReader === 'function' && typeof stream.cancel === 'function' && stream.locked !== true) {
    stream.cancel().catch(() => {});
  }
}

/**
 * The reply becomes the error: nothing the handler answered may go out unsaved, so the headers of its
 * answer go (its cookies, a Location, its payload's content headers: ANSWER_HEADERS), as `sendError`
 * does for node:http; those every response carries (security headers from hooks) stay. Returns the new
 * payload.
 */
function errorPayload(reply: FastifyReply, err: unknown): string {
  const { status, body, retryAfter } = errorResponse(err);
  clearAnswerHeaders(reply);
  reply.code(status).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store');
  if (retryAfter !== undefined) reply.header('retry-after', retryAfter);
  sessionCookiesOnly(reply);
  return JSON.stringify(body);
}

/** Requests whose error went to the error handlers (the onError hook): their answers are not cached. */
const FAILED = new WeakSet<FastifyRequest>();

/** Makes the reply no-store, without validators or freshness headers (CACHE_HEADERS). */
function uncacheableReply(reply: FastifyReply): void {
  for (const name of Object.keys(reply.getHeaders())) if (CACHE_HEADERS.has(name.toLowerCase())) reply.removeHeader(name);
  reply.header('cache-control', 'no-store');
}

/**
 * Removes the answer's own headers (ANSWER_HEADERS) from the reply, and a reason phrase set on its raw
 * response; the headers every response carries stay.
 */
function clearAnswerHeaders(reply: FastifyReply): void {
  clearReasonPhrase(reply.raw);
  // getHeaders() gives the reply's headers and those set on reply.raw; removeHeader removes both.
  for (const name of Object.keys(reply.getHeaders())) if (ANSWER_HEADERS.has(name.toLowerCase())) reply.removeHeader(name);
}

/** The description of the symbol under which @fastify/cookie keeps the cookies `reply.setCookie` set, until its onSend hook. */
const FASTIFY_COOKIE_PENDING = 'fastify.reply.setCookies';

/**
 * Drops the cookies the failed route set with @fastify/cookie's `reply.setCookie`, which the plugin keeps
 * aside in a Map of the reply's and adds in its own onSend hook, as clearAnswerHeaders drops those set
 * with `reply.header`; the error handler's own, set after this, still go out. The Map is found by its
 * symbol's description: under a version of @fastify/cookie that names it otherwise, they stay, as before.
 */
function dropPendingCookies(reply: FastifyReply): void {
  for (const key of Object.getOwnPropertySymbols(reply)) {
    if (key.description !== FASTIFY_COOKIE_PENDING) continue;
    const pending = (reply as unknown as Record<symbol, unknown>)[key];
    if (pending instanceof Map) pending.clear();
  }
}

/** Raw responses whose head is to carry no Set-Cookie but the session's (see sessionCookiesOnly). */
const ERROR_HEADS = new WeakSet<object>();

/**
 * Keeps every Set-Cookie but the session cookie's off an error answer's head. The handler's cookies
 * can come back after errorPayload removed them: @fastify/cookie keeps those of `reply.setCookie` aside
 * and adds them in its own onSend hook, which runs after this plugin's when registered after it (and
 * before it, on an error thrown by the handler). The head is written once every onSend hook has run,
 * by `writeHead` (at once, or at a stream's first write): the cookies are filtered there, once. What
 * the session sends stays: a forged cookie's expiry, or the cookie of a session committed before a
 * later hook failed.
 */
function sessionCookiesOnly(reply: FastifyReply): void {
  const raw = reply.raw;
  if (ERROR_HEADS.has(raw)) return;
  ERROR_HEADS.add(raw);
  const name = (reply.server as unknown as Record<symbol, Tether<object> | undefined>)[ENGINE]?.options.cookie.name;
  const keep = (values: unknown): string[] => (Array.isArray(values) ? values : [values]).map(String).filter((v) => name !== undefined && v.startsWith(`${name}=`));
  const own = Object.prototype.hasOwnProperty.call(raw, 'writeHead');
  // Put back and called on raw itself, never detached from it.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const writeHead = raw.writeHead;
  raw.writeHead = function (this: typeof raw, ...args: unknown[]) {
    if (own) raw.writeHead = writeHead;
    else Reflect.deleteProperty(raw, 'writeHead');
    const headers = args.find((a): a is Record<string, unknown> => typeof a === 'object' && a !== null && !Array.isArray(a));
    if (headers !== undefined) {
      for (const key of Object.keys(headers)) {
        if (key.toLowerCase() !== 'set-cookie') continue;
        const kept = keep(headers[key]);
        if (kept.length > 0) headers[key] = kept;
        else delete headers[key];
      }
    }
    const set = raw.getHeader('set-cookie');
    if (set !== undefined) {
      const kept = keep(set);
      if (kept.length > 0) raw.setHeader('set-cookie', kept);
      else raw.removeHeader('set-cookie');
    }
    return Reflect.apply(writeHead, this, args) as typeof raw;
  };
}

const plugin: FastifyPluginAsync<FastifyAdapterOptions> = async (app: FastifyInstance, opts) => {
  const tether = opts.tether;
  app.decorateRequest('session', null as unknown as Session<TetherSessionData>);
  // Whether a route whose session is optional has been asked yet: until then a commit asks no WeakSet.
  let optionalSeen = false;
  (app as unknown as Record<symbol, Tether<object>>)[ENGINE] = tether;

  // A misspelt `session` ('optinal') would make the route's session required without a word: refused
  // when the route is declared.
  app.addHook('onRoute', (route) => {
    const session = (route.config as { tether?: { session?: unknown } } | undefined)?.tether?.session;
    if (session !== undefined && session !== true && session !== false && session !== 'optional') {
      throw new OptionsInvalidError(`tether/fastify: the ${route.method.toString()} ${route.url} route's config.tether.session must be true, false or 'optional' (got ${typeof session === 'string' ? `'${session}'` : typeof session})`);
    }
  });

  // Callback-style hooks: a session the engine opens or commits at once (held in memory, nothing to
  // write) costs no promise and no closure; the others continue when theirs settles.
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const routeOpts = req.routeOptions.config?.tether;
    if (routeOpts?.session === false) {
      done();
      return;
    }
    const view = new HeadersView(req.method, req.headers, req);
    const csrf = (routeOpts?.csrf ?? opts.csrf ?? true) !== false;
    if (routeOpts?.session === 'optional') {
      OPTIONAL.add(req);
      optionalSeen = true;
    }
    let opened: Session<object> | Promise<Session<object>>;
    try {
      opened = tether.openNow(view, routeOpts?.write === undefined ? NO_OPEN_OPTIONS : { write: routeOpts.write });
      if (!(opened instanceof Promise)) attach(tether, req, reply, view, csrf, opened);
    } catch (err) {
      openFailed(tether, req, reply, done, csrf, err);
      return;
    }
    if (!(opened instanceof Promise)) {
      done();
      return;
    }
    opened.then((session) => {
      try {
        attach(tether, req, reply, view, csrf, session);
      } catch (err) {
        refuse(tether, req, reply, err);
        return;
      }
      done();
    }, (err: unknown) => openFailed(tether, req, reply, done, csrf, err));
  });

  // With forms on only: otherwise no request is ever pending, and a hook would cost every request.
  const csrfOptions = tether.options.csrf;
  if (csrfOptions !== false && csrfOptions.forms) {
    const field = csrfOptions.formField;
    // After Fastify has parsed the body, before validation and the handler.
    app.addHook('preValidation', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      if (!FORM_PENDING.has(req)) {
        done();
        return;
      }
      try {
        tether.checkRequest(req.session, new HeadersView(req.method, req.headers), formFields(req.body, field));
      } catch (err) {
        refuse(tether, req, reply, err);
        return;
      }
      FORM_PENDING.delete(req);
      done();
    });
  }

  app.addHook('onSend', (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void) => {
    // An error's answer, whichever handler made it, is not cached (see the onError hook).
    if (FAILED.has(req)) uncacheableReply(reply);
    const session = req.session;
    if (!session) {
      done(null, payload);
      return;
    }
    let cookies: readonly string[] | Promise<readonly string[]>;
    try {
      cookies = commitSession(tether, session, optionalSeen && OPTIONAL.has(req));
    } catch (err) {
      release(payload);
      done(null, errorPayload(reply, err));
      return;
    }
    if (!(cookies instanceof Promise)) {
      done(null, addCookies(reply, payload, cookies, session.clearSiteData));
      return;
    }
    cookies.then((c) => {
      done(null, addCookies(reply, payload, c, session.clearSiteData));
    }, (err: unknown) => {
      release(payload);
      done(null, errorPayload(reply, err));
    });
  });

  // A handler that threw wrote nothing: its half-done session changes are dropped, as in every adapter.
  // Runs before the error handler and the error reply's onSend. The error handler then gets the session
  // as it was before the request (opened again), for changes of its own, committed with its answer: a
  // flash message set before redirecting back to a form (@fastify/flash), as @fastify/session allows.
  // Without that, its first change would throw SESSION_COMMITTED and the answer become a 500.
  app.addHook('onError', (req: FastifyRequest, reply: FastifyReply, _err: Error, done: () => void) => {
    const session = req.session;
    if (!session) {
      done();
      return;
    }
    // Whichever error handler answers (this plugin's, the app's, Fastify's own), it answers over what the
    // failed route had set: its cookies, a Location, and how caches may keep its answer (a Cache-Control
    // of `public`, an ETag), which would make the error cacheable. Cleared here, as tether/node clears
    // them; the error's answer goes out no-store (onSend).
    if (!reply.raw.headersSent) {
      // The session cookie stays: a commit that came before a later hook failed stored what it names.
      const own = reply.getHeader('set-cookie');
      const sessionCookies = (own === undefined ? [] : Array.isArray(own) ? own : [String(own)]).filter((v) => v.startsWith(`${tether.options.cookie.name}=`));
      clearAnswerHeaders(reply);
      dropPendingCookies(reply);
      if (sessionCookies.length > 0) reply.header('set-cookie', sessionCookies);
      reply.header('cache-control', 'no-store');
    }
    FAILED.add(req);
    const routeOpts = req.routeOptions.config?.tether;
    // Its CSRF checks passed already. A form post whose token was never read (its body failed to
    // parse) may store nothing: its session is abandoned, not opened again.
    const again = reopenAfterError(tether, session, new HeadersView(req.method, req.headers, req),
      routeOpts?.write === undefined ? NO_OPEN_OPTIONS : { write: routeOpts.write },
      (s) => abandonOnEarlyClose(tether, s, reply.raw), !FORM_PENDING.has(req));
    const use = (s: Session<object> | null): void => {
      if (s !== null) req.session = s;
      done();
    };
    if (again instanceof Promise) void again.then(use);
    else use(again);
  });
};

// Skip encapsulation so the hooks apply to every route of the parent (what fastify-plugin does).
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

/** Whether reading what an error handler reads of `err` throws (a revoked Proxy, a getter that fails). */
function unreadable(err: unknown): boolean {
  try {
    const e = err as { status?: unknown; statusCode?: unknown; message?: unknown; code?: unknown } | null;
    void [e?.status, e?.statusCode, e?.message, e?.code, err instanceof Error];
    return false;
  } catch {
    return true;
  }
}

/**
 * For `app.setErrorHandler`: answers a TetherError a route or hook throws (a flow's
 * `FLOW_STEP_OUT_OF_ORDER`, a `SESSION_CONFLICT`) with its status and `{"error":{"code","message"}}`,
 * as tether/node does. Any other error is sent on to the error handler above this one, in the end
 * Fastify's own, so its answers stand (a body that fails validation: `400 FST_ERR_VALIDATION`). A thrown
 * value that cannot be read (its properties throw) is answered `500 INTERNAL_ERROR`: Fastify's own
 * handler would answer it 200. Another value that is not an Error is sent on as one (see asError). The
 * failed request's session changes are dropped by the plugin's onError hook, which runs before this and
 * clears what the failed route had set for its answer (its cookies, Location, caching headers), so that
 * whichever handler answers, the error goes out no-store without them.
 * An app with an error handler of its own can call this one from it.
 * @example
 * await app.register(tetherPlugin, { tether });
 * app.setErrorHandler(tetherErrorHandler);
 */
export function tetherErrorHandler(err: Error, _req: FastifyRequest, reply: FastifyReply): void {
  if (isTetherError(err) || unreadable(err)) void reply.send(errorPayload(reply, err));
  else void reply.send(err instanceof Error ? err : asError(err));
}

/**
 * A thrown value that is not an Error (`throw 'oops'`, `throw { statusCode: 404, message }`) as one, so
 * that the next error handler gets it: an error handler's `reply.send` takes any other value for the
 * answer's payload, and a failed request went out `200` with it. Its message, status and code are kept
 * (Fastify's handler answers by them); the value itself is the Error's `cause`.
 */
function asError(value: unknown): Error {
  const fields = typeof value === 'object' && value !== null ? value as { message?: unknown; statusCode?: unknown; status?: unknown; code?: unknown } : {};
  const message = typeof fields.message === 'string' ? fields.message : typeof value === 'object' && value !== null ? 'a non-Error value was thrown' : String(value);
  const err = Object.assign(new Error(message, { cause: value }), { statusCode: fields.statusCode, status: fields.status, code: fields.code });
  for (const key of ['statusCode', 'status', 'code'] as const) if (err[key] === undefined) delete err[key];
  return err;
}

/**
 * The session of a request on a route whose session is optional (`config: { tether: { session: 'optional' } }`),
 * typed so: null when it could not be opened, the store being down, and the handler answers without it.
 * @example
 * app.get('/api/products/:id', { config: { tether: { session: 'optional' } } }, async (req) => {
 *   const s = optionalSession(req);
 *   if (s !== null) s.set('seen', [req.params.id, ...(s.get('seen') ?? [])].slice(0, 5));
 *   return product(req.params.id);
 * });
 */
export function optionalSession(req: FastifyRequest): Session<TetherSessionData> | null {
  // Null (the request decoration's default) where the plugin opened none.
  const session: Session<TetherSessionData> | null = req.session;
  return session;
}

export const tetherPlugin = plugin;
export default plugin;

