/**
 * Adapter suite, part one: the session lifecycle over HTTP (create, read, update, regenerate, destroy,
 * expiry), cookie attributes, secret rotation, and hostile cookies.
 * @module
 */
import assert from 'node:assert/strict';
import { hashId, generateId } from '../core/ids.js';
import { Signer } from '../core/signer.js';
import type { SuiteContext, SuiteEnv } from './adapter-suite.js';
import { SUITE_SECRETS } from './adapter-suite.js';

const MIN = 60_000;

/** The attributes of a Set-Cookie line, lower-cased names. */
function attributes(line: string): Map<string, string> {
  return new Map(line.split(';').slice(1).map((p) => {
    const [k, ...v] = p.trim().split('=');
    return [k!.toLowerCase(), v.join('=')] as [string, string];
  }));
}

/** A new session asked for (GET /token) while the store holds 2: refused with `status` and `code`, no cookie, nothing stored. */
async function refusedNewSession(env: SuiteEnv, status: number, code: string, retryAfter: string): Promise<void> {
  const refused = await env.call('GET', '/token');
  assert.equal(refused.status, status);
  assert.equal((refused.json?.error as { code?: string } | undefined)?.code, code);
  assert.equal(refused.headers.get('retry-after'), retryAfter);
  assert.equal(refused.cookie, undefined, 'no session cookie');
  assert.equal(await env.memory.count(), 2, 'nothing stored');
}

function idOf(cookie: string): string {
  return cookie.slice(cookie.indexOf('=') + 1).split('.')[0]!;
}

