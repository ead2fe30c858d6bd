/**
 * tether/fastify commits in onSend: a failed commit turns the reply into the error alone, a change made
 * while a stream payload is sent is refused, and a hijacked reply commits at its first raw write; with
 * a real Fastify server on loopback and a store whose writes fail on demand.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createTether, MemoryStore } from '../../src/index.js';
import type { SessionRecord } from '../../src/index.js';
import { tetherPlugin } from '../../src/adapters/fastify/index.js';
import { assertCommitErrorOnly, CookieClient, listen } from '../helpers/cookie-client.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;

let running: FastifyInstance | null = null;
const closing: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await running?.close();
  running = null;
  for (const close of closing.splice(0)) await close();
});

/** Settles with `settled`, or rejects after `ms` saying what did not happen. */
function within<T>(settled: Promise<T>, ms: number, what: string): Promise<T> {
  let timer!: NodeJS.Timeout;
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/** A MemoryStore whose writes reject while `failing.on` is set. */
function failingStore(): { store: MemoryStore; failing: { on: boolean } } {
  const store = new MemoryStore();
  const failing = { on: false };
  const set = store.set.bind(store);
  store.set = async (record: SessionRecord, expected: number) => {
    if (failing.on) throw new Error('disk full');
    return set(record, expected);
  };
  return { store, failing };
}

async function start(setup: (app: FastifyInstance) => void, gateTimeoutMs?: number): Promise<{ c: CookieClient; failing: { on: boolean } }> {
  const { store, failing } = failingStore();
  const app = Fastify();
  await app.register(tetherPlugin, { tether: createTether<Data>({ secrets: [SECRET], store, csrf: false, ...(gateTimeoutMs ? { gateTimeoutMs } : {}) }) });
  app.get('/read', async (req) => req.session.data);
  app.post('/write', async (req) => {
    req.session.set('w', 1);
    return { ok: true };
  });
  setup(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  running = app;
  return { c: new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`), failing };
}

describe('fastify adapter: a failed commit', () => {
  it('when the commit fails then the error goes out without the handler\'s cookies, Location or content headers, and keeps the security headers', async () => {
    const { c, failing } = await start((app) => {
      app.post('/remember', async (req, reply) => {
        req.session.set('n', 1);
        reply.raw.setHeader('etag', '"v1"');
        void reply.code(201).header('set-cookie', 'remember=TOKEN; Path=/').header('location', '/account').header('last-modified', 'Mon, 30 Nov 2026 00:00:00 GMT')
          .header('x-content-type-options', 'nosniff').header('strict-transport-security', 'max-age=31536000');
        return { ok: true };
      });
    });
    failing.on = true;
    const r = await c.request('/remember', { method: 'POST' });
    assertCommitErrorOnly(r, ['etag', 'last-modified']);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', 'a header every response carries stays');
    assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000');
    failing.on = false;
    assert.deepEqual((await c.request('/read')).json(), {}, 'nothing was stored');
  });

  it('when the commit fails and @fastify/cookie is registered after the plugin then the error goes out without the cookies of reply.setCookie', async () => {
    const { store, failing } = failingStore();
    const app = Fastify();
    await app.register(tetherPlugin, { tether: createTether<Data>({ secrets: [SECRET], store, csrf: false }) });
    // Its onSend hook runs after the plugin's and adds the cookies it kept aside.
    await app.register(fastifyCookie);
    app.get('/read', async (req) => req.session.data);
    app.post('/login', async (req, reply) => {
      req.session.login('ada');
      void reply.setCookie('remember', 'TOKEN', { path: '/' });
      return { ok: true };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = app;
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const ok = await new CookieClient(url).request('/login', { method: 'POST' });
    assert.deepEqual(ok.setCookies.map((v) => v.split('=')[0]).sort(), ['remember', 'sid'], 'both go out when the commit succeeds');
    failing.on = true;
    assertCommitErrorOnly(await new CookieClient(url).request('/login', { method: 'POST' }), []);
  });

  it('when the commit fails after the route sent a file stream then the error goes out and the file stream is destroyed, its descriptor closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-fastify-'));
    closing.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'body.json');
    writeFileSync(file, JSON.stringify({ file: true }));
    const streams: ReadStream[] = [];
    const { c, failing } = await start((app) => {
      app.post('/file', async (req, reply) => {
        req.session.set('n', 1);
        const body = createReadStream(file);
        streams.push(body);
        return reply.type('application/json').send(body);
      });
    });
    failing.on = true;
    const r = await c.request('/file', { method: 'POST' });
    assertCommitErrorOnly(r, []);
    assert.equal(streams.length, 1);
    const body = streams[0]!;
    if (!body.closed) await within(once(body, 'close'), 2000, 'the file stream closes');
    assert.equal(body.destroyed, true);
    assert.equal(body.bytesRead, 0, 'nothing of the file was read for a reply that never sends it');
  });

  it('when the commit fails after the route sent a web Response then the error goes out and the Response\'s body is cancelled', async () => {
    let cancelled!: () => void;
    const wasCancelled = new Promise<void>((resolve) => { cancelled = resolve; });
    const { c, failing } = await start((app) => {
      app.post('/response', async (req, reply) => {
        req.session.set('n', 1);
        // A body that never ends by itself (an event feed): only a cancel lets it go.
        const body = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}), cancel: () => cancelled() });
        return reply.send(new Response(body, { headers: { 'content-type': 'text/event-stream', 'set-cookie': 'app=1; Path=/' } }));
      });
    });
    failing.on = true;
    const r = await c.request('/response', { method: 'POST' });
    assertCommitErrorOnly(r, []);
    await within(wasCancelled, 2000, 'the Response body is cancelled');
  });
});

describe('fastify adapter: the reply that sets the session cookie', () => {
  it('when the route sends a web Response with its own Cache-Control then the reply is no-store and keeps the Response\'s status, headers and Set-Cookie', async () => {
    const up = await listen((_req, res) => {
      res.setHeader('cache-control', 'public, max-age=3600');
      res.setHeader('set-cookie', 'up=1; Path=/');
      res.setHeader('content-type', 'text/plain');
      res.end('from upstream');
    });
    closing.push(() => up.close());
    const { c } = await start((app) => {
      app.post('/built', async (req, reply) => {
        req.session.set('n', 1);
        return reply.send(new Response('built', { status: 201, headers: { 'cache-control': 'public, max-age=3600', 'set-cookie': 'app=1; Path=/', 'x-app': 'yes' } }));
      });
      // A fetch() Response: its headers are immutable.
      app.post('/fetched', async (req, reply) => {
        req.session.set('n', 2);
        return reply.send(await fetch(up.url));
      });
    });
    const built = await c.request('/built', { method: 'POST' });
    assert.deepEqual([built.status, built.body, built.headers.get('x-app')], [201, 'built', 'yes']);
    assert.equal(built.headers.get('cache-control'), 'no-store', 'a response that sets the session cookie is not cacheable');
    assert.deepEqual(built.setCookies.map((v) => v.split('=')[0]).sort(), ['app', 'sid']);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });

    // A new visitor: its session is created, so this reply too sets the session cookie.
    const other = new CookieClient(c.base);
    const fetched = await other.request('/fetched', { method: 'POST' });
    assert.deepEqual([fetched.status, fetched.body], [200, 'from upstream']);
    assert.equal(fetched.headers.get('cache-control'), 'no-store');
    assert.deepEqual(fetched.setCookies.map((v) => v.split('=')[0]).sort(), ['sid', 'up']);
    assert.deepEqual((await other.request('/read')).json(), { n: 2 }, 'the stored session is the one the cookie names');
  });

  it('when the route sets a cookie on reply.raw then it goes out with the session\'s cookie', async () => {
    const { c } = await start((app) => {
      app.post('/raw', async (req, reply) => {
        req.session.set('n', 1);
        // What Express-style middleware does to the response.
        reply.raw.setHeader('set-cookie', ['raw=1; Path=/', 'raw2=2; Path=/']);
        return { ok: true };
      });
    });
    const r = await c.request('/raw', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.setCookies.map((v) => v.split('=')[0]), ['raw', 'raw2', 'sid']);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });
});

/** Runs `change` and answers what came of it: 'ok', or the code it threw. */
function attempt(change: () => void): string {
  try {
    change();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'threw';
  }
}

describe('fastify adapter: changes after the commit', () => {
  it('when the session is changed while a stream payload is read then the change throws SESSION_COMMITTED', async () => {
    const { c } = await start((app) => {
      app.post('/stream', async (req, reply) => {
        req.session.set('n', 1);
        let sent = false;
        const body = new Readable({
          read() {
            if (sent) {
              this.push(null);
              return;
            }
            sent = true;
            this.push(attempt(() => req.session.set('late', 1)));
          },
        });
        return reply.type('text/plain').send(body);
      });
    });
    const r = await c.request('/stream', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'SESSION_COMMITTED');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a hijacked reply writes then the session is committed first and its cookie goes out; later changes throw SESSION_COMMITTED', async () => {
    const { c } = await start((app) => {
      app.post('/hijack', async (req, reply) => {
        reply.hijack();
        req.session.set('n', 1);
        reply.raw.writeHead(200, { 'content-type': 'text/plain' });
        reply.raw.write('a:');
        reply.raw.end(attempt(() => req.session.set('late', 1)));
      });
    });
    const r = await c.request('/hijack', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'a:SESSION_COMMITTED');
    assert.equal(r.setCookies.length, 1, 'the new session\'s cookie goes out with the hijacked response');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a hijacked reply streams for long then its first write releases the session to other writers', async () => {
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => { finish = resolve; });
    const { c } = await start((app) => {
      app.post('/hijack', async (req, reply) => {
        reply.hijack();
        req.session.set('n', 1);
        reply.raw.writeHead(200, { 'content-type': 'text/plain' });
        reply.raw.write('streaming');
        void finished.then(() => reply.raw.end());
      });
    }, 300);
    await c.request('/write', { method: 'POST' });
    const base = c.base;
    const cookie = [...c.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const streaming = await fetch(`${base}/hijack`, { method: 'POST', headers: { cookie } });
    try {
      const other = await c.request('/write', { method: 'POST' });
      assert.equal(other.status, 200, 'another writer of the session does not wait for the stream to end');
    } finally {
      finish();
      await streaming.text();
    }
    assert.deepEqual((await c.request('/read')).json(), { w: 1, n: 1 });
  });
});

describe('fastify adapter: a hook that fails after the commit', () => {
  it('when an onSend hook after the plugin\'s throws then the error answer carries the stored session\'s cookie once', async () => {
    const { c } = await start((app) => {
      app.addHook('onSend', async (req, _reply, payload) => {
        if (req.url === '/write' && req.method === 'POST') throw new Error('a later hook failed');
        return payload;
      });
    });
    const r = await c.request('/write', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.equal(r.setCookies.length, 1, r.setCookies.join(' | '));
    assert.match(r.setCookies[0]!, /^sid=/);
    assert.deepEqual((await c.request('/read')).json(), { w: 1 }, 'committed before the hook failed, and reachable by its cookie');
  });
});

describe('fastify adapter: routes without a session', () => {
  it('plugin when registered inside a prefixed plugin then its routes have sessions and the others none; a prefix option of its own is ignored', async () => {
    const tether = createTether<Data>({ secrets: [SECRET], csrf: false });
    const scoped = Fastify();
    await scoped.register(async (api) => {
      await api.register(tetherPlugin, { tether });
      api.get('/x', async (req) => (req.session.set('n', 1), { ok: true }));
    }, { prefix: '/api' });
    scoped.get('/y', async (req) => ({ session: req.session ?? null }));
    const prefixed = Fastify();
    await prefixed.register(tetherPlugin, { tether, prefix: '/api' } as never);
    prefixed.get('/y', async (req) => (req.session.set('n', 1), { ok: true }));
    try {
      const inside = await scoped.inject({ url: '/api/x' });
      assert.equal(inside.statusCode, 200);
      assert.match(String(inside.headers['set-cookie']), /^sid=/);
      const outside = await scoped.inject({ url: '/y' });
      assert.deepEqual([outside.json(), outside.headers['set-cookie']], [{ session: null }, undefined]);
      assert.match(String((await prefixed.inject({ url: '/y' })).headers['set-cookie']), /^sid=/, 'the prefix option is ignored');
    } finally {
      await scoped.close();
      await prefixed.close();
    }
  });

  it('route with tether.session false when requested with a session cookie, while the store is down, then it answers without a store call, a cookie or a CSRF check', async () => {
    const store = new MemoryStore();
    const app = Fastify();
    // The CSRF checks on: an unsafe request to a route without a session must not be refused for its token.
    await app.register(tetherPlugin, { tether: createTether<Data>({ secrets: [SECRET], store }) });
    app.get('/state', async (req) => req.session.data);
    app.post('/start', { config: { tether: { csrf: false } } }, async (req) => (req.session.set('n', 1), { ok: true }));
    const bare = { config: { tether: { session: false } } };
    app.get('/asset', bare, async (req) => ({ session: req.session }));
    app.post('/hook', bare, async (req) => ({ session: req.session }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = app;
    const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    assert.equal((await c.request('/start', { method: 'POST', json: {} })).status, 200);
    let calls = 0;
    store.get = () => (calls++, Promise.reject(new Error('the store is down')));
    store.getLocal = () => { calls++; throw new Error('the store is down'); };
    assert.equal((await c.request('/state')).status, 503, 'a route with a session needs the store');
    calls = 0;
    for (const r of [await c.request('/asset'), await c.request('/hook', { method: 'POST', json: {} })]) {
      assert.deepEqual([r.status, r.json()], [200, { session: null }]);
      assert.deepEqual(r.setCookies, []);
    }
    assert.equal(calls, 0, 'no store call');
  });
});
