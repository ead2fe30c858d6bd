/**
 * Optional sessions beyond the conformance suite's cases (src/testing/adapter-cases-optional.ts): the
 * `session` option checked when the middleware is made, a commit that fails for a reason other than the
 * store (still answered as an error), an unsafe route whose CSRF checks are off (run without a session),
 * and a hijacked Fastify reply. Real servers on loopback over a FaultyStore.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { createTether, MemoryStore } from '../../src/index.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';
import { withSessions } from '../../src/adapters/node-http/index.js';
import { sessions as expressSessions } from '../../src/adapters/express/index.js';
import { sessions as honoSessions } from '../../src/adapters/hono/index.js';
import { optionalSession, tetherPlugin } from '../../src/adapters/fastify/index.js';
import { CookieClient, serverPerTest, listen } from '../helpers/cookie-client.js';
import type { Reply } from '../helpers/cookie-client.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';

function codeOf(r: Reply): string | undefined {
  return r.json<{ error?: { code?: string } }>().error?.code;
}
type Data = { n?: number; blob?: string };

const served = serverPerTest();
let fastify: FastifyInstance | null = null;
afterEach(async () => {
  await fastify?.close();
  fastify = null;
});

function engine(options: { maxSessionBytes?: number } = {}) {
  const store = new FaultyStore(new MemoryStore());
  return { store, tether: createTether<Data>({ secrets: [SECRET], store, ...options }) };
}

describe('optional sessions: the session option', () => {
  it('session option when it is neither \'optional\', \'required\' nor a function then the middleware is not made: OPTIONS_INVALID naming the option', () => {
    const { tether } = engine();
    for (const bad of ['sometimes', true, 1]) {
      assert.throws(() => withSessions(tether, () => {}, { session: bad as never }), { code: 'OPTIONS_INVALID', message: /tether\/node withSessions\(\) options\.session must be/ });
      assert.throws(() => expressSessions(tether, { session: bad as never }), { code: 'OPTIONS_INVALID', message: /tether\/express sessions\(\) options\.session must be/ });
      assert.throws(() => honoSessions(tether, { session: bad as never }), { code: 'OPTIONS_INVALID', message: /tether\/hono sessions\(\) options\.session must be/ });
    }
    for (const good of ['optional', 'required', (): 'optional' => 'optional', undefined] as const) {
      assert.doesNotThrow(() => withSessions(tether, () => {}, { session: good }));
      assert.doesNotThrow(() => expressSessions(tether, { session: good }));
      assert.doesNotThrow(() => honoSessions(tether, { session: good }));
    }
  });
});

describe('optional sessions: typing', () => {
  it('handler of withSessions when the session option may make its session optional then tsc refuses a read of it unchecked', () => {
    const { tether } = engine();
    // @ts-expect-error: under the option the session is `Session | null`
    withSessions(tether, (_req, res, session) => res.end(String(session.data.n)), { session: 'optional' });
    // @ts-expect-error: a function may give 'optional' for any request
    withSessions(tether, (_req, res, session) => res.end(String(session.data.n)), { session: () => 'required' });
    withSessions(tether, (_req, res, session) => res.end(String(session?.data.n)), { session: 'optional' });
    withSessions(tether, (_req, res, session) => res.end(String(session.data.n)), { session: 'required' });
    withSessions(tether, (_req, res, session) => res.end(String(session.data.n)), { csrf: false });
  });
});

describe('optional sessions: tether/node', () => {
  /** GET /visit and POST /hook (CSRF off) count visits in an optional session; POST /fill grows it. */
  async function serve(maxSessionBytes?: number) {
    const { store, tether } = engine(maxSessionBytes === undefined ? {} : { maxSessionBytes });
    served.current = await listen(withSessions(tether, (req, res, session) => {
      if (session !== null) {
        if (req.url === '/fill') session.set('blob', 'x'.repeat(4096));
        else session.set('n', (session.data.n ?? 0) + 1);
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ session: session === null ? null : session.data.n ?? null }));
    }, { session: 'optional', csrf: (req) => req.url === '/visit' }));
    return { store, tether, c: new CookieClient(served.current.url) };
  }

  it('optional session when its commit fails for another reason than the store (SESSION_TOO_LARGE) then that is still answered 413; one the store cannot take lets the answer out', async () => {
    const { store, c } = await serve(1024);
    assert.equal((await c.request('/visit')).status, 200);
    const tooLarge = await c.request('/fill', { method: 'POST' });
    assert.equal(tooLarge.status, 413);
    assert.equal(codeOf(tooLarge), 'SESSION_TOO_LARGE');
    store.fail('set', 'reject');
    const down = await c.request('/visit');
    assert.equal(down.status, 200);
    assert.deepEqual(down.json(), { session: 2 });
    assert.deepEqual(down.setCookies, []);
  });

  it('unsafe request on a route whose CSRF checks are off when the store is down then the handler runs without a session, and no cookie is set or cleared', async () => {
    const { store, c } = await serve();
    assert.deepEqual((await c.request('/visit')).json(), { session: 1 });
    store.fail('get', 'reject');
    const hook = await c.request('/hook', { method: 'POST' });
    assert.equal(hook.status, 200);
    assert.deepEqual(hook.json(), { session: null });
    assert.deepEqual(hook.setCookies, []);
    const checked = await c.request('/visit', { method: 'POST', json: {}, headers: { origin: served.current!.url } });
    assert.equal(checked.status, 503, 'a route whose CSRF checks apply cannot run without the session holding its token');
    assert.equal(codeOf(checked), 'STORE_UNAVAILABLE');
    store.heal();
    assert.deepEqual((await c.request('/visit')).json(), { session: 2 }, 'the cookie kept through the outage names the session still');
  });
});

