/**
 * A client that goes away while its request waits at the session's gate (tether/node, tether/express
 * `sessions()`, tether/fastify, tether/hono): once the request gets its turn and loads the session, it gives the gate back at
 * once, since nobody is left to answer. Its handler may never end its response (it answers nobody),
 * and the session's next request must not wait for it. One that goes away once its handler has
 * answered, while the commit waits for an `update()` the handler did not await, loses nothing: the
 * commit stores the change and then gives the gate back.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { createTether } from '../../src/core/engine.js';
import type { Tether } from '../../src/core/engine.js';
import { sessions, sessionOf } from '../../src/adapters/express/index.js';
import { tetherPlugin } from '../../src/adapters/fastify/index.js';
import { withSessions } from '../../src/adapters/node-http/index.js';
import { sessions as honoSessions } from '../../src/adapters/hono/index.js';
import type { TetherEnv } from '../../src/adapters/hono/index.js';
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { sessionState } from '../../src/core/session.js';
import type { Session } from '../../src/core/session.js';
import { CookieClient, listen } from '../helpers/cookie-client.js';
import { latch, leavingRequest } from './express-compat.kit.js';
import { SECRET_A } from '../unit/support.js';
import { serveHono } from '../helpers/hono.js';

type Sess = Session<Record<string, unknown>>;

/**
 * What each app provides: `/start` stores a session, `/slow` holds its turn until `slow` is released,
 * `/never` never answers, `/late` answers with `late`'s update still running, `/visit` writes.
 */
interface App {
  url: string;
  tether: Tether<Record<string, unknown>>;
  slow: ReturnType<typeof latch>;
  late: ReturnType<typeof lateUpdate>;
  /** Resolves when a request for `path` has arrived (before it waits for the session), with its response. */
  arrived(path: string): Promise<ServerResponse>;
}

function arrivals(): { seen: (path: string, res: ServerResponse) => void; arrived: (path: string) => Promise<ServerResponse> } {
  const waiting = new Map<string, (res: ServerResponse) => void>();
  return {
    seen: (path, res) => waiting.get(path)?.(res),
    arrived: (path) => new Promise((resolve) => waiting.set(path, resolve)),
  };
}

