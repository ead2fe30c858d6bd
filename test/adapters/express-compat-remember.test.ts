/**
 * express-session's "remember me" idiom on the drop-in: a session whose own cookie lifetime
 * (`req.session.cookie.maxAge`) is longer than the idle timeout becomes a remembered Tether session, so
 * it lives on the server as long as its cookie; cutting the lifetime back un-remembers it. Over HTTP,
 * with a hand-moved clock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import express from 'express';
import expressSession from 'express-session';
import session from 'tether/express';
import type { CompatSessionOptions } from 'tether/express';
import { hashId } from '../../src/core/ids.js';
import { cookieAttributes } from '../helpers/cookie-client.js';
import type { Reply } from '../helpers/cookie-client.js';
import { DAY, HOUR, MIN, compatApp, idOf, rememberedIn, SECRET, warningMessagesDuring as warningsOf } from './express-compat.kit.js';

declare module 'express-session' {
  interface SessionData {
    rememberUser?: string;
    rememberViews?: number;
  }
}


/**
 * The classic login: `?remember=<days>` gives the cookie that lifetime, anything else a browser-session
 * cookie. `/me` reads, `/view` changes the session, `/forget` (`expires = false`, or `maxAge = null` with
 * `?null`; changing the session too with `?change`, unsetting it after with `?drop`) and `/shorten` cut
 * the lifetime back.
 */
function routes(a: express.Express): void {
  a.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.rememberUser = typeof req.query.user === 'string' ? req.query.user : 'alice';
      if (req.query.remember !== undefined) req.session.cookie.maxAge = Number(req.query.remember) * DAY;
      // express-session's README: `expires = false` keeps the cookie for the browser session only (its types say Date | null).
      else (req.session.cookie as { expires: unknown }).expires = false;
      res.end();
    });
  });
  a.get('/me', (req, res) => res.json({ user: req.session.rememberUser ?? null }));
  a.post('/view', (req, res) => res.json({ views: (req.session.rememberViews = (req.session.rememberViews ?? 0) + 1) }));
  a.post('/forget', (req, res) => {
    if (req.query.null !== undefined) (req.session.cookie as { maxAge: unknown }).maxAge = null;
    else (req.session.cookie as { expires: unknown }).expires = false;
    if (req.query.change !== undefined) req.session.rememberViews = (req.session.rememberViews ?? 0) + 1;
    // `unset: 'keep'`: the request's changes, the cut included, are dropped.
    if (req.query.drop !== undefined) (req as { session: unknown }).session = null;
    res.end();
  });
  a.post('/shorten', (req, res) => {
    req.session.cookie.maxAge = 10 * MIN;
    res.end();
  });
}

