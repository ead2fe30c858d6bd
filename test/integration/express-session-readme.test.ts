/**
 * express-session's own README examples ("View counter" and "User login"), read from the installed
 * package's README.md and run with exactly one change: `require('express-session')` becomes
 * `require('tether/express')`. The harness only decides where `app.listen(3000)` really listens
 * (a free loopback port), so the example text itself is untouched.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { CookieClient } from '../helpers/cookie-client.js';

const require = createRequire(import.meta.url);
const README = readFileSync(require.resolve('express-session/README.md'), 'utf8');

/** The first ```js block after `heading` in express-session's README. */
function example(heading: string): string {
  const at = README.indexOf(heading);
  assert.ok(at >= 0, `express-session README has no "${heading}"`);
  const m = /```js\n([\s\S]*?)```/.exec(README.slice(at));
  assert.ok(m, `no code block under "${heading}"`);
  return m[1]!;
}

const IMPORT = "require('express-session')";

/**
 * Runs CommonJS example code with the one-line change. `require('express')` gets express with its
 * app's `listen` pointed at 127.0.0.1:0; every other module is the real one.
 */
async function run(code: string): Promise<{ url: string; server: Server; warnings: string[] }> {
  assert.equal(code.split(IMPORT).length, 2, 'the example imports express-session exactly once');
  const changed = code.replace(IMPORT, "require('tether/express')");
  const express = require('express') as (...a: unknown[]) => { listen: (...a: unknown[]) => Server };
  let server: Server | undefined;
  const harnessExpress = Object.assign((...args: unknown[]) => {
    const app = express(...args);
    const listen = app.listen.bind(app);
    app.listen = () => (server = listen(0, '127.0.0.1'));
    return app;
  }, express);
  const shimRequire = (id: string): unknown => (id === 'express' ? harnessExpress : require(id));
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.code) warnings.push(w.code);
  };
  process.on('warning', onWarning);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- runs the README's CommonJS example text as written, with a shimmed require
  new Function('require', changed)(shimRequire);
  assert.ok(server, 'the example called app.listen');
  if (!server.listening) await new Promise((r) => server!.once('listening', r));
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, warnings };
}

describe('express-session README examples on tether/express', () => {
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('view counter when a browser visits /foo, /foo, /bar, /foo then each page counts its own views', async () => {
    const { url, server, warnings } = await run(example('### View counter'));
    servers.push(server);
    // What the example's options earn: 'keyboard cat' is stretched into a key, saveUninitialized: true is honoured.
    assert.deepEqual(warnings.sort(), ['TETHER_COMPAT_SAVE_UNINITIALIZED', 'TETHER_COMPAT_SHORT_SECRET']);
    const browser = new CookieClient(url);
    const seen: string[] = [];
    for (const path of ['/foo', '/foo', '/bar', '/foo']) {
      const r = await browser.request(path);
      assert.equal(r.status, 200);
      seen.push(r.body);
    }
    assert.deepEqual(seen, [
      'you viewed this page 1 times',
      'you viewed this page 2 times',
      'you viewed this page 1 times',
      'you viewed this page 3 times',
    ]);
    assert.ok(browser.get('sid'), 'the session cookie is Tether\'s "sid"');
    assert.equal(browser.get('connect.sid'), undefined);
    const stranger = new CookieClient(url);
    assert.equal((await stranger.request('/foo')).body, 'you viewed this page 1 times', 'another browser has its own session');
  });

  it('view counter when ten requests of one browser run in parallel then none of the views is lost', async () => {
    const { url, server } = await run(example('### View counter'));
    servers.push(server);
    const browser = new CookieClient(url);
    await browser.request('/foo');
    await Promise.all(Array.from({ length: 10 }, () => browser.request('/bar')));
    assert.equal((await browser.request('/foo')).body, 'you viewed this page 2 times');
    assert.equal((await browser.request('/bar')).body, 'you viewed this page 11 times');
  });

  it('user login when a user logs in and out then the ID changes at login and the old cookies are dead', async () => {
    const { url, server } = await run(example('### User login'));
    servers.push(server);
    const browser = new CookieClient(url);
    const form = await browser.request('/');
    assert.match(form.body, /<form action="\/login"/);
    const anonymous = browser.get('sid');
    assert.ok(anonymous, 'saveUninitialized: true gives every visitor a session');

    const login = await browser.request('/login', { form: { user: 'alice', pass: 'x' } });
    assert.equal(login.status, 302);
    assert.equal(login.location, '/');
    const loggedIn = browser.get('sid');
    assert.ok(loggedIn && loggedIn !== anonymous, 'regenerate() gave a new session ID');
    assert.equal((await browser.request('/')).body, 'hello, alice! <a href="/logout">Logout</a>');

    const fixation = new CookieClient(url);
    fixation.set('sid', anonymous);
    assert.match((await fixation.request('/')).body, /<form/, 'the pre-login ID is not logged in');

    const stolen = browser.clone();
    const logout = await browser.request('/logout');
    assert.equal(logout.status, 302);
    assert.notEqual(browser.get('sid'), loggedIn);
    assert.match((await browser.request('/')).body, /<form/);
    assert.match((await stolen.request('/')).body, /<form/, 'the logged-in cookie no longer logs anyone in');
  });
});
