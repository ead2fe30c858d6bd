/**
 * tether/express and a route's errors: `sessionErrors()` drops the changes of any request whose error
 * reaches Express's error handling (without it only a 5xx answer does) and answers a TetherError in
 * Tether's shape. A real Express app on loopback.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import { createTether, FlowStepOutOfOrderError, MemoryStore } from '../../src/index.js';
import type { SessionRecord } from '../../src/index.js';
import { sessions, sessionOf, sessionErrors } from '../../src/adapters/express/index.js';
import { listen, CACHING_HEADERS, CookieClient, assertTetherErrorAnswer, assertUncacheable, serverPerTest } from '../helpers/cookie-client.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;

/** The server each test starts, closed after it. */
const served = serverPerTest();

/** An error Express's final handler answers with its status. */
function statusError(status: number, message: string): Error & { status: number } {
  return Object.assign(new Error(message), { status });
}

/**
 * An app whose POST /start stores n = 1, POST /fail sets n = 2 and throws `error`, POST /late answers,
 * then throws `error`, POST /partial writes part of its body, then throws `error`; GET /read answers the stored data. `after` adds what follows the routes.
 */
async function start(error: Error, after: (app: Express) => void): Promise<CookieClient> {
  const store = new MemoryStore();
  const set = store.set.bind(store);
  // Slow writes keep a commit pending while a late error runs through Express's error handling.
  store.set = async (record: SessionRecord, expected: number) => {
    await sleep(20);
    return set(record, expected);
  };
  const tether = createTether<Data>({ secrets: [SECRET], store });
  const app = express();
  // Express's final handler prints every error's stack unless the app runs as 'test'.
  app.set('env', 'test');
  app.use(sessions(tether, { csrf: false }));
  app.post('/start', (req, res) => {
    sessionOf<Data>(req).set('n', 1);
    res.json({ ok: true });
  });
  app.post('/fail', async (req) => {
    sessionOf<Data>(req).set('n', 2);
    await Promise.resolve();
    throw error;
  });
  app.post('/late', async (req, res) => {
    sessionOf<Data>(req).set('n', 3);
    res.json({ answered: true });
    await Promise.resolve();
    throw error;
  });
  app.post('/partial', async (req, res) => {
    sessionOf<Data>(req).set('n', 4);
    res.type('text/plain').write('partial');
    await Promise.resolve();
    throw error;
  });
  app.get('/read', (req, res) => res.json(sessionOf<Data>(req).data));
  after(app);
  served.current = await listen(app);
  const c = new CookieClient(served.current.url);
  assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
  return c;
}

