/**
 * The shop's live channel: a WebSocket at /api/live that a signed-in page keeps open, so the page learns
 * at once that its session ended (a logout in another tab, "log out everywhere" from another device,
 * the account disabled or deleted, a timeout) and says so, instead of failing at the next click.
 *
 * The browser sends nothing on it; the server sends `{"type":"hello"}` once, then `{"type":"ended",
 * "reason"}` and closes with 4001 when the session ends. An end in this process reaches the socket at
 * once; one in another worker or node through the store's change feed, a timeout at the session's
 * deadline, and anything else at the socket's next check (`checkIntervalMs`). A ping every
 * `heartbeatMs` drops connections whose other end vanished without a close.
 * @module
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { RateLimitedError } from 'tether';
import type { Tether } from 'tether';
import { openSocket, refuseUpgrade } from 'tether/node';

export const LIVE_PATH = '/api/live';
/** The close code for a session that ended (the 4000s are the application's). */
export const SESSION_ENDED_CLOSE = 4001;

export interface LiveOptions {
  /** Open live sockets per process, at most; a handshake past it is refused 503. */
  maxSockets: number;
  /** How often each socket's session is read again, for an end in another process. */
  checkIntervalMs: number;
  heartbeatMs: number;
  /**
   * A handshake carried a forged session cookie (ID guessing, SECURITY.md S34): counts it for the
   * client, as the shop counts such requests; false once the client is over its limit (429).
   */
  forgedAllowed(req: IncomingMessage): Promise<boolean>;
  /** Headers every answer of the shop carries (X-Tether-Node, nosniff…), a refused handshake's too. */
  headers?: ReadonlyArray<readonly [string, string]>;
  /** Logs a refused or failed handshake (no headers, no cookie). */
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface Live {
  /** Open live sockets in this process. */
  readonly count: number;
  /** Closes every socket (1001, going away) and stops accepting; resolves once they are gone. */
  close(): Promise<void>;
}

export function attachLive<T extends object>(server: Server, tether: Tether<T>, options: LiveOptions): Live {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 256, perMessageDeflate: false });
  const alive = new WeakSet<WebSocket>();
  let closing = false;
  const headers = { headers: Object.fromEntries(options.headers ?? []) };

  /** refuseUpgrade's answer (its status, error body and Retry-After), with the shop's own headers. */
  function refuse(socket: Duplex, reason: unknown): void {
    refuseUpgrade(socket, reason, headers);
  }

  // A handshake that fails where nothing above catches it is refused as an internal error, never left
  // as an unhandled rejection.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head).catch((err: unknown) => refuse(socket, err));
  });

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (closing) return refuse(socket, 503);
    if ((req.url ?? '').split('?')[0] !== LIVE_PATH) return refuse(socket, 404);
    // Handshakes still reading their session count too: their reads overlap on a slow store, and each
    // joins wss.clients only at handleUpgrade, so the check alone would let all of them through.
    if (wss.clients.size + opening >= options.maxSockets) return refuse(socket, 503);
    opening++;
    try {
      await admit(req, socket, head);
    } finally {
      opening--;
    }
  }

  /** Handshakes past the cap check that have not yet joined wss.clients (or been refused). */
  let opening = 0;

  async function admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let live;
    try {
      live = await openSocket(tether, req, { checkIntervalMs: options.checkIntervalMs });
    } catch (err) {
      options.warn({ event: 'live.refused', code: (err as { code?: string }).code ?? 'INTERNAL_ERROR' }, 'a live-channel handshake was refused');
      return refuse(socket, err);
    }
    if (live.rejectedCookie === 'forged' && !(await options.forgedAllowed(req))) {
      live.close();
      return refuse(socket, new RateLimitedError('too many requests with an invalid session cookie from this address; slow down'));
    }
    if (live.userId === null) return refuse(socket, 401);
    const session = live;
    if (closing || socket.destroyed) {
      session.close();
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
      ws.on('close', () => session.close());
      ws.on('error', () => ws.terminate());
      // Nothing is expected from the page; what comes is activity all the same.
      ws.on('message', () => void session.touch().catch(() => {}));
      session.onEnd((reason) => {
        ws.send(JSON.stringify({ type: 'ended', reason }));
        ws.close(SESSION_ENDED_CLOSE, reason);
      });
      ws.send(JSON.stringify({ type: 'hello' }));
    });
  }

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, options.heartbeatMs);
  heartbeat.unref();

  return {
    get count() {
      return wss.clients.size;
    },
    async close() {
      closing = true;
      clearInterval(heartbeat);
      const gone = [...wss.clients].map((ws) => new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1001, 'server shutting down');
        // A client that does not answer the close is cut off.
        setTimeout(() => ws.terminate(), 1_000).unref();
      }));
      await Promise.all(gone);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
