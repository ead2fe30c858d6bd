/** CSRF bound to the session: synchronizer token, Fetch Metadata, Origin/Referer, CORS-simple content types. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rig, trip, view } from '../support.js';
import type { Tether } from '../../../src/core/engine.js';

const HOST = 'app.example.org';

async function withToken(tether: Tether): Promise<{ cookie: string; token: string; setCookies: string[] }> {
  let token = '';
  const t = await trip(tether, undefined, (s) => void (token = s.csrfToken), 'GET');
  return { cookie: t.cookie!, token, setCookies: t.setCookies };
}

/**
 * Opens a session as `headers` describe and runs the CSRF checks (with `form` as the parsed body when
 * given); resolves to the error code or 'ok'. `messages` collects the error messages.
 */
async function check(tether: Tether, method: string, headers: Record<string, string>, form?: object, messages?: string[]): Promise<string> {
  const s = await tether.open(view(method, { host: HOST, ...headers }));
  try {
    if (form === undefined) tether.checkRequest(s, view(method, { host: HOST, ...headers }));
    else tether.checkRequest(s, view(method, { host: HOST, ...headers }), form);
    return 'ok';
  } catch (err) {
    const e = err as { code: string; status: number; message: string };
    messages?.push(e.message);
    return `${e.status} ${e.code}`;
  } finally {
    tether.abandon(s);
  }
}

const JSON_BODY = { 'content-type': 'application/json', 'content-length': '2' };

