/** tether/hono with `csrf.forms`: the middleware reads the token field, and the handler can still read the body. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { DEFAULT_FORM_BODY_LIMIT, sessions } from '../../src/adapters/hono/index.js';
import type { HonoAdapterOptions, TetherEnv } from '../../src/adapters/hono/index.js';
import type { Tether } from '../../src/core/engine.js';
import type { RunningApp } from '../../src/testing/adapter-kit.js';
import { addItem, assertMultipartToken, formCases, formSetup, refused } from './csrf-forms.kit.js';
import type { FormData } from './csrf-forms.kit.js';
import { serveHono } from '../helpers/hono.js';

async function serve(tether: Tether<FormData>, seen: unknown[], options?: HonoAdapterOptions): Promise<RunningApp> {
  const app = new Hono<TetherEnv<FormData>>();
  app.use(sessions(tether, options));
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
  it('hono: form post when its body is over formBodyLimit then 413 PAYLOAD_TOO_LARGE before the handler, by Content-Length or as a chunked body arrives', async (t) => {
    const env = await formSetup(t, (tether, seen) => serve(tether, seen, { formBodyLimit: 256 }));
    const token = encodeURIComponent(env.token);
    const big = `item=tea&_csrf=${token}&pad=${'x'.repeat(300)}`;
    await refused(env, await env.post('/add', big), 413, 'PAYLOAD_TOO_LARGE', 'by Content-Length');
    const chunked = await fetch(`${env.app.url}/add`, {
      method: 'POST', duplex: 'half', signal: AbortSignal.timeout(10_000),
      headers: { cookie: env.cookie, origin: env.app.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new ReadableStream({ start(ctl) { for (let i = 0; i < 4; i++) ctl.enqueue(new TextEncoder().encode(`${i ? '&' : ''}f${i}=${'y'.repeat(100)}`)); ctl.close(); } }),
    });
    const reply = (await chunked.json()) as { error: { code: string; message: string } };
    assert.equal(chunked.status, 413);
    assert.equal(reply.error.code, 'PAYLOAD_TOO_LARGE');
    assert.match(reply.error.message, /formBodyLimit/);
    assert.deepEqual(env.seen, [], 'the handler did not run');
    const small = await env.post('/add', `item=tea&_csrf=${token}`);
    assert.equal(small.status, 200, JSON.stringify(small.json));
    const headerToken = await env.post('/add', `item=cocoa&pad=${'x'.repeat(300)}`, { 'x-csrf-token': env.token });
    assert.equal(headerToken.status, 200, 'with the header token the middleware reads no body, so its limit does not apply');
    assert.deepEqual(await env.cart(), ['tea', 'cocoa']);
  });

  it('hono: formBodyLimit when not a whole number of bytes, or clientAddress when not a function, then OPTIONS_INVALID; by default 100 KiB', async (t) => {
    const env = await formSetup(t, serve);
    for (const formBodyLimit of [0, -1, 1.5, Number.NaN, '1000' as unknown as number]) {
      assert.throws(() => sessions(env.tether, { formBodyLimit }), { code: 'OPTIONS_INVALID' }, String(formBodyLimit));
    }
    assert.equal(DEFAULT_FORM_BODY_LIMIT, 102_400);
    assert.throws(() => sessions(env.tether, { clientAddress: 'x-forwarded-for' as never }), { code: 'OPTIONS_INVALID' }, 'clientAddress is a function');
    const token = encodeURIComponent(env.token);
    const near = `item=tea&_csrf=${token}&pad=`;
    assert.equal((await env.post('/add', near + 'x'.repeat(DEFAULT_FORM_BODY_LIMIT - near.length))).status, 200, 'at the limit');
    const over = await env.post('/add', near + 'x'.repeat(DEFAULT_FORM_BODY_LIMIT - near.length + 1));
    assert.deepEqual([over.status, over.code], [413, 'PAYLOAD_TOO_LARGE'], 'one byte over');
    assert.equal(env.seen.length, 1, 'the handler ran for the post at the limit only');
    assert.deepEqual(await env.cart(), ['tea']);
  });
});
