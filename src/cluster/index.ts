/**
 * tether/cluster: one machine, N worker processes, sticky by session. The primary listens, reads the first
 * request head of each connection, picks a worker by its cookies (the routing cookie a worker sends beside
 * the session cookie, `routeCookieName`, else the session ID's hash, or in turn without either) and hands
 * the socket over; workers serve from the shared store, so stickiness saves cache misses and keeps a
 * session's writers in one process.
 * @module
 * @example
 * import { runCluster } from 'tether/cluster';
 * await runCluster({
 *   workers: 2, port: 3000, cookieName: 'sid',
 *   startWorker: async () => {
 *     const app = await buildApp(); // an http.Server that does not listen, and a close()
 *     // drain(): as the drain begins, end what it cannot wait for (WebSockets, with 1001).
 *     return { server: app.server, close: () => app.close(), drain: () => app.closeSockets() };
 *   },
 * });
 */
import cluster from 'node:cluster';
import { resolveClusterOptions } from './options.js';
import type { ClusterOptions, WorkerApp } from './options.js';
import { startPrimary } from './primary.js';
import type { ClusterPrimary } from './primary.js';
import { acceptHandoff } from './worker.js';
import type { WorkerHandle } from './worker.js';
import { serveClusterMetrics } from './metrics.js';
import { serveClusterLimits } from './limits.js';

export { acceptHandoff } from './worker.js';
export { clusterMetrics, serveClusterMetrics, shareWorkerMetrics, CLUSTER_METRICS_TIMEOUT_MS, PER_WORKER_METRICS } from './metrics.js';
export { sharedLimiter, serveClusterLimits, SlidingWindowLimiter, CLUSTER_LIMIT_TIMEOUT_MS } from './limits.js';
export type { SharedLimiter, SharedLimiterOptions } from './limits.js';
export type { WorkerHandle } from './worker.js';
export type { ClusterPrimary, WorkerInfo } from './primary.js';
export { CLUSTER_DEFAULTS, isNodeName, resolveClusterOptions, resolveWorkerOptions, stderrLog } from './options.js';
export type { ClusterOptions, WorkerOptions, WorkerApp, ClusterLog } from './options.js';
export { Router, routeCookieName, routingFromHead, sessionIdFromHead } from './routing.js';
export type { HeadRouting } from './routing.js';
export { haproxyConfig, HAPROXY_DEFAULTS } from './haproxy.js';
export type { HaproxyConfigOptions } from './haproxy.js';

export interface ClusterWorker {
  readonly role: 'worker';
  readonly app: WorkerApp;
  readonly handle: WorkerHandle;
}

/** True in a process started by runCluster's primary. */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env.TETHER_WORKER_SLOT !== undefined;
}

/**
 * Runs the primary (in the process you start) or a worker (when node:cluster re-runs the same script).
 * In the primary, SIGTERM and SIGINT drain and exit 0 (unless `handleSignals: false`); a second signal
 * kills the workers at once.
 */
export async function runCluster(options: ClusterOptions): Promise<ClusterPrimary | ClusterWorker> {
  const o = resolveClusterOptions(options);
  if (!cluster.isPrimary) {
    if (!o.startWorker) throw new Error('runCluster in a worker needs options.startWorker (with workerMain, that module calls acceptHandoff)');
    const app = await o.startWorker();
    const handle = acceptHandoff(app.server, { close: app.close, drain: app.drain, log: o.log });
    return { role: 'worker', app, handle };
  }
  serveClusterMetrics();
  serveClusterLimits();
  const primary = await startPrimary(o);
  o.log('info', 'cluster listening', { url: `http://${primary.host}:${primary.port}`, workers: o.workers, node: o.nodeName });
  if (o.handleSignals) {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        o.log('info', 'draining', { signal });
        void primary.stop().then(() => {
          o.log('info', 'stopped');
          process.exit(0);
        });
        return;
      }
      o.log('warn', 'second signal: killing the workers now', { signal });
      for (const w of primary.workers()) if (w.pid !== null) try { process.kill(w.pid, 'SIGKILL'); } catch { /* gone */ }
      process.exit(1);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return primary;
}
