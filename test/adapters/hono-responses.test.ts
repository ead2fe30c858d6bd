/**
 * tether/hono replaces the handler's response after the commit (with the session's cookies, or with the
 * error when the commit failed): what goes out is the error alone, or the handler's response plus the
 * session's cookies; a change made in a `stream()` callback, after the commit, is refused. With
 * @hono/node-server on loopback and a store whose writes fail on demand.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { etag } from 'hono/etag';
import { createTether, MemoryStore } from '../../src/index.js';
import type { SessionRecord } from '../../src/index.js';
import { FaultyStore } from '../../src/testing/faulty-store.js';
import { sessions } from '../../src/adapters/hono/index.js';
import type { TetherEnv } from '../../src/adapters/hono/index.js';
import { assertCommitErrorOnly, listen, CookieClient } from '../helpers/cookie-client.js';
import type { Listening } from '../helpers/cookie-client.js';
import { serveHono } from '../helpers/hono.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!!';
type Data = Record<string, unknown>;
const CSP = "default-src 'self'";

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

/** A MemoryStore whose writes reject while `failing.on` is set; `stored` settles after its first write. */
function failingStore(): { store: MemoryStore; failing: { on: boolean }; stored: Promise<void> } {
  const store = new MemoryStore();
  const failing = { on: false };
  let written!: () => void;
  const stored = new Promise<void>((resolve) => { written = resolve; });
  const set = store.set.bind(store);
  store.set = async (record: SessionRecord, expected: number) => {
    if (failing.on) throw new Error('disk full');
    const out = await set(record, expected);
    written();
    return out;
  };
  return { store, failing, stored };
}

async function start(app: Hono<TetherEnv<Data>>): Promise<string> {
  const running = await serveHono(app);
  closing.push(() => running.close());
  return running.url;
}

/** An upstream server whose answer the handlers pass on as a fetch() Response (immutable headers). */
async function upstream(): Promise<Listening> {
  const up = await listen((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.setHeader('content-length', '2');
    res.setHeader('set-cookie', 'up=1; Path=/');
    res.setHeader('x-upstream', 'yes');
    res.end('ok');
  });
  closing.push(() => up.close());
  return up;
}

/** The same, answering chunked: its Transfer-Encoding must not frame an error sent in its place. */
async function chunkedUpstream(): Promise<Listening> {
  const up = await listen((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.setHeader('x-upstream', 'yes');
    res.write('o');
    res.end('k');
  });
  closing.push(() => up.close());
  return up;
}

async function app(): Promise<{ c: CookieClient; failing: { on: boolean }; up: Listening }> {
  const { store, failing, stored } = failingStore();
  const tether = createTether<Data>({ secrets: [SECRET], store });
  const up = await upstream();
  const chunked = await chunkedUpstream();
  const hono = new Hono<TetherEnv<Data>>();
  hono.use(sessions(tether, { csrf: false }));
  // Registered after sessions(): it sets its header on the handler's answer, before the commit.
  hono.use(async (c, next) => {
    await next();
    c.header('content-security-policy', CSP);
  });
  hono.post('/remember', (c) => {
    c.get('session').set('n', 1);
    c.header('set-cookie', 'remember=TOKEN; Path=/');
    c.header('location', '/account');
    c.header('x-handler', 'yes');
    return c.json({ ok: true }, 201);
  });
  hono.post('/proxy', async (c) => {
    c.get('session').set('n', 2);
    return fetch(up.url);
  });
  hono.post('/proxy-chunked', async (c) => {
    c.get('session').set('n', 4);
    return fetch(chunked.url);
  });
  hono.post('/stream', (c) => {
    const session = c.get('session');
    session.set('n', 3);
    return stream(c, async (out) => {
      // A body that streams for a while: its session was committed when the handler returned.
      await out.write('a:');
      await stored;
      let outcome = 'ok';
      try {
        await session.update((d) => { d.late = 1; });
      } catch (err) {
        outcome = (err as { code?: string }).code ?? 'threw';
      }
      await out.write(outcome);
    });
  });
  hono.get('/read', (c) => c.json(c.get('session').data));
  return { c: new CookieClient(await start(hono)), failing, up };
}

