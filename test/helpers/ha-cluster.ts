/**
 * The many-machines setup on one machine, for the HAProxy integration test and bench/ha.ts: a real
 * redis-server (sessions), a real PostgreSQL (the shop's data), N shop nodes (`apps/shop/main.ts`, each its
 * own primary and workers on a loopback port) and HAProxy configured by `tether haproxy-config`.
 * @module
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startApp, REPO_ROOT } from './node-process.js';
import type { AppProcess, Exit } from './node-process.js';
import { startHaproxy } from './haproxy.js';
import type { Haproxy } from './haproxy.js';
import { startRedis, freePort } from './redis.js';
import type { RedisServer } from './redis.js';
import { startPostgres } from './postgres.js';
import type { PostgresServer } from './postgres.js';
import { removeTempDir, tempDir } from './exit.js';
import { childPids } from './procfs.js';

export { childPids };

export interface HaClusterOptions {
  nodes?: number;
  /** Workers per node. @default 1 */
  workersPerNode?: number;
  /** Health check timings handed to `tether haproxy-config`. @default 1000 / 250 / 3 */
  checkInterMs?: number;
  checkFastInterMs?: number;
  fall?: number;
  /** Environment for every node, over the defaults (which lift the shop's rate limits out of the way). */
  env?: Record<string, string>;
}

export interface HaNode {
  readonly name: string;
  readonly port: number;
  readonly dataDir: string;
  app: AppProcess | null;
  /** The signing secrets it runs with (TETHER_SECRET). @default HA_SECRET */
  secret: string;
}

export interface HaCluster {
  readonly haproxy: Haproxy;
  readonly redis: RedisServer;
  readonly pg: PostgresServer;
  readonly nodes: readonly HaNode[];
  /** inter + (fall - 1) * fastinter + 500 ms: how long a draining node keeps serving (docs/deploy.md). */
  readonly drainDelayMs: number;
  /** Starts the node, with `secret` (TETHER_SECRET, kept for its later starts) when given. */
  startNode(node: HaNode, secret?: string): Promise<void>;
  /** SIGKILL to the node's primary and its workers at once; resolves when the primary is gone. */
  killNode(node: HaNode): Promise<void>;
  /** SIGTERM to the node's primary (drain); resolves with its exit. */
  stopNode(node: HaNode): Promise<Exit>;
  /** Polls HAProxy's stats until `node` is in a state `want` accepts, within `timeoutMs`. */
  waitState(node: HaNode, want: (state: string) => boolean, timeoutMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

export const HA_SECRET = 'ha-cluster-secret-ha-cluster-secret-0123456789';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startHaCluster(options: HaClusterOptions = {}): Promise<HaCluster> {
  const count = options.nodes ?? 3;
  const inter = options.checkInterMs ?? 1_000;
  const fastinter = options.checkFastInterMs ?? 250;
  const fall = options.fall ?? 3;
  const drainDelayMs = inter + (fall - 1) * fastinter + 500;
  const redis = await startRedis();
  const pg = await startPostgres({ fast: true });
  const nodes: HaNode[] = [];
  for (let i = 1; i <= count; i++) {
    nodes.push({ name: `node${i}`, port: await freePort(), dataDir: await tempDir(`tether-ha-node${i}-`), app: null, secret: HA_SECRET });
  }
  const startNode = async (n: HaNode, secret?: string): Promise<void> => {
    if (secret !== undefined) n.secret = secret;
    n.app = await startApp({
      script: 'apps/shop/main.ts', port: n.port, readyNodes: options.workersPerNode ?? 1, readyTimeoutMs: 90_000,
      env: {
        TETHER_WORKERS: String(options.workersPerNode ?? 1), TETHER_NODE_NAME: n.name, TETHER_DATA_DIR: n.dataDir,
        TETHER_SECRET: n.secret, TETHER_STORE: redis.url, SHOP_DATABASE_URL: pg.url, SHOP_ADMIN_PASSWORD: 'admin-password-for-tests',
        SHOP_NEW_SESSIONS_PER_MINUTE: '100000', SHOP_REJECTED_COOKIES_PER_MINUTE: '100000', SHOP_PASSWORD_CHECKS_PER_MINUTE: '100000', TETHER_DRAIN_DELAY_MS: String(drainDelayMs),
        ...options.env,
      },
    });
  };
  // One at a time: the first start creates the shop's schema in PostgreSQL.
  for (const n of nodes) await startNode(n);
  const port = await freePort();
  const statsPort = await freePort();
  const config = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/tether.js'), 'haproxy-config',
    '--listen', `127.0.0.1:${port}`, '--nodes', nodes.map((n) => `127.0.0.1:${n.port}`).join(','), '--stats', `127.0.0.1:${statsPort}`,
    '--check-inter', `${inter}ms`, '--check-fastinter', `${fastinter}ms`, '--fall', String(fall)], { encoding: 'utf8' });
  const haproxy = await startHaproxy({ config, port, statsPort });

  const waitState = async (n: HaNode, want: (s: string) => boolean, timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = (await haproxy.serverStates())[n.name] ?? 'absent';
      if (want(last)) return;
      await sleep(50);
    }
    throw new Error(`haproxy server ${n.name} is ${last}`);
  };
  for (const n of nodes) await waitState(n, (s) => s === 'UP');

  return {
    haproxy, redis, pg, nodes, drainDelayMs, startNode, waitState,
    async killNode(n) {
      const app = n.app!;
      const workers = childPids(app.pid);
      process.kill(app.pid, 'SIGKILL');
      for (const pid of workers) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await app.exited;
    },
    stopNode: (n) => n.app!.stop('SIGTERM', 20_000),
    async dispose() {
      await haproxy.stop();
      await Promise.all(nodes.map(async (n) => { await n.app?.stop(); }));
      await Promise.all(nodes.map((n) => removeTempDir(n.dataDir)));
      await redis.dispose();
      await pg.dispose();
    },
  };
}

