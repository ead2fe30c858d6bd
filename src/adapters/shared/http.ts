/**
 * What the node:http and Express adapters share: a request view over IncomingMessage, the JSON error
 * body, and holding a ServerResponse until the session is committed, so the session is written
 * before the status line goes out and a store failure can still become a clean error response.
 * @module
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { InternalError, isTetherError } from '../../core/errors.js';
import type { RequestView } from '../../core/csrf.js';
import type { Tether } from '../../core/engine.js';
import { sessionState } from '../../core/session.js';
import type { Session } from '../../core/session.js';

/** The engine's view of a request's method and headers: one object per request, no closure. */
export class HeadersView implements RequestView {
  readonly method: string;
  readonly #headers: IncomingHttpHeaders;

  constructor(method: string, headers: IncomingHttpHeaders) {
    this.method = method;
    this.#headers = headers;
  }

  header(name: string): string | undefined {
    const v = this.#headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }
}

export function viewOf(req: IncomingMessage): RequestView {
  return new HeadersView(req.method ?? 'GET', req.headers);
}

/** Status and `{"error":{"code","message"}}` body for any thrown value; unknown errors say nothing of their internals. */
export function errorResponse(err: unknown): { status: number; body: { error: { code: string; message: string } } } {
  if (isTetherError(err)) return { status: err.status, body: { error: { code: err.code, message: err.message } } };
  const internal = new InternalError();
  return { status: internal.status, body: internal.toJSON() };
}

/** Replaces whatever the response holds with the error, if nothing was sent yet; else ends the connection. */
export function sendError(res: ServerResponse, err: unknown, end: (chunk?: string) => void = (c) => res.end(c)): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  const { status, body } = errorResponse(err);
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  if (status === 503) res.setHeader('retry-after', '1');
  end(JSON.stringify(body));
}

export function appendSetCookie(res: ServerResponse, cookies: readonly string[]): void {
  if (cookies.length === 0) return;
  const prev = res.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
  res.setHeader('set-cookie', [...list, ...cookies]);
  // A response that sets the session cookie must not be cached by anyone.
  res.setHeader('cache-control', 'no-store');
}

/**
 * A client that goes away before its response ends must not keep the session's gate. Only a request
 * that may write holds it, so only those listen: a listener on every read-only request would cost
 * every read for nothing. After a commit, abandoning is a no-op.
 */
export function abandonOnEarlyClose<T extends object>(tether: Tether<T>, session: Session<T>, res: ServerResponse): void {
  if (sessionState(session).release !== null) res.once('close', () => tether.abandon(session));
}

type AnyFn = (...args: never[]) => unknown;
type Held = 'writeHead' | 'write' | 'end' | 'flushHeaders';
type Apply = (this: ServerResponse, ...args: unknown[]) => unknown;

/**
 * Defers the first writeHead/write/end/flushHeaders until `commit()` settles (at once when it answers
 * without a promise). On success the
 * Set-Cookie headers are added and the deferred calls replayed in order; on failure the response
 * becomes the error instead (or the socket is closed if headers were somehow out).
 * Runs on every request: the methods are patched by name (no computed keys) and the queue holds
 * method names and argument lists rather than a closure per call.
 */
export function holdUntilCommitted(res: ServerResponse, commit: () => string[] | Promise<string[]>): void {
  const r = res as unknown as Record<Held, AnyFn>;
  const original: Record<Held, Apply> = { writeHead: r.writeHead as Apply, write: r.write as Apply, end: r.end as Apply, flushHeaders: r.flushHeaders as Apply };
  const queue: Array<Held | unknown[]> = [];
  let started = false;
  const restore = (): void => {
    r.writeHead = original.writeHead as AnyFn;
    r.write = original.write as AnyFn;
    r.end = original.end as AnyFn;
    r.flushHeaders = original.flushHeaders as AnyFn;
  };
  const committed = (cookies: string[]): void => {
    restore();
    appendSetCookie(res, cookies);
    for (let i = 0; i < queue.length; i += 2) original[queue[i] as Held].apply(res, queue[i + 1] as unknown[]);
  };
  const failed = (err: unknown): void => {
    restore();
    sendError(res, err, (chunk) => original.end.call(res, chunk));
  };
  const hold = (m: Held, result: unknown): AnyFn => function (this: ServerResponse, ...args: unknown[]) {
    queue.push(m, args);
    if (!started) {
      started = true;
      // A commit with nothing to write answers at once: the call goes through before this one returns.
      let cookies: string[] | Promise<string[]>;
      try {
        cookies = commit();
      } catch (err) {
        failed(err);
        return result;
      }
      if (cookies instanceof Promise) cookies.then(committed, failed);
      else committed(cookies);
    }
    return result;
  } as AnyFn;
  r.writeHead = hold('writeHead', res);
  r.write = hold('write', true);
  r.end = hold('end', res);
  r.flushHeaders = hold('flushHeaders', res);
}

export interface BeginOptions<R> {
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean | ((req: R) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: R) => boolean;
}

/**
 * Loads the request's session and runs the CSRF checks: at once when the engine can open it without
 * waiting (see `Tether.openNow`), else by promise. On failure the error is already answered (and the
 * gate released) and the result is null.
 */
export function beginSession<T extends object, R extends IncomingMessage>(
  tether: Tether<T>, req: R, res: ServerResponse, options: BeginOptions<R>,
): Session<T> | null | Promise<Session<T> | null> {
  const view = viewOf(req);
  let opened: Session<T> | Promise<Session<T>>;
  try {
    opened = tether.openNow(view, options.write ? { write: options.write(req) } : {});
  } catch (err) {
    sendError(res, err);
    return null;
  }
  if (!(opened instanceof Promise)) return checked(tether, opened, view, req, res, options);
  return opened.then((session) => checked(tether, session, view, req, res, options), (err: unknown) => {
    sendError(res, err);
    return null;
  });
}

function checked<T extends object, R extends IncomingMessage>(
  tether: Tether<T>, session: Session<T>, view: RequestView, req: R, res: ServerResponse, options: BeginOptions<R>,
): Session<T> | null {
  try {
    const csrf = typeof options.csrf === 'function' ? options.csrf(req) : options.csrf ?? true;
    if (csrf) tether.checkRequest(session, view);
  } catch (err) {
    tether.abandon(session);
    sendError(res, err);
    return null;
  }
  return session;
}
