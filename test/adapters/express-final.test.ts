/**
 * tether/express holds each response until its session is committed (src/adapters/shared/hold.ts): what
 * the route answered is what goes out, whatever Express's error handling does while the commit is
 * pending, and the session's cookie and no-store go out with it even when the route gave its headers
 * to writeHead; with a real Express app on loopback and a store whose writes take a while.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import { createTether } from '../../src/index.js';
import { sessions, sessionOf } from '../../src/adapters/express/index.js';
import { listen, CookieClient, serverPerTest } from '../helpers/cookie-client.js';
import { slowStore } from '../fixtures/stores.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;

/** The server each test starts, closed after it. */
const served = serverPerTest();


/** An app with sessions on a slow store and GET /read answering the stored session's data; `routes` adds the rest. */
function appWith(routes: (app: Express) => void): Express {
  const tether = createTether<Data>({ secrets: [SECRET], store: slowStore(30) });
  const app = express();
  // Express's final handler prints every error's stack unless the app runs as 'test'.
  app.set('env', 'test');
  app.use(sessions(tether, { csrf: false }));
  app.get('/read', (req, res) => res.json(sessionOf<Data>(req).data));
  routes(app);
  return app;
}

describe('express adapter: the response the route ended with', () => {
  const errorHandlers = {
    "Express's final handler": (_app: Express) => {},
    'an error handler of the app': (app: Express) => {
      app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
        void _next;
        res.status(500).json({ error: 'handled' });
      });
    },
  };
  for (const [name, addHandler] of Object.entries(errorHandlers)) {
    it(`when a route throws after answering and ${name} answers the error then the route's answer goes out and the session is stored`, async () => {
      const responseErrors: unknown[] = [];
      const app = appWith((a) => {
        a.get('/', async (req, res) => {
          res.on('error', (err) => responseErrors.push(err));
          sessionOf<Data>(req).set('n', 5);
          res.set('x-route', 'yes');
          res.json({ ok: true });
          await Promise.resolve();
          throw new Error('after end');
        });
        addHandler(a);
      });
      served.current = await listen(app);
      const c = new CookieClient(served.current.url);
      const r = await c.request('/');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(r.headers.get('x-route'), 'yes');
      assert.deepEqual(r.json(), { ok: true });
      assert.equal(r.setCookies.length, 1);
      assert.deepEqual((await c.request('/read')).json(), { n: 5 });
      assert.deepEqual(responseErrors, [], 'nothing was written after the end');
    });
  }
});

describe('express adapter: headers given to writeHead', () => {
  it('when a route sends caching headers with writeHead then the session cookie still goes out with no-store', async () => {
    served.current = await listen(appWith((app) => {
      app.get('/', (req, res) => {
        sessionOf<Data>(req).set('n', 1);
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600' });
        res.end('ok');
      });
    }));
    const r = await new CookieClient(served.current.url).request('/');
    assert.equal(r.body, 'ok');
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(r.setCookies.length, 1);
    assert.equal(r.headers.get('cache-control'), 'no-store');
  });

  it('when a route sets its own cookie with writeHead then both cookies go out, the route\'s first', async () => {
    served.current = await listen(appWith((app) => {
      app.get('/', (req, res) => {
        sessionOf<Data>(req).set('n', 1);
        res.writeHead(200, { 'set-cookie': 'theme=dark; Path=/' });
        res.end();
      });
    }));
    const c = new CookieClient(served.current.url);
    const r = await c.request('/');
    assert.equal(r.setCookies.length, 2);
    assert.equal(r.setCookies[0], 'theme=dark; Path=/');
    assert.match(r.setCookies[1]!, /^sid=/);
    assert.deepEqual((await c.request('/read')).json(), { n: 1 });
  });
});
