/**
 * What the node:http and Express adapters share: a request view over IncomingMessage, the JSON error
 * body, and holding a ServerResponse until the session is committed, so the session is written
 * before the status line goes out and a store failure can still become a clean error response.
 * @module
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { CsrfTokenInvalidError, InternalError, OptionsInvalidError, isTetherError } from '../../core/errors.js';
import { isSafeMethod } from '../../core/csrf.js';
import type { RequestView } from '../../core/csrf.js';
import type { Tether } from '../../core/engine.js';
import { sessionState } from '../../core/session.js';
import type { Session } from '../../core/session.js';

/** Where a request's client address comes from: the framework's `ip` (Express, Fastify: under their trust-proxy settings), else the socket's peer. */
export interface AddressSource {
  readonly ip?: string;
  readonly socket?: { readonly remoteAddress?: string } | null;
}

/** The engine's view of a request's method, headers and client address: one object per request, no closure. */
export class HeadersView implements RequestView {
  readonly method: string;
  readonly #headers: IncomingHttpHeaders;
  readonly #client: AddressSource | undefined;

  constructor(method: string, headers: IncomingHttpHeaders, client?: AddressSource) {
    this.method = method;
    this.#headers = headers;
    this.#client = client;
  }

  header(name: string): string | undefined {
    const v = this.#headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  address(): string | undefined {
    const c = this.#client;
    return c === undefined ? undefined : c.ip ?? c.socket?.remoteAddress;
  }
}

/** The view of a node:http request (Express's too: its `req.ip` follows `trust proxy`). */
export function viewOf(req: IncomingMessage): RequestView {
  return new HeadersView(req.method ?? 'GET', req.headers, req);
}

/**
 * The view of a WebSocket handshake's node:http request, which carries the request itself: an engine
 * that decides its handshakes' origin checks from the request (the express-session drop-in's, from
 * its cookie's Secure for that request) reads it there.
 */
export class HandshakeView extends HeadersView {
  readonly request: IncomingMessage;

  constructor(req: IncomingMessage) {
    super(req.method ?? 'GET', req.headers, req);
    this.request = req;
  }
}

/**
 * Status, `{"error":{"code","message"}}` body and Retry-After (the error's `retryAfterSec`, as text) for
 * any thrown value; unknown errors say nothing of their internals.
 */
export function errorResponse(err: unknown): { status: number; body: { error: { code: string; message: string } }; retryAfter: string | undefined } {
  if (isTetherError(err)) {
    const wait = err.retryAfterSec;
    return { status: err.status, body: { error: { code: err.code, message: err.message } }, retryAfter: typeof wait === 'number' && wait > 0 ? String(Math.ceil(wait)) : undefined };
  }
  const internal = new InternalError();
  return { status: internal.status, body: internal.toJSON(), retryAfter: undefined };
}

/**
 * Headers that let a cache keep an answer or revalidate it: its validators (ETag, Last-Modified), its
 * freshness, including what a CDN or a reverse proxy reads before Cache-Control (CDN-Cache-Control,
 * RFC 9213, and its vendors' names; Surrogate-Control; nginx's X-Accel-Expires), and its age. An error
 * answered in place of a handler's answer keeps none of them, and goes out `no-store`: a cache that
 * kept it would answer the failure again to this user, or to others, and a revalidation would take the
 * failed answer for the handler's.
 */
export const CACHE_HEADERS: ReadonlySet<string> = new Set([
  'cache-control', 'expires', 'etag', 'last-modified', 'age', 'cdn-cache-control', 'cloudflare-cdn-cache-control',
  'vercel-cdn-cache-control', 'surrogate-control', 'x-accel-expires',
]);

/**
 * Headers that belong to the answer a handler made, which an error answered in its place drops: its
 * cookies (and a Clear-Site-Data: a logout that failed ended nothing), where it sent the client, what
 * described its body, how a cache may keep it (CACHE_HEADERS), and how that body was framed on the
 * connection (hop-by-hop headers, which a response passed on from an upstream `fetch()` carries).
 * Others stay: the security headers a middleware or hook sets on every response (HSTS, nosniff, CSP,
 * CORS) belong on the error too.
 */
