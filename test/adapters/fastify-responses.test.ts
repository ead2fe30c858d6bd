/**
 * tether/fastify commits in onSend: a failed commit turns the reply into the error alone; with a real
 * Fastify server on loopback and a store whose writes fail on demand.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { createTether, MemoryStore } from '../../src/index.js';
import type { SessionRecord } from '../../src/index.js';
import { tetherPlugin } from '../../src/adapters/fastify/index.js';
import { CookieClient } from '../helpers/cookie-client.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;

let running: FastifyInstance | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
});

/** A MemoryStore whose writes reject while `failing.on` is set. */
function failingStore(): { store: MemoryStore; failing: { on: boolean } } {
  const store = new MemoryStore();
  const failing = { on: false };
  const set = store.set.bind(store);
  store.set = async (record: SessionRecord, expected: number) => {
    if (failing.on) throw new Error('disk full');
    return set(record, expected);
  };
  return { store, failing };
}

async function start(setup: (app: FastifyInstance) => void): Promise<{ c: CookieClient; failing: { on: boolean } }> {
  const { store, failing } = failingStore();
  const app = Fastify();
  await app.register(tetherPlugin, { tether: createTether<Data>({ secrets: [SECRET], store, csrf: false }) });
  app.get('/read', async (req) => req.session.data);
  setup(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  running = app;
  return { c: new CookieClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`), failing };
}

describe('fastify adapter: a failed commit', () => {
  it('when the commit fails then the error goes out without the handler\'s cookies, Location or other headers', async () => {
    const { c, failing } = await start((app) => {
      app.post('/remember', async (req, reply) => {
        req.session.set('n', 1);
        reply.raw.setHeader('x-raw', 'yes');
        void reply.code(201).header('set-cookie', 'remember=TOKEN; Path=/').header('location', '/account').header('x-handler', 'yes');
        return { ok: true };
      });
    });
    failing.on = true;
    const r = await c.request('/remember', { method: 'POST' });
    assert.equal(r.status, 503);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'STORE_UNAVAILABLE');
    assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('retry-after'), '1');
    assert.deepEqual(r.setCookies, [], 'none of the handler\'s cookies go out with the error');
    assert.equal(r.headers.get('location'), null);
    assert.equal(r.headers.get('x-handler'), null);
    assert.equal(r.headers.get('x-raw'), null);
    failing.on = false;
    assert.deepEqual((await c.request('/read')).json(), {}, 'nothing was stored');
  });
});
