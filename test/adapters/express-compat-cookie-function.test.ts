/**
 * express-session's `cookie` option given as a function of the request, on the drop-in: the lifetime
 * it returns is that of the sessions created on that request (remembered when longer than the idle
 * timeout), and a session keeps it on later requests whatever the function returns there. Over HTTP,
 * with a hand-moved clock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type express from 'express';
import type { Request } from 'express';
import type { CompatCookieOptions } from 'tether/express';
import { cookieAttributes } from '../helpers/cookie-client.js';
import { DAY, HOUR, MIN, compatApp, rememberedIn, warningMessagesDuring as warningsOf } from './express-compat.kit.js';

declare module 'express-session' {
  interface SessionData {
    fnUser?: string;
    fnViews?: number;
  }
}

const APP = { headers: { 'x-client': 'app' } };

/** The mobile app's requests get a lasting cookie of `days`, the browser's a browser-session one. */
const byClient = (days: number) => (req: Request): CompatCookieOptions => (req.get('x-client') === 'app' ? { maxAge: days * DAY } : {});

function routes(a: express.Express): void {
  a.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.fnUser = 'alice';
      res.end();
    });
  });
  a.post('/logout', (req, res, next) => req.session.regenerate((err) => (err ? next(err) : res.end())));
  a.get('/me', (req, res) => res.json({ user: req.session.fnUser ?? null }));
  a.post('/view', (req, res) => res.json({ views: (req.session.fnViews = (req.session.fnViews ?? 0) + 1) }));
}

/** Whether the record the cookie names is a remembered session's; null when there is none. */
describe('session() with cookie as a function of the request', () => {
  it('cookie function when it returns a lifetime past the idle timeout for some requests then only the sessions created on those are remembered', async () => {
    const app = await compatApp({ cookie: byClient(7) }, routes);
    const phone = app.client();
    const browser = app.client();
    const lasting = await phone.request('/login', { method: 'POST', ...APP });
    assert.equal(cookieAttributes(lasting.setCookies[0]!)['max-age'], String(7 * 86_400));
    const plain = await browser.request('/login', { method: 'POST' });
    assert.equal(cookieAttributes(plain.setCookies[0]!)['max-age'], undefined);
    assert.equal(await rememberedIn(app.store, phone.get('sid')), true);
    assert.equal(await rememberedIn(app.store, browser.get('sid')), false);
    app.clock.advance(3 * HOUR);
    assert.deepEqual((await phone.request('/me', APP)).json(), { user: 'alice' }, 'idle 3 hours, past the engine’s 30 minutes');
    assert.deepEqual((await browser.request('/me')).json(), { user: null }, 'ended after 30 minutes idle');
    await app.close();
  });

  it('cookie function when a session is used on requests it returns another lifetime for then the session keeps its own', async () => {
    for (const rolling of [false, true]) {
      const app = await compatApp({ cookie: byClient(7), rolling }, routes);
      const ordinary = app.client();
      await ordinary.request('/login', { method: 'POST' });
      app.clock.advance(10 * MIN);
      const visit = await ordinary.request('/view', { method: 'POST', ...APP });
      assert.equal(await rememberedIn(app.store, ordinary.get('sid')), false, `rolling: ${rolling}: not remembered on a request given a lasting lifetime`);
      if (rolling) assert.equal(cookieAttributes(visit.setCookies[0]!)['max-age'], undefined, 'its own browser-session cookie');
      else assert.deepEqual(visit.setCookies, [], 'a browser-session cookie is not re-sent for a change');
      app.clock.advance(32 * MIN);
      assert.deepEqual((await ordinary.request('/me', APP)).json(), { user: null }, '30 minutes idle end it');

      const remembered = app.client();
      await remembered.request('/login', { method: 'POST', ...APP });
      app.clock.advance(2 * HOUR);
      const changed = await remembered.request('/view', { method: 'POST' });
      assert.equal(await rememberedIn(app.store, remembered.get('sid')), true, `rolling: ${rolling}: not forgotten on a request given no lifetime`);
      assert.equal(cookieAttributes(changed.setCookies[0]!)['max-age'], String(7 * 86_400), 'its own cookie, persistent and changed: re-sent');
      const read = await remembered.request('/me');
      assert.deepEqual(read.json(), { user: 'alice' });
      if (rolling) assert.equal(cookieAttributes(read.setCookies[0]!)['max-age'], String(7 * 86_400));
      else assert.deepEqual(read.setCookies, []);
      await app.close();
    }
  });

  it('cookie function when it returns a lifetime within the idle timeout or none then sessions stay ordinary', async () => {
    for (const cookie of [() => ({ maxAge: 10 * MIN }), () => ({}), () => ({ maxAge: null })]) {
      const app = await compatApp({ cookie }, routes);
      const c = app.client();
      await c.request('/login', { method: 'POST' });
      assert.equal(await rememberedIn(app.store, c.get('sid')), false);
      app.clock.advance(25 * MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: 'alice' });
      app.clock.advance(32 * MIN);
      assert.deepEqual((await c.request('/me')).json(), { user: null });
      await app.close();
    }
  });

  it('cookie function when a session is regenerated and left empty (a logout) then it ends and no empty session is stored', async () => {
    const app = await compatApp({ cookie: byClient(7) }, routes);
    for (const options of [APP, {}]) {
      const c = app.client();
      await c.request('/login', { method: 'POST', ...options });
      const old = c.get('sid');
      const out = await c.request('/logout', { method: 'POST', ...options });
      assert.equal(cookieAttributes(out.setCookies[0]!)['max-age'], '0', 'the cookie is cleared');
      assert.equal(await rememberedIn(app.store, old), null);
      assert.equal(await app.memory.count(), 0);
    }
    await app.close();
  });

  it('cookie function when the login route sets what it reads on the request before regenerate() then the new session\'s cookie follows it, as express-session makes it again', async () => {
    const remember = (req: Request): CompatCookieOptions => ((req as Request & { remember?: boolean }).remember ? { maxAge: 7 * DAY } : {});
    const app = await compatApp({ cookie: remember }, (a) => {
      a.post('/login', (req, res, next) => {
        (req as Request & { remember?: boolean }).remember = req.query.remember === '1';
        req.session.regenerate((err) => {
          if (err) return next(err);
          req.session.fnUser = 'alice';
          res.json({ originalMaxAge: req.session.cookie.originalMaxAge });
        });
      });
      a.get('/me', (req, res) => res.json({ user: req.session.fnUser ?? null, originalMaxAge: req.session.cookie.originalMaxAge }));
    });
    const kept = app.client();
    const login = await kept.request('/login?remember=1', { method: 'POST' });
    assert.deepEqual(login.json(), { originalMaxAge: 7 * DAY });
    assert.equal(cookieAttributes(login.setCookies[0]!)['max-age'], String(7 * 86_400));
    assert.equal(await rememberedIn(app.store, kept.get('sid')), true);
    app.clock.advance(3 * HOUR);
    assert.deepEqual((await kept.request('/me')).json(), { user: 'alice', originalMaxAge: 7 * DAY }, 'its own lifetime on later requests');
    const plain = app.client();
    assert.deepEqual((await plain.request('/login', { method: 'POST' })).json(), { originalMaxAge: null });
    assert.equal(await rememberedIn(app.store, plain.get('sid')), false);
    await app.close();
  });

  it('cookie function when a lifetime it returns exceeds remember.idleTimeoutMs then one warning, and none for lifetimes within it', async () => {
    const beyond = await warningsOf(async () => {
      const app = await compatApp({ cookie: byClient(30) }, routes);
      await app.client().request('/login', { method: 'POST' });
      await app.client().request('/login', { method: 'POST', ...APP });
      const again = app.client();
      await again.request('/login', { method: 'POST', ...APP });
      await again.request('/view', { method: 'POST', ...APP });
      await app.close();
    });
    assert.deepEqual(beyond.map(([code]) => code), ['TETHER_COMPAT_COOKIE_OUTLIVES_SESSION']);
    assert.match(beyond[0]![1], /2592000 s.*1209600 s.*tether\.remember/);
    const within = await warningsOf(async () => {
      for (const options of [{ cookie: byClient(14) }, { cookie: byClient(30), tether: { remember: { idleTimeoutMs: 30 * DAY } } }]) {
        const app = await compatApp(options, routes);
        await app.client().request('/login', { method: 'POST', ...APP });
        await app.client().request('/login', { method: 'POST' });
        await app.close();
      }
    });
    assert.deepEqual(within, []);
  });
});

