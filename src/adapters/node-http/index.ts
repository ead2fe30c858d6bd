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
 * @example
 * // Routes whose session is optional (the `session` option) are served while the store is down,
 * // without a session: the handler's `session` is then null.
 * createServer(withSessions(tether, async (req, res, session) => {
 *   if (session !== null) session.set('lastPage', req.url);
 *   res.end('a page that needs no session');
 * }, { session: (req) => (req.method === 'GET' ? 'optional' : 'required') })).listen(3000);
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Tether } from '../../core/engine.js';
import type { Session } from '../../core/session.js';
import type { SocketOptions, SocketSession } from '../../core/socket.js';
import { CACHE_HEADERS, HandshakeView, WITHOUT_SESSION, abandonOnEarlyClose, beginSession, commitSession, errorResponse, sessionModeOf, sendError, viewOf } from '../shared/http.js';
import type { FormSource, SessionMode } from '../shared/http.js';
import { holdResponse } from '../shared/hold.js';

export interface NodeAdapterOptions {
  /**
   * Run the CSRF checks on unsafe methods. @default true (when the engine's csrf is not false)
   *
   * The adapter reads no body: with `csrf.forms`, a form post whose token is only in its form field is
   * refused (403 CSRF_TOKEN_INVALID). A route that takes HTML forms skips the check here and its handler
   * calls `checkFormPost` with the parsed body, before it changes anything.
   */
  csrf?: boolean | ((req: IncomingMessage) => boolean);
  /** Whether a request may write the session (and so waits at the gate). @default unsafe methods */
  write?: (req: IncomingMessage) => boolean;
  /**
   * `'optional'` (for every request, or those the function gives it for): while the store cannot
   * answer (STORE_UNAVAILABLE), the handler runs with `session` null instead of the request being
   * refused 503, and its answer carries no session cookie, neither set nor cleared: the browser keeps
   * the one it has. An unsafe request whose CSRF checks apply is refused all the same (its token is in
   * the session). A session that opened but whose commit the store cannot take gives the handler's
   * answer without its cookie; the change is not stored, and the failure is counted as every store
   * failure is (`storeErrors`, `store_errors_total`). Any other error is answered as before.
   * With it, the handler's `session` is typed `Session<T> | null`. @default 'required'
   */
  session?: SessionMode | ((req: IncomingMessage) => SessionMode);
  /**
   * Told of every error the handler throws or rejects with, whether it had answered yet or not. An error
   * before the handler ended its response is also answered as a JSON error, and the session's changes
   * are dropped; after it, the response and the session's commit go on as the handler left them.
   * @default console.error of the error
   */
  onError?: (err: unknown, req: IncomingMessage) => void;
}

export type SessionHandler<T extends object> = (req: IncomingMessage, res: ServerResponse, session: Session<T>) => unknown;
/**
 * The handler's session under `options`: `Session<T> | null` when its `session` option may make it
 * optional (`'optional'`, or a function), `Session<T>` otherwise.
 */
export type SessionUnder<T extends object, O> = O extends { session: 'required' } ? Session<T> : O extends { session: unknown } ? Session<T> | null : Session<T>;

/** Where a handler's errors go unless `onError` is given: stderr, as Express's and Hono's defaults do. */
function logError(err: unknown): void {
  console.error(err);
}

/** The adapter reads no body: a form post whose token is only in its field is refused, saying what to do. */
const NO_BODY: FormSource<IncomingMessage> = {
  body: () => undefined,
  unparsed: (field, header) => `missing CSRF token: tether/node reads no request body, so the ${field} field of a form post cannot be checked here. `
    + `Send the token in the ${header} header, or skip this route's check (the csrf option) and call checkFormPost() once the handler has parsed the body`,
};

/**
 * Wraps a request handler: loads the session, checks CSRF, runs the handler, commits before responding.
 * With the `session` option, the handler's session is null where an optional one could not be opened.
 */
