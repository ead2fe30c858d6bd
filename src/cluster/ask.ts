/**
 * Worker → primary requests over the cluster IPC channel: each carries an id, the primary answers
 * with a reply message naming it, and the worker waits a bounded time. One listener and one table of
 * pending requests serve every kind (cluster metrics, shared limits).
 * @module
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';

type Reply = { type: string; id: number };

const pending = new Map<number, { replyType: string; resolve: (reply: Reply) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
let nextId = 0;
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  process.on('message', (msg: unknown) => {
    if (typeof msg !== 'object' || msg === null) return;
    const { type, id } = msg as Partial<Reply>;
    const p = typeof id === 'number' ? pending.get(id) : undefined;
    if (!p || p.replyType !== type) return;
    pending.delete(id!);
    clearTimeout(p.timer);
    p.resolve(msg as Reply);
  });
}

/**
 * Sends `request` (with a fresh `id`) to the primary and resolves with its `replyType` answer. Rejects
 * outside a cluster worker, when the message cannot be sent, or after `timeoutMs` without an answer
 * (`<what>: the primary did not answer within … ms`).
 */
export function askPrimary<R extends Reply>(what: string, request: { type: string } & Record<string, unknown>, replyType: R['type'], timeoutMs: number): Promise<R> {
  const send = process.send?.bind(process);
  if (!cluster.isWorker || !send) return Promise.reject(new Error(`${what} runs in a cluster worker`));
  listen();
  const id = nextId++;
  return new Promise<R>((resolve, reject) => {
    const fail = (err: Error): void => {
      if (!pending.delete(id)) return;
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`${what}: the primary did not answer within ${timeoutMs} ms`)), timeoutMs);
    pending.set(id, { replyType, resolve: resolve as (reply: Reply) => void, reject, timer });
    send({ ...request, id }, undefined, {}, (err: Error | null) => {
      if (err) fail(err);
    });
  });
}

/** Primary: sends a reply to the worker that asked, unless it has gone (its exit is handled elsewhere). */
export function answerWorker<R extends Reply>(worker: Worker, reply: R): void {
  if (worker.isConnected()) worker.send(reply, (err: Error | null) => void err);
}
