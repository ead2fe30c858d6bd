/**
 * The worker side of the cluster: takes the connections the primary hands over (re-injecting the bytes
 * the primary already read), sends the routing cookie beside each session cookie its responses set (so
 * the primary keeps that session's next connections here, whatever its ID becomes), answers the health
 * path with 503 while draining, and drains on request:
 * stop taking connections, close each one after its response, wait for in-flight requests, close the
 * app (stores), exit.
 * @module
 */
import { ServerResponse } from 'node:http';
import type { Server, IncomingMessage, OutgoingHttpHeader } from 'node:http';
import type { Socket } from 'node:net';
import { isMessage } from './messages.js';
import type { ConnectionMessage, DrainMessage, PingMessage, WorkerMessage } from './messages.js';
import { resolveWorkerOptions } from './options.js';
import type { WorkerOptions } from './options.js';
import { routeCookieName } from './routing.js';

/** How often a draining worker closes connections that went idle and checks whether it is done. */
const DRAIN_POLL_MS = 25;
/** After draining on its own (SIGTERM), how long a worker still takes handoffs the primary sent before it heard. */
const SELF_DRAIN_GRACE_MS = 200;
/** Bound on the app's own close (stores) during drain. */
const APP_CLOSE_TIMEOUT_MS = 3_000;

export interface WorkerHandle {
  /** 'serving', 'draining' (health path says 503, connections close after each response), 'stopping', 'stopped'. */
  readonly state: 'serving' | 'draining' | 'stopping' | 'stopped';
  /** Connections currently held. */
  readonly connections: number;
  /** Drains and resolves once in-flight requests finished and the app closed (then exits, unless told not to). */
  stop(): Promise<void>;
}

type Emit = (this: Server, event: string | symbol, ...args: unknown[]) => boolean;

/** This worker's name as the primary gave it (`<node>:w<slot>`), or `pid<pid>` in a worker runCluster did not start. */
export function workerName(): string {
  return process.env.TETHER_NODE_NAME ?? `pid${process.pid}`;
}

function send(msg: WorkerMessage): void {
  if (process.connected && process.send) process.send(msg, undefined, {}, () => { /* primary gone: nothing to tell */ });
}

/**
 * Makes `server` (an http.Server that is not listening) serve the connections the cluster primary hands
 * to this process, and tells the primary it is ready. Call once per worker, after the app is built.
 * @example
 * const { server, close } = await buildApp();
 * acceptHandoff(server, { close });
 */
