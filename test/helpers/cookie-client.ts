/**
 * HTTP over real loopback sockets for adapter and integration tests: `listen(handler)` serves on a free
 * 127.0.0.1 port, `CookieClient` is a minimal browser (a cookie jar, redirects not followed) on fetch.
 * @module
 */
import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import { listen as listenOn } from '../../src/testing/adapter-kit.js';

export interface Listening {
  /** http://127.0.0.1:<port> */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves `handler` on a free loopback port. */
export async function listen(handler: RequestListener): Promise<Listening> {
  const server = createServer(handler);
  // Keep-alive sockets would hold close() open; tests make few requests.
  server.keepAliveTimeout = 1;
  return { ...(await listenOn(server)), server };
}

/**
 * A slot for the server a test starts (`served.current = await listen(…)`), closed after each test of
 * the file: call at the top level of a test file.
 */
export function serverPerTest(): { current: Listening | null } {
  const slot: { current: Listening | null } = { current: null };
  afterEach(async () => {
    await slot.current?.close();
    slot.current = null;
  });
  return slot;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  /** Every Set-Cookie header of the response, raw. */
  setCookies: string[];
  /** The Location header, if any. */
  location: string | null;
  json<T = unknown>(): T;
}

/** Asserts a Tether error answer and nothing else: its status, `{"error":{"code","message"}}`, no-store, no cookie, no Location. */
export function assertTetherErrorAnswer(r: Reply, status: number, code: string, message: string): void {
  assert.equal(r.status, status);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.deepEqual(r.json(), { error: { code, message } });
  assert.deepEqual(r.setCookies, []);
  assert.equal(r.location, null);
}

/**
 * Headers a route may set so that its answer is cached or revalidated: an error answered in its place
 * must carry none of them (assertUncacheable).
 */
export const CACHING_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'public, max-age=600',
  etag: '"v1"',
  'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT',
  expires: 'Wed, 21 Oct 2099 07:28:00 GMT',
  'cdn-cache-control': 'max-age=600',
  'surrogate-control': 'max-age=600',
});

/** The answer is `no-store` and carries none of a route's validators or freshness headers (CACHING_HEADERS). */
export function assertUncacheable(r: Reply, what: string): void {
  assert.equal(r.headers.get('cache-control'), 'no-store', `${what}: Cache-Control`);
  for (const name of Object.keys(CACHING_HEADERS)) if (name !== 'cache-control') assert.equal(r.headers.get(name), null, `${what}: ${name}`);
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  /** Sent as application/json. */
  json?: unknown;
  /** Send no cookies and store none (a request from somewhere else). */
  withoutJar?: boolean;
}

/** A cookie jar by name (path and domain ignored: every test cookie is Path=/ on one host). */
export class CookieClient {
  readonly jar = new Map<string, string>();

  constructor(readonly base: string) {}

  get(name: string): string | undefined {
    return this.jar.get(name);
  }

  set(name: string, value: string): void {
    this.jar.set(name, value);
  }

  /** A second client holding a copy of this one's cookies (a stolen or replayed cookie), optionally for another server. */
  clone(base = this.base): CookieClient {
    const c = new CookieClient(base);
    for (const [k, v] of this.jar) c.jar.set(k, v);
    return c;
  }

  async request(path: string, options: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined;
    if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    } else if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    if (!options.withoutJar && this.jar.size > 0 && headers.cookie === undefined) {
      headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    const res = await fetch(this.base + path, {
      method: options.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    const setCookies = res.headers.getSetCookie();
    if (!options.withoutJar) for (const c of setCookies) storeSetCookie(this.jar, c);
    return {
      status: res.status,
      headers: res.headers,
      body: text,
      setCookies,
      location: res.headers.get('location'),
      json: <T>() => JSON.parse(text) as T,
    };
  }
}

/** Applies one Set-Cookie line to a jar by name: stores the value, or drops the cookie when it is expired or empty. */
export function storeSetCookie(jar: Map<string, string>, setCookie: string): void {
  const [pair, ...attrs] = setCookie.split(';');
  const eq = pair!.indexOf('=');
  if (eq <= 0) return;
  const name = pair!.slice(0, eq).trim();
  const value = pair!.slice(eq + 1).trim();
  const expired = attrs.some((a) => {
    const [k, v] = a.split('=').map((x) => x.trim());
    if (k!.toLowerCase() === 'max-age') return Number(v) <= 0;
    if (k!.toLowerCase() === 'expires') return Date.parse(v ?? '') <= Date.now();
    return false;
  });
  if (expired || value === '') jar.delete(name);
  else jar.set(name, value);
}

/** The attributes of a Set-Cookie header, lower-cased names (`secure: ''` when present). */
export function cookieAttributes(setCookie: string): Record<string, string> {
  const [, ...attrs] = setCookie.split(';');
  return Object.fromEntries(attrs.map((a) => {
    const [k, ...v] = a.trim().split('=');
    return [k!.toLowerCase(), v.join('=')];
  }));
}

/**
 * Asserts that `r` is the 503 a failed commit answers and nothing of the answer the handler had made:
 * none of its cookies, no Location, none of the `handlerHeaders` it set.
 */
export function assertCommitErrorOnly(r: Reply, handlerHeaders: readonly string[]): void {
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'STORE_UNAVAILABLE', 'the whole JSON body goes out');
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('retry-after'), '1');
  assert.deepEqual(r.setCookies, [], 'none of the handler\'s cookies go out with the error');
  for (const name of ['location', ...handlerHeaders]) assert.equal(r.headers.get(name), null, name);
}
