/** A WebSocket client for tests (the `ws` library): the messages it got, its close, a refused handshake's status and body. */
import WebSocket from 'ws';

export interface Opened {
  ws: WebSocket;
  /** Messages received, parsed, in order. */
  messages: Array<Record<string, unknown>>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `n` messages have arrived. */
  received(n: number): Promise<void>;
}

/** Opens a WebSocket to `url`; rejects with the refused handshake's status and body. */
export function connect(url: string, headers: Record<string, string>): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: Array<Record<string, unknown>> = [];
    const waiters: Array<[number, () => void]> = [];
    ws.on('message', (data) => {
      // A Buffer: the socket's binaryType is the default, 'nodebuffer'.
      messages.push(JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>);
      for (const [n, done] of waiters) if (messages.length >= n) done();
    });
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on('close', (code, reason) => done({ code, reason: String(reason) })));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += String(c)));
      res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body) as unknown })));
    });
    ws.on('error', reject);
    ws.on('open', () => resolve({
      ws, messages, closed,
      received: (n) => (messages.length >= n ? Promise.resolve() : new Promise((done) => waiters.push([n, done]))),
    }));
  });
}
