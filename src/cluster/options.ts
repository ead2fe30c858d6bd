/**
 * Options of the one-machine cluster (`runCluster`) and of its worker side (`acceptHandoff`): checked once,
 * defaults in `CLUSTER_DEFAULTS`, resolved into frozen objects.
 * @module
 */
import os from 'node:os';
import type { Server } from 'node:http';
import { OptionsInvalidError } from '../core/errors.js';
import { checkOptions } from '../core/options-check.js';
import { HTTP_TOKEN } from '../core/options.js';

/** What a worker runs: an HTTP server that is not listening (connections arrive from the primary) and how to close the app. */
export interface WorkerApp {
  server: Server;
  /** Closes what the app holds (stores, pools) once the last request finished. */
  close?: () => Promise<void> | void;
  /** See WorkerOptions.drain. */
  drain?: () => Promise<void> | void;
}

export type ClusterLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface ClusterOptions {
  /** Worker processes. */
  workers: number;
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  /**
   * Builds the app inside each worker (the primary's own script is re-run in the worker, so this function is
   * called there). Give this or `workerMain`.
   */
  startWorker?: () => Promise<WorkerApp> | WorkerApp;
  /** A module workers run instead of the primary's script; it must call `acceptHandoff(server, …)` itself. */
  workerMain?: string;
  /** Name of the session cookie routed on. @default 'sid' */
  cookieName?: string;
  /**
   * Keys the routing hash, so which worker serves which session cannot be predicted from outside.
   * Signatures are never checked in the primary: routing is an optimisation, the worker verifies.
   */
  secretsForRouting?: readonly string[];
  /** Workers are named `<nodeName>:w<n>` (env TETHER_NODE_NAME). @default env TETHER_NODE_NAME, else the host name */
  nodeName?: string;
  /** Bytes of the first request read before routing without waiting for more. @default 16384 */
  maxHeadBytes?: number;
  /** How long the primary waits for the first request head before handing the connection over as is. @default 5000 */
  headTimeoutMs?: number;
  /** After SIGTERM, how long the primary keeps accepting while health checks report draining (behind HAProxy). @default 0 */
  drainDelayMs?: number;
  /**
   * From SIGTERM to exit, at most: workers still running then are killed. The drain delay counts in it,
   * so requests in flight when the workers stop accepting have `shutdownTimeoutMs − drainDelayMs` at
   * most, whatever the workers' `drainTimeoutMs`: raise it with `drainDelayMs`. @default 9000
   */
  shutdownTimeoutMs?: number;
  /**
   * A ready worker that answers none of the primary's pings (sent four times per period) for this long
   * is taken for hung (an endless loop, a synchronous call that never returns: its process lives but
   * serves nobody, and its share of connections wait) and killed, and a replacement started. 0: never.
   * @default 30000
   */
  hangTimeoutMs?: number;
  /** Replacements of dead workers allowed per `restartWindowMs`; more wait until the window frees. @default 10 */
  maxRestarts?: number;
  /** @default 60000 */
  restartWindowMs?: number;
  /** Connections waiting for a worker (none ready) at most; more are closed. @default 1024 */
  maxPendingConnections?: number;
  /** Handle SIGTERM and SIGINT in the primary (drain, then exit 0). @default true */
  handleSignals?: boolean;
  /** Extra environment for the workers. */
  env?: Record<string, string>;
  log?: ClusterLog;
}

export interface WorkerOptions {
  /** Path answered with 503 while the worker drains, so health checks stop routing to it. @default '/healthz' */
  healthPath?: string;
  /**
   * How long in-flight requests may take once draining stopped accepting. Under `runCluster` the
   * primary's `shutdownTimeoutMs`, counted from SIGTERM, ends them first when it comes sooner. @default 8000
   */
  drainTimeoutMs?: number;
  /** Closes the app after the last connection (stores). */
  close?: () => Promise<void> | void;
  /**
   * Called as the drain begins, once the worker no longer takes connections: ends what the drain
   * cannot wait for, such as WebSockets (close them with 1001 Going Away), so that their connections
   * end within `drainTimeoutMs` instead of holding the drain to its deadline and being cut.
   */
  drain?: () => Promise<void> | void;
  /** Exit the process after draining. @default true */
  exitAfterDrain?: boolean;
  log?: ClusterLog;
}

export const CLUSTER_DEFAULTS = {
  host: '127.0.0.1',
  cookieName: 'sid',
  maxHeadBytes: 16 * 1024,
  headTimeoutMs: 5_000,
  drainDelayMs: 0,
  shutdownTimeoutMs: 9_000,
  hangTimeoutMs: 30_000,
  maxRestarts: 10,
  restartWindowMs: 60_000,
  maxPendingConnections: 1024,
  healthPath: '/healthz',
  drainTimeoutMs: 8_000,
} as const;

