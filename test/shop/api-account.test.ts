/**
 * The shop's public HTTP contract, part 2: registration, login and logout (regeneration, cart merge,
 * preferences), the user's sessions, checkout, orders, the admin API, and disabling and deleting
 * accounts. In-process shop, SQLite stores.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_PASSWORD, ShopClient, assertError, rawRequest, startTestShop, uniqueName } from '../helpers/shop.js';
import type { Reply, TestShop } from '../helpers/shop.js';
import { LAST_ORDER_SHOWN_MS } from '../../apps/shop/routes/checkout.js';
import { COMPLETING_HOLD_MS } from 'tether/flow';

let t: TestShop;
before(async () => {
  // Every client here is a new session from 127.0.0.1: on a fast machine the file makes more than the
  // default 120 a minute. The limit itself is tested in api.test.ts.
  // Behind a proxy on loopback: a request may name its client with X-Forwarded-For (the address cases).
  t = await startTestShop({ SHOP_NEW_SESSIONS_PER_MINUTE: '100000', SHOP_TRUST_PROXY: '127.0.0.1' });
});
after(async () => {
  await t?.stop();
});


/** A login undone after its commit answers with the session cookie expired, never with a cookie naming the ended session. */
function assertCookieOnlyExpired(r: Reply): void {
  const cookies = [r.headers['set-cookie'] ?? []].flat();
  assert.ok(cookies.every((c) => /^sid=;.*Max-Age=0/i.test(c)), `a refused login set ${cookies.join(' | ')}`);
}

const SHIPPING = { name: 'Ada Lovelace', address: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'United Kingdom' };
const CARD = { cardNumber: '4242 4242 4242 4242', expiry: '12/39' };

/** A user whose checkout (a notebook) is at review on device `a`, with the run's ID, signed in on device `b` too. */
async function atReviewOnTwoDevices(): Promise<{ a: ShopClient; b: ShopClient; run: string; userId: string }> {
  const { client: a, username } = await newUser();
  await a.add('notebook', 1);
  await a.post('/api/checkout/shipping', SHIPPING);
  const run = (await a.post('/api/checkout/payment', CARD)).body.runId as string;
  const b = new ShopClient(t.url);
  assert.equal((await b.login(username)).status, 200);
  return { a, b, run, userId: (await t.shop.db.findUserByName(username))!.id };
}

/**
 * Runs `act`; the first write to `userId`'s context that it makes (through `tether.users.update`) first
 * waits for `meanwhile`, what another device does between that request's read and its write.
 */
async function beforeNextUpdate<R>(userId: string, meanwhile: () => Promise<void>, act: () => Promise<R>): Promise<R> {
  const users = t.shop.tether.users as unknown as { update: (...args: unknown[]) => Promise<unknown> };
  const update = users.update;
  users.update = async (...args: unknown[]) => {
    if (args[0] === userId) {
      users.update = update;
      await meanwhile();
    }
    return update.apply(users, args);
  };
  try {
    return await act();
  } finally {
    users.update = update;
  }
}

async function newUser(): Promise<{ client: ShopClient; username: string }> {
  const client = new ShopClient(t.url);
  const username = uniqueName();
  assert.equal((await client.register(username)).status, 201);
  return { client, username };
}

