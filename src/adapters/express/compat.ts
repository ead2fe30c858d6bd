/**
 * `session(options)`: a drop-in for express-session on the Tether engine. `req.session` behaves as
 * express-session documents it, while every Tether guarantee holds underneath: the session is written
 * before the response head goes out (or the response becomes the error), writers of one session take
 * turns at the gate, and a write that lost a race is merged or refused, never silently dropped.
 * @module
 */
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import type { Tether } from '../../core/engine.js';
import { resolveCompat } from './compat-options.js';
import type { CompatSessionOptions } from './compat-options.js';
import { RequestSessions } from './compat-request.js';
import { holdExpressResponse, installExpressHold } from './hold.js';
import { uncacheable } from '../shared/http.js';

/**
 * The path of a request target as Express routes it (parseurl): an absolute-form target
 * (`GET http://host/path`, which HTTP/1.1 servers must accept and some proxies send) by its path.
 */
function pathOf(target: string): string {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  const rest = authority ? target.slice(authority[0].length) : target;
  return rest.split(/[?#]/)[0] || '/';
}

/** The middleware, with the engine behind it (for `listUserSessions`, events, stats). */
export type CompatMiddleware = RequestHandler & { readonly tether: Tether<Record<string, unknown>> };

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
  installExpressHold();
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    // Mounted twice (or after another session middleware): the first one wins, as in express-session.
    if ((req as { session?: unknown }).session) {
      next();
      return;
    }
    const defaults = cfg.cookieFor(req);
    // Outside the cookie's path the browser never sends it back: express-session gives no session there.
    const pathname = pathOf(req.originalUrl ?? req.url ?? '/');
    if (!pathname.startsWith(defaults.path)) {
      next();
      return;
    }
    RequestSessions.open(cfg, req, res, defaults, next).then(
      (ctl) => {
        // The head waits for the commit; an `end` after a streamed head first writes what changed since.
        holdExpressResponse(res, () => {
          // A 5xx (Express's own error handler keeps what the failed route set): never cached, nor kept
          // with the route's validators. express-session leaves them; the session is stored all the same.
          if (res.statusCode >= 500) uncacheable(res);
          return ctl.finish();
        }, () => ctl.finishLate(), ctl);
        ctl.loaded();
        next();
      },
      (err: unknown) => next(err),
    );
  };
  Object.defineProperty(middleware, 'tether', { value: cfg.tether, enumerable: true });
  return middleware as CompatMiddleware;
}
