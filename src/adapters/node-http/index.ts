/**
 * tether/node: sessions for a plain node:http server.
 * @module
 * @example
 * import { createServer } from 'node:http';
 * import { createTether } from 'tether';
 * import { withSessions } from 'tether/node';
 * const tether = createTether({ secrets: [process.env.TETHER_SECRET!] });
 * createServer(withSessions(tether, async (req, res, session) => {
 *   await session.update((d) => { d.visits = (Number(d.visits) || 0) + 1; });
 *   res.end(String(session.data.visits));
 * })).listen(3000);
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Tether } from '../../core/engine.js';
import type { Session } from '../../core/session.js';
import { beginSession, sendError } from '../shared/http.js';
import { holdResponse } from '../shared/hold.js';

export interface NodeAdapterOptions {
  /** Run the CSRF checks on unsafe methods. @default true (when the engine's csrf is not false) */
  csrf?: boolean | ((req: IncomingMessage) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: IncomingMessage) => boolean;
}

export type SessionHandler<T extends object> = (req: IncomingMessage, res: ServerResponse, session: Session<T>) => unknown;

/** Wraps a request handler: loads the session, checks CSRF, runs the handler, commits before responding. */
export function withSessions<T extends object>(tether: Tether<T>, handler: SessionHandler<T>, options: NodeAdapterOptions = {}) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const begun = beginSession(tether, req, res, options);
    const session = begun instanceof Promise ? await begun : begun;
    if (!session) return;
    holdResponse(res, () => tether.commitNow(session));
    try {
      await handler(req, res, session);
    } catch (err) {
      tether.abandon(session);
      sendError(res, err);
    }
  };
}