describe('shop api: registration, login, logout', () => {
  it('register when valid then 201, logged in, with a new session ID and CSRF token and the anonymous cart kept', async () => {
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 2);
    const [cookieBefore, tokenBefore] = [c.cookieHeader, c.csrf];
    const username = uniqueName();
    const r = await c.post('/api/auth/register', { username, password: 'correct horse battery' });
    assert.equal(r.status, 201);
    assert.equal(r.body.authenticated, true);
    assert.deepEqual(r.body.user, { username });
    assert.equal(r.body.cart.items[0].quantity, 2);
    assert.notEqual(c.cookieHeader, cookieBefore, 'the session ID was regenerated');
    assert.notEqual(r.body.csrfToken, tokenBefore, 'the CSRF token was regenerated');
    assert.equal(r.headers['cache-control'], 'no-store');
    assertError(await c.post('/api/cart/items', { productId: 'camp-mug' }, { headers: { 'x-csrf-token': tokenBefore! }, csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    const old = new ShopClient(t.url);
    old.cookies.set(...(cookieBefore.split('=') as [string, string]));
    assert.equal((await old.get('/api/session')).body.authenticated, false, 'the pre-login session ID no longer works');
  });

  it('register when the input is bad then 400 VALIDATION_FAILED; a taken name (any case) 409 USERNAME_TAKEN', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    for (const body of [{ username: 'ab', password: 'long enough' }, { username: 'a'.repeat(33), password: 'long enough' }, { username: 'bad name', password: 'long enough' },
      { username: 'good_name', password: 'short' }, { username: 'good_name', password: 'x'.repeat(129) }, { username: 'good_name' }, { username: 5, password: 'long enough' }]) {
      assertError(await c.post('/api/auth/register', body), 400, 'VALIDATION_FAILED');
    }
    const { username } = await newUser();
    assertError(await c.post('/api/auth/register', { username: username.toUpperCase(), password: 'another password' }), 409, 'USERNAME_TAKEN');
    assert.equal((await c.session()).body.authenticated, false);
  });

  it('login when the credentials are wrong then 401 INVALID_CREDENTIALS', async () => {
    const { username } = await newUser();
    const c = new ShopClient(t.url);
    assertError(await c.login(username, 'wrong password'), 401, 'INVALID_CREDENTIALS');
    assertError(await c.login('no_such_user_here', 'whatever pw'), 401, 'INVALID_CREDENTIALS');
    assertError(await c.post('/api/auth/login', { username }), 400, 'VALIDATION_FAILED');
    assert.equal((await c.session()).body.authenticated, false);
  });

  it('login and register when posted without the session\'s token, or from another origin, then 403 and nobody is signed in (login CSRF)', async () => {
    const { username } = await newUser();
    const visitor = new ShopClient(t.url);
    await visitor.session();
    const body = { username, password: 'correct horse battery' };
    assertError(await visitor.request('POST', '/api/auth/login', { json: body, csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    assertError(await visitor.request('POST', '/api/auth/login', { json: body, headers: { origin: 'https://evil.example' } }), 403, 'ORIGIN_MISMATCH');
    assertError(await visitor.request('POST', '/api/auth/login', { json: body, headers: { 'sec-fetch-site': 'cross-site' } }), 403, 'ORIGIN_MISMATCH');
    assertError(await visitor.request('POST', '/api/auth/register', { json: { username: uniqueName('csrf'), password: 'correct horse battery' }, csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    assert.equal((await visitor.get('/api/session')).body.authenticated, false);
    assert.equal((await visitor.login(username)).status, 200, 'with its token, from its own page');
  });

  it('login when "keep me signed in" is asked then the cookie is persistent and the session listed as remembered; without it a browser-session cookie; a non-boolean 400', async () => {
    const { username } = await newUser();
    const kept = new ShopClient(t.url);
    await kept.session();
    const r = await kept.post('/api/auth/login', { username, password: 'correct horse battery', remember: true });
    assert.equal(r.status, 200);
    const cookie = [r.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('sid='));
    assert.match(cookie ?? '', /; Max-Age=1209600;/, 'persistent for 14 days');
    const plain = new ShopClient(t.url);
    const p = await plain.login(username);
    assert.equal(p.status, 200);
    assert.doesNotMatch([p.headers['set-cookie'] ?? []].flat().join('\n'), /Max-Age=\d*[1-9]/, 'no lifetime: gone when the browser closes');
    const list = (await kept.get('/api/me/sessions')).body as Array<{ remembered: boolean; current: boolean }>;
    // The registering client's session, the plain login's, and this one.
    assert.deepEqual(list.map((x) => [x.current, x.remembered]).sort(), [[false, false], [false, false], [true, true]]);
    for (const remember of ['yes', 1, null]) {
      const c = new ShopClient(t.url);
      await c.session();
      assertError(await c.post('/api/auth/login', { username, password: 'correct horse battery', remember }), 400, 'VALIDATION_FAILED');
      assertError(await c.post('/api/auth/register', { username: uniqueName(), password: 'correct horse battery', remember }), 400, 'VALIDATION_FAILED');
    }
  });

  it('login when the body has a field it does not know (a misspelt "rememberMe") then 400 VALIDATION_FAILED and nobody is signed in, as at register', async () => {
    const { username } = await newUser();
    const c = new ShopClient(t.url);
    await c.session();
    const r = await c.post('/api/auth/login', { username, password: 'correct horse battery', rememberMe: true });
    assertError(r, 400, 'VALIDATION_FAILED');
    assert.equal(r.body.error.message, 'unknown field "rememberMe"');
    assert.equal(r.headers['set-cookie'], undefined, 'no new session cookie');
    assert.equal((await c.get('/api/session')).body.authenticated, false);
    assertError(await c.post('/api/auth/register', { username: uniqueName(), password: 'correct horse battery', rememberMe: true }), 400, 'VALIDATION_FAILED');
    assert.equal((await c.post('/api/auth/login', { username, password: 'correct horse battery', remember: true })).status, 200);
  });

  it('login when the visitor has an anonymous cart then merges it into the saved cart by summing, capped at 99', async () => {
    const { client: device1, username } = await newUser();
    await device1.add('camp-mug', 2);
    await device1.add('headlamp', 60);
    const device2 = new ShopClient(t.url);
    await device2.add('camp-mug', 3);
    await device2.add('notebook', 1);
    await device2.add('headlamp', 60);
    const tokenBefore = device2.csrf;
    const r = await device2.login(username);
    assert.equal(r.status, 200);
    assert.notEqual(r.body.csrfToken, tokenBefore);
    const qty = Object.fromEntries(r.body.cart.items.map((i: { productId: string; quantity: number }) => [i.productId, i.quantity]));
    assert.deepEqual(qty, { 'camp-mug': 5, headlamp: 99, notebook: 1 });
    const seenByDevice1 = await device1.get('/api/cart');
    assert.equal(seenByDevice1.body.count, 105, 'both devices share the saved cart');
  });

  it('login when the user saved preferences then they apply; without saved ones the anonymous ones are kept and saved', async () => {
    const anon = new ShopClient(t.url);
    await anon.session();
    await anon.request('PUT', '/api/preferences', { json: { theme: 'dark', currency: 'EUR' } });
    const username = uniqueName();
    const reg = await anon.post('/api/auth/register', { username, password: 'correct horse battery' });
    assert.deepEqual(reg.body.preferences, { theme: 'dark', currency: 'EUR' }, 'anonymous preferences kept');
    const other = new ShopClient(t.url);
    await other.session();
    await other.request('PUT', '/api/preferences', { json: { theme: 'light', currency: 'GBP' } });
    const login = await other.login(username);
    assert.deepEqual(login.body.preferences, { theme: 'dark', currency: 'EUR' }, 'saved preferences win');
    await other.request('PUT', '/api/preferences', { json: { currency: 'USD' } });
    assert.deepEqual((await anon.session()).body.preferences, { theme: 'dark', currency: 'USD' }, 'kept in the user context');
  });

  it('logout when asked then the session is destroyed server-side and the browser told to drop cookies', async () => {
    const { client } = await newUser();
    const cookie = client.cookieHeader;
    const r = await client.post('/api/auth/logout');
    assert.equal(r.status, 200);
    assert.equal(r.headers['clear-site-data'], '"cookies"');
    assert.match(String(r.headers['set-cookie']), /Expires=Thu, 01 Jan 1970|Max-Age=0/i);
    const replay = new ShopClient(t.url);
    replay.cookies.set(...(cookie.split('=') as [string, string]));
    const s = await replay.get('/api/session');
    assert.equal(s.body.authenticated, false, 'the old cookie names no session any more');
  });
});

describe('shop api: my sessions', () => {
  it('sessions when anonymous then 401 AUTH_REQUIRED', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    assertError(await c.get('/api/me/sessions'), 401, 'AUTH_REQUIRED');
    assertError(await c.request('DELETE', '/api/me/sessions/others'), 401, 'AUTH_REQUIRED');
    assertError(await c.request('DELETE', '/api/me/sessions/abc'), 401, 'AUTH_REQUIRED');
    // Orders are not the account's alone: a visitor gets those placed as a guest, here none.
    const orders = await c.get('/api/orders');
    assert.equal(orders.status, 200);
    assert.deepEqual(orders.body, []);
  });

  it('sessions when listed then show each device with an opaque id and mark the current one; one can be ended', async () => {
    const { client: a, username } = await newUser();
    const b = new ShopClient(t.url, 'device-b');
    await b.login(username);
    const list = (await a.get('/api/me/sessions')).body as Array<{ id: string; current: boolean; userAgent: string; createdAt: string; lastSeenAt: string; expiresAt: string }>;
    assert.equal(list.length, 2);
    assert.equal(list.filter((s) => s.current).length, 1);
    assert.ok(list.every((s) => !a.cookieHeader.includes(s.id) && !b.cookieHeader.includes(s.id)), 'ids are not cookie values');
    assert.ok(list.every((s) => !Number.isNaN(Date.parse(s.createdAt)) && !Number.isNaN(Date.parse(s.lastSeenAt))));
    // The shop's idle timeout is 30 minutes: each session signs out half an hour after it was last seen, unless used.
    assert.ok(list.every((s) => Date.parse(s.expiresAt) - Date.parse(s.lastSeenAt) === 30 * 60_000), JSON.stringify(list.map((s) => [s.lastSeenAt, s.expiresAt])));
    const other = list.find((s) => !s.current)!;
    assert.equal(other.userAgent, 'device-b');
    assertError(await a.request('DELETE', '/api/me/sessions/AAAAAAAAAAAAAAAAAAAAAA'), 404, 'SESSION_NOT_FOUND');
    assert.deepEqual((await a.request('DELETE', `/api/me/sessions/${other.id}`)).body, { ended: 1 });
    assert.equal((await b.get('/api/session')).body.authenticated, false);
    assert.equal((await a.get('/api/session')).body.authenticated, true);
  });

  it('session when presented by another browser then the shop logs it by handle, never by ID (S33)', async () => {
    const { client } = await newUser();
    const before = t.logs.length;
    const thief = new ShopClient(t.url, 'another-browser/1.0');
    for (const [k, v] of client.cookies) thief.cookies.set(k, v);
    assert.equal((await thief.get('/api/session')).body.authenticated, true, 'by default the request goes on (userAgentChange: report)');
    const lines = t.logs.slice(before).filter((l) => l.includes('"security.session_anomaly"'));
    assert.equal(lines.length, 1, t.logs.slice(before).join('\n'));
    const record = JSON.parse(lines[0]!);
    const handle = ((await client.get('/api/me/sessions')).body as Array<{ id: string; current: boolean }>).find((s) => s.current)!.id;
    assert.equal(record.level, 'warn');
    assert.equal(record.session, handle);
    assert.match(record.user, /^[0-9a-f-]{36}$/);
    assert.match(record.msg, /presented by another browser/);
    const cookieValue = [...client.cookies.values()].join(' ');
    for (const v of cookieValue.split(/[ .]/)) assert.ok(!lines[0]!.includes(v), 'no cookie part in the log');
  });

  it('session when presented from another network then the shop logs it by handle, lists the network, and the request goes on (S33, TETHER_ADDRESS_CHANGE report)', async () => {
    const { client } = await newUser();
    const mine = async (): Promise<{ id: string; network: string | null }> =>
      ((await client.get('/api/me/sessions')).body as Array<{ id: string; current: boolean; network: string | null }>).find((s) => s.current)!;
    assert.equal((await mine()).network, '127.0.0.0/24', 'the network it signed up from');
    const before = t.logs.length;
    const from = (address: string) => rawRequest(`${t.url}/api/session`, 'GET', { cookie: client.cookieHeader, 'user-agent': client.userAgent, 'x-forwarded-for': address });
    assert.equal(((await from('198.51.100.77')).body as { authenticated: boolean }).authenticated, true);
    assert.equal(((await from('198.51.100.78')).body as { authenticated: boolean }).authenticated, true);
    const lines = t.logs.slice(before).filter((l) => l.includes('"security.session_anomaly"'));
    assert.equal(lines.length, 1, `one line, the second request being from the same network: ${t.logs.slice(before).join('\n')}`);
    const record = JSON.parse(lines[0]!);
    assert.equal(record.level, 'warn');
    assert.equal(record.reason, 'address');
    assert.match(record.msg, /from another network/);
    assert.ok(!lines[0]!.includes('198.51.100'), 'no address in the log');
    // Listed from the first network again (which is itself a move back, reported after this answer).
    const listed = await mine();
    assert.equal(record.session, listed.id);
    assert.equal(listed.network, '198.51.100.0/24', 'the new network is stored, and listed');
  });

  it('session cookie when presented again after its logout then the shop logs the reuse as a warning by handle, never by ID (S33)', async () => {
    const { client } = await newUser();
    const handle = ((await client.get('/api/me/sessions')).body as Array<{ id: string; current: boolean }>).find((s) => s.current)!.id;
    const copy = new ShopClient(t.url);
    for (const [k, v] of client.cookies) copy.cookies.set(k, v);
    assert.equal((await client.request('POST', '/api/auth/logout')).status, 200);
    const before = t.logs.length;
    assert.equal((await copy.get('/api/session')).body.authenticated, false, 'the copy opens nothing');
    const lines = t.logs.slice(before).filter((l) => l.includes('"security.session_reused"'));
    assert.equal(lines.length, 1, t.logs.slice(before).join('\n'));
    const record = JSON.parse(lines[0]!);
    assert.equal(record.level, 'warn');
    assert.equal(record.session, handle);
    assert.equal(record.ended, 'logout');
    assert.match(record.msg, /ended \(logout\) was presented again/);
    for (const v of [...copy.cookies.values()].join(' ').split(/[ .]/)) assert.ok(!lines[0]!.includes(v), 'no cookie part in the log');
  });

  it('sessions when "others" are ended then every other device is logged out and this one stays', async () => {
    const { client: a, username } = await newUser();
    const others = [new ShopClient(t.url), new ShopClient(t.url)];
    for (const o of others) await o.login(username);
    const r = await a.request('DELETE', '/api/me/sessions/others');
    assert.deepEqual(r.body, { ended: 2 });
    for (const o of others) assert.equal((await o.get('/api/session')).body.authenticated, false);
    assert.equal((await a.get('/api/me/sessions')).body.length, 1);
  });
});

describe('shop api: ending sessions needs a recent login (SHOP_REAUTH_WINDOW=0: the password every time)', () => {
  let strict: TestShop;
  before(async () => {
    strict = await startTestShop({ SHOP_REAUTH_WINDOW: '0', TETHER_STORE: 'memory' });
  });
  after(async () => {
    await strict?.stop();
  });

  it('sessions when ended without the password then 401 REAUTH_REQUIRED; a wrong one 401 INVALID_CREDENTIALS; the right one ends them and renews this device\'s ID', async () => {
    const a = new ShopClient(strict.url);
    const username = uniqueName();
    assert.equal((await a.register(username)).status, 201);
    const b = new ShopClient(strict.url, 'device-b');
    const c = new ShopClient(strict.url, 'device-c');
    await b.login(username);
    await c.login(username);
    const idOf = async (agent: string) => ((await a.get('/api/me/sessions')).body as Array<{ id: string; userAgent: string }>).find((s) => s.userAgent === agent)!.id;
    const bId = await idOf('device-b');
    assertError(await a.request('DELETE', '/api/me/sessions/others'), 401, 'REAUTH_REQUIRED');
    assertError(await a.request('DELETE', `/api/me/sessions/${bId}`), 401, 'REAUTH_REQUIRED');
    assertError(await a.request('DELETE', '/api/me/sessions/others', { json: { password: 'not it at all' } }), 401, 'INVALID_CREDENTIALS');
    assertError(await a.request('DELETE', '/api/me/sessions/others', { json: { password: 'correct horse battery', extra: 1 } }), 400, 'VALIDATION_FAILED');
    assert.equal((await b.get('/api/session')).body.authenticated, true, 'nothing ended by the refused calls');
    const copy = new ShopClient(strict.url);
    for (const [name, value] of a.cookies) copy.cookies.set(name, value);
    const before = a.cookieHeader;
    assert.deepEqual((await a.request('DELETE', `/api/me/sessions/${bId}`, { json: { password: 'correct horse battery' } })).body, { ended: 1 });
    assert.notEqual(a.cookieHeader, before, 'the step-up with the password renewed the session ID (ASVS 5 7.2.4)');
    assert.equal((await copy.get('/api/session')).body.authenticated, false, 'a copy of the cookie taken before the step-up is signed out');
    assert.equal((await b.get('/api/session')).body.authenticated, false);
    assert.deepEqual((await a.request('DELETE', '/api/me/sessions/others', { json: { password: 'correct horse battery' } })).body, { ended: 1 });
    assert.equal((await c.get('/api/session')).body.authenticated, false);
    assert.equal((await a.get('/api/session')).body.authenticated, true);
  });

  it('checkout confirm when signed in then 401 REAUTH_REQUIRED without the password, INVALID_CREDENTIALS with a wrong one (no order either way), and the right one places the order', async () => {
    const a = new ShopClient(strict.url);
    assert.equal((await a.register(uniqueName())).status, 201);
    await a.add('headphones', 1);
    await a.post('/api/checkout/shipping', SHIPPING);
    const view = (await a.post('/api/checkout/payment', CARD)).body as { step: string; runId: string };
    assert.equal(view.step, 'review');
    const key = `checkout:${view.runId}`;
    assertError(await a.post('/api/checkout/confirm', { runId: view.runId }), 401, 'REAUTH_REQUIRED');
    assertError(await a.post('/api/checkout/confirm', { runId: view.runId, password: 'not it at all' }), 401, 'INVALID_CREDENTIALS');
    assertError(await a.post('/api/checkout/confirm', { runId: view.runId, password: 42 }), 400, 'VALIDATION_FAILED');
    assert.equal(await strict.shop.db.findOrderByKey(key), null, 'no order placed by the refused confirms');
    assert.equal((await a.get('/api/checkout')).body.step, 'review', 'the checkout waits at review');
    const placed = await a.post('/api/checkout/confirm', { runId: view.runId, password: 'correct horse battery' });
    assert.equal(placed.status, 201);
    assert.equal((await strict.shop.db.findOrderByKey(key))?.id, placed.body.orderId);
    // A repeat of the placed run answers its order without asking again.
    assert.equal((await a.post('/api/checkout/confirm', { runId: view.runId })).body.orderId, placed.body.orderId);
  });

  it('guest confirm when it sends a password then 400 VALIDATION_FAILED, and without one it needs no step-up', async () => {
    const g = new ShopClient(strict.url);
    await g.add('headphones', 1);
    await g.post('/api/checkout/contact', { email: 'guest@example.org' });
    await g.post('/api/checkout/shipping', SHIPPING);
    await g.post('/api/checkout/payment', CARD);
    assertError(await g.post('/api/checkout/confirm', { password: 'anything at all' }), 400, 'VALIDATION_FAILED');
    assert.equal((await g.post('/api/checkout/confirm')).status, 201);
  });
});

describe('shop api: step-up counts from the last sign-in or password typed again (SHOP_REAUTH_WINDOW=2)', () => {
  let windowed: TestShop;
  before(async () => {
    windowed = await startTestShop({ SHOP_REAUTH_WINDOW: '2', TETHER_STORE: 'memory' });
  });
  after(async () => {
    await windowed?.stop();
  });

  it('password when typed again then the actions after it need none until the window passes; a wrong one is refused even within it', async () => {
    const a = new ShopClient(windowed.url);
    const username = uniqueName();
    assert.equal((await a.register(username)).status, 201);
    await a.add('headphones', 1);
    await a.post('/api/checkout/shipping', SHIPPING);
    await a.post('/api/checkout/payment', CARD);
    // Signed in before the password is typed: a sign-in (its password hash) between the two could take a
    // loaded machine past the 2 s window.
    const b = new ShopClient(windowed.url, 'device-b');
    assert.equal((await b.login(username)).status, 200);
    await sleep(2_100);
    assertError(await a.post('/api/checkout/confirm'), 401, 'REAUTH_REQUIRED');
    const placed = await a.post('/api/checkout/confirm', { password: 'correct horse battery' });
    assert.equal(placed.status, 201);
    assert.deepEqual((await a.request('DELETE', '/api/me/sessions/others')).body, { ended: 1 }, 'just confirmed: no password asked');
    assertError(await a.request('DELETE', '/api/me/sessions/others', { json: { password: 'wrong password here' } }), 401, 'INVALID_CREDENTIALS');
    const c = new ShopClient(windowed.url, 'device-c');
    assert.equal((await c.login(username)).status, 200);
    await sleep(2_100);
    assertError(await a.request('DELETE', '/api/me/sessions/others'), 401, 'REAUTH_REQUIRED');
    assert.equal((await c.get('/api/session')).body.authenticated, true, 'nothing ended by the refused call');
    // A password change types the current password: the step-ups right after it ask for nothing.
    const d = new ShopClient(windowed.url, 'device-d');
    assert.equal((await d.login(username)).status, 200);
    assert.equal((await a.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'a brand new secret', logoutOtherSessions: false })).status, 200);
    assert.deepEqual((await a.request('DELETE', '/api/me/sessions/others')).body, { ended: 2 }, 'just typed the password: no step-up asked');
  });
});

describe('shop api: password change', () => {
  it('password when changed then the current password was required, this device gets a new ID and token, the others are logged out, and only the new password logs in', async () => {
    const { client: a, username } = await newUser();
    const b = new ShopClient(t.url, 'device-b');
    await b.login(username);
    assertError(await a.post('/api/me/password', { currentPassword: 'not the password', newPassword: 'a brand new secret' }), 401, 'INVALID_CREDENTIALS');
    assertError(await a.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'short' }), 400, 'VALIDATION_FAILED');
    assertError(await a.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'a brand new secret', logoutOtherSessions: 'yes' }), 400, 'VALIDATION_FAILED');
    assert.equal((await b.get('/api/session')).body.authenticated, true, 'refused changes end nothing');

    const oldCookie = a.cookieHeader;
    const oldCookies = new Map(a.cookies);
    const oldToken = a.csrf;
    const r = await a.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'a brand new secret' });
    assert.equal(r.status, 200);
    assert.equal(r.body.endedSessions, 1);
    assert.equal(r.body.authenticated, true);
    assert.notEqual(a.cookieHeader, oldCookie, 'a new session ID (S19)');
    assert.notEqual(a.csrf, oldToken, 'a new CSRF token');
    assert.equal((await a.get('/api/session')).body.authenticated, true, 'this device stays logged in');
    assert.equal((await b.get('/api/session')).body.authenticated, false, 'the other device is logged out (S29)');
    const replay = new ShopClient(t.url);
    for (const [k, v] of oldCookies) replay.cookies.set(k, v);
    assert.equal((await replay.get('/api/session')).body.authenticated, false, 'the pre-change cookie is dead');

    assertError(await new ShopClient(t.url).login(username), 401, 'INVALID_CREDENTIALS');
    assert.equal((await new ShopClient(t.url).login(username, 'a brand new secret')).status, 200);
  });

  it('password when changed keeping the other sessions then they stay logged in; anonymous callers get 401 AUTH_REQUIRED', async () => {
    const { client: a, username } = await newUser();
    const b = new ShopClient(t.url);
    await b.login(username);
    const r = await a.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'another new secret', logoutOtherSessions: false });
    assert.equal(r.body.endedSessions, 0);
    assert.equal((await b.get('/api/session')).body.authenticated, true);
    const anon = new ShopClient(t.url);
    await anon.session();
    assertError(await anon.post('/api/me/password', { currentPassword: 'x', newPassword: 'whatever it is' }), 401, 'AUTH_REQUIRED');
  });
});