export function sessionCases({ test, setup, newSession }: SuiteContext): void {
  test('request without a cookie when it stores nothing then gets no Set-Cookie and causes no store call', async (t) => {
    const env = await setup(t);
    for (let i = 0; i < 3; i++) {
      const r = await env.call('GET', '/state');
      assert.equal(r.status, 200);
      assert.equal(r.json?.isNew, true);
      assert.deepEqual(r.setCookies, []);
    }
    assert.equal(env.store.log.length, 0);
  });

  test('session when created, updated and read then the cookie is HttpOnly, SameSite=Lax, Path=/, sent only when it changes, and holds no token', async (t) => {
    const env = await setup(t);
    const { cookie, token, reply } = await newSession(env);
    assert.equal(reply.setCookies.length, 1);
    const a = attributes(reply.setCookies[0]!);
    assert.ok(a.has('httponly'), 'HttpOnly');
    assert.equal(a.get('samesite')?.toLowerCase(), 'lax');
    assert.equal(a.get('path'), '/');
    assert.equal(a.has('secure'), false, 'not Secure outside production unless configured');
    assert.equal(a.has('domain'), false);
    assert.equal(reply.headers.get('cache-control'), 'no-store');
    assert.equal(reply.setCookies.join('').includes(token), false, 'the CSRF token never travels in a cookie');
    const add = await env.call('POST', '/add', { cookie, token, body: { item: 'apple' } });
    assert.equal(add.status, 200);
    assert.deepEqual(add.setCookies, [], 'no cookie when the ID did not change');
    const read = await env.call('GET', '/state', { cookie });
    assert.deepEqual(read.json?.data, { cart: ['apple'] });
    assert.equal(read.json?.isNew, false);
    assert.deepEqual(read.setCookies, []);
  });

  test('session when presented from another client address under addressChange then an anomaly is reported once, and with end the session ends', async (t) => {
    for (const policy of ['report', 'end'] as const) {
      // A /32 prefix: 127.0.0.1 and 127.0.0.2 are then two networks (both reach the loopback listener).
      const env = await setup(t, { addressChange: policy, addressPrefix: { ipv4: 32 } });
      const seen: Array<string | undefined> = [];
      env.tether.events.on('anomaly', (m: { reason?: string }) => void seen.push(m.reason));
      const { cookie } = await newSession(env);
      const moved = await env.call('GET', '/state', { cookie, localAddress: '127.0.0.2' });
      assert.equal(moved.status, 200);
      assert.deepEqual(seen, ['address'], `${policy}: the move is reported`);
      if (policy === 'report') {
        assert.equal(moved.json?.isNew, false, 'report: the request goes on with its session');
        const again = await env.call('GET', '/state', { cookie, localAddress: '127.0.0.2' });
        assert.equal(again.json?.isNew, false);
        assert.deepEqual(seen, ['address'], 'report: the new network was stored, so it is reported once');
      } else {
        assert.equal(moved.json?.isNew, true, 'end: the request goes on with a fresh session');
        assert.equal((await env.call('GET', '/state', { cookie })).json?.isNew, true, 'end: the session is gone, also from its first address');
      }
    }
  });

  test('new sessions from one client address when past newSessions.perAddress then 429 RATE_LIMITED with Retry-After and no cookie, while another address goes on', async (t) => {
    const env = await setup(t, { newSessions: { perAddress: 2, windowMs: 30_000 } });
    for (let i = 0; i < 2; i++) assert.ok((await env.call('GET', '/token')).cookie, `session ${i + 1} is created`);
    await refusedNewSession(env, 429, 'RATE_LIMITED', '30');
    const other = await env.call('GET', '/token', { localAddress: '127.0.0.2' });
    assert.equal(other.status, 200);
    assert.ok(other.cookie);
  });

  test('new sessions when the store holds newSessions.maxActive then 503 TOO_MANY_SESSIONS with Retry-After and no cookie, while stored sessions go on', async (t) => {
    const env = await setup(t, { newSessions: { maxActive: 2, recountMs: 3_000 } });
    const first = await newSession(env);
    assert.ok((await env.call('GET', '/token')).cookie, 'the second session is created');
    await refusedNewSession(env, 503, 'TOO_MANY_SESSIONS', '3');
    const write = await env.call('POST', '/add', { cookie: first.cookie, token: first.token, body: { item: 'pear' } });
    assert.equal(write.status, 200, 'a stored session goes on');
  });

  test('update not awaited by the handler when the response is sent then the commit waited for it and its change is stored', async (t) => {
    const env = await setup(t);
    const { cookie, token } = await newSession(env);
    const r = await env.call('POST', '/add-later', { cookie, token, body: { item: 'pear' } });
    assert.equal(r.status, 200);
    const read = await env.call('GET', '/state', { cookie });
    assert.deepEqual(read.json?.data, { cart: ['pear'] });
  });

  test('regenerate when requested then the ID changes, data stays, and the old cookie and old token are dead', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'pear' } });
    const r = await env.call('POST', '/regenerate', { cookie: s.cookie, token: s.token });
    assert.equal(r.status, 200);
    assert.ok(r.cookie && r.cookie !== s.cookie, 'a new cookie');
    assert.notEqual(idOf(r.cookie), idOf(s.cookie), 'a new ID');
    const token = r.json?.token as string;
    assert.notEqual(token, s.token, 'a new CSRF token');
    assert.equal(await env.memory.get(hashId(idOf(s.cookie))), null, 'the old record is gone');
    assert.deepEqual((await env.call('GET', '/state', { cookie: r.cookie })).json?.data, { cart: ['pear'] });
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true, 'the old cookie is dead');
    const stale = await env.call('POST', '/add', { cookie: r.cookie, token: s.token, body: { item: 'x' } });
    assert.equal(stale.status, 403);
    assert.equal((stale.json?.error as { code: string }).code, 'CSRF_TOKEN_INVALID');
    assert.equal((await env.call('POST', '/add', { cookie: r.cookie, token, body: { item: 'fig' } })).status, 200);
  });

  test('renewal when the ID is past renewal.intervalMs then a read answers a new ID with the data, the old cookie is answered the new one within the grace, and names nothing after it', async (t) => {
    const env = await setup(t, { renewal: { intervalMs: 60_000, graceMs: 10_000 } });
    const s = await newSession(env);
    await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'pear' } });
    env.clock.advance(61_000);
    const r = await env.call('GET', '/state', { cookie: s.cookie });
    assert.deepEqual(r.json?.data, { cart: ['pear'] });
    assert.ok(r.cookie && idOf(r.cookie) !== idOf(s.cookie), 'a new ID');
    const late = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'fig' } });
    assert.equal(late.status, 200, 'within the grace the old cookie, and the token, still work');
    assert.equal(late.cookie, r.cookie, 'answered the new ID');
    assert.deepEqual((await env.call('GET', '/state', { cookie: r.cookie })).json?.data, { cart: ['pear', 'fig'] });
    env.clock.advance(10_000);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true, 'past the grace the old cookie is dead');
    assert.equal((await env.call('POST', '/add', { cookie: r.cookie, token: s.token, body: { item: 'kiwi' } })).status, 200, 'the token is kept');
  });

  test('login when it succeeds then the pre-login cookie and pre-login CSRF token are refused', async (t) => {
    const env = await setup(t);
    const pre = await newSession(env);
    const login = await env.call('POST', '/login', { cookie: pre.cookie, token: pre.token, body: { user: 'alice' } });
    assert.equal(login.status, 200);
    assert.notEqual(idOf(login.cookie!), idOf(pre.cookie));
    assert.equal((await env.call('GET', '/state', { cookie: login.cookie })).json?.userId, 'alice');
    assert.equal((await env.call('GET', '/state', { cookie: pre.cookie })).json?.userId, null);
    const old = await env.call('POST', '/add', { cookie: login.cookie, token: pre.token, body: { item: 'x' } });
    assert.equal(old.status, 403);
  });

  test('logout when requested then the record is gone, the cookie is expired with the same attributes, and a replay is anonymous', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const out = await env.call('POST', '/logout', { cookie: s.cookie, token: s.token });
    assert.equal(out.status, 200);
    assert.equal(out.cookie, '', 'the cookie is cleared');
    const cleared = attributes(out.setCookies.at(-1)!);
    const set = attributes(s.reply.setCookies[0]!);
    for (const name of ['path', 'domain', 'samesite', 'secure', 'httponly']) assert.equal(cleared.get(name), set.get(name), name);
    assert.equal(cleared.get('max-age'), '0');
    assert.equal(await env.memory.get(hashId(idOf(s.cookie))), null);
    const replay = await env.call('GET', '/state', { cookie: s.cookie });
    assert.equal(replay.json?.isNew, true);
    // A signed cookie that names no session is left alone: it may be the old cookie of a login that is
    // answering this browser meanwhile. The logout above already cleared it.
    assert.equal(replay.cookie, s.cookie, 'a replayed dead cookie gets no Set-Cookie');
    const write = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'ghost' } });
    assert.equal(write.status, 403, 'a dead session has no valid token');
    assert.equal(await env.memory.count(), 0, 'nothing came back');
  });

  test('logout under clearSiteData when requested then only its answer carries Clear-Site-Data, no-store; a failed one carries none (S16)', async (t) => {
    const plain = await setup(t);
    const p = await newSession(plain);
    const plainOut = await plain.call('POST', '/logout', { cookie: p.cookie, token: p.token });
    assert.equal(plainOut.status, 200);
    assert.equal(plainOut.headers.get('clear-site-data'), null, 'off by default');
    for (const [option, header] of [[true, '"cache", "storage"'], [['cookies', 'storage'], '"cookies", "storage"']] as const) {
      const env = await setup(t, { clearSiteData: option });
      const s = await newSession(env);
      assert.equal(s.reply.headers.get('clear-site-data'), null, 'not on a new session');
      const add = await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'a' } });
      assert.equal(add.headers.get('clear-site-data'), null, 'not on a write');
      const login = await env.call('POST', '/login', { cookie: s.cookie, token: s.token, body: { user: 'alice' } });
      assert.equal(login.headers.get('clear-site-data'), null, 'not on a login, which ends the old ID but not the session');
      const token = login.json?.token as string;
      env.store.fail('destroy', 'reject');
      const failed = await env.call('POST', '/logout', { cookie: login.cookie, token });
      assert.equal(failed.status, 503);
      assert.equal(failed.headers.get('clear-site-data'), null, 'a logout that did not end the session clears nothing');
      env.store.heal();
      const out = await env.call('POST', '/logout', { cookie: login.cookie, token });
      assert.equal(out.status, 200);
      assert.equal(out.cookie, '', 'the cookie is cleared');
      assert.equal(out.headers.get('clear-site-data'), header);
      assert.equal(out.headers.get('cache-control'), 'no-store');
      assert.equal(await env.memory.count(), 0);
    }
  });

  test('store when sessions are created, changed, regenerated and ended over HTTP then it never received a cookie value or raw ID', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'a' } });
    const login = await env.call('POST', '/login', { cookie: s.cookie, token: s.token, body: { user: 'alice' } });
    const token = login.json?.token as string;
    await env.call('POST', '/add', { cookie: login.cookie, token, body: { item: 'b' } });
    await env.call('POST', '/logout', { cookie: login.cookie, token });
    const dump = env.store.dump();
    assert.ok(env.store.log.length >= 5, 'the store saw the traffic');
    for (const cookie of [s.cookie, login.cookie!]) {
      const value = cookie.slice(cookie.indexOf('=') + 1);
      assert.equal(dump.includes(value), false, 'a cookie value reached the store');
      assert.equal(dump.includes(idOf(cookie)), false, 'a raw session ID reached the store');
      assert.ok(dump.includes(hashId(idOf(cookie))), 'its SHA-256 is what the store keys on');
    }
  });

  test('idle timeout when just under then the session lives, and when just over then it is gone and stays gone', async (t) => {
    const env = await setup(t, { idleTimeoutMs: 10 * MIN });
    const s = await newSession(env);
    env.clock.advance(10 * MIN - 1);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, false);
    env.clock.advance(10 * MIN + 1);
    const late = await env.call('GET', '/state', { cookie: s.cookie });
    assert.equal(late.status, 200);
    assert.equal(late.json?.isNew, true);
    assert.equal(late.cookie, '');
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true);
  });

  test('absolute timeout when reached then the session ends despite constant activity', async (t) => {
    const env = await setup(t, { idleTimeoutMs: 10 * MIN, absoluteTimeoutMs: 60 * MIN });
    const s = await newSession(env);
    for (let m = 5; m < 60; m += 5) {
      env.clock.advance(5 * MIN);
      assert.equal((await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: String(m) } })).status, 200, `alive at ${m} min`);
    }
    env.clock.advance(5 * MIN - 1);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, false);
    env.clock.advance(2);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true);
  });

  test('forged, malformed or oversized cookies when sent then the answer is a fresh anonymous session, never a 500', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const value = s.cookie.slice(s.cookie.indexOf('=') + 1);
    const [id, mac] = value.split('.') as [string, string];
    const hostile = [
      `${id}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, `${value}x`, `${id}`, `${id}.`, `.${mac}`,
      new Signer([SUITE_SECRETS[1]]).sign(id), '%E0%A4%A', `${value}%E0%A4%A`, "' OR 1=1--", '{"$ne":null}', '../../etc/passwd',
      'a.b.c', '"quoted"', 'x'.repeat(10_240), `${'x'.repeat(10_000)}.${mac}`, '', ';;;', '\u00ff\u00fe',
    ];
    env.store.resetCounts();
    for (const junk of hostile) {
      const r = await env.call('GET', '/state', { cookie: `sid=${junk}` });
      assert.ok(r.status < 500, `${junk.slice(0, 40)} → ${r.status}`);
      if (r.status === 200) assert.equal(r.json?.isNew, true, junk.slice(0, 40));
      const p = await env.call('POST', '/add', { cookie: `sid=${junk}`, token: s.token, body: { item: 'x' } });
      assert.ok(p.status >= 400 && p.status < 500, `POST with ${junk.slice(0, 40)} → ${p.status}`);
    }
    assert.equal(env.store.calls.get, 0, 'no store lookup for a cookie that fails the format or signature check');
    assert.equal(env.store.writes, 0);
  });

  test('session ID when offered anywhere but the cookie then it is ignored: query, path parameter, headers, body (S5)', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const value = s.cookie.slice(s.cookie.indexOf('=') + 1);
    env.store.resetCounts();
    const offers: Array<[string, Record<string, string>]> = [
      [`/state?sid=${value}`, {}], [`/state;jsessionid=${value}`, {}], [`/state;sid=${value}`, {}],
      ['/state', { 'x-session-id': value }], ['/state', { authorization: `Bearer ${value}` }], ['/state', { 'x-sid': s.cookie }],
    ];
    for (const [path, headers] of offers) {
      const r = await env.call('GET', path, { headers });
      assert.ok(r.status < 500, `${path} ${Object.keys(headers).join(',')} → ${r.status}`);
      if (r.status === 200) assert.equal(r.json?.isNew, true, `${path} ${Object.keys(headers).join(',')}`);
    }
    const posted = await env.call('POST', '/open', { body: { sid: value, sessionId: value, 'connect.sid': s.cookie, cookie: s.cookie } });
    assert.equal(posted.status, 200, 'a JSON body naming the session (a route without CSRF checks)');
    assert.equal(posted.json?.isNew, true, 'is a new session: the body is never read for an ID');
    assert.notEqual(posted.cookie, s.cookie);
    assert.equal(env.store.calls.get, 0, 'nothing but the cookie leads to a store lookup');
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, false, 'the cookie itself still works');
  });

  test('request data when it carries cookie attributes (path, query, forwarded headers) then the Set-Cookie attributes are the same as always (S17)', async (t) => {
    const env = await setup(t);
    const plain = (await newSession(env)).reply.setCookies[0]!;
    const evil = ';Domain=evil.example;SameSite=None;Path=/evil;Max-Age=99999999';
    const r = await env.call('GET', `/token?next=${evil}&${evil.slice(1)}`, {
      headers: { 'x-forwarded-host': `evil.example${evil}`, 'x-forwarded-proto': `https${evil}`, 'x-forwarded-for': `1.2.3.4${evil}`, referer: `http://evil.example/${evil}` },
    });
    assert.equal(r.status, 200);
    assert.equal(r.setCookies.length, 1);
    assert.deepEqual(attributes(r.setCookies[0]!), attributes(plain), 'attributes fixed when the engine was built');
    assert.equal(r.setCookies[0]!.includes('evil'), false);
  });

  test('many tiny cookies when sent beside the session cookie then it is still found; past the header limit 431, never a 500', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const tiny = (n: number) => Array.from({ length: n }, (_, i) => `a${i}=`).join('; ');
    const found = await env.call('GET', '/state', { cookie: `${tiny(1_500)}; ${s.cookie}` });
    assert.equal(found.status, 200);
    assert.equal(found.json?.isNew, false);
    const huge = await env.call('GET', '/state', { cookie: `${tiny(3_000)}; ${s.cookie}` });
    assert.equal(huge.status, 431);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, false, 'the server is still up');
  });

  test('forged cookie when its request fails (403 CSRF, a handler that throws) then the error answer expires it all the same', async (t) => {
    const env = await setup(t);
    // Signed by a secret the server does not hold: the browser of a user after a one-step secret replacement.
    const forged = `sid=${new Signer(['a-secret-this-server-never-had-0123456789']).sign(generateId())}`;
    const refused = await env.call('POST', '/add', { cookie: forged, body: { item: 'x' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.cookie, '', 'a refused request expires the forged cookie');
    const failed = await env.call('GET', '/boom-read', { cookie: forged });
    assert.equal(failed.status, 500);
    assert.equal(failed.cookie, '', 'so does a failed one');
    assert.equal(failed.setCookies.length, 1, 'and sets nothing else');
    // A signed cookie that names no session is left alone, failure or not (see #reject in the engine).
    const s = await newSession(env);
    await env.call('POST', '/logout', { cookie: s.cookie, token: s.token });
    const stale = await env.call('GET', '/boom-read', { cookie: s.cookie });
    assert.equal(stale.status, 500);
    assert.deepEqual(stale.setCookies, []);
    const plain = await env.call('GET', '/boom-read');
    assert.deepEqual(plain.setCookies, [], 'no cookie, none set');
    assert.equal(await env.memory.count(), 0, 'nothing stored');
  });

  test('signed, well-formed, never-issued ID when presented then it is not adopted', async (t) => {
    const env = await setup(t);
    const forged = generateId();
    const cookie = `sid=${new Signer([SUITE_SECRETS[0]]).sign(forged)}`;
    const r = await env.call('GET', '/token', { cookie });
    assert.equal(r.status, 200);
    assert.ok(r.cookie && r.cookie !== cookie);
    assert.notEqual(idOf(r.cookie), forged);
    assert.equal(await env.memory.get(hashId(forged)), null);
  });

  test('duplicate session cookies when sent then the first one decides, deterministically', async (t) => {
    const env = await setup(t);
    const a = await newSession(env);
    const b = await newSession(env);
    await env.call('POST', '/add', { cookie: a.cookie, token: a.token, body: { item: 'A' } });
    await env.call('POST', '/add', { cookie: b.cookie, token: b.token, body: { item: 'B' } });
    assert.deepEqual((await env.call('GET', '/state', { cookie: `${a.cookie}; ${b.cookie}` })).json?.data, { cart: ['A'] });
    assert.deepEqual((await env.call('GET', '/state', { cookie: `${b.cookie}; ${a.cookie}` })).json?.data, { cart: ['B'] });
    const junkFirst = await env.call('GET', '/state', { cookie: `sid=junk; ${a.cookie}` });
    assert.equal(junkFirst.status, 200);
    assert.equal(junkFirst.json?.isNew, true, 'a second cookie is never a fallback');
  });

  test('cookie name variants when sent then they are not the session cookie', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    const value = s.cookie.slice(s.cookie.indexOf('=') + 1);
    for (const name of ['SID', '__HOST-sid', '__Host-sid', 'Sid', 'sid2', 'xsid', 'sid ', 'sid\t', ' sid ']) {
      const r = await env.call('GET', '/state', { cookie: `${name}=${value}` });
      assert.equal(r.status, 200);
      assert.equal(r.json?.isNew, true, name);
    }
  });

  test('production when configured then the cookie is Secure with the __Host- prefix, and only that exact name counts', async (t) => {
    const env = await setup(t, { production: true, secrets: [SUITE_SECRETS[0]] });
    const s = await newSession(env);
    assert.match(s.reply.setCookies[0]!, /^__Host-sid=/);
    const a = attributes(s.reply.setCookies[0]!);
    assert.ok(a.has('secure') && a.has('httponly'));
    assert.equal(a.get('path'), '/');
    assert.equal(a.has('domain'), false);
    assert.equal((await env.call('GET', '/state', { cookie: s.cookie })).json?.isNew, false);
    const value = s.cookie.slice(s.cookie.indexOf('=') + 1);
    for (const name of ['__HOST-sid', 'sid', '__host-sid', '__Host-sid ', '__Host-sid\t']) assert.equal((await env.call('GET', '/state', { cookie: `${name}=${value}` })).json?.isNew, true, name);
  });

  test('rotated secrets when an old-secret cookie is presented then it still works and is re-signed; once dropped it is refused', async (t) => {
    const old = await setup(t, { secrets: [SUITE_SECRETS[1]] });
    const s = await newSession(old);
    await old.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'kept' } });
    const rotated = await setup(t, { secrets: [SUITE_SECRETS[0], SUITE_SECRETS[1]] }, old);
    const r = await rotated.call('GET', '/state', { cookie: s.cookie });
    assert.deepEqual(r.json?.data, { cart: ['kept'] });
    assert.ok(r.cookie && r.cookie !== s.cookie, 're-signed');
    assert.equal(idOf(r.cookie), idOf(s.cookie), 'same ID');
    const dropped = await setup(t, { secrets: [SUITE_SECRETS[0]] }, old);
    assert.equal((await dropped.call('GET', '/state', { cookie: s.cookie })).json?.isNew, true);
    assert.deepEqual((await dropped.call('GET', '/state', { cookie: r.cookie })).json?.data, { cart: ['kept'] });
  });

  test('session when it would grow past maxSessionBytes then 413 SESSION_TOO_LARGE and the stored value is unchanged', async (t) => {
    const env = await setup(t);
    const s = await newSession(env);
    await env.call('POST', '/add', { cookie: s.cookie, token: s.token, body: { item: 'small' } });
    const before = await env.memory.get(hashId(idOf(s.cookie)));
    const r = await env.call('POST', '/fill', { cookie: s.cookie, token: s.token, body: { size: 70_000 } });
    assert.equal(r.status, 413);
    assert.equal((r.json?.error as { code: string }).code, 'SESSION_TOO_LARGE');
    assert.deepEqual(await env.memory.get(hashId(idOf(s.cookie))), before);
  });
}
