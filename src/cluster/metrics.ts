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
import { answerWorker, askPrimary } from './ask.js';

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
    const reply = (m: MetricsReplyMessage): void => answerWorker(worker, m);
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

/** Worker: every worker's metrics, as Prometheus text, collected by the primary. */
export async function clusterMetrics(timeoutMs = CLUSTER_METRICS_TIMEOUT_MS): Promise<string> {
  const reply = await askPrimary<MetricsReplyMessage>('clusterMetrics()', { type: 'tether:metrics' }, 'tether:metrics-reply', timeoutMs);
  if (reply.error !== undefined) throw new Error(`cluster metrics: ${reply.error}`);
  return reply.text ?? '';
}
