/**
 * Prometheus metrics of the whole cluster from whichever worker is scraped. A scrape lands on one
 * worker (the primary hands connections over), so that worker asks the primary, which collects every
 * worker's registry through prom-client's AggregatorRegistry and answers with the text. Series keep
 * apart by their labels: give each worker's registry a default label naming it (the shop uses `node`).
 * @module
 * @example
 * // in the worker's app
 * shareWorkerMetrics(registry);
 * app.get('/metrics', async () => (isClusterWorker() ? clusterMetrics() : registry.metrics()));
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { PrometheusContentType, Registry } from 'prom-client';
import { isMessage } from './messages.js';
import type { MetricsReplyMessage, MetricsRequestMessage } from './messages.js';

/** How long a worker waits for the primary's answer (prom-client's own bound on the workers is 5 s). */
export const CLUSTER_METRICS_TIMEOUT_MS = 6_000;

let aggregator: AggregatorRegistry<PrometheusContentType> | undefined;

/** Primary: answers workers' requests for the cluster's metrics. Idempotent. */
export function serveClusterMetrics(): void {
  if (aggregator || !cluster.isPrimary) return;
  const agg = new AggregatorRegistry<PrometheusContentType>();
  aggregator = agg;
  cluster.on('message', (worker: Worker, msg: unknown) => {
    if (!isMessage<MetricsRequestMessage>(msg, 'tether:metrics')) return;
    const reply = (m: MetricsReplyMessage): void => {
      if (worker.isConnected()) worker.send(m, (err: Error | null) => void err);
    };
    agg.clusterMetrics().then(
      (text: string) => reply({ type: 'tether:metrics-reply', id: msg.id, text }),
      (err: unknown) => reply({ type: 'tether:metrics-reply', id: msg.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/** Worker: the registries the primary collects from this worker. */
export function shareWorkerMetrics(...registries: Registry[]): void {
  // Constructing one installs prom-client's listener for the primary's requests in this worker.
  new AggregatorRegistry<PrometheusContentType>();
  AggregatorRegistry.setRegistries(registries);
}

let nextId = 0;
const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
let listening = false;

/** Worker: every worker's metrics, as Prometheus text, collected by the primary. */
export function clusterMetrics(timeoutMs = CLUSTER_METRICS_TIMEOUT_MS): Promise<string> {
  const send = process.send?.bind(process);
  if (!cluster.isWorker || !send) return Promise.reject(new Error('clusterMetrics() runs in a cluster worker'));
  if (!listening) {
    listening = true;
    process.on('message', (msg: unknown) => {
      if (!isMessage<MetricsReplyMessage>(msg, 'tether:metrics-reply')) return;
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error !== undefined) p.reject(new Error(`cluster metrics: ${msg.error}`));
      else p.resolve(msg.text ?? '');
    });
  }
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`cluster metrics: the primary did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(id, { resolve, reject, timer });
    send({ type: 'tether:metrics', id } satisfies MetricsRequestMessage, undefined, {}, (err: Error | null) => {
      if (!err) return;
      pending.delete(id);
      clearTimeout(timer);
      reject(err);
    });
  });
}
