/**
 * The pieces of the adapter conformance suite an adapter's test file touches: the routes every app
 * must serve (framework-neutral), a cookie-aware HTTP client, and a loopback listener helper.
 * @module
 */
import http from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Session } from '../core/session.js';

/** What the suite keeps in its sessions. */
export interface SuiteData {
  n: number;
  cart: string[];
  blob: string;
}

/** How the app answers: a redirect (302 to `redirect`), or `status` (default 200) with `json` (default `{}`). */
export interface RouteResult {
  status?: number;
  json?: unknown;
  redirect?: string;
}

/**
 * One route of the suite's app. An adapter's app registers every route at `method` + `path`, hands the
 * handler the request's session and its body (parsed JSON when the request says application/json,
 * else undefined), and sends the result. A route with `csrf: false` skips the CSRF checks; one with
 * `session: 'optional'` has an optional session (tether/fastify's `session: 'optional'`), and its
 * handler is handed null when the store could not open it.
 */
export interface SuiteRoute {
  method: 'GET' | 'POST';
  path: string;
  csrf?: boolean;
  session?: 'optional';
  handle(session: Session<SuiteData> | null, body: unknown): Promise<RouteResult> | RouteResult;
}

/** A route whose session is required: handed none, it fails (500), as the adapter should never let it run so. */
interface RequiredRoute extends Omit<SuiteRoute, 'handle' | 'session'> {
  handle(session: Session<SuiteData>, body: unknown): Promise<RouteResult> | RouteResult;
}

function required(route: RequiredRoute): SuiteRoute {
  return {
    ...route,
    handle: (session, body) => {
      if (session === null) throw new Error(`${route.method} ${route.path} was run without its session`);
      return route.handle(session, body);
    },
  };
}

/**
 * What GET /optional and POST /optional answer: whether the handler had a session and, when it had,
 * the count it set there (each call adds one), to be committed with the answer.
 */
function optionalVisit(s: Session<SuiteData> | null): RouteResult {
  if (s === null) return { json: { session: null } };
  s.set('n', (s.data.n ?? 0) + 1);
  return { json: { session: { isNew: s.isNew, n: s.data.n } } };
}