export const ANSWER_HEADERS: ReadonlySet<string> = new Set([
  'set-cookie', 'location', 'refresh', 'link', ...CACHE_HEADERS, 'content-type', 'content-length',
  'content-encoding', 'content-language', 'content-range', 'content-disposition', 'content-location', 'retry-after',
  'transfer-encoding', 'connection', 'keep-alive', 'trailer', 'upgrade', 'proxy-connection', 'clear-site-data',
]);

/**
 * Clears what a failed handler's answer had set on `res` before an error handler answers in its place
 * (ANSWER_HEADERS: its cookies, Location, caching), and makes that answer `no-store`; the headers every
 * response carries stay. An error handler may set its own after this. Nothing once the head is out.
 */
export function clearFailedAnswer(res: ServerResponse): void {
  if (res.headersSent) return;
  clearReasonPhrase(res);
  for (const name of res.getHeaderNames()) if (ANSWER_HEADERS.has(name)) res.removeHeader(name);
  res.setHeader('cache-control', 'no-store');
}

/**
 * Drops a reason phrase the failed handler set ("Created"), which would otherwise go out on the error's
 * status line ("503 Created"): Node then writes the status code's own. HTTP/2 has none (Node's
 * compatibility response, which has a `stream`, warns at each use of it).
 */
export function clearReasonPhrase(res: ServerResponse): void {
  if ((res as { stream?: unknown }).stream === undefined) res.statusMessage = '';
}

/**
 * Makes the answer to a failed request uncacheable, whoever made it: `no-store`, and none of the
 * validators or freshness headers (CACHE_HEADERS) a failed handler may have left on it.
 */
export function uncacheable(res: ServerResponse): void {
  for (const name of res.getHeaderNames()) if (CACHE_HEADERS.has(name)) res.removeHeader(name);
  res.setHeader('cache-control', 'no-store');
}

/**
 * Replaces whatever the response holds with the error, if nothing was sent yet; else ends the
 * connection. `cookies`: what the abandoned session's answer carries (Tether#abandon).
 */
export function sendError(res: ServerResponse, err: unknown, end: (chunk?: string) => void = (c) => res.end(c), cookies: readonly string[] = []): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  const { status, body, retryAfter } = errorResponse(err);
  for (const name of res.getHeaderNames()) if (ANSWER_HEADERS.has(name)) res.removeHeader(name);
  res.statusCode = status;
  clearReasonPhrase(res);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  if (retryAfter !== undefined) res.setHeader('retry-after', retryAfter);
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  end(JSON.stringify(body));
}

/**
 * Adds what a commit sends: its Set-Cookie values, and `clearSiteData` (Session.clearSiteData) when it
 * ended the session. Either makes the response `no-store`.
 */
export function appendSetCookie(res: ServerResponse, cookies: readonly string[], clearSiteData: string | null = null): void {
  if (cookies.length === 0 && clearSiteData === null) return;
  if (cookies.length > 0) {
    const prev = res.getHeader('set-cookie');
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
    res.setHeader('set-cookie', [...list, ...cookies]);
  }
  if (clearSiteData !== null) res.setHeader('clear-site-data', clearSiteData);
  // A response that sets the session cookie, or ends the session, must not be cached by anyone.
  res.setHeader('cache-control', 'no-store');
}

/**
 * A client that goes away before its response ends must not keep the session's gate. Only a request
 * that may write holds it, so only those listen: a listener on every read-only request would cost
 * every read for nothing. Once the commit has begun (its wait for pending `update()` calls included),
 * abandoning is a no-op: the handler answered, and what it changed is stored.
 *
 * Returns false when the client had already gone by the time its session opened (a writer waits for
 * its session's turn, any request for a store that answers late): the session is abandoned, and the
 * adapter does not run the handler, which would answer nobody, could store none of its session's
 * changes (they throw SESSION_COMMITTED), and might never end.
 */
export function abandonOnEarlyClose<T extends object>(tether: Tether<T>, session: Session<T>, res: ServerResponse): boolean {
  if (hasClosed(res)) {
    tether.abandon(session);
    return false;
  }
  if (sessionState(session).release !== null) res.once('close', () => tether.abandon(session));
  return true;
}

/**
 * After a request failed: drops its session changes and opens its session again, as it was before the
 * request, for the app's error handler, whose changes (a flash message before redirecting back to a
 * form) the adapters store with its answer. Null when there is nothing to open again: the session's
 * commit has begun (an error raised after the answer, or a commit waiting for an update() the handler
 * did not await), or the store cannot open it now (down, the session busy), when the error handler keeps
 * the abandoned session, whose changes throw SESSION_COMMITTED. `keep(session)` is asked of the session
 * opened (the client may have gone meanwhile: abandonOnEarlyClose, or its signal's); a session it
 * refuses counts as none. `options` as `tether.openNow`'s, and `open` false when the request may not
 * store anything at all (a form post whose token was never read).
 */
