/**
 * The adapters over HTTP/2 (cleartext h2c, as behind a proxy that speaks it to the app): a request
 * names its authority in `:authority` and carries no Host, so the default origin check must read it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:http2';
import type { Http2Server, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { createTether, MemoryStore } from '../../src/index.js';
import type { Tether } from '../../src/index.js';
import { withSessions } from '../../src/adapters/node-http/index.js';
import { tetherPlugin } from '../../src/adapters/fastify/index.js';
import { sessions } from '../../src/adapters/hono/index.js';
import type { TetherEnv } from '../../src/adapters/hono/index.js';
import { SECRET_A } from '../unit/support.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request over a new h2c connection; the client sends `:authority` and no Host, as browsers do. */
function h2(port: number, headers: OutgoingHttpHeaders, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const client = connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request(headers);
    req.setTimeout(5_000, () => req.close());
    let status = 0;
    let got: IncomingHttpHeaders = {};
    let text = '';
    req.on('response', (h) => {
      got = h;
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('error', reject);
    req.on('close', () => {
      client.close();
      resolve({ status, headers: got, body: text });
    });
    req.end(body);
  });
}

function engine(): Tether {
  return createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A] });
}

/** GET /token (a session and its CSRF token), then POST /write with `origin`; the POST's answer. */
async function postFrom(port: number, origin: string): Promise<Answer> {
  const first = await h2(port, { ':method': 'GET', ':path': '/token' });
  assert.equal(first.status, 200);
  const cookie = String(first.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  assert.match(cookie, /^sid=/);
  const { token } = JSON.parse(first.body) as { token: string };
  return h2(port, { ':method': 'POST', ':path': '/write', cookie, origin, 'x-csrf-token': token, 'content-type': 'application/json' }, '{}');
}

async function listening(server: Http2Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Same origin passes, another origin is refused: the check compared with the authority, not nothing. */
async function checkOrigins(port: number): Promise<void> {
  const same = await postFrom(port, `http://127.0.0.1:${port}`);
  assert.equal(same.status, 200, same.body);
  const other = await postFrom(port, 'http://evil.example');
  assert.equal(other.status, 403);
  assert.equal((JSON.parse(other.body) as { error: { code: string } }).error.code, 'ORIGIN_MISMATCH');
}

/**
 * On one HTTP/2 connection: a session, a writer holding its gate for 300 ms, and a second writer (a long
 * poll that never answers) whose client resets its stream at 100 ms, while it waits for the gate. The
 * session's next write must then be answered at once: the reset writer's turn given back, its handler
 * never run. Returns that write's status and how long it took.
 */
async function nextWriteAfterLeftWhileWaiting(port: number): Promise<{ status: number; ms: number }> {
  const client = connect(`http://127.0.0.1:${port}`);
  try {
    const post = (path: string, cookie: string, resetAfterMs?: number): Promise<Answer> => new Promise((resolve, reject) => {
      const req = client.request({ ':method': 'POST', ':path': path, cookie, 'content-type': 'application/json' });
      let status = 0;
      let headers: IncomingHttpHeaders = {};
      req.on('response', (h) => {
        headers = h;
        status = Number(h[':status']);
      });
      req.resume();
      req.on('error', reject);
      req.on('close', () => resolve({ status, headers, body: '' }));
      req.end('{}');
      if (resetAfterMs !== undefined) setTimeout(() => req.close(), resetAfterMs);
    });
    const start = await post('/start', '');
    const cookie = String(start.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
    assert.match(cookie, /^sid=/);
    const slow = post('/slow', cookie);
    await new Promise((r) => setTimeout(r, 50));
    const poll = post('/poll', cookie, 100);
    assert.equal((await slow).status, 200);
    await poll;
    const t0 = Date.now();
    const { status } = await post('/write', cookie);
    return { status, ms: Date.now() - t0 };
  } finally {
    client.close();
  }
}

/** The routes nextWriteAfterLeftWhileWaiting drives, by path; `ran` counts the long polls run. */
const polled = { ran: 0 };
function gateRoute(path: string, session: { set(key: string, value: unknown): void }): Promise<void> | 'never' {
  if (path === '/poll') {
    polled.ran++;
    return 'never';
  }
  if (path === '/slow') return new Promise((r) => setTimeout(r, 300)).then(() => session.set('slow', 1));
  session.set(path.slice(1), 1);
  return Promise.resolve();
}

function gatedEngine(): Tether {
  return createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A], csrf: false, gateTimeoutMs: 3_000 });
}

