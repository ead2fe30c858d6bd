/**
 * The express-session drop-in (`session()` from tether/express), API by API: `req.session` data and
 * methods, `req.sessionID`, the cookie object and every express-session option, over real HTTP.
 * Concurrency, failures and CSRF: express-compat-guarantees.test.ts; old stores: express-legacy-store.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import express from 'express';
import expressSession from 'express-session';
import session from 'tether/express';
import { encryptedCodec } from 'tether';
import { randomBytes } from 'node:crypto';
import { hashId } from '../../src/core/ids.js';
import { cookieAttributes, listen, CookieClient } from '../helpers/cookie-client.js';
import { compatApp, idOf, storedData, warningsDuring, backend, SECRET } from './express-compat.kit.js';

declare module 'express-session' {
  interface SessionData {
    compatViews?: number;
    compatNote?: string;
  }
  // The promise forms are a Tether extension; this is the augmentation docs/migrating-from-express-session.md shows.
  interface Session {
    regenerate(): Promise<void>;
    destroy(): Promise<void>;
    reload(): Promise<void>;
    save(): Promise<void>;
  }
}

/** Type test: code written against express-session's types compiles with the import switched. */
export function typedUse(app: express.Express): void {
  app.use(session({
    secret: 'keyboard cat', resave: false, saveUninitialized: false, rolling: true, proxy: true, unset: 'destroy',
    name: 'app.sid', cookie: { secure: 'auto', sameSite: true, maxAge: 60_000, httpOnly: true, path: '/' },
    store: new expressSession.MemoryStore(), genid: (req) => `${req.ip ?? ''}${crypto.randomUUID()}`,
  }));
  const typed: expressSession.SessionOptions = { secret: ['new', 'old'], cookie: { sameSite: 'strict' } };
  app.use(session(typed));
  app.get('/', (req, res) => {
    req.session.compatViews = (req.session.compatViews ?? 0) + 1;
    req.session.cookie.maxAge = 1_000;
    const id: string = req.sessionID;
    req.session.regenerate((err) => {
      if (err) throw err;
      req.session.save(() => res.send(id));
    });
  });
  // @ts-expect-error unset is 'destroy' or 'keep'
  session({ unset: 'drop' });
  // @ts-expect-error cookie.secure is a boolean or 'auto'
  session({ cookie: { secure: 'yes' } });
}

type Json = Record<string, unknown>;

