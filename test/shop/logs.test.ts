/**
 * The shop's log: JSON lines (pino) with an audit record for each account event, one record per
 * request at `debug`, and nothing that opens a session or an account in any of them (SECURITY.md S6,
 * S36): no session ID or signature, no CSRF token, no password (also one typed into the username
 * field), no card number. In-process shops, SQLite stores.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { ADMIN_PASSWORD, ShopClient, startTestShop, uniqueName } from '../helpers/shop.js';
import type { TestShop } from '../helpers/shop.js';

interface LogRecord {
  level: string;
  time: string;
  node: string;
  pid: number;
  msg: string;
  event?: string;
  session?: string | null;
  user?: string | null;
  [field: string]: unknown;
}

const records = (t: TestShop, from = 0): LogRecord[] => t.logs.slice(from).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogRecord);

describe('shop log at SHOP_LOG_LEVEL=debug', () => {
  let t: TestShop;
  before(async () => {
    t = await startTestShop({ SHOP_LOG_LEVEL: 'debug' });
  });
  after(async () => {
    await t?.stop();
  });

  it('log when an account lives through login, checkout, a password change, disablement and deletion then each step has its audit record and no secret appears', async () => {
    const secrets = new Set<string>();
    const keep = (c: ShopClient): void => {
      for (const v of c.cookies.values()) for (const part of v.split('.')) secrets.add(part);
      if (c.csrf) secrets.add(c.csrf);
    };
    const username = uniqueName('audit');
    const [first, second] = ['first password 1843', 'second password 1822'];
    const card = '4242 4242 4242 4242';
    const typedPassword = 'my-secret-typed-as-name';
    for (const s of [first, second, card, card.replace(/ /g, ''), typedPassword, ADMIN_PASSWORD]) secrets.add(s);

    const laptop = new ShopClient(t.url);
    await laptop.add('camp-mug', 1);
    keep(laptop);
    assert.equal((await laptop.register(username, first)).status, 201);
    keep(laptop);
    const userId = JSON.parse(t.logs.filter((l) => l.includes('"auth.register"')).at(-1)!).user as string;

    const phone = new ShopClient(t.url);
    await phone.session();
    keep(phone);
    assert.equal((await phone.login(username, 'not the password')).status, 401);
    assert.equal((await phone.login(typedPassword, first)).status, 401);
    assert.equal((await phone.login(username, first)).status, 200);
    keep(phone);

    await laptop.post('/api/checkout/shipping', { name: 'Ada Lovelace', address: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'United Kingdom' });
    await laptop.post('/api/checkout/payment', { cardNumber: card, expiry: '12/39' });
    assert.equal((await laptop.post('/api/checkout/confirm')).status, 201);
    assert.equal((await laptop.post('/api/cart/items', { productId: 'camp-mug' }, { headers: { 'x-csrf-token': 'forged-token-value-000' }, csrf: false })).status, 403);
    secrets.add('forged-token-value-000');
    assert.equal((await laptop.post('/api/me/password', { currentPassword: first, newPassword: second })).status, 200);
    keep(laptop);
    assert.equal((await laptop.post('/api/auth/logout')).status, 200);

    const admin = new ShopClient(t.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    keep(admin);
    assert.equal((await admin.post(`/api/admin/users/${username}/disable`)).status, 200);
    const tablet = new ShopClient(t.url);
    await tablet.session();
    assert.equal((await tablet.login(username, second)).status, 403);
    assert.equal((await admin.post(`/api/admin/users/${username}/enable`)).status, 200);
    assert.equal((await tablet.login(username, second)).status, 200);
    keep(tablet);
    assert.equal((await tablet.request('DELETE', '/api/me', { json: { password: second } })).status, 200);

    const all = records(t);
    assert.ok(all.length > 20);
    for (const r of all) {
      assert.equal(r.node, 'test-node');
      assert.ok(Math.abs(Date.parse(r.time) - Date.now()) < 60_000, `an ISO time: ${r.time}`);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(r.level), r.level);
      assert.equal(typeof r.msg, 'string');
    }
    const mine = all.filter((r) => r.event !== undefined && (r.user === userId || (r.event === 'auth.login_failed' && r.user === null)));
    assert.deepEqual(mine.map((r) => [r.event, r.reason ?? null]), [
      ['auth.register', null],
      ['auth.login_failed', 'credentials'],
      ['auth.login_failed', 'credentials'],
      ['auth.login', null],
      ['account.password_changed', null],
      ['auth.logout', null],
      ['admin.user_disabled', null],
      ['auth.login_failed', 'disabled'],
      ['admin.user_enabled', null],
      ['auth.login', null],
      ['account.deleted', null],
    ]);
    assert.equal(mine[1]!.user, userId, 'a wrong password for a known name names the account');
    assert.equal(mine[2]!.user, null, 'an unknown name is not written down');
    assert.equal(mine.find((r) => r.event === 'account.password_changed')!.endedSessions, 1);
    for (const r of mine) assert.match(String(r.session), /^[A-Za-z0-9_-]{16,64}$/, `${r.event} names its session by handle`);

    const requests = all.filter((r) => r.msg === 'request');
    assert.ok(requests.some((r) => r.method === 'POST' && r.route === '/api/checkout/confirm' && r.status === 201));
    assert.ok(requests.some((r) => r.route === '/api/cart/items' && r.status === 403));
    assert.ok(requests.every((r) => typeof r.ms === 'number' && !('path' in r)));

    const metrics = (await admin.get('/metrics')).text;
    const count = (event: string): number => Number(new RegExp(`^shop_auth_events_total\\{[^}]*event="${event.replace('.', '\\.')}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    assert.equal(count('auth.login_failed'), 3, 'each audit event is counted too');
    assert.equal(count('account.deleted'), 1);

    const text = t.logs.join('\n');
    for (const s of secrets) assert.ok(!text.includes(s), `the log holds a secret (${s.slice(0, 4)}…)`);
  });

  it('request records when an admin looks a user up by name then name the route, never the path with the username; a request that matches no route names none', async () => {
    const username = uniqueName('named');
    assert.equal((await new ShopClient(t.url).register(username)).status, 201);
    const admin = new ShopClient(t.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    const from = t.logs.length;
    assert.equal((await admin.get(`/api/admin/users/${username}`)).status, 200);
    assert.equal((await admin.post(`/api/admin/users/${username}/sessions/end`)).status, 200);
    // A trailing slash matches no route: the path alone would name the user.
    assert.equal((await admin.get(`/api/admin/users/${username}/`)).status, 404);
    assert.equal((await admin.get(`/api/no-such-route/${username}?token=query-secret-000`)).status, 404);
    // The record is written as the response finishes, which can be after the client has read it.
    let requests: LogRecord[] = [];
    for (let i = 0; i < 100 && requests.length < 4; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      requests = records(t, from).filter((r) => r.msg === 'request');
    }
    assert.deepEqual(requests.map((r) => [r.method, r.route, r.status]), [
      ['GET', '/api/admin/users/:username', 200],
      ['POST', '/api/admin/users/:username/sessions/end', 200],
      ['GET', null, 404],
      ['GET', null, 404],
    ]);
    const text = t.logs.slice(from).join('\n');
    assert.ok(!text.includes(username), 'no log line names the user');
    assert.ok(!text.includes('query-secret-000'), 'no query string is logged');
  });

  it('log when the shop\'s error handler itself fails then Fastify\'s fallback line names the route, not the URL with its username and query', async (ctx) => {
    const username = uniqueName('fell');
    const client = new ShopClient(t.url);
    assert.equal((await client.register(username)).status, 201);
    const tether = t.shop.tether as { abandon(s: unknown): void };
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kept only to be put back on the same object once the stub below is done
    const abandon = tether.abandon;
    ctx.after(() => void (tether.abandon = abandon));
    // The Tether plugin's onError hook calls it first, then the shop's error handler.
    tether.abandon = () => {
      throw new Error('abandon failed');
    };
    const from = t.logs.length;
    const r = await client.get(`/api/admin/users/${username}?token=query-secret-000`);
    tether.abandon = abandon;
    assert.equal(r.status, 500);
    let failed: LogRecord | undefined;
    for (let i = 0; i < 100 && !failed; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      failed = records(t, from).find((r) => r.req !== undefined);
    }
    assert.deepEqual(failed!.req, { method: 'GET', route: '/api/admin/users/:username' });
    const text = t.logs.slice(from).join('\n');
    assert.ok(!text.includes(username), 'no log line names the user');
    assert.ok(!text.includes('query-secret-000'), 'no query string is logged');
  });
});

describe('shop log at the default level (info)', () => {
  let t: TestShop;
  before(async () => {
    t = await startTestShop();
  });
  after(async () => {
    await t?.stop();
  });

  it('log when a logout\'s commit fails then no auth.logout record is written, and the retried logout writes one', async () => {
    const c = new ShopClient(t.url);
    await c.register(uniqueName('leaving'));
    // Under renewal a logout ends the record by compare-and-set: a set.
    const store = t.shop.tether.store as { set: (...args: unknown[]) => Promise<unknown> };
    const had = Object.getOwnPropertyDescriptor(store, 'set');
    const from = t.logs.length;
    store.set = () => Promise.reject(new Error('disk I/O error'));
    try {
      const failed = await c.post('/api/auth/logout');
      assert.equal(failed.status, 503, failed.text);
    } finally {
      if (had) Object.defineProperty(store, 'set', had);
      else delete (store as { set?: unknown }).set;
    }
    assert.deepEqual(records(t, from).filter((x) => x.event === 'auth.logout'), [], 'the session was not ended');
    assert.equal((await c.post('/api/auth/logout')).status, 200);
    assert.deepEqual(records(t, from).filter((x) => x.event === 'auth.logout').length, 1);
  });

  it('log when the session store fails under requests then each 503 the session layer answers has an error record, once, naming the route', async () => {
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 1);
    const store = t.shop.tether.store as { get: (...args: unknown[]) => Promise<unknown>; set: (...args: unknown[]) => Promise<unknown> };
    const { get, set } = store;
    const from = t.logs.length;
    try {
      // Loading the session fails, then storing its change: the plugin answers both itself.
      store.get = () => Promise.reject(new Error('disk I/O error'));
      assert.equal((await c.get('/api/cart')).status, 503);
      store.get = get;
      store.set = () => Promise.reject(new Error('disk I/O error'));
      assert.equal((await c.post('/api/cart/items', { productId: 'camp-mug', quantity: 1 })).status, 503);
    } finally {
      Object.assign(store, { get, set });
    }
    const failed = records(t, from).filter((x) => x.level === 'error');
    assert.deepEqual(failed.map((x) => [x.msg, x.method, x.route, x.status]), [
      ['request failed', 'GET', '/api/cart', 503],
      ['request failed', 'POST', '/api/cart/items', 503],
    ]);
  });

  it('log when requests are served then only audit records are written, one per account event', async () => {
    const from = t.logs.length;
    const c = new ShopClient(t.url);
    await c.get('/api/products');
    await c.add('camp-mug', 1);
    await c.register(uniqueName('quiet'));
    assert.equal((await c.get('/api/no-such-route?token=query-secret-000')).status, 404);
    const r = records(t, from);
    assert.ok(!t.logs.join('\n').includes('query-secret-000'), 'no query string is logged');
    assert.deepEqual(r.map((x) => x.event), ['auth.register']);
    assert.equal(r[0]!.level, 'info');
  });
});

describe('shop log: audit events in the README', () => {
  it('audit events when the shop can write one then the README\'s Logs section names it', async () => {
    const root = new URL('../../', import.meta.url);
    const sources = readdirSync(new URL('apps/shop/', root), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const events = new Set<string>();
    for (const f of sources) {
      for (const m of readFileSync(new URL(`apps/shop/${f}`, root), 'utf8').matchAll(/audit\(ctx, req, '([a-z_.]+)'/g)) events.add(m[1]!);
    }
    assert.ok(events.size >= 10, `found ${[...events].join(', ')}`);
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const logs = readme.slice(readme.indexOf('### Logs'), readme.indexOf('### HTTP API'));
    assert.deepEqual([...events].filter((e) => !logs.includes(`\`${e}\``)).sort(), []);
  });
});
