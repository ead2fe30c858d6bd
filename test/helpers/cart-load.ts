/**
 * A bounded cart load against the shop (directly, through the cluster primary or through HAProxy) and the
 * checker that decides whether anything acknowledged was lost: the set test of SECURITY.md's fault plan,
 * counted per product line.
 *
 * Each client is one browser: its own keep-alive connection, cookies (the session and any balancer
 * cookie) and CSRF token. It adds one unit of a product per request, cycling through the catalog. Every
 * request is logged as ok (2xx: acknowledged), conn-error (the connection failed or broke: the add may or
 * may not have happened), timeout (same) or http-error (an answer that is not 2xx; a 5xx is indeterminate
 * too, a 4xx was not applied). Tests decide which failures they allow. After a connection error the client opens a new connection for its next request.
 * The checker reads every cart on a new connection: a line may hold no fewer units than were acknowledged
 * (else an acknowledged write was lost) and no more than acknowledged + indeterminate (else something was
 * applied that nobody asked for); a product never sent must not appear.
 * With `logoutEvery`, clients also end their session now and then (POST /api/auth/logout) and go on in a
 * new one: every session whose logout was acknowledged must stay ended (a cookie of it brings back no
 * session: "resurrected" otherwise), and a session whose logout's outcome is unknown is checked for neither.
 * @module
 */
import assert from 'node:assert/strict';
import { TestClient, isConnectionError } from './http-client.js';

export type Outcome = 'ok' | 'conn-error' | 'timeout' | 'http-error';

export interface OpRecord {
  client: number;
  productId: string;
  startedAt: number;
  endedAt: number;
  outcome: Outcome;
  status?: number;
  node?: string;
  error?: string;
}

export interface CartLoadOptions {
  url: string;
  clients: number;
  /** Upper bound on adds per client. */
  opsPerClient: number;
  /** Pause between one client's requests, in ms (keeps a long, gentle load). @default 0 */
  pauseMs?: number;
  /** Upper bound on the whole run, in ms. @default 60_000 */
  maxMs?: number;
  /** Per-request bound, in ms. @default 10_000 */
  timeoutMs?: number;
  /** Every this many adds a client logs out and continues in a new session; 0 never. @default 0 */
  logoutEvery?: number;
}

export interface LoadClient {
  index: number;
  http: TestClient;
  /** productId → acknowledged adds. */
  acked: Map<string, number>;
  /** productId → adds whose outcome is unknown (connection error or timeout). */
  unknown: Map<string, number>;
  ops: OpRecord[];
  /** Cookies of sessions whose logout was acknowledged. */
  ended: Array<Map<string, string>>;
  /** The client has no session yet (its last logout left it without one). */
  needsSession: boolean;
}

export interface CheckResult {
  clients: number;
  acknowledged: number;
  indeterminate: number;
  /** Acknowledged units missing from a cart. */
  lost: Array<{ client: number; productId: string; acked: number; found: number }>;
  /** Units beyond acknowledged + indeterminate, or products never sent. */
  phantom: Array<{ client: number; productId: string; found: number; max: number }>;
  /** Carts that could not be read at all, or sessions that did not come back. */
  unreadable: Array<{ client: number; status: number | string; reason: string }>;
  /** Acknowledged logouts checked, and those whose session came back. */
  logouts: number;
  resurrected: Array<{ client: number; reason: string }>;
}

/** The `productId` logged for a logout. */
export const LOGOUT = '(logout)';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const bump = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1); };

export class CartLoad {
  readonly options: Required<CartLoadOptions>;
  readonly clients: LoadClient[] = [];
  products: string[] = [];
  #stop = false;
  #pause: Promise<void> | null = null;
  #resume: (() => void) | null = null;

  constructor(options: CartLoadOptions) {
    this.options = { pauseMs: 0, maxMs: 60_000, timeoutMs: 10_000, logoutEvery: 0, ...options };
  }

  /** Reads the catalog and opens a session (with its CSRF token) for every client. */
  async prepare(): Promise<void> {
    const probe = new TestClient(this.options.url);
    const list = await probe.request('GET', '/api/products');
    probe.close();
    if (list.status !== 200 || !Array.isArray(list.body)) throw new Error(`GET /api/products answered ${list.status}`);
    this.products = (list.body as Array<{ id: string }>).map((p) => p.id);
    for (let i = 0; i < this.options.clients; i++) {
      const http = new TestClient(this.options.url, { timeoutMs: this.options.timeoutMs });
      const s = await http.request('GET', '/api/session');
      if (s.status !== 200 || typeof s.body?.csrfToken !== 'string') throw new Error(`client ${i}: GET /api/session answered ${s.status}`);
      http.csrfToken = s.body.csrfToken;
      this.clients.push({ index: i, http, acked: new Map(), unknown: new Map(), ops: [], ended: [], needsSession: false });
    }
  }

