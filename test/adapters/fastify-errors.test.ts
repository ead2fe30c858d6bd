/**
 * tether/fastify and a route's errors: with `app.setErrorHandler(tetherErrorHandler)` a TetherError is
 * answered in Tether's shape, every other error as Fastify answers it, and a failed request stores none
 * of its session's changes. A real Fastify server on loopback.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import { statusLine } from '../helpers/net.js';
import type { AddressInfo } from 'node:net';
import { createTether, FlowStepOutOfOrderError, MemoryStore, StoreUnavailableError } from '../../src/index.js';
import { tetherPlugin, tetherErrorHandler } from '../../src/adapters/fastify/index.js';
import { CACHING_HEADERS, CookieClient, assertTetherErrorAnswer, assertUncacheable } from '../helpers/cookie-client.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';

let running: FastifyInstance | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
});

/**
 * POST /start stores n = 1; POST /fail sets n = 2, a cookie and a Location, then throws `error`;
 * POST /typed takes a body with a number `n`; GET /read answers the stored data.
 */
async function start(error: Error): Promise<CookieClient> {
  const app = Fastify();
  await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], csrf: false }) });
  app.setErrorHandler(tetherErrorHandler);
  app.post('/start', async (req) => {
    req.session.set('n', 1);
    return { ok: true };
  });
  app.post('/fail', async (req, reply) => {
    req.session.set('n', 2);
    void reply.header('set-cookie', 'remember=TOKEN; Path=/').header('location', '/next');
    await Promise.resolve();
    throw error;
  });
  app.post('/typed', { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'number' } } } } }, async () => ({ ok: true }));
  app.get('/read', async (req) => req.session.data);
  // Throws the value its query names (JSON), not an Error.
  app.post('/throw', async (req) => {
    req.session.set('n', 3);
    throw JSON.parse((req.query as { value: string }).value) as unknown;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  running = app;
  const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
  return c;
}

describe('fastify adapter: tetherErrorHandler', () => {
  it('when a route throws a TetherError then it is answered with its status and Tether\'s body alone, and nothing is stored', async () => {
    const c = await start(new FlowStepOutOfOrderError('post shipping first'));
    const r = await c.request('/fail', { method: 'POST' });
    assertTetherErrorAnswer(r, 409, 'FLOW_STEP_OUT_OF_ORDER', 'post shipping first');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  for (const order of ['before', 'after'] as const) {
    it(`when a route sets a cookie with @fastify/cookie, registered ${order} the plugin, and throws a TetherError then the answer carries none of its cookies`, async () => {
      const app = Fastify();
      if (order === 'before') await app.register(fastifyCookie);
      await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], csrf: false }) });
      if (order === 'after') await app.register(fastifyCookie);
      app.setErrorHandler(tetherErrorHandler);
      app.post('/start', async (req) => (req.session.set('n', 1), { ok: true }));
      app.post('/fail', async (req, reply) => {
        req.session.set('n', 2);
        void reply.setCookie('remember', 'TOKEN', { path: '/' });
        await Promise.resolve();
        throw new FlowStepOutOfOrderError('post shipping first');
      });
      app.get('/read', async (req) => req.session.data);
      await app.listen({ port: 0, host: '127.0.0.1' });
      running = app;
      const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
      assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
      assertTetherErrorAnswer(await c.request('/fail', { method: 'POST' }), 409, 'FLOW_STEP_OUT_OF_ORDER', 'post shipping first');
      assert.deepEqual((await c.request('/read')).json(), { n: 1 });
    });
  }

  for (const order of ['before', 'after'] as const) {
    it(`when a route sets a cookie with @fastify/cookie, registered ${order} the plugin, and throws a plain Error then the answer carries none of its cookies, and the error handler's own still go out`, async () => {
      const app = Fastify();
      if (order === 'before') await app.register(fastifyCookie);
      await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], csrf: false }) });
      if (order === 'after') await app.register(fastifyCookie);
      app.setErrorHandler((err: Error, _req, reply) => {
        void reply.setCookie('failed', 'yes', { path: '/' }).code(500).send({ failed: err.message });
      });
      app.post('/fail', async (req, reply) => {
        req.session.set('n', 2);
        void reply.setCookie('remember', 'TOKEN', { path: '/' });
        await Promise.resolve();
        throw new Error('boom');
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      running = app;
      const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
      const r = await c.request('/fail', { method: 'POST' });
      assert.equal(r.status, 500);
      assert.deepEqual(r.json(), { failed: 'boom' });
      assert.deepEqual(r.setCookies.map((v) => v.split(';')[0]), ['failed=yes']);
    });
  }

  it('when a forged session cookie comes with a route that throws a TetherError then its expiry is the one cookie the answer carries', async () => {
    const app = Fastify();
    await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], csrf: false }) });
    await app.register(fastifyCookie);
    app.setErrorHandler(tetherErrorHandler);
    app.post('/fail', async (_req, reply) => {
      void reply.setCookie('remember', 'TOKEN', { path: '/' });
      throw new FlowStepOutOfOrderError('post shipping first');
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = app;
    const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    const r = await c.request('/fail', { method: 'POST', headers: { cookie: `sid=${'a'.repeat(43)}.${'b'.repeat(43)}` } });
    assert.equal(r.status, 409);
    assert.deepEqual(r.setCookies.map((v) => v.split(';')[0]), ['sid=']);
  });

  it('when a route throws a 503 TetherError then the answer says when to retry', async () => {
    const c = await start(new StoreUnavailableError('store down'));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.deepEqual(r.json(), { error: { code: 'STORE_UNAVAILABLE', message: 'store down' } });
  });

  it('when a route throws a plain Error then Fastify answers it as it would without the handler, and nothing is stored', async () => {
    const c = await start(new Error('boom'));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json(), { statusCode: 500, error: 'Internal Server Error', message: 'boom' });
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a route throws a value that is not an Error then it is answered with Fastify\'s status for it, never 200, and nothing is stored', async () => {
    const c = await start(new Error('unused'));
    for (const [thrown, status, message] of [['out of stock', 500, 'out of stock'], [{ statusCode: 404, message: 'no such item' }, 404, 'no such item'], [null, 500, 'null']] as const) {
      const r = await c.request(`/throw?value=${encodeURIComponent(JSON.stringify(thrown))}`, { method: 'POST' });
      assert.equal(r.status, status, r.body);
      assert.equal(r.json<{ message: string }>().message, message);
      assert.deepEqual(r.setCookies, []);
    }
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a body fails the route\'s schema then Fastify\'s own 400 answers it', async () => {
    const c = await start(new Error('unused'));
    const r = await c.request('/typed', { method: 'POST', json: { n: 'one' } });
    assert.equal(r.status, 400);
    assert.equal(r.json<{ code: string }>().code, 'FST_ERR_VALIDATION');
  });
});

