/**
 * tether/hono: Hono middleware (on Node via @hono/node-server, or any runtime). `c.get('session')` is
 * the request's Tether session; it is committed after the handler, before the response leaves. A
 * `stream()` callback writes the body after that commit: a session change made there throws
 * SESSION_COMMITTED; when the commit fails, its body is cancelled (its writes fail, its onAbort
 * listeners run). Mounted twice on one request (the app and a sub-app), the first mount's session
 * serves it: the second opens none, runs only its CSRF checks, and passes the request on.
 * @module
 * @example
 * import { Hono } from 'hono';
 * import { createTether } from 'tether';
 * import { sessions, type TetherEnv } from 'tether/hono';
 * const app = new Hono<TetherEnv>();
 * app.use(sessions(createTether({ secrets: [process.env.TETHER_SECRET!] })));
 * app.post('/visit', async (c) => {
 *   const s = c.get('session');
 *   await s.update((d) => { d.visits = (Number(d.visits) || 0) + 1; });
 *   return c.json({ visits: s.data.visits });
 * });
 */
import type { Context, Env, ErrorHandler, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Tether } from '../../core/engine.js';
import { CsrfTokenInvalidError, OptionsInvalidError, PayloadTooLargeError, isTetherError } from '../../core/errors.js';
import { sessionState } from '../../core/session.js';
import type { Session, SessionData } from '../../core/session.js';
import type { RequestView } from '../../core/csrf.js';
import { ANSWER_HEADERS, CACHE_HEADERS, commitSession, errorResponse, isStoreUnavailable, mayRunWithoutSession, reopenAfterError, sessionModeOf } from '../shared/http.js';
import type { SessionMode } from '../shared/http.js';

export interface TetherEnv<T extends object = SessionData> {
  /** `session` is null on a request whose optional session could not be opened (`optionalSession(c)`). */
  Variables: { session: Session<T> };
}

