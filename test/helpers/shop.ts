/**
 * Test helpers for the shop: start it in-process (buildShop on a free port, temporary data dir) or as
 * `npm start` does (a child process), and a small HTTP client with a cookie jar and the CSRF token.
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import http from 'node:http';
import { loadConfig } from '../../apps/shop/config.js';
import { startShop } from '../../apps/shop/server.js';
import type { Shop } from '../../apps/shop/server.js';
import { removeTempDir, tempDir } from './exit.js';

export const TEST_SECRET = 'test-secret-for-the-shop-0123456789abcdef';
export const ADMIN_PASSWORD = 'admin-password-for-tests';
export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

export interface TestShop {
  shop: Shop;
  url: string;
  dataDir: string;
  logs: string[];
  stop(): Promise<void>;
}

/**
 * The shop in this process on a free loopback port, with its own temporary data dir. Every test
 * registers its accounts and logs in from the one loopback address, so the limits on registrations and
 * password checks per address are lifted out of the way unless `env` sets them.
 */
export async function startTestShop(env: Record<string, string> = {}): Promise<TestShop> {
  const dataDir = await tempDir('tether-shop-');
  const logs: string[] = [];
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', TETHER_DATA_DIR: dataDir, TETHER_SECRET: TEST_SECRET, SHOP_ADMIN_PASSWORD: ADMIN_PASSWORD,
    TETHER_NODE_NAME: 'test-node', SHOP_REGISTRATIONS_PER_HOUR: '1000000', SHOP_PASSWORD_CHECKS_PER_MINUTE: '1000000', ...env,
  }, (line) => logs.push(line));
  const shop = await startShop(config);
  return {
    shop, url: shop.url, dataDir, logs,
    async stop() {
      await shop.close();
      await removeTempDir(dataDir);
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed JSON body (undefined when the body is not JSON). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Asserts the shop's error shape: `status` and `{"error":{"code"}}`. */
export function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.body?.error?.code, code);
}

export interface RequestOptions {
  json?: unknown;
  /** A raw body, sent as is (with `contentType`). */
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** Send the session's CSRF token (default true for unsafe methods). */
  csrf?: boolean;
}

/** Raw HTTP with node:http, so tests control every header (Origin, Content-Type) and body byte. */
export function rawRequest(url: string, method: string, headers: Record<string, string>, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
      });
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** One browser-like client: a cookie jar and the session's CSRF token. */
export class ShopClient {
  readonly base: string;
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;
  userAgent: string;

  constructor(base: string, userAgent = 'shop-test-client') {
    this.base = base;
    this.userAgent = userAgent;
  }

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
    const unsafe = !['GET', 'HEAD', 'OPTIONS'].includes(method);
    // Like a browser, an unsafe request names the origin it comes from.
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...(unsafe ? { origin: new URL(this.base).origin } : {}), ...options.headers };
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader;
    if ((options.csrf ?? unsafe) && this.csrf !== undefined) headers['x-csrf-token'] = this.csrf;
    let body: string | Buffer | undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = options.contentType ?? 'application/json';
    } else if (options.raw !== undefined) {
      body = options.raw;
      if (options.contentType) headers['content-type'] = options.contentType;
    }
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const reply = await rawRequest(this.base + path, method, headers, body);
    this.#absorb(reply.headers['set-cookie']);
    if (reply.body && typeof reply.body === 'object' && typeof reply.body.csrfToken === 'string') this.csrf = reply.body.csrfToken;
    return reply;
  }

  #absorb(setCookies: string[] | undefined): void {
    for (const line of setCookies ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  get(path: string, options?: RequestOptions): Promise<Reply> {
    return this.request('GET', path, options);
  }

  post(path: string, json?: unknown, options: RequestOptions = {}): Promise<Reply> {
    return this.request('POST', path, json === undefined ? options : { ...options, json });
  }

  /** GET /api/session: creates the session if needed and keeps its CSRF token. */
  async session(): Promise<Reply> {
    return this.get('/api/session');
  }

  async register(username: string, password = 'correct horse battery'): Promise<Reply> {
    if (this.csrf === undefined) await this.session();
    return this.post('/api/auth/register', { username, password });
  }

  async login(username: string, password = 'correct horse battery'): Promise<Reply> {
    if (this.csrf === undefined) await this.session();
    return this.post('/api/auth/login', { username, password });
  }

  async add(productId: string, quantity = 1): Promise<Reply> {
    if (this.csrf === undefined) await this.session();
    return this.post('/api/cart/items', { productId, quantity });
  }
}

let counter = 0;
/** A username no other test uses. */
export function uniqueName(prefix = 'user'): string {
  counter++;
  return `${prefix}${process.pid % 1000}_${counter}_${Math.floor(Math.random() * 1e6)}`.slice(0, 32);
}

export interface SpawnedShop {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Sends `signal` and resolves with the exit code (bounded wait; SIGKILL after it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Resolves with a free loopback port (closed again before it returns). */
import { freePort } from './net.js';
export { freePort };

/** Starts the shop exactly as `npm start` does, and waits until /healthz answers. */
export async function spawnShop(env: Record<string, string>, readyTimeoutMs = 30_000): Promise<SpawnedShop> {
  const port = env.PORT ?? String(await freePort());
  const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', 'apps/shop/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'development', HOST: '127.0.0.1', ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const spawned: SpawnedShop = {
    url, child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (let i = 0; i < 600 && Date.now() < deadline; i++) {
    if (child.exitCode !== null) throw new Error(`the shop exited with ${child.exitCode} before it was ready:\n${out}`);
    try {
      const r = await rawRequest(url + '/healthz', 'GET', {});
      if (r.status === 200) return spawned;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await spawned.stop('SIGKILL');
  throw new Error(`the shop did not answer /healthz within ${readyTimeoutMs} ms:\n${out}`);
}

/** Runs the shop's main.ts to completion (for start-up failures) and returns its exit code and output. */
export function runShopToExit(env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=tether-source', '--import', 'tsx', 'apps/shop/main.ts'], {
      cwd: REPO_ROOT, env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output: out });
    });
  });
}