/** Lets a test hold a request inside its handler. */
export interface RouteHooks {
  /** Awaited by POST /slow and GET /slow-read between loading the session and changing it. */
  hold(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

function state(s: Session<SuiteData>): RouteResult {
  return { json: { isNew: s.isNew, userId: s.userId, data: s.data, handle: s.handle } };
}

/** The routes every adapter's app serves. */
export function suiteRoutes(hooks: RouteHooks): SuiteRoute[] {
  return [
    ...requiredRoutes(hooks).map(required),
    { method: 'GET', path: '/optional', session: 'optional', handle: optionalVisit },
    { method: 'POST', path: '/optional', session: 'optional', handle: optionalVisit },
  ];
}

function requiredRoutes(hooks: RouteHooks): RequiredRoute[] {
  return [
    { method: 'GET', path: '/state', handle: (s) => state(s) },
    { method: 'GET', path: '/token', handle: (s) => ({ json: { token: s.csrfToken } }) },
    {
      method: 'POST', path: '/add', handle: async (s, body) => {
        await s.update((d) => void (d.cart = [...(d.cart ?? []), String(field(body, 'item'))]));
        return state(s);
      },
    },
    {
      // An asynchronous update the handler does not await: the commit waits for it.
      method: 'POST', path: '/add-later', handle: (s, body) => {
        void s.update(async (d) => {
          await sleep(5);
          d.cart = [...(d.cart ?? []), String(field(body, 'item'))];
        });
        return { json: { ok: true } };
      },
    },
    {
      // Read, wait, write: the read-modify-write that loses updates without a per-session gate.
      method: 'POST', path: '/count', handle: async (s) => {
        const n = s.data.n ?? 0;
        await sleep(1 + Math.random() * 4);
        s.set('n', n + 1);
        return { json: { n: n + 1 } };
      },
    },
    {
      method: 'POST', path: '/login', handle: (s, body) => {
        s.login(String(field(body, 'user')));
        return { json: { token: s.csrfToken } };
      },
    },
    {
      method: 'POST', path: '/regenerate', handle: (s) => {
        s.regenerate();
        return { json: { token: s.csrfToken } };
      },
    },
    { method: 'POST', path: '/logout', handle: (s) => (s.destroy(), { json: { ok: true } }) },
    { method: 'POST', path: '/redirect', handle: (s) => (s.set('n', 42), { redirect: '/state' }) },
    { method: 'POST', path: '/fill', handle: (s, body) => (s.set('blob', 'x'.repeat(Number(field(body, 'size')))), { json: { ok: true } }) },
    {
      method: 'POST', path: '/slow', handle: async (s, body) => {
        await hooks.hold();
        if (field(body, 'mode') === 'update') await s.update((d) => void (d.cart = [...(d.cart ?? []), 'late']));
        else s.set('cart', ['late']);
        return state(s);
      },
    },
    { method: 'GET', path: '/slow-read', handle: async (s) => (await hooks.hold(), state(s)) },
    {
      method: 'POST', path: '/boom', handle: (s) => {
        s.set('n', 99);
        throw new Error('the handler failed');
      },
    },
    {
      method: 'POST', path: '/boom-unreadable', handle: (s) => {
        s.set('n', 99);
        throw unreadableError();
      },
    },
    { method: 'POST', path: '/open', csrf: false, handle: (s) => (s.set('n', 7), state(s)) },
    {
      method: 'GET', path: '/boom-read', handle: () => {
        throw new Error('the handler failed');
      },
    },
  ];
}

/**
 * What a handler may throw that no property of can be read: every read, prototype lookup and key listing
 * throws (as a revoked Proxy's does). An adapter must still answer 500 and stay up.
 */
export function unreadableError(): unknown {
  const fail = (): never => {
    throw new Error('this thrown value cannot be read');
  };
  return new Proxy(new Error('unreadable'), { get: fail, getPrototypeOf: fail, has: fail, ownKeys: fail, getOwnPropertyDescriptor: fail });
}

/** Finds the route a request is for (adapters use it for per-route CSRF settings). */
export function routeFor(routes: readonly SuiteRoute[], method: string, url: string): SuiteRoute | undefined {
  const path = url.split('?')[0];
  return routes.find((r) => r.method === method && r.path === path);
}

export interface RunningApp {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

/** Listens on a free loopback port; `close()` also drops idle keep-alive connections. */
export async function listen(server: Server): Promise<RunningApp> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** A response body's JSON object, or undefined when it is empty or not JSON. */
export function jsonOf(text: string): Record<string, unknown> | undefined {
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface Reply {
  status: number;
  json: Record<string, unknown> | undefined;
  headers: Headers;
  setCookies: string[];
  /** The session cookie to send next: a new one if set (`''` if cleared), else the one sent. */
  cookie: string | undefined;
}

export interface CallOptions {
  cookie?: string | undefined;
  token?: string | undefined;
  body?: unknown;
  headers?: Record<string, string>;
  /** Send no Origin header (a same-origin Origin is sent on unsafe requests otherwise). */
  noOrigin?: boolean;
  /** Aborts the request (the client goes away). */
  signal?: AbortSignal;
  /** The loopback address to send from (`127.0.0.2`: another client address), over node:http instead of fetch. GET only. */
  localAddress?: string;
}

/** A client for one app: same-origin requests, JSON bodies, the session cookie passed by hand. */
export function client(app: RunningApp, cookieName = 'sid') {
  return async function call(method: string, path: string, o: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.cookie) headers.cookie = o.cookie;
    if (o.token !== undefined) headers['x-csrf-token'] = o.token;
    let body: string | undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      if (!o.noOrigin) headers.origin ??= app.url;
      body = JSON.stringify(o.body ?? {});
      headers['content-type'] ??= 'application/json';
    }
    if (o.localAddress !== undefined) return getFrom(app.url + path, headers, o.localAddress, cookieName, o.cookie);
    const res = await fetch(app.url + path, { method, headers, body, redirect: 'manual', signal: o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000) });
    const text = await res.text();
    const json = jsonOf(text);
    const setCookies = res.headers.getSetCookie();
    const cookie = nextCookie(setCookies, cookieName, o.cookie);
    return { status: res.status, json, headers: res.headers, setCookies, cookie };
  };
}

/** A GET sent from `localAddress` (fetch cannot choose its source address). */
function getFrom(url: string, headers: Record<string, string>, localAddress: string, cookieName: string, sent: string | undefined): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // The User-Agent fetch sends, so the session sees the same browser.
    const req = http.get(url, { headers: { 'user-agent': 'node', ...headers }, localAddress, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const setCookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) for (const one of ([] as string[]).concat(v)) out.append(k, one);
        resolve({ status: res.statusCode ?? 0, json: jsonOf(text), headers: out, setCookies, cookie: nextCookie(setCookies, cookieName, sent) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
  });
}

/** The session cookie to send next: the last one set (`''` when cleared), else the one sent. */
function nextCookie(setCookies: readonly string[], cookieName: string, sent: string | undefined): string | undefined {
  const mine = setCookies.filter((c) => c.startsWith(`${cookieName}=`)).at(-1)?.split(';')[0];
  return mine === undefined ? sent : mine === `${cookieName}=` ? '' : mine;
}
