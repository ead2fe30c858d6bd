/**
 * The native Express 5 middleware: `req.tether` is the request's Tether session; it is committed
 * before the response's status line goes out.
 * @module
 */
import type { Request, Response, NextFunction, RequestHandler, ErrorRequestHandler } from 'express';
import type { Tether } from '../../core/engine.js';
import { sessionState } from '../../core/session.js';
import type { Session } from '../../core/session.js';
import { isTetherError } from '../../core/errors.js';
import { WITHOUT_SESSION, abandonOnEarlyClose, beginSession, checkCsrfOf, clearFailedAnswer, commitSession, reopenAfterError, sessionModeOf, sendError, uncacheable, viewOf } from '../shared/http.js';
import type { FormSource, SessionMode } from '../shared/http.js';
import { heldOnPrototype } from '../shared/hold.js';
import { holdExpressResponse, installExpressHold } from './hold.js';

/**
 * The shape of `req.tether`'s data, for every route: extend it by declaration merging to type the app's
 * session. Keys not declared stay `unknown`.
 * @example
 * declare module 'tether/express' {
 *   interface TetherSessionData { cart?: string[]; theme?: 'light' | 'dark' }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TetherSessionData extends Record<string, unknown> {}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * The Tether session of this request (set by `sessions()`); absent on a request whose optional
       * session (the `session` option) could not be opened, the store being down: see `optionalSessionOf`.
       */
      tether?: Session<TetherSessionData>;
    }
  }
}

export interface ExpressAdapterOptions {
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean | ((req: Request) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: Request) => boolean;
  /**
   * `'optional'` (for every request, or those the function gives it for): while the store cannot
   * answer (STORE_UNAVAILABLE), the request goes on to its route without a session (`req.tether`
   * absent; read it with `optionalSessionOf(req)`, which gives null) instead of being refused 503, and
   * its answer carries no session cookie, neither set nor cleared: the browser keeps the one it has. An
   * unsafe request whose CSRF checks apply is refused all the same (its token is in the session). A
   * session that opened but whose commit the store cannot take gives the route's answer without its
   * cookie; the change is not stored, and the failure is counted as every store failure is
   * (`storeErrors`, `store_errors_total`). Any other error is answered as before. @default 'required'
   */
  session?: SessionMode | ((req: Request) => SessionMode);
}

/** With `csrf.forms`, the token of a form post comes from `req.body`: its parser runs before `sessions()`. */
const EXPRESS_FORM: FormSource<Request> = {
  body: (req) => (req as { body?: unknown }).body,
  unparsed: (field) => `missing CSRF token: the form body was not parsed when sessions() ran, so its ${field} field could not be read. `
    + 'Register the body parser before sessions(): app.use(express.urlencoded({ extended: false })), then app.use(sessions(tether)); '
    + 'for multipart forms, a multipart parser there too (multer\'s upload.none())',
};

/**
 * Requests whose error reached `sessionErrors()`: their sessions are abandoned when their responses end.
 * Marked rather than abandoned there, so that an error raised after the response was ended, its commit
 * under way, leaves that commit alone (abandoning would release the session's gate before the write).
 */
const FAILED = new WeakSet<Request>();

/** The engine whose session each request's `req.tether` is: a second `sessions()` of that engine passes. */
const ENGINE = new WeakMap<Request, Tether<object>>();

/**
 * Failed requests whose session `sessionErrors()` opened again for the error handlers after it: that
 * session is committed with their answer, whatever its status.
 */
const REOPENED = new WeakMap<Request, { tether: Tether<object>; session: Session<object> }>();

/** The session `sessionErrors()` opened again for the request, if it did so for this engine's. */
function reopenedOf<T extends object>(req: Request, tether: Tether<T>): Session<T> | undefined {
  const entry = REOPENED.get(req);
  return entry !== undefined && entry.tether === (tether as Tether<object>) ? entry.session : undefined;
}

