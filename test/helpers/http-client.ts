/**
 * A small HTTP client for tests that act like a browser: its own keep-alive connection (one socket at a
 * time), a cookie jar, the CSRF token, and a way to force a new connection. Only loopback targets.
 * @module
 */
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { storeSetCookie } from './cookie-client.js';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests (and bench/) read JSON answers of any shape and assert on them; `unknown` fails their type-check
  body: any;
  /** The X-Tether-Node header: which worker or node answered. */
  node: string | undefined;
  /** Local port of the connection used: equal ports = same TCP connection. */
  localPort: number;
}

export interface ClientOptions {
  /** Reuse the connection between requests. @default true */
  keepAlive?: boolean;
  /** Bound on one request. @default 10_000 */
  timeoutMs?: number;
}

export class TestClient {
  readonly cookies = new Map<string, string>();
  csrfToken: string | undefined;
  readonly #url: URL;
  readonly #keepAlive: boolean;
  readonly #timeoutMs: number;
  #agent: http.Agent;

  constructor(base: string, options: ClientOptions = {}) {
    this.#url = new URL(base);
    if (this.#url.hostname !== '127.0.0.1') throw new Error('TestClient only talks to 127.0.0.1');
    this.#keepAlive = options.keepAlive ?? true;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#agent = this.#newAgent();
  }

  #newAgent(): http.Agent {
    return new http.Agent({ keepAlive: this.#keepAlive, maxSockets: 1 });
  }

  /** Closes the current connection; the next request opens a new one. */
  newConnection(): void {
    this.#agent.destroy();
    this.#agent = this.#newAgent();
  }

  close(): void {
    this.#agent.destroy();
  }

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const h: Record<string, string> = { ...headers };
    if (this.cookies.size > 0) h.cookie = this.cookieHeader;
    if (payload) {
      h['content-type'] = 'application/json';
      h['content-length'] = String(payload.length);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      // Like a browser, an unsafe request names the origin it comes from.
      h.origin ??= this.#url.origin;
      if (this.csrfToken) h['x-csrf-token'] = this.csrfToken;
    }
    return new Promise<Reply>((resolve, reject) => {
      let localPort = 0;
      const req = http.request({
        host: this.#url.hostname, port: this.#url.port, method, path, headers: h, agent: this.#agent, timeout: this.#timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          this.#store(res.headers['set-cookie']);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try { parsed = JSON.parse(text); } catch { parsed = undefined; }
          const node = res.headers['x-tether-node'];
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed, node: typeof node === 'string' ? node : undefined, localPort });
        });
      });
      req.on('socket', (s) => {
        const set = (): void => { localPort = s.localPort ?? 0; };
        if (s.localPort) set(); else s.once('connect', set);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`request timed out after ${this.#timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(payload);
    });
  }

  #store(setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) storeSetCookie(this.cookies, line);
  }
}

/** True for an error that means the connection failed or broke (the request may or may not have run); a timeout is not one. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ECONNABORTED'].includes(code ?? '')
    || /socket hang up/i.test((err as Error).message ?? '');
}
