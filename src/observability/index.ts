/**
 * tether/observability: the diagnostics channel names Tether publishes on (lifecycle events, and the
 * tracing channels of each request's open, commit and store calls), and Prometheus metrics
 * (prom-client) for an engine, its store and its flows.
 * @module
 */
export { CHANNEL_NAMES, FLOW_CHANNEL_NAMES } from './channels.js';
export type { LifecycleEvent, LifecycleMessage, FlowEvent, FlowMessage } from './channels.js';
export { TRACING_CHANNEL_NAMES } from './tracing.js';
export type { OpenTraceContext, CommitTraceContext, StoreTraceContext } from './tracing.js';
export { registerTetherMetrics, registerFlowMetrics, instrumentStore } from './metrics.js';
export type { MetricsSource, CacheStats, TetherMetricsOptions } from './metrics.js';
