/**
 * `session(options)`: a drop-in for express-session on the Tether engine. `req.session` behaves as
 * express-session documents it, while every Tether guarantee holds underneath: the session is written
 * before the response head goes out (or the response becomes the error), writers of one session take
 * turns at the gate, and a write that lost a race is merged or refused, never silently dropped.
 * @module
 */
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import type { ServerResponse } from 'node:http';
import type { Tether } from '../../core/engine.js';
import { appendSetCookie, sendError } from '../shared/http.js';
import { resolveCompat } from './compat-options.js';
import type { CompatSessionOptions } from './compat-options.js';
import { RequestSessions } from './compat-request.js';

/** The middleware, with the engine behind it (for `listUserSessions`, events, stats). */
export type CompatMiddleware = RequestHandler & { readonly tether: Tether<Record<string, unknown>> };

type AnyFn = (...args: unknown[]) => unknown;

/**
 * Express middleware with express-session's API.
 * @example
 * import express from 'express';
 * import session from 'tether/express';   // was: import session from 'express-session'
 * const app = express();
 * app.use(session({ secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }));
 * app.get('/', (req, res) => {
 *   req.session.views = (req.session.views ?? 0) + 1;
 *   res.send(`views: ${req.session.views}`);
 * });
 */
export function session(options: CompatSessionOptions = {}): CompatMiddleware {
  const cfg = resolveCompat(options);
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    // Mounted twice (or after another session middleware): the first one wins, as in express-session.
    if ((req as { session?: unknown }).session) {
      next();
      return;
    }
    const defaults = cfg.cookieFor(req);
    // Outside the cookie's path the browser never sends it back: express-session gives no session there.
    const pathname = (req.originalUrl ?? req.url ?? '/').split('?')[0] || '/';
    if (!pathname.startsWith(defaults.path)) {
      next();
      return;
    }
    RequestSessions.open(cfg, req, defaults, next).then(
      (ctl) => {
        holdHead(res, ctl);
        res.once('close', () => ctl.abort());
        next();
      },
      (err: unknown) => next(err),
    );
  };
  Object.defineProperty(middleware, 'tether', { value: cfg.tether, enumerable: true });
  return middleware as CompatMiddleware;
}

/**
 * Holds the first writeHead/write/end/flushHeaders until the session is committed, then adds its
 * Set-Cookie and lets the head out; a failed commit becomes the error response instead. Later, an
 * `end` after a streamed head first writes what the handler changed meanwhile (no cookie can change then).
 */
function holdHead(res: ServerResponse, ctl: RequestSessions): void {
  const methods = ['writeHead', 'write', 'end', 'flushHeaders'] as const;
  const r = res as unknown as Record<string, AnyFn>;
  const original = Object.fromEntries(methods.map((m) => [m, r[m]])) as Record<(typeof methods)[number], AnyFn>;
  const queue: Array<() => void> = [];
  let started = false;
  const restore = (): void => {
    for (const m of methods) r[m] = original[m];
  };
  const lateEnd = (): void => {
    r.end = function (this: ServerResponse, ...args: unknown[]) {
      r.end = original.end;
      ctl.finishLate().then(
        () => original.end.apply(res, args),
        (err: unknown) => res.destroy(err instanceof Error ? err : undefined),
      );
      return res;
    } as AnyFn;
  };
  const start = (): void => {
    if (started) return;
    started = true;
    ctl.finish().then(
      (cookies) => {
        restore();
        appendSetCookie(res, cookies);
        lateEnd();
        for (const call of queue) call();
      },
      (err: unknown) => {
        restore();
        sendError(res, err, (chunk) => (original.end as (c?: string) => void).call(res, chunk));
      },
    );
  };
  for (const m of methods) {
    r[m] = function (this: ServerResponse, ...args: unknown[]) {
      queue.push(() => original[m]!.apply(res, args));
      start();
      return m === 'write' ? true : res;
    } as AnyFn;
  }
}