describe('optional sessions: tether/fastify', () => {
  it('route config when its tether.session is neither true, false nor \'optional\' then declaring the route throws OPTIONS_INVALID naming it', async () => {
    const { tether } = engine();
    const app = Fastify();
    fastify = app;
    await app.register(tetherPlugin, { tether });
    for (const bad of ['optinal', 'required', 0]) {
      assert.throws(() => app.get(`/bad-${String(bad)}`, { config: { tether: { session: bad as never } } }, async () => ({})),
        { code: 'OPTIONS_INVALID', message: new RegExp(`GET /bad-${String(bad)} route's config\\.tether\\.session must be`) });
    }
    for (const good of [true, false, 'optional'] as const) assert.doesNotThrow(() => app.get(`/good-${String(good)}`, { config: { tether: { session: good } } }, async () => ({})));
  });


  it('hijacked reply on an optional route when its commit fails with the store unavailable then its raw answer goes out without Set-Cookie, and the failure is counted', async () => {
    const { store, tether } = engine();
    const app = Fastify();
    fastify = app;
    await app.register(tetherPlugin, { tether });
    app.get('/raw', { config: { tether: { session: 'optional' } } }, (req, reply) => {
      const session = optionalSession(req);
      session?.set('n', (Number(session.data.n) || 0) + 1);
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      reply.raw.end(session === null ? 'n=none' : `n=${Number(session.data.n)}`);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const c = new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    const first = await c.request('/raw');
    assert.equal(first.body, 'n=1');
    assert.equal(first.setCookies.length, 1, 'the new session\'s cookie');
    store.fail('set', 'reject');
    const errors = tether.stats().storeErrors;
    const failed = await c.request('/raw');
    assert.equal(failed.status, 200);
    assert.equal(failed.body, 'n=2');
    assert.deepEqual(failed.setCookies, []);
    assert.equal(tether.stats().storeErrors, errors + 1);
    store.heal().fail('get', 'reject');
    const down = await c.request('/raw');
    assert.equal(down.status, 200);
    assert.equal(down.body, 'n=none');
    assert.deepEqual(down.setCookies, []);
  });
});
