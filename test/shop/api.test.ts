/**
 * The shop's public HTTP contract, part 1: health, metrics, the session summary, catalog, cart, CSRF,
 * error codes, headers and the new-session rate limit. In-process shop on a free port, SQLite stores.
 */
import { randomBytes } from 'node:crypto';
import { connect } from '../helpers/ws.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ShopClient, rawRequest, startTestShop, uniqueName } from '../helpers/shop.js';
import type { Reply, TestShop } from '../helpers/shop.js';
import { clearOfMinuteBoundary } from '../helpers/time.js';

let t: TestShop;
before(async () => {
  t = await startTestShop();
});
after(async () => {
  await t?.stop();
});

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.body?.error?.code, code);
  assert.equal(typeof r.body.error.message, 'string');
  assert.equal(r.headers['x-tether-node'], 'test-node', 'errors name the node too');
}

describe('shop api: system', () => {
  it('healthz when asked then answers ok with the node name and the pid of the answering process', async () => {
    const r = await rawRequest(t.url + '/healthz', 'GET', {});
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok', node: 'test-node', pid: process.pid });
    assert.equal(r.headers['x-tether-node'], 'test-node');
  });

  it('metrics when scraped then serves Prometheus text with the engine and store figures', async () => {
    await new ShopClient(t.url).session();
    const r = await rawRequest(t.url + '/metrics', 'GET', {});
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.match(r.text, /^tether_sessions_created_total\{node="test-node"\} [1-9]/m);
    for (const name of ['tether_cas_conflicts_total', 'tether_cas_replays_total', 'tether_store_errors_total', 'tether_gate_waiting', 'tether_store_duration_seconds_bucket', 'shop_active_sessions']) {
      assert.match(r.text, new RegExp(`^${name}`, 'm'), name);
    }
  });

  it('unknown route when requested then 404 NOT_FOUND in the error shape', async () => {
    assertError(await rawRequest(t.url + '/api/nope', 'GET', {}), 404, 'NOT_FOUND');
    const c = new ShopClient(t.url);
    await c.session();
    assertError(await c.post('/api/nope', { a: 1 }), 404, 'NOT_FOUND');
  });

  it('unknown API path when a browser asks for HTML, in any letter case, then still NOT_FOUND JSON, not the 404 page', async () => {
    for (const path of ['/api/nope', '/API/nope', '/Api/cart', '/api', '/API?x=1', '/api/']) {
      const r = await rawRequest(t.url + path, 'GET', { accept: 'text/html' });
      assert.match(String(r.headers['content-type']), /^application\/json/, `${path}: ${r.text.slice(0, 60)}`);
      assertError(r, 404, 'NOT_FOUND');
    }
    // Only the API's prefix: a page path that begins with the same letters is a page.
    const page = await rawRequest(t.url + '/apiary', 'GET', { accept: 'text/html' });
    assert.equal(page.status, 404);
    assert.match(page.text, /Page not found/);
  });
});

