/**
 * tether/express holds responses on `express.response` rather than on each response object
 * (src/adapters/express/hold.ts): what that must keep true, with a real Express app on loopback.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Request, Response, NextFunction } from 'express';
import { createTether } from '../../src/index.js';
import type { Session } from '../../src/index.js';
import { sessions, sessionOf } from '../../src/adapters/express/index.js';
import { holdExpressResponse } from '../../src/adapters/express/hold.js';
import { holdOnPrototype, installHold } from '../../src/adapters/shared/hold.js';
import { listen, CookieClient, serverPerTest } from '../helpers/cookie-client.js';

const HELD_METHODS = ['writeHead', 'write', 'end', 'flushHeaders'] as const;
const SECRET = 'a-test-secret-of-at-least-32-characters!!';

/** The server each test starts, closed after it. */
const served = serverPerTest();

/** A route that counts its session's requests. */
function count(req: Request, res: Response): void {
  const s = sessionOf<Record<string, unknown>>(req);
  s.data.n = Number(s.data.n ?? 0) + 1;
  res.json({ n: s.data.n });
}

describe('express adapter: responses held on the prototype', () => {
  it('when a route answers then the response object gets no methods of its own and the session is committed first', async () => {
    const tether = createTether<Record<string, unknown>>({ secrets: [SECRET] });
    const app = express();
    let own: string[] = [];
    app.use(sessions(tether, { csrf: false }));
    app.post('/n', (req, res) => {
      own = HELD_METHODS.filter((m) => Object.hasOwn(res, m));
      count(req, res);
    });
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    const first = await c.request('/n', { method: 'POST' });
    assert.equal(first.status, 200);
    assert.equal(first.setCookies.length, 1, 'the new session is committed and its cookie sent with the response');
    assert.deepEqual(own, []);
    const second = await c.request('/n', { method: 'POST' });
    assert.deepEqual(second.json(), { n: 2 });
  });

  it('when a mounted sub-app answers, or passes the request back to its parent, then the session is still committed before the response', async () => {
    const tether = createTether<Record<string, unknown>>({ secrets: [SECRET] });
    const app = express();
    const sub = express();
    app.use(sessions(tether, { csrf: false }));
    sub.post('/n', count);
    // Falls through to the parent: Express resets the response's prototype to the parent app's on the way out.
    sub.post('/through', (req, _res, next) => {
      sessionOf<Record<string, unknown>>(req).data.through = true;
      next();
    });
    app.use('/sub', sub);
    app.post('/sub/through', (req, res) => res.json(sessionOf<Record<string, unknown>>(req).data));
    app.get('/read', (req, res) => res.json(sessionOf<Record<string, unknown>>(req).data));
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    assert.deepEqual((await c.request('/sub/n', { method: 'POST' })).json(), { n: 1 });
    assert.deepEqual((await c.request('/sub/n', { method: 'POST' })).json(), { n: 2 });
    assert.equal((await c.request('/sub/through', { method: 'POST' })).status, 200);
    assert.deepEqual((await c.request('/read')).json(), { n: 2, through: true });
  });

  it('when a middleware ahead of the sessions wraps res.end then its wrapper runs once and after the commit the response goes out', async () => {
    // Created first, as an app would mount a compression-like middleware ahead of the sessions.
    const app = express();
    let wrapped = 0;
    app.use((_req: Request, res: Response, next: NextFunction) => {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be called with `this` by the wrapper below, as compression-like middleware does
      const end = res.end;
      res.end = function (this: ServerResponse, ...args: unknown[]) {
        wrapped++;
        res.setHeader('x-wrapped', 'yes');
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      } as Response['end'];
      next();
    });
    const tether = createTether<Record<string, unknown>>({ secrets: [SECRET] });
    app.use(sessions(tether, { csrf: false }));
    app.post('/n', count);
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    const r = await c.request('/n', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-wrapped'), 'yes');
    assert.equal(r.setCookies.length, 1);
    assert.equal(wrapped, 1);
    assert.deepEqual((await c.request('/n', { method: 'POST' })).json(), { n: 2 });
    assert.equal(wrapped, 2);
  });

  it('when a route of another app without sessions answers then it goes out unchanged', async () => {
    const tether = createTether<Record<string, unknown>>({ secrets: [SECRET] });
    sessions(tether); // installs the held methods on express.response for the whole process
    const app = express();
    app.get('/plain', (_req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.write('a');
      res.end('b');
    });
    served.current = await listen(app);
    const r = await new CookieClient(served.current.url).request('/plain');
    assert.equal(r.status, 201);
    assert.equal(r.body, 'ab');
    assert.equal(r.setCookies.length, 0);
  });

  it('when the commit fails then the client gets the error instead of what the route answered', async () => {
    const tether = createTether<Record<string, unknown>>({ secrets: [SECRET], maxSessionBytes: 64 });
    const app = express();
    app.use(sessions(tether, { csrf: false }));
    app.post('/big', (req, res) => {
      sessionOf<Record<string, unknown>>(req).data.big = 'x'.repeat(200);
      res.status(200).json({ ok: true });
    });
    served.current = await listen(app);
    const r = await new CookieClient(served.current.url).request('/big', { method: 'POST' });
    assert.equal(r.status, 413);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'SESSION_TOO_LARGE');
    assert.equal(r.setCookies.length, 0);
  });

  it('when a response does not come from this copy of Express then it is held on the response itself, with the same result', async () => {
    let own: string[] = [];
    let committed = 0;
    served.current = await listen((_req, res) => {
      holdExpressResponse(res, () => {
        committed++;
        return ['sid=abc; Path=/; HttpOnly'];
      });
      own = HELD_METHODS.filter((m) => Object.hasOwn(res, m));
      res.statusCode = 200;
      res.end('done');
    });
    const r = await new CookieClient(served.current.url).request('/');
    assert.equal(r.body, 'done');
    assert.deepEqual(r.setCookies, ['sid=abc; Path=/; HttpOnly']);
    assert.equal(committed, 1);
    assert.deepEqual(own, [...HELD_METHODS]);
  });

  it('when the prototype already had its own end then held and unheld responses both still go through it', async () => {
    let ownEnds = 0;
    class Counted extends ServerResponse {
      override end(...args: unknown[]): this {
        ownEnds++;
        return (ServerResponse.prototype.end as (...a: unknown[]) => this).apply(this, args);
      }
    }
    installHold(Counted.prototype);
    const server = createServer({ ServerResponse: Counted }, (req, res) => {
      if (req.url === '/held') holdOnPrototype(Counted.prototype, res, () => ['k=v; Path=/']);
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const held = await fetch(`${base}/held`);
      assert.equal(await held.text(), 'ok');
      assert.equal(held.headers.get('set-cookie'), 'k=v; Path=/');
      const plain = await fetch(`${base}/plain`);
      assert.equal(await plain.text(), 'ok');
      assert.equal(plain.headers.get('set-cookie'), null);
      assert.equal(ownEnds, 2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('when two session middlewares with their own engines run on one request then both sessions are committed', async () => {
    const a = createTether<Record<string, unknown>>({ secrets: [SECRET], cookie: { name: 'a' } });
    const b = createTether<Record<string, unknown>>({ secrets: [SECRET], cookie: { name: 'b' } });
    const app = express();
    const counts: Array<[unknown, unknown]> = [];
    // Each middleware sets req.tether; A's session is kept aside before B's replaces it.
    const sessionA = new WeakMap<Request, Session<Record<string, unknown>>>();
    const useA = sessions(a, { csrf: false });
    app.use((req, res, next) => useA(req, res, () => {
      sessionA.set(req, sessionOf<Record<string, unknown>>(req));
      next();
    }));
    app.use(sessions(b, { csrf: false }));
    app.post('/n', (req, res) => {
      const sa = sessionA.get(req)!;
      const sb = sessionOf<Record<string, unknown>>(req);
      sa.data.n = Number(sa.data.n ?? 0) + 1;
      sb.data.n = Number(sb.data.n ?? 0) + 10;
      counts.push([sa.data.n, sb.data.n]);
      res.json({ ok: true });
    });
    served.current = await listen(app);
    const c = new CookieClient(served.current.url);
    const first = await c.request('/n', { method: 'POST' });
    assert.deepEqual(first.setCookies.map((v) => v.split('=')[0]).sort(), ['a', 'b']);
    await c.request('/n', { method: 'POST' });
    assert.deepEqual(counts, [[1, 10], [2, 20]]);
  });
});
