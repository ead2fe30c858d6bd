/**
 * The express-session drop-in and a WebSocket: `openSocket(sessions.tether, req)` from tether/node on
 * the server's `upgrade` event gives the drop-in's session (its owner as `userIdFrom` sets it), and a
 * `req.session.destroy()` over HTTP closes the socket (docs/migrating-from-express-session.md).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import { WebSocketServer } from 'ws';
import session from 'tether/express';
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
    server.server.on('upgrade', async (req, socket, head) => {
      try {
        const live = await openSocket(sessions.tether, req, { checkIntervalMs: 0 });
        if (live.userId === null) return refuseUpgrade(socket, 401);
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send(JSON.stringify({ user: live.userId }));
          live.onEnd((reason) => ws.close(4001, reason));
          ws.on('close', () => live.close());
        });
      } catch (err) {
        refuseUpgrade(socket, err);
      }
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
