/** Prometheus metrics: engine counters read at scrape time, store latency per call, cache figures when the store has stats(); docs/metrics.md lists them all. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AggregatorRegistry, Registry } from 'prom-client';
import { createTether, MemoryStore } from 'tether';
import type { SessionStore } from 'tether';
import { defineFlow } from 'tether/flow';
import { ManualClock } from 'tether/testing';
import { instrumentStore, registerFlowMetrics, registerTetherMetrics } from 'tether/observability';
import { SqliteStore } from 'tether/sqlite';
import { TieredStore } from 'tether/tiered';
import { tempSqliteFile } from '../../helpers/sqlite.js';
import { SECRET_A } from '../support.js';

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
    const tether = createTether({ store, secrets: [SECRET_A] });
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
    assert.equal(metricValue(text, 'tether_gate_holding'), 0);
    assert.equal(metricValue(text, 'tether_store_duration_seconds_count{op="set",store="memory"}'), 1, 'the create');
    assert.equal(metricValue(text, 'tether_store_duration_seconds_count{op="regenerate",store="memory"}'), 1, 'both writes of the regeneration');
    assert.doesNotMatch(text, /tether_cache_hits_total/, 'no cache figures from a store without stats()');
    assert.equal(store.name, 'memory', 'the wrapped store keeps its other members');
    await tether.close();
  });

  it('metrics under newSessions.maxActive then tether_sessions_active is the engine\'s reckoning and tether_sessions_active_max the cap; without the cap neither is exported', async () => {
    const registry = new Registry();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A], newSessions: { maxActive: 50 } });
    registerTetherMetrics(tether, registry);
    for (let i = 0; i < 3; i++) {
      const s = await tether.open(view());
      s.set('x', i);
      await tether.commit(s);
    }
    const text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_sessions_active'), 3);
    assert.equal(metricValue(text, 'tether_sessions_active_max'), 50);
    const plain = new Registry();
    const uncapped = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A] });
    registerTetherMetrics(uncapped, plain);
    assert.doesNotMatch(await plain.metrics(), /tether_sessions_active/);
    await tether.close();
    await uncapped.close();
  });

  it('metrics when sockets follow sessions then tether_sockets counts those watched, until closed or ended, and tether_socket_ends_total the ended ones by reason', async () => {
    const registry = new Registry();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A] });
    registerTetherMetrics(tether, registry);
    const s = await tether.open(view());
    s.set('x', 1);
    const cookie = (await tether.commit(s))[0]!.split(';')[0]!;
    const sockets = await Promise.all([1, 2, 3].map(() => tether.openSocket(view(cookie), { checkIntervalMs: 0 })));
    await tether.openSocket(view(), { checkIntervalMs: 0 });
    assert.equal(metricValue(await registry.metrics(), 'tether_sockets'), 3, 'the one without a session is not watched');
    sockets[0]!.close();
    assert.equal(metricValue(await registry.metrics(), 'tether_sockets'), 2);
    const end = await tether.open(view(cookie, 'POST'));
    end.destroy();
    await tether.commit(end);
    const text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_sockets'), 0, 'the logout ended the others');
    assert.equal(metricValue(text, 'tether_socket_ends_total{reason="destroyed"}'), 2, 'not the one closed first');
    assert.equal(metricValue(text, 'tether_socket_ends_total{reason="expired"}'), 0);
    await tether.close();
  });

  it('metrics when writers hold their sessions and cookies are forged or name no session then the gauges and counters tell them apart', async () => {
    const registry = new Registry();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A] });
    registerTetherMetrics(tether, registry);
    const cookies: string[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await tether.open(view());
      s.set('x', i);
      cookies.push((await tether.commit(s))[0]!.split(';')[0]!);
    }
    // Two writers of two sessions hold their gates; a third request of the first session waits.
    const holders = await Promise.all(cookies.map((c) => tether.open(view(c, 'POST'))));
    const waiter = tether.open(view(cookies[0], 'POST'));
    let text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_gate_holding'), 2);
    assert.equal(metricValue(text, 'tether_gate_waiting'), 1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    for (const h of holders) tether.abandon(h);
    tether.abandon(await waiter);
    text = await registry.metrics();
    assert.deepEqual([metricValue(text, 'tether_gate_holding'), metricValue(text, 'tether_gate_waiting')], [0, 0]);
    assert.equal(metricValue(text, 'tether_gate_waits_total'), 1, 'one request waited');
    const waited = metricValue(text, 'tether_gate_wait_seconds_total');
    assert.ok(waited >= 0.05 && waited < 5, `for as long as the holder kept its gate (${waited} s)`);
    // One forged cookie and one signed cookie whose session was destroyed.
    const ended = await tether.open(view(cookies[1], 'POST'));
    ended.destroy();
    await tether.commit(ended);
    for (const c of [`sid=${'a'.repeat(43)}.${'b'.repeat(43)}`, cookies[1]!]) tether.abandon(await tether.open(view(c)));
    text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_cookies_rejected_total'), 2);
    assert.equal(metricValue(text, 'tether_cookies_forged_total'), 1);
    await tether.close();
  });

  it('metrics when the instrumented store\'s sweep deletes timed-out sessions then they count as expired and as swept', async () => {
    const registry = new Registry();
    const file = await tempSqliteFile();
    let now = Date.now();
    const clock = { now: () => now };
    const store = instrumentStore(new SqliteStore({ path: file.path, clock, sweepIntervalMs: 0 }), registry);
    const tether = createTether({ store, clock, secrets: [SECRET_A], idleTimeoutMs: 60_000, expiryGraceMs: 0 });
    registerTetherMetrics(tether, registry);
    try {
      for (let i = 0; i < 2; i++) {
        const s = await tether.open(view());
        s.set('x', i);
        await tether.commit(s);
      }
      now += 60_001;
      assert.equal(await store.sweep(), 2);
      const text = await registry.metrics();
      assert.equal(metricValue(text, 'tether_sessions_expired_total'), 2);
      assert.equal(metricValue(text, 'tether_sessions_swept_total'), 2);
      assert.equal(metricValue(text, 'tether_store_duration_seconds_count{op="sweep",store="sqlite"}'), 1);
    } finally {
      await tether.close();
      await file.remove();
    }
  });

  it('metrics when a session is regenerated over SqliteStore then the store histogram counts one regenerate call and no set', async () => {
    const registry = new Registry();
    const file = await tempSqliteFile();
    const store = instrumentStore(new SqliteStore({ path: file.path, sweepIntervalMs: 0 }), registry);
    const tether = createTether({ store, secrets: [SECRET_A] });
    try {
      const s = await tether.open(view());
      s.set('x', 1);
      const [cookie] = await tether.commit(s);
      const count = async (op: string): Promise<number> => {
        const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`tether_store_duration_seconds_count{op="${op}",store="sqlite"}`));
        return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
      };
      const setsBefore = await count('set');
      const again = await tether.open(view(cookie!.split(';')[0], 'POST'));
      again.regenerate();
      const [renewed] = await tether.commit(again);
      assert.equal(await count('regenerate'), 1);
      assert.equal(await count('set'), setsBefore, 'the old and the new record in that one call');
      const next = await tether.open(view(renewed!.split(';')[0]));
      assert.equal(next.get('x'), 1, 'the new ID carries the data');
      await tether.commit(next);
    } finally {
      await tether.close();
      await file.remove();
    }
  });

  it('metrics when the store reports stats() then cache hits, misses and invalidations are exported', async () => {
    const registry = new Registry();
    const base = new MemoryStore({ sweepIntervalMs: 0 });
    const store = Object.assign(Object.create(base) as SessionStore, { stats: () => ({ hits: 7, misses: 2, invalidations: 1, bytes: 512 }) });
    registerTetherMetrics({ stats: () => createTether({ store: base, secrets: [SECRET_A] }).stats(), store }, registry);
    const text = await registry.metrics();
    assert.equal(metricValue(text, 'tether_cache_hits_total'), 7);
    assert.equal(metricValue(text, 'tether_cache_misses_total'), 2);
    assert.equal(metricValue(text, 'tether_cache_invalidations_total'), 1);
    assert.equal(metricValue(text, 'tether_cache_bytes'), 512);
    await base.close();
  });

  it('metrics of several workers when merged as the cluster merges them then the reckoning of live sessions is the largest, the cap is the cap and the hit ratio stays a ratio', async () => {
    const base = new MemoryStore({ sweepIntervalMs: 0 });
    const workers = [];
    const reckoned: number[] = [];
    for (const [made, hits, misses] of [[3, 9, 1], [2, 1, 1]] as const) {
      const registry = new Registry();
      const store = Object.assign(Object.create(base) as SessionStore, { stats: () => ({ hits, misses, hitRatio: hits / (hits + misses) }) });
      const tether = createTether({ store: base, secrets: [SECRET_A], newSessions: { maxActive: 50 } });
      for (let i = 0; i < made; i++) {
        const s = await tether.open(view());
        s.set('x', i);
        await tether.commit(s);
      }
      registerTetherMetrics({ stats: () => tether.stats(), store, options: tether.options }, registry);
      reckoned.push(tether.stats().activeSessions!);
      workers.push(await registry.getMetricsAsJSON());
    }
    const text = await AggregatorRegistry.aggregate(workers).metrics();
    assert.equal(metricValue(text, 'tether_sessions_created_total'), 5, 'counters add up');
    assert.equal(metricValue(text, 'tether_cache_hits_total'), 10);
    assert.equal(metricValue(text, 'tether_sessions_active_max'), 50, 'one cap, not one per worker');
    assert.deepEqual(reckoned, [3, 5], 'the second counted the first\'s 3 when it started');
    assert.equal(metricValue(text, 'tether_sessions_active'), 5, 'each reckons the same store: the largest reckoning, not their sum');
    assert.equal(metricValue(text, 'tether_cache_hit_ratio'), (0.9 + 0.5) / 2, 'the mean of the workers\' ratios');
    await base.close();
  });

  it('metrics when the store is a TieredStore over an instrumented SqliteStore then hits, fences and the hit ratio are exported', async () => {
    const registry = new Registry();
    const file = await tempSqliteFile();
    const shared = instrumentStore(new SqliteStore({ path: file.path, sweepIntervalMs: 0 }), registry);
    assert.equal(shared.synchronous, 'NORMAL', 'a getter reading #private fields works through the wrapper');
    const tier = new TieredStore({ shared });
    assert.equal(tier.consistency, 'fenced', 'the wrapped store keeps its fence()');
    const tether = createTether({ store: tier, secrets: [SECRET_A] });
    try {
      registerTetherMetrics(tether, registry);
      const s = await tether.open(view());
      s.set('x', 1);
      const [cookie] = await tether.commit(s);
      for (let i = 0; i < 3; i++) await tether.open(view(cookie!.split(';')[0]));
      const text = await registry.metrics();
      const { hits, misses, fences } = tier.stats();
      assert.ok(hits >= 3 && fences >= 3, `hits ${hits}, fences ${fences}`);
      assert.equal(metricValue(text, 'tether_cache_hits_total'), hits);
      assert.equal(metricValue(text, 'tether_cache_misses_total'), misses);
      assert.equal(metricValue(text, 'tether_cache_fences_total'), fences);
      assert.equal(metricValue(text, 'tether_cache_hit_ratio'), hits / (hits + misses));
      assert.ok(metricValue(text, 'tether_store_duration_seconds_count{op="set",store="sqlite"}') >= 1);
    } finally {
      await tether.close();
      await file.remove();
    }
  });

  it('flow metrics when a checkout run goes step, step, back, step, complete and another run expires then the funnel counts them per flow and step', async () => {
    const registry = new Registry();
    const unsubscribe = registerFlowMetrics(registry);
    const clock = new ManualClock();
    const tether = createTether({ store: new MemoryStore({ sweepIntervalMs: 0 }), secrets: [SECRET_A], clock });
    const take = (input: unknown) => input;
    const run = defineFlow({ name: 'checkout', idleTimeoutMs: 1000, steps: [{ name: 'shipping', parse: take }, { name: 'payment', parse: take }, { name: 'review' }] }).using(tether.users);
    try {
      await run.submit('u1', 'shipping', {});
      await run.submit('u1', 'payment', {});
      await run.back('u1');
      await run.submit('u1', 'payment', {});
      await Promise.all([run.complete('u1', () => 'a'), run.complete('u1', () => 'b')]);
      await run.submit('u2', 'shipping', {});
      clock.advance(1000);
      await run.view('u2');
      const text = await registry.metrics();
      assert.equal(metricValue(text, 'tether_flow_steps_total{flow="checkout",step="shipping"}'), 2);
      assert.equal(metricValue(text, 'tether_flow_steps_total{flow="checkout",step="payment"}'), 2, 'posted again after back');
      assert.equal(metricValue(text, 'tether_flow_completed_total{flow="checkout"}'), 1, 'one of two racing completions ended the run');
      assert.equal(metricValue(text, 'tether_flow_expired_total{flow="checkout"}'), 1);
      assert.doesNotMatch(text, /u1|u2/, 'no user in a label');
    } finally {
      unsubscribe();
      await tether.close();
    }
  });
});

describe('docs/metrics.md', () => {
  it('metrics table when compared with what registerTetherMetrics, registerFlowMetrics and instrumentStore register then lists each once, with its type and labels, and nothing else', async () => {
    const rows = [...readFileSync('docs/metrics.md', 'utf8').matchAll(/^\| `(tether_\w+)` \| (\w+) \| (.+?) \| (.+) \|$/gm)]
      .map((m) => ({ name: m[1]!, type: m[2]!, labels: m[3] === '—' ? [] : [...m[3]!.matchAll(/`(\w+)`/g)].map((l) => l[1]!), meaning: m[4]! }));
    const names = rows.map((r) => r.name);
    assert.equal(new Set(names).size, names.length, 'a metric listed twice');
    // Every metric there is: an instrumented store that reports cache figures, an engine with the cap.
    const registry = new Registry();
    const base = new MemoryStore({ sweepIntervalMs: 0 });
    const store = Object.assign(Object.create(instrumentStore(base, registry)) as SessionStore, { stats: () => ({ hits: 1, misses: 1 }) });
    const tether = createTether({ store: base, secrets: [SECRET_A], newSessions: { maxActive: 10 } });
    registerTetherMetrics({ stats: () => tether.stats(), store, options: tether.options }, registry);
    const unsubscribe = registerFlowMetrics(registry);
    const exported = (await registry.getMetricsAsJSON()).map((m) => ({
      name: m.name, type: String(m.type), labels: [...(registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames].sort(),
    }));
    assert.deepEqual(exported.map((m) => m.name).filter((n) => !names.includes(n)), [], 'metrics missing from docs/metrics.md');
    assert.deepEqual(names.filter((n) => !exported.some((m) => m.name === n)), [], 'documented metrics not exported');
    for (const m of exported) {
      const row = rows.find((r) => r.name === m.name)!;
      assert.equal(row.type, m.type, `${m.name}: documented type`);
      assert.deepEqual([...row.labels].sort(), m.labels, `${m.name}: documented labels`);
      assert.ok(row.meaning.length > 20, `${m.name} needs a meaning`);
    }
    unsubscribe();
    await tether.close();
  });
});