describe('express adapter: sessionErrors()', () => {
  it('when a route sets a value and then fails with a 409 then the stored session is unchanged', async () => {
    const c = await start(statusError(409, 'conflict'), (app) => app.use(sessionErrors()));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 409);
    assert.equal(r.setCookies.length, 0);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when the app\'s own error handler follows it and answers a 4xx then the stored session is unchanged', async () => {
    const c = await start(statusError(422, 'invalid'), (app) => {
      app.use(sessionErrors());
      app.use((err: Error & { status: number }, _req: Request, res: Response, _next: NextFunction) => {
        void _next;
        res.status(err.status).json({ error: err.message });
      });
    });
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 422);
    assert.deepEqual(r.json(), { error: 'invalid' });
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a route fails after answering then its answer goes out and its session is stored', async () => {
    const c = await start(statusError(409, 'too late'), (app) => app.use(sessionErrors()));
    const r = await c.request('/late', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { answered: true });
    assert.deepEqual((await c.request('/read')).json(), { n: 3 });
  });

  it('when a request fails without it then an error answered with a 5xx still writes nothing', async () => {
    const c = await start(new Error('boom'), () => {});
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a route throws a TetherError then it is answered with its status and Tether\'s body, and nothing is stored', async () => {
    const c = await start(new FlowStepOutOfOrderError('post shipping first'), (app) => app.use(sessionErrors()));
    const r = await c.request('/fail', { method: 'POST' });
    assertTetherErrorAnswer(r, 409, 'FLOW_STEP_OUT_OF_ORDER', 'post shipping first');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a route throws a plain Error then Express\'s own handler answers it, as before', async () => {
    const c = await start(new Error('boom'), (app) => app.use(sessionErrors()));
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when a TetherError comes after the route answered then its answer goes out and its session is stored', async () => {
    const c = await start(new FlowStepOutOfOrderError('too late'), (app) => app.use(sessionErrors()));
    const r = await c.request('/late', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { answered: true });
    assert.deepEqual((await c.request('/read')).json(), { n: 3 });
  });

  it('when a TetherError comes after the route wrote part of its body, its commit pending, then the connection is closed', async () => {
    const c = await start(new FlowStepOutOfOrderError('mid-body'), (app) => app.use(sessionErrors()));
    const outcome = await c.request('/partial', { method: 'POST' }).then((r) => `answered ${r.status}: ${r.body}`, () => 'connection closed');
    assert.equal(outcome, 'connection closed', 'no error answer over what was written');
    // The commit began with the first write, before the error, as when the head is out.
    assert.deepEqual((await c.request('/read')).json(), { n: 4 });
  });

  it('when answer is false then a TetherError goes on to the app\'s handler and nothing is stored', async () => {
    const c = await start(new FlowStepOutOfOrderError('post shipping first'), (app) => {
      app.use(sessionErrors({ answer: false }));
      app.use((err: Error & { code: string }, _req: Request, res: Response, _next: NextFunction) => {
        void _next;
        res.status(400).json({ mine: err.code });
      });
    });
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json(), { mine: 'FLOW_STEP_OUT_OF_ORDER' });
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });

  it('when the app\'s error handler after it changes the session then that change is stored with its answer, and the failed route\'s are not', async () => {
    const c = await start(new Error('boom'), (app) => {
      app.use(sessionErrors());
      app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
        void _next;
        sessionOf<Data>(req).set('flash', err.message);
        res.redirect(303, '/form');
      });
    });
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 303);
    assert.equal(r.location, '/form');
    assert.deepEqual((await c.request('/read')).json(), { n: 1, flash: 'boom' });
  });

  it('when the app\'s error handler after it changes the session and answers a 5xx then that change is stored, and the failed route\'s are not', async () => {
    const c = await start(new Error('boom'), (app) => {
      app.use(sessionErrors());
      app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
        void _next;
        sessionOf<Data>(req).set('flash', err.message);
        res.status(500).json({ error: err.message });
      });
    });
    assert.equal((await c.request('/fail', { method: 'POST' })).status, 500);
    assert.deepEqual((await c.request('/read')).json(), { n: 1, flash: 'boom' });
  });

  it('when the app\'s error handler after it changes the session and passes the error on then the change is stored with the final answer, and the next writer does not wait', async () => {
    const c = await start(new Error('boom'), (app) => {
      app.use(sessionErrors());
      app.use((err: Error, req: Request, _res: Response, next: NextFunction) => {
        sessionOf<Data>(req).set('flash', err.message);
        next(err);
      });
    });
    assert.equal((await c.request('/fail', { method: 'POST' })).status, 500);
    assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
    assert.deepEqual((await c.request('/read')).json(), { n: 1, flash: 'boom' });
  });
  it('when the app\'s error handler after it ends the session then its answer clears the cookie and the site\'s data', async () => {
    const tether = createTether<Data>({ secrets: [SECRET], csrf: false, clearSiteData: true });
    const app = express();
    app.use(sessions(tether, { csrf: false }));
    app.post('/start', (req, res) => {
      sessionOf<Data>(req).set('n', 1);
      res.json({ ok: true });
    });
    app.post('/fail', () => {
      throw new Error('boom');
    });
    app.get('/read', (req, res) => res.json(sessionOf<Data>(req).data));
    app.use(sessionErrors());
    app.use((_err: Error, req: Request, res: Response, _next: NextFunction) => {
      void _next;
      sessionOf<Data>(req).destroy();
      res.status(500).json({ error: 'signed out' });
    });
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    assert.equal((await c.request('/start', { method: 'POST' })).status, 200);
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.match(r.setCookies.join('\n'), /^sid=;/m);
    assert.equal(r.headers.get('clear-site-data'), '"cache", "storage"');
    assert.deepEqual((await c.request('/read')).json(), {});
  });
  it('when two engines\' sessions() serve a request and the error handler changes the later one\'s session then that change is stored in its store alone', async () => {
    const first = new MemoryStore();
    const second = new MemoryStore();
    const app = express();
    app.set('env', 'test');
    app.use(sessions(createTether<Data>({ secrets: [SECRET], store: first, cookie: { name: 'a' } }), { csrf: false }));
    app.use(sessions(createTether<Data>({ secrets: [SECRET], store: second, cookie: { name: 'b' } }), { csrf: false }));
    app.post('/fail', (req) => {
      sessionOf<Data>(req).set('n', 2);
      throw new Error('boom');
    });
    app.use(sessionErrors());
    app.use((err: Error, req: Request, res: Response, _next: NextFunction) => {
      void _next;
      sessionOf<Data>(req).set('flash', err.message);
      res.status(500).json({ error: err.message });
    });
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assert.deepEqual(r.setCookies.map((v) => v.split('=')[0]), ['b']);
    assert.equal(await first.count(), 0);
    assert.equal(await second.count(), 1);
  });
});

