/**
 * Requests the router or node:http refuse before any route runs: a URL that does not decode, a path
 * parameter over the router's length limit, an oversized head, a broken body framing, a control
 * character in a header, a request line that is not HTTP. Each is answered in the contract's shape,
 * `{"error":{"code","message"}}`, never in Fastify's own, and never repeats the URL or a header back.
 * Raw TCP on 127.0.0.1 so every byte is the test's; the shop in this process on a free port.
 */
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ShopClient, rawRequest, startTestShop, uniqueName } from '../helpers/shop.js';
import type { TestShop } from '../helpers/shop.js';

let t: TestShop;
before(async () => {
  t = await startTestShop();
});
after(async () => {
  await t?.stop();
});

interface RawReply {
  status: number;
  headers: Map<string, string>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Everything the server sent, as latin1. */
  received: string;
  /** True when the server closed the connection after its answer. */
  closed: boolean;
}

/**
 * Sends `bytes` on a fresh connection (then half-closes it when `end` is set) and reads what comes back
 * until the server closes the connection or `waitMs` pass.
 */
function exchange(bytes: string | Buffer, options: { end?: boolean; waitMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(t.url).port), allowHalfOpen: true });
    let received = '';
    let closed = false;
    const timer = setTimeout(() => finish(), options.waitMs ?? 5_000);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const [head = '', ...rest] = received.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers = new Map(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      let body: unknown;
      try {
        body = JSON.parse(rest.join('\r\n\r\n'));
      } catch {
        body = undefined;
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0), headers, body, received, closed });
    };
    socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
    // The server may close while the rest of an oversized head is still being written.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    // Half-open on this side, so the server's end of the stream is its close of the connection.
    const closedByServer = (): void => {
      closed = true;
      finish();
    };
    socket.on('end', closedByServer);
    socket.on('close', closedByServer);
    socket.once('connect', () => {
      socket.write(bytes);
      if (options.end) socket.end();
    });
  });
}

