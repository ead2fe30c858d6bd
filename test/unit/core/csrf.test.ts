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

/** Opens a session as `headers` describe and runs the CSRF checks; resolves to the error code or 'ok'. */
async function check(tether: Tether, method: string, headers: Record<string, string>): Promise<string> {
  const s = await tether.open(view(method, { host: HOST, ...headers }));
  try {
    tether.checkRequest(s, view(method, { host: HOST, ...headers }));
    return 'ok';
  } catch (err) {
    const e = err as { code: string; status: number };
    return `${e.status} ${e.code}`;
  } finally {
    tether.abandon(s);
  }
}

const JSON_BODY = { 'content-type': 'application/json', 'content-length': '2' };

describe('csrf', () => {
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
});
