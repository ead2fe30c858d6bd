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
import { createTether, MemoryStore } from '../../src/index.js';
import type { SessionRecord } from '../../src/index.js';
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
