/**
 * Adapter suite, part three: routes whose session is optional (GET and POST /optional) while the store
 * cannot answer. Opening fails: the handler runs without a session and the browser's cookie is left
 * alone. Committing fails: the handler's answer goes out without the cookie, the failure counted.
 * Routes whose session is required are refused 503 STORE_UNAVAILABLE as before.
 * @module
 */
import assert from 'node:assert/strict';
import { hashId } from '../core/ids.js';
import type { SuiteContext, SuiteEnv } from './adapter-suite.js';
import type { Reply } from './adapter-kit.js';

function codeOf(r: Reply): string | undefined {
  return (r.json?.error as { code?: string } | undefined)?.code;
}

/** The count stored in the session the cookie names, read from the backend (no store call counted). */
async function storedCount(env: SuiteEnv, cookie: string): Promise<number | undefined> {
  const id = cookie.slice(cookie.indexOf('=') + 1).split('.')[0]!;
  const record = await env.memory.get(hashId(id));
  assert.ok(record, 'the session is stored');
  return (JSON.parse(record.data) as { d: { n?: number } }).d.n;
}

/** A stored session holding n = 1, made through GET /optional while the store answers. */
async function visited(env: SuiteEnv): Promise<string> {
  const first = await env.call('GET', '/optional');
  assert.equal(first.status, 200);
  assert.deepEqual(first.json?.session, { isNew: true, n: 1 });
  assert.ok(first.cookie, 'the new session\'s cookie is set');
  return first.cookie;
}

export function optionalCases({ test, setup, newSession }: SuiteContext): void {
  test('optional session when the store answers then the handler gets the session, and its change is committed with the cookie', async (t) => {
    const env = await setup(t);
    const cookie = await visited(env);
    assert.equal(await storedCount(env, cookie), 1);
    const again = await env.call('GET', '/optional', { cookie });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json?.session, { isNew: false, n: 2 });
    assert.equal(await storedCount(env, cookie), 2, 'committed');
    assert.deepEqual((await env.call('GET', '/state', { cookie })).json?.data, { n: 2 });
  });

  for (const fault of ['reject', 'throw'] as const) {
    test(`optional session when the store's reads ${fault} then the handler answers 200 with no session, and the cookie is neither set nor cleared`, async (t) => {
      const env = await setup(t);
      const cookie = await visited(env);
      env.store.fail('get', fault);
      const errors = env.tether.stats().storeErrors;
      const r = await env.call('GET', '/optional', { cookie });
      assert.equal(r.status, 200, 'the handler answered');
      assert.deepEqual(r.json, { session: null }, 'the handler was handed no session');
      assert.deepEqual(r.setCookies, [], 'no Set-Cookie at all: the cookie is not cleared');
      assert.equal(r.headers.get('clear-site-data'), null);
      assert.ok(env.tether.stats().storeErrors > errors, 'the failed read is counted');
      env.store.heal();
      const back = await env.call('GET', '/state', { cookie });
      assert.equal(back.status, 200);
      assert.deepEqual(back.json?.data, { n: 1 }, 'the cookie kept through the outage still names the session');
    });
  }

  test('required session during the same outage then 503 STORE_UNAVAILABLE, and an unsafe optional route whose CSRF token cannot be checked too', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const cookie = (await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'a' } })).cookie ?? s.cookie;
    env.store.fail('get', 'reject');
    const optional = await env.call('GET', '/optional', { cookie });
    assert.equal(optional.status, 200, 'the optional route is served');
    const required = await env.call('GET', '/state', { cookie });
    assert.equal(required.status, 503);
    assert.equal(codeOf(required), 'STORE_UNAVAILABLE');
    assert.deepEqual(required.setCookies, []);
    const post = await env.call('POST', '/optional', { cookie, token: s.token });
    assert.equal(post.status, 503, 'its token is in the session it could not open');
    assert.equal(codeOf(post), 'STORE_UNAVAILABLE');
    env.store.heal();
    assert.deepEqual((await env.call('GET', '/state', { cookie })).json?.data, { cart: ['a'] });
  });

  for (const fault of ['reject', 'throw'] as const) {
    test(`optional session when its commit's write ${fault}s then the handler's answer goes out without Set-Cookie, nothing stored, and the failure is counted`, async (t) => {
      const env = await setup(t);
      const cookie = await visited(env);
      env.store.fail('set', fault);
      const errors = env.tether.stats().storeErrors;
      const r = await env.call('GET', '/optional', { cookie });
      assert.equal(r.status, 200, 'the handler\'s answer, not an error');
      assert.deepEqual(r.json?.session, { isNew: false, n: 2 });
      assert.deepEqual(r.setCookies, []);
      assert.equal(env.tether.stats().storeErrors, errors + 1, 'the failed commit is counted');
      // A new session whose first write fails: answered, and no cookie for a session that was not stored.
      const fresh = await env.call('GET', '/optional');
      assert.equal(fresh.status, 200);
      assert.deepEqual(fresh.json?.session, { isNew: true, n: 1 });
      assert.deepEqual(fresh.setCookies, [], 'no cookie names a session that is not stored');
      assert.equal(env.tether.stats().storeErrors, errors + 2);
      env.store.heal();
      assert.equal(await storedCount(env, cookie), 1, 'the uncommitted change is not stored');
      const next = await env.call('GET', '/optional', { cookie });
      assert.deepEqual(next.json?.session, { isNew: false, n: 2 }, 'the session goes on once the store is back');
      assert.equal(await storedCount(env, cookie), 2);
    });
  }
}
