/**
 * Sticky routing of the one-machine cluster, against a real primary and two real workers (the tiny app
 * on a shared SQLite file): a session's new connections go to one worker (the one its routing cookie
 * names, else the one its ID hashes to), also once its ID is renewed, connections without a session
 * alternate, keep-alive requests stay on their connection's worker, and the bytes the primary read
 * before the handoff reach the worker intact.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Router } from 'tether/cluster';
import { TestClient } from '../helpers/http-client.js';
import { startApp } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';
import { freePort } from '../helpers/redis.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';

const NODE = 'tiny';

/** The worker the primary's rendezvous hash picks for a `sid` cookie value (no routing key configured). */
/** Four new connections of `client`, each answered by the worker `want`. */
async function assertLandsOn(client: TestClient, want: string, what: string): Promise<void> {
  for (let i = 0; i < 4; i++) {
    client.newConnection();
    const r = await client.request('GET', '/api/cart');
    assert.equal(r.status, 200);
    assert.equal(r.node, want, `${what}, connection ${i}`);
  }
}

function expectedWorker(cookieValue: string): string {
  const id = cookieValue.slice(0, cookieValue.lastIndexOf('.'));
  return `${NODE}:w${new Router().pick(id, [0, 1])! + 1}`;
}

/** Writes `parts` to a fresh connection (pausing between them) and resolves with everything read until the server closes or `untilResponses` responses arrived. */
function raw(port: number, parts: Array<string | Buffer>, untilResponses: number, gapMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no complete answer; got ${JSON.stringify(data.slice(0, 300))}`)); }, 10_000);
    const done = (): void => { clearTimeout(timer); socket.destroy(); resolve(data); };
    socket.on('data', (c) => {
      data += c.toString('latin1');
      if ((data.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= untilResponses && /\r\n\r\n[\s\S]*\}\s*$/.test(data)) done();
    });
    socket.on('end', done);
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    const send = async (): Promise<void> => {
      for (const p of parts) {
        socket.write(p);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    };
    socket.on('connect', () => {
      send().catch(reject);
    });
  });
}

/** The tiny app on a two-worker cluster over a temporary SQLite file, for the describe it is called in. */
function tinyCluster(started: (app: AppProcess) => void, env: Record<string, string> = {}): void {
  let app: AppProcess | undefined;
  let db: TempSqliteFile | undefined;
  before(async () => {
    db = await tempSqliteFile();
    app = await startApp({
      script: 'test/cluster/fixtures/tiny-app.ts', port: await freePort(), readyNodes: 2,
      env: { TINY_DB: db.path, TETHER_WORKERS: '2', TETHER_NODE_NAME: NODE, ...env },
    });
    started(app);
  });
  after(async () => {
    await app?.stop();
    await db?.remove();
  });
}

describe('cluster sticky routing', { timeout: 120_000 }, () => {
  let app: AppProcess;
  tinyCluster((started) => (app = started));

  it('cluster when a session cookie is sent on new connections then the worker its routing cookie names answers every time', async () => {
    for (let s = 0; s < 8; s++) {
      const client = new TestClient(app.url);
      const first = await client.request('GET', '/api/session');
      assert.equal(first.status, 200);
      assert.ok(client.cookies.get('sid'), 'the session cookie was set');
      const want = first.node!;
      assert.equal(client.cookies.get('sid-w'), want.slice(want.lastIndexOf(':w') + 2), 'the routing cookie names the worker that set the session cookie');
      const set = first.headers['set-cookie'] ?? [];
      const attributes = (name: string): string | undefined => set.find((c) => c.startsWith(`${name}=`))?.replace(/^[^;]*/, '');
      assert.equal(attributes('sid-w'), attributes('sid'), 'with the session cookie\'s attributes');
      await assertLandsOn(client, want, `session ${s}`);
      client.close();
    }
  });

  it('cluster when only the session cookie is sent on new connections then the worker its hash picks answers every time', async () => {
    for (let s = 0; s < 8; s++) {
      const client = new TestClient(app.url);
      const first = await client.request('GET', '/api/session');
      assert.equal(first.status, 200);
      const cookie = client.cookies.get('sid');
      assert.ok(cookie, 'the session cookie was set');
      client.cookies.delete('sid-w');
      const want = expectedWorker(cookie);
      await assertLandsOn(client, want, `session ${s}`);
      client.close();
    }
  });

  it('cluster when connections carry no session cookie then they alternate between both workers', async () => {
    const counts = new Map<string, number>();
    const client = new TestClient(app.url, { keepAlive: false });
    for (let i = 0; i < 10; i++) {
      const r = await client.request('GET', '/healthz');
      assert.equal(r.status, 200);
      counts.set(r.node!, (counts.get(r.node!) ?? 0) + 1);
    }
    client.close();
    assert.deepEqual([...counts.keys()].sort(), [`${NODE}:w1`, `${NODE}:w2`]);
    for (const [node, n] of counts) assert.ok(n >= 4, `${node} got ${n} of 10`);
  });

  it('cluster when requests reuse a keep-alive connection then they stay on its worker and the shared store keeps them consistent', async () => {
    // Find a session whose hash picks the other worker than its first connection landed on.
    for (let attempt = 0; attempt < 20; attempt++) {
      const client = new TestClient(app.url);
      const first = await client.request('GET', '/api/session');
      client.csrfToken = first.body.csrfToken;
      const hashed = expectedWorker(client.cookies.get('sid')!);
      // Routed by the session's hash alone (a cookie set before routing cookies, or a client that drops it).
      client.cookies.delete('sid-w');
      if (first.node === hashed) {
        client.close();
        continue;
      }
      for (let i = 0; i < 5; i++) {
        const r = await client.request('POST', '/api/cart/items', { productId: `p${i}`, quantity: 1 });
        assert.equal(r.status, 201);
        assert.equal(r.localPort, first.localPort, 'the same connection');
        assert.equal(r.node, first.node, 'keep-alive requests follow their connection, not the cookie');
      }
      client.newConnection();
      const after = await client.request('GET', '/api/cart');
      assert.equal(after.node, hashed, 'a new connection goes where the cookie hashes');
      assert.deepEqual(after.body.cart, { p0: 1, p1: 1, p2: 1, p3: 1, p4: 1 }, 'the other worker sees every write');
      client.close();
      return;
    }
    assert.fail('20 sessions in a row started on the worker their cookie hashes to');
  });

  it('cluster when the body arrives with the head then the worker reads both', async () => {
    const client = new TestClient(app.url);
    const s = await client.request('GET', '/api/session');
    client.close();
    const body = JSON.stringify({ productId: 'one-packet', quantity: 3 });
    const req = `POST /api/cart/items HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nCookie: ${client.cookieHeader}\r\nx-csrf-token: ${s.body.csrfToken}\r\n`
      + `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const out = await raw(app.port, [req], 1);
    assert.match(out, /^HTTP\/1\.1 201/);
    assert.match(out, /"one-packet":3/);
  });

  it('cluster when the head arrives in pieces then the worker parses it whole', async () => {
    const parts = ['GET /healthz HTTP/1.1\r\nHo', 'st: 127.0.0.1\r\nX-A: 1\r', '\nConnection: close\r\n\r', '\n'];
    const out = await raw(app.port, parts, 1, 60);
    assert.match(out, /^HTTP\/1\.1 200/);
    assert.match(out, /"status":"ok"/);
  });

  it('cluster when two requests are pipelined in one packet then both are answered in order by one worker', async () => {
    const two = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/cart HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';
    const out = await raw(app.port, [two], 2);
    const nodes = [...out.matchAll(/x-tether-node: (\S+)/gi)].map((m) => m[1]);
    assert.equal(nodes.length, 2);
    assert.equal(nodes[0], nodes[1]);
    assert.ok(out.indexOf('"status":"ok"') < out.indexOf('"cart"'));
  });

  it('cluster when the head is larger than the read bound then the worker answers 431', async () => {
    const big = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`;
    const out = await raw(app.port, [big], 1);
    assert.match(out, /^HTTP\/1\.1 431/);
  });
});

describe('cluster sticky routing across renewals', { timeout: 120_000 }, () => {
  const RENEWAL_MS = 1_500;
  let app: AppProcess;
  tinyCluster((started) => (app = started), { TINY_RENEWAL_MS: String(RENEWAL_MS) });

  it('cluster when a session\'s ID is renewed then its new connections stay on the worker that served it, and concurrent sets from two connections both succeed', async () => {
    const clients = Array.from({ length: 8 }, () => new TestClient(app.url));
    try {
      const first = await Promise.all(clients.map((c) => c.request('GET', '/api/session')));
      first.forEach((r, i) => { clients[i]!.csrfToken = r.body.csrfToken; });
      const before = clients.map((c) => c.cookies.get('sid'));
      await new Promise((r) => setTimeout(r, RENEWAL_MS + 200));
      for (const [i, client] of clients.entries()) {
        // The request after the interval renews the ID, on the connection the session was created on.
        const renewed = await client.request('GET', '/api/cart');
        assert.equal(renewed.status, 200);
        assert.notEqual(client.cookies.get('sid'), before[i], `session ${i}: its ID was renewed`);
        assert.equal(renewed.node, first[i]!.node, `session ${i}: the same keep-alive connection`);
        // A page's other connection writes while the first one does: both reach the same worker, whose gate serialises them.
        const other = new TestClient(app.url);
        for (const [k, v] of client.cookies) other.cookies.set(k, v);
        other.csrfToken = client.csrfToken;
        try {
          const [a, b] = await Promise.all([client.request('POST', '/api/set?key=a'), other.request('POST', '/api/set?key=b')]);
          assert.equal(b.node, first[i]!.node, `session ${i}: a new connection after the renewal goes to the session's worker`);
          assert.deepEqual([a.status, b.status], [200, 200], `session ${i}: ${a.text} ${b.text}`);
        } finally {
          other.close();
        }
      }
    } finally {
      for (const c of clients) c.close();
    }
  });
});
