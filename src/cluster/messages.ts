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

export type PrimaryMessage = ConnectionMessage | DrainMessage;
export type WorkerMessage = ReadyMessage | DrainingMessage;

export function isMessage<T extends { type: string }>(msg: unknown, type: T['type']): msg is T {
  return typeof msg === 'object' && msg !== null && (msg as { type?: unknown }).type === type;
}