export function withSessions<T extends object, O extends NodeAdapterOptions = NodeAdapterOptions>(
  tether: Tether<T>, handler: (req: IncomingMessage, res: ServerResponse, session: SessionUnder<T, O>) => unknown, options: O = {} as O,
): (req: IncomingMessage, res: ServerResponse) => void {
  const run = handler as (req: IncomingMessage, res: ServerResponse, session: Session<T> | null) => unknown;
  const onError = options.onError ?? logError;
  const begin = { ...options, form: NO_BODY };
  const optionalOf = sessionModeOf(options.session, 'tether/node withSessions()');
  // Told last, and a reporter that throws is ignored: the answer and the gate come first.
  const report = (err: unknown, req: IncomingMessage): void => {
    try {
      onError(err, req);
    } catch {
      // Nothing to do: the error was answered.
    }
  };
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const optional = optionalOf !== null && optionalOf(req);
    const begun = beginSession(tether, req, res, begin, optional);
    const session = begun instanceof Promise ? await begun : begun;
    if (session === WITHOUT_SESSION) {
      await serveWithout(req, res);
      return;
    }
    if (!session || !abandonOnEarlyClose(tether, session, res)) return;
    const held = holdResponse(res, () => commitSession(tether, session, optional), undefined, session);
    try {
      await run(req, res, session);
    } catch (err) {
      // A handler that ended its response has answered, and its session's commit began with that
      // answer: the error neither replaces the response nor stops the commit. Its `end` may still be
      // held for the commit (its head not out yet).
      if (held.ended || res.writableEnded) {
        // Answered: see above.
      } else if (held.begun) {
        // Begun, not ended: the error cannot replace what was written, and the commit that the first
        // write began goes on; once it settles, what was written goes out and the connection is
        // closed, as when a head is out.
        held.abort();
      } else {
        tether.abandon(session);
        sendError(res, err);
      }
      report(err, req);
    }
  };
  /** An optional session's request while the store is down: the handler, without a session or a hold. */
  const serveWithout = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      await run(req, res, null);
    } catch (err) {
      if (!res.headersSent) sendError(res, err);
      else if (!res.writableEnded) res.destroy();
      report(err, req);
    }
  };
  // A listener for http.createServer, which ignores what it returns: a failure past the error answer
  // above (one that cannot be answered) ends the connection, never the process by an unhandled rejection.
  return (req, res) => {
    serve(req, res).catch((err: unknown) => {
      res.destroy();
      report(err, req);
    });
  };
}

/**
 * The CSRF checks of a request whose body the handler has parsed, for a route whose check `withSessions`
 * skipped (its `csrf` option): the same checks, with the token read from `fields[csrf.formField]` when
 * the request is a form post without the token header (`csrf.forms`). Call it before the handler changes
 * anything; it throws ORIGIN_MISMATCH, UNSUPPORTED_MEDIA_TYPE or CSRF_TOKEN_INVALID, which `withSessions`
 * answers as JSON (thrown before the response), dropping the session's changes. `fields` is the parsed
 * body, a field sent twice as an array (which is refused).
 * @example
 * const forms = new Set(['/comment']);
 * createServer(withSessions(tether, async (req, res, session) => {
 *   if (forms.has(req.url!)) {
 *     const fields = await parseForm(req); // the app's urlencoded or multipart parser
 *     checkFormPost(tether, session, req, fields);
 *     // …
 *   }
 * }, { csrf: (req) => !forms.has(req.url!) }));
 */
export function checkFormPost<T extends object>(tether: Tether<T>, session: Session<T>, req: IncomingMessage, fields: object): void {
  tether.checkRequest(session, viewOf(req), fields);
}

