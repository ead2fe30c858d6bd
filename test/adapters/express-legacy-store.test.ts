/**
 * fromExpressSessionStore(): Tether on express-session stores (express-session's MemoryStore, and
 * connect-redis against a real redis-server), and sessions express-session stored migrating to Tether
 * on the user's next visit.
 */
import { describe, it, before, after } from 'node:test';
import type { TestContext } from 'node:test';
import { createHmac } from 'node:crypto';
import { inherits } from 'node:util';
import assert from 'node:assert/strict';
import express from 'express';
import expressSession from 'express-session';
import { RedisStore as ConnectRedisStore } from 'connect-redis';
import createMemoryStore from 'memorystore';
import type connectSqlite3 from 'connect-sqlite3';
import { EventEmitter } from 'node:events';
import { createClient } from 'redis';
import { Registry } from 'prom-client';
import session, { fromExpressSessionStore, ExpressSessionStoreAdapter } from 'tether/express';
import type { CompatTetherOptions, ExpressSessionStoreLike } from 'tether/express';
import { MemoryStore } from 'tether';
import type { SessionStore } from 'tether';
import { instrumentStore, registerTetherMetrics } from 'tether/observability';
import { runStoreSuite, ManualClock, makeRecord } from '../../src/testing/store-suite.js';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { listen, CookieClient, cookieAttributes } from '../helpers/cookie-client.js';
import type { Listening } from '../helpers/cookie-client.js';
import { FaultyStore, arrivals, latch, leavingRequest, storedData } from './express-compat.kit.js';

declare module 'express-session' {
  interface SessionData {
    legacyViews?: number;
    legacyUser?: string;
  }
}

// ---- express-session's MemoryStore ----

runStoreSuite({
  name: 'express-session MemoryStore via fromExpressSessionStore',
  lacks: { changeFeed: true },
  destroysAll: true,
  open: async (clock) => fromExpressSessionStore(new expressSession.MemoryStore(), { clock }),
});

