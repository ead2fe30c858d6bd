/**
 * tether/express and a route that fails after it began its response, while the response is held for
 * its session's commit: Express's error handling sees what it would see without Tether (a response
 * whose head is out), so the client gets what Express gives without Tether (the answer, or the part
 * written and then a cut connection) and the process stays up. Also: callbacks of a response whose
 * commit failed, and `sessions()` mounted twice. Real Express apps on loopback.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import express from 'express';
import type { Express, Request } from 'express';
import { createTether, MemoryStore } from '../../src/index.js';
import type { SessionStore } from '../../src/index.js';
import session, { sessions, sessionOf, sessionErrors } from '../../src/adapters/express/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';
import { listen, CookieClient, serverPerTest } from '../helpers/cookie-client.js';
import { slowStore } from '../fixtures/stores.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;

/** The server each test starts, closed after it. */
const served = serverPerTest();

/** Exceptions nothing caught while the test runs (Express's final handler throwing in a callback, say). */
function uncaughtDuring(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const on = (err: unknown): void => void seen.push(err);
  process.on('uncaughtException', on);
  t.after(() => void process.off('uncaughtException', on));
  return seen;
}

interface Outcome {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** What arrived of the body, complete or not. */
  body: string;
  /** The connection was cut before the body ended. */
  cut: boolean;
}

/**
 * A request with node:http, read to its end or to a cut connection; with `late`, the body is sent in
 * two halves 100 ms apart, so the route can answer before the request has arrived whole, and the
 * outcome comes once both the answer and the request's body are through.
 */
function send(url: string, path: string, options: { method?: string; cookie?: string; late?: string } = {}): Promise<Outcome> {
  let sent!: () => void;
  const bodySent = new Promise<void>((resolve) => (sent = resolve));
  return new Promise<Outcome>((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (options.cookie !== undefined) headers.cookie = options.cookie;
    if (options.late !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = Buffer.byteLength(options.late);
    }
    const req = http.request(url + path, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, cut: false }));
      res.on('error', () => resolve({ status: res.statusCode!, headers: res.headers, body, cut: true }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${path} timed out`)));
    req.on('error', reject);
    // Through when sent whole, or when the connection closed first.
    req.on('close', sent);
    if (options.late === undefined) {
      req.end(sent);
    } else {
      const half = Math.floor(options.late.length / 2);
      req.write(options.late.slice(0, half));
      setTimeout(() => req.end(options.late!.slice(half), sent), 100);
    }
  }).then(async (outcome) => {
    await bodySent;
    return outcome;
  });
}

/** The `name=value` of the session cookie an answer set. */
function cookieOf(o: Outcome, name = 'sid'): string {
  const line = (o.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${name}=`));
  assert.ok(line, `the answer sets the ${name} cookie`);
  return line.split(';')[0]!;
}

/** An app whose routes `routes` adds, served.current as 'test' so that Express's final handler prints no stacks, and GET /health. */
function appOf(mount: (app: Express) => void, routes: (app: Express) => void): Express {
  const app = express();
  app.set('env', 'test');
  mount(app);
  routes(app);
  app.get('/health', (_req, res) => void res.send('ok'));
  return app;
}

const CSV = 'id,name\n1,alice\n';

describe('express-session drop-in: a route that fails after answering', () => {
  const dropIn = (app: Express): void => void app.use(session({ secret: SECRET, resave: false, saveUninitialized: false }));

  it('when a route sends its answer and then throws then the client gets that answer and the process stays up', async (t) => {
    const uncaught = uncaughtDuring(t);
    served.current = await listen(appOf(dropIn, (app) => {
      app.get('/export', async (req, res) => {
        req.session.exported = true;
        res.send('done');
        throw new Error('failed after answering');
      });
    }));
    const r = await send(served.current.url, '/export');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'done');
    assert.ok(cookieOf(r));
    assert.equal((await send(served.current.url, '/health')).body, 'ok');
    assert.deepEqual(uncaught, []);
  });

  it('when a route writes part of its body and then throws then the client gets the head and that part, the connection is cut, and the process stays up', async (t) => {
    const uncaught = uncaughtDuring(t);
    served.current = await listen(appOf(dropIn, (app) => {
      app.get('/export', async (_req, res) => {
        res.type('text/csv');
        res.write(CSV);
        throw new Error('failed mid-export');
      });
    }));
    const r = await send(served.current.url, '/export');
    assert.deepEqual({ status: r.status, type: r.headers['content-type'], body: r.body, cut: r.cut }, { status: 200, type: 'text/csv; charset=utf-8', body: CSV, cut: true });
    assert.equal((await send(served.current.url, '/health')).body, 'ok');
    assert.deepEqual(uncaught, []);
  });
});

