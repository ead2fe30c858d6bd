/**
 * Throughput of the shop as `npm start` runs it with 1 worker and with 2 workers, in one run, on the same
 * machine: autocannon keeps one connection per session (so the primary routes each to its worker, as a
 * browser would be routed), GET /api/cart reads the session, POST /api/cart/items changes it. CPU per
 * request is the CPU time of the primary and its workers (from /proc) over the answered requests.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { startApp } from '../../test/helpers/node-process.js';
import { freePort } from '../../test/helpers/redis.js';
import { TestClient } from '../../test/helpers/http-client.js';
import { childPids } from '../../test/helpers/ha-cluster.js';
import { procCpuUs } from '../lib/procs.js';

export interface ThroughputRow {
  workers: number;
  scenario: 'read' | 'write';
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  /** CPU time of the primary and the workers per answered request, in microseconds. */
  cpuUsPerRequest: number;
  /** Of which the primary (routing only). */
  primaryCpuUsPerRequest: number;
}

export interface ThroughputOptions {
  connections: number;
  durationS: number;
  warmupS: number;
}

export interface Credential { cookie: string; csrf: string }

export async function sessions(url: string, n: number): Promise<Credential[]> {
  const out: Credential[] = [];
  for (let i = 0; i < n; i++) {
    const c = new TestClient(url, { keepAlive: false });
    const r = await c.request('GET', '/api/session');
    out.push({ cookie: c.cookieHeader, csrf: (r.body as { csrfToken: string }).csrfToken });
    c.close();
  }
  return out;
}

export function cannon(url: string, creds: Credential[], scenario: 'read' | 'write', durationS: number): Promise<autocannon.Result> {
  let next = 0;
  const products = ['camp-mug', 'headlamp', 'notebook', 'candle', 'planter', 'speaker'];
  return new Promise((resolve, reject) => {
    autocannon({
      url, connections: creds.length, duration: durationS, timeout: 10,
      requests: [{ method: 'GET', path: '/healthz' }],
      setupClient: (client) => {
        const c = creds[next++ % creds.length]!;
        const headers = { origin: new URL(url).origin, cookie: c.cookie, 'x-csrf-token': c.csrf, 'content-type': 'application/json' };
        client.setRequests(scenario === 'read'
          ? [{ method: 'GET', path: '/api/cart', headers }]
          : products.map((p) => ({ method: 'POST' as const, path: '/api/cart/items', headers, body: JSON.stringify({ productId: p, quantity: 1 }) })));
      },
    }, (err, res) => (err ? reject(err as Error) : resolve(res)));
  });
}

export async function measureThroughput(workers: number, o: ThroughputOptions): Promise<ThroughputRow[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-ha-bench-'));
  const port = await freePort();
  const app = await startApp({
    script: 'apps/shop/main.ts', port, readyNodes: workers, readyTimeoutMs: 90_000,
    env: { TETHER_WORKERS: String(workers), TETHER_DATA_DIR: dataDir, TETHER_SECRET: 'bench-secret-bench-secret-bench-secret-0123', SHOP_ADMIN_PASSWORD: 'admin-password-for-bench', SHOP_NEW_SESSIONS_PER_MINUTE: '1000000' },
  });
  const rows: ThroughputRow[] = [];
  try {
    const creds = await sessions(app.url, o.connections);
    const pids = [app.pid, ...childPids(app.pid)];
    for (const scenario of ['read', 'write'] as const) {
      await cannon(app.url, creds, scenario, o.warmupS);
      const before = pids.map(procCpuUs);
      const res = await cannon(app.url, creds, scenario, o.durationS);
      const after = pids.map(procCpuUs);
      const answered = res['2xx'] + res.non2xx;
      const cpu = after.reduce((s, v, i) => s + v - before[i]!, 0);
      rows.push({
        workers, scenario, rps: Math.round(answered / res.duration), p50Ms: res.latency.p50, p99Ms: res.latency.p99,
        non2xx: res.non2xx, errors: res.errors,
        cpuUsPerRequest: Math.round(cpu / Math.max(1, answered)),
        primaryCpuUsPerRequest: Math.round((after[0]! - before[0]!) / Math.max(1, answered)),
      });
    }
  } finally {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  return rows;
}
