/**
 * tether/fastify with `csrf.forms`: a form post's token is checked in preValidation, once Fastify has
 * parsed the body by the real @fastify/formbody and @fastify/multipart (`attachFieldsToBody`).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import formBodyPlugin from '@fastify/formbody';
import multipartPlugin from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { tetherPlugin } from '../../src/adapters/fastify/index.js';
import { createTether } from '../../src/index.js';
import type { Tether } from '../../src/core/engine.js';
import type { Session } from '../../src/core/session.js';
import type { RunningApp } from '../../src/testing/adapter-kit.js';
import { addItem, assertMultipartToken, formCases, formSetup } from './csrf-forms.kit.js';
import type { FormData } from './csrf-forms.kit.js';

/** A urlencoded body parser: the real @fastify/formbody. */
const formbody = (app: FastifyInstance): PromiseLike<unknown> => app.register(formBodyPlugin);

/** Multipart forms: the real @fastify/multipart, its fields on the body ({ type: 'field', fieldname, value, … }; a repeated one as an array). */
const multipartFields = (app: FastifyInstance): PromiseLike<unknown> => app.register(multipartPlugin, { attachFieldsToBody: true });

async function serve(tether: Tether<FormData>, seen: unknown[], parsers: (app: FastifyInstance) => unknown): Promise<RunningApp> {
  const app = Fastify();
  await parsers(app);
  await app.register(tetherPlugin, { tether });
  const session = (req: { session: unknown }): Session<FormData> => req.session as Session<FormData>;
  app.get('/token', async (req) => ({ token: req.session.csrfToken }));
  app.get('/state', async (req) => ({ cart: session(req).data.cart ?? [] }));
  // The cart only: @fastify/multipart's field objects refer to one another (`fields`), so they are not JSON.
  app.post('/add', async (req) => ({ cart: (await addItem(session(req), req.body, seen)).cart }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

describe('fastify plugin with csrf.forms', () => {
  formCases('fastify', (tether, seen) => serve(tether, seen, formbody));

  it('fastify: multipart form post (@fastify/multipart, attachFieldsToBody) when _csrf carries the token then passes; repeated then 403', async (t) => {
    const env = await formSetup(t, (tether, seen) => serve(tether, seen, multipartFields));
    await assertMultipartToken(env);
    assert.equal(env.seen.length, 1);
    const fields = (env.seen)[0] as { item?: { value?: string } };
    assert.equal(fields.item?.value, 'tea', 'the handler sees the parser\'s own shapes');
  });

  it('fastify: form post when the registered parser gives no object then 403 CSRF_TOKEN_INVALID saying to register a form body parser', async (t) => {
    const env = await formSetup(t, (tether, seen) => serve(tether, seen, (app) => {
      app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    }));
    const reply = await env.post('/add', `item=tea&_csrf=${encodeURIComponent(env.token)}`);
    assert.equal(reply.status, 403);
    assert.equal(reply.code, 'CSRF_TOKEN_INVALID');
    assert.match(reply.message!, /Register a form body parser: @fastify\/formbody/);
    assert.deepEqual(env.seen, []);
    assert.deepEqual(await env.cart(), []);
  });

  it('fastify: form post when no parser is registered for its type then Fastify\'s own 415, before the handler', async (t) => {
    const env = await formSetup(t, (tether, seen) => serve(tether, seen, () => {}));
    const reply = await env.post('/add', `item=tea&_csrf=${encodeURIComponent(env.token)}`);
    assert.equal(reply.status, 415);
    assert.deepEqual(env.seen, []);
    assert.deepEqual(await env.cart(), []);
  });
});

describe('fastify plugin with csrf.forms: the error handler', () => {
  it('fastify: form post whose body fails to parse, its token unread, when the error handler sets a flash then nothing is stored; one whose token was read and whose route threw stores it', async () => {
    const app = Fastify({ bodyLimit: 256 });
    await app.register(formBodyPlugin);
    await app.register(tetherPlugin, { tether: createTether({ secrets: ['a-test-secret-of-at-least-32-characters!!'], csrf: { forms: true } }) });
    app.get('/token', async (req) => ({ token: req.session.csrfToken }));
    app.get('/state', async (req) => ({ flash: req.session.get('flash') ?? null }));
    app.post('/add', async () => { throw new Error('out of stock'); });
    app.setErrorHandler((err: Error, req, reply) => {
      try {
        req.session.set('flash', err.message);
      } catch {
        // The session takes no change for this request.
      }
      return reply.code(303).header('location', '/').send();
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const first = await fetch(`${url}/token`);
      const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!;
      const { token } = await first.json() as { token: string };
      const post = (body: string): Promise<Response> => fetch(`${url}/add`, {
        method: 'POST', redirect: 'manual', headers: { cookie, origin: url, 'content-type': 'application/x-www-form-urlencoded' }, body,
      });
      const state = async (): Promise<unknown> => ((await (await fetch(`${url}/state`, { headers: { cookie } })).json()) as { flash: unknown }).flash;
      assert.equal((await post(`item=${'x'.repeat(400)}&_csrf=${encodeURIComponent(token)}`)).status, 303);
      assert.equal(await state(), null, 'a body never parsed: its token never checked, nothing stored');
      assert.equal((await post(`item=tea&_csrf=${encodeURIComponent(token)}`)).status, 303);
      assert.equal(await state(), 'out of stock');
    } finally {
      await app.close();
    }
  });
});