describe('shop pages', () => {
  it('pages when loaded then are HTML with a strict CSP, served without creating a session', async () => {
    for (const path of ['/', '/products/camp-mug', '/cart', '/login', '/register', '/checkout', '/orders', '/account', '/admin']) {
      const r = await rawRequest(t.url + path, 'GET', { accept: 'text/html' });
      assert.equal(r.status, 200, path);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
      assert.equal(r.headers['set-cookie'], undefined, path);
      assert.equal(r.headers['x-tether-node'], 'test-node');
    }
    const asset = await rawRequest(t.url + '/assets/app.js', 'GET', {});
    assert.equal(asset.status, 200);
    assert.match(String(asset.headers['content-type']), /^text\/javascript/);
    const again = await rawRequest(t.url + '/assets/app.js', 'GET', { 'if-none-match': String(asset.headers.etag) });
    assert.equal(again.status, 304);
  });

  it('pages and assets when the session store is down then still load for a visitor with a session, as do the catalog and a 404, while the API answers 503', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    const store = t.shop.tether.store as { get?: unknown };
    store.get = () => Promise.reject(new Error('the store is down'));
    try {
      assert.equal((await c.get('/api/session')).status, 503);
      for (const path of ['/', '/login', '/assets/app.js', '/favicon.ico']) {
        const r = await c.get(path, { headers: { accept: 'text/html' } });
        assert.equal(r.status, 200, path);
      }
      // Neither needs the session: the catalog is everyone's, and a path that names nothing is not found.
      const list = await c.get('/api/products');
      assert.equal(list.status, 200, list.text);
      assert.ok(list.body.length >= 20);
      assertError(await c.get('/api/no-such-route'), 404, 'NOT_FOUND');
      assertError(await c.post('/api/no-such-route', { a: 1 }), 404, 'NOT_FOUND');
      assertError(await c.get('/assets/missing.js'), 404, 'NOT_FOUND');
      const page = await c.get('/no-such-page', { headers: { accept: 'text/html' } });
      assert.equal(page.status, 404);
      assert.match(page.text, /Page not found/);
    } finally {
      delete store.get;
    }
    assert.equal((await c.get('/api/session')).status, 200);
  });

  it('product when the session store is down then GET /api/products/:id still answers 200 with the product, sets and clears no cookie, and the view is recorded once the store is back', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    const store = t.shop.tether.store as { get?: unknown; set?: unknown };
    store.get = () => Promise.reject(new Error('the store is down'));
    try {
      const r = await c.get('/api/products/camp-mug');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.id, 'camp-mug');
      assert.equal(r.body.name, 'Enamel Camp Mug');
      assert.equal(r.headers['set-cookie'], undefined, 'the visitor\'s cookie is neither replaced nor cleared');
      assertError(await c.get('/api/products/no-such-thing'), 404, 'PRODUCT_NOT_FOUND');
      assertError(await c.get('/api/session'), 503, 'STORE_UNAVAILABLE');
    } finally {
      delete store.get;
    }
    assert.deepEqual((await c.get('/api/session')).body.recentlyViewed, [], 'the view in the outage went unrecorded');
    assert.equal((await c.get('/api/products/camp-mug')).status, 200);
    assert.deepEqual((await c.get('/api/session')).body.recentlyViewed, ['camp-mug'], 'the same cookie records views again');
    // The view's write fails: the product is answered all the same, the view unrecorded.
    store.set = () => Promise.reject(new Error('the store is down'));
    try {
      const r = await c.get('/api/products/trail-runner');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.id, 'trail-runner');
      assert.equal(r.headers['set-cookie'], undefined);
    } finally {
      delete store.set;
    }
    assert.deepEqual((await c.get('/api/session')).body.recentlyViewed, ['camp-mug']);
  });

  it('unknown page or asset when requested then 404: a page for browsers, NOT_FOUND JSON otherwise', async () => {
    assertError(await rawRequest(t.url + '/assets/../config.ts', 'GET', {}), 404, 'NOT_FOUND');
    assertError(await rawRequest(t.url + '/assets/missing.js', 'GET', {}), 404, 'NOT_FOUND');
    const page = await rawRequest(t.url + '/no-such-page', 'GET', { accept: 'text/html' });
    assert.equal(page.status, 404);
    assert.match(page.text, /Page not found/);
  });
});