describe('fromExpressSessionStore contract edges', () => {
  const clock = new ManualClock();

  it('adapter when the wrapped store has no all() then per-user listing rejects STORE_UNAVAILABLE saying why', async () => {
    const inner = new expressSession.MemoryStore();
    const bare: ExpressSessionStoreLike = { get: inner.get.bind(inner), set: inner.set.bind(inner), destroy: inner.destroy.bind(inner) };
    const store = fromExpressSessionStore(bare, { clock });
    assert.equal(store.count, undefined);
    assert.equal(store.destroyAll, undefined);
    await assert.rejects(store.listByUser('u'), { code: 'STORE_UNAVAILABLE', message: /has no all\(\)/ });
    assert.throws(() => session({ store: bare, tether: { maxSessionsPerUser: 2 } }), { code: 'OPTIONS_INVALID' });
  });

  it('adapter when the wrapped store never calls back or fails then calls reject STORE_UNAVAILABLE with the cause, within timeoutMs', async () => {
    const hung: ExpressSessionStoreLike = { get: () => {}, set: () => {}, destroy: (_sid, cb) => cb?.(new Error('ECONNRESET')) };
    const store = fromExpressSessionStore(hung, { clock, timeoutMs: 50 });
    const started = Date.now();
    await assert.rejects(store.get('k'), { code: 'STORE_UNAVAILABLE', message: /did not answer get within 50 ms/ });
    assert.ok(Date.now() - started < 2_000);
    await assert.rejects(store.destroy('k'), (err: Error & { code?: string }) => err.code === 'STORE_UNAVAILABLE' && (err.cause as Error).message === 'ECONNRESET');
    // A hung call under the in-process lock does not keep the key locked after it timed out.
    await assert.rejects(store.set(makeRecord(clock, { key: 'k' }), 0), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(store.set(makeRecord(clock, { key: 'k' }), 0), { code: 'STORE_UNAVAILABLE' });
    // Past what a Node.js timer can wait, the deadline would fire after 1 ms: refused at construction.
    assert.throws(() => fromExpressSessionStore(hung, { timeoutMs: 2 ** 31 }), { code: 'OPTIONS_INVALID', message: /timeoutMs.*2147483647/ });
    fromExpressSessionStore(hung, { timeoutMs: 2 ** 31 - 1 });
  });

  it('adapter when records and express-session’s own sessions share the store then neither reads the other', async () => {
    const inner = new expressSession.MemoryStore();
    const store = fromExpressSessionStore(inner, { clock });
    const rec = makeRecord(clock);
    await store.set(rec, 0);
    inner.set('legacy-sid', { cookie: { originalMaxAge: null }, legacyViews: 3 });
    assert.deepEqual(await store.readLegacy('legacy-sid'), { cookie: { originalMaxAge: null }, legacyViews: 3 });
    assert.equal(await store.readLegacy(`tether:${rec.key}`), null);
    assert.equal(await store.get('legacy-sid'), null);
    assert.equal(await store.count!(), 1, 'count() sees Tether records only');
    const sessions = await new Promise<Record<string, unknown>>((r) => inner.all((_e, s) => r(s as Record<string, unknown>)));
    const ours = sessions[`tether:${rec.key}`] as { cookie: { expires: string; maxAge: number } };
    assert.ok(Date.parse(ours.cookie.expires) > Date.now(), 'cookie.expires gives the store its own TTL');
    // memorystore and others take their TTL from `cookie.maxAge` (the time left, as express-session's Cookie gives it).
    const left = rec.expiresAt - clock.now();
    assert.ok(ours.cookie.maxAge >= left && ours.cookie.maxAge <= left + 120_000, `cookie.maxAge ${ours.cookie.maxAge} against ${left} ms left`);
  });

  it('adapter destroyAll when express-session’s own sessions share the store then they end too, which a migration would otherwise adopt; user contexts stay', async () => {
    const inner = new expressSession.MemoryStore();
    const store = fromExpressSessionStore(inner, { clock });
    const rec = makeRecord(clock, { userId: 'ada' });
    const context = makeRecord(clock, { key: 'user:' + rec.key });
    await store.set(rec, 0);
    await store.set(context, 0);
    inner.set('legacy-sid', { cookie: { originalMaxAge: null }, legacyUser: 'ada' });
    assert.equal(await store.destroyAll!(), 2);
    assert.equal(await store.readLegacy('legacy-sid'), null);
    assert.equal(await store.get(rec.key), null);
    assert.equal((await store.get(context.key))?.data, context.data);
    assert.equal(await store.count!(), 0, 'no session left; the user context is not one');
  });
});

// ---- stores built on the middleware: require('connect-pg-simple')(session) and the like ----

/**
 * Type checks (`npm test` runs tsc over the tests): connect-sqlite3's typings (@types/connect-sqlite3) take
 * the drop-in's module as they take express-session's, its Store with express-session's methods. Only the
 * typings are installed: the package itself runs on sqlite3, a native module built at install time; the
 * Store methods it relies on run over HTTP with memorystore below.
 */
function connectSqlite3Typing(factory: typeof connectSqlite3): void {
  const SQLiteStore = factory(session);
  void new SQLiteStore({ db: ':memory:' });
  // @ts-expect-error a bare EventEmitter is not a session Store: the typings check what they are given
  factory({ Store: EventEmitter });
}
void connectSqlite3Typing;

describe('stores made from the session module (session.Store)', () => {
  before(() => process.on('warning', quiet));
  after(() => process.off('warning', quiet));

  type Callback = (err: unknown, value?: unknown) => void;
  /** connect-pg-simple's shape: `class extends session.Store`, `super(options)`. */
  function classStyle(mod: Record<string, unknown>): new () => ExpressSessionStoreLike {
    const Store = mod.Store as new (options?: unknown) => object;
    return class PGStore extends Store {
      readonly rows = new Map<string, string>();
      constructor() {
        super({});
      }
      get(sid: string, cb: Callback): void {
        const row = this.rows.get(sid);
        cb(null, row === undefined ? null : JSON.parse(row));
      }
      set(sid: string, value: unknown, cb?: Callback): void {
        this.rows.set(sid, JSON.stringify(value));
        cb?.(null);
      }
      destroy(sid: string, cb?: Callback): void {
        this.rows.delete(sid);
        cb?.(null);
      }
    };
  }
  /** memorystore's and session-file-store's shape: `Store.call(this, options)` and util.inherits. */
  function functionStyle(mod: Record<string, unknown>): new () => ExpressSessionStoreLike {
    const Store = mod.Store as (this: object, options?: unknown) => void;
    function FileStore(this: { entries: Map<string, unknown> }): void {
      Store.call(this, {});
      this.entries = new Map();
    }
    inherits(FileStore, Store);
    Object.assign(FileStore.prototype, {
      get(this: { entries: Map<string, unknown> }, sid: string, cb: Callback) {
        cb(null, this.entries.get(sid) ?? null);
      },
      set(this: { entries: Map<string, unknown> }, sid: string, value: unknown, cb?: Callback) {
        this.entries.set(sid, jsonCopy(value));
        cb?.(null);
      },
      destroy(this: { entries: Map<string, unknown> }, sid: string, cb?: Callback) {
        this.entries.delete(sid);
        cb?.(null);
      },
    });
    return FileStore as unknown as new () => ExpressSessionStoreLike;
  }

  it('store factory when it extends session.Store (connect-pg-simple, memorystore style) then it is made from tether/express as from express-session and keeps sessions', async () => {
    const mod = session as unknown as Record<string, unknown>;
    for (const factory of [classStyle, functionStyle]) {
      assert.ok(new (factory(expressSession as unknown as Record<string, unknown>))(), 'the same factory on express-session');
      const store = new (factory(mod))();
      assert.equal(typeof (store as unknown as { on: unknown }).on, 'function', 'an EventEmitter, as express-session\'s Store');
      const server = await listen(appOn(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false, store })));
      const c = new CookieClient(server.url);
      await c.request('/visit');
      assert.deepEqual((await c.request('/visit')).json(), { user: null, views: 2 }, factory.name);
      await server.close();
    }
  });

  it('memorystore when made from tether/express as require(\'memorystore\')(session) then it keeps sessions over HTTP, and its Store methods load, createSession and regenerate work as express-session\'s', async () => {
    // memorystore's typings take the whole express-session module (`typeof session`), whose MemoryStore,
    // Session and Cookie are not the drop-in's (docs/migrating-from-express-session.md, TypeScript); at run
    // time it reads session.Store only.
    // @ts-expect-error tether/express is not typeof import('express-session')
    const MemoryStoreOn = createMemoryStore(session);
    const store = new MemoryStoreOn({ checkPeriod: 60_000 });
    try {
      assert.ok(store instanceof (session as unknown as { Store: new () => object }).Store, 'it extends the drop-in\'s session.Store');
      const app = appOn(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false, store }));
      app.post('/regenerate', (req, res, next) => {
        const before = req.sessionID;
        // express-session's Store#regenerate(req, cb): the request's session under a new ID, the old one ended.
        req.sessionStore.regenerate(req, (err?: unknown) => {
          if (err) return next(err);
          res.json({ changed: req.sessionID !== before, user: req.session.legacyUser ?? null });
        });
      });
      const server = await listen(app);
      try {
        const c = new CookieClient(server.url);
        await c.request('/login', { method: 'POST' });
        assert.deepEqual((await c.request('/visit')).json(), { user: 'alice', views: 1 });
        assert.deepEqual((await c.request('/visit')).json(), { user: 'alice', views: 2 }, 'kept in memorystore');
        const held = await new Promise<Record<string, unknown>>((r, j) => store.all((e: Error | null, all) => (e ? j(e) : r(all as Record<string, unknown>))));
        assert.equal(Object.keys(held).length, 1);
        assert.ok(Object.keys(held)[0]!.startsWith('tether:'), 'a Tether record, under its prefix');
        const old = c.get('sid');
        assert.deepEqual((await c.request('/regenerate', { method: 'POST' })).json(), { changed: true, user: null });
        assert.notEqual(c.get('sid'), old, 'the new ID\'s cookie');
        assert.deepEqual((await c.request('/visit')).json(), { user: null, views: 1 }, 'a new, empty session');
        const stale = new CookieClient(server.url);
        stale.set('sid', old!);
        assert.deepEqual((await stale.request('/visit')).json(), { user: null, views: 1 }, 'the old ID ended');
      } finally {
        await server.close();
      }
      // load(): the session object stored under an ID, its cookie's expires a Date again (createSession).
      const expires = new Date(Date.now() + 60_000);
      await new Promise<void>((r, j) => store.set('legacy-sid', { cookie: { originalMaxAge: 60_000, expires, path: '/' }, legacyUser: 'alice' }, (e?: Error) => (e ? j(e) : r())));
      const loaded = await new Promise<unknown>((r, j) => store.load('legacy-sid', (e, s) => (e ? j(e as Error) : r(s))));
      assert.deepEqual(loaded, { cookie: { originalMaxAge: 60_000, expires, path: '/' }, legacyUser: 'alice' });
      assert.ok((loaded as { cookie: { expires: unknown } }).cookie.expires instanceof Date);
      assert.equal(await new Promise<unknown>((r, j) => store.load('no-such-sid', (e, s) => (e ? j(e as Error) : r(s)))), undefined);
    } finally {
      store.stopInterval();
    }
  });

  it('session.MemoryStore when constructed as with express-session then it is Tether\'s bounded MemoryStore, not wrapped', () => {
    const Ctor = (session as unknown as { MemoryStore: new () => unknown }).MemoryStore;
    assert.ok(new Ctor() instanceof MemoryStore);
  });
});