describe('fastify adapter: refusals before the handler', () => {
  it('when a route has a 4xx response schema and the app a preSerialization hook then a CSRF refusal and a store outage are still answered in Tether\'s shape', async () => {
    const store = new MemoryStore();
    const app = Fastify();
    await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], store }) });
    // An app that wraps every answer, and a route whose schema knows only a 4xx `message`.
    app.addHook('preSerialization', async (_req, _reply, payload) => ({ data: payload }));
    const schema = { response: { '4xx': { type: 'object', properties: { message: { type: 'string' } } }, '5xx': { type: 'object', properties: { message: { type: 'string' } } } } };
    app.post('/write', { schema }, async (req) => (req.session.set('n', 1), { ok: true }));
    app.get('/token', async (req) => ({ token: req.session.csrfToken }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = app;
    const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    assertTetherErrorAnswer(await c.request('/write', { method: 'POST', json: {} }), 403, 'CSRF_TOKEN_INVALID', 'missing or invalid CSRF token (header x-csrf-token)');
    const { data: { token } } = (await c.request('/token')).json<{ data: { token: string } }>();
    store.get = () => Promise.reject(new Error('the store is down'));
    store.getLocal = () => { throw new Error('the store is down'); };
    const down = await c.request('/write', { method: 'POST', json: {}, headers: { 'x-csrf-token': token } });
    assert.equal(down.status, 503, down.body);
    assert.equal(down.json<{ error: { code: string } }>().error.code, 'STORE_UNAVAILABLE');
  });
});

