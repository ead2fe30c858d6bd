/**
 * Passport 0.7 + passport-local on the express-session drop-in, written exactly as Passport documents
 * it (passportjs.org "Username & Password" tutorial: `passport.authenticate('session')`,
 * `failureMessage: true`, `req.logout(cb)`), with the session import switched to tether/express.
 * Real login, protected route, logout and session fixation, over HTTP.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import type { Request, Response, NextFunction } from 'express';
import expressSession from 'express-session';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import session, { fromExpressSessionStore } from 'tether/express';
import type { CompatSessionOptions } from 'tether/express';
import { MemoryStore } from 'tether';
import type { SessionStore, Tether } from 'tether';
import { listen, CookieClient } from '../helpers/cookie-client.js';
import type { Listening } from '../helpers/cookie-client.js';

declare module 'express-session' {
  interface SessionData {
    messages?: string[];
    cart?: string[];
  }
}

interface AppUser {
  id: string;
  username: string;
}

const USERS: Record<string, { id: string; password: string }> = { alice: { id: '1', password: 'wonderland' } };

passport.use(new LocalStrategy(function verify(username, password, cb) {
  const row = USERS[username];
  if (!row || row.password !== password) return cb(null, false, { message: 'Incorrect username or password.' });
  return cb(null, { id: row.id, username });
}));
passport.serializeUser(function (user, cb) {
  process.nextTick(function () {
    const u = user as AppUser;
    cb(null, { id: u.id, username: u.username });
  });
});
passport.deserializeUser(function (user: AppUser, cb) {
  process.nextTick(function () {
    return cb(null, user);
  });
});

function ensureLoggedIn(req: Request, res: Response, next: NextFunction): void {
  if (!req.isAuthenticated()) {
    res.status(401).send('login required');
    return;
  }
  next();
}

/** The app of Passport's tutorial; only the session import differs from an express-session app. */
function buildApp(options: CompatSessionOptions, holdCart?: () => Promise<void>): express.Express {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  const middleware = session({ secret: 'keyboard cat', resave: false, saveUninitialized: false, ...options });
  app.locals.tether = middleware.tether;
  app.use(middleware);
  app.use(passport.authenticate('session'));

  app.get('/login', (req, res) => {
    res.json({ messages: req.session.messages ?? [] });
  });
  app.post('/login/password', passport.authenticate('local', { successRedirect: '/', failureRedirect: '/login', failureMessage: true }));
  app.post('/login/keep', passport.authenticate('local', { successRedirect: '/', failureRedirect: '/login', keepSessionInfo: true }));
  app.post('/logout', function (req, res, next) {
    req.logout(function (err) {
      if (err) return next(err);
      res.redirect('/');
    });
  });
  app.get('/me', ensureLoggedIn, (req, res) => {
    res.json({ username: (req.user as AppUser).username, cart: req.session.cart ?? [] });
  });
  app.post('/cart', async (req, res) => {
    req.session.cart = [...(req.session.cart ?? []), String(req.body.item)];
    if (holdCart) await holdCart();
    res.json({ cart: req.session.cart });
  });
  return app;
}

const stores: Array<[string, () => SessionStore]> = [
  ['a Tether MemoryStore', () => new MemoryStore()],
  ['an express-session MemoryStore (wrapped)', () => fromExpressSessionStore(new expressSession.MemoryStore())],
];