function assertContractError(r: RawReply, status: number, code: string, mustNotEcho: string[] = []): void {
  assert.equal(r.status, status, `expected ${status} ${code}, received ${JSON.stringify(r.received.slice(0, 500))}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(r.body ?? {}), ['error'], `only {"error":…}: ${r.received.slice(0, 500)}`);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message']);
  assert.equal(r.body.error.code, code);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.received.split('\r\n\r\n').slice(1).join('\r\n\r\n'), 'latin1'));
  for (const s of mustNotEcho) assert.ok(!r.received.includes(s), `the answer repeats ${JSON.stringify(s.slice(0, 40))}`);
}

const get = (path: string, method = 'GET'): string => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

describe('shop: malformed URLs (router errors)', () => {
  it('URL when its percent-encoding does not decode then 400 BAD_REQUEST in the contract shape, not repeating the URL', async () => {
    for (const path of ['/api/%', '/api/products/%E0%A4%A', '/api/admin/users/%ZZsecret-looking']) {
      const r = await exchange(get(path));
      assertContractError(r, 400, 'BAD_REQUEST', [path, '%ZZ', 'FST_']);
      assert.equal(r.headers.get('x-tether-node'), 'test-node', path);
      assert.equal(r.headers.get('cache-control'), 'no-store', path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    }
  });

  it('path parameter when over the router\'s length limit then 414 URI_TOO_LONG in the contract shape, not repeating the URL', async () => {
    const long = 'x'.repeat(101);
    for (const [method, path] of [['GET', `/api/products/${long}`], ['DELETE', `/api/cart/items/${long}`], ['GET', `/api/admin/users/${'x'.repeat(5000)}`]] as const) {
      const r = await exchange(get(path, method));
      assertContractError(r, 414, 'URI_TOO_LONG', ['x'.repeat(50), 'FST_']);
      assert.equal(r.headers.get('x-tether-node'), 'test-node', path);
      assert.equal(r.headers.get('cache-control'), 'no-store', path);
    }
    // The limit is the router's: a parameter at it is routed as usual.
    const atLimit = await rawRequest(`${t.url}/api/products/${'x'.repeat(100)}`, 'GET', {});
    assert.equal(atLimit.status, 404);
    assert.equal(atLimit.body?.error?.code, 'PRODUCT_NOT_FOUND');
  });
});

describe('shop: malformed requests (node:http client errors)', () => {
  it('request head when over the header size limit then 431 HEADERS_TOO_LARGE in the contract shape, connection closed, the header not repeated', async () => {
    const cookie = `sid=${'c'.repeat(17 * 1024)}`;
    const r = await exchange(`GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\n\r\n`);
    assertContractError(r, 431, 'HEADERS_TOO_LARGE', ['c'.repeat(40)]);
    assert.equal(r.headers.get('connection'), 'close');
    assert.ok(r.closed, 'the server closed the connection');
  });

  const broken: Array<[string, string | Buffer, { end?: boolean }]> = [
    ['a Content-Length that is not a number', 'POST /api/cart/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}', {}],
    ['a chunk size that is not hexadecimal', 'POST /api/cart/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', {}],
    ['a control character in a header value', 'GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Secret-Looking: abc\x01def\r\n\r\n', {}],
    ['a request line that is not HTTP', 'HELLO THERE secret-looking-line\r\n\r\n', {}],
  ];
  for (const [what, bytes, options] of broken) {
    it(`request when it has ${what} then 400 BAD_REQUEST in the contract shape and the connection closed`, async () => {
      const r = await exchange(bytes, options);
      assertContractError(r, 400, 'BAD_REQUEST', ['abc\x01def', 'secret-looking', 'productId']);
      assert.equal(r.headers.get('connection'), 'close');
      assert.equal(r.received.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer only');
      assert.ok(r.closed, 'the server closed the connection');
    });
  }

  it('request when its body is cut short of its Content-Length by the end of the stream then 400 BAD_REQUEST and the connection closed', async () => {
    // A request the hooks let through (session, CSRF token, Origin), so the route is waiting for the body.
    const c = new ShopClient(t.url);
    await c.session();
    const head = `POST /api/cart/items HTTP/1.1\r\nHost: ${new URL(t.url).host}\r\nOrigin: ${t.url}\r\nCookie: ${c.cookieHeader}\r\n`
      + `X-CSRF-Token: ${c.csrf}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
    const r = await exchange(`${head}{"productId":"secret-looking`, { end: true });
    assertContractError(r, 400, 'BAD_REQUEST', ['secret-looking', c.csrf!]);
    assert.equal(r.headers.get('connection'), 'close');
    assert.equal(r.received.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer only');
    assert.ok(r.closed, 'the server closed the connection');
    assert.equal((await c.get('/api/cart')).body.count, 0, 'nothing was added');
  });

  it('cookie header when it holds NUL, a bare CR or emoji then 400 BAD_REQUEST for the control characters, an anonymous answer for emoji, never a 500', async () => {
    const c = new ShopClient(t.url);
    assert.equal((await c.register(uniqueName('cookie'))).status, 201);
    const [name, value] = c.cookieHeader.split('=') as [string, string];
    const request = (cookie: Buffer): Buffer => Buffer.concat([Buffer.from('GET /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: '), cookie, Buffer.from('\r\nConnection: close\r\n\r\n')]);
    for (const bad of [`${name}=${value}\x00`, `${name}=${value.slice(0, 10)}\r${value.slice(10)}`]) {
      assertContractError(await exchange(request(Buffer.from(bad, 'latin1'))), 400, 'BAD_REQUEST', [value]);
    }
    for (const emoji of [`${name}=😀.😀`, `${name}=${value}😀`, `😀=${value}; ${name}=😀`]) {
      const r = await exchange(request(Buffer.from(emoji, 'utf8')));
      assert.equal(r.status, 200, emoji);
      assert.equal(r.body.authenticated, false, emoji);
    }
    assert.equal((await c.get('/api/session')).body.authenticated, true, 'the session itself is untouched');
  });

  it('server when refused malformed requests then still serves, and logs none of them as a server error', async () => {
    const r = await rawRequest(t.url + '/healthz', 'GET', {});
    assert.equal(r.status, 200);
    assert.deepEqual(t.logs.filter((l) => /"level":"(error|fatal)"/.test(l)), []);
    assert.ok(!t.logs.some((l) => l.includes('c'.repeat(40)) || l.includes('secret-looking')), 'no log line quotes a refused request');
  });
});
