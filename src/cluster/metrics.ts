/**
 * Prometheus metrics of the whole cluster from whichever worker is scraped. A scrape lands on one
 * worker (the primary hands connections over), so that worker asks the primary, which collects every
 * worker's registry through prom-client's AggregatorRegistry and answers with the text. Series with the
 * same labels are merged as their metric declares (counters sum). prom-client's default metrics describe
 * one process each, so every worker's are kept apart under a `worker` label (PER_WORKER_METRICS). To keep
 * the app's own series apart too, give each worker's registry a default label naming it (the shop uses `node`).
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
import type { MetricsReplyMessage, MetricsRequestMessage, MetricsSharedMessage, PromMetricsReply, PromMetricsRequest } from './messages.js';
import { answerWorker, askPrimary } from './ask.js';
import { workerName } from './worker.js';

/** How long a worker waits for the primary's answer (prom-client's own bound on the workers is 5 s). */
export const CLUSTER_METRICS_TIMEOUT_MS = 6_000;

/**
 * The metrics of prom-client's `collectDefaultMetrics()` (with or without its `prefix`). Each describes
 * one process: merged, a start time means nothing (prom-client omits it), memory and open files add up
 * to figures no process has, an average of p99 lags hides the worker that stalls, and a summed CPU
 * counter drops when a worker restarts (a counter reset, to Prometheus). So each worker's series are
 * kept, labelled `worker`.
 */
export const PER_WORKER_METRICS: readonly string[] = [
  'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total',
  'process_start_time_seconds', 'process_resident_memory_bytes', 'process_virtual_memory_bytes', 'process_heap_bytes',
  'process_open_fds', 'process_max_fds',
  'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds', 'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p90_seconds', 'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_handles', 'nodejs_active_handles_total',
  'nodejs_active_requests', 'nodejs_active_requests_total',
  'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes', 'nodejs_heap_space_size_used_bytes', 'nodejs_heap_space_size_available_bytes',
  'nodejs_version_info', 'nodejs_gc_duration_seconds',
];

/** The label naming the worker (`<node>:w<slot>`, as in the logs) on the series of PER_WORKER_METRICS. */
export const WORKER_LABEL = 'worker';

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/**
 * A worker's metrics as it hands them to the primary: those of PER_WORKER_METRICS labelled with the
 * worker (a series that already has a `worker` label keeps it) and merged by `first`, which passes
 * each worker's series through now that their labels differ.
 */
export function labelPerWorker(metrics: MetricJson[], worker: string): MetricJson[] {
  return metrics.map((m) => {
    if (!PER_WORKER_METRICS.some((name) => m.name.endsWith(name))) return m;
    const values = m.values.map((v) => (WORKER_LABEL in v.labels ? v : { ...v, labels: { ...v.labels, [WORKER_LABEL]: worker } }));
    return { ...m, aggregator: 'first', values };
  });
}

/** How long the primary waits for the workers' registries (prom-client's own bound). */
const COLLECT_TIMEOUT_MS = 5_000;

let serving = false;

/**
 * Primary: answers workers' requests for the cluster's metrics. Idempotent. It asks the workers that
 * have shared their registries (shareWorkerMetrics tells it so), in prom-client's own messages, and
 * merges their answers with prom-client's `aggregate`: a worker still starting (a replacement loading
 * the app) has nothing to answer yet, and asking it too held every scrape to the 5 s timeout.
 */
export function serveClusterMetrics(): void {
  if (serving || !cluster.isPrimary) return;
  serving = true;
  const shared = new WeakSet<Worker>();
  const pending = new Map<number, (reply: PromMetricsReply | null) => void>();
  let nextId = 0;
  const collect = async (): Promise<string> => {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && shared.has(w) && w.isConnected());
    const replies = await Promise.all(workers.map((worker) => new Promise<PromMetricsReply | null>((resolve) => {
      const requestId = ++nextId;
      const settle = (reply: PromMetricsReply | null): void => {
        clearTimeout(timer);
        pending.delete(requestId);
        worker.off('disconnect', gone);
        resolve(reply);
      };
      // A worker that exits meanwhile has no series any more: it is left out, as prom-client leaves it.
      const gone = (): void => settle(null);
      const timer = setTimeout(() => settle({ type: 'prom-client:getMetricsRes', requestId, error: 'Operation timed out.' }), COLLECT_TIMEOUT_MS);
      pending.set(requestId, settle);
      worker.once('disconnect', gone);
      const request: PromMetricsRequest = { type: 'prom-client:getMetricsReq', requestId };
      worker.send(request, (err: Error | null) => void err);
    })));
    const failed = replies.find((r) => r?.error !== undefined);
    if (failed) throw new Error(failed.error);
    const metrics = replies.flatMap((r) => (r?.metrics ?? []) as MetricJson[][]);
    return AggregatorRegistry.aggregate<PrometheusContentType>(metrics).metrics();
  };
  cluster.on('message', (worker: Worker, msg: unknown) => {
    if (isMessage<MetricsSharedMessage>(msg, 'tether:metrics-shared')) {
      shared.add(worker);
    } else if (isMessage<PromMetricsReply>(msg, 'prom-client:getMetricsRes')) {
      pending.get(msg.requestId)?.(msg);
    } else if (isMessage<MetricsRequestMessage>(msg, 'tether:metrics')) {
      const reply = (m: MetricsReplyMessage): void => answerWorker(worker, m);
      collect().then(
        (text: string) => reply({ type: 'tether:metrics-reply', id: msg.id, text }),
        (err: unknown) => reply({ type: 'tether:metrics-reply', id: msg.id, error: err instanceof Error ? err.message : String(err) }),
      );
    }
  });
}

/** Worker: the registries the primary collects from this worker. */
export function shareWorkerMetrics(...registries: Registry[]): void {
  // Constructing one installs prom-client's listener for the primary's requests in this worker.
  new AggregatorRegistry<PrometheusContentType>();
  const worker = workerName();
  // That listener reads getMetricsAsJSON() of each registry set here: a view of each that labels the
  // per-process series (prom-client accepts only a Registry, so the view inherits from the real one).
  AggregatorRegistry.setRegistries(registries.map((r) => Object.assign(Object.create(r) as Registry, {
    getMetricsAsJSON: async () => labelPerWorker(await r.getMetricsAsJSON(), worker),
  })));
  // From now on this worker answers: the primary may ask it.
  if (cluster.isWorker && process.send) {
    const shared: MetricsSharedMessage = { type: 'tether:metrics-shared' };
    process.send(shared, undefined, {}, () => { /* primary gone: nothing to ask */ });
  }
}

/** Worker: every worker's metrics, as Prometheus text, collected by the primary. */
export async function clusterMetrics(timeoutMs = CLUSTER_METRICS_TIMEOUT_MS): Promise<string> {
  const reply = await askPrimary<MetricsReplyMessage>('clusterMetrics()', { type: 'tether:metrics' }, 'tether:metrics-reply', timeoutMs);
  if (reply.error !== undefined) throw new Error(`cluster metrics: ${reply.error}`);
  return reply.text ?? '';
}