describe('shop api: session and catalog', () => {
  it('GET /api/session when new then creates the session with a CSRF token, an empty cart and default preferences', async () => {
    const c = new ShopClient(t.url);
    const r = await c.session();
    assert.equal(r.status, 200);
    assert.deepEqual({ ...r.body, csrfToken: 'x' }, {
      authenticated: false, user: null, csrfToken: 'x', cart: { items: [], count: 0, total: 0 },
      preferences: { theme: 'light', currency: 'USD' }, recentlyViewed: [], guestOrders: 0, idleWarningSeconds: 120,
    });
    assert.match(r.body.csrfToken, /^[A-Za-z0-9_-]{32,}$/);
    assert.ok(r.headers['set-cookie']?.length, 'the cookie is set');
    assert.equal(r.headers['cache-control'], 'no-store');
    const again = await c.session();
    assert.equal(again.body.csrfToken, r.body.csrfToken, 'the same session keeps its token');
    assert.equal(again.headers['set-cookie'], undefined, 'no new cookie for an unchanged session');
    assert.equal(again.headers['cache-control'], 'no-store');
  });

  it('catalog when browsed without a cookie then lists at least 20 products and creates no session', async () => {
    const list = await rawRequest(t.url + '/api/products', 'GET', {});
    assert.equal(list.status, 200);
    assert.ok(list.body.length >= 20);
    for (const p of list.body) {
      assert.equal(typeof p.id, 'string');
      assert.equal(typeof p.name, 'string');
      assert.equal(typeof p.price, 'number');
      assert.equal(typeof p.description, 'string');
    }
    const one = await rawRequest(t.url + `/api/products/${list.body[3].id}`, 'GET', {});
    assert.equal(one.status, 200);
    assert.equal(one.body.id, list.body[3].id);
    assert.equal(list.headers['set-cookie'], undefined);
    assert.equal(one.headers['set-cookie'], undefined);
    const cart = await rawRequest(t.url + '/api/cart', 'GET', {});
    assert.deepEqual(cart.body, { items: [], count: 0, total: 0 });
    assert.equal(cart.headers['set-cookie'], undefined, 'reading an empty cart creates nothing');
  });

  it('GET /api/products/ with the trailing slash then the same list as /api/products, with no session', async () => {
    const bare = await rawRequest(t.url + '/api/products', 'GET', {});
    const slash = await rawRequest(t.url + '/api/products/', 'GET', {});
    assert.equal(slash.status, 200, slash.text);
    assert.deepEqual(slash.body, bare.body);
    assert.equal(slash.headers['set-cookie'], undefined);
  });

  it('GET /api/products/:id when unknown then 404 PRODUCT_NOT_FOUND', async () => {
    assertError(await rawRequest(t.url + '/api/products/no-such-thing', 'GET', {}), 404, 'PRODUCT_NOT_FOUND');
    assertError(await rawRequest(t.url + '/api/products/__proto__', 'GET', {}), 404, 'PRODUCT_NOT_FOUND');
  });

  it('recentlyViewed when products are viewed in a session then lists them most recent first, unique, at most 10', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    const ids = (await c.get('/api/products')).body.map((p: { id: string }) => p.id) as string[];
    for (const id of [ids[0], ids[1], ids[0]]) await c.get(`/api/products/${id}`);
    assert.deepEqual((await c.session()).body.recentlyViewed, [ids[0], ids[1]]);
    for (const id of ids.slice(0, 12)) await c.get(`/api/products/${id}`);
    const recent = (await c.session()).body.recentlyViewed;
    assert.deepEqual(recent, ids.slice(2, 12).reverse());
  });
});