/** Whether the record the cookie names is a remembered session's; null when there is none. */
describe('session() "remember me": a per-session cookie.maxAge', () => {
  it('login when it sets cookie.maxAge to 7 days then the session survives 3 hours idle and ends 7 days idle later', async () => {
    const app = await compatApp({ tether: { remember: { idleTimeoutMs: 7 * DAY } } }, routes);
    const c = app.client();
    const login = await c.request('/login?remember=7', { method: 'POST' });
    assert.equal(cookieAttributes(login.setCookies[0]!)['max-age'], String(7 * 86_400), 'the cookie is the app’s: Max-Age from req.session.cookie');
    assert.equal(await rememberedIn(app.store, c.get('sid')), true);
    app.clock.advance(3 * HOUR);
    assert.deepEqual((await c.request('/me')).json(), { user: 'alice' }, 'idle 3 hours, past the engine’s 30 minutes');
    app.clock.advance(7 * DAY + 2 * MIN);
    assert.deepEqual((await c.request('/me')).json(), { user: null }, 'idle past 7 days: ended on the server too');
    await app.close();
  });

  it('renewal (tether.renewal) when a session’s ID is due then the next response carries the new ID with the app’s cookie lifetime, remembered or not, and the old cookie ends after the grace', async () => {
    for (const remember of ['?remember=7', ''] as const) {
      const app = await compatApp({ tether: { renewal: { intervalMs: 10 * MIN, graceMs: 30_000 } } }, routes);
      const c = app.client();
      await c.request(`/login${remember}`, { method: 'POST' });
      const first = c.get('sid')!;
      app.clock.advance(11 * MIN);
      const renewed = await c.request('/me');
      assert.deepEqual(renewed.json(), { user: 'alice' }, remember);
      assert.equal(renewed.setCookies.length, 1, `${remember}: the new ID goes out even on a read of a remembered session`);
      assert.equal(cookieAttributes(renewed.setCookies[0]!)['max-age'], remember ? String(7 * 86_400) : undefined);
      const second = c.get('sid')!;
      assert.notEqual(idOf(second), idOf(first));
      const old = app.client();
      old.set('sid', first);
      assert.deepEqual((await old.request('/me')).json(), { user: 'alice' }, `${remember}: within the grace`);
      assert.equal(old.get('sid'), second, `${remember}: answered the new ID`);
      app.clock.advance(31_000);
      const late = app.client();
      late.set('sid', first);
      assert.deepEqual((await late.request('/me')).json(), { user: null }, `${remember}: past the grace`);
      assert.deepEqual((await c.request('/me')).json(), { user: 'alice' });
      await app.close();
    }
  });

  it('renewal when due on a request whose Secure cookie cannot be sent (not HTTPS) then the ID is kept, and the next HTTPS request renews it: no session lost after the grace', async () => {
    for (const secure of [true, 'auto'] as const) {
      const app = await compatApp({ proxy: true, name: 'sid', cookie: { secure }, tether: { renewal: { intervalMs: 10 * MIN, graceMs: 30_000 } } }, (a) => {
        a.get('/', (req, res) => res.send(String((req.session.views = (req.session.views ?? 0) + 1))));
      });
      const https = { headers: { 'x-forwarded-proto': 'https' } };
      const c = app.client();
      await c.request('/', https);
      const first = c.get('sid');
      app.clock.advance(11 * MIN);
      const plain = await c.request('/');
      assert.deepEqual([plain.body, plain.setCookies], ['2', []], `secure ${secure}`);
      app.clock.advance(MIN);
      const back = await c.request('/', https);
      assert.equal(back.body, '3', `secure ${secure}: the session is still there past the grace`);
      assert.notEqual(idOf(c.get('sid')), idOf(first), `secure ${secure}: renewed by the request that could take the cookie`);
      await app.close();
    }
  });

  it('login when it leaves the cookie a browser-session one then the session ends after the engine’s 30 minutes idle', async () => {
    const app = await compatApp({}, routes);
    const c = app.client();
    const login = await c.request('/login', { method: 'POST' });
    assert.equal(cookieAttributes(login.setCookies[0]!)['max-age'], undefined);
    assert.equal(await rememberedIn(app.store, c.get('sid')), false);
    app.clock.advance(25 * MIN);
    assert.deepEqual((await c.request('/me')).json(), { user: 'alice' });
    app.clock.advance(32 * MIN);
    assert.deepEqual((await c.request('/me')).json(), { user: null });
    await app.close();
  });

  it('remembered session when later requests read or touch it then its cookie is re-sent only by express-session’s rules', async () => {
    for (const rolling of [false, true]) {
      const app = await compatApp({ rolling }, routes);
      const c = app.client();
      await c.request('/login?remember=7', { method: 'POST' });
      const lastSeen = (await app.memory.get(hashId(idOf(c.get('sid')))))!.lastSeenAt;
      app.clock.advance(2 * HOUR);
      const read = await c.request('/me');
      assert.deepEqual(read.json(), { user: 'alice' });
      assert.ok((await app.memory.get(hashId(idOf(c.get('sid')))))!.lastSeenAt > lastSeen, 'the read touched the session');
      if (rolling) assert.equal(cookieAttributes(read.setCookies[0]!)['max-age'], String(7 * 86_400), 'rolling: every response');
      else assert.deepEqual(read.setCookies, [], 'unchanged, no rolling: no Set-Cookie, as express-session');
      const changed = await c.request('/view', { method: 'POST' });
      assert.equal(cookieAttributes(changed.setCookies[0]!)['max-age'], String(7 * 86_400), 'persistent and changed: re-sent');
      await app.close();
    }
  });

  it('remembered session when its lifetime is set back to a browser-session cookie or a short maxAge then it is no longer remembered', async () => {
    for (const [path, maxAge] of [['/forget', undefined], ['/shorten', String(10 * 60)]] as const) {
      const app = await compatApp({}, routes);
      const c = app.client();
      await c.request('/login?remember=7', { method: 'POST' });
      app.clock.advance(2 * HOUR);
      const cut = await c.request(path, { method: 'POST' });
      assert.equal(await rememberedIn(app.store, c.get('sid')), false, path);
      assert.equal(cookieAttributes(cut.setCookies[0]!)['max-age'], maxAge, `${path}: the browser gets the cookie the app set`);
      app.clock.advance(25 * MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: 'alice' }, path);
      app.clock.advance(32 * MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: null }, `${path}: 30 minutes idle end it again`);
      await app.close();
    }
  });

  it('remembered session when a request cuts its cookie to the browser session then that response sets it, whatever rolling, resave, saveUninitialized', async () => {
    const modes: CompatSessionOptions[] = [{}, { resave: false, saveUninitialized: false }, { resave: true, saveUninitialized: true }];
    for (const rolling of [false, true]) {
      for (const mode of modes) {
        const app = await compatApp({ ...mode, rolling }, routes);
        for (const forget of ['/forget', '/forget?change', '/forget?null', '/forget?null&change']) {
          const what = `${forget} ${JSON.stringify({ ...mode, rolling })}`;
          const c = app.client();
          await c.request('/login?remember=7', { method: 'POST' });
          const sid = c.get('sid');
          const cut = await c.request(forget, { method: 'POST' });
          // express-session sends nothing here without rolling (with `expires = false` on a changed session, a
          // browser-session cookie), leaving the 7-day cookie of a session that is no longer remembered.
          assert.equal(cut.setCookies.length, 1, what);
          const attrs = cookieAttributes(cut.setCookies[0]!);
          assert.equal(attrs['max-age'], undefined, what);
          assert.equal(attrs.expires, undefined, what);
          assert.equal(idOf(c.get('sid')), idOf(sid), `${what}: same session`);
          assert.equal(await rememberedIn(app.store, c.get('sid')), false, what);
          // From then on, express-session's rules: with rolling every response, otherwise none for a browser-session cookie.
          for (const later of [await c.request('/me'), await c.request('/view', { method: 'POST' })]) {
            assert.equal(later.setCookies.length, rolling ? 1 : 0, what);
            if (rolling) assert.equal(cookieAttributes(later.setCookies[0]!)['max-age'], undefined, what);
          }
        }
        await app.close();
      }
    }
  });

  it('ordinary session with a browser-session cookie when a request sets expires = false or maxAge = null then no Set-Cookie without rolling, as express-session', async () => {
    for (const rolling of [false, true]) {
      const app = await compatApp({ rolling }, routes);
      for (const forget of ['/forget', '/forget?null', '/forget?null&change']) {
        const c = app.client();
        await c.request('/login', { method: 'POST' });
        const cut = await c.request(forget, { method: 'POST' });
        assert.equal(cut.setCookies.length, rolling ? 1 : 0, `${forget} rolling: ${rolling}`);
        if (rolling) assert.equal(cookieAttributes(cut.setCookies[0]!)['max-age'], undefined);
        assert.equal(await rememberedIn(app.store, c.get('sid')), false);
      }
      await app.close();
    }
  });

  it('ordinary session with a persistent cookie when a request cuts it to the browser session then that response sets it and the session stays ordinary', async () => {
    // A 2-hour cookie that is the idle timeout; a remembered session's cut to 10 minutes.
    const setups: Array<[options: CompatSessionOptions, start: string[]]> = [[{ cookie: { maxAge: 2 * HOUR } }, ['/view']], [{}, ['/login?remember=7', '/shorten']]];
    for (const [options, start] of setups) {
      const app = await compatApp(options, routes);
      for (const forget of ['/forget', '/forget?change', '/forget?null', '/forget?null&change']) {
        const what = `${start.join(', ')} then ${forget}`;
        const c = app.client();
        let first: Reply | undefined;
        for (const path of start) first = await c.request(path, { method: 'POST' });
        assert.ok(cookieAttributes(first!.setCookies[0]!)['max-age'], `${what}: persistent first`);
        assert.equal(await rememberedIn(app.store, c.get('sid')), false, what);
        const cut = await c.request(forget, { method: 'POST' });
        // express-session sends nothing here (with `expires = false` on a changed session, a browser-session cookie).
        assert.equal(cut.setCookies.length, 1, what);
        assert.equal(cookieAttributes(cut.setCookies[0]!)['max-age'], undefined, what);
        assert.equal(await rememberedIn(app.store, c.get('sid')), false, what);
        assert.deepEqual((await c.request('/view', { method: 'POST' })).setCookies, [], `${what}: a browser-session cookie is not re-sent for a change`);
      }
      const dropped = app.client();
      for (const path of start) await dropped.request(path, { method: 'POST' });
      assert.deepEqual((await dropped.request('/forget?drop', { method: 'POST' })).setCookies, [], 'a cut that req.session = null dropped');
      assert.ok(cookieAttributes((await dropped.request('/view', { method: 'POST' })).setCookies[0]!)['max-age'], 'still persistent');
      await app.close();
    }
  });

  it('regenerate when called on a session half through its absolute lifetime then the new session\'s lifetime starts again, as express-session\'s new session', async () => {
    const app = await compatApp({ tether: { idleTimeoutMs: 40 * MIN, absoluteTimeoutMs: 60 * MIN } }, routes);
    try {
      const c = app.client();
      await c.request('/view', { method: 'POST' });
      app.clock.advance(30 * MIN);
      await c.request('/login', { method: 'POST' });
      app.clock.advance(30 * MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: 'alice' }, '60 min after the first session began');
      app.clock.advance(29 * MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: 'alice' });
      app.clock.advance(MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: null }, '60 min after the regeneration');
    } finally {
      await app.close();
    }
  });

  it('regenerate when a remembered session logs in again without remember then the new session is not remembered', async () => {
    const app = await compatApp({}, routes);
    const c = app.client();
    await c.request('/login?remember=7', { method: 'POST' });
    const first = c.get('sid');
    await c.request('/login?user=bob', { method: 'POST' });
    assert.notEqual(idOf(c.get('sid')), idOf(first));
    assert.equal(await rememberedIn(app.store, first), null, 'the old session ended');
    assert.equal(await rememberedIn(app.store, c.get('sid')), false);
    await c.request('/login?user=carol&remember=7', { method: 'POST' });
    assert.equal(await rememberedIn(app.store, c.get('sid')), true);
    app.clock.advance(3 * HOUR);
    assert.deepEqual((await c.request('/me')).json(), { user: 'carol' });
    await app.close();
  });

  it('cookie.maxAge option when set then it stays the idle timeout and sessions that keep it are not remembered', async () => {
    const app = await compatApp({ cookie: { maxAge: 2 * HOUR } }, routes);
    const plain = app.client();
    const codes = await warningsOf(() => plain.request('/view', { method: 'POST' }));
    assert.deepEqual(codes, []);
    assert.equal(await rememberedIn(app.store, plain.get('sid')), false);
    const remembered = app.client();
    await remembered.request('/login?remember=7', { method: 'POST' });
    assert.equal(await rememberedIn(app.store, remembered.get('sid')), true, 'a per-session lifetime past it is remembered');
    app.clock.advance(90 * MIN);
    assert.deepEqual((await plain.request('/view', { method: 'POST' })).json(), { views: 2 }, 'live after 90 minutes idle');
    app.clock.advance(2 * HOUR + 2 * MIN);
    assert.deepEqual((await plain.request('/view', { method: 'POST' })).json(), { views: 1 }, 'ended after 2 hours idle');
    assert.deepEqual((await remembered.request('/me')).json(), { user: 'alice' });
    await app.close();
  });

  it('cookie lifetime when within remember.idleTimeoutMs then no warning; beyond it one warning pointing at tether.remember', async () => {
    const within = await warningsOf(async () => {
      for (const options of [{}, { tether: { remember: { idleTimeoutMs: 60 * DAY } } }] as CompatSessionOptions[]) {
        const app = await compatApp(options, routes);
        await app.client().request('/login?remember=7', { method: 'POST' });
        await app.client().request('/login?remember=14', { method: 'POST' });
        if (options.tether) await app.client().request('/login?remember=30', { method: 'POST' });
        await app.close();
      }
    });
    assert.deepEqual(within, []);
    const beyond = await warningsOf(async () => {
      const app = await compatApp({}, routes);
      await app.client().request('/login?remember=30', { method: 'POST' });
      await app.client().request('/login?remember=30', { method: 'POST' });
      await app.close();
    });
    assert.deepEqual(beyond.map(([code]) => code), ['TETHER_COMPAT_COOKIE_OUTLIVES_SESSION']);
    assert.match(beyond[0]![1], /2592000 s.*1209600 s.*tether\.remember/);
  });

  it('tether.remember when mistyped then OPTIONS_INVALID; when shorter than the idle timeout then refused by the engine', () => {
    assert.throws(() => session({ secret: SECRET, tether: { remember: 5 as never } }), { code: 'OPTIONS_INVALID', message: /options\.remember must be/ });
    assert.throws(() => session({ secret: SECRET, cookie: { maxAge: 20 * DAY }, tether: { remember: { idleTimeoutMs: 7 * DAY } } }),
      { code: 'OPTIONS_INVALID', message: /remember\.idleTimeoutMs .* is shorter than options\.idleTimeoutMs/ });
  });
});

describe('session() "remember me": sessions migrated from express-session', () => {
  it('migration when the old session’s cookie had a long originalMaxAge then the Tether session is remembered', async () => {
    const old = new expressSession.MemoryStore();
    const cookie = { originalMaxAge: 10 * DAY, expires: new Date(Date.now() + 10 * DAY), httpOnly: true, path: '/' };
    old.set('old-sid', { cookie: cookie, rememberUser: 'alice' });
    const app = await compatApp({ tether: { migrateFrom: old } }, routes);
    const c = app.client();
    c.set('connect.sid', encodeURIComponent(`s:old-sid.${createHmac('sha256', SECRET).update('old-sid').digest('base64').replace(/=+$/, '')}`));
    const first = await c.request('/me');
    assert.deepEqual(first.json(), { user: 'alice' });
    const sid = first.setCookies.find((h) => h.startsWith('sid='))!;
    assert.equal(cookieAttributes(sid)['max-age'], String(10 * 86_400), 'the lifetime it had');
    assert.equal(await rememberedIn(app.store, c.get('sid')), true);
    app.clock.advance(3 * HOUR);
    assert.deepEqual((await c.request('/me')).json(), { user: 'alice' });
    await app.close();
  });
});