export function reopenAfterError<T extends object>(
  tether: Tether<T>, session: Session<T>, view: RequestView, options: { write?: boolean },
  keep: (session: Session<T>) => boolean, open = true,
): Session<T> | Promise<Session<T> | null> | null {
  if (sessionState(session).committed) return null;
  tether.abandon(session);
  if (!sessionState(session).committed || !open) return null;
  let opened: Session<T> | Promise<Session<T>>;
  try {
    opened = tether.openNow(view, options);
  } catch {
    return null;
  }
  const kept = (s: Session<T>): Session<T> | null => (keep(s) ? s : null);
  return opened instanceof Promise ? opened.then(kept, () => null) : kept(opened);
}

/**
 * Whether the response's connection has closed. Node's HTTP/2 compatibility response (node:http2,
 * Fastify's `http2: true`) has no `closed`: its stream's tells. Read as false there, a client gone
 * while its writer waited for the gate went unseen, and the close listener, added after the close,
 * never ran: the session's gate stayed held, every later write of the session refused SESSION_BUSY.
 */
function hasClosed(res: ServerResponse): boolean {
  if (res.closed) return true;
  return (res as { stream?: { closed?: unknown } }).stream?.closed === true;
}

/**
 * Whether a route's session is optional (the `session` option of tether/node, tether/express and
 * tether/hono; `config: { tether: { session: 'optional' } }` in tether/fastify): while the store cannot
 * answer, its handler runs without a session instead of the request being refused 503 STORE_UNAVAILABLE.
 * `'required'`, the default, keeps that refusal.
 */
export type SessionMode = 'required' | 'optional';

/**
 * The adapters' `session` option, checked once: null when no request's session is optional (nothing
 * asked per request), else whether a request's is. `adapter` names the option in the error.
 */
export function sessionModeOf<R>(session: SessionMode | ((req: R) => SessionMode) | undefined, adapter: string): ((req: R) => boolean) | null {
  if (session === undefined || session === 'required') return null;
  if (session === 'optional') return () => true;
  if (typeof session === 'function') return (req) => session(req) === 'optional';
  throw new OptionsInvalidError(`${adapter} options.session must be 'optional', 'required' or a function of the request giving one of them (got ${typeof session === 'string' ? `'${String(session)}'` : typeof session})`);
}

/** Whether `err` is the store's failure to answer (STORE_UNAVAILABLE), which an optional session tolerates. */
export function isStoreUnavailable(err: unknown): boolean {
  return isTetherError(err) && err.code === 'STORE_UNAVAILABLE';
}

/**
 * Whether a request whose optional session could not be opened may run without one: a safe method, or
 * a request whose CSRF checks are off (`csrf`: the adapter's setting for it). An unsafe request that is
 * to be checked cannot be: its token is in the session it has not got.
 */
export function mayRunWithoutSession(tether: Tether<object>, method: string, csrf: boolean): boolean {
  return isSafeMethod(method) || !csrf || tether.options.csrf === false;
}

const NO_COOKIES: readonly string[] = Object.freeze([]);

/**
 * `tether.commitNow(session)`, and for a route whose session is optional (`optional`) a commit the store
 * could not take (STORE_UNAVAILABLE) sends no cookie, and the answer goes out without it. The engine has
 * counted the failure (`storeErrors`, `store_errors_total`); the session's changes are not stored, and
 * the cookie the browser holds stays as it was. Any other failure is thrown (rejected) as `commitNow`'s.
 */
export function commitSession<T extends object>(tether: Tether<T>, session: Session<T>, optional: boolean): readonly string[] | Promise<readonly string[]> {
  if (!optional) return tether.commitNow(session);
  let out: string[] | Promise<string[]>;
  try {
    out = tether.commitNow(session);
  } catch (err) {
    if (isStoreUnavailable(err)) return NO_COOKIES;
    throw err;
  }
  if (!(out instanceof Promise)) return out;
  return out.catch((err: unknown) => {
    if (isStoreUnavailable(err)) return NO_COOKIES;
    throw err;
  });
}