describe('session() data and cookie', () => {
  it('new visitor when nothing is stored then no cookie is set and the store is not written', async () => {
    const app = await compatApp({}, (a) => a.get('/', (req, res) => res.json({ id: typeof req.sessionID })));
    const r = await app.client().request('/');
    assert.equal(r.status, 200);
    assert.deepEqual(r.setCookies, []);
    assert.equal(app.store.writes, 0);
    await app.close();
  });

  it('new visitor when data is set then an HttpOnly SameSite=Lax "sid" cookie carries req.sessionID and the data comes back', async () => {
    const app = await compatApp({}, (a) => {
      a.get('/set', (req, res) => {
        req.session.compatNote = 'hello';
        res.json({ sessionID: req.sessionID, id: req.session.id });
      });
      a.get('/get', (req, res) => res.json({ note: req.session.compatNote, sessionID: req.sessionID }));
    });
    const c = app.client();
    const r = await c.request('/set');
    const { sessionID, id } = r.json<{ sessionID: string; id: string }>();
    assert.equal(sessionID, id);
    assert.equal(r.setCookies.length, 1);
    assert.ok(r.setCookies[0]!.startsWith('sid='));
    assert.deepEqual(cookieAttributes(r.setCookies[0]!), { path: '/', httponly: '', samesite: 'Lax' });
    assert.equal(idOf(c.get('sid')), sessionID, 'the cookie is `<req.sessionID>.<hmac>`');
    assert.deepEqual((await c.request('/get')).json(), { note: 'hello', sessionID });
    assert.deepEqual(await storedData(app.store, c.get('sid')), { compatNote: 'hello' });
    await app.close();
  });

  it('name option when given then that cookie is used; secure true without a name then "__Host-sid"', async () => {
    const named = await compatApp({ name: 'app.sid' }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = 1)))));
    assert.ok((await named.client().request('/')).setCookies[0]!.startsWith('app.sid='));
    await named.close();
    const host = await compatApp({ cookie: { secure: true }, proxy: true }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = 1)))));
    const r = await host.client().request('/', { headers: { 'x-forwarded-proto': 'https' } });
    assert.ok(r.setCookies[0]!.startsWith('__Host-sid='));
    assert.equal(cookieAttributes(r.setCookies[0]!).secure, '');
    await host.close();
  });

  it('req.session when code assigns to methods, id or cookie then they cannot be overwritten and only data is stored', async () => {
    const app = await compatApp({}, (a) => a.get('/', (req, res) => {
      const s = req.session as unknown as Json;
      const refused: string[] = [];
      for (const key of ['save', 'regenerate', 'destroy', 'reload', 'touch', 'id']) {
        try {
          s[key] = 'overwritten';
        } catch {
          refused.push(key);
        }
      }
      s.cookie = { maxAge: 5_000 };
      s.compatNote = 'data';
      res.json({ refused, save: typeof req.session.save, maxAge: req.session.cookie.originalMaxAge, json: JSON.parse(JSON.stringify(req.session)) });
    }));
    const c = app.client();
    const r = await c.request('/');
    const body = r.json<{ refused: string[]; save: string; maxAge: number; json: Json }>();
    assert.deepEqual(body.refused, ['save', 'regenerate', 'destroy', 'reload', 'touch', 'id']);
    assert.equal(body.save, 'function');
    assert.equal(body.maxAge, 5_000, 'assigning cookie copied its settings');
    assert.equal(body.json.compatNote, 'data');
    assert.equal((body.json.cookie as Json).originalMaxAge, 5_000, 'JSON of the session includes the cookie, as express-session’s does');
    assert.deepEqual(await storedData(app.store, c.get('sid')), { compatNote: 'data', cookie: { originalMaxAge: 5_000 } });
    await app.close();
  });

  it('req.session when listed (Object.keys, for…in, a spread) then cookie comes first, then the data, as in express-session, and is stored only as settings', async () => {
    const listed = (s: object): Json => {
      const forIn: string[] = [];
      for (const k in s) forIn.push(k);
      return { keys: Object.keys(s), forIn, spread: Object.keys({ ...s }), own: Object.hasOwn(s, 'cookie') };
    };
    const shared = backend();
    const app = await compatApp({}, (a) => {
      a.get('/new', (req, res) => res.json(listed(req.session)));
      // A copy given back: its cookie is the session's own, whose lifetime is not measured again.
      a.get('/copy-back', (req, res) => {
        shared.clock.advance(1_000);
        Object.assign(req.session, { ...req.session });
        res.json({ originalMaxAge: req.session.cookie.originalMaxAge });
      });
      a.get('/set', (req, res) => {
        req.session.compatNote = 'n';
        req.session.cookie.maxAge = 5_000;
        res.json(listed(req.session));
      });
      // Passport's keepSessionInfo: every key of the old session copied into the regenerated one.
      a.get('/login', (req, res) => {
        const prev = req.session as unknown as Json;
        req.session.regenerate((err) => {
          if (err) throw err;
          for (const k in prev) (req.session as unknown as Json)[k] = prev[k];
          res.json({ ...listed(req.session), originalMaxAge: req.session.cookie.originalMaxAge });
        });
      });
    }, shared);
    const c = app.client();
    assert.deepEqual((await c.request('/new')).json(), { keys: ['cookie'], forIn: ['cookie'], spread: ['cookie'], own: true });
    const all = ['cookie', 'compatNote'];
    assert.deepEqual((await c.request('/set')).json(), { keys: all, forIn: all, spread: all, own: true });
    assert.deepEqual((await c.request('/login')).json(), { keys: all, forIn: all, spread: all, own: true, originalMaxAge: 5_000 });
    assert.deepEqual(await storedData(app.store, c.get('sid')), { compatNote: 'n', cookie: { originalMaxAge: 5_000 } });
    const writes = app.store.calls.set;
    assert.deepEqual((await c.request('/copy-back')).json(), { originalMaxAge: 5_000 });
    assert.equal(app.store.calls.set, writes, 'nothing changed, nothing written');
    await app.close();
  });

  it('cookie.maxAge option when set then the cookie is persistent and req.session.cookie reports it', async () => {
    const app = await compatApp({ cookie: { maxAge: 3_600_000 } }, (a) => a.get('/', (req, res) => {
      req.session.compatViews = (req.session.compatViews ?? 0) + 1;
      const c = req.session.cookie;
      res.json({ originalMaxAge: c.originalMaxAge, persistent: c.expires instanceof Date, maxAge: c.maxAge });
    }));
    const r = await app.client().request('/');
    const body = r.json<{ originalMaxAge: number; persistent: boolean; maxAge: number }>();
    assert.equal(body.originalMaxAge, 3_600_000);
    assert.ok(body.persistent);
    assert.ok(body.maxAge > 3_590_000 && body.maxAge <= 3_600_000);
    const attrs = cookieAttributes(r.setCookies[0]!);
    assert.equal(attrs['max-age'], '3600');
    assert.ok(attrs.expires, 'Expires is set too, as express-session does');
    await app.close();
  });

  it('cookie.maxAge per session when one request changes it then later requests keep it and the cookie is re-sent only when the session changes', async () => {
    const app = await compatApp({}, (a) => {
      a.post('/remember', (req, res) => {
        req.session.compatNote = 'me';
        req.session.cookie.maxAge = 7 * 86_400_000;
        res.end();
      });
      a.get('/read', (req, res) => res.json({ originalMaxAge: req.session.cookie.originalMaxAge }));
      a.post('/change', (req, res) => {
        req.session.compatViews = (req.session.compatViews ?? 0) + 1;
        res.end();
      });
    });
    const c = app.client();
    const first = await c.request('/remember', { method: 'POST' });
    assert.equal(cookieAttributes(first.setCookies[0]!)['max-age'], String(7 * 86_400));
    const read = await c.request('/read');
    assert.deepEqual(read.json(), { originalMaxAge: 7 * 86_400_000 });
    assert.deepEqual(read.setCookies, [], 'unchanged session, no rolling: no Set-Cookie');
    const changed = await c.request('/change', { method: 'POST' });
    assert.equal(cookieAttributes(changed.setCookies[0]!)['max-age'], String(7 * 86_400), 'persistent and changed: re-sent with a fresh expiry');
    await app.close();
  });

  it('req.session.cookie when only it changes (maxAge, expires, a remember-me lifetime, httpOnly) then no Set-Cookie without rolling, as express-session; with rolling, each response carries it', async () => {
    for (const rolling of [false, true]) {
      const app = await compatApp({ rolling, cookie: { maxAge: 3_600_000 } }, (a) => {
        a.post('/start', (req, res) => {
          req.session.compatNote = 'n';
          res.end();
        });
        a.post('/cookie/:how', (req, res) => {
          const c = req.session.cookie;
          if (req.params.how === 'maxAge') c.maxAge = 20 * 60_000;
          if (req.params.how === 'expires') c.expires = new Date(Date.now() + 40 * 60_000);
          if (req.params.how === 'remember') c.maxAge = 7 * 86_400_000;
          if (req.params.how === 'httpOnly') c.httpOnly = false;
          res.end();
        });
        a.post('/change', (req, res) => {
          req.session.compatViews = (req.session.compatViews ?? 0) + 1;
          res.end();
        });
      });
      for (const how of ['maxAge', 'expires', 'remember', 'httpOnly']) {
        const c = app.client();
        await c.request('/start', { method: 'POST' });
        const r = await c.request(`/cookie/${how}`, { method: 'POST' });
        assert.equal(r.setCookies.length, rolling ? 1 : 0, `${how}, rolling ${rolling}`);
        const changed = await c.request('/change', { method: 'POST' });
        const attributes = cookieAttributes(changed.setCookies[0]!);
        const maxAge = { maxAge: '1200', expires: '2400', remember: String(7 * 86_400), httpOnly: '3600' }[how];
        assert.equal(attributes['max-age'], maxAge, `${how}: kept with the session, sent with its next change`);
        assert.equal(attributes.httponly, how === 'httpOnly' ? undefined : '', how);
      }
      await app.close();
    }
  });

  it('req.session.cookie.maxAge when given a Date or false, as express-session takes, then an expiry or a browser-session cookie whose originalMaxAge reads false, not a 500', async () => {
    const shared = backend();
    const app = await compatApp({ cookie: { maxAge: 3_600_000 } }, (a) => {
      a.post('/:how', (req, res) => {
        const cookie = req.session.cookie as unknown as { maxAge: unknown };
        cookie.maxAge = req.params.how === 'date' ? new Date(shared.clock.now() + 20 * 60_000) : false;
        req.session.compatNote = req.params.how;
        res.json({ originalMaxAge: req.session.cookie.originalMaxAge });
      });
    }, shared);
    const date = await app.client().request('/date', { method: 'POST' });
    assert.deepEqual(date.json(), { originalMaxAge: 20 * 60_000 });
    assert.equal(cookieAttributes(date.setCookies[0]!)['max-age'], '1200');
    const off = await app.client().request('/false', { method: 'POST' });
    // express-session 1.19 keeps the `false` it was given: `maxAge = false` sets `expires = false`, which reads back as is.
    assert.deepEqual(off.json(), { originalMaxAge: false });
    assert.equal(cookieAttributes(off.setCookies[0]!)['max-age'], undefined, 'a browser-session cookie');
    await app.close();
  });

  it('cookie.maxAge option when one session is given a browser-session cookie then its later responses keep it one, and read expires and originalMaxAge false as express-session does', async () => {
    for (const rolling of [false, true]) {
      const app = await compatApp({ cookie: { maxAge: 3_600_000 }, rolling }, (a) => {
        a.post('/session-only', (req, res) => {
          req.session.compatNote = 'mine';
          (req.session.cookie as { expires: unknown }).expires = false;
          res.end();
        });
        a.get('/read', (req, res) => res.json({ originalMaxAge: req.session.cookie.originalMaxAge, expires: req.session.cookie.expires ?? null }));
        a.post('/change', (req, res) => {
          req.session.compatViews = (req.session.compatViews ?? 0) + 1;
          res.end();
        });
      });
      const c = app.client();
      const first = await c.request('/session-only', { method: 'POST' });
      assert.equal(cookieAttributes(first.setCookies[0]!)['max-age'], undefined);
      const read = await c.request('/read');
      // express-session stores the cookie with the session and reads `expires = false` back as false, not null.
      assert.deepEqual(read.json(), { originalMaxAge: false, expires: false }, `rolling ${rolling}`);
      const changed = await c.request('/change', { method: 'POST' });
      for (const r of [read, changed]) {
        assert.equal(r.setCookies.length, rolling ? 1 : 0, `rolling ${rolling}`);
        if (rolling) assert.equal(cookieAttributes(r.setCookies[0]!)['max-age'], undefined, 'rolling: the session’s own browser-session cookie');
      }
      await app.close();
    }
  });

  it('req.session.cookie.expires when set to false then expires, maxAge, originalMaxAge, data, toJSON and the session JSON read false as with express-session, in that request, later ones, after reload() and touch(); null stays null', async () => {
    /** The same routes on either middleware: each answers what `req.session.cookie` reads. */
    const routes = (a: express.Express): void => {
      const readings = (req: express.Request): Json => {
        const cookie = req.session.cookie as unknown as { expires: unknown; maxAge: unknown; originalMaxAge: unknown; data: unknown };
        return {
          expires: cookie.expires, maxAge: cookie.maxAge, originalMaxAge: cookie.originalMaxAge,
          data: JSON.parse(JSON.stringify(cookie.data)) as unknown,
          cookieJson: JSON.parse(JSON.stringify(req.session.cookie)) as unknown,
          sessionJson: JSON.parse(JSON.stringify(req.session)) as unknown,
        };
      };
      a.post('/off', (req, res) => {
        req.session.compatNote = 'mine';
        const cookie = req.session.cookie as unknown as { expires: unknown; maxAge: unknown };
        if (req.query.how === 'maxAge') cookie.maxAge = false;
        else cookie.expires = false;
        res.json(readings(req));
      });
      a.get('/read', (req, res) => res.json(readings(req)));
      a.post('/change', (req, res) => {
        req.session.compatViews = (req.session.compatViews ?? 0) + 1;
        res.json(readings(req));
      });
      a.post('/reload', (req, res, next) => req.session.reload((err: unknown) => (err ? next(err) : res.json(readings(req)))));
      a.post('/touch', (req, res) => {
        req.session.touch();
        res.json(readings(req));
      });
      a.post('/null', (req, res) => {
        (req.session.cookie as unknown as { expires: unknown }).expires = null;
        req.session.compatViews = 100;
        res.json(readings(req));
      });
    };
    // Settings both give the same way (Tether's default SameSite and Secure are not express-session's).
    const cookie = { maxAge: 3_600_000, sameSite: 'lax' as const, secure: false };
    const real = express();
    real.use(expressSession({ secret: SECRET, resave: false, saveUninitialized: false, cookie }));
    routes(real);
    const realServer = await listen(real);
    const app = await compatApp({ cookie }, routes);
    try {
      for (const how of ['expires', 'maxAge']) {
        const clients = [new CookieClient(realServer.url), app.client()] as const;
        const steps: Array<[method: string, path: string, reads: false | null]> = [
          ['POST', `/off?how=${how}`, false], ['GET', '/read', false], ['POST', '/change', false], ['POST', '/reload', false],
          ['POST', '/touch', false], ['POST', '/null', null], ['GET', '/read', null],
        ];
        for (const [method, path, reads] of steps) {
          const [theirs, ours] = await Promise.all(clients.map((c) => c.request(path, { method })));
          const what = `${how}: ${method} ${path}`;
          assert.equal(theirs!.status, 200, what);
          assert.equal(ours!.status, 200, `${what}: ${ours!.body}`);
          const want = theirs!.json<Json>();
          const got = ours!.json<Json>();
          // The reading spelled out, then everything else as express-session gives it.
          assert.deepEqual([got.expires, got.maxAge, got.originalMaxAge], [reads, reads, reads], what);
          assert.deepEqual([want.expires, want.maxAge, want.originalMaxAge], [reads, reads, reads], `express-session, ${what}`);
          assert.deepEqual(got, want, what);
          for (const r of [theirs!, ours!]) {
            for (const sc of r.setCookies) {
              const attributes = cookieAttributes(sc);
              assert.equal(attributes['max-age'], undefined, `${what}: a browser-session cookie`);
              assert.equal(attributes.expires, undefined, `${what}: a browser-session cookie`);
            }
          }
        }
        // Stored with the session, as express-session stores its whole cookie.
        const stored = await storedData(app.store, clients[1].get('sid'));
        assert.deepEqual(stored?.cookie, { originalMaxAge: null }, `${how}: null stored as null`);
      }
      const c = app.client();
      await c.request('/off', { method: 'POST' });
      assert.deepEqual((await storedData(app.store, c.get('sid')))?.cookie, { originalMaxAge: false }, 'false stored as false');
    } finally {
      await app.close();
      await realServer.close();
    }
  });

  it('cookie.expires option when false then every session’s cookie reads expires, maxAge and originalMaxAge false, as with express-session, and is a browser-session cookie', async () => {
    const routes = (a: express.Express): void => {
      a.post('/visit', (req, res) => {
        req.session.compatViews = (req.session.compatViews ?? 0) + 1;
        const { expires, maxAge, originalMaxAge } = req.session.cookie as unknown as Json;
        res.json({ expires, maxAge, originalMaxAge });
      });
    };
    const real = express();
    real.use(expressSession({ secret: SECRET, resave: false, saveUninitialized: false, cookie: { expires: false } as unknown as expressSession.CookieOptions }));
    routes(real);
    const realServer = await listen(real);
    const app = await compatApp({ cookie: { expires: false } }, routes);
    try {
      const clients = [new CookieClient(realServer.url), app.client()];
      for (const visit of ['new', 'stored']) {
        const [theirs, ours] = await Promise.all(clients.map((c) => c.request('/visit', { method: 'POST' })));
        assert.deepEqual(theirs!.json(), { expires: false, maxAge: false, originalMaxAge: false }, `express-session, ${visit}`);
        assert.deepEqual(ours!.json(), theirs!.json(), visit);
        for (const h of ours!.setCookies) assert.equal(cookieAttributes(h)['max-age'], undefined, visit);
      }
    } finally {
      await app.close();
      await realServer.close();
    }
  });

  it('rolling when true then every response to a stored session re-sends the cookie; when false only new sessions get one', async () => {
    for (const rolling of [true, false]) {
      const app = await compatApp({ rolling }, (a) => {
        a.get('/set', (req, res) => res.send(String((req.session.compatViews = 1))));
        a.get('/read', (req, res) => res.send(String(req.session.compatViews)));
      });
      const c = app.client();
      await c.request('/set');
      const r = await c.request('/read');
      assert.equal(r.body, '1');
      assert.equal(r.setCookies.length, rolling ? 1 : 0, `rolling ${rolling}`);
      if (rolling) assert.equal(r.setCookies[0]!.split(';')[0], `sid=${c.get('sid')}`);
      await app.close();
    }
  });

  it('saveUninitialized when true then a visitor who stores nothing still gets a stored session and a cookie', async () => {
    const app = await compatApp({ saveUninitialized: true }, (a) => a.get('/', (req, res) => res.send(req.sessionID)));
    const c = app.client();
    const r = await c.request('/');
    assert.equal(r.setCookies.length, 1);
    assert.equal(idOf(c.get('sid')), r.body, 'the ID handed out before the commit is the one stored');
    assert.deepEqual(await storedData(app.store, c.get('sid')), {});
    await app.close();
  });

  it('unset when req.session is set to null then "destroy" removes the session and "keep" leaves it as stored', async () => {
    for (const unset of ['destroy', 'keep'] as const) {
      const app = await compatApp({ unset }, (a) => {
        a.get('/set', (req, res) => res.send(String((req.session.compatViews = 1))));
        a.get('/unset', (req, res) => {
          req.session.compatViews = 99;
          (req as { session: unknown }).session = null;
          res.end();
        });
      });
      const c = app.client();
      await c.request('/set');
      const cookie = c.get('sid');
      await c.request('/unset');
      assert.deepEqual(await storedData(app.store, cookie), unset === 'destroy' ? null : { compatViews: 1 }, unset);
      await app.close();
    }
    // With rolling too: a request without a session sends no cookie, as express-session sends none.
    const app = await compatApp({ unset: 'keep', rolling: true }, (a) => {
      a.get('/set', (req, res) => res.send(String((req.session.compatViews = 1))));
      a.get('/unset', (req, res) => {
        (req as { session: unknown }).session = null;
        res.end();
      });
    });
    const c = app.client();
    await c.request('/set');
    assert.equal((await c.request('/set')).setCookies.length, 1, 'rolling re-sends it');
    assert.deepEqual((await c.request('/unset')).setCookies, []);
    await app.close();
  });

  it('tether.clearSiteData when the session is destroyed, unset or regenerated empty then that answer carries Clear-Site-Data; a session stored after the end, none (S16)', async () => {
    const app = await compatApp({ unset: 'destroy', tether: { clearSiteData: ['cache', 'cookies'] } }, (a) => {
      a.get('/set', (req, res) => res.send(String((req.session.compatViews = 1))));
      a.get('/destroy', (req, res) => req.session.destroy(() => res.end()));
      a.get('/unset', (req, res) => {
        (req as { session: unknown }).session = null;
        res.end();
      });
      // Passport's logout: the user is cleared and the session regenerated, left empty.
      a.get('/logout', (req, res) => req.session.regenerate(() => res.end()));
      // A login after an end: a new session is stored, whose cookie must not be cleared.
      a.get('/relogin', (req, res) => req.session.regenerate(() => {
        req.session.compatNote = 'again';
        res.end();
      }));
    });
    const c = app.client();
    const set = await c.request('/set');
    assert.equal(set.headers.get('clear-site-data'), null);
    for (const path of ['/destroy', '/unset', '/logout']) {
      await c.request('/set');
      const cookie = c.get('sid');
      const out = await c.request(path);
      assert.equal(out.headers.get('clear-site-data'), '"cache", "cookies"', path);
      assert.equal(out.headers.get('cache-control'), 'no-store', path);
      assert.equal(await storedData(app.store, cookie), null, `${path} ended the session`);
    }
    await c.request('/set');
    const again = await c.request('/relogin');
    assert.equal(again.headers.get('clear-site-data'), null, 'a regenerate that stores data is a login, not a logout');
    assert.deepEqual(await storedData(app.store, c.get('sid')), { compatNote: 'again' });
    await app.close();
  });

  it('tether.codec when encryptedCodec then req.session works as before and the store holds the data encrypted', async () => {
    const codec = encryptedCodec({ keys: randomBytes(32).toString('base64url') });
    const app = await compatApp({ tether: { codec } }, (a) => {
      a.get('/set', (req, res) => res.send(String((req.session.compatNote = 'secret-note'))));
      a.get('/get', (req, res) => res.json({ note: req.session.compatNote ?? null }));
    });
    const c = app.client();
    await c.request('/set');
    assert.deepEqual((await c.request('/get')).json(), { note: 'secret-note' });
    const rec = await app.store.get(hashId(idOf(c.get('sid'))));
    assert.ok(rec && rec.data.startsWith('"tether:enc:1:'), 'stored encrypted');
    assert.equal(rec.data.includes('secret-note'), false);
    assert.equal(codec.decode(rec.data).d.compatNote, 'secret-note');
    await app.close();
  });

  it('request target when in absolute form (GET http://host/path) then the session is there by its path, as express-session routes it', async () => {
    const app = await compatApp({ cookie: { path: '/app' } }, (a) => {
      a.get('/app/x', (req, res) => res.json({ has: req.session !== undefined }));
      a.get('/other', (req, res) => res.json({ has: req.session !== undefined }));
    });
    const host = new URL(app.url).host;
    const ask = (target: string): Promise<string> => new Promise((resolve, reject) => {
      const socket = connect(Number(new URL(app.url).port), '127.0.0.1');
      let text = '';
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')));
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => resolve(text.slice(text.indexOf('\r\n\r\n') + 4)));
      socket.on('error', reject);
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    assert.deepEqual(JSON.parse(await ask(`http://${host}/app/x?q=1`)), { has: true });
    assert.deepEqual(JSON.parse(await ask(`http://${host}/other`)), { has: false });
    await app.close();
  });

  it('cookie.path when the request is outside it then the request has no session', async () => {
    const app = await compatApp({ cookie: { path: '/app' } }, (a) => {
      a.get('/app/x', (req, res) => res.json({ has: req.session !== undefined }));
      a.get('/other', (req, res) => res.json({ has: req.session !== undefined }));
    });
    const c = app.client();
    assert.deepEqual((await c.request('/app/x')).json(), { has: true });
    assert.deepEqual((await c.request('/other')).json(), { has: false });
    await app.close();
  });
});

