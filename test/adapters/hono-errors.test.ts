/**
 * tether/hono and a route's errors: with `app.onError(tetherErrors())` a TetherError is answered in
 * Tether's shape, every other error as Hono answers it (or by the fallback given), and a failed request
 * stores none of its session's changes. With @hono/node-server on loopback.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { createTether, FlowStepOutOfOrderError, MemoryStore } from '../../src/index.js';
import { sessions, tetherErrors } from '../../src/adapters/hono/index.js';
import type { TetherEnv } from '../../src/adapters/hono/index.js';
import { CACHING_HEADERS, CookieClient, assertTetherErrorAnswer, assertUncacheable } from '../helpers/cookie-client.js';
import { serveHono } from '../helpers/hono.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

const CSP = "default-src 'self'";

/**
 * Every response carries a CSP and nosniff, set before the routes run, as a security-headers middleware
 * does. POST /start stores n = 1; POST /fail sets n = 2, a cookie and a Location, then throws `error`;
 * POST /answered answers with a cookie and a Location, then a middleware throws `error` on its way out;
 * GET /read answers the stored data. `onError` registers the app's error handler.
 */
async function start(error: Error, onError: (app: Hono<TetherEnv<Data>>) => void): Promise<CookieClient> {
  const app = new Hono<TetherEnv<Data>>();
  app.use(async (c, next) => {
    c.header('content-security-policy', CSP);
    c.header('x-content-type-options', 'nosniff');
    await next();
  });
  app.use(sessions(createTether<Data>({ secrets: [SECRET], csrf: false })));
  app.post('/start', (c) => {
    c.get('session').set('n', 1);
    return c.json({ ok: true });
  });
  app.post('/fail', async (c) => {
    c.get('session').set('n', 2);
    c.header('set-cookie', 'remember=TOKEN; Path=/');
    c.header('location', '/next');
    await Promise.resolve();
    throw error;
  });
  // The route answers, with a cookie and a Location; a middleware then fails on the way out.
  app.use('/answered', async (_c, next) => {
    await next();
    throw error;
  });
  app.post('/answered', (c) => {
    c.get('session').set('n', 3);
    c.header('set-cookie', 'remember=TOKEN; Path=/');
    return c.redirect('/next', 303);
  });
  app.get('/read', (c) => c.json(c.get('session').data));
  onError(app);
  const running = await serveHono(app);
  closing.push(() => running.close());
  const c = new CookieClient(running.url);
  assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
  return c;
}

