/**
 * Many machines on one: real HAProxy (configured by `tether haproxy-config`) in front of three shop nodes
 * (`npm start` with TETHER_WORKERS=1) sharing a real redis-server (sessions, TETHER_STORE) and a real
 * PostgreSQL (the shop's data, SHOP_DATABASE_URL). A client stays on one node; kill -9 of that node under
 * load loses no acknowledged add and its clients are redispatched; the node comes back and rejoins; a
 * rolling restart (SIGTERM, drain while /healthz answers 503, start again) fails no request at all.
 *
 * Health checks run faster than the generated defaults (inter 1s, fastinter 250ms) to keep the test
 * short; the drain delay follows the formula in docs/deploy.md: inter + (fall - 1) * fastinter + margin.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CartLoad, recoveryAfter } from '../helpers/cart-load.js';
import type { CheckResult, OpRecord } from '../helpers/cart-load.js';
import { TestClient } from '../helpers/http-client.js';
import { startApp, probe, REPO_ROOT } from '../helpers/node-process.js';
import type { AppProcess } from '../helpers/node-process.js';
import { startHaproxy } from '../helpers/haproxy.js';
import type { Haproxy } from '../helpers/haproxy.js';
import { startRedis, freePort } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { startPostgres } from '../helpers/postgres.js';
import type { PostgresServer } from '../helpers/postgres.js';

const INTER_MS = 1_000;
const FASTINTER_MS = 250;
const FALL = 3;
const DRAIN_DELAY_MS = INTER_MS + (FALL - 1) * FASTINTER_MS + 500;
const SECRET = 'haproxy-test-secret-haproxy-test-secret-0123456';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Node {
  name: string;
  port: number;
  dataDir: string;
  app: AppProcess | null;
}

const nodeOf = (worker: string | undefined): string | undefined => worker?.split(':')[0];

function assertNothingLost(r: CheckResult): void {
  assert.deepEqual(r.unreadable, [], 'every session is readable and still the same session');
  assert.deepEqual(r.lost, [], 'no acknowledged add is missing');
  assert.deepEqual(r.phantom, [], 'no unit beyond what was sent');
  assert.ok(r.acknowledged > 0);
}

describe('HAProxy in front of three shop nodes on Redis and PostgreSQL', { timeout: 420_000 }, () => {
  let redis: RedisServer;
  let pg: PostgresServer;
  let haproxy: Haproxy;
  let statsPort: number;
  const nodes: Node[] = [];

  const startNode = async (n: Node): Promise<void> => {
    n.app = await startApp({
      script: 'apps/shop/main.ts', port: n.port, readyNodes: 1, readyTimeoutMs: 60_000,
      env: {
        TETHER_WORKERS: '1', TETHER_NODE_NAME: n.name, TETHER_DATA_DIR: n.dataDir, TETHER_SECRET: SECRET,
        TETHER_STORE: redis.url, SHOP_DATABASE_URL: pg.url, SHOP_ADMIN_PASSWORD: 'admin-password-for-tests',
        SHOP_NEW_SESSIONS_PER_MINUTE: '100000', TETHER_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
      },
    });
  };

  const waitState = async (name: string, want: (s: string) => boolean, timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = (await haproxy.serverStates())[name] ?? 'absent';
      if (want(last)) return;
      await sleep(100);
    }
    throw new Error(`haproxy server ${name} is ${last}`);
  };

  before(async () => {
    redis = await startRedis();
    pg = await startPostgres({ fast: true });
    for (let i = 1; i <= 3; i++) {
      nodes.push({ name: `node${i}`, port: await freePort(), dataDir: await mkdtemp(path.join(os.tmpdir(), `tether-ha-node${i}-`)), app: null });
    }
    // One at a time: the first start creates the shop's schema in PostgreSQL.
    for (const n of nodes) await startNode(n);
    const port = await freePort();
    statsPort = await freePort();
    const config = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'haproxy-config',
      '--listen', `127.0.0.1:${port}`, '--nodes', nodes.map((n) => `127.0.0.1:${n.port}`).join(','), '--stats', `127.0.0.1:${statsPort}`,
      '--check-inter', `${INTER_MS}ms`, '--check-fastinter', `${FASTINTER_MS}ms`, '--fall', String(FALL)], { encoding: 'utf8' });
    haproxy = await startHaproxy({ config, port, statsPort });
    for (const n of nodes) await waitState(n.name, (s) => s === 'UP');
  });

  after(async () => {
    await haproxy?.stop();
    await Promise.all(nodes.map((n) => n.app?.stop()));
    await Promise.all(nodes.map((n) => rm(n.dataDir, { recursive: true, force: true })));
    await redis?.dispose();
    await pg?.dispose();
  });

  it('haproxy when a client keeps its cookies then every request lands on the same node', async () => {
    const client = new TestClient(haproxy.url);
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

  it('haproxy when a node is killed with SIGKILL under load then no acknowledged add is lost, its clients move on, and it rejoins', async (t) => {
    const load = new CartLoad({ url: haproxy.url, clients: 12, opsPerClient: 400, pauseMs: 20, maxMs: 90_000 });
    await load.prepare();
    const home = new Map<number, string>();
    for (const c of load.clients) {
      const r = await c.http.request('GET', '/api/cart');
      home.set(c.index, nodeOf(r.node)!);
    }
    const victim = nodes.find((n) => n.name === home.get(0))!;
    const running = load.run();
    while (load.count('ok') < 150) await sleep(25);
    const workerPid = JSON.parse((await probe(victim.port)).body).pid as number;
    const killAt = Date.now();
    process.kill(victim.app!.pid, 'SIGKILL');
    process.kill(workerPid, 'SIGKILL');
    await victim.app!.exited;
    await waitState(victim.name, (s) => s.startsWith('DOWN'));
    await sleep(1_000);
    await startNode(victim);
    await waitState(victim.name, (s) => s === 'UP');
    const rejoinedAt = Date.now();
    // New clients are balanced round-robin again, so the next few reach the node that came back.
    let reached = false;
    for (let i = 0; i < 9 && !reached; i++) {
      const fresh = new TestClient(haproxy.url);
      reached = nodeOf((await fresh.request('GET', '/healthz')).node) === victim.name;
      fresh.close();
    }
    load.stop();
    await running;

    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    const gatewayOrConnection = (o: OpRecord): boolean => o.outcome === 'conn-error' || (o.outcome === 'http-error' && [502, 503, 504].includes(o.status!));
    assert.deepEqual(failed.filter((o) => !gatewayOrConnection(o)), [], 'failures are only requests the dead node could not answer');
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
    t.diagnostic(`kill -9 ${victim.name}: ${failed.length} failed (${[...new Set(failed.map((o) => o.status ?? o.outcome))].join(', ') || 'none'}), `
      + `${pinned.length} clients pinned to it, kill → first success elsewhere ${firstMoved.sort((a, b) => a - b).join(', ')} ms, `
      + `affected recovered ${recovery.recoveryMs.join(', ') || 'n/a'} ms; back in rotation ${rejoinedAt - killAt} ms after the kill`);
    load.close();
  });

  it('haproxy when the nodes restart one at a time under load then no request fails and nothing is lost', async (t) => {
    const load = new CartLoad({ url: haproxy.url, clients: 12, opsPerClient: 3000, pauseMs: 20, maxMs: 240_000 });
    await load.prepare();
    const running = load.run();
    const exits: number[] = [];
    for (const n of nodes) {
      const before = load.count('ok');
      while (load.count('ok') < before + 60) await sleep(25);
      const exit = await n.app!.stop('SIGTERM', 20_000);
      assert.equal(exit.code, 0, `${n.name} exit code`);
      assert.ok(exit.elapsedMs < 10_000, `${n.name} stopped in ${exit.elapsedMs} ms`);
      exits.push(exit.elapsedMs);
      await startNode(n);
      await waitState(n.name, (s) => s === 'UP');
    }
    const before = load.count('ok');
    while (load.count('ok') < before + 60) await sleep(25);
    load.stop();
    await running;
    const failed = load.ops().filter((o) => o.outcome !== 'ok');
    assert.deepEqual(failed, [], 'no request failed during the rolling restart');
    assertNothingLost(await load.check());
    t.diagnostic(`rolling restart: ${load.count('ok')} adds acknowledged, 0 failed; nodes stopped in ${exits.join(', ')} ms`);
    load.close();
  });
});