describe('session() methods', () => {
  const routes = (a: express.Express): void => {
    a.get('/set', (req, res) => res.send(String((req.session.compatViews = (req.session.compatViews ?? 0) + 1))));
    a.get('/get', (req, res) => res.json({ views: req.session.compatViews ?? null, id: req.sessionID }));
    a.get('/regenerate', (req, res) => {
      const before = req.session;
      req.session.regenerate((err) => {
        if (err) throw err;
        const empty = req.session.compatViews === undefined;
        if (req.query.keep !== 'no') req.session.compatNote = 'fresh';
        res.json({ empty, replaced: req.session !== before, id: req.sessionID });
      });
    });
    a.get('/destroy', (req, res) => {
      req.session.destroy((err) => {
        if (err) throw err;
        res.json({ session: typeof req.session });
      });
    });
    a.get('/reload', (req, res) => {
      req.session.compatViews = 1000;
      req.session.reload((err) => {
        if (err) {
          res.status(404).json({ error: String(err) });
          return;
        }
        res.json({ views: req.session.compatViews });
      });
    });
    a.get('/promises', async (req, res) => {
      req.session.compatNote = 'p';
      await req.session.save();
      const saved = await storedData(app.store, `${req.sessionID}.x`);
      await req.session.regenerate();
      const id = req.sessionID;
      req.session.compatNote = 'after';
      await req.session.reload().catch((err: Error) => req.session.compatNote = err.message);
      res.json({ saved, id, note: req.session.compatNote, touch: req.session.touch() === req.session });
    });
    a.get('/save-then-change', (req, res, next) => {
      req.session.compatNote = 'saved';
      req.session.save((err) => {
        if (err) return next(err);
        storedData(app.store, `${req.sessionID}.x`).then((during) => {
          req.session.compatViews = 7;
          res.json({ during });
        }, next);
      });
    });
  };
  let app: Awaited<ReturnType<typeof compatApp>>;

  it('regenerate when called then the session is new and empty under a new ID and the old ID is dead', async () => {
    app = await compatApp({}, routes);
    const c = app.client();
    await c.request('/set');
    const old = c.clone();
    const r = (await c.request('/regenerate')).json<{ empty: boolean; replaced: boolean; id: string }>();
    assert.deepEqual([r.empty, r.replaced], [true, true]);
    assert.notEqual(idOf(c.get('sid')), idOf(old.get('sid')));
    assert.deepEqual((await old.request('/get')).json<Json>().views, null, 'the old ID names no session');
    await app.close();
  });

  it('regenerate when the new session is left empty (a logout) then the old session ends and no empty session is stored', async () => {
    app = await compatApp({}, routes);
    const c = app.client();
    await c.request('/set');
    const old = c.get('sid');
    const r = await c.request('/regenerate?keep=no');
    assert.equal(cookieAttributes(r.setCookies[0]!)['max-age'], '0', 'the cookie is cleared');
    assert.equal(await storedData(app.store, old), null);
    assert.equal(await app.memory.count(), 0);
    await app.close();
  });

  it('destroy when called then req.session is undefined at once, the record is gone and the cookie is cleared', async () => {
    app = await compatApp({}, routes);
    const c = app.client();
    await c.request('/set');
    const cookie = c.get('sid');
    const r = await c.request('/destroy');
    assert.deepEqual(r.json(), { session: 'undefined' });
    assert.equal(await storedData(app.store, cookie), null);
    assert.equal(cookieAttributes(r.setCookies[0]!)['max-age'], '0');
    assert.equal(c.get('sid'), undefined);
    await app.close();
  });

  it('reload when the request changed data then the changes are dropped; on a session never stored it fails like express-session', async () => {
    app = await compatApp({}, routes);
    assert.equal((await app.client().request('/reload')).json<Json>().error, 'Error: failed to load session');
    const c = app.client();
    await c.request('/set');
    assert.deepEqual((await c.request('/reload')).json(), { views: 1 });
    assert.deepEqual((await c.request('/get')).json<Json>().views, 1);
    await app.close();
  });

  it('save when its callback runs then the store already holds the data, and later changes are stored too', async () => {
    app = await compatApp({}, routes);
    const c = app.client();
    assert.deepEqual((await c.request('/save-then-change')).json(), { during: { compatNote: 'saved' } });
    assert.deepEqual(await storedData(app.store, c.get('sid')), { compatNote: 'saved', compatViews: 7 });
    await app.close();
  });

  it('methods when called without a callback then they return promises and touch() returns the session', async () => {
    app = await compatApp({}, routes);
    const c = app.client();
    const r = (await c.request('/promises')).json<{ saved: Json; id: string; note: string; touch: boolean }>();
    assert.deepEqual(r.saved, { compatNote: 'p' });
    assert.equal(r.note, 'failed to load session', 'reload() of a regenerated, unsaved session rejects');
    assert.equal(r.touch, true);
    await app.close();
  });
});