// ---- connect-redis on a real redis-server ----

describe('fromExpressSessionStore over connect-redis', () => {
  let server: RedisServer;
  const clients: Array<{ close(): Promise<unknown> }> = [];
  let prefixes = 0;

  const connectRedis = async (prefix = `es${process.pid}-${++prefixes}:`) => {
    const client = createClient({ url: server.url, socket: { reconnectStrategy: () => 50 } });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return { client, store: new ConnectRedisStore({ client, prefix }), prefix };
  };

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await server?.dispose();
  });

  runStoreSuite({
    name: 'connect-redis via fromExpressSessionStore',
    lacks: { changeFeed: true },
    destroysAll: true,
    open: async (clock) => fromExpressSessionStore((await connectRedis()).store, { clock }),
  });

  it('connect-redis when Tether writes a record then Redis expires it by its own TTL as well', async () => {
    const { client, store, prefix } = await connectRedis();
    const adapter = fromExpressSessionStore(store);
    const rec = makeRecord(new ManualClock(), { expiresAt: Date.now() + 30_000 });
    await adapter.set(rec, 0);
    const ttl = await client.ttl(`${prefix}tether:${rec.key}`);
    assert.ok(ttl > 0 && ttl <= 35, `TTL ${ttl} (30 s + a 5 s margin)`);
  });

  it('connect-redis when a logout and a renewal compare-and-set one record at once then one adapter lets one through, while two processes\' adapters may both be acknowledged', async () => {
    const { store } = await connectRedis();
    const clock = new ManualClock();
    // The writes a logout (the record ended) and a renewal (the record made a pointer) make of version 1.
    const race = async (ending: ExpressSessionStoreAdapter, renewing: ExpressSessionStoreAdapter): Promise<number> => {
      const rec = makeRecord(clock, { userId: 'ada' });
      await ending.set(rec, 0);
      const results = await Promise.all([
        ending.set({ ...rec, version: 2, data: '{"ended":1}', expiresAt: clock.now() - 1 }, 1),
        renewing.set({ ...rec, version: 2, data: '{"moved":1}', userId: null }, 1),
      ]);
      return results.filter((r) => r.ok).length;
    };
    const one = fromExpressSessionStore(store);
    for (let i = 0; i < 10; i++) assert.equal(await race(one, one), 1, 'one process: the lock lets one write through');
    let both = 0;
    for (let i = 0; i < 10; i++) if (await race(fromExpressSessionStore(store), fromExpressSessionStore(store)) === 2) both++;
    assert.ok(both > 0, 'two processes: nothing in the store compares the version with the write (docs/migrating-from-express-session.md)');
  });

  it('connect-redis when redis-server is down then calls fail closed with STORE_UNAVAILABLE and recover after a restart', async () => {
    const { store } = await connectRedis();
    const adapter = fromExpressSessionStore(store, { timeoutMs: 300 });
    const rec = makeRecord(new ManualClock());
    await adapter.set(rec, 0);
    await server.stop();
    await assert.rejects(adapter.get(rec.key), { code: 'STORE_UNAVAILABLE' });
    await server.restart();
    let answered = false;
    for (let i = 0; i < 50 && !answered; i++) {
      answered = await adapter.get(rec.key).then(() => true, () => false);
      if (!answered) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(answered, 'the adapter answers again once Redis is back');
  });

  it('migration when an express-session app on connect-redis switches to Tether then the logged-in user stays logged in', async () => {
    const { store } = await connectRedis();
    await migrationScenario(store, store);
  });
});

