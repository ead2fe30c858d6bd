/**
 * Slow clients (SECURITY.md S51, S52): a request head dripped a line at a time, a body dripped a byte at
 * a time and an idle keep-alive connection are each answered 408 or closed by the shop's deadlines
 * (SHOP_HEADERS_TIMEOUT, SHOP_REQUEST_TIMEOUT, keep-alive 5 s), while other clients are served. Raw
 * TCP on 127.0.0.1: the shop in this process, then as `npm start` runs it (primary and workers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ShopClient, TEST_SECRET, rawRequest, spawnShop, startTestShop } from '../helpers/shop.js';
import { RawConnection } from '../helpers/raw-connection.js';
import type { SpawnedShop, TestShop } from '../helpers/shop.js';

const HEADERS_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 3_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** node:http closes an idle keep-alive connection this long after the timeout it advertises in `Keep-Alive`. */
const KEEP_ALIVE_BUFFER_MS = 1_000;
/** What a deadline may be late by: node:http looks for late connections every second, plus scheduling. */
const LATE_MS = 2_000;
/** In `npm start`, the primary waits up to this long for a head to route by before a worker takes the connection. */
const PRIMARY_HEAD_WAIT_MS = 5_000;
/** Clock granularity between this process and the server's timers. */
const EARLY_MS = 20;
const DEADLINE_ENV = { SHOP_HEADERS_TIMEOUT: String(HEADERS_TIMEOUT_MS / 1000), SHOP_REQUEST_TIMEOUT: String(REQUEST_TIMEOUT_MS / 1000) };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const portOf = (url: string): number => Number(new URL(url).port);

/** A normal client, served while slow ones are being dripped. */
async function normalClientServed(url: string): Promise<void> {
  await sleep(1_000);
  const r = await rawRequest(url + '/api/session', 'GET', {});
  assert.equal(r.status, 200, `a normal client next to slow ones: ${r.status} ${r.text}`);
  assert.equal(typeof r.body?.csrfToken, 'string');
}

function assert408(conn: RawConnection, what: string): void {
  assert.match(conn.received, /^HTTP\/1\.1 408 Request Timeout\r\n/, `${what}: expected a 408, received ${JSON.stringify(conn.received)}`);
  assert.ok(conn.firstByteMs !== undefined && conn.closedMs !== undefined && conn.closedMs >= conn.firstByteMs);
  // The 408 is the only response: nothing was answered before the deadline.
  assert.equal(conn.received.match(/HTTP\/1\.1 /g)?.length, 1, `${what}: ${JSON.stringify(conn.received)}`);
  // In the contract's shape like every other error, not Fastify's own.
  const body = JSON.parse(conn.received.slice(conn.received.indexOf('\r\n\r\n') + 4)) as { error?: { code?: string; message?: string } };
  assert.deepEqual(Object.keys(body), ['error'], `${what}: ${JSON.stringify(conn.received)}`);
  assert.equal(body.error?.code, 'REQUEST_TIMEOUT');
  assert.equal(typeof body.error?.message, 'string');
  assert.match(conn.received, /\r\nconnection: close\r\n/i);
}

/** A head that never ends: a request line, then a header line every 500 ms; 408 and close after the head deadline. */
async function slowloris(t: TestContext, url: string, earliestMs: number, latestMs: number): Promise<void> {
  const conn = await RawConnection.open(portOf(url));
  conn.write(`GET /api/session HTTP/1.1\r\nHost: ${new URL(url).host}\r\n`);
  const [lines] = await Promise.all([
    conn.drip((i) => `X-Drip-${i}: ${'d'.repeat(8)}\r\n`, 500, 60),
    conn.waitClosed(),
    normalClientServed(url),
  ]);
  assert408(conn, 'slow head');
  t.diagnostic(`slow head: 408 after ${conn.firstByteMs!.toFixed(0)} ms, closed after ${conn.closedMs!.toFixed(0)} ms, ${lines} header lines dripped`);
  assert.ok(conn.firstByteMs! >= earliestMs, `408 came ${conn.firstByteMs!.toFixed(0)} ms after the request began, before ${earliestMs} ms`);
  assert.ok(conn.closedMs! <= latestMs, `closed ${conn.closedMs!.toFixed(0)} ms after the request began, after ${latestMs} ms`);
}

/** A whole head announcing 100 bytes of body, then a byte every 300 ms; 408 and close after the request deadline. */
async function slowBody(t: TestContext, url: string, earliestMs: number, latestMs: number): Promise<void> {
  // A session and its CSRF token, so the route reaches body parsing rather than refusing at once.
  const client = new ShopClient(url);
  assert.equal((await client.session()).status, 200);
  const body = JSON.stringify({ productId: 'camp-mug', quantity: 1, pad: '' }).padEnd(100, ' ');
  assert.equal(body.length, 100);
  const conn = await RawConnection.open(portOf(url));
  conn.write([
    'POST /api/cart/items HTTP/1.1', `Host: ${new URL(url).host}`, `Origin: ${new URL(url).origin}`, `Cookie: ${client.cookieHeader}`,
    `X-CSRF-Token: ${client.csrf!}`, 'Content-Type: application/json', 'Content-Length: 100', '', '',
  ].join('\r\n'));
  const [bytes] = await Promise.all([
    conn.drip((i) => body[i]!, 300, body.length),
    conn.waitClosed(),
    normalClientServed(url),
  ]);
  assert408(conn, 'slow body');
  assert.ok(bytes < body.length, 'the body was never completed');
  const later = await client.session();
  assert.equal(later.body?.cart?.count, 0, 'the cut-off request changed nothing');
  t.diagnostic(`slow body: 408 after ${conn.firstByteMs!.toFixed(0)} ms, closed after ${conn.closedMs!.toFixed(0)} ms, ${bytes} body bytes dripped`);
  assert.ok(conn.firstByteMs! >= earliestMs, `408 came ${conn.firstByteMs!.toFixed(0)} ms after the request began, before ${earliestMs} ms`);
  assert.ok(conn.closedMs! <= latestMs, `closed ${conn.closedMs!.toFixed(0)} ms after the request began, after ${latestMs} ms`);
}

