/**
 * What the node:http and Express adapters share: a request view over IncomingMessage, the JSON error
 * body, and holding a ServerResponse until the session is committed, so the session is written
 * before the status line goes out and a store failure can still become a clean error response.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InternalError, isTetherError } from '../../core/errors.js';
import type { RequestView } from '../../core/csrf.js';
import type { Tether } from '../../core/engine.js';
import type { Session } from '../../core/session.js';

export function viewOf(req: IncomingMessage): RequestView {
  return {
    method: req.method ?? 'GET',
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    },
  };
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

type AnyFn = (...args: never[]) => unknown;

/**
 * Defers the first writeHead/write/end/flushHeaders until `commit()` settles. On success the
 * Set-Cookie headers are added and the deferred calls replayed in order; on failure the response
 * becomes the error instead (or the socket is closed if headers were somehow out).
 */
export function holdUntilCommitted(res: ServerResponse, commit: () => Promise<string[]>): void {
  const methods = ['writeHead', 'write', 'end', 'flushHeaders'] as const;
  const original = Object.fromEntries(methods.map((m) => [m, res[m]])) as unknown as Record<(typeof methods)[number], AnyFn>;
  const queue: Array<() => void> = [];
  let started = false;
  const restore = (): void => {
    for (const m of methods) (res as unknown as Record<string, AnyFn>)[m] = original[m];
  };
  const start = (): void => {
    if (started) return;
    started = true;
    commit().then(
      (cookies) => {
        restore();
        appendSetCookie(res, cookies);
        for (const call of queue) call();
      },
      (err: unknown) => {
        restore();
        sendError(res, err, (chunk) => (original.end as (c?: string) => void).call(res, chunk));
      },
    );
  };
  for (const m of methods) {
    (res as unknown as Record<string, AnyFn>)[m] = function (this: ServerResponse, ...args: unknown[]) {
      queue.push(() => (original[m] as (...a: unknown[]) => unknown).apply(res, args));
      start();
      return m === 'write' ? true : res;
    } as AnyFn;
  }
}

export interface BeginOptions<R> {
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean | ((req: R) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: R) => boolean;
}

/**
 * Loads the request's session and runs the CSRF checks. On failure the error is already answered
 * (and the gate released) and the result is null.
 */
export async function beginSession<T extends object, R extends IncomingMessage>(
  tether: Tether<T>, req: R, res: ServerResponse, options: BeginOptions<R>,
): Promise<Session<T> | null> {
  const view = viewOf(req);
  let session: Session<T>;
  try {
    session = await tether.open(view, options.write ? { write: options.write(req) } : {});
  } catch (err) {
    sendError(res, err);
    return null;
  }
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