describe('express adapter: error answers are never cacheable', () => {
  /**
   * POST /fail sets n, the caching headers, a cookie and a Location, then throws a plain Error; POST
   * /write sets n and the caching headers and answers, while the store refuses writes once `down` is set.
   */
  async function cachingApp(withErrors: boolean): Promise<{ c: CookieClient; down: () => void }> {
    // Writes fail once the store is taken down.
    const store = new FaultyStore(new MemoryStore());
    const app = express();
    app.set('env', 'test');
    app.use(sessions(createTether<Data>({ secrets: [SECRET], store }), { csrf: false }));
    const cached = (res: Response): void => {
      for (const [name, value] of Object.entries(CACHING_HEADERS)) res.setHeader(name, value);
    };
    app.post('/fail', async (req, res) => {
      sessionOf<Data>(req).set('n', 2);
      cached(res);
      res.cookie('remember', 'TOKEN').location('/next');
      await Promise.resolve();
      throw new Error('boom');
    });
    app.post('/write', (req, res) => {
      sessionOf<Data>(req).set('n', 3);
      cached(res);
      res.send('written');
    });
    if (withErrors) app.use(sessionErrors());
    served.current = await listen(app);
    return { c: new CookieClient(served.current.url), down: () => void store.fail('set', 'reject') };
  }

  it('when a route that set caching headers throws a plain Error then the answer after sessionErrors() is no-store, without its validators, cookies or Location', async () => {
    const { c } = await cachingApp(true);
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assertUncacheable(r, 'after sessionErrors()');
    assert.deepEqual(r.setCookies, []);
    assert.equal(r.location, null);
  });

  it('when a route that set caching headers throws a plain Error without sessionErrors() then Express\'s 500 is still no-store, without its validators', async () => {
    const { c } = await cachingApp(false);
    const r = await c.request('/fail', { method: 'POST' });
    assert.equal(r.status, 500);
    assertUncacheable(r, 'Express\'s own');
  });

  it('when a route that set caching headers cannot commit its session then the 503 is no-store, without its validators', async () => {
    const { c, down } = await cachingApp(true);
    down();
    const r = await c.request('/write', { method: 'POST' });
    assert.equal(r.status, 503);
    assertUncacheable(r, 'failed commit');
  });
});
