/** tether/hono with `csrf.forms`: the middleware reads the token field, and the handler can still read the body. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { sessions } from '../../src/adapters/hono/index.js';
import type { TetherEnv } from '../../src/adapters/hono/index.js';
import type { Tether } from '../../src/core/engine.js';
import type { RunningApp } from '../../src/testing/adapter-kit.js';
import { addItem, assertMultipartToken, formCases, formSetup } from './csrf-forms.kit.js';
import type { FormData } from './csrf-forms.kit.js';
import { serveHono } from '../helpers/hono.js';

async function serve(tether: Tether<FormData>, seen: unknown[]): Promise<RunningApp> {
  const app = new Hono<TetherEnv<FormData>>();
  app.use(sessions(tether));
  app.get('/token', (c) => c.json({ token: c.get('session').csrfToken }));
  app.get('/state', (c) => c.json({ cart: c.get('session').data.cart ?? [] }));
  // The handler reads the body the middleware has already read: Hono keeps it.
  app.post('/add', async (c) => c.json(await addItem(c.get('session'), await c.req.parseBody(), seen)));
  app.post('/add-all', async (c) => c.json(await addItem(c.get('session'), await c.req.parseBody({ all: true }), seen)));
  app.post('/add-text', async (c) => c.json(await addItem(c.get('session'), Object.fromEntries(new URLSearchParams(await c.req.text())), seen)));
  return serveHono(app);
}

describe('hono sessions() with csrf.forms', () => {
  formCases('hono', serve);

  it('hono: form post when the token field was read by the middleware then the handler still reads the whole body, with its own parseBody options', async (t) => {
    const env = await formSetup(t, serve);
    const token = encodeURIComponent(env.token);
    const one = await env.post('/add', `item=tea&tag=a&tag=b&_csrf=${token}`);
    assert.equal(one.status, 200, JSON.stringify(one.json));
    assert.deepEqual(one.json?.fields, { item: 'tea', tag: 'b', _csrf: env.token }, 'parseBody(): the last of a repeated field');
    const all = await env.post('/add-all', `item=coffee&tag=a&tag=b&_csrf=${token}`);
    assert.deepEqual(all.json?.fields, { item: 'coffee', tag: ['a', 'b'], _csrf: env.token }, 'parseBody({ all: true }): every value');
    const text = await env.post('/add-text', `item=cocoa&_csrf=${token}`);
    assert.deepEqual(text.json?.fields, { item: 'cocoa', _csrf: env.token }, 'text()');
    assert.deepEqual(await env.cart(), ['tea', 'coffee', 'cocoa']);
  });

  it('hono: multipart form post when _csrf carries the token then passes; as a file or repeated then 403', async (t) => {
    const env = await formSetup(t, serve);
    const asFile = new globalThis.FormData();
    asFile.append('item', 'tea');
    asFile.append('_csrf', new Blob([env.token]), 'token.txt');
    assert.equal((await env.post('/add', asFile)).code, 'CSRF_TOKEN_INVALID');
    await assertMultipartToken(env);
    assert.deepEqual(await env.cart(), ['tea']);
  });

  it('hono: multipart form post when its body is malformed then 403 CSRF_TOKEN_INVALID before the handler', async (t) => {
    const env = await formSetup(t, serve);
    const reply = await env.post('/add', '--x\r\nnot a part', { 'content-type': 'multipart/form-data; boundary=x' });
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'CSRF_TOKEN_INVALID');
    assert.match(reply.message!, /could not be parsed/);
    assert.deepEqual(env.seen, []);
  });
});
