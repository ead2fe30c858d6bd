/**
 * connect-flash on the express-session drop-in, as its README sets it up (`app.use(flash())` after the
 * session middleware, `req.flash(type, msg)` before a redirect, `req.flash(type)` on the next page),
 * and Passport's `failureFlash: true`: messages outlive the redirect, are shown once, and are kept in
 * the store, not in the process (a second node reads them).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import flash from 'connect-flash';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import session from 'tether/express';
import { MemoryStore } from 'tether';
import type { SessionStore } from 'tether';
import { listen, CookieClient } from '../helpers/cookie-client.js';
import type { Listening } from '../helpers/cookie-client.js';

const SECRET = 'a-long-secret-for-the-connect-flash-test-0123456789';

const flashPassport = new passport.Passport();
flashPassport.use(new LocalStrategy((username, password, cb) => {
  if (username === 'alice' && password === 'wonderland') return cb(null, { id: '1' });
  return cb(null, false, { message: 'Incorrect username or password.' });
}));
flashPassport.serializeUser((user, cb) => cb(null, user));
flashPassport.deserializeUser((user: { id: string }, cb) => cb(null, user));

function buildApp(store: SessionStore): express.Express {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store }));
  app.use(flash());
  app.use(flashPassport.authenticate('session'));
  app.post('/cart', (req, res) => {
    req.flash('info', `Added ${String(req.body.item)} to your cart.`);
    res.redirect('/');
  });
  app.get('/', (req, res) => {
    res.json({ info: req.flash('info') });
  });
  app.post('/login', flashPassport.authenticate('local', { successRedirect: '/', failureRedirect: '/login', failureFlash: true }));
  app.get('/login', (req, res) => {
    res.json({ error: req.flash('error') });
  });
  return app;
}

describe('connect-flash on tether/express', () => {
  let store: SessionStore;
  let nodeA: Listening;
  let nodeB: Listening;
  before(async () => {
    store = new MemoryStore();
    nodeA = await listen(buildApp(store));
    nodeB = await listen(buildApp(store));
  });
  after(async () => {
    await nodeA.close();
    await nodeB.close();
  });

  it('flash when set before a redirect then the next page shows it once, and the one after shows none', async () => {
    const browser = new CookieClient(nodeA.url);
    const r = await browser.request('/cart', { form: { item: 'apples' } });
    assert.equal(r.status, 302);
    assert.ok(browser.get('sid'), 'the message stored a session');
    assert.deepEqual((await browser.request('/')).json(), { info: ['Added apples to your cart.'] });
    assert.deepEqual((await browser.request('/')).json(), { info: [] }, 'shown once: reading it removed it from the stored session');
  });

  it('flash when several are set then they are shown together, in order, and another node of the same store shows them', async () => {
    const browser = new CookieClient(nodeA.url);
    await browser.request('/cart', { form: { item: 'apples' } });
    await browser.request('/cart', { form: { item: 'pears' } });
    const onB = browser.clone(nodeB.url);
    assert.deepEqual((await onB.request('/')).json(), { info: ['Added apples to your cart.', 'Added pears to your cart.'] });
    assert.deepEqual((await browser.request('/')).json(), { info: [] }, 'consumed on node B, gone on node A');
  });

  it('passport failureFlash when the password is wrong then /login shows Passport\'s message once; a right one signs in with nothing left to show', async () => {
    const browser = new CookieClient(nodeA.url);
    const wrong = await browser.request('/login', { form: { username: 'alice', password: 'nope' } });
    assert.equal(wrong.status, 302);
    assert.equal(wrong.location, '/login');
    assert.deepEqual((await browser.request('/login')).json(), { error: ['Incorrect username or password.'] });
    assert.deepEqual((await browser.request('/login')).json(), { error: [] });
    const right = await browser.request('/login', { form: { username: 'alice', password: 'wonderland' } });
    assert.equal(right.location, '/');
    assert.deepEqual((await browser.request('/login')).json(), { error: [] });
  });
});