describe('hono adapter: the response after the commit', () => {
  it('when the commit fails then the error goes out without the handler\'s cookies or Location, keeping the headers every response carries', async () => {
    const { c, failing } = await app();
    failing.on = true;
    const r = await c.request('/remember', { method: 'POST' });
    assertCommitErrorOnly(r, []);
    assert.equal(r.headers.get('content-security-policy'), CSP, 'a middleware\'s header stays, as on the other adapters');
    assert.equal(r.headers.get('x-handler'), 'yes', 'a header that is not the answer\'s own stays, as on the other adapters');
  });

  it('when the commit fails after the handler returned a fetch() response then the error body is whole, without its cookies or framing', async () => {
    const { c, failing } = await app();
    failing.on = true;
    for (const path of ['/proxy', '/proxy-chunked']) {
      const r = await c.request(path, { method: 'POST' });
      assertCommitErrorOnly(r, ['transfer-encoding']);
      assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(r.body)), path);
      assert.equal(r.headers.get('content-security-policy'), CSP, path);
    }
  });

  it('when the handler returns a fetch() response with its own Set-Cookie then the new session\'s cookie goes out too', async () => {
    const { c } = await app();
    const r = await c.request('/proxy', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers.get('x-upstream'), 'yes');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.setCookies.length, 2, r.setCookies.join(' | '));
    assert.ok(r.setCookies.some((v) => v.startsWith('up=1')));
    assert.deepEqual((await c.request('/read')).json(), { n: 2 }, 'the stored session is the one the cookie names');
  });
});

/** Settles with `settled`, or rejects after `ms` saying what did not happen. */
function within<T>(settled: Promise<T>, ms: number, what: string): Promise<T> {
  let timer!: NodeJS.Timeout;
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); });
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

describe('hono adapter: a stream() response whose commit fails', () => {
  it('when the commit fails after a stream() response then the error goes out and the stream callback ends: its onAbort listeners run and it stops writing', async () => {
    const { store, failing } = failingStore();
    const hono = new Hono<TetherEnv<Data>>();
    hono.use(sessions(createTether<Data>({ secrets: [SECRET], store }), { csrf: false }));
    const seen = { aborted: 0, writes: 0 };
    let ended!: () => void;
    const callbackEnded = new Promise<void>((resolve) => { ended = resolve; });
    hono.post('/feed', (c) => {
      c.get('session').set('n', 1);
      return stream(c, async (out) => {
        out.onAbort(() => { seen.aborted++; });
        try {
          // A feed that writes until its reader goes away (bounded, so a failing test ends).
          for (let i = 0; i < 1000 && !out.aborted; i++) {
            await out.write(`event ${i}\n`);
            seen.writes++;
          }
        } finally {
          ended();
        }
      });
    });
    const c = new CookieClient(await start(hono));
    failing.on = true;
    const r = await c.request('/feed', { method: 'POST' });
    assertCommitErrorOnly(r, []);
    await within(callbackEnded, 2000, 'the stream() callback ends');
    assert.equal(seen.aborted, 1, 'its onAbort listener ran');
    assert.ok(seen.writes < 1000, `the callback stopped at the abort, after ${seen.writes} writes`);
  });
});

describe('hono adapter: mounted twice', () => {
  it('when sessions() is mounted on the app and on a sub-app with one engine then a write answers at once and is stored, the first mount\'s session serving the sub-app', async () => {
    const tether = createTether<Data>({ secrets: [SECRET], store: new MemoryStore(), gateTimeoutMs: 500 });
    const hono = new Hono<TetherEnv<Data>>();
    hono.use(sessions(tether, { csrf: false }));
    const outer: Array<TetherEnv<Data>['Variables']['session']> = [];
    hono.use(async (c, next) => {
      outer.push(c.get('session'));
      await next();
    });
    const sub = new Hono<TetherEnv<Data>>();
    sub.use(sessions(tether, { csrf: false }));
    sub.post('/write', (c) => {
      const session = c.get('session');
      session.set('n', Number(session.get('n') ?? 0) + 1);
      return c.json({ same: c.get('session') === outer.at(-1) });
    });
    sub.get('/read', (c) => c.json(c.get('session').data));
    hono.route('/sub', sub);
    const c = new CookieClient(await start(hono));
    // The first write creates the session; the second presents its cookie, so it takes the session's gate.
    const answers: unknown[] = [];
    for (const expected of [{ n: 1 }, { n: 2 }]) {
      const started = Date.now();
      const r = await c.request('/sub/write', { method: 'POST' });
      assert.equal(r.status, 200, r.body);
      assert.ok(Date.now() - started < 400, 'no wait at the session\'s gate');
      answers.push(r.json());
      assert.deepEqual((await c.request('/sub/read')).json(), expected);
    }
    assert.deepEqual(answers, [{ same: true }, { same: true }], 'the sub-app sees the app\'s session');
  });

  it('when the app\'s mount has the CSRF checks off and the sub-app\'s has them on then a post to the sub-app without its token is refused 403 and stores nothing', async () => {
    const tether = createTether<Data>({ secrets: [SECRET], store: new MemoryStore(), gateTimeoutMs: 500 });
    const hono = new Hono<TetherEnv<Data>>();
    hono.use(sessions(tether, { csrf: false }));
    hono.post('/start', (c) => (c.get('session').set('n', 1), c.json({ token: c.get('session').csrfToken })));
    const sub = new Hono<TetherEnv<Data>>();
    sub.use(sessions(tether));
    sub.post('/write', (c) => (c.get('session').set('n', 2), c.json({ ok: true })));
    hono.route('/sub', sub);
    hono.get('/read', (c) => c.json(c.get('session').data));
    const c = new CookieClient(await start(hono));
    const { token } = (await c.request('/start', { method: 'POST' })).json<{ token: string }>();
    const origin = { origin: c.base };
    const refused = await c.request('/sub/write', { method: 'POST', json: {}, headers: origin });
    assert.equal(refused.status, 403, refused.body);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'CSRF_TOKEN_INVALID');
    assert.deepEqual((await c.request('/read')).json(), { n: 1 }, 'nothing was stored');
    const accepted = await c.request('/sub/write', { method: 'POST', json: {}, headers: { ...origin, 'x-csrf-token': token } });
    assert.equal(accepted.status, 200, accepted.body);
    assert.deepEqual((await c.request('/read')).json(), { n: 2 });
  });
});

