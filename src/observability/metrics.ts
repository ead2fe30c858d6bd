/**
 * Prometheus metrics for an engine through prom-client: lifecycle counts, compare-and-set conflicts and
 * replays, store errors and latency, gate waiters, and cache figures when the store reports them.
 * Values are read from the engine at scrape time, so the request path pays nothing for them.
 * @module
 * @example
 * import { Registry } from 'prom-client';
 * import { registerTetherMetrics, instrumentStore } from 'tether/observability';
 * const registry = new Registry();
 * const tether = createTether({ store: instrumentStore(new SqliteStore({ path }), registry) });
 * registerTetherMetrics(tether, registry);
 * app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import diagnostics from 'node:diagnostics_channel';
import type { EngineStats } from '../core/engine.js';
import { FLOW_CHANNEL_NAMES } from './channels.js';
import type { FlowMessage } from './channels.js';
import type { SessionStore } from '../core/store.js';

/** What the metrics read from an engine: its counters and its store. */
export interface MetricsSource {
  stats(): EngineStats;
  readonly store: SessionStore;
  /** The engine's options: under `newSessions.maxActive` the cap and the engine's reckoning are exported too. */
  readonly options?: { readonly newSessions: { readonly maxActive: number } | null };
}

/** Figures a caching store (TieredStore) may report through an optional `stats()`. */
export interface CacheStats {
  hits?: number;
  misses?: number;
  invalidations?: number;
  evictions?: number;
  entries?: number;
  bytes?: number;
  /** hits / (hits + misses). */
  hitRatio?: number;
  /** Read fences sent to the shared store (TieredStore with consistency 'fenced'). */
  fences?: number;
}

export interface TetherMetricsOptions {
  /** Prefix of every metric name. @default 'tether_' */
  prefix?: string;
}

/** The engine's counters: its stats that are plain numbers. */
type EngineCount = { [K in keyof EngineStats]: EngineStats[K] extends number ? K : never }[keyof EngineStats];

const ENGINE_COUNTERS: ReadonlyArray<[EngineCount, string, string]> = [
  ['created', 'sessions_created_total', 'Sessions created (first stored).'],
  ['regenerated', 'sessions_regenerated_total', 'Sessions given a new ID (login, privilege change, renewal).'],
  ['renewed', 'sessions_renewed_total', 'Of those, IDs replaced by the renewal timeout.'],
  ['destroyed', 'sessions_destroyed_total', 'Sessions destroyed (logout, ended by the user or an admin, per-user limit).'],
  ['expired', 'sessions_expired_total', 'Sessions that timed out: found expired on load, or deleted by the store\'s sweep.'],
  ['swept', 'sessions_swept_total', 'Of those, sessions the store\'s sweep deleted in this process.'],
  ['conflicts', 'cas_conflicts_total', 'Session writes that lost a compare-and-set race.'],
  ['replays', 'cas_replays_total', 'Session updates re-applied on fresh data after a conflict.'],
  ['writes', 'store_writes_total', 'Session records written.'],
  ['touches', 'store_touches_total', 'Expiry-only refreshes of unchanged sessions.'],
  ['storeErrors', 'store_errors_total', 'Store calls that failed or timed out.'],
  ['anomalies', 'session_anomalies_total', 'Sessions presented by another browser than the one they were last seen in (User-Agent changed), or from another network under addressChange.'],
  ['rejectedCookies', 'cookies_rejected_total', 'Session cookies that were forged or named no session (ended, replaced by a login, or timed out longer ago than expiryGraceMs).'],
  ['gateWaits', 'gate_waits_total', 'Requests that waited at a per-session gate while another request of the same session held it.'],
  ['gateWaitSeconds', 'gate_wait_seconds_total', 'Seconds requests spent waiting at per-session gates; divided by gate_waits_total, the mean wait.'],
  ['refusedSessions', 'sessions_refused_total', 'New sessions refused under the engine\'s newSessions limits: a rate passed (429 RATE_LIMITED) or the store holding maxActive sessions (503 TOO_MANY_SESSIONS).'],
  ['forgedCookies', 'cookies_forged_total', 'Session cookies malformed or signed by no configured secret: a rise means ID guessing, or a secret dropped while its cookies were live.'],
];

const CACHE_COUNTERS: ReadonlyArray<[keyof CacheStats, string, string]> = [
  ['hits', 'cache_hits_total', 'Reads served by the local cache.'],
  ['misses', 'cache_misses_total', 'Reads that went to the shared store.'],
  ['invalidations', 'cache_invalidations_total', 'Local entries dropped because the shared store changed.'],
  ['evictions', 'cache_evictions_total', 'Local entries evicted by the size bound.'],
  ['fences', 'cache_fences_total', 'Read fences sent to the shared store; concurrent reads share one.'],
];

function storeStats(store: SessionStore): CacheStats | null {
  const s = store as SessionStore & { stats?: () => unknown };
  if (typeof s.stats !== 'function') return null;
  const v = s.stats();
  return typeof v === 'object' && v !== null ? v : null;
}

/** Counters reporting a cumulative value read at scrape time. */
function cumulative(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name, help, registers: [registry],
    collect() {
      const v = read();
      this.reset();
      if (v !== undefined && Number.isFinite(v) && v > 0) this.inc(v);
    },
  });
}