export function acceptHandoff(server: Server, options: WorkerOptions = {}): WorkerHandle {
  const o = resolveWorkerOptions(options);
  if (typeof process.send !== 'function') {
    throw new Error('acceptHandoff runs in a cluster worker (a process started by runCluster), not in a standalone process');
  }
  const sockets = new Set<Socket>();
  let state: WorkerHandle['state'] = 'serving';
  let stopping: Promise<void> | null = null;
  const node = workerName();

  // Node's HTTP server sets up its connection list (headers/request timeouts, closeIdleConnections) on
  // 'listening'. This server never listens itself, so it is told it does.
  if (!server.listening) server.emit('listening');

  const routing = routingOf();
  if (routing !== null) routeWithSession(server, routing);
  const originalEmit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  (server as { emit: Emit }).emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request' && state !== 'serving') {
      const req = args[0] as IncomingMessage;
      const res = args[1] as ServerResponse;
      res.setHeader('connection', 'close');
      if (healthRequest(req, o.healthPath)) {
        res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-tether-node': node, 'retry-after': '1' });
        res.end(JSON.stringify({ status: 'draining', node, pid: process.pid }));
        return true;
      }
    }
    return originalEmit(event, ...args);
  };

  const accept = (socket: Socket, head: Buffer): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // The HTTP server's timeout handling calls socket.server.emit(); a socket from another process has none.
    // (Not `_server`: that one makes the socket count itself out of the server's connections on close.)
    const s = socket as Socket & { server: unknown };
    s.server ??= server;
    if (head.length > 0) socket.unshift(head);
    server.emit('connection', socket);
    socket.resume();
  };

  const stop = (): Promise<void> => {
    stopping ??= drain();
    return stopping;
  };

  /**
   * Makes the responses in flight close their connections once sent, as those of requests that come
   * during the drain do (`Connection: close`): answered `keep-alive`, their clients would send their next
   * request on a connection the drain closes as soon as it is idle, and meet a reset.
   */
  const closeAfterInFlight = (): void => {
    for (const socket of sockets) {
      // The response a connection is answering, which Node keeps on the socket.
      const res = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
      if (res instanceof ServerResponse) res.shouldKeepAlive = false;
    }
  };

  const drain = async (): Promise<void> => {
    state = 'stopping';
    closeAfterInFlight();
    server.close(() => { /* never listened: the callback only reports that */ });
    // What the drain cannot wait for (WebSockets) is the app's to end: told now, it ends them while
    // the requests in flight finish.
    if (o.drain) void Promise.resolve().then(o.drain).catch((err: unknown) => o.log('error', 'the app\'s drain failed', { node, error: String(err) }));
    // Let handoffs and bytes already delivered reach the parser before idle connections are closed.
    await new Promise((r) => setImmediate(r));
    const deadline = Date.now() + o.drainTimeoutMs;
    while (sockets.size > 0 && Date.now() < deadline) {
      server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    }
    if (sockets.size > 0) {
      o.log('warn', 'drain deadline passed; closing the remaining connections', { node, open: sockets.size });
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }
    if (o.close) {
      await Promise.race([
        Promise.resolve().then(o.close).catch((err: unknown) => o.log('error', 'closing the app failed', { node, error: String(err) })),
        new Promise((r) => setTimeout(r, APP_CLOSE_TIMEOUT_MS).unref()),
      ]);
    }
    state = 'stopped';
    if (o.exitAfterDrain) process.exit(0);
  };

  const onMessage = (msg: unknown, handle: unknown): void => {
    if (isMessage<ConnectionMessage>(msg, 'tether:connection')) {
      const socket = handle as Socket | undefined;
      if (!socket) return;
      accept(socket, Buffer.from(typeof msg.head === 'string' ? msg.head : '', 'base64'));
    } else if (isMessage<DrainMessage>(msg, 'tether:drain')) {
      if (msg.phase === 'prepare' && state === 'serving') {
        state = 'draining';
        closeAfterInFlight();
      } else if (msg.phase === 'stop') {
        void stop();
      }
    } else if (isMessage<PingMessage>(msg, 'tether:ping')) {
      send({ type: 'tether:pong', n: msg.n });
    }
  };
  process.on('message', onMessage);

  const selfDrain = (): void => {
    if (state === 'stopping' || state === 'stopped') return;
    state = 'draining';
    closeAfterInFlight();
    send({ type: 'tether:draining' });
    setTimeout(() => void stop(), SELF_DRAIN_GRACE_MS);
  };
  // SIGTERM to this worker alone: drain it (the primary replaces it). SIGINT reaches the whole process
  // group from a terminal; the primary coordinates that shutdown, so workers ignore it.
  process.on('SIGTERM', selfDrain);
  process.on('SIGINT', () => {});
  // The primary died: nothing will route here any more.
  process.once('disconnect', () => void stop());

  send({ type: 'tether:ready' });
  return {
    get state() { return state; },
    get connections() { return sockets.size; },
    stop,
  };
}

function healthRequest(req: IncomingMessage, path: string): boolean {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)) === path;
}

/** The session cookie's name and this worker's routing cookie, as the primary that started it gave them. */
interface Routing {
  /** `<session cookie name>=`: how a Set-Cookie value of the session cookie starts. */
  session: string;
  /** `<routing cookie name>=<slot>`. */
  route: string;
  /** `<routing cookie name>=`, expiring it. */
  clear: string;
}

/** Null in a worker runCluster did not start, which no primary routes by cookie. */
function routingOf(): Routing | null {
  const name = process.env.TETHER_SESSION_COOKIE;
  const slot = process.env.TETHER_WORKER_SLOT;
  if (!name || !slot || !/^[1-9]\d{0,3}$/.test(slot)) return null;
  return routingFor(name, Number(slot));
}

function routingFor(sessionCookie: string, slot: number): Routing {
  const route = routeCookieName(sessionCookie);
  return { session: `${sessionCookie}=`, route: `${route}=${slot}`, clear: `${route}=` };
}

/**
 * Makes `server`'s responses that set the `sessionCookie` cookie also set the routing cookie naming
 * worker `slot` (see routeWithSession). `acceptHandoff` does so in every worker runCluster starts.
 */
export function sendRouteCookie(server: Server, sessionCookie: string, slot: number): void {
  routeWithSession(server, routingFor(sessionCookie, slot));
}

/** The servers whose responses send the routing cookie beside the session cookie, and how. */
const ROUTED = new WeakMap<object, Routing>();

type StoreHeader = (this: ServerResponse, firstLine: string, headers: unknown) => unknown;

