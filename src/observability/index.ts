/**
 * tether/observability: the diagnostics channel names Tether publishes on, and Prometheus metrics
 * (prom-client) for an engine, its store and its flows.
 * @module
 */
export { CHANNEL_NAMES, FLOW_CHANNEL_NAMES } from './channels.js';
export type { LifecycleEvent, LifecycleMessage, FlowEvent, FlowMessage } from './channels.js';
export { registerTetherMetrics, registerFlowMetrics, instrumentStore } from './metrics.js';
export type { MetricsSource, CacheStats, TetherMetricsOptions } from './metrics.js';