describe('shop api: checkout and orders', () => {
  it('checkout when steps are skipped or back is used at the start then 409 FLOW_STEP_OUT_OF_ORDER', async () => {
    const { client } = await newUser();
    assert.deepEqual((await client.get('/api/checkout')).body, { step: 'shipping', steps: ['shipping', 'payment', 'review'], data: {}, runId: null, lastOrder: null });
    assertError(await client.post('/api/checkout/payment', CARD), 409, 'FLOW_STEP_OUT_OF_ORDER');
    // Too early is what is wrong with these, whatever their input.
    assertError(await client.post('/api/checkout/payment', { cardNumber: '12ab' }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await client.post('/api/checkout/payment', {}), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await client.post('/api/checkout/confirm'), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await client.post('/api/checkout/back'), 409, 'FLOW_STEP_OUT_OF_ORDER');
  });

  it('checkout when the input is bad then 400 VALIDATION_FAILED and the step stays', async () => {
    const { client } = await newUser();
    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, city: '' }), 400, 'VALIDATION_FAILED');
    assertError(await client.post('/api/checkout/shipping', { name: 'x' }), 400, 'VALIDATION_FAILED');
    await client.post('/api/checkout/shipping', SHIPPING);
    for (const card of [{ cardNumber: '4242 4242 4242 4241', expiry: '12/39' }, { cardNumber: '4242424242424242', expiry: '01/20' },
      { cardNumber: '4242424242424242', expiry: '13/30' }, { cardNumber: '12ab', expiry: '12/39' }, { cardNumber: '4242424242424242' }]) {
      assertError(await client.post('/api/checkout/payment', card), 400, 'VALIDATION_FAILED');
    }
    assert.equal((await client.get('/api/checkout')).body.step, 'payment');
  });

  it('checkout when another device of the user changes the cart after the review then confirm naming the reviewed items is 409 CART_CHANGED and places nothing', async () => {
    const { client, username } = await newUser();
    await client.add('camp-mug', 1);
    await client.post('/api/checkout/shipping', SHIPPING);
    const { runId } = (await client.post('/api/checkout/payment', CARD)).body;
    const items = [{ productId: 'camp-mug', quantity: 1 }];
    const phone = new ShopClient(t.url, 'phone');
    assert.equal((await phone.login(username)).status, 200);
    await phone.add('headphones', 1);
    assertError(await client.post('/api/checkout/confirm', { runId, items }), 409, 'CART_CHANGED');
    assert.deepEqual((await client.get('/api/orders')).body, [], 'nothing ordered');
    const placed = await client.post('/api/checkout/confirm', { runId, items: [...items, { productId: 'headphones', quantity: 1 }] });
    assert.equal(placed.status, 201, placed.text);
    assert.deepEqual((await client.get('/api/orders')).body[0].items.map((i: { productId: string }) => i.productId).sort(), ['camp-mug', 'headphones']);
  });

  it('checkout when every step is taken then confirm places the order, empties the cart and resets the flow', async () => {
    const { client } = await newUser();
    const funnel = async (): Promise<number[]> => {
      const text = (await client.get('/metrics')).text;
      return ['tether_flow_steps_total{flow="checkout",step="shipping"', 'tether_flow_steps_total{flow="checkout",step="payment"', 'tether_flow_completed_total{flow="checkout"']
        .map((series) => Number(text.split('\n').find((l) => l.startsWith(series))?.split(' ').pop() ?? 0));
    };
    const before = await funnel();
    assertError(await client.post('/api/checkout/confirm'), 409, 'FLOW_STEP_OUT_OF_ORDER');
    await client.add('camp-mug', 2);
    await client.add('headphones', 1);
    assert.equal((await client.post('/api/checkout/shipping', SHIPPING)).body.step, 'payment');
    const pay = await client.post('/api/checkout/payment', CARD);
    assert.equal(pay.body.step, 'review');
    assert.deepEqual(pay.body.data.payment, { brand: 'Visa', last4: '4242', expiry: '12/39' });
    assert.ok(!JSON.stringify(pay.body).includes('4242424242424242') && !JSON.stringify(pay.body).includes('4242 4242 4242 4242'), 'no full card number kept');
    // Re-posting an earlier step updates it and continues from the step after it.
    const again = await client.post('/api/checkout/shipping', { ...SHIPPING, city: 'Cambridge' });
    assert.equal(again.body.step, 'payment');
    assert.equal(again.body.data.shipping.city, 'Cambridge');
    assert.equal((await client.post('/api/checkout/back')).body.step, 'shipping');
    await client.post('/api/checkout/shipping', { ...SHIPPING, city: 'Cambridge' });
    await client.post('/api/checkout/payment', CARD);
    const confirm = await client.post('/api/checkout/confirm');
    assert.equal(confirm.status, 201);
    assert.match(confirm.body.orderId, /^ord_/);
    assert.equal(confirm.body.total, 2 * 14 + 149);
    assert.deepEqual((await funnel()).map((n, i) => n - before[i]!), [3, 2, 1], '/metrics shows the checkout funnel');
    assert.deepEqual((await client.get('/api/cart')).body, { items: [], count: 0, total: 0 });
    assert.equal((await client.get('/api/checkout')).body.step, 'shipping');
    const orders = (await client.get('/api/orders')).body;
    assert.equal(orders.length, 1);
    assert.equal(orders[0].id, confirm.body.orderId);
    assert.equal(orders[0].shipping.city, 'Cambridge');
    assert.deepEqual(orders[0].payment, { brand: 'Visa', last4: '4242' });
    assert.deepEqual(orders[0].items.map((i: { productId: string; quantity: number }) => [i.productId, i.quantity]), [['camp-mug', 2], ['headphones', 1]]);
  });

  it('confirm when the cart is empty then 409 CART_EMPTY', async () => {
    const { client } = await newUser();
    await client.post('/api/checkout/shipping', SHIPPING);
    await client.post('/api/checkout/payment', CARD);
    assertError(await client.post('/api/checkout/confirm'), 409, 'CART_EMPTY');
    assert.equal((await client.get('/api/checkout')).body.step, 'review', 'the flow waits for a cart');
  });

  it('confirm when sent twice concurrently then exactly one order is placed', async () => {
    const { client } = await newUser();
    await client.add('notebook', 3);
    await client.post('/api/checkout/shipping', SHIPPING);
    await client.post('/api/checkout/payment', CARD);
    const [a, b] = await Promise.all([client.post('/api/checkout/confirm'), client.post('/api/checkout/confirm')]);
    const ok = [a, b].filter((r) => r.status === 201 || r.status === 200);
    assert.ok(ok.length >= 1 && [a, b].every((r) => [200, 201, 409].includes(r.status)), `${a.status} ${b.status}`);
    assert.equal([a, b].filter((r) => r.status === 201).length, 1, 'one confirm created the order');
    assert.ok(ok.every((r) => r.body.orderId === ok[0]!.body.orderId), 'a second success returns the same order');
    assert.equal((await client.get('/api/orders')).body.length, 1);
    assert.equal((await client.get('/api/cart')).body.count, 0);
  });

  it('confirm when it names its run then a repeat, concurrent or later, answers 200 with the same order; a stale run is refused', async () => {
    const { client } = await newUser();
    await client.add('notebook', 2);
    await client.post('/api/checkout/shipping', SHIPPING);
    const view = (await client.post('/api/checkout/payment', CARD)).body;
    assert.match(view.runId, /^[0-9a-f-]{36}$/);
    const replies = await Promise.all([1, 2, 3].map(() => client.post('/api/checkout/confirm', { runId: view.runId })));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 201]);
    assert.equal(new Set(replies.map((r) => r.body.orderId)).size, 1, 'every reply names the one order');
    const later = await client.post('/api/checkout/confirm', { runId: view.runId });
    assert.equal(later.status, 200);
    assert.equal(later.body.orderId, replies[0]!.body.orderId);
    assert.equal((await client.get('/api/orders')).body.length, 1);

    await client.add('candle', 1);
    await client.post('/api/checkout/shipping', SHIPPING);
    const next = (await client.post('/api/checkout/payment', CARD)).body;
    assert.notEqual(next.runId, view.runId, 'a new run');
    assertError(await client.post('/api/checkout/confirm', { runId: 'f'.repeat(36) }), 409, 'FLOW_STEP_OUT_OF_ORDER');
    assertError(await client.post('/api/checkout/confirm', { runId: 'no spaces' }), 400, 'VALIDATION_FAILED');
    assertError(await client.post('/api/checkout/confirm', { runId: next.runId, extra: 1 }), 400, 'VALIDATION_FAILED');
    assert.equal((await client.get('/api/orders')).body.length, 1, 'nothing placed by the refused confirms');
    assert.equal((await client.post('/api/checkout/confirm', { runId: next.runId })).status, 201);
    assert.equal((await client.get('/api/orders')).body.length, 2);
  });

  it('checkout when its confirm placed the order but the answer was lost then GET /api/checkout names that order on every device, for LAST_ORDER_SHOWN_MS; a step of that run answers 409 ORDER_PLACED', async () => {
    const { client: a, username } = await newUser();
    await a.add('notebook', 2);
    await a.post('/api/checkout/shipping', SHIPPING);
    const run = (await a.post('/api/checkout/payment', CARD)).body.runId;
    const before = Date.now();
    const placed = (await a.post('/api/checkout/confirm', { runId: run })).body;
    const view = (await a.get('/api/checkout')).body;
    assert.deepEqual({ ...view, lastOrder: { ...view.lastOrder, placedAt: 0 } }, {
      step: 'shipping', steps: ['shipping', 'payment', 'review'], data: {}, runId: null, lastOrder: { orderId: placed.orderId, total: placed.total, placedAt: 0 },
    });
    assert.ok(view.lastOrder.placedAt >= before && view.lastOrder.placedAt <= Date.now());
    const b = new ShopClient(t.url);
    assert.equal((await b.login(username)).status, 200);
    assert.equal((await b.get('/api/checkout')).body.lastOrder?.orderId, placed.orderId, 'another device is told too');
    const step = await b.post('/api/checkout/shipping', { ...SHIPPING, runId: run });
    assertError(step, 409, 'ORDER_PLACED');
    assert.ok(step.body.error.message.includes(placed.orderId));
    // Begun again, the next run is what the checkout shows; the order stays the last one placed.
    assert.equal((await a.post('/api/checkout/shipping', SHIPPING)).body.step, 'payment');
    assert.equal((await a.get('/api/checkout')).body.lastOrder?.orderId, placed.orderId);
    // Older than LAST_ORDER_SHOWN_MS, it is no longer named.
    const user = await t.shop.db.findUserByName(username);
    await t.shop.tether.users.update<{ lastOrder?: { placedAt: number } }>(user!.id, (c) => {
      c.lastOrder!.placedAt -= LAST_ORDER_SHOWN_MS + 1000;
    });
    assert.equal((await a.get('/api/checkout')).body.lastOrder, null);
  });

  it('checkout when another device places the order between a stale tab\'s step naming that run and its write then the step answers 409 ORDER_PLACED and starts no next run', async () => {
    const { a, b, run, userId } = await atReviewOnTwoDevices();
    // The next write to this user's context waits for the order to be placed: whatever the step read
    // before it, its write finds the run ended.
    let placed: Reply | undefined;
    await beforeNextUpdate(userId, async () => {
      placed = await a.post('/api/checkout/confirm', { runId: run });
    }, async () => assertError(await b.post('/api/checkout/shipping', { ...SHIPPING, runId: run }), 409, 'ORDER_PLACED'));
    assert.equal(placed?.status, 201);
    assert.equal((await a.get('/api/checkout')).body.runId, null, 'no next run started with the stale step');
  });

  it('confirm when placing the order outlasts the flow\'s hold and another device changes the address meanwhile then it answers the order with checkoutChanged, and the checkout keeps the change under a new runId', async () => {
    const { client: a, username } = await newUser();
    await a.add('notebook', 1);
    await a.post('/api/checkout/shipping', SHIPPING);
    const run = (await a.post('/api/checkout/payment', CARD)).body.runId;
    const b = new ShopClient(t.url);
    assert.equal((await b.login(username)).status, 200);
    const userId = (await t.shop.db.findUserByName(username))!.id;
    const moved = { ...SHIPPING, address: '1 New Street' };
    const db = t.shop.db as unknown as { placeOrder: (...args: unknown[]) => Promise<unknown> };
    const placeOrder = db.placeOrder;
    let changed: Reply | undefined;
    db.placeOrder = async (...args: unknown[]) => {
      db.placeOrder = placeOrder;
      // A slow payment provider: the hold the confirm took lapses (aged here), and device B's change lands.
      await t.shop.tether.users.update<{ flows: Record<string, { completing: number }> }>(userId, (c) => {
        c.flows!.checkout!.completing -= COMPLETING_HOLD_MS;
      });
      changed = await b.post('/api/checkout/shipping', { ...moved, runId: run });
      return placeOrder.apply(t.shop.db, args);
    };
    let confirm: Reply;
    try {
      confirm = await a.post('/api/checkout/confirm', { runId: run });
    } finally {
      db.placeOrder = placeOrder;
    }
    assert.equal(changed?.status, 200, changed?.text);
    assert.equal(confirm.status, 201, confirm.text);
    assert.equal(confirm.body.checkoutChanged, true);
    const order = await t.shop.db.findOrderByKey(`checkout:${run}`);
    assert.equal(order?.id, confirm.body.orderId);
    assert.deepEqual(order?.shipping, SHIPPING, 'placed as confirmed');
    const view = (await b.get('/api/checkout')).body;
    assert.equal(view.step, 'payment');
    assert.deepEqual(view.data.shipping, moved, 'the change is kept');
    assert.notEqual(view.runId, run, 'under a new run: its confirm is not answered with the order placed before the change');
    assert.equal(view.lastOrder?.orderId, confirm.body.orderId);
    assert.equal((await b.get('/api/cart')).body.count, 0, 'what was ordered left the cart');
    assertError(await b.post('/api/checkout/payment', { ...CARD, runId: run }), 409, 'ORDER_PLACED');
  });

  it('confirm when its run is confirmed on another device and the next run made ready before its write then it answers with its run\'s order and places none for the next run', async () => {
    const { a, b, run, userId } = await atReviewOnTwoDevices();
    // The next write to this user's context (the stale confirm taking its run) waits for device A to
    // confirm the run and get the next one ready for review.
    let first: Reply | undefined;
    const stale = await beforeNextUpdate(userId, async () => {
      first = await a.post('/api/checkout/confirm', { runId: run });
      await a.add('candle', 1);
      await a.post('/api/checkout/shipping', SHIPPING);
      await a.post('/api/checkout/payment', CARD);
    }, () => b.post('/api/checkout/confirm', { runId: run }));
    assert.equal(first?.status, 201);
    assert.equal(stale.status, 200, stale.text);
    assert.equal(stale.body.orderId, first.body.orderId, 'answered with the order its run placed');
    const next = (await a.get('/api/checkout')).body;
    assert.equal(next.step, 'review', 'the next run is still to be confirmed');
    assert.equal((await a.get('/api/orders')).body.length, 1, 'no order placed for the next run');
  });

  it('confirm when another user names a run then it is not answered with that run\'s order', async () => {
    const { client: a } = await newUser();
    await a.add('notebook', 1);
    await a.post('/api/checkout/shipping', SHIPPING);
    const run = (await a.post('/api/checkout/payment', CARD)).body.runId;
    assert.equal((await a.post('/api/checkout/confirm', { runId: run })).status, 201);
    const { client: b } = await newUser();
    assertError(await b.post('/api/checkout/confirm', { runId: run }), 409, 'FLOW_STEP_OUT_OF_ORDER');
  });

  it('checkout when resumed on another device then continues at the same step with the same data; orders newest first', async () => {
    const { client: a, username } = await newUser();
    await a.add('candle', 1);
    await a.post('/api/checkout/shipping', SHIPPING);
    const b = new ShopClient(t.url);
    await b.login(username);
    const seen = (await b.get('/api/checkout')).body;
    assert.equal(seen.step, 'payment');
    assert.deepEqual(seen.data.shipping, SHIPPING);
    await b.post('/api/checkout/payment', CARD);
    const first = (await b.post('/api/checkout/confirm')).body.orderId;
    await a.add('planter', 1);
    await a.post('/api/checkout/shipping', SHIPPING);
    await a.post('/api/checkout/payment', CARD);
    const second = (await a.post('/api/checkout/confirm')).body.orderId;
    assert.deepEqual((await b.get('/api/orders')).body.map((o: { id: string }) => o.id), [second, first]);
  });

  it('checkout step naming the account the page showed when the session signed in as another account since then 409 CHECKOUT_ACCOUNT_CHANGED, and neither checkout takes it', async () => {
    // One browser: the page shows ada's checkout, not begun (no runId to name); another tab signs in as bob.
    const { client, username: ada } = await newUser();
    assert.equal((await client.get('/api/checkout')).body.runId, null);
    const { client: bobDevice, username: bob } = await newUser();
    await bobDevice.add('notebook', 1);
    const bobShipping = { ...SHIPPING, name: 'Bob Example', city: 'Leeds' };
    await bobDevice.post('/api/checkout/shipping', bobShipping);
    assert.equal((await client.login(bob)).status, 200);

    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, account: ada }), 409, 'CHECKOUT_ACCOUNT_CHANGED');
    assertError(await client.post('/api/checkout/back', { account: ada }), 409, 'CHECKOUT_ACCOUNT_CHANGED');
    assertError(await client.post('/api/checkout/confirm', { account: ada }), 409, 'CHECKOUT_ACCOUNT_CHANGED');
    // A guest's page (account null) is refused by an account's session too.
    assertError(await client.post('/api/checkout/shipping', { ...SHIPPING, account: null }), 409, 'CHECKOUT_ACCOUNT_CHANGED');
    const bobs = (await bobDevice.get('/api/checkout')).body;
    assert.equal(bobs.step, 'payment');
    assert.deepEqual(bobs.data.shipping, bobShipping, 'bob\'s checkout kept its own address');
    const adas = new ShopClient(t.url);
    await adas.login(ada);
    assert.equal((await adas.get('/api/checkout')).body.runId, null, 'nor was ada\'s begun with it');

    // Naming the account the session is for: taken, as without the field.
    const ok = await client.post('/api/checkout/shipping', { ...SHIPPING, account: bob });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.data.shipping, SHIPPING);
  });

  it('checkout step naming a guest\'s checkout when the session is a guest\'s then taken; naming an account then 409; a malformed account then 400', async () => {
    const guest = new ShopClient(t.url);
    await guest.add('notebook', 1);
    assertError(await guest.post('/api/checkout/contact', { email: 'ada@example.org', account: 'someone' }), 409, 'CHECKOUT_ACCOUNT_CHANGED');
    assertError(await guest.post('/api/checkout/contact', { email: 'ada@example.org', account: 42 }), 400, 'VALIDATION_FAILED');
    const r = await guest.post('/api/checkout/contact', { email: 'ada@example.org', account: null });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.step, 'shipping');
    assert.deepEqual(r.body.data.contact, { email: 'ada@example.org' });
  });
});