describe('adapters over HTTP/2', () => {
  it('tether/node on node:http2 when a writer\'s client resets its stream while it waits for the gate then its handler does not run and the next write is answered at once', async () => {
    const tether = gatedEngine();
    polled.ran = 0;
    const server = createServer(withSessions(tether, async (req, res, session) => {
      const out = gateRoute(req.url ?? '', session);
      if (out === 'never') return;
      await out;
      res.end('{}');
    }) as unknown as Parameters<typeof createServer>[0]);
    try {
      const { status, ms } = await nextWriteAfterLeftWhileWaiting(await listening(server));
      assert.equal(status, 200);
      assert.ok(ms < 1_000, `answered in ${ms} ms`);
      assert.equal(polled.ran, 0);
    } finally {
      server.close();
      await tether.close();
    }
  });

  it('tether/fastify with http2: true when a writer\'s client resets its stream while it waits for the gate then its handler does not run and the next write is answered at once', async () => {
    const tether = gatedEngine();
    polled.ran = 0;
    const app = Fastify({ http2: true });
    await app.register(tetherPlugin, { tether });
    app.post('/:name', async (req, reply) => {
      const out = gateRoute(req.url, req.session);
      if (out === 'never') return reply;
      await out;
      return {};
    });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { status, ms } = await nextWriteAfterLeftWhileWaiting((app.server.address() as AddressInfo).port);
      assert.equal(status, 200);
      assert.ok(ms < 1_000, `answered in ${ms} ms`);
      assert.equal(polled.ran, 0);
    } finally {
      await app.close();
      await tether.close();
    }
  });

  it('tether/node on node:http2 when a same-origin POST names its origin then it passes the origin check against :authority, and another origin is refused', async () => {
    const tether = engine();
    const server = createServer(withSessions(tether, (req, res, session) => {
      if (req.url === '/token') {
        res.end(JSON.stringify({ token: session.csrfToken }));
        return;
      }
      session.set('n', 1);
      res.end('{}');
    }) as unknown as Parameters<typeof createServer>[0]);
    try {
      await checkOrigins(await listening(server));
    } finally {
      server.close();
      await tether.close();
    }
  });

  it('tether/fastify with http2: true when a same-origin POST names its origin then it passes, and another origin is refused', async () => {
    const tether = engine();
    const app = Fastify({ http2: true });
    await app.register(tetherPlugin, { tether });
    app.get('/token', async (req) => ({ token: req.session.csrfToken }));
    app.post('/write', async (req) => {
      req.session.set('n', 1);
      return {};
    });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      await checkOrigins((app.server.address() as AddressInfo).port);
    } finally {
      await app.close();
      await tether.close();
    }
  });

  it('tether/hono on @hono/node-server over HTTP/2 when a same-origin POST names its origin then it passes, and another origin is refused', async () => {
    const tether = engine();
    const app = new Hono<TetherEnv>();
    app.use(sessions(tether));
    app.get('/token', (c) => c.json({ token: c.get('session').csrfToken }));
    app.post('/write', (c) => {
      c.get('session').set('n', 1);
      return c.json({});
    });
    const server = serve({ fetch: app.fetch, createServer, port: 0, hostname: '127.0.0.1' }) as unknown as Http2Server;
    try {
      await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
      await checkOrigins((server.address() as AddressInfo).port);
    } finally {
      server.close();
      await tether.close();
    }
  });
});