// ---- migration of express-session's sessions ----

/** The same app twice: on express-session, then with the import switched (and `options` added). */
function appOn(middleware: express.RequestHandler): express.Express {
  const app = express();
  app.use(middleware);
  app.post('/login', (req, res) => {
    req.session.legacyUser = 'alice';
    res.end();
  });
  app.get('/visit', (req, res) => {
    req.session.legacyViews = (req.session.legacyViews ?? 0) + 1;
    res.json({ user: req.session.legacyUser ?? null, views: req.session.legacyViews });
  });
  return app;
}

/**
 * Logs in on express-session over `oldStore`, then visits the Tether app over `tetherStore` with the same
 * cookies; `renamed` gives the Tether app options of its own (a cookie name, `legacyCookieName`).
 */
async function migrationScenario(
  oldStore: expressSession.Store, tetherStore: SessionStore | expressSession.Store, name?: string, migrateFrom?: CompatTetherOptions['migrateFrom'],
  renamed: { name?: string; legacyCookieName?: string } = {},
): Promise<void> {
  const opts = { secret: 'keyboard cat', resave: false, saveUninitialized: false, ...(name ? { name } : {}) };
  const before: Listening = await listen(appOn(expressSession({ ...opts, store: oldStore })));
  const browser = new CookieClient(before.url);
  await browser.request('/login', { method: 'POST' });
  assert.deepEqual((await browser.request('/visit')).json(), { user: 'alice', views: 1 });
  const legacyName = name ?? 'connect.sid';
  const legacyCookie = browser.get(legacyName)!;
  assert.ok(legacyCookie.startsWith('s%3A'), 'express-session cookie');
  const sid = decodeURIComponent(legacyCookie).slice(2).split('.')[0]!;
  await before.close();

  const tether = { ...(migrateFrom ? { migrateFrom } : {}), ...(renamed.legacyCookieName ? { legacyCookieName: renamed.legacyCookieName } : {}) };
  const after: Listening = await listen(appOn(session({ ...opts, ...(renamed.name ? { name: renamed.name } : {}), store: tetherStore, tether })));
  const moved = new CookieClient(after.url);
  for (const [k, v] of browser.jar) moved.set(k, v);
  const stale = moved.clone();
  const first = await moved.request('/visit');
  assert.deepEqual(first.json(), { user: 'alice', views: 2 }, 'the session carried over');
  const tetherName = renamed.name ?? name ?? 'sid';
  assert.ok(moved.get(tetherName) && !moved.get(tetherName)!.startsWith('s%3A'), 'a Tether cookie replaced it');
  if (tetherName !== legacyName) assert.equal(moved.get(legacyName), undefined, 'the express-session cookie was cleared');
  assert.equal(await new Promise((r) => oldStore.get(sid, (_e, s) => r(s ?? null))), null, 'the old record is gone');
  assert.deepEqual((await moved.request('/visit')).json(), { user: 'alice', views: 3 });

  assert.deepEqual((await stale.request('/visit')).json(), { user: null, views: 1 }, 'the old cookie cannot log in again');
  await after.close();
}

