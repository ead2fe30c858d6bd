/** Prometheus metrics: engine counters read at scrape time, store latency per call, cache figures when the store has stats(). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createTether, MemoryStore } from 'tether';
import type { SessionStore } from 'tether';
import { instrumentStore, registerTetherMetrics } from 'tether/observability';

const view = (cookie?: string, method = 'GET') => ({ method, header: (n: string) => (n === 'cookie' ? cookie : undefined) });

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  assert.ok(line, `${name} is exported`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('tether metrics', () => {
  it('metrics when sessions are created and regenerated then the counters and the store histogram say so', async () => {
    const registry = new Registry();
    const store = instrumentStore(new MemoryStore({ sweepIntervalMs: 0 }), registry);
    const tether = createTether({ store, secrets: ['m'.repeat(32)] });
    registerTetherMetrics(tether, registry);
    const s = await tether.open(view());
    s.set('x', 1);
    const [cookie] = await tether.commit(s);
    const again = await tether.open(view(cookie!.split(';')[0], 'POST'));
    again.regenerate();
    await tether.commit(again);
    const text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_sessions_created_total'), 1);
    assert.equal(metricValue(text, 'tether_sessions_regenerated_total'), 1);
    assert.equal(metricValue(text, 'tether_cas_conflicts_total'), 0);
    assert.equal(metricValue(text, 'tether_gate_waiting'), 0);
    assert.ok(metricValue(text, 'tether_store_duration_seconds_count{op="set",store="memory"}') >= 2);
    assert.doesNotMatch(text, /tether_cache_hits_total/, 'no cache figures from a store without stats()');
    assert.equal(store.name, 'memory', 'the wrapped store keeps its other members');
    await tether.close();
  });

  it('metrics when the store reports stats() then cache hits, misses and invalidations are exported', async () => {
    const registry = new Registry();
    const base = new MemoryStore({ sweepIntervalMs: 0 });
    const store = Object.assign(Object.create(base) as SessionStore, { stats: () => ({ hits: 7, misses: 2, invalidations: 1, bytes: 512 }) });
    registerTetherMetrics({ stats: () => createTether({ store: base, secrets: ['m'.repeat(32)] }).stats(), store }, registry);
    const text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_cache_hits_total'), 7);
    assert.equal(metricValue(text, 'tether_cache_misses_total'), 2);
    assert.equal(metricValue(text, 'tether_cache_invalidations_total'), 1);
    assert.equal(metricValue(text, 'tether_cache_bytes'), 512);
    await base.close();
  });
});
