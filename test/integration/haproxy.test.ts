/**
 * Many machines on one: real HAProxy (configured by `tether haproxy-config`) in front of three shop nodes
 * (`npm start` with TETHER_WORKERS=1) sharing a real redis-server (sessions, TETHER_STORE) and a real
 * PostgreSQL (the shop's data, SHOP_DATABASE_URL). A client stays on one node; kill -9 of that node under
 * load loses no acknowledged add and its clients are redispatched; a WebSocket passes through to its
 * client's node and is closed when another node logs the session out; the node comes back and rejoins; a
 * rolling restart (SIGTERM, drain while /healthz answers 503, start again) fails no request at all; an
 * oversized head, a dripped head and an idle kept-alive connection meet the generated limits. Faults of
 * the whole tier are in haproxy-faults.test.ts.
 *
 * Health checks run faster than the generated defaults (inter 1s, fastinter 250ms) to keep the test
 * short; the drain delay follows the formula in docs/deploy.md: inter + (fall - 1) * fastinter + margin.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CartLoad, assertNothingLost, failureKinds, recoveryAfter, refusedByProxy } from '../helpers/cart-load.js';
import { TestClient } from '../helpers/http-client.js';
import { startHaCluster } from '../helpers/ha-cluster.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { connect } from '../helpers/ws.js';
import type { HaCluster } from '../helpers/ha-cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nodeOf = (worker: string | undefined): string | undefined => worker?.split(':')[0];

describe('HAProxy in front of three shop nodes on Redis and PostgreSQL', { timeout: 420_000 }, () => {
  let ha: HaCluster;

  before(async () => {
    ha = await startHaCluster({ nodes: 3, checkInterMs: 1_000, checkFastInterMs: 250, fall: 3 });
  });
  after(async () => {
    await ha?.dispose();
  });

  it('haproxy when a client keeps its cookies then every request lands on the same node', async () => {
    const client = new TestClient(ha.haproxy.url);
    const first = await client.request('GET', '/api/session');
    assert.equal(first.status, 200);
    assert.ok(client.cookies.get('SRV'), 'HAProxy set its persistence cookie');
    const home = nodeOf(first.node);
    for (let i = 0; i < 8; i++) {
      client.newConnection();
      const r = await client.request('GET', '/api/cart');
      assert.equal(r.status, 200);
      assert.equal(nodeOf(r.node), home, `request ${i}`);
    }
    client.close();
  });

  it('haproxy when a signed-in browser opens the live channel then the WebSocket reaches its node, and a logout handled by another node closes it', async () => {
    const client = new TestClient(ha.haproxy.url);
    client.csrfToken = ((await client.request('GET', '/api/session')).body as { csrfToken: string }).csrfToken;
    const reg = await client.request('POST', '/api/auth/register', { username: `live_${process.pid}`, password: 'correct horse battery' });
    assert.equal(reg.status, 201);
    const home = nodeOf(reg.node)!;
    const live = await connect(ha.haproxy.url.replace('http:', 'ws:') + '/api/live', { cookie: client.cookieHeader, origin: ha.haproxy.url });
    await live.received(1);
    assert.deepEqual(live.messages, [{ type: 'hello' }]);
    // The logout goes to another node directly (its own origin), with the browser's session cookie.
    const other = ha.nodes.find((n) => n.name !== home)!;
    const direct = new TestClient(`http://127.0.0.1:${other.port}`);
    direct.cookies.set('sid', client.cookies.get('sid')!);
    direct.csrfToken = (reg.body as { csrfToken: string }).csrfToken;
    const started = Date.now();
    const out = await direct.request('POST', '/api/auth/logout');
    assert.equal(out.status, 200);
    assert.equal(nodeOf(out.node), other.name);
    assert.deepEqual(await live.closed, { code: 4001, reason: 'gone' });
    assert.ok(Date.now() - started < 5_000, `closed after ${Date.now() - started} ms: the home node hears the logout through the store's change feed, long before its 5 min check`);
    client.close();
    direct.close();
  });

  it('haproxy when a request head is over 16 KiB then it is refused 4xx, never a 5xx, and a 12 KiB Cookie header still reaches the session (S49)', async (t) => {
    const client = new TestClient(ha.haproxy.url);
    try {
      const first = await client.request('GET', '/api/session');
      assert.equal(first.status, 200);
      const session = client.cookieHeader;
      assert.ok(session, 'a session cookie');
      const padded = async (bytes: number): Promise<{ status: number; node: string | undefined; same: boolean }> => {
        const other = new TestClient(ha.haproxy.url);
        try {
          const r = await other.request('GET', '/api/session', undefined, { cookie: `pad=${'a'.repeat(bytes)}; ${session}` });
          return { status: r.status, node: r.node, same: r.status === 200 && r.body?.csrfToken === first.body.csrfToken };
        } finally {
          other.close();
        }
      };
      const big = await padded(17 * 1024);
      assert.ok(big.status === 400 || big.status === 431, `17 KiB Cookie: ${big.status}`);
      const fits = await padded(12 * 1024);
      assert.equal(fits.status, 200, '12 KiB Cookie served');
      assert.ok(fits.same, 'the session the cookie names is the one answered');
      assert.equal((await client.request('GET', '/api/session')).body.csrfToken, first.body.csrfToken, 'the session is untouched');
      t.diagnostic(`17 KiB Cookie: ${big.status} from ${big.node === undefined ? 'HAProxy' : big.node}`);
    } finally {
      client.close();
    }
  });

  it('haproxy when a client drips its head or idles on a kept-alive connection then the generated timeouts close it (408 after 10 s; idle after 5 s), while others are served (S51, S52)', async (t) => {
    const port = Number(new URL(ha.haproxy.url).port);
    const slow = await RawConnection.open(port);
    slow.write(`GET /api/session HTTP/1.1\r\nHost: ${new URL(ha.haproxy.url).host}\r\n`);
    const idle = await RawConnection.open(port);
    idle.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(ha.haproxy.url).host}\r\n\r\n`);
    const others = async (): Promise<number> => {
      let served = 0;
      const client = new TestClient(ha.haproxy.url);
      try {
        for (let i = 0; i < 12 && !(slow.isClosed && idle.isClosed); i++) {
          await sleep(1_000);
          if ((await client.request('GET', '/healthz')).status === 200) served++;
        }
      } finally {
        client.close();
      }
      return served;
    };
    const [dripped, , , served] = await Promise.all([
      slow.drip((i) => `X-Drip-${i}: ${'d'.repeat(8)}\r\n`, 500, 60),
      slow.waitClosed(),
      idle.waitClosed(),
      others(),
    ]);
    assert.match(slow.received, /^HTTP\/1\.[01] 408 /, `dripped head: ${JSON.stringify(slow.received.slice(0, 200))}`);
    assert.ok(slow.firstByteMs! >= 10_000 - 50 && slow.closedMs! <= 10_000 + 3_000, `408 after ${slow.firstByteMs} ms, closed after ${slow.closedMs} ms (timeout http-request 10s)`);
    assert.match(idle.received, /^HTTP\/1\.1 200 /);
    assert.equal(idle.received.match(/HTTP\/1\.1 /g)?.length, 1, 'nothing sent after the response');
    const idleMs = idle.closedMs! - idle.firstByteMs!;
    assert.ok(idleMs >= 5_000 - 50 && idleMs <= 5_000 + 3_000, `idle connection closed ${idleMs.toFixed(0)} ms after the response (timeout http-keep-alive 5s)`);
    assert.ok(served >= 4, `other clients served meanwhile (${served})`);
    t.diagnostic(`dripped head: ${dripped} lines, 408 after ${slow.firstByteMs!.toFixed(0)} ms; idle keep-alive closed ${idleMs.toFixed(0)} ms after the response; ${served} other requests served`);
  });

  it('haproxy when a node is killed with SIGKILL under load then no acknowledged add is lost, its clients move on, and it rejoins', async (t) => {
    const load = new CartLoad({ url: ha.haproxy.url, clients: 12, opsPerClient: 400, pauseMs: 20, maxMs: 90_000, logoutEvery: 25 });
    await load.prepare();
    const home = new Map<number, string>();
    for (const c of load.clients) {
      const r = await c.http.request('GET', '/api/cart');
      home.set(c.index, nodeOf(r.node)!);
    }
    const victim = ha.nodes.find((n) => n.name === home.get(0))!;
    const running = load.run();
    await load.acked(150);
    const killAt = Date.now();
    await ha.killNode(victim);
    await ha.waitState(victim, (s) => s.startsWith('DOWN'));
    // The first check after the kill fails within inter, then fall - 1 more at fastinter (1 s + 2 × 250 ms here).
    const downMs = Date.now() - killAt;
    assert.ok(downMs < 4_000, `marked down ${downMs} ms after the kill`);
    await sleep(1_000);
    await ha.startNode(victim);
    await ha.waitState(victim, (s) => s === 'UP');
    const rejoinedAt = Date.now();
    // New clients are balanced round-robin again, so the next few reach the node that came back.
    let reached = false;
    for (let i = 0; i < 9 && !reached; i++) {
      const fresh = new TestClient(ha.haproxy.url);
      reached = nodeOf((await fresh.request('GET', '/healthz')).node) === victim.name;
      fresh.close();
    }
    load.stop();
    await running;

    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed.filter((o) => !refusedByProxy(o)), [], 'failures are only requests the dead node could not answer');
    assert.deepEqual(failed.filter((o) => o.endedAt < killAt), [], 'nothing failed before the kill');
    assert.ok(failed.length <= load.clients.length, `at most one in-flight request per client fails (${failed.length})`);
    for (const c of load.clients.filter((x) => home.get(x.index) === victim.name)) {
      const moved = c.ops.find((o) => o.outcome === 'ok' && o.startedAt > killAt && nodeOf(o.node) !== victim.name);
      assert.ok(moved, `client ${c.index} was redispatched to a live node`);
    }
    assert.ok(reached, `a new client reached ${victim.name} after it rejoined`);
    assertNothingLost(await load.check());
    const recovery = recoveryAfter(load, killAt);
    const pinned = load.clients.filter((x) => home.get(x.index) === victim.name);
    const firstMoved = pinned.map((c) => (c.ops.find((o) => o.outcome === 'ok' && o.startedAt > killAt && nodeOf(o.node) !== victim.name)?.endedAt ?? NaN) - killAt);
    t.diagnostic(`kill -9 ${victim.name}: ${failed.length} failed (${failureKinds(failed)}), `
      + `${pinned.length} clients pinned to it, kill → first success elsewhere ${firstMoved.sort((a, b) => a - b).join(', ')} ms, `
      + `affected recovered ${recovery.recoveryMs.join(', ') || 'n/a'} ms; marked down after ${downMs} ms, back in rotation ${rejoinedAt - killAt} ms after the kill`);
    load.close();
  });

  it('haproxy when the nodes restart one at a time under load then no request fails and nothing is lost', async (t) => {
    const load = new CartLoad({ url: ha.haproxy.url, clients: 12, opsPerClient: 3000, pauseMs: 20, maxMs: 240_000, logoutEvery: 50 });
    await load.prepare();
    const running = load.run();
    const exits: number[] = [];
    for (const n of ha.nodes) {
      const before = load.count('ok');
      await load.acked(before + 60);
      const exit = await ha.stopNode(n);
      assert.equal(exit.code, 0, `${n.name} exit code`);
      assert.ok(exit.elapsedMs < 10_000, `${n.name} stopped in ${exit.elapsedMs} ms`);
      exits.push(exit.elapsedMs);
      await ha.startNode(n);
      await ha.waitState(n, (s) => s === 'UP');
    }
    const before = load.count('ok');
    await load.acked(before + 60);
    load.stop();
    await running;
    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed, [], 'no request failed during the rolling restart');
    assertNothingLost(await load.check());
    t.diagnostic(`rolling restart: ${load.count('ok')} adds acknowledged, 0 failed; nodes stopped in ${exits.join(', ')} ms`);
    load.close();
  });
});
