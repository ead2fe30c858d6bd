/**
 * One raw TCP connection to a loopback port, for slow-client tests: what the server sent, and when (ms
 * after opening) its first bytes came and it closed.
 * @module
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import assert from 'node:assert/strict';

/** Bound on any one slow connection, whatever the server does. */
export const CONNECTION_BOUND_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One raw connection: what the server sent, and when (ms after `start`) its first bytes came and it closed. */
export class RawConnection {
  readonly socket: net.Socket;
  readonly start = performance.now();
  received = '';
  firstByteMs: number | undefined;
  closedMs: number | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.firstByteMs ??= performance.now() - this.start;
      this.received += c.toString('latin1');
    });
    // A write racing the server's close may fail with EPIPE or ECONNRESET; 'close' follows.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.closedMs = performance.now() - this.start;
      resolve();
    }));
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawConnection(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.closedMs !== undefined || this.socket.destroyed || this.socket.readableEnded;
  }

  write(text: string): void {
    if (!this.isClosed) this.socket.write(text);
  }

  /** Writes `piece(i)` every `everyMs`, at most `max` times, until the server closes the connection. */
  async drip(piece: (i: number) => string, everyMs: number, max: number): Promise<number> {
    let sent = 0;
    for (let i = 0; i < max && !this.isClosed; i++) {
      await Promise.race([sleep(everyMs), this.closed]);
      if (this.isClosed) break;
      this.write(piece(i));
      sent++;
    }
    return sent;
  }

  /** Waits for the server to close, at most CONNECTION_BOUND_MS (then destroys it and fails). */
  async waitClosed(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'bound'>((resolve) => { timer = setTimeout(() => resolve('bound'), CONNECTION_BOUND_MS); });
    const outcome = await Promise.race([this.closed.then(() => 'closed' as const), bound]);
    clearTimeout(timer);
    if (outcome === 'bound') {
      this.socket.destroy();
      assert.fail(`the server kept the connection open for ${CONNECTION_BOUND_MS} ms; received: ${JSON.stringify(this.received)}`);
    }
  }
}