/**
 * Express middleware. The session is committed before the response's status line goes out; a response
 * with a 5xx status (a handler error, answered by an error handler) writes nothing, nor does a request
 * whose error reached `sessionErrors()`, whatever its status.
 *
 * With the engine's `csrf.forms`, a form post without the token header is checked against its
 * `csrf.formField` field in `req.body`: register the body parser before this middleware, or such posts
 * are refused (403 CSRF_TOKEN_INVALID, saying so).
 *
 * Mounted twice with one engine (on the app and again on a router), the first one wins: the request
 * keeps the session it opened, and the second runs only its own CSRF checks (so one with them on, under
 * a mount with them off, is not bypassed). Middlewares of different engines each open their own.
 * @example
 * app.use(express.urlencoded({ extended: false }));
 * app.use(sessions(createTether({ secrets, csrf: { forms: true } })));
 */
export function sessions<T extends object>(tether: Tether<T>, options: ExpressAdapterOptions = {}): RequestHandler {
  installExpressHold();
  const begin = { ...options, form: EXPRESS_FORM };
  const optionalOf = sessionModeOf(options.session, 'tether/express sessions()');
  return (req: Request, res: Response, next: NextFunction): void => {
    // A writer would wait at the gate for its own session, which holds it until the response ends.
    if (req.tether !== undefined && ENGINE.get(req) === tether) {
      // The first mount's session serves the request, but this mount's CSRF checks apply too: a router
      // that has them on is not bypassed by an app-level mount that has them off.
      const session = req.tether as unknown as Session<T>;
      try {
        checkCsrfOf(tether, session, viewOf(req), req, begin);
      } catch (err) {
        // The first mount holds the response: marked failed, it stores nothing of the request.
        FAILED.add(req);
        sendError(res, err, undefined, tether.abandon(session));
        return;
      }
      next();
      return;
    }
    const optional = optionalOf !== null && optionalOf(req);
    const start = (session: Session<T> | null | typeof WITHOUT_SESSION): void => {
      // An optional session the store could not open: the route runs without one, nothing held.
      if (session === WITHOUT_SESSION) {
        next();
        return;
      }
      // Gone before its session opened: no route runs for it (see abandonOnEarlyClose).
      if (!session || !abandonOnEarlyClose(tether, session, res)) return;
      req.tether = session;
      ENGINE.set(req, tether);
      holdExpressResponse(res, () => {
        // Express routes a handler's error to its error handlers, out of our sight; what reaches us is
        // the 5xx they usually answer with, or the mark sessionErrors() left when the app registered it.
        // A failed request writes nothing, as in every adapter.
        // (A cookie that names nothing is expired all the same: see Tether#abandon.)
        if (res.statusCode >= 500 || FAILED.has(req)) {
          // An error's answer, whoever made it (Express's final handler keeps the route's headers): not
          // cached, nor kept with the failed route's validators.
          uncacheable(res);
          const again = reopenedOf(req, tether);
          if (again === undefined) return tether.abandon(session);
          return commitSession(tether, again, optional);
        }
        return commitSession(tether, session, optional);
      }, undefined, { get clearSiteData() { return (reopenedOf(req, tether) ?? session).clearSiteData; } });
      next();
    };
    const begun = beginSession(tether, req, res, begin, optional);
    if (begun instanceof Promise) begun.then(start, (err: unknown) => sendError(res, err));
    else start(begun);
  };
}

export interface SessionErrorsOptions {
  /**
   * Answer a TetherError with its status and `{"error":{"code","message"}}`, as tether/node does; false
   * passes it on like any other error, for an app whose own error handler answers TetherErrors.
   * @default true
   */
  answer?: boolean;
}

/**
 * Error-handling middleware, registered after the routes (and before the app's own error handlers): a
 * request whose error reaches Express's error handling writes none of its session's changes, whatever
 * status the error is answered with. Without it only a 5xx answer drops them, so an error answered with
 * a 4xx (a `409`, say) would commit what the handler had changed before it failed. An error raised
 * after the handler had ended its response changes nothing: that response and its session stand. One
 * raised after it began its response (a `write`) closes the connection, as Express does once the head is out.
 *
 * A TetherError (a flow's `FLOW_STEP_OUT_OF_ORDER`, a `SESSION_CONFLICT`) is answered here, in
 * Tether's shape, unless `answer` is false or the response's head is out; every other error goes on to
 * the next error handler (the app's, or Express's own) as before.
 * @example
 * app.use(sessions(tether));
 * app.post('/orders', placeOrder);
 * app.use(sessionErrors());
 */
