/**
 * The cluster primary: listens itself, reads each new connection's first request head, picks a worker
 * by the routing or session cookie (or in turn), and hands the socket over with the bytes already read. It never
 * proxies bytes, so keep-alive requests stay with the worker that got the connection. Dead workers are
 * replaced at a bounded rate; stop() drains everything and resolves when every worker has exited.
 * @module
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { readHead } from './head.js';
import type { HeadRead } from './head.js';
import { Router, routingFromHead } from './routing.js';
import type { HeadRouting } from './routing.js';
import { isMessage } from './messages.js';
import { closeStrandedHandles } from './stranded.js';
import type { ConnectionMessage, DrainMessage, DrainingMessage, PingMessage, PongMessage, ReadyMessage } from './messages.js';
import type { ResolvedClusterOptions } from './options.js';

/** A connection waiting for any worker to be ready is closed after this long. */
const PENDING_TIMEOUT_MS = 10_000;
/** Backoff for a worker that keeps dying before it is ready: 50 ms doubling up to this. */
const MAX_CRASH_BACKOFF_MS = 5_000;

export interface WorkerInfo {
  slot: number;
  /** TETHER_NODE_NAME of the worker: `<node>:w<slot>`. */
  name: string;
  pid: number | null;
  ready: boolean;
  /** Connections handed to this slot since start (all its processes). */
  handoffs: number;
  /** Processes started for this slot after the first. */
  restarts: number;
}

export interface ClusterPrimary {
  readonly role: 'primary';
  readonly host: string;
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  /** Resolves once every worker has reported ready (after its first start). */
  readonly ready: Promise<void>;
  workers(): WorkerInfo[];
  /** Connections read but not yet handed over, and waiting for a ready worker. */
  pending(): { reading: number; waiting: number };
  /** Stop accepting, drain every worker, resolve when all exited (killing any left at the deadline). */
  stop(): Promise<void>;
}

interface Slot {
  n: number;
  name: string;
  worker: Worker | null;
  ready: boolean;
  handoffs: number;
  restarts: number;
  recentStarts: number[];
  failuresBeforeReady: number;
  respawnTimer: NodeJS.Timeout | undefined;
  /** When its worker last answered a ping (or reported ready), on performance.now(). */
  answeredAt: number;
}

interface Waiting {
  socket: Socket;
  read: HeadRead;
  by: HeadRouting;
  timer: NodeJS.Timeout;
}

