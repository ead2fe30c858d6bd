/**
 * tether/node's `openSocket` and `refuseUpgrade` on a real node:http server with the `ws` library: a
 * refused handshake gets its status, the JSON error and a closed connection; a store that fails
 * refuses with 503 and Retry-After; the process stays up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer } from 'ws';
import { createTether } from '../../src/core/engine.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';
import { withSessions, openSocket, refuseUpgrade } from '../../src/adapters/node-http/index.js';
import { listen } from '../helpers/cookie-client.js';
import { SECRET_A } from '../unit/support.js';

/** A raw handshake: its status, headers and body, and whether the server closed the connection. */
function handshake(url: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`upgraded: ${res.statusCode}`));
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ res, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('tether/node openSocket and refuseUpgrade', () => {
  it('refuseUpgrade when the store fails, the origin is foreign or the app refuses then the status, its JSON error and Connection: close; the server stays up', async (t) => {
    const store = new FaultyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const tether = createTether({ secrets: [SECRET_A], store, storeTimeoutMs: 100 });
    const wss = new WebSocketServer({ noServer: true });
    const handler = withSessions(tether, (_req, res, session) => {
      session.set('n', 1);
      res.end('ok');
    });
    const app = await listen((req, res) => void handler(req, res));
    t.after(() => app.close());
    app.server.on('upgrade', (req, socket, head) => {
      openSocket(tether, req, { checkIntervalMs: 0 }).then((live) => {
        if (live.isNew) return refuseUpgrade(socket, 401);
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('close', () => live.close());
        });
      }).catch((err: unknown) => refuseUpgrade(socket, err));
    });
    const origin = app.url;
    const first = await fetch(app.url);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;

    const none = await handshake(app.url, { origin });
    assert.equal(none.res.statusCode, 401);
    assert.equal(none.res.headers.connection, 'close');
    assert.equal(none.res.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(none.body), { error: { code: 'UNAUTHORIZED', message: 'Unauthorized' } });

    const foreign = await handshake(app.url, { origin: 'http://evil.test', cookie });
    assert.equal(foreign.res.statusCode, 403);
    assert.equal(JSON.parse(foreign.body).error.code, 'ORIGIN_MISMATCH');

    store.fail('get', 'reject');
    const down = await handshake(app.url, { origin, cookie });
    assert.equal(down.res.statusCode, 503);
    assert.equal(down.res.headers['retry-after'], '1');
    assert.equal(JSON.parse(down.body).error.code, 'STORE_UNAVAILABLE');
    store.heal();

    // Upgraded once the store answers again.
    await assert.rejects(handshake(app.url, { origin, cookie }), /upgraded: 101/);
    assert.equal((await fetch(app.url, { headers: { cookie } })).status, 200, 'the server still answers requests');
  });

  it('refuseUpgrade with headers then the answer carries them beside its own, which they cannot replace; a name or value Node would refuse throws', async (t) => {
    const app = await listen((_req, res) => void res.end());
    t.after(() => app.close());
    app.server.on('upgrade', (_req, socket) => {
      refuseUpgrade(socket, 404, { headers: { 'X-Node': 'a', 'X-Content-Type-Options': 'nosniff', 'Content-Type': 'text/html', connection: 'keep-alive', ETag: '"v1"', 'CDN-Cache-Control': 'max-age=60' } });
    });
    const { res, body } = await handshake(app.url, {});
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers['x-node'], 'a');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8', 'its own Content-Type stays');
    assert.equal(res.headers.connection, 'close');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.etag, undefined, 'nothing that lets a cache keep the refusal');
    assert.equal(res.headers['cdn-cache-control'], undefined);
    assert.equal(JSON.parse(body).error.code, 'NOT_FOUND');
    const socket = new PassThrough();
    assert.throws(() => refuseUpgrade(socket, 404, { headers: { 'X-Bad': 'a\r\nSet-Cookie: sid=x' } }), { code: 'ERR_INVALID_CHAR' });
    assert.throws(() => refuseUpgrade(socket, 404, { headers: { 'X Bad': 'a' } }), { code: 'ERR_INVALID_HTTP_TOKEN' });
  });

  it('openSocket when the client resets the connection while the session is read then the server stays up and answers the next handshake', async (t) => {
    const store = new FaultyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    const tether = createTether({ secrets: [SECRET_A], store });
    const handler = withSessions(tether, (_req, res, session) => {
      session.set('n', 1);
      res.end('ok');
    });
    const app = await listen((req, res) => void handler(req, res));
    t.after(() => app.close());
    const outcomes: string[] = [];
    app.server.on('upgrade', (req, socket) => {
      openSocket(tether, req, { checkIntervalMs: 0 }).then((live) => {
        live.close();
        outcomes.push(socket.destroyed ? 'gone' : 'open');
        refuseUpgrade(socket, 401);
      }).catch((err: unknown) => refuseUpgrade(socket, err));
    });
    const cookie = (await fetch(app.url)).headers.get('set-cookie')!.split(';')[0]!;
    store.fail('get', { delayMs: 200 });
    const { port } = new URL(app.url);
    await new Promise<void>((resolve, reject) => {
      const raw = tcpConnect(Number(port), '127.0.0.1', () => {
        raw.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: ${cookie}\r\n\r\n`);
        // An RST while the server waits for the store.
        setTimeout(() => {
          raw.resetAndDestroy();
          resolve();
        }, 50);
      });
      raw.on('error', reject);
    });
    for (let i = 0; i < 100 && outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(outcomes, ['gone']);
    store.heal();
    const next = await handshake(app.url, { origin: app.url, cookie });
    assert.equal(next.res.statusCode, 401, 'the server is still up');
  });

  it('refuseUpgrade when the client resets the connection as the answer arrives then the server stays up', async (t) => {
    const tether = createTether({ secrets: [SECRET_A], store: new MemoryStore({ sweepIntervalMs: 0 }) });
    const handler = withSessions(tether, (_req, res) => void res.end('ok'));
    const app = await listen((req, res) => void handler(req, res));
    t.after(() => app.close());
    let refused = 0;
    // A wrong path, refused at once without openSocket.
    app.server.on('upgrade', (_req, socket) => {
      refuseUpgrade(socket, 404);
      refused++;
    });
    const { port } = new URL(app.url);
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const raw = tcpConnect(Number(port), '127.0.0.1', () => {
          raw.write(`GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
        });
        // An RST once the answer's first bytes arrive, before the server's side has closed.
        raw.once('data', () => {
          raw.resetAndDestroy();
          resolve();
        });
        raw.on('error', reject);
      });
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(refused, 5);
    assert.equal((await fetch(app.url)).status, 200, 'the server is still up');
  });
});
