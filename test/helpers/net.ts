/** Loopback helpers shared by every test that starts a server: a free port on 127.0.0.1; TCP proxies that delay and cut, stall, or move to another server. */
import net from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A TCP proxy on 127.0.0.1: each connection it accepts is joined to a new one to 127.0.0.1:`target()`
 * (read as the connection arrives) and handed to `wire`, which passes bytes between them as the proxy
 * means to. `close()` destroys every connection still open, then stops listening.
 */
async function loopbackProxy(target: () => number, wire: (client: net.Socket, upstream: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: target() });
    for (const s of [client, upstream]) sockets.add(s.once('close', () => sockets.delete(s)));
    wire(client, upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

export interface DelayingProxy {
  readonly port: number;
  /** Holds every byte sent to the server from now on for `ms` (0: none); order within a connection is kept. */
  setDelay(ms: number): void;
  /**
   * Cuts the connection at the next bytes a client sends: `'before'` drops them unsent, `'after'` passes
   * them to the server and drops its reply (the command ran, the client never hears of it). Once.
   */
  cutNext(when: 'before' | 'after'): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `targetPort` that can hold what clients send for a while: a
 * slow network on one machine's path to a shared server, while other machines reach it directly.
 * Replies pass at once. Bytes of one connection leave in the order they came, whatever the delay.
 */
export async function delayingProxy(targetPort: number): Promise<DelayingProxy> {
  let delayMs = 0;
  let cut: 'before' | 'after' | null = null;
  const proxy = await loopbackProxy(() => targetPort, (client, upstream) => {
    // One queue per connection, released head first: a later, shorter delay never overtakes a chunk.
    const queue: Array<{ at: number; chunk: Buffer }> = [];
    let timer: NodeJS.Timeout | undefined;
    // The client has closed its side: what it sent before is still delivered, then the upstream is
    // ended, as TCP delivers the bytes sent before a FIN.
    let clientGone = false;
    // Cut on purpose (cutNext): the upstream is ended or destroyed there, not by the client's close.
    let cutting = false;
    const finish = (): void => {
      clearTimeout(timer);
      client.destroy();
      upstream.destroy();
    };
    const pump = (): void => {
      timer = undefined;
      while (queue.length > 0 && queue[0]!.at <= Date.now()) upstream.write(queue.shift()!.chunk);
      if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - Date.now());
      else if (clientGone) upstream.end();
    };
    client.on('data', (chunk: Buffer) => {
      if (cut !== null) {
        const when = cut;
        cut = null;
        cutting = true;
        client.destroy();
        // The reply is dropped with the client's socket; the upstream ends once the chunk is sent.
        if (when === 'after') upstream.end(chunk);
        else upstream.destroy();
        return;
      }
      queue.push({ at: Date.now() + delayMs, chunk });
      if (timer === undefined) pump();
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.destroyed) client.write(chunk);
    });
    const clientClosed = (): void => {
      if (clientGone || cutting) return;
      clientGone = true;
      if (queue.length === 0) finish();
    };
    client.on('close', clientClosed).on('error', clientClosed);
    upstream.on('close', finish).on('error', finish);
  });
  return {
    ...proxy,
    setDelay: (ms) => { delayMs = ms; },
    cutNext: (when) => { cut = when; },
  };
}

export interface StallingProxy {
  readonly port: number;
  /**
   * From now on, connections that have sent `marker` (case-insensitive) carry nothing either way and stay
   * open: a flow a NAT or firewall dropped without telling either end. Returns how many it stalled.
   */
  stall(marker: string): number;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `targetPort` whose connections can be made to go silent without closing. */
export async function stallingProxy(targetPort: number): Promise<StallingProxy> {
  const flows = new Set<{ sent: string; stalled: boolean }>();
  const proxy = await loopbackProxy(() => targetPort, (client, upstream) => {
    const flow = { sent: '', stalled: false };
    flows.add(flow);
    client.on('data', (chunk: Buffer) => {
      if (flow.stalled) return;
      // What a connection sent first (its handshake and subscriptions) is all a marker is looked for in.
      if (flow.sent.length < 4096) flow.sent += chunk.toString('latin1').toLowerCase();
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!flow.stalled && !client.destroyed) client.write(chunk);
    });
    const finish = (): void => {
      client.destroy();
      upstream.destroy();
      flows.delete(flow);
    };
    client.on('close', finish).on('error', finish);
    upstream.on('close', finish).on('error', finish);
  });
  return {
    ...proxy,
    stall: (marker) => {
      let n = 0;
      for (const flow of flows) {
        if (!flow.stalled && flow.sent.includes(marker.toLowerCase())) {
          flow.stalled = true;
          n++;
        }
      }
      return n;
    },
  };
}

export interface MovableProxy {
  readonly port: number;
  /** New connections go to `targetPort` from now on; those open stay where they are, as behind a moved virtual IP. */
  moveTo(targetPort: number): void;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 standing for an address that can be moved to another server (a virtual IP, a DNS name). */
export async function movableProxy(targetPort: number): Promise<MovableProxy> {
  let target = targetPort;
  const proxy = await loopbackProxy(() => target, (client, upstream) => {
    client.pipe(upstream);
    upstream.pipe(client);
    const finish = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', finish).on('error', finish);
    upstream.on('close', finish).on('error', finish);
  });
  return { ...proxy, moveTo: (port) => { target = port; } };
}

/** The status line of the answer to `GET path` sent on a fresh connection to 127.0.0.1:`port` (the reason phrase as sent). */
export function statusLine(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let data = '';
    socket.on('data', (c: Buffer) => { data += c.toString('latin1'); });
    socket.on('close', () => resolve(data.slice(0, data.indexOf('\r\n'))));
    socket.on('error', reject);
  });
}
