/**
 * tether/node holds each response until its session is committed (src/adapters/shared/hold.ts): what
 * the handler answered is what goes out, whatever runs while the commit is pending, and the session's
 * cookie and no-store go out with it even when the handler gave its headers to writeHead; with a real
 * node:http server on loopback and a store whose writes take a while.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { statusLine } from '../helpers/net.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createTether, MemoryStore } from '../../src/index.js';
import type { Session } from '../../src/index.js';
import { withSessions } from '../../src/adapters/node-http/index.js';
import type { NodeAdapterOptions } from '../../src/adapters/node-http/index.js';
import { listen, CACHING_HEADERS, CookieClient, assertUncacheable, serverPerTest } from '../helpers/cookie-client.js';
import { FaultyStore, slowStore } from '../fixtures/stores.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;
type Route = (req: IncomingMessage, res: ServerResponse, s: Session<Data>) => unknown;

/** The server each test starts, closed after it. */
const served = serverPerTest();


/** Serves `route` at /, and GET /read answering the stored session's data. */
async function serve(route: Route, options: NodeAdapterOptions = {}): Promise<CookieClient> {
  const tether = createTether<Data>({ secrets: [SECRET], store: slowStore(30) });
  const handler = withSessions(tether, (req, res, s) => {
    if (req.url === '/read') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(s.data));
      return;
    }
    return route(req, res, s);
  }, { csrf: false, ...options });
  served.current = await listen((req, res) => void handler(req, res));
  return new CookieClient(served.current.url);
}

describe('node:http adapter: the response the handler ended with', () => {
  it('when the handler throws after ending its response then the client gets that response and the session is stored', async () => {
    const errors: unknown[] = [];
    const boom = new Error('after end');
    const c = await serve(async (_req, res, s) => {
      s.set('n', 5);
      res.statusCode = 201;
      res.setHeader('content-type', 'text/plain');
      res.setHeader('X-Handler', 'yes');
      res.end('ok');
      await Promise.resolve();
      throw boom;
    }, { onError: (err) => errors.push(err) });
    const r = await c.request('/');
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(r.headers.get('x-handler'), 'yes');
    assert.equal(r.body, 'ok');
    assert.equal(r.setCookies.length, 1, 'the session committed with the response carries its cookie');
    assert.deepEqual(errors, [boom]);
    assert.deepEqual((await c.request('/read')).json(), { n: 5 });
  });

  it('when something changes the status or headers or answers again after the handler ended then none of it goes out', async () => {
    const c = await serve(async (_req, res, s) => {
      s.set('n', 1);
      res.setHeader('content-type', 'text/plain');
      res.end('first');
      res.statusCode = 418;
      res.statusMessage = 'Teapot';
      res.removeHeader('content-type');
      res.setHeader('x-late', 'yes');
      res.writeHead(400, { 'x-later': 'yes' });
      res.write('second');
      res.end('third');
    });
    const r = await c.request('/');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(r.headers.get('x-late'), null);
    assert.equal(r.headers.get('x-later'), null);
    assert.equal(r.body, 'first');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when the handler throws before ending its response then the error is answered and reported and nothing is stored', async () => {
    const errors: unknown[] = [];
    const c = await serve(async (_req, _res, s) => {
      s.set('n', 7);
      await Promise.resolve();
      throw new Error('before end');
    }, { onError: (err, req) => errors.push([(err as Error).message, req.url]) });
    const r = await c.request('/');
    assert.equal(r.status, 500);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'INTERNAL_ERROR');
    assert.deepEqual(errors, [['before end', '/']]);
    assert.equal(r.setCookies.length, 0);
  });

  it('when a cookie is appended after the handler ended then it does not go out with the response', async () => {
    const c = await serve(async (_req, res, s) => {
      s.set('n', 1);
      res.setHeader('set-cookie', ['theme=dark; Path=/']);
      res.end('first');
      res.appendHeader('set-cookie', 'late=1; Path=/');
    });
    const r = await c.request('/');
    assert.equal(r.body, 'first');
    assert.deepEqual(r.setCookies.map((v) => v.split('=')[0]), ['theme', 'sid']);
  });

  it('when the handler throws after writing part of its response, before ending it, then that part goes out with the session cookie, the connection is cut, and nothing more goes out', async () => {
    const errors: string[] = [];
    const c = await serve(async (_req, res, s) => {
      s.set('n', 3);
      res.setHeader('content-type', 'text/plain');
      res.write('partial');
      await Promise.resolve();
      throw new Error('mid-stream');
    }, { onError: (err) => void errors.push((err as Error).message) });
    const r = await read(served.current!.url);
    assert.deepEqual({ status: r.status, body: r.body, cut: r.cut }, { status: 200, body: 'partial', cut: true }, 'no error body appended to what was written');
    assert.deepEqual(errors, ['mid-stream']);
    assert.equal(r.setCookies.length, 1);
    c.set('sid', r.setCookies[0]!.split(';')[0]!.slice('sid='.length));
    assert.deepEqual((await c.request('/read')).json(), { n: 3 }, 'the session was stored, and the server goes on');
  });

  it('when onError itself throws then the error is still answered, the session dropped, and nothing is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const c = await serve(async (_req, res, s) => {
        s.set('n', 9);
        res.setHeader('strict-transport-security', 'max-age=31536000');
        res.setHeader('etag', '"v1"');
        throw new Error('handler failed');
      }, { onError: () => { throw new Error('reporter failed'); } });
      const r = await c.request('/');
      assert.equal(r.status, 500);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'INTERNAL_ERROR');
      assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000', 'a header every response carries stays');
      assert.equal(r.headers.get('etag'), null, 'the handler\'s answer does not');
      assert.deepEqual((await c.request('/read')).json(), {});
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('when no onError is given then a handler error is printed with console.error', async (t) => {
    const printed = t.mock.method(console, 'error', () => {});
    const boom = new Error('printed');
    const c = await serve(() => {
      throw boom;
    });
    assert.equal((await c.request('/')).status, 500);
    assert.deepEqual(printed.mock.calls.map((call) => call.arguments), [[boom]]);
  });
});

