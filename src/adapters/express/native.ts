/**
 * The native Express 5 middleware: `req.tether` is the request's Tether session; it is committed
 * before the response's status line goes out.
 * @module
 */
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import type { Tether } from '../../core/engine.js';
import type { Session } from '../../core/session.js';
import { viewOf, holdUntilCommitted, sendError } from '../shared/http.js';

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

/** Express middleware. Errors go to Express's error handlers with `status` and `code` set. */
export function sessions<T extends object>(tether: Tether<T>, options: ExpressAdapterOptions = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    const view = viewOf(req);
    tether.open(view, options.write ? { write: options.write(req) } : {}).then(
      (session) => {
        try {
          const csrf = typeof options.csrf === 'function' ? options.csrf(req) : options.csrf ?? true;
          if (csrf) tether.checkRequest(session, view);
        } catch (err) {
          tether.abandon(session);
          sendError(res, err);
          return;
        }
        req.tether = session as unknown as Session<Record<string, unknown>>;
        holdUntilCommitted(res, () => tether.commit(session));
        // A client that goes away before the response ends must not keep the gate.
        res.once('close', () => tether.abandon(session));
        next();
      },
      (err: unknown) => sendError(res, err),
    );
  };
}

/** The typed session of a request that went through `sessions()`. */
export function sessionOf<T extends object>(req: Request): Session<T> {
  if (!req.tether) throw new Error('tether: sessions() middleware did not run for this request');
  return req.tether as unknown as Session<T>;
}