describe('shop api: admin', () => {
  it('admin API when not the admin then 401 AUTH_REQUIRED or 403 FORBIDDEN', async () => {
    const anon = new ShopClient(t.url);
    await anon.session();
    assertError(await anon.get('/api/admin/overview'), 401, 'AUTH_REQUIRED');
    const { client } = await newUser();
    assertError(await client.get('/api/admin/overview'), 403, 'FORBIDDEN');
    assertError(await client.post('/api/admin/users/admin/sessions/end'), 403, 'FORBIDDEN');
  });

  it('admin when logged in then sees live sessions per node and store figures, and can end a user\'s sessions', async () => {
    const admin = new ShopClient(t.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    const { client: victim, username } = await newUser();
    const overview = (await admin.get('/api/admin/overview')).body;
    assert.equal(overview.nodes.length, 1);
    assert.equal(overview.nodes[0].node, 'test-node');
    assert.ok(overview.nodes[0].activeSessions >= 2);
    assert.equal(typeof overview.nodes[0].engine.created, 'number');
    assert.equal(overview.store.name, 'sqlite', 'the default session store is SQLite in the data dir');
    assert.equal(overview.store.cap, 1_000_000, 'SHOP_MAX_SESSIONS, its default');
    const ended = await admin.post(`/api/admin/users/${username}/sessions/end`);
    assert.deepEqual(ended.body, { username, ended: 1 });
    assert.equal((await victim.get('/api/session')).body.authenticated, false);
    assertError(await admin.post('/api/admin/users/nobody_here/sessions/end'), 404, 'USER_NOT_FOUND');
  });

  it('overview when a session timed out but the store keeps it for expiryGraceMs then the store\'s count leaves it out, as SHOP_MAX_SESSIONS counts', async () => {
    const admin = new ShopClient(t.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    const store = t.shop.tether.store;
    const sessions = async (): Promise<number> => (await admin.get('/api/admin/overview')).body.store.sessions as number;
    const before = await sessions();
    const now = Date.now();
    const idle = t.shop.tether.options.idleTimeoutMs;
    const record = (key: string, lastSeenAt: number) => ({ key, data: '{"d":{}}', version: 1, userId: null, createdAt: lastSeenAt, lastSeenAt,
      expiresAt: lastSeenAt + idle + t.shop.tether.options.expiryGraceMs, absoluteExpiresAt: now + 3_600_000 });
    // Timed out 30 s ago for the engine; the store keeps it 30 s more.
    const timedOut = record(uniqueName('grace').padEnd(43, 'A').slice(0, 43), now - idle - 30_000);
    const live = record(uniqueName('live').padEnd(43, 'A').slice(0, 43), now);
    assert.deepEqual(await store.set(timedOut, 0), { ok: true });
    assert.deepEqual(await store.set(live, 0), { ok: true });
    try {
      assert.equal(await sessions(), before + 1, 'the live one counted, not the one that timed out');
    } finally {
      await store.destroy(timedOut.key);
      await store.destroy(live.key);
    }
  });

  it('overview when the store fails or hangs on counting its records then 503 STORE_UNAVAILABLE within storeTimeoutMs, counted as a store error', async () => {
    const admin = new ShopClient(t.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    const store = t.shop.tether.store as { count?: () => Promise<number> };
    const errorsBefore = t.shop.tether.stats().storeErrors;
    try {
      store.count = () => Promise.reject(new Error('disk I/O error'));
      const failed = await admin.get('/api/admin/overview');
      assertError(failed, 503, 'STORE_UNAVAILABLE');
      assert.equal(failed.headers['retry-after'], '1');
      assert.doesNotMatch(failed.text, /disk I\/O/, 'the driver\'s message stays in the log');
      store.count = () => new Promise(() => {});
      const started = Date.now();
      assertError(await admin.get('/api/admin/overview'), 503, 'STORE_UNAVAILABLE');
      const ms = Date.now() - started;
      assert.ok(ms < t.shop.tether.options.storeTimeoutMs + 1500, `answered after ${ms} ms`);
    } finally {
      delete store.count;
    }
    assert.equal(t.shop.tether.stats().storeErrors, errorsBefore + 2);
    assert.equal(typeof (await admin.get('/api/admin/overview')).body.store.sessions, 'number', 'counted again once the store answers');
  });

  it('cart when a logged-in user adds concurrently from two devices then every add counts', async () => {
    const { client: a, username } = await newUser();
    const b = new ShopClient(t.url);
    await b.login(username);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).post('/api/cart/items', { productId: 'tea-sampler', quantity: 1 })));
    assert.equal((await a.get('/api/cart')).body.items[0].quantity, 20);
  });
});

