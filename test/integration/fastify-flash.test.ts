/**
 * @fastify/flash on tether/fastify, registered as its README registers it over @fastify/session
 * (after the session plugin; `request.flash(type, msg)` before a redirect, `reply.flash(type)` on the
 * next page): it reaches the session only through `request.session.get/set`, which Tether's session
 * has. Messages outlive the redirect, are shown once, and live in the store (a second node shows them).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import fastifyFlash from '@fastify/flash';
import { createTether, MemoryStore } from 'tether';
import type { SessionStore } from 'tether';
import { tetherPlugin } from 'tether/fastify';
import { CookieClient } from '../helpers/cookie-client.js';

const SECRET = 'a-long-secret-for-the-fastify-flash-test-0123456789';

async function node(store: SessionStore): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], store }) });
  await app.register(fastifyFlash);
  app.get('/token', async (req) => ({ csrfToken: req.session.csrfToken }));
  app.post('/cart', async (req, reply) => {
    req.flash('info', `Added ${(req.body as { item: string }).item} to your cart.`);
    return reply.redirect('/');
  });
  // A failed post goes back to its form with the error as a flash: set by the error handler.
  app.post('/checkout', async (req) => {
    req.session.set('paid', true);
    throw new Error('the card was declined');
  });
  app.setErrorHandler((err, req, reply) => {
    req.flash('error', (err as Error).message);
    return reply.redirect('/', 303);
  });
  app.get('/', async (req, reply) => ({ info: reply.flash('info'), error: reply.flash('error'), paid: req.session.get('paid') ?? false }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

describe('@fastify/flash on tether/fastify', () => {
  const store = new MemoryStore();
  let a: { app: FastifyInstance; url: string };
  let b: { app: FastifyInstance; url: string };
  before(async () => {
    a = await node(store);
    b = await node(store);
  });
  after(async () => {
    await a.app.close();
    await b.app.close();
  });

  /** A browser with a session and its CSRF token, which every POST sends as X-CSRF-Token. */
  async function browser(): Promise<{ c: CookieClient; headers: Record<string, string> }> {
    const c = new CookieClient(a.url);
    const { csrfToken } = (await c.request('/token')).json<{ csrfToken: string }>();
    return { c, headers: { 'x-csrf-token': csrfToken } };
  }

  it('flash when set before a redirect then the next page shows it once, and the one after shows none', async () => {
    const { c, headers } = await browser();
    const r = await c.request('/cart', { json: { item: 'apples' }, headers });
    assert.equal(r.status, 302);
    assert.deepEqual((await c.request('/')).json(), { info: ['Added apples to your cart.'], error: [], paid: false });
    assert.deepEqual((await c.request('/')).json(), { info: [], error: [], paid: false }, 'shown once: reading it removed it from the stored session');
  });

  it('flash when several are set then another node of the same store shows them together, in order, once', async () => {
    const { c, headers } = await browser();
    await c.request('/cart', { json: { item: 'apples' }, headers });
    await c.request('/cart', { json: { item: 'pears' }, headers });
    const onB = c.clone(b.url);
    assert.deepEqual((await onB.request('/')).json(), { info: ['Added apples to your cart.', 'Added pears to your cart.'], error: [], paid: false });
    assert.deepEqual((await c.request('/')).json(), { info: [], error: [], paid: false }, 'consumed on node B, gone on node A');
  });

  it('flash when the POST lacks the CSRF token then 403 and no message is stored', async () => {
    const { c } = await browser();
    assert.equal((await c.request('/cart', { json: { item: 'apples' } })).status, 403);
    assert.deepEqual((await c.request('/')).json(), { info: [], error: [], paid: false });
  });

  it('flash when set by the error handler of a route that threw then the redirect goes out and the form shows it, without the route\'s own changes', async () => {
    const { c, headers } = await browser();
    const r = await c.request('/checkout', { json: {}, headers });
    assert.equal(r.status, 303, r.body);
    assert.equal(r.location, '/');
    assert.deepEqual((await c.request('/')).json(), { info: [], error: ['the card was declined'], paid: false });
  });

  it('flash when set by the error handler for a visitor without a session then the answer carries the new session\'s cookie', async () => {
    const app = Fastify();
    await app.register(tetherPlugin, { tether: createTether({ secrets: [SECRET], store, csrf: false }) });
    await app.register(fastifyFlash);
    app.post('/fail', async () => { throw new Error('nope'); });
    app.setErrorHandler((err, req, reply) => {
      req.flash('error', (err as Error).message);
      return reply.redirect('/', 303);
    });
    app.get('/', async (_req, reply) => ({ error: reply.flash('error') }));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const fresh = new CookieClient(url);
      const failed = await fresh.request('/fail', { method: 'POST', json: {} });
      assert.equal(failed.status, 303);
      assert.equal(failed.setCookies.length, 1);
      assert.deepEqual((await fresh.request('/')).json(), { error: ['nope'] });
    } finally {
      await app.close();
    }
  });
});
