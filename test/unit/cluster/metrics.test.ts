/** How a worker's metrics are merged by the primary: prom-client's default metrics per worker, the rest as their metrics declare. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PER_WORKER_METRICS, WORKER_LABEL, labelPerWorker } from '../../../src/cluster/metrics.js';

/** The lines of metric `name` (its samples, not HELP or TYPE) in Prometheus text. */
const samples = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));

/** A worker's registry: a start time as prom-client declares it (aggregator omit), a counter, a histogram, a prefixed default metric. */
function workerRegistry(startSeconds: number, created: number, extra: (r: Registry) => void = () => {}): Registry {
  const r = new Registry();
  new Gauge({ name: 'process_start_time_seconds', help: 'start', aggregator: 'omit', registers: [r], collect() { this.set(startSeconds); } });
  new Gauge({ name: 'app_process_resident_memory_bytes', help: 'rss under collectDefaultMetrics({ prefix: \'app_\' })', registers: [r], collect() { this.set(created * 1e6); } });
  new Counter({ name: 'tether_sessions_created_total', help: 'created', registers: [r] }).inc(created);
  new Histogram({ name: 'nodejs_gc_duration_seconds', help: 'gc', labelNames: ['kind'], buckets: [0.1], registers: [r] }).observe({ kind: 'minor' }, 0.05);
  extra(r);
  return r;
}

async function merged(workers: Array<[string, Registry]>): Promise<string> {
  const json = await Promise.all(workers.map(async ([name, r]) => labelPerWorker(await r.getMetricsAsJSON(), name)));
  return AggregatorRegistry.aggregate(json).metrics();
}

describe('cluster metrics merge', () => {
  it('PER_WORKER_METRICS when compared with what collectDefaultMetrics registers then names each of them and nothing else', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const registered = registry.getMetricsAsArray().map((m) => m.name).sort();
    assert.deepEqual([...PER_WORKER_METRICS].sort(), registered);
  });

  it('merge when two workers report then each start time is kept under its worker label and counters still sum', async () => {
    const text = await merged([['n:w1', workerRegistry(1_700_000_000, 2)], ['n:w2', workerRegistry(1_700_000_100, 3)]]);
    assert.deepEqual(samples(text, 'process_start_time_seconds'), [
      'process_start_time_seconds{worker="n:w1"} 1700000000',
      'process_start_time_seconds{worker="n:w2"} 1700000100',
    ]);
    assert.deepEqual(samples(text, 'app_process_resident_memory_bytes'), [
      'app_process_resident_memory_bytes{worker="n:w1"} 2000000',
      'app_process_resident_memory_bytes{worker="n:w2"} 3000000',
    ], 'with collectDefaultMetrics\'s prefix too');
    assert.deepEqual(samples(text, 'tether_sessions_created_total'), ['tether_sessions_created_total 5']);
    assert.deepEqual(samples(text, 'nodejs_gc_duration_seconds_count'), [
      'nodejs_gc_duration_seconds_count{kind="minor",worker="n:w1"} 1',
      'nodejs_gc_duration_seconds_count{kind="minor",worker="n:w2"} 1',
    ], 'a histogram\'s series too');
  });

  it('merge when the app already labels its series `worker` then that label is kept', async () => {
    const withOwnLabel = (name: string, start: number): Registry => {
      const r = workerRegistry(start, 1);
      r.setDefaultLabels({ [WORKER_LABEL]: name });
      return r;
    };
    const text = await merged([['n:w1', withOwnLabel('a', 10)], ['n:w2', withOwnLabel('b', 20)]]);
    assert.deepEqual(samples(text, 'process_start_time_seconds'), ['process_start_time_seconds{worker="a"} 10', 'process_start_time_seconds{worker="b"} 20']);
    assert.deepEqual(samples(text, 'tether_sessions_created_total'), ['tether_sessions_created_total{worker="a"} 1', 'tether_sessions_created_total{worker="b"} 1']);
  });
});