/** A GET read with node:http to its end or to a cut connection: the status, the body that arrived, and whether it was cut. */
function read(url: string): Promise<{ status: number; setCookies: string[]; body: string; cut: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      const done = (cut: boolean): void => resolve({ status: res.statusCode!, setCookies: res.headers['set-cookie'] ?? [], body, cut });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done(false));
      res.on('error', () => done(true));
    }).on('error', reject);
  });
}

describe('node:http adapter: a response begun before the commit settles', () => {
  it('when the handler has begun its response then res.headersSent reads true, as without the hold', async () => {
    const seen: boolean[] = [];
    const c = await serve((_req, res, s) => {
      s.set('n', 1);
      seen.push(res.headersSent);
      res.write('a');
      seen.push(res.headersSent);
      res.end('b');
    });
    const r = await c.request('/');
    assert.equal(r.body, 'ab');
    assert.equal(r.setCookies.length, 1);
    assert.deepEqual(seen, [false, true]);
  });

  it('when the commit fails then the callbacks given to res.end and res.write are called and the handler finishes', async () => {
    const store = new FaultyStore(new MemoryStore());
    const tether = createTether<Data>({ secrets: [SECRET], store });
    const finished: string[] = [];
    served.current = await listen(withSessions(tether, async (req, res, s) => {
      s.set('n', 1);
      if (req.url === '/end') {
        await new Promise<void>((resolve) => res.end('body', () => resolve()));
      } else {
        await new Promise<void>((resolve) => res.write('chunk', () => resolve()));
        res.end();
      }
      finished.push(req.url!);
    }, { csrf: false }));
    store.fail('set', 'reject');
    const c = new CookieClient(served.current.url);
    assert.equal((await c.request('/end')).status, 503);
    assert.equal((await c.request('/write')).status, 503);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(finished, ['/end', '/write']);
  });
});