  /** Ends every client loop after its current request. */
  stop(): void {
    this.#stop = true;
    this.resume();
  }

  /** Holds every client before its next request until resume() (e.g. while a node restarts). */
  pause(): void {
    this.#pause ??= new Promise((r) => { this.#resume = r; });
  }

  resume(): void {
    this.#resume?.();
    this.#pause = null;
    this.#resume = null;
  }

  /** Runs every client's loop to its bound (or stop()); resolves when all are done. */
  async run(onOp?: (op: OpRecord) => void): Promise<void> {
    const deadline = Date.now() + this.options.maxMs;
    await Promise.all(this.clients.map(async (c) => {
      for (let step = 0; step < this.options.opsPerClient && !this.#stop && Date.now() < deadline; step++) {
        if (this.#pause) await this.#pause;
        if (this.#stop) break;
        if (c.needsSession && !(await this.#newSession(c))) {
          await sleep(Math.max(this.options.pauseMs, 50));
          continue;
        }
        const every = this.options.logoutEvery;
        const op = every > 0 && step > 0 && step % every === 0
          ? await this.#logout(c)
          : await this.#add(c, this.products[(c.index + step) % this.products.length]!);
        onOp?.(op);
        if (this.options.pauseMs > 0) await sleep(this.options.pauseMs);
      }
    }));
  }

  async #add(c: LoadClient, productId: string): Promise<OpRecord> {
    const op = await this.#send(c, productId, '/api/cart/items', { productId, quantity: 1 });
    if (op.outcome === 'ok') bump(c.acked, productId);
    // A 5xx (a proxy's 502 for a node that died mid-request, a store timeout) may follow an applied write.
    else if (op.outcome !== 'http-error' || op.status! >= 500) bump(c.unknown, productId);
    return op;
  }

  /** One POST, logged as ok, http-error, conn-error or timeout (after a connection error the next request opens a new connection). */
  async #send(c: LoadClient, productId: string, path: string, body: unknown): Promise<OpRecord> {
    const startedAt = Date.now();
    let op: OpRecord;
    try {
      const r = await c.http.request('POST', path, body);
      const ok = r.status >= 200 && r.status < 300;
      op = { client: c.index, productId, startedAt, endedAt: Date.now(), outcome: ok ? 'ok' : 'http-error', status: r.status, node: r.node };
      if (!ok) op.error = r.text.slice(0, 200);
    } catch (err) {
      const conn = isConnectionError(err);
      op = { client: c.index, productId, startedAt, endedAt: Date.now(), outcome: conn ? 'conn-error' : 'timeout', error: `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim() };
      c.http.newConnection();
    }
    c.ops.push(op);
    return op;
  }


  /**
   * Ends the client's session. Acknowledged: its cookies are kept for the check, and its cart is done
   * with. Not acknowledged: the session may or may not have ended, so its cart is checked for nothing.
   * Either way the client goes on in a new session.
   */
  async #logout(c: LoadClient): Promise<OpRecord> {
    const cookies = new Map(c.http.cookies);
    const op = await this.#send(c, LOGOUT, '/api/auth/logout', {});
    if (op.outcome === 'ok') c.ended.push(cookies);
    c.acked.clear();
    c.unknown.clear();
    c.http.cookies.clear();
    c.http.csrfToken = undefined;
    c.needsSession = true;
    await this.#newSession(c);
    return op;
  }

  /** A new session (and its CSRF token) for the client; false when the request failed (tried again later). */
  async #newSession(c: LoadClient): Promise<boolean> {
    try {
      const s = await c.http.request('GET', '/api/session');
      if (s.status !== 200 || typeof s.body?.csrfToken !== 'string') return false;
      c.http.csrfToken = s.body.csrfToken;
      c.needsSession = false;
      return true;
    } catch {
      c.http.newConnection();
      return false;
    }
  }

  /** Every request of every client, in start order. */
  ops(): OpRecord[] {
    return this.clients.flatMap((c) => c.ops).sort((a, b) => a.startedAt - b.startedAt);
  }

  /** Waits until `n` adds or logouts in all were acknowledged; throws after `timeoutMs` (polled every 25 ms). */
  async acked(n: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
      if (this.count('ok') >= n) return;
      await sleep(25);
    }
    throw new Error(`only ${this.count('ok')} requests acknowledged, waited ${timeoutMs} ms for ${n}`);
  }

  count(outcome: Outcome, from = 0, to = Infinity): number {
    return this.ops().filter((o) => o.outcome === outcome && o.endedAt >= from && o.startedAt <= to).length;
  }

  /** Reads every cart on a new connection (through `url`, default the load's) and compares it with the log. */
  async check(url = this.options.url): Promise<CheckResult> {
    const result: CheckResult = { clients: this.clients.length, acknowledged: 0, indeterminate: 0, lost: [], phantom: [], unreadable: [], logouts: 0, resurrected: [] };
    for (const c of this.clients) {
      for (const cookies of c.ended) {
        result.logouts++;
        const reader = new TestClient(url, { timeoutMs: this.options.timeoutMs });
        for (const [k, v] of cookies) reader.cookies.set(k, v);
        try {
          const r = await reader.request('GET', '/api/session');
          // An ended session's cookie is answered with a new session (a new cookie), never the old one.
          const renewed = r.headers['set-cookie']?.some((l) => /^(__Host-)?sid=/.test(l)) ?? false;
          if (r.status !== 200 || !renewed) result.resurrected.push({ client: c.index, reason: `status ${r.status}, ${renewed ? 'new' : 'no new'} session cookie, cart ${JSON.stringify(r.body?.cart?.items ?? null).slice(0, 120)}` });
        } catch (err) {
          result.resurrected.push({ client: c.index, reason: `unreadable: ${(err as Error).message}` });
        } finally {
          reader.close();
        }
      }
      // Over all of the client's sessions (a logout starts the counts of the current one again).
      for (const o of c.ops) {
        if (o.productId === LOGOUT) continue;
        if (o.outcome === 'ok') result.acknowledged++;
        else if (o.outcome !== 'http-error' || o.status! >= 500) result.indeterminate++;
      }
      // Left without a session by its last logout (the new one could not be opened): nothing to read.
      if (c.needsSession) continue;
      const reader = new TestClient(url, { timeoutMs: this.options.timeoutMs });
      for (const [k, v] of c.http.cookies) reader.cookies.set(k, v);
      let cart: { items?: Array<{ productId: string; quantity: number }> } | undefined;
      try {
        const r = await reader.request('GET', '/api/session');
        if (r.status !== 200) result.unreadable.push({ client: c.index, status: r.status, reason: r.text.slice(0, 200) });
        else if (r.headers['set-cookie']?.some((l) => /^(__Host-)?sid=/.test(l))) {
          result.unreadable.push({ client: c.index, status: r.status, reason: 'the session did not come back: a new session cookie was issued' });
        } else cart = r.body.cart;
      } catch (err) {
        result.unreadable.push({ client: c.index, status: 'error', reason: (err as Error).message });
      } finally {
        reader.close();
      }
      if (!cart) continue;
      const found = new Map((cart.items ?? []).map((i) => [i.productId, i.quantity]));
      for (const [productId, acked] of c.acked) {
        const got = found.get(productId) ?? 0;
        if (got < acked) result.lost.push({ client: c.index, productId, acked, found: got });
      }
      for (const [productId, got] of found) {
        const max = (c.acked.get(productId) ?? 0) + (c.unknown.get(productId) ?? 0);
        if (got > max) result.phantom.push({ client: c.index, productId, found: got, max });
      }
    }
    return result;
  }

  close(): void {
    for (const c of this.clients) c.http.close();
  }
}

/**
 * For a fault at `at`: the clients it touched (a failed request ending after `at`), and for each the time
 * from `at` to its first acknowledged request that started after its last failure.
 */
export function recoveryAfter(load: CartLoad, at: number): { affected: number; recoveryMs: number[] } {
  const recoveryMs: number[] = [];
  let affected = 0;
  for (const c of load.clients) {
    const failures = c.ops.filter((o) => o.outcome !== 'ok' && o.endedAt >= at);
    if (failures.length === 0) continue;
    affected++;
    const firstFailure = failures[0]!;
    const next = c.ops.find((o) => o.outcome === 'ok' && o.startedAt >= firstFailure.endedAt);
    if (next) recoveryMs.push(next.endedAt - at);
  }
  return { affected, recoveryMs: recoveryMs.sort((a, b) => a - b) };
}

/** Whether a failed op is what a proxy gives for a node that died: a 502, 503 or 504, or a cut connection. */
export function refusedByProxy(o: OpRecord): boolean {
  return o.outcome === 'conn-error' || (o.outcome === 'http-error' && (o.status === 502 || o.status === 503 || o.status === 504));
}

/** The failed ops counted by kind, for a diagnostic: "conn-error: 5, 503: 4", or "none". */
export function failureKinds(failed: readonly OpRecord[]): string {
  const counts = new Map<string | number, number>();
  for (const o of failed) counts.set(o.status ?? o.outcome, (counts.get(o.status ?? o.outcome) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${kind}: ${n}`).join(', ') || 'none';
}

/** Asserts the checker found nothing lost, phantom, unreadable or resurrected, and that it checked logouts and adds. */
export function assertNothingLost(r: CheckResult): void {
  assert.deepEqual(r.unreadable, [], 'every session is readable and still the same session');
  assert.deepEqual(r.lost, [], 'no acknowledged add is missing');
  assert.deepEqual(r.phantom, [], 'no unit beyond what was sent');
  assert.deepEqual(r.resurrected, [], 'no acknowledged logout undone');
  assert.ok(r.logouts > 0, 'acknowledged logouts were checked');
  assert.ok(r.acknowledged > 0);
}
