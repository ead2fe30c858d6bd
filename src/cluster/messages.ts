/**
 * The messages the primary and its workers exchange over the cluster IPC channel.
 * @module
 */

/** Primary → worker, with the socket as the send handle: the bytes the primary already read from it. */
export interface ConnectionMessage {
  type: 'tether:connection';
  /** base64 of every byte read from the socket before the handoff (the first request head, maybe more). */
  head: string;
}

/**
 * Primary → worker: `prepare` = report draining on the health path and close connections after each
 * response, but keep serving (a balancer is still noticing); `stop` = no more connections will come,
 * finish in-flight requests, close the app, exit.
 */
export interface DrainMessage {
  type: 'tether:drain';
  phase: 'prepare' | 'stop';
}

/** Worker → primary: the app is built and connections may be handed over. */
export interface ReadyMessage {
  type: 'tether:ready';
}

/** Worker → primary: this worker started draining on its own (SIGTERM to it); route elsewhere. */
export interface DrainingMessage {
  type: 'tether:draining';
}

/**
 * Primary → worker, answered at once with the same `n` (a `tether:pong`): a worker whose event loop
 * stops turning answers none, and is replaced once `hangTimeoutMs` passes without one.
 */
export interface PingMessage {
  type: 'tether:ping';
  n: number;
}

/** Worker → primary: the answer to a `tether:ping`. */
export interface PongMessage {
  type: 'tether:pong';
  n: number;
}

/** Worker → primary: send me every worker's metrics (src/cluster/metrics.ts). */
export interface MetricsRequestMessage {
  type: 'tether:metrics';
  id: number;
}

/** Primary → worker: the cluster's metrics as Prometheus text, or why they could not be collected. */
export interface MetricsReplyMessage {
  type: 'tether:metrics-reply';
  id: number;
  text?: string;
  error?: string;
}

/** Worker → primary: this worker's registries are shared (shareWorkerMetrics): ask it for them. */
export interface MetricsSharedMessage {
  type: 'tether:metrics-shared';
}

/**
 * Primary → worker and back, prom-client's own messages (its AggregatorRegistry answers them in a worker):
 * the worker's registries as `getMetricsAsJSON()` gives them.
 */
export interface PromMetricsRequest {
  type: 'prom-client:getMetricsReq';
  requestId: number;
}
export interface PromMetricsReply {
  type: 'prom-client:getMetricsRes';
  requestId: number;
  metrics?: unknown[];
  error?: string;
}

/** Worker → primary: count one event of `key` against the cluster-wide limiter `name` (src/cluster/limits.ts). */
export interface LimitRequestMessage {
  type: 'tether:limit';
  id: number;
  name: string;
  key: string;
  limit: number;
  windowMs: number;
  /** Ask whether an event would be allowed, without counting it. */
  peek?: boolean;
}

/** Primary → worker: whether that event was within the limit (and so counted). */
export interface LimitReplyMessage {
  type: 'tether:limit-reply';
  id: number;
  allowed: boolean;
}

export type PrimaryMessage = ConnectionMessage | DrainMessage | MetricsReplyMessage | LimitReplyMessage;
export type WorkerMessage = ReadyMessage | DrainingMessage | PongMessage | MetricsRequestMessage | MetricsSharedMessage | PromMetricsReply | LimitRequestMessage;

export function isMessage<T extends { type: string }>(msg: unknown, type: T['type']): msg is T {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === type;
}
