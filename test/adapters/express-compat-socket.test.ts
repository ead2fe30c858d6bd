/**
 * The express-session drop-in and a WebSocket: `openSocket(sessions.tether, req)` from tether/node on
 * the server's `upgrade` event gives the drop-in's session (its owner as `userIdFrom` sets it), and a
 * `req.session.destroy()` over HTTP closes the socket (docs/migrating-from-express-session.md). And
 * socket.io's own recipe for express-session, `io.engine.use(middleware)`, with the drop-in.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import express from 'express';
import { WebSocketServer } from 'ws';
import { Server as SocketIoServer } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import session from 'tether/express';
import type { CompatSessionOptions } from 'tether/express';
import { openSocket, refuseUpgrade } from 'tether/node';
import { listen } from '../helpers/cookie-client.js';
import { connect } from '../helpers/ws.js';
import { SECRET } from './express-compat.kit.js';

describe('express-session drop-in with a WebSocket', () => {
  it('openSocket when given the drop-in\'s engine then the socket sees the Passport-style owner, and a destroy() over HTTP closes it', async (t) => {
    const sessions = session({
      secret: SECRET, resave: false, saveUninitialized: false,
      tether: { userIdFrom: (data) => (data.passport as { user?: { id: string } } | undefined)?.user?.id },
    });
    const app = express();
    app.use(sessions);
    app.post('/login', (req, res) => {
      (req.session as unknown as Record<string, unknown>).passport = { user: { id: 'ada' } };
      res.json({ ok: true });
    });
    app.post('/logout', (req, res) => req.session.destroy(() => res.json({ ok: true })));
    const server = await listen(app);
    t.after(() => server.close());
    const wss = new WebSocketServer({ noServer: true });
    server.server.on('upgrade', (req, socket, head) => {
      openSocket(sessions.tether, req, { checkIntervalMs: 0 }).then((live) => {
        if (live.userId === null) return refuseUpgrade(socket, 401);
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send(JSON.stringify({ user: live.userId }));
          live.onEnd((reason) => ws.close(4001, reason));
          ws.on('close', () => live.close());
        });
      }).catch((err: unknown) => refuseUpgrade(socket, err));
    });
    const origin = server.url;
    const live = server.url.replace('http:', 'ws:') + '/';
    const login = await fetch(`${server.url}/login`, { method: 'POST' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    await assert.rejects(connect(live, { origin }), { status: 401 });
    await assert.rejects(connect(live, { origin: 'http://evil.test', cookie }), { status: 403 });
    const socket = await connect(live, { origin, cookie });
    await socket.received(1);
    assert.deepEqual(socket.messages[0], { user: 'ada' });
    assert.equal((await fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie } })).status, 200);
    assert.deepEqual(await socket.closed, { code: 4001, reason: 'destroyed' });
  });
});

/** The name the handshakes below address: not a loopback one, where browsers count http as secure. */
const HOST = 'app.example';

/**
 * An app on the drop-in whose WebSocket handshakes go through `openSocket(sessions.tether, req)` and
 * answer the session's owner, with a session logged in over HTTPS (behind a proxy: X-Forwarded-Proto).
 */
async function handshakes(t: TestContext, options: CompatSessionOptions) {
  const sessions = session({
    secret: SECRET, resave: false, saveUninitialized: false, proxy: true, ...options,
    tether: { ...options.tether, userIdFrom: (data) => data.user as string | undefined },
  });
  const app = express();
  app.use(sessions);
  app.post('/login', (req, res) => {
    (req.session as unknown as Record<string, unknown>).user = 'ada';
    res.json({ ok: true });
  });
  const server = await listen(app);
  t.after(() => server.close());
  const wss = new WebSocketServer({ noServer: true });
  server.server.on('upgrade', (req, socket, head) => {
    openSocket(sessions.tether, req, { checkIntervalMs: 0 }).then((live) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(JSON.stringify({ user: live.userId }));
        ws.on('close', () => live.close());
      });
    }).catch((err: unknown) => refuseUpgrade(socket, err));
  });
  const login = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
  const setCookie = login.headers.get('set-cookie')!;
  const cookie = setCookie.split(';')[0]!;
  const url = server.url.replace('http:', 'ws:') + '/';
  /** Opens a socket as `headers` say; the user it saw, or the refusal's status and error code. */
  const open = async (headers: Record<string, string>): Promise<{ user: unknown } | { status: number; code: unknown }> => {
    try {
      const socket = await connect(url, { host: HOST, cookie, ...headers });
      await socket.received(1);
      socket.ws.close();
      return { user: socket.messages[0]!.user };
    } catch (err) {
      const { status, body } = err as { status?: number; body?: { error?: { code?: unknown } } };
      if (status === undefined) throw err;
      return { status, code: body?.error?.code };
    }
  };
  return { open, setCookie };
}