/**
 * Makes `server`'s responses send the routing cookie beside the session cookie, when they set that: with
 * the same attributes (Path, Domain, Secure, SameSite, a persistent cookie's Max-Age), so that the two
 * live and die together, naming this worker; expired when the session cookie is.
 *
 * Done in Node's `_storeHeader`, which every response's head goes through once it is final (whether the
 * app used `setHeader` or passed headers to `writeHead`, as Fastify and @hono/node-server do), after any
 * hold of the head for the session's commit, which adds the session cookie. Defined once on
 * ServerResponse.prototype, not on each response: a property of its own on every response costs each
 * Express request many microseconds (Express swaps the response's prototype), and would stand in front
 * of the methods an adapter defines on that prototype.
 */
function routeWithSession(server: Server, routing: Routing): void {
  ROUTED.set(server, routing);
  const proto = ServerResponse.prototype as unknown as { _storeHeader?: StoreHeader };
  const store = proto._storeHeader;
  if (typeof store !== 'function' || ROUTING_STORE_HEADER.has(store)) return;
  const routed: StoreHeader = function (this: ServerResponse, firstLine: string, headers: unknown) {
    const server = ((this.req as IncomingMessage | undefined)?.socket as { server?: object } | undefined)?.server;
    const r = server === undefined ? undefined : ROUTED.get(server);
    return Reflect.apply(store, this, [firstLine, r === undefined ? headers : addRoute(this, headers, r)]);
  };
  ROUTING_STORE_HEADER.add(routed);
  proto._storeHeader = routed;
}

/** `_storeHeader`s defined here, so a second `acceptHandoff` in the process defines none again. */
const ROUTING_STORE_HEADER = new WeakSet<StoreHeader>();

/**
 * The headers of a head about to be stored, with the routing cookie added when they set the session
 * cookie. Node passes the response's own headers (when any was set with `setHeader`, those given to
 * `writeHead` merged into them), changed here through `setHeader`; or else the object or name/value list
 * given to `writeHead`, copied here with the cookie added.
 */
function addRoute(res: ServerResponse, headers: unknown, routing: Routing): unknown {
  // A Set-Cookie of the response's own: Node stores those (writeHead's merged in), so `headers` are they.
  const own = res.getHeader('set-cookie');
  if (own !== undefined) {
    const cookie = routeFor(own, routing);
    if (cookie !== null) res.setHeader('set-cookie', [...(Array.isArray(own) ? own : [String(own)]), cookie]);
    return headers;
  }
  // Else `headers` are what writeHead was given, or the response's own, which then hold no Set-Cookie.
  if (Array.isArray(headers)) {
    const i = lastSessionPair(headers, routing);
    if (i === -1) return headers;
    const copy = headers.slice();
    copy[i + 1] = withRoute(copy[i + 1] as OutgoingHttpHeader, routing);
    return copy;
  }
  if (typeof headers !== 'object' || headers === null) return headers;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'set-cookie');
  if (key === undefined) return headers;
  const values = (headers as Record<string, unknown>)[key] as OutgoingHttpHeader;
  return routeFor(values, routing) === null ? headers : { ...headers, [key]: withRoute(values, routing) };
}

/** The index of the last `set-cookie` name in a flat name/value list whose value holds the session cookie, or -1. */
function lastSessionPair(list: unknown[], routing: Routing): number {
  for (let i = list.length - 2; i >= 0; i -= 2) {
    if (typeof list[i] === 'string' && (list[i] as string).toLowerCase() === 'set-cookie' && routeFor(list[i + 1] as OutgoingHttpHeader, routing) !== null) return i;
  }
  return -1;
}

/** `values` with the routing cookie after them, when they set the session cookie. */
function withRoute(values: OutgoingHttpHeader, routing: Routing): OutgoingHttpHeader {
  const cookie = routeFor(values, routing);
  if (cookie === null) return values;
  return [...(Array.isArray(values) ? values : [String(values)]), cookie];
}

/** The routing cookie's Set-Cookie value for the last session cookie among `values`, or null when they set none. */
function routeFor(values: OutgoingHttpHeader, routing: Routing): string | null {
  const list = Array.isArray(values) ? values : [String(values)];
  for (let i = list.length - 1; i >= 0; i--) {
    const value = String(list[i]);
    if (!value.startsWith(routing.session)) continue;
    const semi = value.indexOf(';');
    const attributes = semi === -1 ? '' : value.slice(semi);
    // An empty value, or a Max-Age of 0 or less, expires the session cookie: the routing cookie goes with it.
    const ended = semi === routing.session.length || value.length === routing.session.length || /;\s*max-age\s*=\s*(?:0|-\d+)\s*(?:;|$)/i.test(attributes);
    return `${ended ? routing.clear : routing.route}${attributes}`;
  }
  return null;
}