export type ResolvedClusterOptions = Readonly<Required<Omit<ClusterOptions, 'startWorker' | 'workerMain' | 'secretsForRouting' | 'env'>>> & {
  readonly startWorker: ClusterOptions['startWorker'];
  readonly workerMain: string | undefined;
  readonly secretsForRouting: readonly string[];
  readonly env: Readonly<Record<string, string>>;
};

/** One JSON line per event on stderr; never carries cookies or session IDs. */
export const stderrLog: ClusterLog = (level, message, fields = {}) => {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), pid: process.pid, msg: message, ...fields })}\n`);
};

const PORT = (v: unknown): string | null => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535 ? null : 'an integer port 0–65535');
/** A header value any client reads alike: printable ASCII, spaces inside only. */
const NODE_NAME = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Whether `name` can name a node: it goes out in the X-Tether-Node header of every answer. */
export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

export function resolveClusterOptions(input: ClusterOptions): ResolvedClusterOptions {
  checkOptions('runCluster', input, {
    workers: 'positiveInteger', port: PORT, host: 'nonEmptyString', startWorker: 'function', workerMain: 'nonEmptyString',
    cookieName: 'nonEmptyString', secretsForRouting: 'stringArray', nodeName: 'nonEmptyString', maxHeadBytes: 'positiveInteger',
    headTimeoutMs: 'timerMs', drainDelayMs: 'timerMsOrZero', shutdownTimeoutMs: 'timerMs', hangTimeoutMs: 'timerMsOrZero',
    maxRestarts: 'positiveInteger', restartWindowMs: 'timerMs', maxPendingConnections: 'positiveInteger',
    handleSignals: 'boolean', env: 'object', log: 'function',
  });
  if (input === undefined || input.workers === undefined) throw new OptionsInvalidError('runCluster options.workers is required (a positive integer)');
  if (input.port === undefined) throw new OptionsInvalidError('runCluster options.port is required');
  if ((input.startWorker === undefined) === (input.workerMain === undefined)) {
    throw new OptionsInvalidError('runCluster needs exactly one of options.startWorker and options.workerMain');
  }
  if (input.nodeName !== undefined && !isNodeName(input.nodeName)) {
    throw new OptionsInvalidError('runCluster options.nodeName goes out in the X-Tether-Node header: printable ASCII only, no leading or trailing space');
  }
  const cookieName = input.cookieName ?? CLUSTER_DEFAULTS.cookieName;
  if (!HTTP_TOKEN.test(cookieName)) throw new OptionsInvalidError('runCluster options.cookieName must be an RFC 6265 token');
  const d = CLUSTER_DEFAULTS;
  const drainDelayMs = input.drainDelayMs ?? d.drainDelayMs;
  const shutdownTimeoutMs = input.shutdownTimeoutMs ?? d.shutdownTimeoutMs;
  if (drainDelayMs >= shutdownTimeoutMs) {
    throw new OptionsInvalidError('runCluster options.drainDelayMs must be shorter than options.shutdownTimeoutMs');
  }
  return Object.freeze({
    workers: input.workers,
    port: input.port,
    host: input.host ?? d.host,
    startWorker: input.startWorker,
    workerMain: input.workerMain,
    cookieName,
    secretsForRouting: Object.freeze([...(input.secretsForRouting ?? [])]),
    nodeName: input.nodeName ?? (process.env.TETHER_NODE_NAME || os.hostname()),
    maxHeadBytes: input.maxHeadBytes ?? d.maxHeadBytes,
    headTimeoutMs: input.headTimeoutMs ?? d.headTimeoutMs,
    drainDelayMs,
    shutdownTimeoutMs,
    hangTimeoutMs: input.hangTimeoutMs ?? d.hangTimeoutMs,
    maxRestarts: input.maxRestarts ?? d.maxRestarts,
    restartWindowMs: input.restartWindowMs ?? d.restartWindowMs,
    maxPendingConnections: input.maxPendingConnections ?? d.maxPendingConnections,
    handleSignals: input.handleSignals ?? true,
    env: Object.freeze({ ...(input.env ?? {}) }),
    log: input.log ?? stderrLog,
  });
}

export type ResolvedWorkerOptions = Readonly<Required<Omit<WorkerOptions, 'close' | 'drain'>>> & { readonly close: WorkerOptions['close']; readonly drain: WorkerOptions['drain'] };

export function resolveWorkerOptions(input: WorkerOptions = {}): ResolvedWorkerOptions {
  checkOptions('acceptHandoff', input, {
    healthPath: 'nonEmptyString', drainTimeoutMs: 'positiveInteger', close: 'function', drain: 'function', exitAfterDrain: 'boolean', log: 'function',
  });
  return Object.freeze({
    healthPath: input.healthPath ?? CLUSTER_DEFAULTS.healthPath,
    drainTimeoutMs: input.drainTimeoutMs ?? CLUSTER_DEFAULTS.drainTimeoutMs,
    close: input.close,
    drain: input.drain,
    exitAfterDrain: input.exitAfterDrain ?? true,
    log: input.log ?? stderrLog,
  });
}