describe('session() with cookie as a function and saveUninitialized', () => {
  it('cookie function when a session stored empty is used on a request given a lasting lifetime then it keeps its browser-session one', async () => {
    const app = await compatApp({ cookie: byClient(7), saveUninitialized: true }, routes);
    const c = app.client();
    const first = await c.request('/me');
    assert.equal(cookieAttributes(first.setCookies[0]!)['max-age'], undefined);
    assert.equal(await rememberedIn(app.store, c.get('sid')), false, 'stored empty, with a browser-session cookie');
    const visit = await c.request('/view', { method: 'POST', ...APP });
    assert.equal(await rememberedIn(app.store, c.get('sid')), false, 'not remembered on a request given a lasting lifetime');
    assert.deepEqual(visit.setCookies, [], 'its browser-session cookie is not re-sent for a change');
    await app.close();
  });
});

describe('session() with cookie attributes no Set-Cookie header can carry', () => {
  it('cookie attributes a Set-Cookie header cannot carry, taken from the request or set by the route, when a session is saved then 500 OPTIONS_INVALID naming the attribute, no cookie, nothing stored', async () => {
    // An app that takes the cookie's domain from a request header, as S17 warns against.
    const app = await compatApp({ cookie: (req: Request): CompatCookieOptions => ({ domain: req.get('x-site') ?? 'shop.example' }) }, (a) => {
      routes(a);
      a.post('/path', (req, res) => {
        req.session.cookie.path = String(req.get('x-path'));
        req.session.fnViews = 1;
        res.end();
      });
    });
    const c = app.client();
    for (const [path, headers, attribute] of [
      ['/view', { 'x-site': 'evil.example; HttpOnly' }, 'domain'],
      ['/view', { 'x-site': 'evil.example\tSameSite=None' }, 'domain'],
      ['/path', { 'x-path': '/;Domain=evil.example' }, 'path'],
    ] as const) {
      const r = await c.request(path, { method: 'POST', headers });
      assert.equal(r.status, 500, path);
      const error = r.json<{ error: { code: string; message: string } }>().error;
      assert.equal(error.code, 'OPTIONS_INVALID');
      assert.match(error.message, new RegExp(`its ${attribute} holds`));
      assert.ok(!error.message.includes('evil'), 'the value is not echoed');
      assert.deepEqual(r.setCookies, []);
    }
    assert.equal(app.store.calls.set, 0, 'no session was stored for a cookie that could not be sent');
    const ok = await c.request('/view', { method: 'POST' });
    assert.equal(ok.status, 200);
    assert.equal(cookieAttributes(ok.setCookies[0]!).domain, 'shop.example');
    await app.close();
  });
});
