/**
 * Connections stranded by a worker that died while they were being handed to it.
 *
 * Node's `ChildProcess.send(message, socket)` keeps the sent handle open in the sender until the child
 * acknowledges it (`NODE_HANDLE_ACK`), and queues any further handle behind that one. A child that
 * dies before acknowledging leaves them all open in this process: nothing closes them when its
 * channel ends (Node closes the pending handle only on a disconnect it initiates), so each client
 * waits on a connection nobody serves until its own timeout. After the worker has exited, nothing
 * can acknowledge them any more; closing them lets those clients see a closed connection at once and
 * retry, as the clients of the dead worker's own connections do.
 * @module
 */
import type { ChildProcess } from 'node:child_process';

/** What Node keeps on a ChildProcess for handles awaiting acknowledgement (internal fields). */
interface HandleQueues {
  _pendingMessage?: { handle?: { close?: () => void } | null } | null;
  _handleQueue?: Array<{ handle?: { destroy?: () => void; close?: () => void } | null }> | null;
}

/** Closes the handles an exited child left unacknowledged; returns how many. Call it only after 'exit'. */
export function closeStrandedHandles(child: ChildProcess): number {
  const queues = child as unknown as HandleQueues;
  let closed = 0;
  const pending = queues._pendingMessage?.handle;
  if (pending && typeof pending.close === 'function') {
    pending.close();
    closed++;
  }
  queues._pendingMessage = null;
  for (const queued of queues._handleQueue ?? []) {
    const handle = queued.handle;
    if (!handle) continue;
    // Queued entries still hold what was passed to send(): a net.Socket here.
    if (typeof handle.destroy === 'function') handle.destroy();
    else if (typeof handle.close === 'function') handle.close();
    closed++;
  }
  queues._handleQueue = null;
  return closed;
}