/** An update a handler starts and does not await: it adds 10 to `n` once released. */
function lateUpdate() {
  const held = latch();
  let session: Sess | undefined;
  return {
    start(s: Sess): void {
      session = s;
      void s.update(async (d) => {
        held.enter();
        await held.wait;
        d.n = Number(d.n) + 10;
      });
    },
    /** Resolves once the request's commit waits for the update (its handler has answered). */
    async committing(): Promise<void> {
      await held.entered;
      for (let turns = 0; sessionState(session!).afterUpdates === null; turns++) {
        assert.ok(turns < 10_000, 'the commit never began');
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
    release: held.release,
  };
}

/** What every app is made of: an engine whose gate waits 2 s at most, the latches, the arrivals. */
function parts() {
  const tether = createTether<Record<string, unknown>>({ secrets: [SECRET_A], store: new MemoryStore(), gateTimeoutMs: 2_000 });
  return { tether, slow: latch(), never: latch(), late: lateUpdate(), seen: arrivals() };
}

async function expressApp(t: TestContext): Promise<App> {
  const { tether, slow, never, late, seen } = parts();
  const app = express();
  app.use((req, res, next) => (seen.seen(req.path, res), next()));
  // Every request is a writer (it waits its turn at the gate); no CSRF, these are plain GETs.
  app.use(sessions(tether, { csrf: false, write: () => true }));
  app.get('/start', (req, res) => (sessionOf<Record<string, unknown>>(req).set('n', 0), res.json({ ok: true })));
  app.get('/slow', async (req, res) => {
    slow.enter();
    await slow.wait;
    res.json({ ok: true });
  });
  app.get('/never', async () => {
    await never.wait;
  });
  app.get('/late', (req, res) => {
    late.start(sessionOf<Record<string, unknown>>(req));
    res.json({ ok: true });
  });
  app.get('/visit', async (req, res) => {
    await sessionOf<Record<string, unknown>>(req).update((d) => void (d.n = Number(d.n) + 1));
    res.json({ n: sessionOf<Record<string, unknown>>(req).get('n') });
  });
  const server = await listen(app);
  t.after(async () => {
    never.release();
    await server.close();
  });
  return { url: server.url, tether, slow, late, arrived: seen.arrived };
}

async function fastifyApp(t: TestContext): Promise<App> {
  const { tether, slow, never, late, seen } = parts();
  const app = Fastify();
  app.addHook('onRequest', (req, reply, done) => {
    seen.seen(req.url, reply.raw);
    done();
  });
  await app.register(tetherPlugin, { tether, csrf: false });
  const config = { tether: { write: true } };
  app.get('/start', { config }, async (req) => (req.session.set('n', 0), { ok: true }));
  app.get('/slow', { config }, async () => {
    slow.enter();
    await slow.wait;
    return { ok: true };
  });
  app.get('/never', { config }, async () => {
    await never.wait;
    return {};
  });
  app.get('/late', { config }, async (req) => {
    late.start(req.session);
    return { ok: true };
  });
  app.get('/visit', { config }, async (req) => {
    await req.session.update((d) => void (d.n = Number(d.n) + 1));
    return { n: req.session.get('n') };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  t.after(async () => {
    never.release();
    await app.close();
  });
  return { url: `http://127.0.0.1:${port}`, tether, slow, late, arrived: seen.arrived };
}

async function nodeApp(t: TestContext): Promise<App> {
  const { tether, slow, never, late, seen } = parts();
  const handler = withSessions(tether, async (req, res, session) => {
    if (req.url === '/start') session.set('n', 0);
    else if (req.url === '/slow') {
      slow.enter();
      await slow.wait;
    } else if (req.url === '/never') {
      // Ends its response some day, long after its client left.
      void never.wait.then(() => res.end());
      return;
    } else if (req.url === '/late') late.start(session);
    else await session.update((d) => void (d.n = Number(d.n) + 1));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.url === '/visit' ? { n: session.get('n') } : { ok: true }));
  }, { csrf: false, write: () => true });
  const server = await listen((req, res) => {
    seen.seen(req.url!, res);
    void handler(req, res);
  });
  t.after(async () => {
    never.release();
    await server.close();
  });
  return { url: server.url, tether, slow, late, arrived: seen.arrived };
}

async function honoApp(t: TestContext): Promise<App> {
  const { tether, slow, never, late, seen } = parts();
  const app = new Hono<TetherEnv<Record<string, unknown>> & { Bindings: HttpBindings }>();
  app.use(async (c, next) => {
    seen.seen(c.req.path, c.env.outgoing);
    await next();
  });
  app.use(honoSessions(tether, { csrf: false, write: () => true }));
  app.get('/start', (c) => (c.get('session').set('n', 0), c.json({ ok: true })));
  app.get('/slow', async (c) => {
    slow.enter();
    await slow.wait;
    return c.json({ ok: true });
  });
  app.get('/never', async (c) => {
    await never.wait;
    return c.json({});
  });
  app.get('/late', (c) => {
    late.start(c.get('session'));
    return c.json({ ok: true });
  });
  app.get('/visit', async (c) => {
    await c.get('session').update((d) => void (d.n = Number(d.n) + 1));
    return c.json({ n: c.get('session').get('n') });
  });
  const running = await serveHono(app);
  t.after(async () => {
    never.release();
    await running.close();
  });
  return { url: running.url, tether, slow, late, arrived: seen.arrived };
}

for (const [name, start] of [['node:http withSessions()', nodeApp], ['hono sessions()', honoApp], ['express sessions()', expressApp], ['fastify plugin', fastifyApp]] as const) {
  describe(`${name}: a client that goes away while waiting for the session`, () => {
    it('early close when the request waited at the gate and its handler never answers then the session\'s next request does not wait for it', async (t) => {
      const app = await start(t);
      const c = new CookieClient(app.url);
      assert.equal((await c.request('/start')).status, 200);
      const first = c.request('/slow');
      await app.slow.entered;
      const arrived = app.arrived('/never');
      const gone = leavingRequest(app.url, '/never', `sid=${c.get('sid')}`);
      const res = await arrived;
      // It has come in and now waits behind /slow.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(app.tether.stats().gateWaiting, 1);
      const closed = new Promise((resolve) => res.once('close', resolve));
      gone.leave();
      await closed;
      app.slow.release();
      assert.equal((await first).status, 200);
      const next = await c.request('/visit');
      assert.deepEqual([next.status, next.json()], [200, { n: 1 }], 'not 503 SESSION_BUSY after gateTimeoutMs');
      assert.deepEqual([app.tether.stats().gateHolding, app.tether.stats().gateWaiting], [0, 0]);
    });

    it('early close when the commit waits for an update the handler did not await then the update\'s change is stored and the next writer gets its turn once it is', async (t) => {
      const app = await start(t);
      const c = new CookieClient(app.url);
      assert.equal((await c.request('/start')).status, 200);
      const arrived = app.arrived('/late');
      const gone = leavingRequest(app.url, '/late', `sid=${c.get('sid')}`);
      const res = await arrived;
      await app.late.committing();
      const closed = new Promise((resolve) => res.once('close', resolve));
      gone.leave();
      await closed;
      const visiting = app.arrived('/visit');
      const next = c.request('/visit');
      await visiting;
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual([app.tether.stats().gateHolding, app.tether.stats().gateWaiting], [1, 1], 'the commit still holds the gate, and the next writer waits for it');
      app.late.release();
      const visit = await next;
      assert.deepEqual([visit.status, visit.json()], [200, { n: 11 }], 'the late change was stored, and not 503 SESSION_BUSY');
      assert.deepEqual([app.tether.stats().gateHolding, app.tether.stats().gateWaiting], [0, 0]);
    });
  });
}