describe('session() options', () => {
  it('genid when given then it names new sessions from the request; an unusable ID fails the request with OPTIONS_INVALID', async () => {
    const app = await compatApp({ genid: (req) => `${req.path.slice(1)}-${crypto.randomUUID()}` }, (a) => {
      a.get('/ok', (req, res) => res.send(String((req.session.compatViews = 1))));
      a.get('/id', (req, res) => res.send(req.sessionID));
    });
    const c = app.client();
    await c.request('/ok');
    assert.match(idOf(c.get('sid')), /^ok-[0-9a-f-]{36}$/);
    await app.close();
    const bad = await compatApp({ genid: () => '1234' }, (a) => a.get('/id', (req, res) => res.send(req.sessionID)));
    const r = await bad.client().request('/id');
    assert.equal(r.status, 500);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'OPTIONS_INVALID');
    await bad.close();
  });

  it('genid when it reads the request and tether.renewal replaces a due ID then the new ID is genid’s for that request, not a 500', async () => {
    const shared = backend();
    const app = await compatApp({
      genid: (req) => `${String(req.headers['x-tenant'])}-${crypto.randomUUID()}`,
      tether: { renewal: { intervalMs: 10 * 60_000, graceMs: 30_000 } },
    }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = (req.session.compatViews ?? 0) + 1)))), shared);
    const c = app.client();
    await c.request('/', { headers: { 'x-tenant': 'a' } });
    const first = c.get('sid');
    shared.clock.advance(11 * 60_000);
    const renewed = await c.request('/', { headers: { 'x-tenant': 'b' } });
    assert.equal(renewed.status, 200, renewed.body);
    assert.equal(renewed.body, '2');
    assert.match(idOf(c.get('sid')), /^b-[0-9a-f-]{36}$/, 'the renewal’s ID, from genid with the request it answers');
    assert.notEqual(idOf(c.get('sid')), idOf(first));
    await app.close();
  });

  it('cookie.secure "auto" when proxy is true then Secure follows X-Forwarded-Proto; secure true over plain HTTP then no cookie and no record', async () => {
    const auto = await compatApp({ proxy: true, cookie: { secure: 'auto' } }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = 1)))));
    const https = await auto.client().request('/', { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(cookieAttributes(https.setCookies[0]!).secure, '');
    const http = await auto.client().request('/');
    assert.equal(cookieAttributes(http.setCookies[0]!).secure, undefined);
    await auto.close();
    const strict = await compatApp({ cookie: { secure: true }, name: 'sid' }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = 1)))));
    const plain = await strict.client().request('/');
    assert.deepEqual(plain.setCookies, []);
    assert.equal(strict.store.calls.set, 0, 'a session whose cookie cannot be set is not stored');
    await strict.close();
  });

  it('cookie.secure "auto" when a session stored over HTTPS comes back on a request that does not look like HTTPS then its cookie never goes out without Secure, as express-session', async () => {
    const app = await compatApp({ proxy: true, rolling: true, cookie: { secure: 'auto' } }, (a) => {
      a.get('/', (req, res) => res.json({ views: (req.session.compatViews = (req.session.compatViews ?? 0) + 1), secure: req.session.cookie.secure }));
    });
    const https = { headers: { 'x-forwarded-proto': 'https' } };
    const c = app.client();
    assert.equal(cookieAttributes((await c.request('/', https)).setCookies[0]!).secure, '');
    // The proxy left X-Forwarded-Proto out: express-session sends no cookie, having made this one Secure.
    const plain = await c.request('/');
    assert.deepEqual(plain.json(), { views: 2, secure: true });
    assert.deepEqual(plain.setCookies, [], 'no cookie without Secure for a session whose cookie is Secure');
    const back = await c.request('/', https);
    assert.deepEqual(back.json(), { views: 3, secure: true });
    assert.equal(cookieAttributes(back.setCookies[0]!).secure, '');
    // A session begun over plain HTTP gets Secure once served over HTTPS, and keeps it.
    const d = app.client();
    assert.equal(cookieAttributes((await d.request('/')).setCookies[0]!).secure, undefined);
    assert.equal(cookieAttributes((await d.request('/', https)).setCookies[0]!).secure, '');
    assert.deepEqual((await d.request('/')).setCookies, []);
    await app.close();
    // The same for sessions stored empty (saveUninitialized).
    const empty = await compatApp({ proxy: true, rolling: true, saveUninitialized: true, cookie: { secure: 'auto' } }, (a) => a.get('/', (_req, res) => res.end()));
    const e = empty.client();
    assert.equal(cookieAttributes((await e.request('/', https)).setCookies[0]!).secure, '');
    assert.equal(cookieAttributes((await e.request('/', https)).setCookies[0]!).secure, '', 'stored empty, still Secure');
    assert.deepEqual((await e.request('/')).setCookies, []);
    await empty.close();
  });

  it('proxy when undefined then Express’s "trust proxy" decides req.secure', async () => {
    const app = await compatApp({ cookie: { secure: 'auto' } }, (a) => {
      a.set('trust proxy', true);
      a.get('/', (req, res) => res.send(String((req.session.compatViews = 1))));
    });
    const r = await app.client().request('/', { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(cookieAttributes(r.setCookies[0]!).secure, '');
    await app.close();
  });

  it('X-Forwarded-Proto when sent by a hop that is not trusted then the request stays plain HTTP: no Secure from auto, no cookie and no record under secure true', async () => {
    const route = (a: import('express').Express) => a.get('/', (req, res) => res.send(String((req.session.compatViews = 1))));
    const spoofed = { headers: { 'x-forwarded-proto': 'https' } };
    // Express trusts no proxy by default; then one trusted elsewhere, not the loopback the request comes from.
    for (const trust of [undefined, '10.0.0.1']) {
      const auto = await compatApp({ cookie: { secure: 'auto' } }, (a) => {
        if (trust !== undefined) a.set('trust proxy', trust);
        route(a);
      });
      const r = await auto.client().request('/', spoofed);
      assert.equal(cookieAttributes(r.setCookies[0]!).secure, undefined, `trust proxy ${trust}`);
      await auto.close();
      const strict = await compatApp({ cookie: { secure: true }, name: 'sid' }, (a) => {
        if (trust !== undefined) a.set('trust proxy', trust);
        route(a);
      });
      const plain = await strict.client().request('/', spoofed);
      assert.deepEqual(plain.setCookies, [], `trust proxy ${trust}`);
      assert.equal(strict.store.calls.set, 0, 'a session whose cookie cannot be set is not stored');
      await strict.close();
    }
    // proxy: false ignores the header even where Express would trust it.
    const off = await compatApp({ proxy: false, cookie: { secure: 'auto' } }, (a) => {
      a.set('trust proxy', true);
      route(a);
    });
    assert.equal(cookieAttributes((await off.client().request('/', spoofed)).setCookies[0]!).secure, undefined);
    await off.close();
  });

  it('secret list when the cookie was signed by the old secret then it is accepted and re-signed with the new one', async () => {
    const shared = backend();
    const oldApp = await compatApp({ secret: SECRET }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = (req.session.compatViews ?? 0) + 1)))), shared);
    const c = oldApp.client();
    await c.request('/');
    const oldCookie = c.get('sid')!;
    await oldApp.close();
    const newApp = await compatApp({ secret: ['rotated-secret-0123456789abcdefghijklmn', SECRET] }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = (req.session.compatViews ?? 0) + 1)))), shared);
    const next = new (c.constructor as typeof import('../helpers/cookie-client.js').CookieClient)(newApp.url);
    next.set('sid', oldCookie);
    const r = await next.request('/');
    assert.equal(r.body, '2');
    assert.equal(idOf(next.get('sid')), idOf(oldCookie), 'same session');
    assert.notEqual(next.get('sid'), oldCookie, 're-signed');
    await newApp.close();
  });

  it('secret when shorter than 32 characters then a key is derived with one warning and sessions work', async () => {
    let app: Awaited<ReturnType<typeof compatApp>> | undefined;
    const codes = await warningsDuring(async () => {
      app = await compatApp({ secret: ['keyboard cat', 'another short one'] }, (a) => a.get('/', (req, res) => res.send(String((req.session.compatViews = (req.session.compatViews ?? 0) + 1)))));
    });
    assert.deepEqual(codes, ['TETHER_COMPAT_SHORT_SECRET']);
    const c = app!.client();
    await c.request('/');
    assert.equal((await c.request('/')).body, '2');
    await app!.close();
  });

  it('resave when true then it is accepted with one warning and unchanged sessions are still not rewritten', async () => {
    let app: Awaited<ReturnType<typeof compatApp>> | undefined;
    const codes = await warningsDuring(async () => {
      app = await compatApp({ resave: true }, (a) => {
        a.get('/set', (req, res) => res.send(String((req.session.compatViews = 1))));
        a.get('/read', (req, res) => res.send(String(req.session.compatViews)));
      });
    });
    assert.deepEqual(codes, ['TETHER_COMPAT_RESAVE']);
    const c = app!.client();
    await c.request('/set');
    app!.store.resetCounts();
    await c.request('/read');
    assert.equal(app!.store.calls.set, 0);
    await app!.close();
  });

  it('production when cookie.secure is not given then Secure follows the request and a cookie sent without it is warned about once', async () => {
    let app: Awaited<ReturnType<typeof compatApp>> | undefined;
    const codes = await warningsDuring(async () => {
      app = await compatApp({ tether: { production: true } }, (a) => {
        a.set('trust proxy', 'loopback');
        a.get('/', (req, res) => res.send(String((req.session.compatViews = 1))));
      });
      const https = await app.client().request('/', { headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(cookieAttributes(https.setCookies[0]!).secure, '');
      const http = await app.client().request('/');
      assert.equal(cookieAttributes(http.setCookies[0]!).secure, undefined);
      await app.client().request('/');
    });
    assert.deepEqual(codes, ['TETHER_COMPAT_INSECURE_COOKIE']);
    await app!.close();
  });

  it('cookie.maxAge per session when longer than a remembered session’s idle timeout then one warning says the session ends first', async () => {
    let app: Awaited<ReturnType<typeof compatApp>> | undefined;
    const codes = await warningsDuring(async () => {
      app = await compatApp({}, (a) => a.get('/', (req, res) => {
        req.session.compatViews = 1;
        req.session.cookie.maxAge = 30 * 86_400_000;
        res.end();
      }));
      await app.client().request('/');
      await app.client().request('/');
    });
    assert.deepEqual(codes, ['TETHER_COMPAT_COOKIE_OUTLIVES_SESSION']);
    await app!.close();
  });

  it('require() from CommonJS when the app does `require(\'tether/express\')` then it gets the middleware itself, like express-session', () => {
    // Under tsx, require() compiles a second copy of the module, so compare by shape, not identity.
    const required = createRequire(import.meta.url)('tether/express') as typeof session & Record<string, unknown>;
    assert.equal(typeof required, 'function');
    assert.equal(required.name, 'session');
    assert.equal(required.session, required);
    for (const name of ['sessions', 'sessionOf', 'fromExpressSessionStore', 'csrfProtection', 'csrfTokenOf', 'Store', 'MemoryStore']) {
      assert.equal(typeof required[name], 'function', name);
    }
  });

  it('options when unknown or mistyped then OPTIONS_INVALID at construction, naming the option', () => {
    assert.throws(() => session({ secrte: 'x' } as never), { code: 'OPTIONS_INVALID', message: /options\.secrte is not an option/ });
    assert.throws(() => session({ unset: 'drop' as never }), { code: 'OPTIONS_INVALID', message: /options\.unset must be one of/ });
    assert.throws(() => session({ cookie: { secure: 'yes' as never } }), { code: 'OPTIONS_INVALID', message: /options\.cookie\.secure/ });
    assert.throws(() => session({ tether: { secrets: ['x'] } as never }), { code: 'OPTIONS_INVALID', message: /options\.tether\.secrets is not an option/ });
    assert.throws(() => session({ secret: '' }), { code: 'OPTIONS_INVALID', message: /secret must not be empty/ });
  });
});
