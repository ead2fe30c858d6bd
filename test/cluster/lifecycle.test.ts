/**
 * Worker and primary lifecycle of the one-machine cluster, with real processes (the tiny app on a shared
 * SQLite file): a killed worker is replaced under its name while the other serves its sessions, a worker
 * told to stop alone finishes its in-flight request, idle keep-alive connections time out in the worker,
 * SIGTERM to the primary finishes in-flight requests and exits 0 within 10 s, and SIGTERM while a
 * replacement worker is still starting stops that worker as soon as it is ready instead of at the deadline.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Router } from 'tether/cluster';
import { TestClient } from '../helpers/http-client.js';
import type { Reply } from '../helpers/http-client.js';
import { startApp, probe, pidOf } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';
import { childPids, procStat } from '../helpers/procfs.js';
import { freePort } from '../helpers/redis.js';
import { tempSqliteFile } from '../helpers/sqlite.js';
import type { TempSqliteFile } from '../helpers/sqlite.js';

const NODE = 'life';
/** The shutdown deadline of the cluster whose replacement worker is stopped while it starts. */
const SLOW_DEADLINE_MS = 30_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The worker the primary routes the client's new connections to: the one its routing cookie names, else the one its session hashes to. */
function workerOf(client: TestClient): string {
  const route = client.cookies.get('sid-w');
  if (route !== undefined) return `${NODE}:w${route}`;
  const v = client.cookies.get('sid')!;
  return `${NODE}:w${new Router().pick(v.slice(0, v.lastIndexOf('.')), [0, 1])! + 1}`;
}