describe('csrf', () => {
  it('token when missing or wrong under a configured header name then the message names that header', async () => {
    const { tether } = rig({ csrf: { header: 'x-my-token' } });
    const { cookie, token } = await withToken(tether);
    const messages: string[] = [];
    assert.equal(await check(tether, 'POST', { cookie, ...JSON_BODY }, undefined, messages), '403 CSRF_TOKEN_INVALID');
    assert.equal(await check(tether, 'POST', { cookie, ...JSON_BODY, 'x-my-token': token + 'x' }, undefined, messages), '403 CSRF_TOKEN_INVALID');
    assert.equal(await check(tether, 'POST', { cookie, ...JSON_BODY, 'x-my-token': token }), 'ok');
    assert.deepEqual(messages, Array(2).fill('missing or invalid CSRF token (header x-my-token)'));
  });

  it('safe methods when sent without a token then pass', async () => {
    const { tether } = rig();
    for (const m of ['GET', 'HEAD', 'OPTIONS']) assert.equal(await check(tether, m, { origin: 'https://evil.example' }), 'ok');
  });

  it('unsafe request when the token is missing, wrong or another session\'s then fails 403 CSRF_TOKEN_INVALID', async () => {
    const { tether } = rig();
    const mine = await withToken(tether);
    const other = await withToken(tether);
    assert.notEqual(mine.token, other.token);
    const base = { cookie: mine.cookie, origin: `https://${HOST}`, ...JSON_BODY };
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      assert.equal(await check(tether, m, base), '403 CSRF_TOKEN_INVALID', `${m} without a token`);
      assert.equal(await check(tether, m, { ...base, 'x-csrf-token': mine.token }), 'ok', `${m} with the token`);
    }
    const altered = mine.token.slice(0, -1) + (mine.token.endsWith('A') ? 'B' : 'A');
    assert.equal(await check(tether, 'POST', { ...base, 'x-csrf-token': altered }), '403 CSRF_TOKEN_INVALID', 'one character changed');
    assert.equal(await check(tether, 'POST', { ...base, 'x-csrf-token': other.token }), '403 CSRF_TOKEN_INVALID');
    assert.equal(await check(tether, 'POST', { ...JSON_BODY, 'x-csrf-token': mine.token }), '403 CSRF_TOKEN_INVALID', 'no session: no token is valid');
  });

  it('token when issued then is per session and never travels in a cookie', async () => {
    const { tether } = rig();
    const a = await withToken(tether);
    assert.match(a.token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(a.setCookies.join('\n').includes(a.token), false);
  });

  it('pre-login token when used after login then fails 403, and the new token works', async () => {
    const { tether } = rig();
    const pre = await withToken(tether);
    let post = '';
    const login = await trip(tether, pre.cookie, (s) => {
      s.login('alice');
      post = s.csrfToken;
    }, 'POST');
    assert.notEqual(post, pre.token);
    assert.equal(await check(tether, 'POST', { cookie: login.cookie!, 'x-csrf-token': pre.token, ...JSON_BODY }), '403 CSRF_TOKEN_INVALID');
    assert.equal(await check(tether, 'POST', { cookie: login.cookie!, 'x-csrf-token': post, ...JSON_BODY }), 'ok');
  });

  it('origin when other, null, a look-alike, or a Referer from elsewhere, or Sec-Fetch-Site cross-site then fails 403 ORIGIN_MISMATCH even with the token', async () => {
    const { tether } = rig();
    const a = await withToken(tether);
    const ok = { cookie: a.cookie, 'x-csrf-token': a.token, ...JSON_BODY };
    const mismatch = '403 ORIGIN_MISMATCH';
    assert.equal(await check(tether, 'POST', { ...ok, origin: `https://${HOST}` }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, referer: `https://${HOST}/cart` }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, 'sec-fetch-site': 'same-origin' }), 'ok');
    for (const origin of ['https://evil.example', 'null', `https://${HOST}.attacker.com`, `https://attacker.com/${HOST}`, `https://${HOST}:8443`, 'javascript:alert(1)', 'garbage']) {
      assert.equal(await check(tether, 'POST', { ...ok, origin }), mismatch, origin);
    }
    assert.equal(await check(tether, 'POST', { ...ok, referer: 'https://evil.example/page' }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, referer: `https://${HOST}.attacker.com/` }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, 'sec-fetch-site': 'cross-site' }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, origin: `https://${HOST}`, 'sec-fetch-site': 'cross-site' }), mismatch);
  });

  it('origin when the Host header names the default port of its scheme then matches, and another port does not', async () => {
    const { tether } = rig();
    const a = await withToken(tether);
    const ok = { cookie: a.cookie, 'x-csrf-token': a.token, ...JSON_BODY };
    const mismatch = '403 ORIGIN_MISMATCH';
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:443`, origin: `https://${HOST}` }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST.toUpperCase()}:80`, origin: `http://${HOST}` }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:80`, referer: `http://${HOST}/cart` }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, host: '[::1]:80', origin: 'http://[::1]' }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:8443`, origin: `https://${HOST}:8443` }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:80`, origin: `https://${HOST}` }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:443`, origin: `http://${HOST}` }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:8443`, origin: `https://${HOST}` }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}/x`, origin: `https://${HOST}` }), mismatch);
    assert.equal(await check(tether, 'POST', { ...ok, host: 'bad host', origin: `https://${HOST}` }), mismatch);
  });

  it('origin when the cookie is Secure then an http origin of the Host fails 403 ORIGIN_MISMATCH, except on a loopback host; without Secure the scheme is not compared', async () => {
    const mismatch = '403 ORIGIN_MISMATCH';
    for (const options of [{ production: true }, { cookie: { secure: true } }]) {
      const { tether } = rig(options);
      const a = await withToken(tether);
      const ok = { cookie: a.cookie, 'x-csrf-token': a.token, ...JSON_BODY };
      assert.equal(await check(tether, 'POST', { ...ok, origin: `https://${HOST}` }), 'ok');
      assert.equal(await check(tether, 'POST', { ...ok, origin: `http://${HOST}` }), mismatch, 'http origin');
      assert.equal(await check(tether, 'POST', { ...ok, referer: `http://${HOST}/cart` }), mismatch, 'http Referer');
      assert.equal(await check(tether, 'POST', { ...ok, host: `${HOST}:80`, origin: `http://${HOST}` }), mismatch, 'http origin, port 80');
      for (const host of ['localhost:3000', 'shop.localhost:3000', '127.0.0.1:3000', '127.1.2.3:3000', '[::1]:3000']) {
        assert.equal(await check(tether, 'POST', { ...ok, host, origin: `http://${host}` }), 'ok', `loopback ${host}`);
      }
      for (const host of ['10.0.0.1:3000', 'localhost.example:3000', '127.0.0.1.example:3000', '[::2]:3000']) {
        assert.equal(await check(tether, 'POST', { ...ok, host, origin: `http://${host}` }), mismatch, `not loopback ${host}`);
      }
      const socket = await tether.openSocket(view('GET', { host: HOST, cookie: a.cookie, origin: `http://${HOST}` })).then(() => 'ok', (err: { code: string }) => err.code);
      assert.equal(socket, 'ORIGIN_MISMATCH', 'a WebSocket handshake from the http origin');
    }
    const { tether } = rig({ cookie: { secure: false } });
    const a = await withToken(tether);
    assert.equal(await check(tether, 'POST', { cookie: a.cookie, 'x-csrf-token': a.token, ...JSON_BODY, origin: `http://${HOST}` }), 'ok');
    const { tether: open } = rig({ production: true, csrf: { origins: ['http://shop.example'] } });
    const b = await withToken(open);
    assert.equal(await check(open, 'POST', { cookie: b.cookie, 'x-csrf-token': b.token, ...JSON_BODY, origin: 'http://shop.example' }), 'ok', 'csrf.origins decides alone');
    // csrf.secureOrigins overrides the cookie's say, either way.
    const { tether: relaxed } = rig({ production: true, csrf: { secureOrigins: false } });
    const c = await withToken(relaxed);
    assert.equal(await check(relaxed, 'POST', { cookie: c.cookie, 'x-csrf-token': c.token, ...JSON_BODY, origin: `http://${HOST}` }), 'ok', 'secureOrigins: false');
    const { tether: strict } = rig({ csrf: { secureOrigins: true } });
    const d = await withToken(strict);
    assert.equal(await check(strict, 'POST', { cookie: d.cookie, 'x-csrf-token': d.token, ...JSON_BODY, origin: `http://${HOST}` }), '403 ORIGIN_MISMATCH', 'secureOrigins: true');
    assert.throws(() => rig({ csrf: { secureOrigins: 'yes' as unknown as boolean } }), { code: 'OPTIONS_INVALID' });
  });

  it('origin when the cookie is Secure and an unsafe request carries neither Origin nor Referer then 403 ORIGIN_MISMATCH by default; without Secure, or with requireOrigin: false, it passes', async () => {
    const neither = async (options: Parameters<typeof rig>[0]): Promise<string> => {
      const { tether } = rig(options);
      const a = await withToken(tether);
      return check(tether, 'POST', { cookie: a.cookie, 'x-csrf-token': a.token, ...JSON_BODY });
    };
    assert.equal(await neither({ production: true }), '403 ORIGIN_MISMATCH', 'production: the cookie is Secure');
    assert.equal(await neither({ cookie: { secure: true } }), '403 ORIGIN_MISMATCH');
    assert.equal(await neither({ csrf: { secureOrigins: true } }), '403 ORIGIN_MISMATCH', 'requireOrigin follows secureOrigins');
    assert.equal(await neither({}), 'ok', 'plain HTTP (development): the token alone');
    assert.equal(await neither({ production: true, csrf: { requireOrigin: false } }), 'ok', 'requireOrigin: false');
    assert.equal(await neither({ production: true, csrf: { secureOrigins: false } }), 'ok');
    const { tether } = rig({ production: true });
    assert.equal(tether.options.csrf && tether.options.csrf.requireOrigin, true);
    const a = await withToken(tether);
    await assert.rejects(tether.openSocket(view('GET', { host: HOST, cookie: a.cookie })), { code: 'ORIGIN_MISMATCH' }, 'a WebSocket handshake without Origin too');
  });

  it('origin when csrf.origins is configured then only those full origins pass', async () => {
    const { tether } = rig({ csrf: { origins: ['https://shop.example'], requireOrigin: true } });
    const a = await withToken(tether);
    const ok = { cookie: a.cookie, 'x-csrf-token': a.token, ...JSON_BODY };
    assert.equal(await check(tether, 'POST', { ...ok, origin: 'https://shop.example' }), 'ok');
    assert.equal(await check(tether, 'POST', { ...ok, origin: 'http://shop.example' }), '403 ORIGIN_MISMATCH', 'scheme counts');
    assert.equal(await check(tether, 'POST', { ...ok, origin: `https://${HOST}` }), '403 ORIGIN_MISMATCH', 'the Host header no longer decides');
    assert.equal(await check(tether, 'POST', ok), '403 ORIGIN_MISMATCH', 'requireOrigin: neither Origin nor Referer');
  });

  it('unsafe request with a body when its content type is text/plain or a form then fails 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const { tether } = rig();
    const a = await withToken(tether);
    const ok = { cookie: a.cookie, 'x-csrf-token': a.token, origin: `https://${HOST}` };
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp']) {
      assert.equal(await check(tether, 'POST', { ...ok, 'content-type': type, 'content-length': '10' }), '415 UNSUPPORTED_MEDIA_TYPE', type);
    }
    assert.equal(await check(tether, 'POST', { ...ok, 'transfer-encoding': 'chunked' }), '415 UNSUPPORTED_MEDIA_TYPE', 'a body without a type');
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/vnd.api+json']) {
      assert.equal(await check(tether, 'POST', { ...ok, 'content-type': type, 'content-length': '10' }), 'ok', type);
    }
    assert.equal(await check(tether, 'POST', ok), 'ok', 'no body, no content type needed');
  });

  it('csrf when turned off then unsafe requests pass unchecked', async () => {
    const { tether } = rig({ csrf: false });
    assert.equal(await check(tether, 'POST', { origin: 'https://evil.example', 'content-type': 'text/plain', 'content-length': '3' }), 'ok');
  });

  describe('forms (csrf.forms)', () => {
    const FORM = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '10' };
    const MULTIPART = { 'content-type': 'multipart/form-data; boundary=----x', 'content-length': '10' };

    it('form post when forms are off (the default) then fails 415 as before, even with the token in the field', async () => {
      const { tether } = rig();
      const a = await withToken(tether);
      const base = { cookie: a.cookie, origin: `https://${HOST}`, ...FORM };
      assert.equal(await check(tether, 'POST', base, { _csrf: a.token }), '415 UNSUPPORTED_MEDIA_TYPE');
      assert.equal(tether.options.csrf && tether.options.csrf.forms, false);
    });

    it('form post when the field carries the token then passes; missing, wrong, another session\'s, a file or repeated then fails 403 CSRF_TOKEN_INVALID', async () => {
      const { tether } = rig({ csrf: { forms: true } });
      const mine = await withToken(tether);
      const other = await withToken(tether);
      for (const type of [FORM, MULTIPART, { ...FORM, 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }]) {
        const base = { cookie: mine.cookie, origin: `https://${HOST}`, ...type };
        assert.equal(await check(tether, 'POST', base, { _csrf: mine.token, item: 'tea' }), 'ok', type['content-type']);
      }
      const base = { cookie: mine.cookie, origin: `https://${HOST}`, ...FORM };
      const messages: string[] = [];
      assert.equal(await check(tether, 'POST', base, { item: 'tea' }, messages), '403 CSRF_TOKEN_INVALID', 'missing');
      assert.match(messages.pop()!, /form field _csrf/);
      assert.equal(await check(tether, 'POST', base, { _csrf: other.token }), '403 CSRF_TOKEN_INVALID', 'another session\'s');
      assert.equal(await check(tether, 'POST', base, { _csrf: mine.token.slice(1) }), '403 CSRF_TOKEN_INVALID', 'cut short');
      assert.equal(await check(tether, 'POST', base, { _csrf: '' }), '403 CSRF_TOKEN_INVALID', 'empty');
      assert.equal(await check(tether, 'POST', base, { _csrf: new Blob([mine.token]) }), '403 CSRF_TOKEN_INVALID', 'a file');
      assert.equal(await check(tether, 'POST', base, { _csrf: { value: mine.token } }), '403 CSRF_TOKEN_INVALID', 'an object');
      assert.equal(await check(tether, 'POST', base, { _csrf: [mine.token, mine.token] }, messages), '403 CSRF_TOKEN_INVALID', 'repeated');
      assert.match(messages.pop()!, /sent more than once/);
      assert.equal(await check(tether, 'POST', base, Object.create({ _csrf: mine.token }) as object), '403 CSRF_TOKEN_INVALID', 'inherited, not the body\'s own');
      assert.equal(await check(tether, 'POST', { ...base, cookie: '' }, { _csrf: mine.token }), '403 CSRF_TOKEN_INVALID', 'no session: no token is valid');
      const nullProto = Object.assign(Object.create(null) as object, { _csrf: mine.token });
      assert.equal(await check(tether, 'POST', base, nullProto), 'ok', 'a body without a prototype (qs, Hono)');
    });

    it('form post when the caller gives no parsed body then fails 403 CSRF_TOKEN_INVALID saying the body was not parsed', async () => {
      const { tether } = rig({ csrf: { forms: true } });
      const a = await withToken(tether);
      const messages: string[] = [];
      assert.equal(await check(tether, 'POST', { cookie: a.cookie, origin: `https://${HOST}`, ...FORM }, undefined, messages), '403 CSRF_TOKEN_INVALID');
      assert.match(messages[0]!, /not parsed/);
    });

    it('form post when the header carries the token then passes without the body, and a wrong header is not rescued by the field', async () => {
      const { tether } = rig({ csrf: { forms: true } });
      const a = await withToken(tether);
      const base = { cookie: a.cookie, origin: `https://${HOST}`, ...FORM };
      assert.equal(await check(tether, 'POST', { ...base, 'x-csrf-token': a.token }), 'ok');
      assert.equal(await check(tether, 'POST', { ...base, 'x-csrf-token': 'wrong' }, { _csrf: a.token }), '403 CSRF_TOKEN_INVALID');
    });

    it('form post when from another origin then fails 403 ORIGIN_MISMATCH before the body is looked at', async () => {
      const { tether } = rig({ csrf: { forms: true } });
      const a = await withToken(tether);
      const form = { _csrf: a.token };
      assert.equal(await check(tether, 'POST', { cookie: a.cookie, origin: 'https://evil.example', ...FORM }, form), '403 ORIGIN_MISMATCH');
      assert.equal(await check(tether, 'POST', { cookie: a.cookie, referer: 'https://evil.example/x', ...FORM }, form), '403 ORIGIN_MISMATCH');
      assert.equal(await check(tether, 'POST', { cookie: a.cookie, 'sec-fetch-site': 'cross-site', ...FORM }, form), '403 ORIGIN_MISMATCH');
      const s = await tether.open(view('POST', { host: HOST, cookie: a.cookie, origin: 'https://evil.example', ...FORM }));
      assert.throws(() => tether.checkRequestHead(s, view('POST', { host: HOST, cookie: a.cookie, origin: 'https://evil.example', ...FORM })), { code: 'ORIGIN_MISMATCH' });
      tether.abandon(s);
    });

    it('unsafe request when forms are on and its type is text/plain, another type or none then still fails 415, and JSON still needs the header', async () => {
      const { tether } = rig({ csrf: { forms: true } });
      const a = await withToken(tether);
      const base = { cookie: a.cookie, origin: `https://${HOST}` };
      const form = { _csrf: a.token };
      const messages: string[] = [];
      for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/xml', 'multipart/mixed; boundary=x']) {
        assert.equal(await check(tether, 'POST', { ...base, 'content-type': type, 'content-length': '10' }, form, messages), '415 UNSUPPORTED_MEDIA_TYPE', type);
      }
      assert.match(messages[0]!, /application\/x-www-form-urlencoded/);
      assert.equal(await check(tether, 'POST', { ...base, 'transfer-encoding': 'chunked' }, form), '415 UNSUPPORTED_MEDIA_TYPE', 'a body without a type');
      assert.equal(await check(tether, 'POST', { ...base, ...JSON_BODY }, form), '403 CSRF_TOKEN_INVALID', 'JSON: the header only');
      assert.equal(await check(tether, 'POST', { ...base, ...JSON_BODY, 'x-csrf-token': a.token }), 'ok');
      assert.equal(await check(tether, 'POST', { ...base, 'content-type': 'application/x-www-form-urlencoded' }, form), '403 CSRF_TOKEN_INVALID', 'a form type without a body: no field to read');
    });

    it('formField when set then names the field, and the default one is no longer read', async () => {
      const { tether } = rig({ csrf: { forms: true, formField: 'authenticity_token' } });
      const a = await withToken(tether);
      const base = { cookie: a.cookie, origin: `https://${HOST}`, ...FORM };
      assert.equal(await check(tether, 'POST', base, { authenticity_token: a.token }), 'ok');
      assert.equal(await check(tether, 'POST', base, { _csrf: a.token }), '403 CSRF_TOKEN_INVALID');
    });

    it('checkRequestHead when the token is in the header or the request is JSON then leaves nothing to check; for a form post without it, the field', async () => {
      const { tether } = rig({ csrf: { forms: true } });
      const a = await withToken(tether);
      const head = async (headers: Record<string, string>): Promise<boolean> => {
        const v = view('POST', { host: HOST, cookie: a.cookie, origin: `https://${HOST}`, ...headers });
        const s = await tether.open(v);
        try {
          return tether.checkRequestHead(s, v);
        } finally {
          tether.abandon(s);
        }
      };
      assert.equal(await head({ ...FORM }), true);
      assert.equal(await head({ ...MULTIPART }), true);
      assert.equal(await head({ ...FORM, 'x-csrf-token': a.token }), false);
      assert.equal(await head({ ...JSON_BODY, 'x-csrf-token': a.token }), false);
      await assert.rejects(head({ ...JSON_BODY }), { code: 'CSRF_TOKEN_INVALID' });
      const off = rig();
      const b = await withToken(off.tether);
      const v = view('POST', { host: HOST, cookie: b.cookie, origin: `https://${HOST}`, ...JSON_BODY, 'x-csrf-token': b.token });
      const s = await off.tether.open(v);
      assert.equal(off.tether.checkRequestHead(s, v), false, 'forms off: as checkRequest');
      off.tether.abandon(s);
    });
  });
});