describe('shop api: live sessions (TETHER_IDLE_TIMEOUT=2)', () => {
  let short: TestShop;
  before(async () => {
    short = await startTestShop({ TETHER_IDLE_TIMEOUT: '2' });
  });
  after(async () => {
    await short?.stop();
  });

  const live = async (): Promise<number> => {
    const text = (await new ShopClient(short.url).get('/metrics')).text;
    return Number(/^shop_active_sessions\{[^}]*\} (\d+)$/m.exec(text)![1]);
  };

  it('shop_active_sessions when sessions go unseen past the idle timeout then counts the remembered ones, live for the remembered idle timeout, and not the others', async () => {
    const username = uniqueName('kept');
    const first = new ShopClient(short.url);
    assert.equal((await first.register(username)).status, 201);
    // Logged out at once: a sign-in in between could take a loaded machine past the 2 s idle timeout.
    assert.equal((await first.post('/api/auth/logout')).status, 200);
    const kept = new ShopClient(short.url);
    await kept.session();
    assert.equal((await kept.post('/api/auth/login', { username, password: 'correct horse battery', remember: true })).status, 200);
    // The ordinary session signs in last, just before the count, so that a slow machine cannot take it
    // past the 2 s idle timeout before it is counted.
    const ordinary = new ShopClient(short.url);
    assert.equal((await ordinary.login(username)).status, 200);
    assert.equal(await live(), 2);
    await new Promise((r) => setTimeout(r, 2_200));
    assert.equal(await live(), 1, 'the remembered session is counted, the ordinary one not');
    assert.equal((await kept.get('/api/session')).body.authenticated, true, 'the one counted is live');
    assert.equal((await ordinary.get('/api/session')).body.authenticated, false, 'the one not counted has ended');
  });
});

