/** tether/express `sessions()` with `csrf.forms`: HTML form posts, their body parsed before `sessions()`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import express from 'express';
import type { Express } from 'express';
import { csrfCheck, sessions, sessionOf, sessionErrors } from '../../src/adapters/express/index.js';
import { listen } from '../../src/testing/adapter-kit.js';
import type { Tether } from '../../src/core/engine.js';
import { addItem, formCases, formSetup } from './csrf-forms.kit.js';
import type { FormData } from './csrf-forms.kit.js';

function routes(app: Express, seen: unknown[]): void {
  app.get('/token', (req, res) => void res.json({ token: sessionOf<FormData>(req).csrfToken }));
  app.get('/state', (req, res) => void res.json({ cart: sessionOf<FormData>(req).data.cart ?? [] }));
  app.post('/add', async (req, res) => void res.json(await addItem(sessionOf<FormData>(req), req.body, seen)));
  app.use(sessionErrors());
}

async function start(tether: Tether<FormData>, seen: unknown[]) {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(sessions(tether));
  routes(app, seen);
  return listen(createServer(app));
}

describe('express sessions() with csrf.forms', () => {
  formCases('express', start, 1_000);

  it('express: a route whose own parser runs after sessions() when it skips the check there and mounts csrfCheck() after its parser then forms post, and bad ones are refused before the handler', async (t) => {
    const env = await formSetup(t, async (tether, seen) => {
      const app = express();
      const late = (req: express.Request) => req.path === '/add' || req.path === '/unparsed';
      app.use(sessions(tether, { csrf: (req) => !late(req) }));
      app.get('/token', (req, res) => void res.json({ token: sessionOf<FormData>(req).csrfToken }));
      app.get('/state', (req, res) => void res.json({ cart: sessionOf<FormData>(req).data.cart ?? [] }));
      // The route's own parser, as multer is mounted on an upload route, then the check.
      app.post('/add', express.urlencoded({ extended: false }), csrfCheck(tether), async (req, res) => void res.json(await addItem(sessionOf<FormData>(req), req.body, seen)));
      app.post('/unparsed', csrfCheck(tether), (_req, res) => void res.json({ ran: true }));
      app.use(sessionErrors());
      return listen(createServer(app));
    });
    const token = encodeURIComponent(env.token);
    assert.equal((await env.post('/add', 'item=tea')).code, 'CSRF_TOKEN_INVALID');
    assert.equal((await env.post('/add', 'item=tea&_csrf=wrong')).code, 'CSRF_TOKEN_INVALID');
    assert.equal((await env.post('/add', `item=tea&_csrf=${token}`, { origin: 'http://127.0.0.1:1' })).code, 'ORIGIN_MISMATCH');
    assert.deepEqual(env.seen, [], 'no handler ran');
    const ok = await env.post('/add', `item=tea&_csrf=${token}`);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual(await env.cart(), ['tea']);
    // A route with csrfCheck() but no parser fails closed, its message naming the unparsed body.
    const unparsed = await env.post('/unparsed', `_csrf=${token}`);
    assert.equal(unparsed.code, 'CSRF_TOKEN_INVALID');
    assert.match(unparsed.message!, /not parsed before the CSRF check/);
  });

  it('express: form post when the body parser is registered after sessions() then 403 CSRF_TOKEN_INVALID saying to register it first', async (t) => {
    const env = await formSetup(t, async (tether, seen) => {
      const app = express();
      app.use(sessions(tether));
      app.use(express.urlencoded({ extended: false }));
      routes(app, seen);
      return listen(createServer(app));
    });
    const reply = await env.post('/add', `item=tea&_csrf=${encodeURIComponent(env.token)}`);
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'CSRF_TOKEN_INVALID');
    assert.match(reply.message!, /before sessions\(\)/);
    assert.deepEqual(env.seen, []);
    // The header still works there.
    assert.equal((await env.post('/add', 'item=tea', { 'x-csrf-token': env.token })).status, 200);
  });

  it('express: form post with extended (qs) parsing when _csrf is nested or repeated then 403, and a plain field passes', async (t) => {
    const env = await formSetup(t, async (tether, seen) => {
      const app = express();
      app.use(express.urlencoded({ extended: true }));
      app.use(sessions(tether));
      routes(app, seen);
      return listen(createServer(app));
    });
    const token = encodeURIComponent(env.token);
    assert.equal((await env.post('/add', `item=tea&_csrf[a]=${token}`)).code, 'CSRF_TOKEN_INVALID');
    assert.equal((await env.post('/add', `item=tea&_csrf[]=${token}`)).code, 'CSRF_TOKEN_INVALID');
    assert.equal((await env.post('/add', `item=tea&_csrf=${token}&_csrf=${token}`)).code, 'CSRF_TOKEN_INVALID');
    assert.deepEqual(env.seen, []);
    assert.equal((await env.post('/add', `item=tea&_csrf=${token}`)).status, 200);
  });
});