export function sessionErrors(options: SessionErrorsOptions = {}): ErrorRequestHandler {
  const answer = options.answer ?? true;
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (req.tether !== undefined) FAILED.add(req);
    const held = heldOnPrototype(res);
    if (held !== undefined && held.begun && !held.ended) {
      // Begun (a write), not ended, its head held for the commit that write began: what was written
      // cannot become an error answer; it goes out once committed, then the connection is closed.
      held.abort();
      next(err);
      return;
    }
    // A response begun, held for its commit or not, reads headersSent: it is not answered again.
    if (answer && isTetherError(err) && !res.headersSent) {
      sendError(res, err);
      return;
    }
    // The app's error handlers answer over what the failed route had set: its cookies, a Location, and
    // how caches may keep its answer, which would make the error cacheable. Cleared, as tether/node clears them.
    clearFailedAnswer(res);
    const reopening = reopen(req, res);
    if (reopening === undefined) next(err);
    else void reopening.then(() => next(err));
  };
}

/**
 * Drops the failed request's session changes now and opens its session again, as it was before the
 * request, for the error handlers after `sessionErrors()`: what they change (a flash message before
 * redirecting back to a form) is stored with their answer, as tether/fastify and tether/hono store
 * their error handler's. Without it, a change there went unstored without a word. The session stays
 * abandoned, its changes throwing SESSION_COMMITTED, when it cannot be opened (the store down, the
 * session busy) or the client has gone. Returns a promise when the opening has to wait.
 */
function reopen(req: Request, res: Response): Promise<void> | undefined {
  const tether = ENGINE.get(req);
  const session = req.tether;
  if (tether === undefined || session === undefined || REOPENED.has(req) || res.headersSent) return undefined;
  // The same kind of session as before: a writer again if it took the gate.
  const writer = sessionState(session).release !== null;
  const again = reopenAfterError(tether, session, viewOf(req), { write: writer }, (s) => abandonOnEarlyClose(tether, s, res));
  const use = (s: Session<object> | null): void => {
    if (s === null) return;
    REOPENED.set(req, { tether, session: s });
    req.tether = s;
  };
  if (again instanceof Promise) return again.then(use);
  use(again);
  return undefined;
}

/**
 * Tether's CSRF checks as a route's middleware, for a route whose body a parser of its own reads after
 * `sessions()` (multer on an upload route): skip that route in `sessions()` (its `csrf` option) and
 * mount this after the route's parser, before its handler. A form post's token is read from `req.body`
 * (`csrf.forms`), other requests are checked as `sessions()` checks them; a refusal goes to Express's
 * error handling, which `sessionErrors()` answers with the error's status and code.
 * @example
 * const isUpload = (req: Request) => req.path === '/avatar';
 * app.use(sessions(tether, { csrf: (req) => !isUpload(req) }));
 * app.post('/avatar', upload.single('avatar'), csrfCheck(tether), (req, res) => { … });
 * app.use(sessionErrors());
 */
export function csrfCheck<T extends object>(tether: Tether<T>): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction): void => {
    try {
      const body = (req as { body?: unknown }).body;
      tether.checkRequest(sessionOf<T>(req), viewOf(req), typeof body === 'object' && body !== null ? body : undefined);
    } catch (err) {
      next(err);
      return;
    }
    next();
  };
}

/** The typed session of a request that went through `sessions()`. */
export function sessionOf<T extends object = TetherSessionData>(req: Request): Session<T> {
  if (!req.tether) throw new Error('tether: sessions() middleware did not run for this request');
  return req.tether as unknown as Session<T>;
}

/**
 * The typed session of a request whose session is optional (`sessions()`'s `session` option), null when
 * it could not be opened: the store is down, and the route answers without it.
 * @example
 * app.use(sessions(tether, { session: (req) => (req.method === 'GET' && req.path.startsWith('/api/products/') ? 'optional' : 'required') }));
 * app.get('/api/products/:id', (req, res) => {
 *   const s = optionalSessionOf<{ seen?: string[] }>(req);
 *   if (s !== null) s.set('seen', [req.params.id, ...(s.get('seen') ?? [])].slice(0, 5));
 *   res.json(product(req.params.id));
 * });
 */
export function optionalSessionOf<T extends object = TetherSessionData>(req: Request): Session<T> | null {
  return (req.tether as unknown as Session<T> | undefined) ?? null;
}