for (const [label, makeStore] of stores) {
  describe(`passport-local on tether/express with ${label}`, () => {
    let server: Listening;
    before(async () => {
      process.on('warning', ignoreCompatWarnings);
      server = await listen(buildApp({ store: makeStore() }));
    });
    after(async () => {
      await server.close();
      process.off('warning', ignoreCompatWarnings);
    });

    it('login when the password is wrong then it redirects to /login and shows Passport’s failure message', async () => {
      const browser = new CookieClient(server.url);
      const r = await browser.request('/login/password', { form: { username: 'alice', password: 'nope' } });
      assert.equal(r.status, 302);
      assert.equal(r.location, '/login');
      assert.ok(browser.get('sid'), 'failureMessage stored a message, so the session exists');
      assert.deepEqual((await browser.request('/login')).json(), { messages: ['Incorrect username or password.'] });
      assert.equal((await browser.request('/me')).status, 401);
    });

    it('login when it succeeds then the session ID changes (no fixation), the protected route opens and the pre-login data is gone', async () => {
      const browser = new CookieClient(server.url);
      await browser.request('/login/password', { form: { username: 'alice', password: 'nope' } });
      const before = browser.get('sid');
      assert.ok(before);
      const attacker = browser.clone(); // a planted or stolen pre-login cookie

      const r = await browser.request('/login/password', { form: { username: 'alice', password: 'wonderland' } });
      assert.equal(r.status, 302);
      assert.equal(r.location, '/');
      const after = browser.get('sid');
      assert.ok(after && after !== before, 'login issued a new session ID');
      assert.deepEqual((await browser.request('/me')).json(), { username: 'alice', cart: [] });
      assert.deepEqual((await browser.request('/login')).json(), { messages: [] }, 'regenerate() started an empty session');

      assert.equal((await attacker.request('/me')).status, 401, 'the pre-login ID does not log anyone in');
      assert.deepEqual((await attacker.request('/login')).json(), { messages: [] }, 'the pre-login session was removed');
    });

    it('logout when the user logs out then the cookie no longer opens the protected route, not even a copy of it', async () => {
      const browser = new CookieClient(server.url);
      await browser.request('/login/password', { form: { username: 'alice', password: 'wonderland' } });
      await browser.request('/cart', { form: { item: 'apple' } });
      assert.deepEqual((await browser.request('/me')).json(), { username: 'alice', cart: ['apple'] });
      const copy = browser.clone();
      const loggedIn = browser.get('sid');

      const r = await browser.request('/logout', { method: 'POST' });
      assert.equal(r.status, 302);
      assert.equal(r.location, '/');
      assert.notEqual(browser.get('sid'), loggedIn);
      assert.equal((await browser.request('/me')).status, 401);
      assert.equal((await copy.request('/me')).status, 401, 'the logged-in session ended server-side');
    });

    it('login with keepSessionInfo when it succeeds then the ID changes and the pre-login data is carried over', async () => {
      const browser = new CookieClient(server.url);
      await browser.request('/cart', { form: { item: 'pear' } });
      const before = browser.get('sid');
      const r = await browser.request('/login/keep', { form: { username: 'alice', password: 'wonderland' } });
      assert.equal(r.status, 302);
      assert.notEqual(browser.get('sid'), before);
      assert.deepEqual((await browser.request('/me')).json(), { username: 'alice', cart: ['pear'] });
    });
  });
}

describe('passport-local on tether/express across two nodes sharing a store', () => {
  let nodeA: Listening;
  let nodeB: Listening;
  // Node A's /cart handler signals that it has loaded the session, then waits for the test's go.
  let entered: () => void = () => {};
  let go: Promise<void> = Promise.resolve();
  before(async () => {
    process.on('warning', ignoreCompatWarnings);
    const store = new MemoryStore();
    nodeA = await listen(buildApp({ store }, async () => {
      entered();
      await go;
    }));
    nodeB = await listen(buildApp({ store }));
  });
  after(async () => {
    await nodeA.close();
    await nodeB.close();
    process.off('warning', ignoreCompatWarnings);
  });

  it('logout when a slow write on another node finishes after it then that write is refused and the session stays ended', async () => {
    const onA = new CookieClient(nodeA.url);
    await onA.request('/login/password', { form: { username: 'alice', password: 'wonderland' } });
    const onB = onA.clone(nodeB.url);
    const inHandler = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    go = new Promise<void>((r) => (release = r));
    const slow = onA.request('/cart', { form: { item: 'late' } });
    await inHandler;
    const out = await onB.request('/logout', { method: 'POST' });
    assert.equal(out.status, 302);
    release();
    const late = await slow;
    assert.equal(late.status, 409, 'the write that loaded the session before logout is refused');
    assert.equal(late.json<{ error: { code: string } }>().error.code, 'SESSION_CONFLICT');
    assert.equal((await onA.request('/me')).status, 401, 'logout is final: nothing brought the session back');
  });
});

describe('passport-local on tether/express with userIdFrom', () => {
  it('log out everywhere when the user is logged in on two browsers then destroyUserSessions ends both', async () => {
    const app = buildApp({
      store: new MemoryStore(),
      tether: { userIdFrom: (data) => (data.passport as { user?: AppUser } | undefined)?.user?.id },
    });
    const server = await listen(app);
    const tether = app.locals.tether as Tether<Record<string, unknown>>;
    const laptop = new CookieClient(server.url);
    const phone = new CookieClient(server.url);
    for (const b of [laptop, phone]) await b.request('/login/password', { form: { username: 'alice', password: 'wonderland' } });
    assert.equal((await tether.listUserSessions('1')).length, 2);
    assert.equal(await tether.destroyUserSessions('1'), 2);
    assert.equal((await laptop.request('/me')).status, 401);
    assert.equal((await phone.request('/me')).status, 401);
    await server.close();
  });
});

function ignoreCompatWarnings(): void {
  // The short 'keyboard cat' secret and the wrapped express-session store are warned about on purpose.
}