export interface BeginOptions<R> {
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean | ((req: R) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: R) => boolean;
  /**
   * Where a form post's parsed body is when the session is opened (`csrf.forms`), read only for a form
   * post without the token header. Without it, such a post is refused.
   */
  form?: FormSource<R>;
}

/** A form post's parsed body, and what to tell an app whose body was not parsed by then. */
export interface FormSource<R> {
  body(req: R): unknown;
  /** The CSRF_TOKEN_INVALID message when `body` gives no object, given the form field's and the header's names. */
  unparsed(field: string, header: string): string;
}

/** What `beginSession` gives for a request whose optional session could not be opened: run it without one. */
export const WITHOUT_SESSION: unique symbol = Symbol('tether.withoutSession');

/**
 * Loads the request's session and runs the CSRF checks: at once when the engine can open it without
 * waiting (see `Tether.openNow`), else by promise. On failure the error is already answered (and the
 * gate released) and the result is null; with `optional` (the request's session is optional), a store
 * that cannot answer gives WITHOUT_SESSION instead, when the request may run without one
 * (mayRunWithoutSession), and nothing is answered.
 */
export function beginSession<T extends object, R extends IncomingMessage>(
  tether: Tether<T>, req: R, res: ServerResponse, options: BeginOptions<R>, optional = false,
): Session<T> | null | typeof WITHOUT_SESSION | Promise<Session<T> | null | typeof WITHOUT_SESSION> {
  const view = viewOf(req);
  let opened: Session<T> | Promise<Session<T>>;
  try {
    opened = tether.openNow(view, options.write ? { write: options.write(req) } : {});
  } catch (err) {
    return openFailed(tether, req, res, options, optional, err);
  }
  if (!(opened instanceof Promise)) return checked(tether, opened, view, req, res, options);
  return opened.then((session) => checked(tether, session, view, req, res, options), (err: unknown) => openFailed(tether, req, res, options, optional, err));
}

/**
 * A session that could not be opened: answered with the error, or, for an optional one the store could
 * not open, WITHOUT_SESSION when the request may run without one. A function of the module, so that a
 * session that opens at once costs no closure for it.
 */
function openFailed<T extends object, R extends IncomingMessage>(tether: Tether<T>, req: R, res: ServerResponse, options: BeginOptions<R>, optional: boolean, err: unknown): null | typeof WITHOUT_SESSION {
  if (optional && isStoreUnavailable(err) && mayRunWithoutSession(tether as Tether<object>, req.method ?? 'GET', csrfOf(options, req))) return WITHOUT_SESSION;
  sendError(res, err);
  return null;
}

/** Whether the CSRF checks apply to the request, under `options.csrf`. */
function csrfOf<R>(options: BeginOptions<R>, req: R): boolean {
  return typeof options.csrf === 'function' ? options.csrf(req) : options.csrf ?? true;
}

/**
 * The CSRF checks `options` asks for on `session`, the request's open session; throws what they find.
 * For a second mount of one engine's middleware too, whose session the first mount opened.
 */
export function checkCsrfOf<T extends object, R extends IncomingMessage>(tether: Tether<T>, session: Session<T>, view: RequestView, req: R, options: BeginOptions<R>): void {
  // A form post whose token is in its body (csrf.forms): read from the body parsed before the session opened.
  if (csrfOf(options, req) && tether.checkRequestHead(session, view)) tether.checkRequest(session, view, formOf(tether, req, options.form));
}

function checked<T extends object, R extends IncomingMessage>(
  tether: Tether<T>, session: Session<T>, view: RequestView, req: R, res: ServerResponse, options: BeginOptions<R>,
): Session<T> | null {
  try {
    checkCsrfOf(tether, session, view, req, options);
  } catch (err) {
    sendError(res, err, undefined, tether.abandon(session));
    return null;
  }
  return session;
}

function formOf<T extends object, R>(tether: Tether<T>, req: R, source: FormSource<R> | undefined): object {
  const body = source?.body(req);
  if (typeof body === 'object' && body !== null) return body;
  const csrf = tether.options.csrf;
  const field = csrf === false ? '' : csrf.formField;
  const header = csrf === false ? '' : csrf.header;
  throw new CsrfTokenInvalidError(source ? source.unparsed(field, header) : `missing CSRF token: no parsed form body to read its ${field} field from`);
}
