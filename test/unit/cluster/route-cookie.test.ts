/**
 * The routing cookie a cluster worker sends beside the session cookie (src/cluster/worker.ts), over a real
 * node:http server on loopback: whichever way the response's headers were set (setHeader, an object or a
 * list given to writeHead, as Express, Fastify and @hono/node-server do), with the session cookie's
 * attributes, expired with it, and never on a response that does not set the session cookie.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sendRouteCookie } from '../../../src/cluster/worker.js';

const SESSION = 'sid=abc.SIG; Path=/; HttpOnly; SameSite=Lax';
const ANSWERS: Record<string, (res: ServerResponse) => void> = {
  '/set-header': (res) => {
    res.setHeader('set-cookie', ['theme=dark; Path=/', SESSION]);
    res.end('ok');
  },
  '/write-head-object': (res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'Set-Cookie': [SESSION] });
    res.end('ok');
  },
  '/write-head-string': (res) => {
    res.writeHead(200, 'OK', { 'set-cookie': SESSION });
    res.end('ok');
  },
  '/write-head-list': (res) => {
    res.writeHead(200, ['content-type', 'text/plain', 'set-cookie', SESSION]);
    res.end('ok');
  },
  '/merged': (res) => {
    res.setHeader('x-kept', '1');
    res.writeHead(200, { 'set-cookie': [SESSION] });
    res.end('ok');
  },
  '/lasting': (res) => {
    res.setHeader('set-cookie', 'sid=abc.SIG; Max-Age=1209600; Path=/; HttpOnly; Secure; SameSite=Lax');
    res.end('ok');
  },
  '/cleared': (res) => {
    res.setHeader('set-cookie', 'sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax');
    res.end('ok');
  },
  '/other-cookies': (res) => {
    res.writeHead(200, { 'set-cookie': ['sidx=1; Path=/', 'xsid=2'] });
    res.end('ok');
  },
  '/none': (res) => {
    res.end('ok');
  },
};

function fetchHeaders(port: number, path: string): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.headers));
    }).on('error', reject);
  });
}

describe('cluster routing cookie', () => {
  let server: Server;
  let other: Server;
  let port: number;
  let otherPort: number;

  before(async () => {
    const handler = (req: { url?: string }, res: ServerResponse): void => ANSWERS[req.url ?? '/none']!(res);
    server = createServer(handler);
    other = createServer(handler);
    sendRouteCookie(server, 'sid', 2);
    for (const s of [server, other]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    otherPort = (other.address() as AddressInfo).port;
  });
  after(async () => {
    for (const s of [server, other]) await new Promise((r) => s.close(r));
  });

  it('routing cookie when a response sets the session cookie then it also sets the routing cookie with the same attributes, however its headers were set', async () => {
    for (const path of ['/set-header', '/write-head-object', '/write-head-string', '/write-head-list', '/merged']) {
      const cookies = (await fetchHeaders(port, path))['set-cookie'] ?? [];
      assert.ok(cookies.includes(SESSION), `${path}: ${cookies.join(' | ')}`);
      assert.ok(cookies.includes('sid-w=2; Path=/; HttpOnly; SameSite=Lax'), `${path}: ${cookies.join(' | ')}`);
    }
    const merged = await fetchHeaders(port, '/merged');
    assert.equal(merged['x-kept'], '1');
    assert.ok(((await fetchHeaders(port, '/set-header'))['set-cookie'] ?? []).includes('theme=dark; Path=/'), 'the other cookies stay');
  });

  it('routing cookie when the session cookie is persistent or cleared then the routing cookie lasts as long or is cleared too', async () => {
    assert.deepEqual((await fetchHeaders(port, '/lasting'))['set-cookie'], [
      'sid=abc.SIG; Max-Age=1209600; Path=/; HttpOnly; Secure; SameSite=Lax',
      'sid-w=2; Max-Age=1209600; Path=/; HttpOnly; Secure; SameSite=Lax',
    ]);
    assert.deepEqual((await fetchHeaders(port, '/cleared'))['set-cookie'], [
      'sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax',
      'sid-w=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax',
    ]);
  });

  it('routing cookie when a response sets no session cookie, or comes from another server, then none is added', async () => {
    assert.deepEqual((await fetchHeaders(port, '/other-cookies'))['set-cookie'], ['sidx=1; Path=/', 'xsid=2']);
    assert.equal((await fetchHeaders(port, '/none'))['set-cookie'], undefined);
    assert.deepEqual((await fetchHeaders(otherPort, '/set-header'))['set-cookie'], ['theme=dark; Path=/', SESSION]);
  });
});