export interface HonoAdapterOptions {
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean | ((c: Context) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (c: Context) => boolean;
  /**
   * `'optional'` (for every request, or those the function gives it for): while the store cannot
   * answer (STORE_UNAVAILABLE), the handler runs without a session (`c.get('session')` null; read it
   * with `optionalSession(c)`, typed so) instead of the request being refused 503, and its answer
   * carries no session cookie, neither set nor cleared: the browser keeps the one it has. An unsafe
   * request whose CSRF checks apply is refused all the same (its token is in the session). A session
   * that opened but whose commit the store cannot take gives the handler's answer without its cookie;
   * the change is not stored, and the failure is counted as every store failure is (`storeErrors`,
   * `store_errors_total`). Any other error is answered as before. @default 'required'
   */
  session?: SessionMode | ((c: Context) => SessionMode);
  /**
   * With the engine's `csrf.forms`: the most bytes of a form body this middleware reads to find the
   * token field of a post without the token header. A longer body is refused, 413 PAYLOAD_TOO_LARGE,
   * before the handler, with nothing read past the limit (Content-Length, or a chunked body as it
   * arrives: Hono's `bodyLimit`). Raise it for large forms (uploads), or send the token in the header,
   * which needs no body read. @default 102400 (100 KiB, body-parser's default)
   */
  formBodyLimit?: number;
  /**
   * The client's address, for the engine's `addressChange` (asked only when that is on). Hono has no
   * portable one; behind a proxy, derive it from the forwarded header your proxy sets.
   * @default the socket's peer under @hono/node-server (`c.env.incoming`), else none (nothing compared)
   */
  clientAddress?: (c: Context) => string | undefined;
}

/** The form body limit when none is given: body-parser's default. */
export const DEFAULT_FORM_BODY_LIMIT = 100 * 1024;

function formField<T extends object>(tether: Tether<T>): string {
  return tether.options.csrf === false ? '' : tether.options.csrf.formField;
}

function viewOf(c: Context, clientAddress: (c: Context) => string | undefined): RequestView {
  return { method: c.req.method, header: (name) => (name === ':authority' ? authorityOf(c) : c.req.header(name)), address: () => clientAddress(c) };
}

/**
 * An HTTP/2 request's authority (RFC 9113 §8.3.1), which a fetch Request cannot carry as a header: the
 * host of the URL the server built from it. Asked only when the request has no Host.
 */
function authorityOf(c: Context): string | undefined {
  try {
    return new URL(c.req.url).host || undefined;
  } catch {
    return undefined;
  }
}

/** @hono/node-server hands the node:http request to the app as `c.env.incoming`. */
function nodeServerAddress(c: Context): string | undefined {
  return (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress;
}

/**
 * The error's response; with `kept`, also those of its headers that are not an answer's own
 * (ANSWER_HEADERS); with `cookies`, what the abandoned session's answer carries (Tether#abandon).
 */
function errorOut(err: unknown, kept?: Headers, cookies: readonly string[] = []): Response {
  const { status, body, retryAfter } = errorResponse(err);
  const headers = keptHeaders(kept);
  headers.set('content-type', 'application/json; charset=utf-8');
  if (retryAfter !== undefined) headers.set('retry-after', retryAfter);
  for (const ck of cookies) headers.append('set-cookie', ck);
  return new Response(JSON.stringify(body), { status, headers });
}

/** Those of `kept` that are not an answer's own (ANSWER_HEADERS), and `Cache-Control: no-store`. */
function keptHeaders(kept?: Headers): Headers {
  const headers = new Headers();
  if (kept) for (const [name, value] of kept) if (!ANSWER_HEADERS.has(name)) headers.append(name, value);
  headers.set('cache-control', 'no-store');
  return headers;
}

/**
 * The answer of a request `sessions()` refuses before the handler (CSRF, a store outage, a form body too
 * large), with the headers earlier middlewares set with `c.header()` that are not an answer's own (a
 * CSP, HSTS or CORS header), as the other adapters keep them on their refusals. Returned bare, the
 * error would replace them: Hono adds a middleware's `c.header()` values only to the responses it builds.
 */
function refuse(c: Context, err: unknown, cookies: readonly string[] = []): Response {
  const before = c.res.headers;
  // Cleared first: the setter would copy every earlier header over the error, Set-Cookie included.
  c.res = undefined;
  c.res = errorOut(err, before, cookies);
  return c.res;
}

/**
 * A client that goes away before its response is sent must not keep the session's gate: its handler
 * may never return (it answers nobody). Only a request that may write holds the gate, so only those
 * listen (the signal is Hono's Request's, which @hono/node-server makes only when asked for). Once the
 * commit has begun (its wait for pending `update()` calls included), abandoning is a no-op: the handler
 * answered, and what it changed is stored. Returns false when the client had already gone while the
 * request waited for its session's turn: the session is abandoned and no handler should run for it.
 */
function abandonOnAbort<T extends object>(tether: Tether<T>, session: Session<T>, signal: AbortSignal): boolean {
  if (signal.aborted) {
    tether.abandon(session);
    return false;
  }
  signal.addEventListener('abort', () => tether.abandon(session), { once: true });
  return true;
}

/**
 * Per request session, what `tetherErrors(fallback)` calls before the fallback: drops the failed
 * request's changes and opens the session again, as it was before the request, for the app's handler.
 */
const REOPEN = new WeakMap<object, () => Promise<void>>();

/** What a request whose client has gone is answered with, unread: 499, as proxies log a client that closed first. */
const CLIENT_GONE = 499;

/**
 * A form post's fields (`csrf.forms`), from `c.req.parseBody({ all: true })`: Hono keeps the body it read
 * and the FormData it parsed, so the handler's own `parseBody()` (with its own options), `formData()` or
 * `text()` read them again. `all` shows a repeated field as an array, which the engine refuses; without
 * it only the last value would be seen. (Older Hono 4 releases cached parseBody's first result: there
 * the handler's `parseBody()` gets this one, a repeated field as an array.)
 */
async function formFields<E extends Env>(c: Context<E, string>, field: string, limitBody: MiddlewareHandler): Promise<object> {
  let fields: object = {};
  await limitBody(c, async () => {
    try {
      fields = await c.req.parseBody({ all: true });
    } catch {
      throw new CsrfTokenInvalidError(`missing CSRF token: the form body could not be parsed, so its ${field} field could not be read`);
    }
  });
  return fields;
}

/**
 * Hono middleware: `c.get('session')` is the request's session, committed once the handler has answered.
 * With the engine's `csrf.forms`, a form post without the token header is checked against its
 * `csrf.formField` field, read here with `c.req.parseBody()`; the handler can read the body again.
 */
export function sessions<T extends object>(tether: Tether<T>, options: HonoAdapterOptions = {}): MiddlewareHandler<TetherEnv<T>> {
  const limit = options.formBodyLimit ?? DEFAULT_FORM_BODY_LIMIT;
  if (options.clientAddress !== undefined && typeof options.clientAddress !== 'function') {
    throw new OptionsInvalidError(`tether/hono sessions() options.clientAddress must be a function of the request's context (got ${typeof options.clientAddress})`);
  }
  const clientAddress = options.clientAddress ?? nodeServerAddress;
  const optionalOf = sessionModeOf(options.session, 'tether/hono sessions()');
  if (!Number.isSafeInteger(limit) || limit < 1) throw new OptionsInvalidError(`tether/hono sessions() options.formBodyLimit must be a whole number of bytes, at least 1 (got ${String(options.formBodyLimit)})`);
  // Hono's own body limit, built once: Content-Length checked, a chunked body counted as it arrives.
  const limitBody = bodyLimit({ maxSize: limit, onError: () => { throw new PayloadTooLargeError(limit); } });
  /** The CSRF checks, unless `options.csrf` turns them off for this request; throws what they find. */
  const csrfOf = (c: Context<TetherEnv<T>, string>): boolean => (typeof options.csrf === 'function' ? options.csrf(c) : options.csrf ?? true);
  const checkCsrf = async (c: Context<TetherEnv<T>, string>, session: Session<T>, view: RequestView): Promise<void> => {
    const csrf = csrfOf(c);
    if (csrf && tether.checkRequestHead(session, view)) tether.checkRequest(session, view, await formFields(c, formField(tether), limitBody));
  };
  return async (c, next) => {
    const view = viewOf(c, clientAddress);
    // Mounted twice on one request (the app and a sub-app): the first mount's session serves it, as
    // with express-session, where the first one wins; a second one opening its own would wait at the
    // gate its request holds. This mount's CSRF checks still apply: one with them on, under a mount
    // with them off, is not bypassed. Its error leaves the session to the first mount, which commits it.
    // Null where the first mount ran the request without its optional session (the store down): this
    // one opens it, or not, by its own setting.
    const open = c.get('session') as Session<T> | null | undefined;
    if (open !== undefined && open !== null) {
      try {
        await checkCsrf(c, open, view);
      } catch (err) {
        return refuse(c, err);
      }
      return next();
    }
    const optional = optionalOf !== null && optionalOf(c);
    let session: Session<T>;
    try {
      const opened = tether.openNow(view, options.write ? { write: options.write(c) } : {});
      session = opened instanceof Promise ? await opened : opened;
    } catch (err) {
      if (optional && isStoreUnavailable(err) && mayRunWithoutSession(tether as Tether<object>, view.method, csrfOf(c))) {
        // Without a session: nothing to commit, no cookie to send.
        c.set('session', null as unknown as Session<T>);
        return next();
      }
      return refuse(c, err);
    }
    if (sessionState(session).release !== null && !abandonOnAbort(tether, session, c.req.raw.signal)) return new Response(null, { status: CLIENT_GONE });
    try {
      await checkCsrf(c, session, view);
    } catch (err) {
      return refuse(c, err, tether.abandon(session));
    }
    c.set('session', session);
    /** The session tetherErrors(fallback) opened again for the app's error handler, if it did. */
    let reopened: Session<T> | undefined;
    REOPEN.set(session, async () => {
      const again = await reopenAfterError(tether, session, view, options.write ? { write: options.write(c) } : {},
        (s) => sessionState(s).release === null || abandonOnAbort(tether, s, c.req.raw.signal));
      if (again === null) return;
      reopened = again;
      c.set('session', again);
    });
    try {
      await next();
    } catch (err) {
      tether.abandon(session);
      if (reopened !== undefined) tether.abandon(reopened);
      throw err;
    } finally {
      // An error handler that runs later (a middleware before this one failed) gets no session opened again.
      REOPEN.delete(session);
    }
    if (c.error) {
      // Hono hands a handler's error to app.onError and records it here: a failed request writes
      // nothing. What the error handler changed in the session tetherErrors() opened again for it (a
      // flash message) is stored with its answer, as tether/fastify stores its error handler's.
      // Whoever answered it, the answer is not cached, nor kept with the failed route's validators.
      uncacheable(c);
      if (reopened === undefined) {
        addToResponse(c, tether.abandon(session), null);
        return;
      }
      session = reopened;
    }
    let cookies: readonly string[];
    try {
      const committed = commitSession(tether, session, optional);
      cookies = committed instanceof Promise ? await committed : committed;
    } catch (err) {
      // Hono's `c.res` setter copies every header of the response it replaces onto the new one, and the
      // old Set-Cookie over the new one's: cleared first, the error keeps only the headers that are not
      // the answer's own (a middleware's CSP or CORS stay; its cookies, Location and framing go), as
      // tetherErrors() and the other adapters do.
      const replaced = c.res;
      c.res = undefined;
      c.res = errorOut(err, replaced.headers);
      // The handler's body never goes out: cancelled, a `stream()` callback's writes fail and its
      // onAbort listeners run, and a body passed on from fetch() lets its connection go.
      replaced.body?.cancel().catch(() => {});
      return;
    }
    addToResponse(c, cookies, session.clearSiteData);
  };
}

/**
 * The session of a request whose session is optional (`sessions()`'s `session` option), typed so: null
 * when it could not be opened, the store being down, and the handler answers without it.
 * @example
 * app.use(sessions(tether, { session: (c) => (c.req.method === 'GET' && c.req.path.startsWith('/api/products/') ? 'optional' : 'required') }));
 * app.get('/api/products/:id', (c) => {
 *   const s = optionalSession(c);
 *   if (s !== null) s.set('seen', [c.req.param('id'), ...(s.get('seen') ?? [])].slice(0, 5));
 *   return c.json(product(c.req.param('id')));
 * });
 */
export function optionalSession<T extends object = SessionData>(c: Context<TetherEnv<T>, string>): Session<T> | null {
  // Undefined where sessions() did not run for the request.
  const session: Session<T> | null | undefined = c.get('session');
  return session ?? null;
}

/**
 * Makes `c.res`, the answer to a request whose handler failed, `no-store` and drops the validators and
 * freshness headers (CACHE_HEADERS) the failed route may have left on it (Hono's own error answer is
 * built over the route's headers).
 */
function uncacheable(c: Context): void {
  const strip = (headers: Headers): void => {
    for (const name of [...headers.keys()]) if (CACHE_HEADERS.has(name)) headers.delete(name);
    headers.set('cache-control', 'no-store');
  };
  const res = c.res;
  try {
    strip(res.headers);
  } catch {
    // Immutable headers (a Response from fetch()): rebuilt around the same body, as addToResponse does.
    const copy = new Response(res.body, res);
    strip(copy.headers);
    c.res = undefined;
    c.res = copy;
  }
}

/**
 * Adds what a commit sends to `c.res`: its Set-Cookie values, and Clear-Site-Data when it ended the
 * session; the response becomes no-store. Nothing at all when it sends neither.
 */
function addToResponse(c: Context, cookies: readonly string[], clearSiteData: string | null): void {
  if (cookies.length === 0 && clearSiteData === null) return;
  // Responses can be immutable (e.g. from fetch); rebuild when needed.
  let res = c.res;
  try {
    addSessionHeaders(res.headers, cookies, clearSiteData);
  } catch {
    res = new Response(res.body, res);
    addSessionHeaders(res.headers, cookies, clearSiteData);
    // The copy holds the handler's headers already; cleared first, or the setter would put the
    // handler's Set-Cookie over the session's and the session's record would be stored orphaned.
    c.res = undefined;
    c.res = res;
  }
}

function addSessionHeaders(headers: Headers, cookies: readonly string[], clearSiteData: string | null): void {
  for (const ck of cookies) headers.append('set-cookie', ck);
  if (clearSiteData !== null) headers.set('clear-site-data', clearSiteData);
  headers.set('cache-control', 'no-store');
}

/** What Hono answers when the app sets no error handler: an HTTPException's own response, else a logged 500. */
function honoDefault(err: Error, c: Context): Response {
  if ('getResponse' in err && typeof err.getResponse === 'function') {
    const res = (err as { getResponse(): Response }).getResponse();
    return c.newResponse(res.body, res);
  }
  console.error(err);
  return c.text('Internal Server Error', 500);
}

/**
 * For `app.onError`: answers a TetherError a route throws (a flow's `FLOW_STEP_OUT_OF_ORDER`, a
 * `SESSION_CONFLICT`) with its status and `{"error":{"code","message"}}`, as tether/node does; any
 * other error goes to `fallback`, by default what Hono answers without an error handler, which answers
 * over a response without the failed route's own headers (its cookies, Location, caching headers): only
 * those every response carries (a CSP, CORS) stay. The failed request's session changes are dropped by
 * `sessions()`, as for any error, and its answer goes out no-store. Before `fallback` runs, the
 * session is opened again as it was before the request (`c.get('session')`): what `fallback` changes
 * there (a flash message before redirecting back to a form) is stored with its answer.
 * @example
 * app.use(sessions(tether));
 * app.onError(tetherErrors());
 * // or, with the app's own answer for the others:
 * app.onError(tetherErrors((err, c) => c.json({ error: { code: 'INTERNAL_ERROR', message: 'internal server error' } }, 500)));
 */
export function tetherErrors<E extends Env = Env>(fallback: ErrorHandler<E> = honoDefault): ErrorHandler<E> {
  return (err, c) => {
    if (!isTetherError(err)) {
      // The fallback answers over what the failed route had set (Hono builds its answers over the
      // context's headers): only the headers every response carries go over, as for a TetherError,
      // and the answer is no-store unless the fallback says otherwise.
      const kept = c.res.headers;
      c.res = undefined;
      c.res = new Response(null, { headers: keptHeaders(kept) });
      const reopen = REOPEN.get((c as Context).get('session') as object);
      return reopen === undefined ? fallback(err, c) : reopen().then(() => fallback(err, c));
    }
    // Hono's `c.res` setter would copy every header of the answer so far onto the error, the route's
    // cookies and Location too: only those every response carries (a middleware's CSP, CORS) go over,
    // as Hono's own error answer and the other adapters keep them. `c.res` holds those set before the
    // route answered too.
    const kept = c.res.headers;
    c.res = undefined;
    return errorOut(err, kept);
  };
}