describe('hono adapter: changes after the commit', () => {
  it('when a stream() callback changes the session then the change throws SESSION_COMMITTED', async () => {
    const { c } = await app();
    const r = await c.request('/stream', { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'a:SESSION_COMMITTED');
    assert.equal(r.setCookies.length, 1, 'what the handler changed before returning is committed');
    assert.deepEqual((await c.request('/read')).json(), { n: 3 });
  });
});

describe('hono adapter: etag()', () => {
  it('when etag() is registered after sessions() and a conditional GET renews the session\'s ID then the 304 carries the new cookie, and the session outlives the old ID\'s grace', async () => {
    let now = Date.now();
    const tether = createTether<Data>({ secrets: [SECRET], csrf: false, renewal: { intervalMs: 60_000, graceMs: 5_000 }, clock: { now: () => now } });
    const app = new Hono<TetherEnv<Data>>();
    app.use(sessions(tether));
    app.use(etag());
    app.post('/login', (c) => (c.get('session').login('ada'), c.json({})));
    app.get('/page', (c) => c.text(`a page for ${c.get('session').userId ?? 'nobody'}`));
    const c = new CookieClient(await start(app));
    assert.equal((await c.request('/login', { method: 'POST' })).status, 200);
    const first = await c.request('/page');
    const tag = first.headers.get('etag');
    assert.ok(tag);
    now += 61_000;
    const renewed = await c.request('/page', { headers: { 'if-none-match': tag } });
    assert.equal(renewed.status, 304);
    assert.equal(renewed.setCookies.length, 1, 'the renewed ID goes out with the 304');
    now += 10_000;
    assert.equal((await c.request('/page')).body, 'a page for ada');
  });
});

describe('hono adapter: refusals before the handler', () => {
  it('when sessions() refuses a request (CSRF, a forged cookie, the store down) then the headers an earlier middleware set with c.header() stay on its answer, its cookie does not', async () => {
    const store = new FaultyStore(new MemoryStore());
    const app = new Hono<TetherEnv<Data>>();
    app.use(async (c, next) => {
      c.header('content-security-policy', CSP);
      c.header('access-control-allow-origin', 'https://app.example');
      c.header('set-cookie', 'tracking=1; Path=/');
      await next();
    });
    app.use(sessions(createTether<Data>({ secrets: [SECRET], store })));
    app.get('/token', (c) => {
      c.get('session').set('n', 1);
      return c.json({ token: c.get('session').csrfToken });
    });
    const running = await serveHono(app);
    closing.push(() => running.close());
    const c = new CookieClient(running.url);
    assert.equal((await c.request('/token')).status, 200);
    const kept = (r: { headers: Headers; setCookies: string[] }, sid: string[], what: string): void => {
      assert.equal(r.headers.get('content-security-policy'), CSP, what);
      assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example', what);
      assert.equal(r.headers.get('cache-control'), 'no-store', what);
      assert.deepEqual(r.setCookies.map((v) => v.split(';')[0]), sid, what);
    };
    const origin = { origin: running.url };
    const csrf = await c.request('/token', { method: 'POST', headers: origin, json: {} });
    assert.equal(csrf.status, 403);
    kept(csrf, [], 'a CSRF refusal');
    const forged = await c.request('/token', { method: 'POST', headers: { ...origin, cookie: 'sid=AAAA.BBBB' }, json: {}, withoutJar: true });
    assert.equal(forged.status, 403);
    kept(forged, ['sid='], 'a CSRF refusal of a forged cookie, which is expired');
    store.fail('get', 'reject');
    const outage = await c.request('/token');
    assert.equal(outage.status, 503);
    kept(outage, [], 'a store outage');
  });
});