const refused = { status: 403, code: 'ORIGIN_MISMATCH' };
const ada = { user: 'ada' };

describe('express-session drop-in: a WebSocket handshake\'s origin checks follow its session cookie\'s Secure', () => {
  it('openSocket when cookie.secure is auto and the handshake is HTTPS by X-Forwarded-Proto then an http origin of the Host, or none, is refused and an https one passes', async (t) => {
    const { open, setCookie } = await handshakes(t, { cookie: { secure: 'auto' } });
    assert.match(setCookie, /;\s*Secure/i, 'the login over HTTPS set a Secure cookie');
    const https = { 'x-forwarded-proto': 'https' };
    assert.deepEqual(await open({ ...https, origin: `http://${HOST}` }), refused);
    assert.deepEqual(await open({ ...https }), refused, 'no Origin');
    assert.deepEqual(await open({ ...https, origin: `https://${HOST}` }), ada);
    assert.deepEqual(await open({ ...https, origin: 'https://evil.test' }), refused);
  });

  it('openSocket when cookie.secure is auto and the handshake is plain HTTP then an http origin of the Host, or none, still passes', async (t) => {
    const { open } = await handshakes(t, { cookie: { secure: 'auto' } });
    assert.deepEqual(await open({ origin: `http://${HOST}` }), ada);
    assert.deepEqual(await open({}), ada, 'no Origin');
    assert.deepEqual(await open({ origin: 'http://evil.test' }), refused);
  });

  it('openSocket when the cookie function returns secure: true for the handshake then an http origin of the Host is refused, and the function is called with the node:http request', async (t) => {
    const given: unknown[] = [];
    const { open } = await handshakes(t, {
      cookie: (req) => {
        given.push(req);
        return { secure: true };
      },
    });
    const before = given.length;
    assert.deepEqual(await open({ origin: `http://${HOST}` }), refused);
    assert.deepEqual(await open({ origin: `https://${HOST}` }), ada);
    const handshakeReqs = given.slice(before) as IncomingMessage[];
    assert.equal(handshakeReqs.length, 2, 'called once per handshake');
    for (const req of handshakeReqs) {
      assert.ok(req instanceof IncomingMessage);
      assert.equal(req.headers.upgrade, 'websocket');
      assert.equal((req as { app?: unknown }).app, undefined, 'not an Express request');
    }
  });

  it('openSocket when tether.csrf sets secureOrigins or requireOrigin then that setting decides over the cookie\'s Secure', async (t) => {
    const https = { 'x-forwarded-proto': 'https' };
    const lax = await handshakes(t, { cookie: { secure: 'auto' }, tether: { csrf: { secureOrigins: false } } });
    assert.deepEqual(await lax.open({ ...https, origin: `http://${HOST}` }), ada, 'secureOrigins: false');
    assert.deepEqual(await lax.open({ ...https }), ada, 'requireOrigin follows secureOrigins: false');
    const noneRequired = await handshakes(t, { cookie: { secure: 'auto' }, tether: { csrf: { requireOrigin: false } } });
    assert.deepEqual(await noneRequired.open({ ...https, origin: `http://${HOST}` }), refused, 'secureOrigins still follows the cookie');
    assert.deepEqual(await noneRequired.open({ ...https }), ada, 'requireOrigin: false');
  });
});