declare module 'express-session' {
  interface SessionData {
    exported?: boolean;
  }
}

describe('express adapter: a route that fails after answering, its commit pending', () => {
  const native = (store: SessionStore) => (app: Express): void => {
    app.use(sessions(createTether<Data>({ secrets: [SECRET], store }), { csrf: false }));
    app.get('/read', (req, res) => void res.json(sessionOf<Data>(req).data));
  };

  for (const withErrors of [false, true]) {
    it(`when a route answers a POST before its body has arrived and then throws ${withErrors ? 'with' : 'without'} sessionErrors() then the client gets the answer, the session is stored and the process stays up`, async (t) => {
      const uncaught = uncaughtDuring(t);
      const store = new SqliteStore({ path: ':memory:' });
      t.after(() => store.close());
      const app = express();
      app.set('env', 'test');
      app.use(sessions(createTether<Data>({ secrets: [SECRET], store }), { csrf: false }));
      app.post('/upload', async (req, res) => {
        sessionOf<Data>(req).set('seen', true);
        res.status(202).json({ accepted: true });
        await Promise.resolve();
        throw new Error('failed after answering');
      });
      app.get('/read', (req, res) => void res.json(sessionOf<Data>(req).data));
      if (withErrors) app.use(sessionErrors());
      app.get('/health', (_req, res) => void res.send('ok'));
      served.current = await listen(app);
      const r = await send(served.current.url, '/upload', { method: 'POST', late: '0123456789'.repeat(2) });
      assert.equal(r.status, 202);
      assert.deepEqual(JSON.parse(r.body), { accepted: true });
      assert.deepEqual(JSON.parse((await send(served.current.url, '/read', { cookie: cookieOf(r) })).body), { seen: true });
      assert.equal((await send(served.current.url, '/health')).body, 'ok');
      assert.deepEqual(uncaught, []);
    });
  }

  it('when a route answers a GET and then throws, over a store that answers by promise, then the client gets the answer and the process stays up', async (t) => {
    const uncaught = uncaughtDuring(t);
    served.current = await listen(appOf(native(new FaultyStore(new MemoryStore())), (app) => {
      app.get('/visit', async (req, res) => {
        sessionOf<Data>(req).set('visited', true);
        res.json({ ok: true });
        await Promise.resolve();
        throw new Error('failed after answering');
      });
    }));
    const r = await send(served.current.url, '/visit');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ok: true });
    assert.deepEqual(JSON.parse((await send(served.current.url, '/read', { cookie: cookieOf(r) })).body), { visited: true });
    assert.equal((await send(served.current.url, '/health')).body, 'ok');
    assert.deepEqual(uncaught, []);
  });

  it('when a route writes part of its body and then throws without sessionErrors() then the client gets the 200 head with the session cookie and that part, and the connection is cut', async (t) => {
    const uncaught = uncaughtDuring(t);
    served.current = await listen(appOf(native(slowStore(30)), (app) => {
      app.get('/export', async (req, res) => {
        sessionOf<Data>(req).set('exported', true);
        res.setHeader('content-type', 'text/csv');
        res.write(CSV);
        throw new Error('failed mid-export');
      });
    }));
    const r = await send(served.current.url, '/export');
    assert.deepEqual({ status: r.status, type: r.headers['content-type'], body: r.body, cut: r.cut }, { status: 200, type: 'text/csv', body: CSV, cut: true });
    assert.equal(r.headers['content-length'], undefined, 'no error page announced over the part written');
    // The commit began with the first write, as when the head goes out at once: its session stands.
    assert.deepEqual(JSON.parse((await send(served.current.url, '/read', { cookie: cookieOf(r) })).body), { exported: true });
    assert.deepEqual(uncaught, []);
  });
});