describe('node:http adapter: error answers are never cacheable', () => {
  it('when a response with caching headers cannot commit its session then the 503 is no-store, without its validators or CDN freshness, and keeps the other headers', async () => {
    const store = new FaultyStore(new MemoryStore());
    const tether = createTether<Data>({ secrets: [SECRET], store });
    served.current = await listen(withSessions(tether, (req, res, s) => {
      s.set('n', 1);
      res.setHeader('content-security-policy', "default-src 'self'");
      if (req.url === '/set') {
        for (const [name, value] of Object.entries(CACHING_HEADERS)) res.setHeader(name, value);
        res.end('ok');
      } else {
        res.writeHead(200, { ...CACHING_HEADERS });
        res.end('ok');
      }
    }, { csrf: false }));
    store.fail('set', 'reject');
    const c = new CookieClient(served.current.url);
    for (const path of ['/set', '/write-head']) {
      const r = await c.request(path);
      assert.equal(r.status, 503, path);
      assertUncacheable(r, path);
      assert.equal(r.headers.get('content-security-policy'), "default-src 'self'", path);
    }
  });
});

describe('node:http adapter: the error answer\'s status line', () => {
  it('when the handler set a reason phrase and then throws, or its commit fails, then the error\'s status line carries its own reason phrase', async () => {
    const store = new FaultyStore(new MemoryStore());
    const tether = createTether<Data>({ secrets: [SECRET], store });
    served.current = await listen(withSessions(tether, (req, res, s) => {
      res.statusCode = 201;
      res.statusMessage = 'Order Placed';
      if (req.url === '/throw') throw new Error('boom');
      s.set('n', 1);
      res.end('ok');
    }, { csrf: false, onError: () => {} }));
    const port = Number(new URL(served.current.url).port);
    assert.equal(await statusLine(port, '/throw'), 'HTTP/1.1 500 Internal Server Error');
    store.fail('set', 'reject');
    assert.equal(await statusLine(port, '/write'), 'HTTP/1.1 503 Service Unavailable');
  });
});

describe('node:http adapter: headers given to writeHead', () => {
  it('when the handler sends caching headers with writeHead then the session cookie still goes out with no-store', async () => {
    const c = await serve((_req, res, s) => {
      s.set('n', 1);
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600' });
      res.end('ok');
    });
    const r = await c.request('/');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(r.setCookies.length, 1);
    assert.equal(r.headers.get('cache-control'), 'no-store');
  });

  it('when the handler sets its own cookie with writeHead then both cookies go out, the handler\'s first', async () => {
    const c = await serve((_req, res, s) => {
      s.set('n', 1);
      res.writeHead(200, { 'set-cookie': 'theme=dark; Path=/' });
      res.end();
    });
    const r = await c.request('/');
    assert.equal(r.setCookies.length, 2);
    assert.equal(r.setCookies[0], 'theme=dark; Path=/');
    assert.match(r.setCookies[1]!, /^sid=/);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when the handler gives writeHead a status message and a list of header pairs then they replace what was set, and the session cookie is added', async () => {
    const c = await serve((_req, res, s) => {
      s.set('n', 1);
      res.setHeader('x-kind', 'set before');
      res.setHeader('cache-control', 'public');
      res.writeHead(201, 'Made', ['x-kind', 'a', 'x-kind', 'b', 'Set-Cookie', 'theme=dark; Path=/', 'cache-control', 'max-age=60']);
      res.end('made');
    });
    const r = await c.request('/');
    assert.equal(r.status, 201);
    assert.equal(r.body, 'made');
    assert.equal(r.headers.get('x-kind'), 'a, b');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.setCookies.length, 2);
    assert.equal(r.setCookies[0], 'theme=dark; Path=/');
    assert.match(r.setCookies[1]!, /^sid=/);
  });

  it('when the session sets no cookie then writeHead\'s headers go out as given', async () => {
    const c = await serve((_req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=3600', 'set-cookie': 'theme=dark; Path=/' });
      res.end();
    });
    const r = await c.request('/');
    assert.equal(r.headers.get('cache-control'), 'public, max-age=3600');
    assert.deepEqual(r.setCookies, ['theme=dark; Path=/']);
  });
});
