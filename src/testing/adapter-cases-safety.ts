/**
 * Adapter suite, part two: CSRF, no lost updates, read-only requests never waiting for writers, commit
 * before the response, failing closed on a broken store, and no resurrection of ended sessions.
 * @module
 */
import assert from 'node:assert/strict';
import { hashId } from '../core/ids.js';
import type { SuiteContext, SuiteEnv } from './adapter-suite.js';
import type { Reply } from './adapter-kit.js';

const codeOf = (r: Reply): string | undefined => (r.json?.error as { code?: string } | undefined)?.code;
const idOf = (cookie: string): string => cookie.slice(cookie.indexOf('=') + 1).split('.')[0]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A hold a test opens by hand; `entered` resolves when a request reaches it. */
function latch(env: SuiteEnv): { entered: Promise<void>; release: () => void } {
  let entered!: () => void;
  let release!: () => void;
  const enteredP = new Promise<void>((r) => (entered = r));
  const released = new Promise<void>((r) => (release = r));
  env.hooks.hold = () => {
    entered();
    return released;
  };
  return { entered: enteredP, release };
}

export function safetyCases({ test, setup, newSession }: SuiteContext): void {
  test('unsafe request when the CSRF token is missing, wrong or another session\'s then 403 CSRF_TOKEN_INVALID', async (t) => {
    const env = await setup(t);
    const a = await newSession(env);
    const b = await newSession(env);
    for (const token of [undefined, '', a.token.slice(0, -2) + 'xx', b.token]) {
      const r = await env.call('POST', '/add', { cookie: a.cookie, token, body: { item: 'x' } });
      assert.equal(r.status, 403, `token ${token === b.token ? "of another session" : String(token)}`);
      assert.equal(codeOf(r), 'CSRF_TOKEN_INVALID');
    }
    assert.equal((await env.call('POST', '/add', { cookie: a.cookie, token: a.token, body: { item: 'ok' } })).status, 200);
    assert.deepEqual((await env.call('GET', '/state', { cookie: a.cookie })).json?.data, { cart: ['ok'] });
  });

  test('unsafe request when the right token comes anywhere but its header (query, JSON body, a cookie) then 403 CSRF_TOKEN_INVALID (S36)', async (t) => {
    const env = await setup(t);
    const a = await newSession(env);
    const q = encodeURIComponent(a.token);
    const offers: Array<[string, Record<string, unknown>, Record<string, string>]> = [
      [`/add?_csrf=${q}&csrf=${q}&x-csrf-token=${q}`, { item: 'x' }, {}],
      ['/add', { item: 'x', _csrf: a.token, csrfToken: a.token, 'x-csrf-token': a.token }, {}],
      ['/add', { item: 'x' }, { cookie: `${a.cookie}; _csrf=${q}; x-csrf-token=${q}` }],
    ];
    for (const [path, body, headers] of offers) {
      const r = await env.call('POST', path, { cookie: headers.cookie ?? a.cookie, body });
      assert.equal(r.status, 403, path + JSON.stringify(body) + JSON.stringify(headers));
      assert.equal(codeOf(r), 'CSRF_TOKEN_INVALID');
    }
    assert.deepEqual((await env.call('GET', '/state', { cookie: a.cookie })).json?.data, {}, 'nothing stored');
  });

  test('unsafe request from another origin then 403 ORIGIN_MISMATCH: other, null or look-alike Origin, foreign Referer, Sec-Fetch-Site cross-site', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const post = (headers: Record<string, string>) => env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'x' }, headers });
    for (const origin of ['http://evil.example', 'null', `${env.app.url}.attacker.com`, 'http://127.0.0.2:1']) {
      const r = await post({ origin });
      assert.equal(r.status, 403, origin);
      assert.equal(codeOf(r), 'ORIGIN_MISMATCH', origin);
    }
    const referer = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'x' }, noOrigin: true, headers: { referer: 'http://evil.example/page' } });
    assert.equal(codeOf(referer), 'ORIGIN_MISMATCH');
    const sameReferer = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'x' }, noOrigin: true, headers: { referer: `${env.app.url}/cart` } });
    assert.equal(sameReferer.status, 200);
    assert.equal(codeOf(await post({ 'sec-fetch-site': 'cross-site' })), 'ORIGIN_MISMATCH');
    assert.equal((await post({ 'sec-fetch-site': 'same-origin' })).status, 200);
    assert.deepEqual((await env.call('GET', '/state', { cookie: s.cookie })).json?.data, { cart: ['x', 'x'] }, 'only the two same-origin requests changed anything');

    const pinned = await setup(t, { csrf: { origins: ['https://app.example.org'] } });
    const p = await newSession(pinned);
    const send = (origin: string) => pinned.call('POST', '/add', { cookie: p.cookie, token: p.token, body: { item: 'y' }, headers: { origin } });
    assert.equal((await send('https://app.example.org')).status, 200);
    const lookAlike = await send('https://app.example.org.attacker.com');
    assert.equal(lookAlike.status, 403);
    assert.equal(codeOf(lookAlike), 'ORIGIN_MISMATCH');
  });

  test('unsafe request with a text/plain or form body then 415 UNSUPPORTED_MEDIA_TYPE and no change', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'x' }, headers: { 'content-type': type } });
      assert.equal(r.status, 415, type);
      assert.equal(codeOf(r), 'UNSUPPORTED_MEDIA_TYPE');
    }
    assert.deepEqual((await env.call('GET', '/state', { cookie: s.cookie })).json?.data, {});
  });

  test('route with csrf turned off when posted to without a token then it runs', async (t) => {
    const env = await setup(t);
    const r = await env.call('POST', '/open', { headers: { origin: 'http://evil.example' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json?.data, { n: 7 });
  });

  test('50 concurrent read-wait-write requests on one session then the counter is exactly 50', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const replies = await Promise.all(Array.from({ length: 50 }, () => env.call('POST', '/count', { cookie: s.cookie, token: s.token })));
    assert.deepEqual(replies.map((r) => r.status), new Array(50).fill(200));
    assert.deepEqual([...replies.map((r) => r.json?.n as number)].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual((await env.call('GET', '/state', { cookie: s.cookie })).json?.data, { n: 50 });
  });

  test('read-only request when a writer holds the session then it completes first, and the next writer waits its turn', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    // The writer holds until the reader is done, or 3 s at most: a reader stuck behind the writer
    // then finishes after it, and the order below fails instead of the test hanging.
    const hold = latch(env);
    const fallback = setTimeout(hold.release, 3_000);
    t.after(() => clearTimeout(fallback));
    const order: string[] = [];
    const slow = env.call('POST', '/slow', { cookie: s.cookie, token: s.token }).then((r) => (order.push('slow writer'), r));
    await hold.entered;
    const next = env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'after' } }).then((r) => (order.push('next writer'), r));
    const read = await env.call('GET', '/state', { cookie: s.cookie });
    order.push('reader');
    hold.release();
    assert.equal(read.status, 200);
    assert.equal(read.json?.isNew, false);
    assert.deepEqual(read.json?.data, {}, 'the reader saw the state before the writer committed');
    assert.deepEqual((await slow).status, 200);
    assert.deepEqual((await next).json?.data, { cart: ['late', 'after'] }, 'the next writer saw the slow one\'s write');
    assert.deepEqual(order, ['reader', 'slow writer', 'next writer']);
  });

  test('redirect when the handler changed the session then the store holds the write by the time the client sees the 302', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    env.store.fail('set', { delayMs: 150 });
    const r = await env.call('POST', '/redirect', { cookie: s.cookie, token: s.token });
    const rec = await env.memory.get(hashId(idOf(s.cookie)));
    assert.equal(r.status, 302);
    assert.match(r.headers.get('location') ?? '', /\/state$/);
    assert.ok(rec, 'record present');
    assert.equal((JSON.parse(rec.data) as { d: { n?: number } }).d.n, 42, 'written before the status line went out');
  });

  for (const fault of ['hang', 'reject', 'throw'] as const) {
    test(`store when its calls ${fault} then 503 STORE_UNAVAILABLE within storeTimeoutMs, and the server recovers`, async (t) => {
      const env = await setup(t, { storeTimeoutMs: 150 });
      const s = await newSession(env);
      const bound = 150 + 3_000;
      env.store.fail('get', fault);
      let started = Date.now();
      const load = await env.call('GET', '/state', { cookie: s.cookie });
      assert.ok(Date.now() - started < bound, 'bounded');
      assert.equal(load.status, 503);
      assert.equal(codeOf(load), 'STORE_UNAVAILABLE');
      assert.equal(load.headers.get('retry-after'), '1');
      assert.equal((await env.call('GET', '/state')).status, 200, 'a request that needs no store is still served');
      env.store.heal().fail('set', fault);
      started = Date.now();
      const save = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'x' } });
      assert.ok(Date.now() - started < bound, 'bounded');
      assert.equal(save.status, 503);
      assert.equal(codeOf(save), 'STORE_UNAVAILABLE');
      assert.deepEqual(save.setCookies, []);
      env.store.heal().fail('touch', fault);
      env.clock.advance(5 * 60_000);
      const touch = await env.call('GET', '/state', { cookie: s.cookie });
      assert.equal(touch.status, 503, 'a due expiry touch that fails fails the request');
      assert.equal(codeOf(touch), 'STORE_UNAVAILABLE');
      env.store.heal();
      const ok = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'y' } });
      assert.equal(ok.status, 200, 'the failed requests released the session');
      assert.deepEqual(ok.json?.data, { cart: ['y'] }, 'the failed write left nothing behind');
    });
  }

  test('handler when it changes the session and then throws, an Error or a value none of whose properties can be read, then the answer is a 500 (INTERNAL_ERROR for the value that cannot be read), nothing is written, and the session is released', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const writes = env.store.calls.set;
    for (const path of ['/boom', '/boom-unreadable']) {
      const boom = await env.call('POST', path, { cookie: s.cookie, token: s.token });
      assert.equal(boom.status, 500, path);
      // A plain Error's answer is the framework's own where the app registered no error handler of ours.
      if (path === '/boom-unreadable') assert.equal(codeOf(boom), 'INTERNAL_ERROR', path);
      assert.equal(env.store.calls.set, writes, `${path}: a failed request writes nothing`);
      assert.deepEqual((await env.call('GET', '/state', { cookie: s.cookie })).json?.data, {}, path);
    }
    const next = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'z' } });
    assert.equal(next.status, 200, 'the session was released and the app still answers');
    assert.deepEqual(next.json?.data, { cart: ['z'] });
  });

  test('error answers when forced (CSRF, origin, media type, too large, store outage, a throwing handler) then carry neither the session ID, its cookie nor its token (S6)', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const value = s.cookie.slice(s.cookie.indexOf('=') + 1);
    const replies: Array<[string, Reply]> = [
      ['no token', await env.call('POST', '/add', { cookie: s.cookie, body: { item: 'x' } })],
      ['another origin', await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'x' }, headers: { origin: 'https://evil.example' } })],
      ['text/plain', await env.call('POST', '/add', { cookie: s.cookie, token: s.token, headers: { 'content-type': 'text/plain' } })],
      ['too large', await env.call('POST', '/fill', { cookie: s.cookie, token: s.token, body: { size: 70_000 } })],
      ['handler throws', await env.call('POST', '/boom', { cookie: s.cookie, token: s.token })],
    ];
    env.store.fail('get', 'reject');
    replies.push(['store outage', await env.call('GET', '/state', { cookie: s.cookie })]);
    env.store.heal();
    for (const [what, r] of replies) {
      assert.ok(r.status >= 400, `${what}: ${r.status}`);
      const seen = JSON.stringify(r.json ?? null) + [...r.headers].filter(([name]) => name !== 'set-cookie').map(([n, v]) => `${n}: ${v}`).join('\n');
      for (const [secret, name] of [[idOf(s.cookie), 'the ID'], [value, 'the cookie value'], [s.token, 'the CSRF token']] as const) {
        assert.equal(seen.includes(secret), false, `${what}: the answer holds ${name}`);
      }
    }
  });

  test('client when it goes away while its request holds the session then the session is released for the next request', async (t) => {
    const env = await setup(t, { gateTimeoutMs: 3_000 });
    const s = await newSession(env);
    const hold = latch(env);
    const abort = new AbortController();
    const gone = env.call('POST', '/slow', { cookie: s.cookie, token: s.token, body: { mode: 'update' }, signal: abort.signal }).catch((e: unknown) => e);
    await hold.entered;
    abort.abort();
    await gone;
    // The handler stays in its hold (it answers nobody) until the next request has been answered: the
    // adapter gives the turn back when the client's connection closes, not when the handler ends.
    const next = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'next' } });
    hold.release();
    assert.equal(next.status, 200, 'not SESSION_BUSY');
    const cart = (next.json?.data as { cart: string[] }).cart;
    assert.deepEqual(cart, ['next'], 'the abandoned request wrote nothing');
    await sleep(20);
    assert.deepEqual((await env.call('GET', '/state', { cookie: s.cookie })).json?.data, { cart: ['next'] }, 'nor after its handler went on');
  });

  test('client when it goes away while its request waits for the session\'s turn then its handler never runs, and the turn passes on', async (t) => {
    const env = await setup(t, { gateTimeoutMs: 5_000 });
    const s = await newSession(env);
    let entries = 0;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    env.hooks.hold = () => {
      entries++;
      return released;
    };
    const first = env.call('POST', '/slow', { cookie: s.cookie, token: s.token, body: { mode: 'direct' } });
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !ok(); i++) await sleep(10);
      assert.ok(ok(), what);
    };
    await until('the first request holds the session', () => entries === 1);
    const abort = new AbortController();
    const gone = env.call('POST', '/slow', { cookie: s.cookie, token: s.token, body: { mode: 'update' }, signal: abort.signal }).catch((e: unknown) => e);
    await until('the second request waits for its turn', () => env.tether.stats().gateWaiting === 1);
    abort.abort();
    await gone;
    await sleep(50);
    release();
    assert.equal((await first).status, 200);
    await until('the turn has passed on and been given back', () => env.tether.stats().gateWaiting === 0 && env.tether.stats().gateHolding === 0);
    await sleep(20);
    assert.equal(entries, 1, 'the handler of the request whose client had gone never ran');
    const next = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'next' } });
    assert.equal(next.status, 200);
    assert.deepEqual((next.json?.data as { cart: string[] }).cart, ['late', 'next'], 'the gone request wrote nothing');
  });

  for (const mode of ['direct', 'update'] as const) {
    test(`slow ${mode} write when another process logged the session out meanwhile then 409 and the session stays ended`, async (t) => {
      const a = await setup(t);
      const b = await setup(t, {}, a);
      const s = await newSession(a);
      const login = await a.call('POST', '/login', { cookie: s.cookie, token: s.token, body: { user: 'alice' } });
      const cookie = login.cookie!;
      const token = login.json?.token as string;
      const hold = latch(a);
      const slow = a.call('POST', '/slow', { cookie, token, body: { mode } });
      await hold.entered;
      const out = await b.call('POST', '/logout', { cookie, token });
      assert.equal(out.status, 200);
      hold.release();
      const late = await slow;
      assert.equal(late.status, 409);
      assert.equal(codeOf(late), 'SESSION_CONFLICT');
      assert.equal(await a.memory.count(), 0, 'nothing re-created');
      assert.equal((await a.call('GET', '/state', { cookie })).json?.isNew, true);
      assert.equal((await b.call('GET', '/state', { cookie })).json?.isNew, true);
    });
  }

  test('slow read-only request when the session was logged out meanwhile then its expiry touch re-creates nothing', async (t) => {
    const a = await setup(t);
    const b = await setup(t, {}, a);
    const s = await newSession(a);
    a.clock.advance(5 * 60_000);
    const hold = latch(a);
    const slow = a.call('GET', '/slow-read', { cookie: s.cookie });
    await hold.entered;
    assert.equal((await b.call('POST', '/logout', { cookie: s.cookie, token: s.token })).status, 200);
    hold.release();
    assert.ok((await slow).status < 500);
    assert.equal(await a.memory.count(), 0);
    assert.equal((await a.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true);
  });

  test('logout in the same process when a slow write is in flight then it waits for it and the session ends', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const hold = latch(env);
    const slow = env.call('POST', '/slow', { cookie: s.cookie, token: s.token, body: { mode: 'direct' } });
    await hold.entered;
    const out = env.call('POST', '/logout', { cookie: s.cookie, token: s.token });
    await sleep(20);
    hold.release();
    assert.equal((await slow).status, 200);
    assert.equal((await out).status, 200);
    assert.equal(await env.memory.count(), 0);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true);
  });
}