describe('shop api: cart', () => {
  it('cart when items are added, changed and removed then answers the priced cart each time', async () => {
    const c = new ShopClient(t.url);
    const products = (await c.get('/api/products')).body as Array<{ id: string; name: string; price: number }>;
    const [a, b] = [products[0]!, products[1]!];
    const r1 = await c.add(a.id, 2);
    assert.equal(r1.status, 201);
    assert.deepEqual(r1.body, { items: [{ productId: a.id, name: a.name, quantity: 2, price: a.price }], count: 2, total: Math.round(a.price * 200) / 100 });
    await c.add(a.id, 3);
    const r2 = await c.add(b.id);
    assert.equal(r2.body.count, 6);
    assert.equal(r2.body.items[0].quantity, 5);
    const patched = await c.request('PATCH', `/api/cart/items/${a.id}`, { json: { quantity: 1 } });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.items[0].quantity, 1);
    const zero = await c.request('PATCH', `/api/cart/items/${b.id}`, { json: { quantity: 0 } });
    assert.deepEqual(zero.body.items.map((i: { productId: string }) => i.productId), [a.id]);
    const del = await c.request('DELETE', `/api/cart/items/${a.id}`);
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, { items: [], count: 0, total: 0 });
    assert.deepEqual((await c.get('/api/cart')).body, { items: [], count: 0, total: 0 });
  });

  it('cart when a line would pass 99 then holds 99', async () => {
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 60);
    const r = await c.add('camp-mug', 60);
    assert.equal(r.body.items[0].quantity, 99);
  });

  it('cart when the input is bad then 400 VALIDATION_FAILED, and unknown products 404 PRODUCT_NOT_FOUND', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    for (const body of [{ productId: 'camp-mug', quantity: 0 }, { productId: 'camp-mug', quantity: 100 }, { productId: 'camp-mug', quantity: 1.5 },
      { productId: 'camp-mug', quantity: '2' }, { quantity: 1 }, { productId: 'camp-mug', extra: 1 }, [1, 2]]) {
      assertError(await c.post('/api/cart/items', body), 400, 'VALIDATION_FAILED');
    }
    assertError(await c.post('/api/cart/items', { productId: 'nope', quantity: 1 }), 404, 'PRODUCT_NOT_FOUND');
    assertError(await c.request('PATCH', '/api/cart/items/camp-mug', { json: { quantity: -1 } }), 400, 'VALIDATION_FAILED');
    assertError(await c.request('PATCH', '/api/cart/items/nope', { json: { quantity: 1 } }), 404, 'PRODUCT_NOT_FOUND');
    assertError(await c.request('DELETE', '/api/cart/items/nope'), 404, 'PRODUCT_NOT_FOUND');
    assert.equal((await c.get('/api/cart')).body.count, 0, 'nothing was added by the refused requests');
  });

  it('cart when a login fails to store its session (store outage) and is tried again then the anonymous cart is merged once, with what was added in between', async () => {
    const owner = new ShopClient(t.url);
    const username = uniqueName('merge');
    assert.equal((await owner.register(username)).status, 201);
    await owner.add('camp-mug', 1);
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 2);
    await c.add('notebook', 1);
    const store = t.shop.tether.store as { regenerate?: unknown; set?: unknown };
    const method = typeof store.regenerate === 'function' ? 'regenerate' : 'set';
    const had = Object.getOwnPropertyDescriptor(store, method);
    const real = store[method] as (...a: unknown[]) => Promise<unknown>;
    let failed = 0;
    // The session's commit fails; the user context's write (a set of a user: key) goes through.
    store[method] = function (this: unknown, ...a: unknown[]) {
      const rec = a[method === 'regenerate' ? 2 : 0] as { key: string };
      if (!rec.key.startsWith('user:') && failed === 0) {
        failed++;
        return Promise.reject(new Error('the store is down'));
      }
      return real.apply(this, a);
    };
    try {
      assertError(await c.login(username), 503, 'STORE_UNAVAILABLE');
    } finally {
      if (had) Object.defineProperty(store, method, had);
      else delete store[method];
    }
    assert.equal(failed, 1);
    await c.add('notebook', 1);
    assert.equal((await c.login(username)).status, 200);
    const cart = (await c.get('/api/cart')).body as { items: Array<{ productId: string; quantity: number }> };
    assert.deepEqual(Object.fromEntries(cart.items.map((i) => [i.productId, i.quantity])), { 'camp-mug': 3, notebook: 2 },
      'the saved mug, the anonymous two mugs and two notebooks, each counted once');
  });

  it('cart when 30 adds on one session run concurrently then all 30 count', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    const replies = await Promise.all(Array.from({ length: 30 }, () => c.post('/api/cart/items', { productId: 'notebook', quantity: 1 })));
    assert.ok(replies.every((r) => r.status === 201), replies.map((r) => r.status).join(','));
    assert.equal((await c.get('/api/cart')).body.items[0].quantity, 30);
  });
});

