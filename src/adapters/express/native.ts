/**
 * The native Express 5 middleware: `req.tether` is the request's Tether session; it is committed
 * before the response's status line goes out.
 * @module
 */
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import type { Tether } from '../../core/engine.js';
import type { Session } from '../../core/session.js';
import { abandonOnEarlyClose, beginSession, sendError } from '../shared/http.js';
import { holdExpressResponse, installExpressHold } from './hold.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The Tether session of this request (set by `sessions()`). */
      tether?: Session<Record<string, unknown>>;
    }
  }
}

export interface ExpressAdapterOptions {
  /** Run the CSRF checks on unsafe methods. @default true */
  csrf?: boolean | ((req: Request) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: Request) => boolean;
}

/**
 * Express middleware. The session is committed before the response's status line goes out; a response
 * with a 5xx status (a handler error, answered by an error handler) writes nothing.
 */
export function sessions<T extends object>(tether: Tether<T>, options: ExpressAdapterOptions = {}): RequestHandler {
  installExpressHold();
  return (req: Request, res: Response, next: NextFunction): void => {
    const start = (session: Session<T> | null): void => {
      if (!session) return;
      req.tether = session as unknown as Session<Record<string, unknown>>;
      holdExpressResponse(res, () => {
        // Express routes a handler's error to its error handlers, out of our sight; what reaches us is
        // the 5xx they answer with. A failed request writes nothing, as in every adapter.
        if (res.statusCode >= 500) {
          tether.abandon(session);
          return [];
        }
        return tether.commitNow(session);
      });
      abandonOnEarlyClose(tether, session, res);
      next();
    };
    const begun = beginSession(tether, req, res, options);
    if (begun instanceof Promise) begun.then(start, (err: unknown) => sendError(res, err));
    else start(begun);
  };
}

/** The typed session of a request that went through `sessions()`. */
export function sessionOf<T extends object>(req: Request): Session<T> {
  if (!req.tether) throw new Error('tether: sessions() middleware did not run for this request');
  return req.tether as unknown as Session<T>;
}