describe('express-session drop-in with socket.io (io.engine.use)', () => {
  it('io.engine.use(drop-in) when a client connects by polling or by WebSocket then socket.request.session is the session; reload() and save() from events lose nothing beside HTTP writes; a stale object refuses', async (t) => {
    const sessions = session({ secret: SECRET, resave: false, saveUninitialized: false });
    const app = express();
    app.use(sessions);
    app.post('/login', (req, res) => {
      (req.session as unknown as Record<string, unknown>).user = 'ada';
      res.json({ ok: true });
    });
    app.post('/inc', (req, res) => {
      const s = req.session as unknown as { count?: number };
      s.count = (s.count ?? 0) + 1;
      res.json({ count: s.count });
    });
    app.get('/me', (req, res) => res.json(req.session));
    app.post('/logout', (req, res) => req.session.destroy(() => res.json({ ok: true })));
    const server = await listen(app);
    const io = new SocketIoServer(server.server);
    const clients: Array<ReturnType<typeof ioClient>> = [];
    // io.close() closes the server too, and would wait for its connections: they are cut first.
    t.after(async () => {
      for (const c of clients) c.close();
      const closed = server.close();
      void io.close();
      await closed;
    });
    io.engine.use(sessions);
    type Req = { session: { user?: string; count?: number; reload(cb: (err?: unknown) => void): void; save(cb: (err?: unknown) => void): void } };
    io.on('connection', (socket) => {
      const req = socket.request as unknown as Req;
      const stale = req.session;
      socket.emit('hello', req.session.user ?? null);
      // socket.io's documented pattern: reload before each change, then save.
      socket.on('inc', (ack: (a: unknown) => void) => req.session.reload((err) => {
        if (err) return ack({ error: err instanceof Error ? err.message : JSON.stringify(err) });
        const s = req.session;
        s.count = (s.count ?? 0) + 1;
        s.save((e) => ack(e ? { error: e instanceof Error ? e.message : JSON.stringify(e) } : { count: s.count }));
      }));
      socket.on('stale', (ack: (a: unknown) => void) => {
        stale.count = 1_000;
        stale.save((e) => ack({ error: e instanceof Error ? e.message : null }));
      });
    });
    const login = await fetch(`${server.url}/login`, { method: 'POST' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;

    for (const transports of [['polling', 'websocket'], ['websocket']]) {
      const c = ioClient(server.url, { extraHeaders: { cookie }, transports, reconnection: false });
      clients.push(c);
      assert.equal(await new Promise((res) => c.once('hello', res)), 'ada', transports.join('+'));
    }
    // Ten changes from each socket, one after another on each, and ten over HTTP, all at once: every one is kept.
    const inc = async (c: (typeof clients)[number]) => {
      const got: unknown[] = [];
      for (let i = 0; i < 10; i++) got.push(await c.timeout(10_000).emitWithAck('inc'));
      return got;
    };
    const posts = Array.from({ length: 10 }, () => fetch(`${server.url}/inc`, { method: 'POST', headers: { cookie } }).then((r) => r.json()));
    const answers = (await Promise.all([...clients.map(inc), ...posts])).flat();
    assert.deepEqual(answers.filter((a) => 'error' in (a as object)), [], 'no change failed');
    assert.equal(((await (await fetch(`${server.url}/me`, { headers: { cookie } })).json()) as { count: number }).count, 30);

    // Two changes at once on one connection: where they overlap, each reload() replaces the object the
    // other is changing, and that one's save() is refused, saying so (express-session would store both
    // on the same count: one lost). Either way the count holds every acknowledged change.
    const both = (await Promise.all([0, 1].map(() => clients[0]!.timeout(10_000).emitWithAck('inc')))) as Array<{ count?: number; error?: string }>;
    const kept = both.filter((a) => a.count !== undefined).length;
    assert.ok(kept >= 1, JSON.stringify(both));
    assert.equal(((await (await fetch(`${server.url}/me`, { headers: { cookie } })).json()) as { count: number }).count, 30 + kept, 'every acknowledged change, and no other');

    // The object the handshake gave, after reload() replaced it: saving it would store what it held then.
    const staleAnswer = (await clients[0]!.timeout(5_000).emitWithAck('stale')) as { error: string | null };
    assert.match(staleAnswer.error ?? '', /replaced by regenerate\(\), reload\(\) or destroy\(\)/);
    assert.equal(((await (await fetch(`${server.url}/me`, { headers: { cookie } })).json()) as { count: number }).count, 30 + kept, 'nothing of it stored');

    // Logged out over HTTP: the next reload() finds no session.
    assert.equal((await fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie } })).status, 200);
    const after = (await clients[1]!.timeout(5_000).emitWithAck('inc')) as { error?: string };
    assert.ok(after.error, `reload() after the logout: ${JSON.stringify(after)}`);
  });
});