export async function startPrimary(o: ResolvedClusterOptions): Promise<ClusterPrimary> {
  if (o.workerMain) cluster.setupPrimary({ exec: o.workerMain });
  const router = new Router(o.secretsForRouting[0]);
  const slots: Slot[] = Array.from({ length: o.workers }, (_, i) => ({
    n: i + 1, name: `${o.nodeName}:w${i + 1}`, worker: null, ready: false, handoffs: 0, restarts: 0,
    recentStarts: [], failuresBeforeReady: 0, respawnTimer: undefined, answeredAt: 0,
  }));
  const reading = new Map<HeadRead, Promise<void>>();
  const waiting: Waiting[] = [];
  let phase: 'running' | 'draining' | 'closed' = 'running';
  let stopping: Promise<void> | null = null;
  let onAllExited: (() => void) | null = null;
  let markReady!: () => void;
  const ready = new Promise<void>((r) => { markReady = r; });

  const readySlots = (): number[] => slots.filter((s) => s.worker !== null && s.ready).map((s) => s.n - 1);

  const handOff = (slot: Slot, socket: Socket, read: HeadRead, by: HeadRouting): void => {
    const worker = slot.worker;
    if (socket.destroyed) return;
    if (worker === null || !worker.isConnected()) {
      slot.ready = false;
      route(socket, read, by);
      return;
    }
    const msg: ConnectionMessage = { type: 'tether:connection', head: read.take().toString('base64') };
    slot.handoffs++;
    try {
      worker.send(msg, socket, {}, (err) => {
        // Node closes the handle itself when a send fails; the client sees a closed connection.
        if (err) o.log('warn', 'handing a connection to a worker failed', { worker: slot.name, error: err.message });
      });
    } catch (err) {
      o.log('warn', 'handing a connection to a worker failed', { worker: slot.name, error: String(err) });
      socket.destroy();
    }
  };

  const route = (socket: Socket, read: HeadRead, by: HeadRouting): void => {
    const ready = readySlots();
    // The worker the routing cookie names, while it takes connections; else the session's hash.
    const named = by.slot === null ? -1 : by.slot - 1;
    const pick = ready.includes(named) ? named : router.pick(by.id, ready);
    if (pick !== undefined) return handOff(slots[pick]!, socket, read, by);
    if (phase === 'closed' || waiting.length >= o.maxPendingConnections) {
      socket.destroy();
      return;
    }
    const entry: Waiting = {
      socket, read, by,
      timer: setTimeout(() => {
        const i = waiting.indexOf(entry);
        if (i !== -1) waiting.splice(i, 1);
        socket.destroy();
      }, PENDING_TIMEOUT_MS),
    };
    waiting.push(entry);
  };

  const flushWaiting = (): void => {
    while (waiting.length > 0 && readySlots().length > 0) {
      const w = waiting.shift()!;
      clearTimeout(w.timer);
      route(w.socket, w.read, w.by);
    }
  };

  const onConnection = (socket: Socket): void => {
    if (phase === 'closed') {
      socket.destroy();
      return;
    }
    const read = readHead(socket, o.maxHeadBytes, o.headTimeoutMs);
    const routed = read.done.then((why) => {
      if (why !== null) route(socket, read, routingFromHead(read.take(), o.cookieName));
    });
    reading.set(read, routed);
    void routed.finally(() => reading.delete(read));
  };

  const fork = (slot: Slot): void => {
    slot.respawnTimer = undefined;
    slot.recentStarts.push(Date.now());
    // The session cookie's name tells the worker which responses also carry the routing cookie.
    const worker = cluster.fork({ ...o.env, TETHER_NODE_NAME: slot.name, TETHER_WORKER_SLOT: String(slot.n), TETHER_SESSION_COOKIE: o.cookieName });
    slot.worker = worker;
    slot.ready = false;
    let reachedReady = false;
    worker.on('message', (msg: unknown) => {
      if (slot.worker !== worker) return;
      if (isMessage<ReadyMessage>(msg, 'tether:ready')) {
        reachedReady = true;
        slot.answeredAt = performance.now();
        slot.ready = phase !== 'closed' && worker.isConnected();
        slot.failuresBeforeReady = 0;
        // A worker still starting when a drain message was broadcast had no listener for it and dropped it:
        // tell it now where the shutdown stands, or it would idle until the deadline kills it.
        if (phase === 'draining') send(worker, { type: 'tether:drain', phase: 'prepare' });
        else if (phase === 'closed') send(worker, { type: 'tether:drain', phase: 'stop' });
        if (slots.every((s) => s.ready)) markReady();
        flushWaiting();
      } else if (isMessage<DrainingMessage>(msg, 'tether:draining')) {
        slot.ready = false;
      } else if (isMessage<PongMessage>(msg, 'tether:pong')) {
        slot.answeredAt = performance.now();
      }
    });
    // An exited worker also emits 'error' for a send in flight; the exit handler covers it.
    worker.on('error', () => {});
    // The channel closes the moment the worker dies, often before 'exit': stop routing to it at once.
    worker.once('disconnect', () => {
      if (slot.worker === worker) slot.ready = false;
    });
    worker.once('exit', (code, signal) => {
      // Connections handed to it that it never took would otherwise hang until their clients time out.
      const stranded = closeStrandedHandles(worker.process);
      if (stranded > 0) o.log('warn', 'closed connections handed to a worker that died before taking them', { worker: slot.name, connections: stranded });
      if (slot.worker !== worker) return;
      slot.worker = null;
      slot.ready = false;
      if (phase === 'closed') {
        if (slots.every((s) => s.worker === null)) onAllExited?.();
        return;
      }
      // In the drain delay ('draining') the node still serves: a worker lost then is replaced too.
      if (!reachedReady) slot.failuresBeforeReady++;
      o.log('warn', 'worker exited; starting a replacement', { worker: slot.name, workerPid: worker.process.pid, code, signal });
      scheduleRespawn(slot);
    });
  };

  const scheduleRespawn = (slot: Slot): void => {
    const now = Date.now();
    slot.recentStarts = slot.recentStarts.filter((t) => now - t < o.restartWindowMs);
    let delay = slot.failuresBeforeReady > 0 ? Math.min(50 * 2 ** (slot.failuresBeforeReady - 1), MAX_CRASH_BACKOFF_MS) : 0;
    if (slot.recentStarts.length >= o.maxRestarts) {
      delay = Math.max(delay, slot.recentStarts[0]! + o.restartWindowMs - now);
      o.log('error', 'worker restart limit reached; waiting before the next start', { worker: slot.name, delayMs: delay });
    }
    slot.restarts++;
    slot.respawnTimer = setTimeout(() => { if (phase !== 'closed') fork(slot); }, delay);
  };

  /**
   * Pings each ready worker, and kills one that has answered nothing for `hangTimeoutMs`: a process
   * that lives but whose event loop no longer turns serves nobody, and only its exit gets it replaced.
   */
  let pings = 0;
  const checkAlive = (): void => {
    const now = performance.now();
    for (const slot of slots) {
      const worker = slot.worker;
      if (worker === null || !slot.ready) continue;
      if (now - slot.answeredAt > o.hangTimeoutMs) {
        o.log('error', 'worker stopped answering; killing it', { worker: slot.name, workerPid: worker.process.pid, silentMs: Math.round(now - slot.answeredAt) });
        slot.ready = false;
        worker.process.kill('SIGKILL');
        continue;
      }
      send(worker, { type: 'tether:ping', n: ++pings });
    }
  };
  const aliveTimer = o.hangTimeoutMs > 0 ? setInterval(checkAlive, Math.max(1, Math.floor(o.hangTimeoutMs / 4))) : undefined;
  aliveTimer?.unref();

  const send = (worker: Worker, msg: DrainMessage | PingMessage): void => {
    if (!worker.isConnected()) return;
    try {
      worker.send(msg, undefined, {}, () => { /* an exiting worker: its exit is handled */ });
    } catch { /* channel closed */ }
  };
  const broadcast = (msg: DrainMessage): void => {
    for (const s of slots) if (s.worker) send(s.worker, msg);
  };

  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: o.port, host: o.host }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => o.log('error', 'listener error', { error: err.message }));
  for (const slot of slots) fork(slot);

  const drainAll = async (): Promise<void> => {
    phase = 'draining';
    const allExited = new Promise<void>((r) => {
      onAllExited = r;
    });
    const force = setTimeout(() => {
      const left = slots.filter((s) => s.worker !== null);
      o.log('warn', 'shutdown deadline passed; killing the workers still running', { workers: left.map((s) => s.name) });
      for (const s of left) s.worker?.process.kill('SIGKILL');
    }, o.shutdownTimeoutMs);
    if (o.drainDelayMs > 0) {
      broadcast({ type: 'tether:drain', phase: 'prepare' });
      await new Promise((r) => setTimeout(r, o.drainDelayMs));
    }
    phase = 'closed';
    clearInterval(aliveTimer);
    // No more replacements: one still waiting to start is not started, and if no worker is left, none is waited for.
    for (const s of slots) clearTimeout(s.respawnTimer);
    if (slots.every((s) => s.worker === null)) onAllExited?.();
    server.close();
    for (const read of reading.keys()) read.stop();
    await Promise.allSettled([...reading.values()]);
    flushWaiting();
    for (const w of waiting.splice(0)) {
      clearTimeout(w.timer);
      w.socket.destroy();
    }
    for (const s of slots) s.ready = false;
    // Workers that have not reported ready yet miss this; each is sent it when its ready message comes.
    broadcast({ type: 'tether:drain', phase: 'stop' });
    await allExited;
    clearTimeout(force);
  };

  const address = server.address() as AddressInfo;
  return {
    role: 'primary',
    host: o.host,
    port: address.port,
    ready,
    workers: () => slots.map((s) => ({
      slot: s.n, name: s.name, pid: s.worker?.process.pid ?? null, ready: s.ready, handoffs: s.handoffs, restarts: s.restarts,
    })),
    pending: () => ({ reading: reading.size, waiting: waiting.length }),
    stop: () => {
      stopping ??= drainAll();
      return stopping;
    },
  };
}
