import type { IncomingMessage, ServerResponse } from 'node:http';
import { isTetherError, type RequestView, type Session, type Tether } from 'tether';

/** A handler sets its status and headers on `res` and returns the body; the adapter ends the response. */
export type Handler<T extends object> = (req: IncomingMessage, res: ServerResponse, session: Session<T>) => Promise<string>;

/**
 * Answers `{"error":{"code","message"}}` with the error's status, in place of whatever the handler set,
 * with the Set-Cookie values an abandoned session still sends (the expiry of a forged cookie).
 */
function answerError(res: ServerResponse, err: unknown, cookies: readonly string[] = []): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  const known = isTetherError(err);
  // When to try again, where the error says: a limit's window, a second for a store outage.
  const wait = known ? err.retryAfterSec : undefined;
  res.writeHead(known ? err.status : 500, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(wait === undefined ? {} : { 'retry-after': String(wait) }),
  });
  res.end(JSON.stringify({ error: known ? { code: err.code, message: err.message } : { code: 'INTERNAL_ERROR', message: 'internal server error' } }));
}

export interface AdapterOptions {
  /** Whether a request is checked for CSRF (webhooks and other cross-site posts are not). @default every request */
  csrf?: (req: IncomingMessage) => boolean;
}

export function sessionsFor<T extends object>(tether: Tether<T>, handler: Handler<T>, options: AdapterOptions = {}) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const view: RequestView = {
      method: req.method ?? 'GET',
      header: (name) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v.join(', ') : v;
      },
      address: () => req.socket.remoteAddress, // behind a proxy: the address it forwards
    };
    let session: Session<T>;
    try {
      session = await tether.open(view); // 1. load; a writer waits its turn at the session's gate
    } catch (err) {
      answerError(res, err); // the store is down: 503 STORE_UNAVAILABLE
      return;
    }
    // 2. A client that left while the request waited gets nothing run for it; one that leaves later
    //    gives its turn back (a no-op once the commit has begun).
    if (res.closed) {
      tether.abandon(session);
      return;
    }
    res.once('close', () => tether.abandon(session));
    let body: string;
    try {
      // 3. CSRF on unsafe methods: Fetch Metadata, Origin, content type, token
      if (options.csrf?.(req) ?? true) tether.checkRequest(session, view);
      body = await handler(req, res, session); // 4. the app
    } catch (err) {
      answerError(res, err, tether.abandon(session)); // a failed request writes nothing
      return;
    }
    let cookies: string[];
    try {
      cookies = await tether.commit(session); // 5. store the changes, before the head goes out
    } catch (err) {
      answerError(res, err); // 409 SESSION_CONFLICT, 503 STORE_UNAVAILABLE, 413 SESSION_TOO_LARGE
      return;
    }
    if (cookies.length > 0) res.appendHeader('set-cookie', cookies);
    // A request that ended its session, under the clearSiteData option: the browser drops the site's data too.
    if (session.clearSiteData !== null) res.setHeader('clear-site-data', session.clearSiteData);
    if (cookies.length > 0 || session.clearSiteData !== null) res.setHeader('cache-control', 'no-store');
    res.end(body);
  };
}