/**
 * The session of a WebSocket handshake (the server's `upgrade` event): `tether.openSocket()` for a
 * node:http request. Rejects with ORIGIN_MISMATCH (403) for a handshake from another origin or site,
 * STORE_UNAVAILABLE (503) when the store cannot answer: answer those with `refuseUpgrade`. For a
 * handshake (a request with an Upgrade header) the session is closed when its connection closes: a
 * refused handshake's at once, an accepted one's with the WebSocket, so a session the app refuses
 * (anonymous, say) or forgets to close is not watched on. Calling `close()` as well does no harm.
 * @example
 * import { WebSocketServer } from 'ws';
 * const wss = new WebSocketServer({ noServer: true });
 * server.on('upgrade', (req, socket, head) => {
 *   openSocket(tether, req).then((live) => {
 *     if (live.userId === null) return refuseUpgrade(socket, 401);
 *     wss.handleUpgrade(req, socket, head, (ws) => {
 *       live.onEnd(() => ws.close(4001, 'session ended'));
 *       ws.on('message', () => void live.touch().catch(() => ws.close(1011)));
 *       ws.on('close', () => live.close());
 *     });
 *   }).catch((err: unknown) => refuseUpgrade(socket, err));
 * });
 */
export function openSocket<T extends object>(tether: Tether<T>, req: IncomingMessage, options?: SocketOptions): Promise<SocketSession<T>> {
  const connection = req.socket;
  guardUpgraded(connection);
  const opened = tether.openSocket(new HandshakeView(req), options);
  // Not for a plain request (socket.io's long polling): its connection is not the socket's.
  if (req.headers.upgrade === undefined) return opened;
  return opened.then((live) => {
    if (connection.destroyed) live.close();
    else connection.once('close', () => live.close());
    return live;
  });
}

/**
 * node:http takes its error listener off a socket it hands to `upgrade`: a client that resets the
 * connection while the handshake is read or answered would end the process on an unhandled 'error'.
 * Kept on: the WebSocket library's own listeners come and go, this one only ends the connection.
 */
function guardUpgraded(socket: Duplex): void {
  if (!socket.listeners('error').includes(endOnError)) socket.on('error', endOnError);
}

function endOnError(this: Duplex): void {
  this.destroy();
}

export interface RefuseUpgradeOptions {
  /**
   * Headers the answer carries besides its own (those every response of the app carries: a node's
   * name, `X-Content-Type-Options`…). Names and values are checked as Node checks a response's
   * (`ERR_INVALID_HTTP_TOKEN`, `ERR_INVALID_CHAR`: no line break can get in); one the answer sets itself
   * (Content-Type, Content-Length, Cache-Control, Retry-After, Connection) is left out, and so is one that
   * would let a cache keep or revalidate the refusal (an ETag, Expires, CDN-Cache-Control: CACHE_HEADERS).
   */
  headers?: Readonly<Record<string, string>>;
}

/** The headers a refused handshake's answer sets itself, which `headers` cannot replace. */
const REFUSAL_HEADERS = new Set(['content-type', 'content-length', 'cache-control', 'retry-after', 'connection']);

/**
 * Answers a handshake that will not be upgraded and closes its connection: a Tether error with its
 * status and `{"error":{"code","message"}}` (any other error as 500 INTERNAL_ERROR), or a bare status
 * (401: no session; 403: not allowed) with the status's own code.
 */
export function refuseUpgrade(socket: Duplex, reason: unknown, options: RefuseUpgradeOptions = {}): void {
  const extra: string[] = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    const lower = name.toLowerCase();
    if (!REFUSAL_HEADERS.has(lower) && !CACHE_HEADERS.has(lower)) extra.push(`${name}: ${value}`);
  }
  // Refused without openSocket first (a wrong path): a client gone meanwhile must not crash the write.
  guardUpgraded(socket);
  let status: number;
  let body: { error: { code: string; message: string } };
  let retryAfter: string | undefined;
  if (typeof reason === 'number') {
    status = reason;
    const text = STATUS_CODES[status] ?? 'Error';
    body = { error: { code: text.toUpperCase().replace(/[^A-Z0-9]+/g, '_'), message: text } };
  } else {
    ({ status, body, retryAfter } = errorResponse(reason));
  }
  const json = JSON.stringify(body);
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    'Cache-Control: no-store',
    `Content-Length: ${Buffer.byteLength(json)}`,
    ...(retryAfter !== undefined ? [`Retry-After: ${retryAfter}`] : []),
    ...extra,
    'Connection: close',
  ];
  if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${json}`);
  else socket.destroy();
}
