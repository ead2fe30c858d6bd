/**
 * Faults on one machine, against the shop as `npm start` runs it (a primary and two workers, sessions in
 * SQLite): SIGKILL a worker several times under a cart load (errors seen, clients affected, time from the
 * kill to each affected client's next acknowledged add), then SIGTERM the primary under load (exit code,
 * time to exit) and start it again; at the end every cart is checked against what was acknowledged.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CartLoad, recoveryAfter } from '../../test/helpers/cart-load.js';
import type { CheckResult } from '../../test/helpers/cart-load.js';
import { startApp, probe } from '../../test/helpers/node-process.js';
import type { AppProcess } from '../../test/helpers/node-process.js';
import { freePort } from '../../test/helpers/redis.js';

export interface KillRound {
  victim: string;
  connectionErrors: number;
  otherErrors: number;
  affected: number;
  recoveryMs: number[];
  /** From the kill until the replacement answered /healthz. */
  replacedMs: number;
}

export interface CheckSummary {
  acknowledged: number;
  indeterminate: number;
  lost: number;
  phantom: number;
  unreadable: number;
}

export interface ClusterFaultResults {
  clients: number;
  kills: KillRound[];
  killCheck: CheckSummary;
  drain: { exitCode: number | null; stopMs: number; acknowledged: number; connectionErrors: number; otherErrors: number; check: CheckSummary; earlierLoadCheck: CheckSummary };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function summary(r: CheckResult): CheckSummary {
  return { acknowledged: r.acknowledged, indeterminate: r.indeterminate, lost: r.lost.length, phantom: r.phantom.length, unreadable: r.unreadable.length };
}

async function workerPid(port: number, name: string, notPid = 0, timeoutMs = 90_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await probe(port).catch(() => null);
    if (r?.status === 200 && r.node === name) {
      const { pid } = JSON.parse(r.body) as { pid: number };
      if (pid !== notPid) return pid;
    }
    await sleep(20);
  }
  throw new Error(`worker ${name} did not answer`);
}

async function untilMoreAcked(load: CartLoad, n: number): Promise<void> {
  const target = load.count('ok') + n;
  for (let i = 0; i < 4000 && load.count('ok') < target; i++) await sleep(25);
}

export async function clusterFaults(rounds: number, clients: number): Promise<ClusterFaultResults> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-ha-faults-'));
  const port = await freePort();
  const start = (): Promise<AppProcess> => startApp({
    script: 'apps/shop/main.ts', port, readyNodes: 2, readyTimeoutMs: 90_000,
    env: { TETHER_WORKERS: '2', TETHER_NODE_NAME: 'bench', TETHER_DATA_DIR: dataDir, TETHER_SECRET: 'bench-secret-bench-secret-bench-secret-0123', SHOP_ADMIN_PASSWORD: 'admin-password-for-bench', SHOP_NEW_SESSIONS_PER_MINUTE: '1000000' },
  });
  let app = await start();
  try {
    const load = new CartLoad({ url: app.url, clients, opsPerClient: 100_000, pauseMs: 15, maxMs: 600_000 });
    await load.prepare();
    const running = load.run();
    const kills: KillRound[] = [];
    for (let round = 0; round < rounds; round++) {
      await untilMoreAcked(load, 150);
      const victim = `bench:w${(round % 2) + 1}`;
      const pid = await workerPid(port, victim);
      const killAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await workerPid(port, victim, pid);
      const replacedMs = Date.now() - killAt;
      await untilMoreAcked(load, 150);
      // Failures of earlier rounds ended before this kill, so this window holds only this round's.
      const window = load.ops().filter((o) => o.endedAt >= killAt && o.outcome !== 'ok');
      const recovery = recoveryAfter(load, killAt);
      kills.push({
        victim, replacedMs, affected: recovery.affected, recoveryMs: recovery.recoveryMs,
        connectionErrors: window.filter((o) => o.outcome === 'conn-error').length,
        otherErrors: window.filter((o) => o.outcome !== 'conn-error').length,
      });
    }
    load.stop();
    await running;
    const killCheck = summary(await load.check());

    const drainLoad = new CartLoad({ url: app.url, clients, opsPerClient: 100_000, pauseMs: 15, maxMs: 120_000 });
    await drainLoad.prepare();
    const draining = drainLoad.run();
    await untilMoreAcked(drainLoad, 200);
    const exit = await app.stop('SIGTERM', 20_000);
    drainLoad.stop();
    await draining;
    const failed = drainLoad.ops().filter((o) => o.outcome !== 'ok');
    app = await start();
    const drain = {
      exitCode: exit.code, stopMs: exit.elapsedMs, acknowledged: drainLoad.count('ok'),
      connectionErrors: failed.filter((o) => o.outcome === 'conn-error').length,
      otherErrors: failed.filter((o) => o.outcome !== 'conn-error').length,
      check: summary(await drainLoad.check()),
      earlierLoadCheck: summary(await load.check()),
    };
    load.close();
    drainLoad.close();
    return { clients, kills, killCheck, drain };
  } finally {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