/** Runs `fn` with console.error silenced (Hono's default logs every other error), returning what it logged. */
async function quietly<T>(fn: () => Promise<T>): Promise<{ out: T; logged: unknown[] }> {
  const logged: unknown[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => { logged.push(...args); };
  try {
    return { out: await fn(), logged };
  } finally {
    console.error = error;
  }
}

describe('hono adapter: tetherErrors()', () => {
  it('when a route throws a TetherError then it is answered with its status and Tether\'s body alone, and nothing is stored', async () => {
    const c = await start(new FlowStepOutOfOrderError('post shipping first'), (app) => app.onError(tetherErrors()));
    const r = await c.request('/fail', { method: 'POST' });
    assertTetherErrorAnswer(r, 409, 'FLOW_STEP_OUT_OF_ORDER', 'post shipping first');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a TetherError comes after the route answered then the error replaces that answer, its cookie and Location too', async () => {
    const c = await start(new FlowStepOutOfOrderError('refused on the way out'), (app) => app.onError(tetherErrors()));
    const r = await c.request('/answered', { method: 'POST' });
    assert.equal(r.status, 409);
    assert.deepEqual(r.json(), { error: { code: 'FLOW_STEP_OUT_OF_ORDER', message: 'refused on the way out' } });
    assert.deepEqual(r.setCookies, []);
    assert.equal(r.location, null);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a TetherError is answered then the headers every response carries stay, before and after the route answered', async () => {
    const c = await start(new FlowStepOutOfOrderError('post shipping first'), (app) => app.onError(tetherErrors()));
    for (const path of ['/fail', '/answered']) {
      const r = await c.request(path, { method: 'POST' });
      assert.equal(r.status, 409);
      assert.equal(r.headers.get('content-security-policy'), CSP, path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(r.headers.get('cache-control'), 'no-store', path);
      assert.deepEqual(r.setCookies, [], path);
      assert.equal(r.location, null, path);
    }
  });

  it('when a route throws a plain Error then Hono\'s default answer goes out, and nothing is stored', async () => {
    const boom = new Error('boom');
    const c = await start(boom, (app) => app.onError(tetherErrors()));
    const { out: r, logged } = await quietly(() => c.request('/fail', { method: 'POST' }));
    assert.equal(r.status, 500);
    assert.equal(r.body, 'Internal Server Error');
    assert.deepEqual(logged, [boom]);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a route throws an HTTPException then its own response goes out, as Hono answers it', async () => {
    const c = await start(new HTTPException(418, { message: 'teapot' }), (app) => app.onError(tetherErrors()));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 418);
    assert.equal(r.body, 'teapot');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when the fallback changes the session then that change is stored with its answer, and the failed route\'s are not', async () => {
    const c = await start(new Error('boom'), (app) => app.onError(tetherErrors((err, ctx) => {
      ctx.get('session').set('flash', err.message);
      return ctx.redirect('/form', 303);
    })));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 303);
    assert.equal(r.location, '/form');
    assert.deepEqual((await c.request('/read')).json(), { n: 1, flash: 'boom' });
    // A new visitor's flash creates its session: the answer carries its cookie.
    const fresh = new CookieClient(c.base);
    const first = await fresh.request('/fail', { method: 'POST' });
    assert.equal(first.status, 303);
    assert.equal(first.setCookies.filter((v) => v.startsWith('sid=')).length, 1);
    assert.deepEqual((await fresh.request('/read')).json(), { flash: 'boom' });
  });

  it('when the fallback throws after changing the session then nothing is stored and the session\'s next writer does not wait', async () => {
    const c = await start(new Error('boom'), (app) => app.onError(tetherErrors((_err, ctx) => {
      ctx.get('session').set('flash', 'lost');
      throw new Error('the error handler failed');
    })));
    const { out: r } = await quietly(() => c.request('/fail', { method: 'POST' }));
    assert.equal(r.status, 500);
    const again = await c.request('/start', { method: 'POST' });
    assert.equal(again.status, 200);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a middleware before sessions() throws after the commit then the fallback runs and the session\'s next writer does not wait', async () => {
    const app = new Hono<TetherEnv<Data>>();
    app.use(async (c, next) => {
      await next();
      if (c.req.path === '/fail') throw new Error('after the commit');
    });
    app.use(sessions(createTether<Data>({ secrets: [SECRET], csrf: false, gateTimeoutMs: 10_000 })));
    app.post('/start', (c) => {
      c.get('session').set('n', 1);
      return c.json({ ok: true });
    });
    app.post('/fail', (c) => {
      c.get('session').set('n', 2);
      return c.json({ ok: true });
    });
    app.get('/read', (c) => c.json(c.get('session').data));
    app.onError(tetherErrors((err, c) => c.json({ error: err.message }, 500)));
    const running = await serveHono(app);
    closing.push(() => running.close());
    const c = new CookieClient(running.url);
    assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
    assert.equal((await c.request('/fail', { method: 'POST' })).status, 500);
    const began = Date.now();
    assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
    assert.ok(Date.now() - began < 2000, 'the next writer waited for the gate');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a fallback is given then it answers the other errors', async () => {
    const c = await start(new Error('boom'), (app) => app.onError(tetherErrors((err, ctx) => ctx.json({ mine: err.message }, 500))));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.deepEqual(r.json(), { mine: 'boom' });
  });
});

describe('hono adapter: error answers are never cacheable', () => {
  /**
   * A CSP on every response; POST /fail sets n, the caching headers, a cookie and a Location, then throws a
   * plain Error; POST /write sets n and the caching headers and answers, while the store refuses writes
   * once `down` is set.
   */
  async function cachingApp(onError: (app: Hono<TetherEnv<Data>>) => void): Promise<{ c: CookieClient; down: () => void }> {
    // Writes fail once the store is taken down.
    const store = new FaultyStore(new MemoryStore());
    const app = new Hono<TetherEnv<Data>>();
    app.use(async (c, next) => {
      c.header('content-security-policy', CSP);
      await next();
    });
    app.use(sessions(createTether<Data>({ secrets: [SECRET], csrf: false, store })));
    const cached = (c: Context): void => {
      for (const [name, value] of Object.entries(CACHING_HEADERS)) c.header(name, value);
    };
    app.post('/fail', async (c) => {
      c.get('session').set('n', 2);
      cached(c);
      c.header('set-cookie', 'remember=TOKEN; Path=/');
      c.header('location', '/next');
      await Promise.resolve();
      throw new Error('boom');
    });
    app.post('/write', (c) => {
      c.get('session').set('n', 3);
      cached(c);
      return c.text('written');
    });
    onError(app);
    const running = await serveHono(app);
    closing.push(() => running.close());
    const c = new CookieClient(running.url);
    return { c, down: () => void store.fail('set', 'reject') };
  }

  it('when a route that set caching headers throws a plain Error then tetherErrors()\' answer is no-store, without its validators, cookies or Location, and keeps the CSP', async () => {
    const { c } = await cachingApp((app) => app.onError(tetherErrors()));
    const { out: r } = await quietly(() => c.request('/fail', { method: 'POST' }));
    assert.equal(r.status, 500);
    assertUncacheable(r, 'tetherErrors');
    assert.deepEqual(r.setCookies, []);
    assert.equal(r.location, null);
    assert.equal(r.headers.get('content-security-policy'), CSP);
  });

  it('when a route that set caching headers throws a plain Error then even Hono\'s own error answer is no-store, without its validators', async () => {
    const { c } = await cachingApp(() => {});
    const { out: r } = await quietly(() => c.request('/fail', { method: 'POST' }));
    assert.equal(r.status, 500);
    assertUncacheable(r, 'Hono\'s default');
  });

  it('when a route that set caching headers cannot commit its session then the 503 is no-store, without its validators, and keeps the CSP', async () => {
    const { c, down } = await cachingApp((app) => app.onError(tetherErrors()));
    down();
    const r = await c.request('/write', { method: 'POST' });
    assert.equal(r.status, 503);
    assertUncacheable(r, 'failed commit');
    assert.equal(r.headers.get('content-security-policy'), CSP);
  });
});