describe('migration from express-session', () => {
  before(() => process.on('warning', quiet));
  after(() => process.off('warning', quiet));

  it('migration when the express-session store is passed as is then the next visit moves the session to Tether', async () => {
    const old = new expressSession.MemoryStore();
    await migrationScenario(old, old);
  });

  it('migration when the app moves to a Tether store with migrateFrom then the session lands in the new store', async () => {
    const old = new expressSession.MemoryStore();
    const target = new MemoryStore();
    await migrationScenario(old, target, undefined, old);
    assert.equal(await target.count(), 2, 'the migrated session and the stale cookie’s new one live in the Tether store');
  });

  it('migration when both use one cookie name then the express-session value is recognised and replaced', async () => {
    const old = new expressSession.MemoryStore();
    await migrationScenario(old, fromExpressSessionStore(old), 'app.sid');
  });

  it('migration when the app renames its cookie in the switch then the old connect.sid is still migrated and cleared', async () => {
    const old = new expressSession.MemoryStore();
    await migrationScenario(old, old, undefined, undefined, { name: 'app.sid' });
    const target = new MemoryStore();
    await migrationScenario(old, target, undefined, old, { name: '__Host-app' });
  });

  it('migration when tether.legacyCookieName names the cookie express-session had then that one is migrated and cleared', async () => {
    const old = new expressSession.MemoryStore();
    await migrationScenario(old, old, 'shop.sid', undefined, { name: 'sid', legacyCookieName: 'shop.sid' });
    assert.throws(() => session({ secret: 'keyboard cat', store: old, tether: { legacyCookieName: 'bad name;' } }), { code: 'OPTIONS_INVALID', message: /legacyCookieName must be a cookie name or a non-empty array of them/ });
  });

  it('migration when express-session’s cookie had another Domain than Tether’s then the old cookie is expired with its own Domain', async () => {
    for (const [oldDomain, newDomain] of [['shop.example', undefined], [undefined, 'shop.example']] as const) {
      const old = new expressSession.MemoryStore();
      old.set('sid-1', { cookie: { originalMaxAge: null, path: '/', ...(oldDomain ? { domain: oldDomain } : {}) }, legacyUser: 'alice' });
      const server = await listen(appOn(session({ secret: 'keyboard cat', store: old, ...(newDomain ? { cookie: { domain: newDomain } } : {}) })));
      const c = new CookieClient(server.url);
      c.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
      const r = await c.request('/visit');
      assert.deepEqual(r.json(), { user: 'alice', views: 1 });
      const clear = r.setCookies.find((h) => h.startsWith('connect.sid='))!;
      assert.equal(cookieAttributes(clear)['max-age'], '0');
      assert.equal(cookieAttributes(clear).domain, oldDomain, `old ${oldDomain}, new ${newDomain}`);
      await server.close();
    }
  });

  it('migration when the first request reloads the session before storing it then reload() reads the old session again, as express-session’s does', async () => {
    const old = new expressSession.MemoryStore();
    old.set('sid-1', { cookie: { originalMaxAge: null }, legacyUser: 'alice', legacyViews: 4 });
    const app = express();
    app.use(session({ secret: 'keyboard cat', store: old }));
    app.get('/reload', (req, res) => {
      req.session.legacyViews = 99;
      req.session.reload((err) => {
        if (err) return res.status(500).json({ error: String(err) });
        req.session.legacyViews = (req.session.legacyViews ?? 0) + 1;
        res.json({ user: req.session.legacyUser ?? null, views: req.session.legacyViews });
      });
    });
    app.use(appOn((_req, _res, next) => next()));
    const server = await listen(app);
    const c = new CookieClient(server.url);
    c.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
    assert.deepEqual((await c.request('/reload')).json(), { user: 'alice', views: 5 }, 'the change before reload() dropped');
    assert.equal(c.get('connect.sid'), undefined, 'migrated: the old cookie is cleared');
    assert.deepEqual((await c.request('/visit')).json(), { user: 'alice', views: 6 });
    await server.close();
  });

  it('migration when express-session stored a cookie made a browser-session one with expires = false then the migrated session reads false too, with no Max-Age', async () => {
    const old = new expressSession.MemoryStore();
    // What express-session 1.19 stores after `req.session.cookie.expires = false` under a `cookie.maxAge` option.
    old.set('sid-1', { cookie: { originalMaxAge: false, expires: false, httpOnly: true, path: '/' }, legacyUser: 'alice' } as unknown as expressSession.SessionData);
    const app = express();
    app.use(session({ secret: 'keyboard cat', store: old, cookie: { maxAge: 3_600_000 } }));
    app.get('/cookie', (req, res) => {
      req.session.legacyViews = (req.session.legacyViews ?? 0) + 1;
      const { expires, maxAge, originalMaxAge } = req.session.cookie as unknown as Record<string, unknown>;
      res.json({ user: req.session.legacyUser ?? null, expires, maxAge, originalMaxAge });
    });
    const server = await listen(app);
    const c = new CookieClient(server.url);
    c.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
    for (const visit of ['migrating', 'migrated']) {
      const r = await c.request('/cookie');
      assert.deepEqual(r.json(), { user: 'alice', expires: false, maxAge: false, originalMaxAge: false }, visit);
      for (const h of r.setCookies.filter((v) => v.startsWith('sid='))) assert.equal(cookieAttributes(h)['max-age'], undefined, `${visit}: a browser-session cookie`);
    }
    assert.equal(c.get('connect.sid'), undefined, 'migrated: the old cookie is cleared');
    await server.close();
  });

  it('migration when the express-session cookie is forged, signed with another secret or unsigned (no s: prefix) then nothing is adopted', async () => {
    const old = new expressSession.MemoryStore();
    old.set('victim', { cookie: { originalMaxAge: null }, legacyUser: 'alice' });
    const app = await listen(appOn(session({ secret: 'keyboard cat', store: old })));
    for (const value of ['s:victim.forgedsignature', `s:${expressSessionSign('victim', 'another secret')}`, expressSessionSign('victim', 'keyboard cat'), 'victim']) {
      const c = new CookieClient(app.url);
      c.set('connect.sid', encodeURIComponent(value));
      assert.deepEqual((await c.request('/visit')).json(), { user: null, views: 1 }, value);
    }
    assert.ok(await new Promise((r) => old.get('victim', (_e, s) => r(s))), 'the old session is left alone');
    await app.close();
  });

  it('migration when the first request after the switch logs out then the old session is gone for good', async () => {
    const old = new expressSession.MemoryStore();
    old.set('sid-1', { cookie: { originalMaxAge: null }, legacyUser: 'alice' });
    const app = express();
    app.use(session({ secret: 'keyboard cat', store: old }));
    app.post('/logout', (req, res) => req.session.regenerate(() => res.end()));
    app.get('/visit', (req, res) => res.json({ user: req.session.legacyUser ?? null }));
    const server = await listen(app);
    const c = new CookieClient(server.url);
    c.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
    const stale = c.clone();
    assert.equal((await c.request('/logout', { method: 'POST' })).status, 200);
    assert.equal(c.get('connect.sid'), undefined, 'the old cookie is cleared');
    assert.equal(await new Promise((r) => old.get('sid-1', (_e, s) => r(s ?? null))), null);
    assert.deepEqual((await stale.request('/visit')).json(), { user: null });
    await server.close();
  });

  it('migration when migrateFrom is fromExpressSessionStore(old, options), instrumented, then that adapter is the source', async () => {
    const old = new expressSession.MemoryStore();
    const registry = new Registry();
    await migrationScenario(old, new MemoryStore(), undefined, instrumentStore(fromExpressSessionStore(old, { prefix: 'app:' }), registry));
    const text = await registry.metrics();
    // Read at the first visit and for the stale cookie; deleted once.
    assert.match(text, /^tether_store_duration_seconds_count\{op="readLegacy",store="express-session:MemoryStore"\} 2$/m);
    assert.match(text, /^tether_store_duration_seconds_count\{op="destroyLegacy",store="express-session:MemoryStore"\} 1$/m);
  });

  it('migration when migrateFrom is fromExpressSessionStore(old, { timeoutMs }) then that bound applies to the old store', async (t) => {
    const hung: ExpressSessionStoreLike = { get: () => {}, set: () => {}, destroy: () => {} };
    const app = express();
    app.use(session({
      secret: 'keyboard cat', store: new MemoryStore({ sweepIntervalMs: 0 }),
      tether: { storeTimeoutMs: 10_000, migrateFrom: fromExpressSessionStore(hung, { timeoutMs: 50 }) },
    }));
    app.get('/visit', (_req, res) => res.end());
    app.use((err: { status?: number; code?: string; message?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status ?? 500).json({ error: { code: err.code ?? 'ERROR', message: err.message } });
    });
    const server = await listen(app);
    t.after(() => server.close());
    const browser = new CookieClient(server.url);
    browser.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
    const started = Date.now();
    const r = await browser.request('/visit');
    assert.equal(r.status, 503);
    assert.match(r.json<{ error: { message: string } }>().error.message, /did not answer get within 50 ms \(option timeoutMs\)/);
    assert.ok(Date.now() - started < 5_000, 'not storeTimeoutMs');
  });

  it('migrateFrom when not an express-session store or its adapter then OPTIONS_INVALID saying what it takes', () => {
    const expected = /options\.tether\.migrateFrom must be an express-session Store \(get, set, destroy\) or what fromExpressSessionStore\(\) returns/;
    assert.throws(() => session({ secret: 'keyboard cat', tether: { migrateFrom: new MemoryStore() as never } }), { code: 'OPTIONS_INVALID', message: expected });
    assert.throws(() => session({ secret: 'keyboard cat', tether: { migrateFrom: { get: () => {} } as never } }), { code: 'OPTIONS_INVALID', message: expected });
  });

  it('adapter when passed explicitly then it is the Tether store and migration still works', async () => {
    const old = new expressSession.MemoryStore();
    const adapter = fromExpressSessionStore(old);
    assert.ok(adapter instanceof ExpressSessionStoreAdapter);
    await migrationScenario(old, adapter);
    assert.equal(await adapter.count!(), 2, 'the migrated session and the stale cookie’s new one, as Tether records');
  });
});