/** Registers the engine's metrics on `registry`. Call once per engine and registry. */
export function registerTetherMetrics(tether: MetricsSource, registry: Registry, options: TetherMetricsOptions = {}): void {
  const p = options.prefix ?? 'tether_';
  for (const [key, name, help] of ENGINE_COUNTERS) cumulative(registry, p + name, help, () => tether.stats()[key]);
  new Gauge({
    name: p + 'gate_waiting', help: 'Requests waiting their turn at a per-session gate in this process.', registers: [registry],
    collect() {
      this.set(tether.stats().gateWaiting);
    },
  });
  new Gauge({
    name: p + 'gate_holding', help: 'Requests holding a per-session gate (writers inside their session section) in this process.', registers: [registry],
    collect() {
      this.set(tether.stats().gateHolding);
    },
  });
  new Gauge({
    name: p + 'sockets', help: 'Sessions of open sockets (openSocket) this process watches for their end.', registers: [registry],
    collect() {
      this.set(tether.stats().sockets);
    },
  });
  const maxActive = tether.options?.newSessions?.maxActive ?? 0;
  if (maxActive > 0) {
    // Under the cluster, workers' series with the same labels are merged by each metric's aggregator
    // (a gauge's default: sum). Every worker reckons the same store's sessions under the same cap.
    new Gauge({
      name: p + 'sessions_active', registers: [registry], aggregator: 'max',
      help: 'Under newSessions.maxActive: the live sessions the store holds as this process reckons them (its last count plus the sessions it stored since); NaN before a count succeeded.',
      collect() {
        this.set(tether.stats().activeSessions ?? Number.NaN);
      },
    });
    new Gauge({
      name: p + 'sessions_active_max', help: 'newSessions.maxActive: past it, new sessions are refused 503 TOO_MANY_SESSIONS.', registers: [registry], aggregator: 'max',
      collect() {
        this.set(maxActive);
      },
    });
  }
  new Counter({
    name: p + 'socket_ends_total', help: 'Open sockets whose session ended, by reason (destroyed, expired, regenerated, gone).',
    labelNames: ['reason'], registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(tether.stats().socketEnds)) this.inc({ reason }, n);
    },
  });
  if (storeStats(tether.store) !== null) {
    for (const [key, name, help] of CACHE_COUNTERS) cumulative(registry, p + name, help, () => storeStats(tether.store)?.[key]);
    new Gauge({
      name: p + 'cache_bytes', help: 'Bytes held by the local cache.', registers: [registry],
      collect() {
        this.set(storeStats(tether.store)?.bytes ?? 0);
      },
    });
    new Gauge({
      name: p + 'cache_hit_ratio', help: 'Share of reads served by the local cache since start (hits / reads).', registers: [registry], aggregator: 'average',
      collect() {
        const s = storeStats(tether.store);
        const reads = (s?.hits ?? 0) + (s?.misses ?? 0);
        this.set(s?.hitRatio ?? (reads === 0 ? 0 : (s?.hits ?? 0) / reads));
      },
    });
  }
}

// readLegacy and destroyLegacy: a migration's calls into an express-session store (tether/express).
const TIMED = ['get', 'set', 'regenerate', 'touch', 'destroy', 'listByUser', 'destroyByUser', 'sweep', 'count', 'destroyAll', 'readLegacy', 'destroyLegacy'] as const;

/**
 * Wraps a store so each call's latency lands in `<prefix>store_duration_seconds{op,store}`. Other
 * members (close, subscribe, stats, name) pass through untouched.
 */
export function instrumentStore<S extends SessionStore>(store: S, registry: Registry, options: TetherMetricsOptions = {}): S {
  const histogram = new Histogram({
    name: (options.prefix ?? 'tether_') + 'store_duration_seconds',
    help: 'Latency of session store calls.',
    labelNames: ['op', 'store'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const timed = new Set<string>(TIMED);
  return new Proxy(store, {
    get(target, prop) {
      // Read on the target itself: a getter using #private fields (feedState) fails with the proxy as `this`.
      const value = Reflect.get(target, prop) as unknown;
      if (typeof prop !== 'string' || !timed.has(prop) || typeof value !== 'function') {
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      }
      return (...args: unknown[]) => {
        const end = histogram.startTimer({ op: prop, store: target.name });
        const result = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        return result.finally(() => end());
      };
    },
  });
}

/**
 * Counts every flow's events (`tether/flow`) on `registry`: steps stored per flow and step, runs
 * completed and runs found expired per flow, a checkout funnel. Subscribes to the flow channels of the
 * process, so flows on any engine count; call once per registry. Labels come from the flows' declared
 * names, so their number is bounded by the code. Returns a function that unsubscribes.
 * @example
 * registerFlowMetrics(registry);
 * // rate(tether_flow_steps_total{flow="checkout"}[1h]) by step: where users stop
 */
export function registerFlowMetrics(registry: Registry, options: TetherMetricsOptions = {}): () => void {
  const p = options.prefix ?? 'tether_';
  const steps = new Counter({ name: p + 'flow_steps_total', help: 'Flow steps whose input was stored, by flow and step.', labelNames: ['flow', 'step'], registers: [registry] });
  const completed = new Counter({ name: p + 'flow_completed_total', help: 'Flow runs ended by complete(), by flow.', labelNames: ['flow'], registers: [registry] });
  const expired = new Counter({ name: p + 'flow_expired_total', help: 'Flow runs found idle past idleTimeoutMs (once per run in this process), by flow.', labelNames: ['flow'], registers: [registry] });
  const listeners: Array<[string, (msg: unknown) => void]> = [
    [FLOW_CHANNEL_NAMES.step, (msg) => steps.inc({ flow: (msg as FlowMessage).flow, step: (msg as FlowMessage).step! })],
    [FLOW_CHANNEL_NAMES.completed, (msg) => completed.inc({ flow: (msg as FlowMessage).flow })],
    [FLOW_CHANNEL_NAMES.expired, (msg) => expired.inc({ flow: (msg as FlowMessage).flow })],
  ];
  for (const [name, fn] of listeners) diagnostics.subscribe(name, fn);
  return () => {
    for (const [name, fn] of listeners) diagnostics.unsubscribe(name, fn);
  };
}
