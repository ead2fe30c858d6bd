/**
 * tether/node's `openSocket` ties a handshake's session to its connection: a handshake the app refuses
 * without calling `close()` (an anonymous visitor with a cart, say), or a WebSocket whose app never
 * closes its session, leaves nothing watched once the connection is gone.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { createTether } from '../../src/core/engine.js';
import type { Tether } from '../../src/core/engine.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { withSessions, openSocket, refuseUpgrade } from '../../src/adapters/node-http/index.js';
import { listen } from '../helpers/cookie-client.js';
import { SECRET_A } from '../unit/support.js';

/** A handshake's status code, the connection then closed by the server. */
function handshakeStatus(url: string, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', origin: url, cookie } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`upgraded: ${res.statusCode}`));
    });
    req.on('response', (res) => {
      res.resume().on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits (up to 2 s) until the engine watches `n` sockets; returns how many it watches then. */
async function watched(tether: Tether<object>, n: number): Promise<number> {
  for (let i = 0; i < 200 && tether.stats().sockets !== n; i++) await new Promise((r) => setTimeout(r, 10));
  return tether.stats().sockets;
}

it('openSocket when the app refuses a handshake or its WebSocket closes without calling close() then the session is no longer watched', async (t) => {
  const tether = createTether({ secrets: [SECRET_A], store: new MemoryStore({ sweepIntervalMs: 0 }) });
  t.after(() => tether.close());
  const handler = withSessions(tether, (req, res, session) => {
    if (req.url === '/login') session.login('alice');
    else session.set('cart', ['lamp']);
    res.end('ok');
  });
  const app = await listen(handler);
  t.after(() => app.close());
  const wss = new WebSocketServer({ noServer: true });
  app.server.on('upgrade', (req, socket, head) => {
    openSocket(tether, req).then((live) => {
      // Neither path calls live.close().
      if (live.userId === null) return refuseUpgrade(socket, 401);
      wss.handleUpgrade(req, socket, head, (ws) => ws.send('hello'));
    }).catch((err: unknown) => refuseUpgrade(socket, err));
  });

  const guest = (await fetch(app.url)).headers.get('set-cookie')!.split(';')[0]!;
  for (let i = 0; i < 20; i++) assert.equal(await handshakeStatus(app.url, guest), 401);
  assert.equal(await watched(tether, 0), 0, 'no refused handshake is watched');

  const member = (await fetch(`${app.url}/login`)).headers.get('set-cookie')!.split(';')[0]!;
  const ws = new WebSocket(app.url.replace('http', 'ws'), { headers: { cookie: member, origin: app.url } });
  await new Promise((resolve, reject) => ws.once('message', resolve).once('error', reject));
  assert.equal(await watched(tether, 1), 1, 'the open WebSocket\'s session is watched');
  ws.close();
  assert.equal(await watched(tether, 0), 0, 'and no longer once it closed');
});