describe('migration when requests with the same express-session cookie overlap', () => {
  before(() => process.on('warning', quiet));
  after(() => process.off('warning', quiet));

  /**
   * Tether over `target`, migrating from `old` (holding `sid-1`, Alice's). The first request to reach a
   * handler waits there until `held.release()`; `arrival()` resolves when the next request reaches the app.
   */
  async function overlapping(t: TestContext, old: expressSession.MemoryStore, target: SessionStore, tether: CompatTetherOptions = {}) {
    old.set('sid-1', { cookie: { originalMaxAge: null }, legacyUser: 'alice', legacyViews: 1 });
    const held = latch();
    let first = true;
    const arrivals: Array<() => void> = [];
    const app = express();
    app.use((_req, _res, next) => {
      arrivals.shift()?.();
      next();
    });
    app.use(session({ secret: 'keyboard cat', store: target, tether: { migrateFrom: old, ...tether } }));
    const hold = async (): Promise<void> => {
      if (!first) return;
      first = false;
      held.enter();
      await held.wait;
    };
    app.post('/add', async (req, res) => {
      await hold();
      const cart = (req.session as { cart?: string[] }).cart ?? [];
      const { item } = req.query;
      (req.session as { cart?: string[] }).cart = [...cart, typeof item === 'string' ? item : ''];
      res.json({ user: req.session.legacyUser ?? null });
    });
    app.post('/logout', async (req, res) => {
      await hold();
      req.session.regenerate(() => res.end());
    });
    app.use((err: { status?: number; code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status ?? 500).json({ error: { code: err.code ?? 'ERROR' } });
    });
    const server = await listen(app);
    t.after(() => {
      held.release();
      return server.close();
    });
    const browser = new CookieClient(server.url);
    browser.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
    /** Resolves once the next request has reached the app and gone as far as it can without I/O. */
    const arrival = async (): Promise<void> => {
      await new Promise<void>((r) => arrivals.push(r));
      await new Promise((r) => setImmediate(r));
    };
    /**
     * Two first requests with the old cookie, from two copies of the browser: `firstPath` is held in its
     * handler until `secondPath` has arrived, then both are answered.
     */
    const together = async (firstPath: string, secondPath: string) => {
      const a = browser.clone();
      const b = browser.clone();
      const first = a.request(firstPath, { method: 'POST' });
      await held.entered;
      const arrived = arrival();
      const second = b.request(secondPath, { method: 'POST' });
      await arrived;
      held.release();
      const [ra, rb] = await Promise.all([first, second]);
      return { a, b, ra, rb };
    };
    return { held, browser, arrival, together };
  }

  const oldRecord = (old: expressSession.MemoryStore) => new Promise((r) => old.get('sid-1', (_e, s) => r(s ?? null)));

  it('migration when two first requests carry the same old cookie then both land in one Tether session and both changes survive', async (t) => {
    const old = new expressSession.MemoryStore();
    const target = new MemoryStore({ sweepIntervalMs: 0 });
    const { together } = await overlapping(t, old, target);
    const { a, b, ra, rb } = await together('/add?item=a', '/add?item=b');
    assert.deepEqual([ra.status, rb.status], [200, 200]);
    assert.deepEqual([ra.json(), rb.json()], [{ user: 'alice' }, { user: 'alice' }]);
    assert.ok(a.get('sid'), 'the first request set a Tether cookie');
    assert.equal(b.get('sid'), a.get('sid'), 'the second request was sent the same session’s cookie');
    assert.deepEqual([a.get('connect.sid'), b.get('connect.sid')], [undefined, undefined], 'both expired the old cookie');
    assert.deepEqual(await storedData(target, a.get('sid')), { legacyUser: 'alice', legacyViews: 1, cart: ['a', 'b'] });
    assert.equal(await target.count(), 1, 'one Tether session');
    assert.equal(await oldRecord(old), null, 'the old record is gone');
  });

  it('migration when the first adoption fails to store then a request that waited for it adopts the session itself', async (t) => {
    const old = new expressSession.MemoryStore();
    const target = new FaultyStore(new MemoryStore({ sweepIntervalMs: 0 }));
    let failures = 1;
    target.beforeSet = () => {
      if (failures-- > 0) throw new Error('injected failure in set (ECONNREFUSED)');
    };
    const { together } = await overlapping(t, old, target);
    const { a, b, ra, rb } = await together('/add?item=a', '/add?item=b');
    assert.deepEqual([ra.status, rb.status], [503, 200]);
    assert.equal(a.get('sid'), undefined);
    assert.deepEqual(await storedData(target, b.get('sid')), { legacyUser: 'alice', legacyViews: 1, cart: ['b'] });
    assert.equal(await oldRecord(old), null, 'deleted once the second adoption was stored');
  });

  it('migration when the first request logs out meanwhile then the one that waited does not bring the old session back', async (t) => {
    const old = new expressSession.MemoryStore();
    const target = new MemoryStore({ sweepIntervalMs: 0 });
    const { together } = await overlapping(t, old, target);
    const { b, ra, rb } = await together('/logout', '/add?item=b');
    assert.deepEqual([ra.status, rb.status], [200, 200]);
    assert.deepEqual(rb.json(), { user: null }, 'a fresh session, not Alice’s');
    assert.equal(await oldRecord(old), null);
    assert.deepEqual(await storedData(target, b.get('sid')), { cart: ['b'] });
  });

  it('migration when the first adoption runs past gateTimeoutMs then the request waiting for it fails 503 SESSION_BUSY', async (t) => {
    const old = new expressSession.MemoryStore();
    const target = new MemoryStore({ sweepIntervalMs: 0 });
    const { held, browser, arrival } = await overlapping(t, old, target, { gateTimeoutMs: 100 });
    const a = browser.clone();
    const first = a.request('/add?item=a', { method: 'POST' });
    await held.entered;
    const arrived = arrival();
    const second = browser.clone().request('/add?item=b', { method: 'POST' });
    await arrived;
    const rb = await second;
    held.release();
    const ra = await first;
    assert.deepEqual([rb.status, rb.json()], [503, { error: { code: 'SESSION_BUSY' } }]);
    assert.equal(ra.status, 200);
    assert.deepEqual(await storedData(target, a.get('sid')), { legacyUser: 'alice', legacyViews: 1, cart: ['a'] });
  });
});

