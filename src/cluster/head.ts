/**
 * Reads the first request head of a new connection in the primary, bounded in bytes and time, and
 * stops the socket reading so that nothing more is consumed before the socket is handed to a worker.
 *
 * Why the private `_handle.readStop()`: when a socket is sent to another process, Node detaches its
 * handle but leaves it reading until the child acknowledges, and bytes read in that window go nowhere.
 * Stopping the read leaves them in the kernel, where the worker reads them.
 * @module
 */
import type { Socket } from 'node:net';
import { headEnd } from './routing.js';

export type HeadEnd = 'complete' | 'limit' | 'timeout' | 'ended' | 'stopped';

export interface HeadRead {
  /** Resolves with why reading ended, or null when the client went away first (the socket is destroyed). */
  readonly done: Promise<HeadEnd | null>;
  /** Ends the wait now with whatever was read (drain). */
  stop(): void;
  /** Every byte read so far, including any left in the stream's buffer; call right before the handoff. */
  take(): Buffer;
}

interface SocketHandle {
  reading?: boolean;
  readStop?: () => number;
}

function stopReading(socket: Socket): void {
  socket.pause();
  const handle = (socket as unknown as { _handle?: SocketHandle | null })._handle;
  if (handle && typeof handle.readStop === 'function') {
    handle.reading = false;
    handle.readStop();
  }
}

export function readHead(socket: Socket, maxBytes: number, timeoutMs: number): HeadRead {
  const chunks: Buffer[] = [];
  let size = 0;
  /** The last three bytes seen, so a `\r\n\r\n` split across chunks is still found in O(chunk). */
  let tail = Buffer.alloc(0);
  let settle!: (v: HeadEnd | null) => void;
  const done = new Promise<HeadEnd | null>((resolve) => { settle = resolve; });
  let finished = false;

  const finish = (why: HeadEnd | null): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    if (why === null) {
      socket.destroy();
    } else {
      stopReading(socket);
    }
    settle(why);
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= maxBytes) return finish('limit');
    const window = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
    if (headEnd(window) !== -1) return finish('complete');
    tail = Buffer.from(window.subarray(Math.max(0, window.length - 3)));
  };
  const onEnd = (): void => finish(size > 0 ? 'ended' : null);
  const onClose = (): void => finish(null);
  // Errors (ECONNRESET) are followed by 'close'; a listener keeps them from becoming uncaught.
  socket.on('error', () => {});
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onClose);
  // pauseOnConnect leaves the stream explicitly paused: a 'data' listener alone does not start it.
  socket.resume();
  // A silent connection (a browser's preconnect) is handed over too: the worker's HTTP timeouts rule it.
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  timer.unref();

  return {
    done,
    stop: () => finish(size > 0 ? 'stopped' : null),
    take: () => {
      if (!socket.destroyed) {
        for (let c = socket.read() as Buffer | null, i = 0; c !== null && i < 1024; c = socket.read() as Buffer | null, i++) chunks.push(c);
        stopReading(socket);
      }
      return Buffer.concat(chunks);
    },
  };
}