describe('express adapter: a commit that fails', () => {
  it('when the commit fails then the callbacks given to res.write and res.end are called and the route finishes', async () => {
    const store = new FaultyStore(new MemoryStore());
    const finishedRoutes: string[] = [];
    const app = appOf((a) => void a.use(sessions(createTether<Data>({ secrets: [SECRET], store }), { csrf: false })), (a) => {
      a.get('/end', async (req, res) => {
        sessionOf<Data>(req).set('n', 1);
        await new Promise<void>((resolve) => res.end('body', () => resolve()));
        finishedRoutes.push('/end');
      });
      a.get('/write', async (req, res) => {
        sessionOf<Data>(req).set('n', 1);
        await new Promise<void>((resolve) => res.write('chunk', () => resolve()));
        res.end();
        finishedRoutes.push('/write');
      });
    });
    served.current = await listen(app);
    store.fail('set', 'reject');
    const c = new CookieClient(served.current.url);
    assert.equal((await c.request('/end')).status, 503);
    assert.equal((await c.request('/write')).status, 503);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(finishedRoutes, ['/end', '/write']);
  });
});

describe('express adapter: sessions() mounted twice', () => {
  it('when sessions() of one engine is mounted on the app and again on a router then a write to a stored session answers at once and its change is stored', async () => {
    const tether = createTether<Data>({ secrets: [SECRET], store: new MemoryStore(), gateTimeoutMs: 1000 });
    const app = express();
    app.use(sessions(tether, { csrf: false }));
    const router = express.Router();
    router.use(sessions(tether, { csrf: false }));
    router.post('/count', (req: Request, res) => {
      const s = sessionOf<Data>(req);
      s.set('n', Number(s.get('n') ?? 0) + 1);
      res.json({ n: s.get('n') });
    });
    app.use('/sub', router);
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    assert.deepEqual((await c.request('/sub/count', { method: 'POST' })).json(), { n: 1 });
    // Its session stored, the next write waits at that session's gate, which the first mount holds.
    const started = Date.now();
    const r = await c.request('/sub/count', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { n: 2 });
    assert.ok(Date.now() - started < 500, 'not held at the gate until gateTimeoutMs');
  });

  it('when the app\'s mount has the CSRF checks off and the router\'s has them on then a post to the router without its token is refused 403 and stores nothing', async () => {
    const tether = createTether<Data>({ secrets: [SECRET], store: new MemoryStore(), gateTimeoutMs: 1000 });
    const app = express();
    app.use(sessions(tether, { csrf: false }));
    app.post('/start', (req: Request, res) => {
      const s = sessionOf<Data>(req);
      s.set('n', 1);
      res.json({ token: s.csrfToken });
    });
    const router = express.Router();
    router.use(sessions(tether));
    router.post('/write', (req: Request, res) => {
      sessionOf<Data>(req).set('n', 2);
      res.json({ ok: true });
    });
    app.use('/sub', router);
    app.get('/read', (req: Request, res) => res.json(sessionOf<Data>(req).data));
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    const { token } = (await c.request('/start', { method: 'POST' })).json<{ token: string }>();
    const origin = { origin: c.base };
    const refused = await c.request('/sub/write', { method: 'POST', json: {}, headers: origin });
    assert.equal(refused.status, 403, refused.body);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'CSRF_TOKEN_INVALID');
    const foreign = await c.request('/sub/write', { method: 'POST', json: {}, headers: { origin: 'https://evil.example', 'x-csrf-token': token } });
    assert.equal(foreign.status, 403, foreign.body);
    assert.equal(foreign.json<{ error: { code: string } }>().error.code, 'ORIGIN_MISMATCH');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 }, 'nothing was stored');
    const accepted = await c.request('/sub/write', { method: 'POST', json: {}, headers: { ...origin, 'x-csrf-token': token } });
    assert.equal(accepted.status, 200, accepted.body);
    assert.deepEqual((await c.request('/read')).json(), { n: 2 });
  });
});