describe('shop api: CSRF and request errors', () => {
  it('unsafe request when the token is missing, wrong or from another session then 403 CSRF_TOKEN_INVALID', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    assertError(await c.post('/api/cart/items', { productId: 'camp-mug' }, { csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    const other = new ShopClient(t.url);
    await other.session();
    assertError(await c.post('/api/cart/items', { productId: 'camp-mug' }, { headers: { 'x-csrf-token': other.csrf! }, csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    assertError(await new ShopClient(t.url).post('/api/cart/items', { productId: 'camp-mug' }), 403, 'CSRF_TOKEN_INVALID');
    for (const [method, path] of [['PUT', '/api/preferences'], ['PATCH', '/api/cart/items/camp-mug'], ['DELETE', '/api/cart/items/camp-mug'], ['POST', '/api/auth/logout']]) {
      assertError(await c.request(method!, path!, { csrf: false }), 403, 'CSRF_TOKEN_INVALID');
    }
    assert.equal((await c.get('/api/cart')).body.count, 0);
  });

  it('unsafe request when Origin or Referer names another origin, or neither is sent, then 403 ORIGIN_MISMATCH', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    // Sent raw: the client would otherwise name the shop's own origin, as a browser does.
    const post = (headers: Record<string, string>) => rawRequest(t.url + '/api/cart/items', 'POST', {
      cookie: c.cookieHeader, 'x-csrf-token': c.csrf!, 'content-type': 'application/json', ...headers,
    }, JSON.stringify({ productId: 'headlamp' }));
    for (const headers of <Array<Record<string, string>>>[{ origin: 'https://evil.example' }, { origin: 'null' }, { origin: `${t.url}.evil.example` }, { referer: 'https://evil.example/page' }, { 'sec-fetch-site': 'cross-site', origin: t.url }, {}]) {
      assertError(await post(headers), 403, 'ORIGIN_MISMATCH');
    }
    const same = await c.post('/api/cart/items', { productId: 'camp-mug' }, { headers: { origin: t.url } });
    assert.equal(same.status, 201, 'the shop\'s own origin is accepted');
    assert.equal((await post({ referer: `${t.url}/cart` })).status, 201, 'a Referer of the shop itself stands in for a missing Origin');
    assert.deepEqual((await c.get('/api/cart')).body.items.map((i: { productId: string }) => i.productId).sort(), ['camp-mug', 'headlamp']);
  });

  it('state-changing routes when requested with GET, HEAD or OPTIONS then nothing changes (S39)', async () => {
    const c = new ShopClient(t.url);
    await c.add('camp-mug', 2);
    const before = (await c.get('/api/session')).body;
    const routes = ['/api/cart/items', '/api/cart/items/camp-mug', '/api/auth/register', '/api/auth/login', '/api/auth/logout',
      '/api/preferences', '/api/checkout/contact', '/api/checkout/shipping', '/api/checkout/confirm', '/api/me/password', '/api/me/sessions/others',
      '/api/admin/users/admin/sessions/end'];
    for (const path of routes) {
      for (const method of ['GET', 'HEAD', 'OPTIONS']) {
        const r = await c.request(method, `${path}?productId=headlamp&quantity=0&username=x&password=y`);
        assert.ok([404, 405].includes(r.status), `${method} ${path} → ${r.status}`);
      }
    }
    const after = (await c.get('/api/session')).body;
    assert.deepEqual(after, before, 'the session, its cart and its token are as they were');
  });

  it('JSON route when sent another content type then 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      assertError(await c.request('POST', '/api/cart/items', { raw: '{"productId":"camp-mug"}', contentType: type }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    assertError(await c.request('POST', '/api/cart/items', { raw: 'productId=camp-mug', contentType: 'application/xml' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('body when malformed JSON or prototype poisoning then 400 INVALID_JSON', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    assertError(await c.request('POST', '/api/cart/items', { raw: '{"productId":', contentType: 'application/json' }), 400, 'INVALID_JSON');
    assertError(await c.request('PUT', '/api/preferences', { raw: '{"__proto__":{"theme":"dark"}}', contentType: 'application/json' }), 400, 'INVALID_JSON');
    assertError(await c.request('PUT', '/api/preferences', { raw: '{"constructor":{"prototype":{"x":1}}}', contentType: 'application/json' }), 400, 'INVALID_JSON');
    assert.equal(({} as Record<string, unknown>).theme, undefined);
  });

  it('body when empty under a JSON Content-Type then it is no body: a DELETE passes, a route that needs one says so', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    assert.equal((await c.request('POST', '/api/cart/items', { json: { productId: 'camp-mug', quantity: 2 } })).status, 201);
    const removed = await c.request('DELETE', '/api/cart/items/camp-mug', { raw: '', contentType: 'application/json' });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.deepEqual((removed.body as { items: unknown[] }).items, []);
    const r = await c.request('POST', '/api/cart/items', { raw: '', contentType: 'application/json' });
    assertError(r, 400, 'VALIDATION_FAILED');
    assert.match((r.body as { error: { message: string } }).error.message, /JSON object/);
  });

  it('body when JSON nested 10,000 deep or holding 10,000 keys then 400 and the shop still answers', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const wide = JSON.stringify(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [i.toString(36), 0])));
    for (const raw of [deep, `{"productId":${deep}}`, wide]) {
      const r = await c.request('POST', '/api/cart/items', { raw, contentType: 'application/json' });
      assert.equal(r.status, 400, raw.slice(0, 40));
    }
    assert.equal((await c.add('camp-mug')).status, 201, 'and the next request is served');
  });

  it('body when over 100 KiB then 413 PAYLOAD_TOO_LARGE', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    const body = (bytes: number) => {
      const head = JSON.stringify({ productId: 'camp-mug', quantity: 1, pad: '' });
      return head.slice(0, -2) + 'x'.repeat(bytes - head.length) + '"}';
    };
    assert.equal(body(100 * 1024).length, 100 * 1024);
    assertError(await c.request('POST', '/api/cart/items', { raw: body(100 * 1024 + 1), contentType: 'application/json' }), 413, 'PAYLOAD_TOO_LARGE');
    const atLimit = await c.request('POST', '/api/cart/items', { raw: body(100 * 1024), contentType: 'application/json' });
    assert.notEqual(atLimit.status, 413, 'a body of exactly the limit is read');
  });

  it('preferences when invalid then 400 VALIDATION_FAILED; when valid then kept in the session', async () => {
    const c = new ShopClient(t.url);
    await c.session();
    for (const body of [{ theme: 'blue' }, { currency: 'JPY' }, {}, { theme: 'dark', font: 'x' }]) {
      assertError(await c.request('PUT', '/api/preferences', { json: body }), 400, 'VALIDATION_FAILED');
    }
    const r = await c.request('PUT', '/api/preferences', { json: { theme: 'dark', currency: 'EUR' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.preferences, { theme: 'dark', currency: 'EUR' });
    await c.request('PUT', '/api/preferences', { json: { currency: 'GBP' } });
    assert.deepEqual((await c.session()).body.preferences, { theme: 'dark', currency: 'GBP' });
  });
});

describe('shop api: production, new-session rate limit and public origin', () => {
  let limited: TestShop;
  before(async () => {
    limited = await startTestShop({ SHOP_NEW_SESSIONS_PER_MINUTE: '3', SHOP_PUBLIC_ORIGIN: 'https://shop.example', TETHER_STORE: 'memory', NODE_ENV: 'production' });
  });
  after(async () => {
    await limited?.stop();
  });

  let first: ShopClient;

  it('unsafe request when SHOP_PUBLIC_ORIGIN is set then only that origin is accepted', async () => {
    first = new ShopClient(limited.url);
    const s = await first.session();
    assert.equal(s.status, 200);
    assert.match(String(s.headers['set-cookie']), /^__Host-sid=[^;]+;.*Secure/, 'production cookies are Secure even over plain HTTP');
    assert.match(String(s.headers['strict-transport-security']), /max-age=31536000/);
    assertError(await first.post('/api/cart/items', { productId: 'camp-mug' }, { headers: { origin: limited.url } }), 403, 'ORIGIN_MISMATCH');
    const ok = await first.post('/api/cart/items', { productId: 'camp-mug' }, { headers: { origin: 'https://shop.example' } });
    assert.equal(ok.status, 201);
  });

  it('new sessions when one address passes the limit then 429 RATE_LIMITED, reason new_sessions, while browsing and logins go on', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await new ShopClient(limited.url).session()).status, 200);
    const refused = new ShopClient(limited.url);
    const reply = await refused.session();
    assertError(reply, 429, 'RATE_LIMITED');
    assert.equal(reply.body.error.reason, 'new_sessions', 'the limit is named, so a page can tell it from the registrations\' one');
    assert.equal(refused.cookies.size, 0, 'no session was created for the refused request');
    assert.equal((await rawRequest(limited.url + '/api/products', 'GET', {})).status, 200, 'catalog browsing is not limited');
    assert.equal((await first.session()).status, 200, 'an existing session is not limited');
    const reg = await first.post('/api/auth/register', { username: 'ratelimited_user', password: 'long enough password' }, { headers: { origin: 'https://shop.example' } });
    assert.equal(reg.status, 201, 'regenerating an existing session does not count');
    assert.equal((await first.session()).body.authenticated, true);
  });
});