/** Polls `check` until it holds; throws after `timeoutMs`, with `detail()` in the message. */
async function until(what: string, check: () => boolean, detail = (): string => '', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${detail()}`);
    await sleep(10);
  }
}

let slowTags = 0;

/**
 * GET /slow?ms=… on a new connection of `client`; resolves once a worker has begun it (the app prints
 * so), with the reply still to come. Under load the request can take a while to reach a worker, and a
 * stop that came first would rightly refuse it.
 */
async function slowRequest(app: AppProcess, client: TestClient, ms: number): Promise<{ reply: Promise<Reply> }> {
  const tag = `t${++slowTags}`;
  client.newConnection();
  const reply = client.request('GET', `/slow?ms=${ms}&tag=${tag}`);
  // Awaited by the caller; a request that fails before it starts shows in the wait below.
  reply.catch(() => {});
  await until(`/slow to start in a worker`, () => app.output().includes(`slow ${tag} started\n`), () => app.output().slice(-2000));
  return { reply };
}

async function newSession(url: string): Promise<TestClient> {
  const c = new TestClient(url);
  const s = await c.request('GET', '/api/session');
  assert.equal(s.status, 200);
  c.csrfToken = s.body.csrfToken;
  return c;
}

describe('cluster lifecycle', { timeout: 180_000 }, () => {
  let app: AppProcess;
  let db: TempSqliteFile;
  let port: number;
  const env = (): Record<string, string> => ({ TINY_DB: db.path, TETHER_WORKERS: '2', TETHER_NODE_NAME: NODE });

  before(async () => {
    db = await tempSqliteFile();
    port = await freePort();
    app = await startApp({ script: 'test/cluster/fixtures/tiny-app.ts', port, readyNodes: 2, env: env() });
  });
  after(async () => {
    await app?.stop();
    await db?.remove();
  });

  it('worker when killed with SIGKILL then the other serves its sessions and a replacement takes its name', async () => {
    const client = await newSession(app.url);
    assert.equal((await client.request('POST', '/api/cart/items', { productId: 'before', quantity: 2 })).status, 201);
    const victim = workerOf(client);
    const pid = await pidOf(port, victim);
    process.kill(pid, 'SIGKILL');
    client.newConnection();
    let served: string | undefined;
    for (let i = 0; i < 50 && served === undefined; i++) {
      try {
        const r = await client.request('POST', '/api/cart/items', { productId: 'after', quantity: 1 });
        assert.equal(r.status, 201);
        served = r.node;
      } catch {
        client.newConnection();
        await sleep(20);
      }
    }
    assert.ok(served, 'a request succeeded after the kill');
    const fresh = await pidOf(port, victim, pid);
    assert.notEqual(fresh, pid);
    client.newConnection();
    const cart = await client.request('GET', '/api/cart');
    assert.equal(cart.node, victim, 'the session is routed back to its worker once replaced');
    assert.deepEqual(cart.body.cart, { before: 2, after: 1 });
    client.close();
    // The primary's log line names the dead worker apart: its own `pid` stays the primary's.
    const exited = app.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.msg === 'worker exited; starting a replacement' && e.workerPid === pid);
    assert.ok(exited, app.output().slice(-2000));
    assert.deepEqual({ pid: exited.pid, worker: exited.worker, signal: exited.signal }, { pid: app.pid, worker: victim, signal: 'SIGKILL' });
  });

  it('worker when its event loop stops turning (an endless loop) then the primary kills it after hangTimeoutMs, and a replacement serves its sessions', async () => {
    const hangDb = await tempSqliteFile();
    const hangPort = await freePort();
    const hanging = await startApp({ script: 'test/cluster/fixtures/tiny-app.ts', port: hangPort, readyNodes: 2, env: { ...env(), TINY_DB: hangDb.path, TETHER_HANG_TIMEOUT_MS: '1500' } });
    try {
      const client = await newSession(hanging.url);
      assert.equal((await client.request('POST', '/api/cart/items', { productId: 'kept', quantity: 3 })).status, 201);
      const victim = workerOf(client);
      const pid = await pidOf(hangPort, victim);
      client.newConnection();
      client.request('GET', '/hang').catch(() => {});
      const fresh = await pidOf(hangPort, victim, pid);
      assert.notEqual(fresh, pid);
      const killed = hanging.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.msg === 'worker stopped answering; killing it' && e.workerPid === pid);
      assert.ok(killed, hanging.output().slice(-2000));
      assert.equal(killed.worker, victim);
      assert.ok(Number(killed.silentMs) >= 1500, String(killed.silentMs));
      client.newConnection();
      const cart = await client.request('GET', '/api/cart');
      assert.equal(cart.node, victim);
      assert.deepEqual(cart.body.cart, { kept: 3 });
      client.close();
    } finally {
      await hanging.stop();
      await hangDb.remove();
    }
  });

  it('worker when it alone gets SIGTERM then its in-flight request completes, closing its connection, and it is replaced', async () => {
    const client = await newSession(app.url);
    const name = workerOf(client);
    const pid = await pidOf(port, name);
    const slow = await slowRequest(app, client, 800);
    process.kill(pid, 'SIGTERM');
    const r = await slow.reply;
    assert.equal(r.status, 200);
    assert.equal(r.node, name);
    assert.equal(r.headers.connection, 'close', 'the client does not send its next request on a connection the drain closes');
    assert.notEqual(await pidOf(port, name, pid), pid);
    client.close();
  });

  it('worker when a handed-over keep-alive connection stays idle then the worker closes it and keeps serving', async () => {
    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      socket.on('close', () => resolve(Date.now() - t0));
    });
    socket.on('error', () => {});
    socket.resume();
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const ms = await closed;
    assert.ok(ms < 15_000, `closed after ${ms} ms`);
    const again = await probe(port);
    assert.equal(again.status, 200);
  });

  it('primary when SIGTERM arrives with requests in flight then they complete, it exits 0 within 10 s, and a restart keeps the sessions', async () => {
    const client = await newSession(app.url);
    assert.equal((await client.request('POST', '/api/cart/items', { productId: 'kept', quantity: 5 })).status, 201);
    const slow = await slowRequest(app, client, 1500);
    const exit = app.stop('SIGTERM', 20_000);
    const r = await slow.reply;
    assert.equal(r.status, 200);
    const e = await exit;
    assert.equal(e.code, 0);
    assert.ok(e.elapsedMs < 10_000, `exited after ${e.elapsedMs} ms`);
    app = await startApp({ script: 'test/cluster/fixtures/tiny-app.ts', port, readyNodes: 2, env: env() });
    client.newConnection();
    const cart = await client.request('GET', '/api/cart');
    assert.deepEqual(cart.body.cart, { kept: 5 });
    client.close();
  });

  it('primary when SIGTERM arrives while a replacement worker is still starting then that worker stops once ready and the primary exits 0 without waiting for the deadline', async (t) => {
    const ownDb = await tempSqliteFile();
    const ownPort = await freePort();
    const slow = await startApp({
      script: 'test/cluster/fixtures/tiny-app.ts', port: ownPort, readyNodes: 2,
      // A deadline far past any start-up, even on a loaded machine, so that reaching it can only mean waiting for it.
      env: { TINY_DB: ownDb.path, TETHER_WORKERS: '2', TETHER_NODE_NAME: 'slow', TINY_START_DELAY_MS: '600', TETHER_SHUTDOWN_TIMEOUT_MS: String(SLOW_DEADLINE_MS) },
    });
    try {
      const workers = childPids(slow.pid);
      const node = procStat(slow.pid)!.comm;
      process.kill(await pidOf(ownPort, 'slow:w1'), 'SIGKILL');
      // The replacement, once forked, spends 600 ms in startWorker and more loading the app: the stop
      // message reaches it before it listens for messages.
      await until('the replacement worker to be forked', () => childPids(slow.pid).some((p) => !workers.includes(p) && procStat(p)?.comm === node));
      const e = await slow.stop('SIGTERM', SLOW_DEADLINE_MS + 10_000);
      assert.equal(e.code, 0);
      assert.doesNotMatch(slow.output(), /shutdown deadline passed/);
      // How long the replacement takes to be ready depends on the machine's load; what must not happen
      // is waiting for the deadline.
      assert.ok(e.elapsedMs < SLOW_DEADLINE_MS, `exited after ${e.elapsedMs} ms (the deadline is ${SLOW_DEADLINE_MS})`);
      t.diagnostic(`SIGTERM while a replacement worker was starting: exited 0 after ${e.elapsedMs} ms`);
    } finally {
      await slow.kill();
      await ownDb.remove();
    }
  });
});