describe('fastify adapter: error answers are never cacheable', () => {
  const CSP = "default-src 'self'";

  /**
   * A CSP on every reply (an onRequest hook before the plugin); POST /fail sets n, the caching headers, a
   * cookie and a Location, then throws a plain Error; POST /write sets n and the caching headers and
   * answers, while the store refuses writes once `down` is set.
   */
  async function cachingApp(errorHandler: boolean): Promise<{ c: CookieClient; down: () => void }> {
    // Writes fail once the store is taken down.
    const store = new FaultyStore(new MemoryStore());
    const app = Fastify();
    app.addHook('onRequest', async (_req, reply) => {
      void reply.header('content-security-policy', CSP);
    });
    await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], csrf: false, store }) });
    if (errorHandler) app.setErrorHandler(tetherErrorHandler);
    app.post('/fail', async (req, reply) => {
      req.session.set('n', 2);
      void reply.headers(CACHING_HEADERS).header('set-cookie', 'remember=TOKEN; Path=/').header('location', '/next');
      await Promise.resolve();
      throw new Error('boom');
    });
    app.post('/write', async (req, reply) => {
      req.session.set('n', 3);
      void reply.headers(CACHING_HEADERS);
      return 'written';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = app;
    const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    return { c, down: () => void store.fail('set', 'reject') };
  }

  it('when a route that set caching headers throws a plain Error then the answer tetherErrorHandler passes it to is no-store, without its validators, cookies or Location, and keeps the CSP', async () => {
    const { c } = await cachingApp(true);
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assertUncacheable(r, 'tetherErrorHandler');
    assert.deepEqual(r.setCookies, []);
    assert.equal(r.location, null);
    assert.equal(r.headers.get('content-security-policy'), CSP);
  });

  it('when a route that set caching headers throws a plain Error then even Fastify\'s own error answer is no-store, without its validators', async () => {
    const { c } = await cachingApp(false);
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assertUncacheable(r, 'Fastify\'s default');
    assert.equal(r.headers.get('content-security-policy'), CSP);
  });

  it('when a route that set caching headers cannot commit its session then the 503 is no-store, without its validators, and keeps the CSP', async () => {
    const { c, down } = await cachingApp(true);
    down();
    const r = await c.request('/write', { method: 'POST' });
    assert.equal(r.status, 503);
    assertUncacheable(r, 'failed commit');
    assert.equal(r.headers.get('content-security-policy'), CSP);
  });
});

describe('fastify adapter: the error answer\'s status line', () => {
  it('when a route set a reason phrase on reply.raw and then throws, or its commit fails, then the error\'s status line carries its own reason phrase', async () => {
    // Writes fail once the store is taken down.
    const store = new FaultyStore(new MemoryStore());
    const app = Fastify();
    await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], csrf: false, store }) });
    app.setErrorHandler(tetherErrorHandler);
    app.get('/:what', async (req, reply) => {
      reply.raw.statusMessage = 'Order Placed';
      void reply.code(201);
      if ((req.params as { what: string }).what === 'throw') throw new Error('boom');
      req.session.set('n', 1);
      return 'ok';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    running = app;
    const port = (app.server.address() as AddressInfo).port;
    assert.equal(await statusLine(port, '/throw'), 'HTTP/1.1 500 Internal Server Error');
    store.fail('set', 'reject');
    assert.equal(await statusLine(port, '/write'), 'HTTP/1.1 503 Service Unavailable');
  });
});