describe('shop behind a trusted proxy', () => {
  let proxied: TestShop;
  before(async () => {
    proxied = await startTestShop({ SHOP_NEW_SESSIONS_PER_MINUTE: '1', SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await proxied?.stop();
  });

  it('new sessions when SHOP_TRUST_PROXY names the proxy then the limit counts each X-Forwarded-For client apart', async () => {
    const session = (client: string) => rawRequest(proxied.url + '/api/session', 'GET', { 'x-forwarded-for': client });
    assert.equal((await session('198.51.100.7')).status, 200);
    assertError(await session('198.51.100.7'), 429, 'RATE_LIMITED');
    assert.equal((await session('198.51.100.8')).status, 200, 'another client behind the same proxy has its own allowance');
  });

  it('new sessions when one IPv6 client sends from many addresses of its /64 then they count as one client', async () => {
    await clearOfMinuteBoundary();
    const session = (client: string) => rawRequest(proxied.url + '/api/session', 'GET', { 'x-forwarded-for': client });
    assert.equal((await session('2001:db8:7:1::1')).status, 200);
    for (const other of ['2001:db8:7:1::2', '2001:db8:7:1:ffff:ffff:ffff:ffff', '2001:db8:7:1:a:b:c:d']) {
      assertError(await session(other), 429, 'RATE_LIMITED');
    }
    assert.equal((await session('2001:db8:7:2::1')).status, 200, 'the next /64 is another client');
    assert.equal((await session('::ffff:198.51.100.9')).status, 200, 'an IPv4-mapped address is its IPv4 client');
    assertError(await session('198.51.100.9'), 429, 'RATE_LIMITED');
  });
});

describe('shop: session ID guessing', () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_REJECTED_COOKIES_PER_MINUTE: '5', SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await shop?.stop();
  });

  it('random session IDs when one address sends more than the limit then 429 RATE_LIMITED (which expires the cookie too), while its valid session and other addresses go on', async () => {
    await clearOfMinuteBoundary();
    const guesser = '198.51.100.20';
    const own = await rawRequest(shop.url + '/api/session', 'GET', { 'x-forwarded-for': guesser });
    assert.equal(own.status, 200);
    const pair = String(own.headers['set-cookie']).split(';')[0]!;
    const name = pair.slice(0, pair.indexOf('='));
    const guess = (client: string) => rawRequest(shop.url + '/api/cart', 'GET', {
      'x-forwarded-for': client, cookie: `${name}=${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
    });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await guess(guesser);
      statuses.push(r.status);
      if (r.status === 429) assertError(r, 429, 'RATE_LIMITED');
      // The 429 too: left in the browser, a cookie the secret no longer verifies would be sent into refusal after refusal.
      assert.match(String(r.headers['set-cookie']), new RegExp(`^${name}=;`), 'the invalid cookie is cleared');
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    const known = await rawRequest(shop.url + '/api/session', 'GET', { 'x-forwarded-for': guesser, cookie: pair });
    assert.equal(known.status, 200, 'the address’s valid session is not refused');
    assert.equal((await guess('198.51.100.21')).status, 200, 'another address has its own allowance');
  });

  it('random session IDs when one IPv6 client sends them from many addresses of its /64 then they count toward one limit', async () => {
    await clearOfMinuteBoundary();
    const name = String((await rawRequest(shop.url + '/api/session', 'GET', {})).headers['set-cookie']).split('=')[0]!;
    const guess = (client: string) => rawRequest(shop.url + '/api/cart', 'GET', {
      'x-forwarded-for': client, cookie: `${name}=${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
    });
    const statuses: number[] = [];
    for (let i = 1; i <= 8; i++) statuses.push((await guess(`2001:db8:5:6::${i.toString(16)}`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.equal((await guess('2001:db8:5:7::1')).status, 200, 'another /64 has its own allowance');
  });

  it('random session IDs when one address sends them in requests and live-channel handshakes then both count toward one limit, and the handshake past it is 429', async () => {
    await clearOfMinuteBoundary();
    const guesser = '198.51.100.40';
    const name = String((await rawRequest(shop.url + '/api/session', 'GET', {})).headers['set-cookie']).split('=')[0]!;
    const forged = () => `${name}=${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    const live = shop.url.replace('http:', 'ws:') + '/api/live';
    const handshake = (client: string) => connect(live, { origin: shop.url, 'x-forwarded-for': client, cookie: forged() }).then(
      () => assert.fail('a forged cookie was upgraded'), (err: { status: number; body: { error: { code: string } } }) => [err.status, err.body.error.code]);
    for (let i = 0; i < 3; i++) assert.equal((await rawRequest(shop.url + '/api/cart', 'GET', { 'x-forwarded-for': guesser, cookie: forged() })).status, 200);
    assert.deepEqual(await handshake(guesser), [401, 'UNAUTHORIZED']);
    assert.deepEqual(await handshake(guesser), [401, 'UNAUTHORIZED']);
    assert.deepEqual(await handshake(guesser), [429, 'RATE_LIMITED'], 'the sixth forged cookie from the address, over requests and handshakes');
    assertError(await rawRequest(shop.url + '/api/cart', 'GET', { 'x-forwarded-for': guesser, cookie: forged() }), 429, 'RATE_LIMITED');
    assert.deepEqual(await handshake('198.51.100.41'), [401, 'UNAUTHORIZED'], 'another address behind the proxy has its own allowance');
  });

  it('signed cookies that name no session (ended by a logout) when one address sends more than the limit then they are not throttled: a guess cannot be signed', async () => {
    await clearOfMinuteBoundary();
    const client = '198.51.100.30';
    const cookies: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await rawRequest(shop.url + '/api/session', 'GET', { 'x-forwarded-for': client });
      const cookie = String(r.headers['set-cookie']).split(';')[0]!;
      cookies.push(cookie);
      const token = (r.body as { csrfToken: string }).csrfToken;
      const ended = await rawRequest(shop.url + '/api/auth/logout', 'POST', {
        'x-forwarded-for': client, cookie, 'x-csrf-token': token, origin: shop.url, 'content-type': 'application/json',
      }, '{}');
      assert.equal(ended.status, 200, `logout answered ${ended.status} ${ended.text}`);
    }
    const statuses: number[] = [];
    for (const cookie of cookies) statuses.push((await rawRequest(shop.url + '/api/cart', 'GET', { 'x-forwarded-for': client, cookie })).status);
    assert.deepEqual(statuses, Array(7).fill(200));
  });
});

describe('shop: new sessions from many addresses', () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_NEW_SESSIONS_PER_MINUTE_TOTAL: '3', SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await shop?.stop();
  });

  it('new sessions when many addresses together pass the total limit then 429 RATE_LIMITED with Retry-After, while existing sessions go on', async () => {
    await clearOfMinuteBoundary();
    const session = (client: string, cookie?: string) => rawRequest(shop.url + '/api/session', 'GET', { 'x-forwarded-for': client, ...(cookie ? { cookie } : {}) });
    const first = await session('203.0.113.1');
    assert.equal(first.status, 200);
    for (const client of ['203.0.113.2', '203.0.113.3']) assert.equal((await session(client)).status, 200);
    const refused = await session('203.0.113.4');
    assertError(refused, 429, 'RATE_LIMITED');
    assert.equal(refused.headers['retry-after'], '60');
    assert.equal(refused.headers['set-cookie'], undefined, 'no session was created');
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    const again = await session('203.0.113.1', cookie);
    assert.equal(again.status, 200, 'an existing session is not limited');
  });
});

describe('shop: a store holding SHOP_MAX_SESSIONS', () => {
  let shop: TestShop;
  before(async () => {
    shop = await startTestShop({ SHOP_MAX_SESSIONS: '2', SHOP_TRUST_PROXY: '127.0.0.1' });
  });
  after(async () => {
    await shop?.stop();
  });

  it('new sessions when the store holds SHOP_MAX_SESSIONS then 503 TOO_MANY_SESSIONS with Retry-After, while existing sessions go on', async () => {
    const session = (client: string, cookie?: string) => rawRequest(shop.url + '/api/session', 'GET', { 'x-forwarded-for': client, ...(cookie ? { cookie } : {}) });
    const first = await session('203.0.113.1');
    assert.equal(first.status, 200);
    assert.equal((await session('203.0.113.2')).status, 200);
    const refused = await session('203.0.113.3');
    assertError(refused, 503, 'TOO_MANY_SESSIONS');
    const wait = Number(refused.headers['retry-after']);
    assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 60, `Retry-After ${String(refused.headers['retry-after'])}: until the store is counted again`);
    assert.equal(refused.headers['set-cookie'], undefined, 'no session was created');
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    const again = await session('203.0.113.1', cookie);
    assert.equal(again.status, 200, 'an existing session goes on');
    const metrics = await rawRequest(shop.url + '/metrics', 'GET', {});
    assert.match(metrics.text, /^tether_sessions_refused_total\{node="[^"]*"\} 1$/m);
  });
});