/** A complete request on a keep-alive connection, then silence: the server closes it after keepAliveTimeout. */
async function idleKeepAlive(t: TestContext, url: string): Promise<void> {
  const conn = await RawConnection.open(portOf(url));
  conn.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(url).host}\r\n\r\n`);
  // The whole response (its Content-Length) came: from then on the connection is idle.
  let idleFrom: number | undefined;
  for (let i = 0; i < 200 && idleFrom === undefined && !conn.isClosed; i++) {
    const m = /\r\n\r\n/.exec(conn.received);
    const length = /\r\ncontent-length: (\d+)\r\n/i.exec(conn.received);
    if (m && length && conn.received.length >= m.index + 4 + Number(length[1])) idleFrom = performance.now() - conn.start;
    else await sleep(10);
  }
  assert.ok(idleFrom !== undefined, `no complete response: ${JSON.stringify(conn.received)}`);
  assert.match(conn.received, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(conn.received, /\r\nconnection: keep-alive\r\n/i);
  assert.match(conn.received, new RegExp(`\\r\\nkeep-alive: timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}\\r\\n`, 'i'));
  await Promise.all([conn.waitClosed(), normalClientServed(url)]);
  const idleMs = conn.closedMs! - idleFrom;
  t.diagnostic(`idle keep-alive: closed ${idleMs.toFixed(0)} ms after the response`);
  assert.equal(conn.received.match(/HTTP\/1\.1 /g)?.length, 1, 'nothing sent after the response');
  // Not before the advertised timeout (a client may reuse the connection until then); node:http waits
  // KEEP_ALIVE_BUFFER_MS more before it closes.
  assert.ok(idleMs >= KEEP_ALIVE_TIMEOUT_MS, `closed after ${idleMs.toFixed(0)} ms idle, before the advertised ${KEEP_ALIVE_TIMEOUT_MS} ms`);
  assert.ok(idleMs <= KEEP_ALIVE_TIMEOUT_MS + KEEP_ALIVE_BUFFER_MS + LATE_MS, `closed after ${idleMs.toFixed(0)} ms idle`);
}

describe('shop deadlines: slow clients (in-process shop, SHOP_HEADERS_TIMEOUT=2, SHOP_REQUEST_TIMEOUT=3)', { concurrency: true }, () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop(DEADLINE_ENV);
  });
  after(async () => {
    const logs = shop?.logs ?? [];
    await shop?.stop();
    // A request cut off by a deadline is the client's failure, never logged as a server error.
    assert.deepEqual(logs.filter((l) => l.startsWith('error:')), []);
  });

  it('server when built from the settings then node:http holds the deadlines and checks them every second', () => {
    const server = shop.shop.app.server;
    assert.equal(server.headersTimeout, HEADERS_TIMEOUT_MS);
    assert.equal(server.requestTimeout, REQUEST_TIMEOUT_MS);
    assert.equal(server.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_MS);
    assert.equal((server as typeof server & { connectionsCheckingInterval: number }).connectionsCheckingInterval, 1_000);
  });

  it('request head when dripped a header line every 500 ms then 408 and close after the head deadline, not before, while others are served', async (t) => {
    await slowloris(t, shop.url, HEADERS_TIMEOUT_MS - EARLY_MS, HEADERS_TIMEOUT_MS + LATE_MS);
  });

  it('request body when dripped a byte every 300 ms then 408 and close after the request deadline, not before, while others are served', async (t) => {
    await slowBody(t, shop.url, REQUEST_TIMEOUT_MS - EARLY_MS, REQUEST_TIMEOUT_MS + LATE_MS);
  });

  it('keep-alive connection when idle after a response then the server closes it after 5 s, while others are served', async (t) => {
    await idleKeepAlive(t, shop.url);
  });

  it('server when slow clients have come and gone then still serves', async () => {
    await sleep(REQUEST_TIMEOUT_MS + LATE_MS);
    const r = await rawRequest(shop.url + '/healthz', 'GET', {});
    assert.equal(r.status, 200);
  });
});

describe('shop deadlines: slow clients (as `npm start` runs it: primary and 2 workers)', { concurrency: true }, () => {
  let dataDir: string;
  let shop: SpawnedShop;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tether-shop-deadlines-'));
    shop = await spawnShop({ TETHER_DATA_DIR: dataDir, TETHER_SECRET: TEST_SECRET, TETHER_WORKERS: '2', ...DEADLINE_ENV });
  });
  after(async () => {
    if (shop) assert.equal(await shop.stop(), 0, shop.output());
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  // The primary hands an unfinished head to a worker after its own wait; the worker's head deadline starts then.
  it('request head when dripped then a worker answers 408 and closes within the primary\'s wait plus the head deadline', async (t) => {
    await slowloris(t, shop.url, HEADERS_TIMEOUT_MS - EARLY_MS, PRIMARY_HEAD_WAIT_MS + HEADERS_TIMEOUT_MS + LATE_MS);
  });

  it('request body when dripped then a worker answers 408 and closes after the request deadline', async (t) => {
    await slowBody(t, shop.url, REQUEST_TIMEOUT_MS - EARLY_MS, REQUEST_TIMEOUT_MS + LATE_MS);
  });

  it('keep-alive connection when idle then a worker closes it after 5 s', async (t) => {
    await idleKeepAlive(t, shop.url);
  });
});