describe('shop api: sessions per account (TETHER_MAX_SESSIONS_PER_USER=2)', () => {
  let capped: TestShop;
  before(async () => {
    capped = await startTestShop({ TETHER_MAX_SESSIONS_PER_USER: '2' });
  });
  after(async () => {
    await capped?.stop();
  });

  it('login when the account already has the most sessions allowed then the oldest is signed out, the others stay', async () => {
    const username = uniqueName('capped');
    const first = new ShopClient(capped.url);
    assert.equal((await first.register(username)).status, 201);
    const second = new ShopClient(capped.url);
    assert.equal((await second.login(username)).status, 200);
    assert.equal((await first.get('/api/session')).body.authenticated, true, 'two are allowed');
    const third = new ShopClient(capped.url);
    assert.equal((await third.login(username)).status, 200);
    assert.equal((await first.get('/api/session')).body.authenticated, false, 'the oldest was signed out');
    assert.equal((await second.get('/api/session')).body.authenticated, true);
    assert.equal(((await third.get('/api/me/sessions')).body as unknown[]).length, 2);
  });
});

describe('shop api: disabling and deleting accounts (S28)', () => {
  async function adminClient(): Promise<ShopClient> {
    const admin = new ShopClient(t.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    return admin;
  }
  const loggedIn = async (c: ShopClient): Promise<boolean> => (await c.get('/api/session')).body.authenticated;

  it('disable when two devices are logged in then both are rejected on their next request, login is refused, and enabling restores the account with its cart', async () => {
    const admin = await adminClient();
    const { client: laptop, username } = await newUser();
    await laptop.add('camp-mug', 2);
    const phone = new ShopClient(t.url);
    assert.equal((await phone.login(username)).status, 200);
    assert.equal((await admin.get(`/api/admin/users/${username}`)).body.sessions, 2);

    const r = await admin.post(`/api/admin/users/${username}/disable`);
    assert.deepEqual(r.body, { username, disabled: true, ended: 2 });
    assert.equal(await loggedIn(laptop), false);
    assert.equal(await loggedIn(phone), false);
    assertError(await laptop.get('/api/me/sessions'), 401, 'AUTH_REQUIRED');
    const status = (await admin.get(`/api/admin/users/${username}`)).body;
    assert.equal(status.sessions, 0);
    assert.ok(Date.parse(status.disabledAt) <= Date.now(), 'the time it was disabled is shown');

    const again = new ShopClient(t.url);
    assertError(await again.login(username), 403, 'ACCOUNT_DISABLED');
    assertError(await again.login(username, 'wrong password'), 401, 'INVALID_CREDENTIALS');
    assert.equal(await loggedIn(again), false, 'a refused login leaves no session behind');
    assert.equal((await admin.get(`/api/admin/users/${username}`)).body.sessions, 0);

    assert.deepEqual((await admin.post(`/api/admin/users/${username}/enable`)).body, { username, disabled: false });
    assert.equal((await again.login(username)).status, 200);
    assert.equal((await again.get('/api/cart')).body.items[0].quantity, 2, 'the saved cart outlived the disablement');
    assert.equal((await admin.get(`/api/admin/users/${username}`)).body.disabledAt, null);
  });

  it('live sessions when a user\'s sessions are ended all at once (disable, log out other sessions) then no longer count them', async () => {
    const admin = await adminClient();
    const live = async (): Promise<number> => (await admin.get('/api/admin/overview')).body.nodes[0].activeSessions;
    const { client: laptop, username } = await newUser();
    const phone = new ShopClient(t.url);
    await phone.login(username);
    const tablet = new ShopClient(t.url);
    await tablet.login(username);
    const before = await live();
    const ended = await laptop.request('DELETE', '/api/me/sessions/others');
    assert.deepEqual(ended.body, { ended: 2 });
    assert.equal(await live(), before - 2, 'the two ended, the laptop still served');
    assert.equal((await admin.post(`/api/admin/users/${username}/disable`)).body.ended, 1);
    assert.equal(await live(), before - 3);
  });

  it('users when listed by the admin then come by name, narrowed by a prefix in any case; bad limits 400; others 403', async () => {
    const admin = await adminClient();
    const stem = uniqueName('lst');
    for (const suffix of ['_b', '_a', '_c']) assert.equal((await new ShopClient(t.url).register(stem + suffix)).status, 201);
    await admin.post(`/api/admin/users/${stem}_b/disable`);
    const r = await admin.get(`/api/admin/users?prefix=${stem.toUpperCase()}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.map((u: { username: string }) => u.username), [`${stem}_a`, `${stem}_b`, `${stem}_c`]);
    assert.equal(r.body[1].disabledAt !== null, true);
    assert.equal(r.body[0].admin, false);
    assert.ok(!('passwordHash' in r.body[0]) && !('id' in r.body[0]), 'no hash or ID leaves the server');
    assert.equal((await admin.get(`/api/admin/users?prefix=${stem}&limit=2`)).body.length, 2);
    assert.ok((await admin.get('/api/admin/users')).body.some((u: { username: string; admin: boolean }) => u.username === 'admin' && u.admin));
    for (const q of ['limit=0', 'limit=101', 'limit=abc', `prefix=${'x'.repeat(65)}`]) assertError(await admin.get(`/api/admin/users?${q}`), 400, 'VALIDATION_FAILED');
    const { client } = await newUser();
    assertError(await client.get('/api/admin/users'), 403, 'FORBIDDEN');
  });

  it('disable when asked for the admin account, an unknown user, or by a non-admin then 409 ADMIN_ACCOUNT, 404 USER_NOT_FOUND, 403 FORBIDDEN', async () => {
    const admin = await adminClient();
    assertError(await admin.post('/api/admin/users/admin/disable'), 409, 'ADMIN_ACCOUNT');
    assert.equal(await loggedIn(admin), true);
    assertError(await admin.post('/api/admin/users/nobody_here/disable'), 404, 'USER_NOT_FOUND');
    assertError(await admin.get('/api/admin/users/nobody_here'), 404, 'USER_NOT_FOUND');
    const { client, username } = await newUser();
    assertError(await client.post(`/api/admin/users/${username}/disable`), 403, 'FORBIDDEN');
    assertError(await client.post(`/api/admin/users/${username}/enable`), 403, 'FORBIDDEN');
    assertError(await client.get(`/api/admin/users/${username}`), 403, 'FORBIDDEN');
  });

  it('disable when logins are in flight (their passwords checked, their sessions not yet stored) then none of them stays logged in', async () => {
    const admin = await adminClient();
    const { username } = await newUser();
    const devices = Array.from({ length: 8 }, () => new ShopClient(t.url));
    await Promise.all(devices.map((d) => d.session()));
    // Each login spends tens of milliseconds hashing the password after reading the account: the
    // disablement lands while they do.
    const logins = devices.map((d) => d.login(username));
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal((await admin.post(`/api/admin/users/${username}/disable`)).status, 200);
    for (const r of await Promise.all(logins)) {
      assert.ok(r.status === 200 || (r.status === 403 && r.body.error.code === 'ACCOUNT_DISABLED'), `login answered ${r.status} ${r.text}`);
      if (r.status === 403) assertCookieOnlyExpired(r);
    }
    for (const d of devices) assert.equal(await loggedIn(d), false);
    assert.equal((await admin.get(`/api/admin/users/${username}`)).body.sessions, 0);
  });

  it('password when changed while logins with the old one are in flight then none of them stays logged in', async () => {
    const { client, username } = await newUser();
    // The change hashes twice (the current password, the new one). Logins are started until it
    // answers: those that read the old hash just before it was replaced hash behind the change's own
    // hashing, and store their sessions after it has ended the others.
    let changed = false;
    const change = client.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'a new password here' })
      .finally(() => { changed = true; });
    const devices: ShopClient[] = [];
    const logins: Array<Promise<Reply>> = [];
    while (!changed && devices.length < 16) {
      const d = new ShopClient(t.url);
      devices.push(d);
      logins.push(d.login(username));
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    assert.equal((await change).status, 200);
    for (const r of await Promise.all(logins)) {
      // Past 10 password checks of one account in flight at once, the rest are refused unchecked (429).
      const refused = (r.status === 401 && r.body.error.code === 'INVALID_CREDENTIALS') || (r.status === 429 && r.body.error.code === 'RATE_LIMITED');
      assert.ok(r.status === 200 || refused, `login answered ${r.status} ${r.text}`);
      if (r.status !== 200) assertCookieOnlyExpired(r);
    }
    for (const d of devices) assert.equal(await loggedIn(d), false);
    assert.equal(await loggedIn(client), true, 'the device that changed the password stays');
    assert.equal((await client.get('/api/me/sessions')).body.length, 1);
  });

  it('delete when the password is given then the account, its orders, saved cart and every session are gone, and the name can be registered afresh', async () => {
    const { client: laptop, username } = await newUser();
    await laptop.add('planter', 1);
    await laptop.post('/api/checkout/shipping', SHIPPING);
    await laptop.post('/api/checkout/payment', CARD);
    assert.equal((await laptop.post('/api/checkout/confirm')).status, 201);
    await laptop.add('camp-mug', 3);
    const phone = new ShopClient(t.url);
    await phone.login(username);

    assertError(await laptop.request('DELETE', '/api/me'), 400, 'VALIDATION_FAILED');
    assertError(await laptop.request('DELETE', '/api/me', { json: { password: 'wrong password' } }), 401, 'INVALID_CREDENTIALS');
    assertError(await laptop.request('DELETE', '/api/me', { json: { password: 'correct horse battery', extra: 1 } }), 400, 'VALIDATION_FAILED');
    assert.equal(await loggedIn(phone), true, 'refused deletions change nothing');

    const r = await laptop.request('DELETE', '/api/me', { json: { password: 'correct horse battery' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { deleted: true, endedSessions: 1 });
    assert.equal(r.headers['clear-site-data'], '"cookies"');
    assert.equal(await loggedIn(laptop), false);
    assert.equal(await loggedIn(phone), false);
    assertError(await phone.login(username), 401, 'INVALID_CREDENTIALS');

    const fresh = new ShopClient(t.url);
    assert.equal((await fresh.register(username, 'another long password')).status, 201);
    assert.deepEqual((await fresh.get('/api/cart')).body.items, [], 'nothing of the old account\'s saved cart');
    assert.deepEqual((await fresh.get('/api/orders')).body, [], 'nothing of its orders');
    assert.equal((await fresh.get('/api/checkout')).body.step, 'shipping', 'nor its checkout');
  });

  it('delete when other devices keep changing the saved cart meanwhile then the deleted account\'s context does not come back', async () => {
    for (let round = 0; round < 3; round++) {
      const { client: laptop, username } = await newUser();
      const { id } = (await t.shop.db.findUserByName(username))!;
      const phones = Array.from({ length: 4 }, () => new ShopClient(t.url));
      for (const p of phones) assert.equal((await p.login(username)).status, 200);
      let deleted = false;
      const deletion = laptop.request('DELETE', '/api/me', { json: { password: 'correct horse battery' } }).finally(() => { deleted = true; });
      const adds: Array<Promise<Reply>> = [];
      for (let i = 0; i < 2_000 && !deleted; i++) {
        for (const p of phones) adds.push(p.add('planter', 1));
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal((await deletion).status, 200);
      await Promise.all(adds);
      assert.deepEqual(await t.shop.tether.users.get(id), {}, `round ${round}: the context is gone`);
    }
  });

  it('delete when logins with the password are in flight then none of them leaves a saved cart for the deleted account', async () => {
    for (let round = 0; round < 3; round++) {
      const { client: laptop, username } = await newUser();
      const { id } = (await t.shop.db.findUserByName(username))!;
      const devices = Array.from({ length: 8 }, () => new ShopClient(t.url));
      await Promise.all(devices.map((d) => d.add('planter', 1)));
      let deleted = false;
      const deletion = laptop.request('DELETE', '/api/me', { json: { password: 'correct horse battery' } }).finally(() => { deleted = true; });
      const logins: Array<Promise<Reply>> = [];
      for (const d of devices) {
        if (deleted) break;
        logins.push(d.login(username));
        await sleep(8);
      }
      assert.equal((await deletion).status, 200);
      for (const r of await Promise.all(logins)) assert.ok(r.status === 200 || r.status === 401 || r.status === 429, `login answered ${r.status} ${r.text}`);
      for (const d of devices) assert.equal(await loggedIn(d), false);
      assert.deepEqual(await t.shop.tether.users.get(id), {}, `round ${round}: the context is gone`);
    }
  });

  it('delete when it is the admin account or nobody is logged in then 409 ADMIN_ACCOUNT or 401 AUTH_REQUIRED', async () => {
    const admin = await adminClient();
    assertError(await admin.request('DELETE', '/api/me', { json: { password: ADMIN_PASSWORD } }), 409, 'ADMIN_ACCOUNT');
    assert.equal(await loggedIn(admin), true);
    const anon = new ShopClient(t.url);
    await anon.session();
    assertError(await anon.request('DELETE', '/api/me', { json: { password: 'x' } }), 401, 'AUTH_REQUIRED');
  });
});

describe('shop api: failed password checks are limited per account and per address', () => {
  let limited: TestShop;
  before(async () => {
    limited = await startTestShop({ SHOP_LOGIN_FAILURES_PER_ACCOUNT: '3', SHOP_LOGIN_FAILURES_PER_ADDRESS: '5' });
  });
  after(async () => {
    await limited?.stop();
  });

  it('login when an account had 3 wrong passwords then even the right one answers 429 with Retry-After, in any case of the name; another account still logs in until the address reaches 5', async () => {
    const names = ['alice', 'bob', 'carol'].map((n) => uniqueName(n));
    for (const n of names) assert.equal((await new ShopClient(limited.url).register(n)).status, 201);
    const [alice, bob, carol] = names as [string, string, string];
    const c = new ShopClient(limited.url);
    for (let i = 0; i < 3; i++) assertError(await c.login(alice, `wrong password ${i}`), 401, 'INVALID_CREDENTIALS');
    const refused = await c.login(alice);
    assertError(refused, 429, 'RATE_LIMITED');
    assert.equal(refused.headers['retry-after'], '900');
    assertError(await c.login(alice.toUpperCase()), 429, 'RATE_LIMITED');
    assert.equal((await c.session()).body.authenticated, false);

    const b = new ShopClient(limited.url);
    assert.equal((await b.login(bob)).status, 200, 'another account is not limited by alice\'s failures');
    // Asking for the password again counts too: a stolen session is no way around the limit.
    for (let i = 0; i < 2; i++) {
      assertError(await b.post('/api/me/password', { currentPassword: `wrong ${i}`, newPassword: 'a new password here' }), 401, 'INVALID_CREDENTIALS');
    }
    assertError(await new ShopClient(limited.url).login(carol), 429, 'RATE_LIMITED');
    assertError(await b.post('/api/me/password', { currentPassword: 'correct horse battery', newPassword: 'a new password here' }), 429, 'RATE_LIMITED');
  });
});

describe('shop api: the admin ends every session (ASVS 7.4.5)', () => {
  let own: TestShop;
  before(async () => {
    own = await startTestShop({ SHOP_REAUTH_WINDOW: '0' });
  });
  after(async () => {
    await own?.stop();
  });

  it('every session when ended by the admin with the password then every device is signed out, carts of guests gone, saved carts kept; refused without the password or for others', async () => {
    const admin = new ShopClient(own.url);
    assert.equal((await admin.login('admin', ADMIN_PASSWORD)).status, 200);
    const a = new ShopClient(own.url);
    const username = uniqueName();
    assert.equal((await a.register(username)).status, 201);
    await a.add('camp-mug', 2);
    const b = new ShopClient(own.url, 'device-b');
    await b.login(username);
    const guest = new ShopClient(own.url);
    await guest.add('headlamp', 1);
    assertError(await a.post('/api/admin/sessions/end'), 403, 'FORBIDDEN');
    assertError(await admin.post('/api/admin/sessions/end'), 401, 'REAUTH_REQUIRED');
    assertError(await admin.post('/api/admin/sessions/end', { password: 'not it at all' }), 401, 'INVALID_CREDENTIALS');
    assert.equal((await b.get('/api/session')).body.authenticated, true, 'nothing ended by the refused calls');
    const ended = await admin.post('/api/admin/sessions/end', { password: ADMIN_PASSWORD });
    assert.equal(ended.status, 200);
    assert.equal(ended.body.ended, 4, 'the admin, two devices and the guest');
    assert.match(String(ended.headers['set-cookie']), /Max-Age=0|Expires=Thu, 01 Jan 1970/, 'the admin\'s cookie is expired in the answer');
    for (const c of [a, b, admin]) assert.equal((await c.get('/api/session')).body.authenticated, false);
    assert.deepEqual((await guest.get('/api/cart')).body.items, [], 'a guest\'s cart lived in the session');
    assert.equal((await a.login(username)).status, 200);
    assert.deepEqual((await a.get('/api/cart')).body.items.map((i: { productId: string; quantity: number }) => [i.productId, i.quantity]), [['camp-mug', 2]], 'the account\'s saved cart follows the user');
  });
});

describe('shop api: a session renewed every 2 s (TETHER_RENEWAL_INTERVAL=2)', () => {
  let renewing: TestShop;
  before(async () => {
    renewing = await startTestShop({ TETHER_RENEWAL_INTERVAL: '2', TETHER_RENEWAL_GRACE: '1', TETHER_STORE: 'memory', SHOP_NEW_SESSIONS_PER_MINUTE: '100000' });
  });
  after(async () => {
    await renewing?.stop();
  });

  /** A user signed in on two devices, and the handle the first device's account page lists for the second. */
  async function twoDevices(): Promise<{ a: ShopClient; b: ShopClient; handleOfB: string }> {
    const a = new ShopClient(renewing.url);
    const username = uniqueName();
    assert.equal((await a.register(username)).status, 201);
    const b = new ShopClient(renewing.url);
    await b.login(username);
    const handleOfB = ((await a.get('/api/me/sessions')).body as Array<{ id: string; current: boolean }>).find((s) => !s.current)!.id;
    return { a, b, handleOfB };
  }

  it('sessions when a device was renewed since the account page listed it then "end this device" still ends it', async () => {
    const { a, b, handleOfB } = await twoDevices();
    await sleep(2_100);
    const before = b.cookieHeader;
    assert.equal((await b.get('/api/session')).body.authenticated, true);
    assert.notEqual(b.cookieHeader, before, 'the device was given a new ID');
    const listed = (await a.get('/api/me/sessions')).body as Array<{ id: string; current: boolean }>;
    assert.ok(listed.some((s) => s.id === handleOfB), 'listed by the same handle');
    const r = await a.request('DELETE', `/api/me/sessions/${handleOfB}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await b.get('/api/session')).body.authenticated, false, 'the device is signed out');
  });

  it('session cookie of a renewed session when presented again after its logout then the shop logs the reuse as a warning by the handle the account page showed', async () => {
    const { b, handleOfB } = await twoDevices();
    await sleep(2_100);
    const before = b.cookieHeader;
    assert.equal((await b.get('/api/session')).body.authenticated, true);
    assert.notEqual(b.cookieHeader, before, 'renewed');
    const copy = new ShopClient(renewing.url);
    for (const [k, v] of b.cookies) copy.cookies.set(k, v);
    assert.equal((await b.request('POST', '/api/auth/logout')).status, 200);
    const from = renewing.logs.length;
    assert.equal((await copy.get('/api/session')).body.authenticated, false);
    const lines = renewing.logs.slice(from).filter((l) => l.includes('"security.session_reused"'));
    assert.equal(lines.length, 1, renewing.logs.slice(from).join('\n'));
    const record = JSON.parse(lines[0]!);
    assert.deepEqual([record.level, record.session, record.ended], ['warn', handleOfB, 'logout']);
  });
});