describe('migration when the first request’s client goes away', () => {
  before(() => process.on('warning', quiet));
  after(() => process.off('warning', quiet));

  it('migration when the client goes away while the old session is read then the claim is given back once it loads', async (t) => {
    const inner = new expressSession.MemoryStore();
    inner.set('sid-1', { cookie: { originalMaxAge: null }, legacyUser: 'alice' });
    const reading = latch();
    const old: ExpressSessionStoreLike = {
      get: (sid, cb) => {
        reading.enter();
        void reading.wait.then(() => inner.get(sid, cb));
      },
      set: inner.set.bind(inner),
      destroy: inner.destroy.bind(inner),
    };
    const mw = session({ secret: 'keyboard cat', store: new MemoryStore({ sweepIntervalMs: 0 }), tether: { migrateFrom: old, gateTimeoutMs: 1_000 } });
    const seen = arrivals();
    const app = express();
    app.use(seen.mw);
    app.use(mw);
    // A long poll, answered only when there is news: for a client that went away, never.
    app.get('/poll', () => {});
    app.get('/visit', (req, res) => res.json({ user: req.session.legacyUser ?? null }));
    app.use((err: { status?: number; code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status ?? 500).json({ error: { code: err.code ?? 'ERROR' } });
    });
    const server = await listen(app);
    t.after(() => server.close());
    const legacyCookie = `connect.sid=${encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`)}`;

    const closed = seen.closed('/poll');
    const poll = leavingRequest(server.url, '/poll', legacyCookie);
    await reading.entered;
    poll.leave();
    await closed;
    reading.release();
    // The poll's handler never ends: the next request with the old cookie must not wait for it.
    const browser = new CookieClient(server.url);
    browser.set('connect.sid', legacyCookie.slice('connect.sid='.length));
    const r = await browser.request('/visit');
    assert.deepEqual([r.status, r.json()], [200, { user: 'alice' }]);
    assert.equal(mw.tether.stats().gateHolding, 0);
  });
});

describe('migration when the express-session store fails', () => {
  before(() => process.on('warning', quiet));
  after(() => process.off('warning', quiet));

  it('migration when reading or deleting the old session fails then the request fails 503 and the failure counts as a store error', async (t) => {
    const inner = new expressSession.MemoryStore();
    inner.set('sid-1', { cookie: { originalMaxAge: null }, legacyUser: 'alice' });
    let failGet = true;
    const old: ExpressSessionStoreLike = {
      get: (sid, cb) => (failGet ? cb(new Error('ECONNREFUSED')) : inner.get(sid, cb)),
      set: inner.set.bind(inner),
      destroy: (_sid, cb) => cb?.(new Error('ECONNRESET')),
    };
    const mw = session({ secret: 'keyboard cat', store: new MemoryStore({ sweepIntervalMs: 0 }), tether: { migrateFrom: old } });
    const registry = new Registry();
    registerTetherMetrics(mw.tether, registry);
    const app = express();
    app.use(mw);
    app.get('/visit', (req, res) => {
      req.session.legacyViews = 1;
      res.json({ user: req.session.legacyUser ?? null });
    });
    app.use((err: { status?: number; code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(err.status ?? 500).json({ error: { code: err.code ?? 'ERROR' } });
    });
    const server = await listen(app);
    t.after(() => server.close());
    const browser = new CookieClient(server.url);
    browser.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));

    const read = await browser.clone().request('/visit');
    assert.deepEqual([read.status, read.json()], [503, { error: { code: 'STORE_UNAVAILABLE' } }]);
    assert.equal(mw.tether.stats().storeErrors, 1, 'the failed read');

    failGet = false;
    const retire = await browser.clone().request('/visit');
    assert.equal(retire.status, 503, 'the old record could not be deleted');
    assert.equal(mw.tether.stats().storeErrors, 2, 'the failed delete');
    const text = await registry.metrics();
    assert.match(text, /^tether_store_errors_total 2$/m);
  });

  it('migration when the express-session store is instrumented then its migration calls are timed as readLegacy and destroyLegacy', async (t) => {
    const old = new expressSession.MemoryStore();
    old.set('sid-1', { cookie: { originalMaxAge: null }, legacyUser: 'alice' });
    const registry = new Registry();
    const app = appOn(session({ secret: 'keyboard cat', store: instrumentStore(fromExpressSessionStore(old), registry) }));
    const server = await listen(app);
    t.after(() => server.close());
    const browser = new CookieClient(server.url);
    browser.set('connect.sid', encodeURIComponent(`s:${expressSessionSign('sid-1', 'keyboard cat')}`));
    assert.deepEqual((await browser.request('/visit')).json(), { user: 'alice', views: 1 });
    const text = await registry.metrics();
    for (const op of ['readLegacy', 'destroyLegacy']) {
      assert.match(text, new RegExp(`^tether_store_duration_seconds_count\\{op="${op}",store="express-session:MemoryStore"\\} 1$`, 'm'));
    }
  });
});

/** cookie-signature's sign(), as express-session signs its cookie. */
function expressSessionSign(value: string, secret: string): string {
  return `${value}.${createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')}`;
}

function jsonCopy(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function quiet(): void {
  // The short README secret and the express-session stores are warned about on purpose.
}
